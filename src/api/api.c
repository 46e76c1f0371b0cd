/*
 * api.c - the route table, authentication, error mapping and body parsing
 * of the HTTP API.  Resource handlers live in api_tasks.c, api_meta.c and
 * api_tokens.c; this file decides which one runs and how errors look.
 */
#include "api/api_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/metrics.h"
#include "core/sha256.h"

/* sked error code -> HTTP status and the API's error code string. */
static const struct {
    int code;
    int status;
    const char *name;
} error_map[] = {
    {SKED_EINVAL, 400, "invalid_argument"},
    {SKED_ENOFIRE, 400, "invalid_argument"},
    {SKED_ERANGE, 400, "invalid_argument"},
    {SKED_EUNAUTH, 401, "unauthenticated"},
    {SKED_EPERM, 403, "permission_denied"},
    {SKED_ENOENT, 404, "not_found"},
    {SKED_EMETHOD, 405, "method_not_allowed"},
    {SKED_ECONFLICT, 409, "conflict"},
    {SKED_EEXIST, 409, "conflict"},
    {SKED_EPRECOND, 412, "precondition_failed"},
    {SKED_ETOOBIG, 413, "payload_too_large"},
    {SKED_EMEDIA, 415, "unsupported_media_type"},
    {SKED_EBUSY, 429, "too_many_requests"},
    {SKED_EUNAVAIL, 503, "unavailable"},
    {SKED_EAGAIN, 503, "unavailable"},
};

#define NO_AUTH (-1)

typedef void (*handler_fn)(api_call *c);

/* {id} stands for one path segment (up to '/' or ':'). */
static const struct route {
    const char *method;
    const char *pattern;
    handler_fn fn;
    int role;                  /* least role; NO_AUTH for open routes */
} routes[] = {
    {"POST", "/v1/tasks", api_tasks_create, SKED_ROLE_WRITE},
    {"GET", "/v1/tasks", api_tasks_list, SKED_ROLE_READ},
    {"POST", "/v1/tasks:batch", api_tasks_batch, SKED_ROLE_WRITE},
    {"GET", "/v1/tasks/{id}", api_tasks_get, SKED_ROLE_READ},
    {"PUT", "/v1/tasks/{id}", api_tasks_replace, SKED_ROLE_WRITE},
    {"DELETE", "/v1/tasks/{id}", api_tasks_delete, SKED_ROLE_WRITE},
    {"POST", "/v1/tasks/{id}:pause", api_tasks_pause, SKED_ROLE_WRITE},
    {"POST", "/v1/tasks/{id}:resume", api_tasks_resume, SKED_ROLE_WRITE},
    {"POST", "/v1/tasks/{id}:trigger", api_tasks_trigger, SKED_ROLE_WRITE},
    {"GET", "/v1/tasks/{id}/runs", api_runs_list, SKED_ROLE_READ},
    {"GET", "/v1/runs", api_runs_list, SKED_ROLE_READ},
    {"GET", "/v1/runs/{id}", api_runs_get, SKED_ROLE_READ},
    {"POST", "/v1/runs/{id}:cancel", api_runs_cancel, SKED_ROLE_WRITE},
    {"POST", "/v1/schedules:preview", api_schedules_preview, SKED_ROLE_READ},
    {"GET", "/v1/workers", api_workers_list, SKED_ROLE_READ},
    {"POST", "/v1/tokens", api_tokens_create, SKED_ROLE_ADMIN},
    {"GET", "/v1/tokens", api_tokens_list, SKED_ROLE_ADMIN},
    {"DELETE", "/v1/tokens/{id}", api_tokens_revoke, SKED_ROLE_ADMIN},
    {"GET", "/healthz", api_healthz, NO_AUTH},
    {"GET", "/readyz", api_readyz, NO_AUTH},
    {"GET", "/metrics", api_metrics, NO_AUTH},
    {"GET", "/", api_index, NO_AUTH},
};

static int match(const char *pat, const char *path, char *id, size_t cap)
{
    id[0] = '\0';
    while (*pat) {
        if (strncmp(pat, "{id}", 4) == 0) {
            size_t n = strcspn(path, "/:");
            if (n == 0 || n >= cap)
                return 0;
            memcpy(id, path, n);
            id[n] = '\0';
            path += n;
            pat += 4;
            continue;
        }
        if (*pat++ != *path++)
            return 0;
    }
    return *path == '\0';
}

void api_reply_json(api_call *c, int status, json_t *body)
{
    c->resp->status = status;
    c->resp->body = body ? json_dumps(body, JSON_COMPACT) : NULL;
    c->resp->body_len = c->resp->body ? strlen(c->resp->body) : 0;
    json_decref(body);
}

void api_reply_error(api_call *c, const sked_err *err)
{
    int status = 500;
    const char *name = "internal";
    for (size_t i = 0; i < sizeof error_map / sizeof error_map[0]; i++)
        if (error_map[i].code == err->code) {
            status = error_map[i].status;
            name = error_map[i].name;
        }
    const char *msg = err->msg[0] ? err->msg : sked_err_str(err->code);
    sked_http_resp_error(c->resp, status, name, msg, err->field);
}

void api_reply_errorf(api_call *c, int code, const char *field,
                      const char *fmt, ...)
{
    sked_err err = {.code = code};
    snprintf(err.field, sizeof err.field, "%s", field ? field : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err.msg, sizeof err.msg, fmt, ap);
    va_end(ap);
    api_reply_error(c, &err);
}

/* Deepest nesting of [ and { outside strings, stopping early past max. */
static int json_depth(const char *s, size_t n, int max)
{
    int depth = 0, deepest = 0, in_str = 0;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (in_str) {
            if (ch == '\\')
                i++;
            else if (ch == '"')
                in_str = 0;
        } else if (ch == '"') {
            in_str = 1;
        } else if (ch == '[' || ch == '{') {
            if (++depth > deepest && (deepest = depth) > max)
                return deepest;
        } else if (ch == ']' || ch == '}') {
            depth--;
        }
    }
    return deepest;
}

#define MAX_JSON_DEPTH 32

json_t *api_body_json(api_call *c)
{
    const sked_http_req *req = c->req;
    if (req->body_len == 0) {
        api_reply_errorf(c, SKED_EINVAL, NULL, "a JSON body is required");
        return NULL;
    }
    if (json_depth(req->body, req->body_len, MAX_JSON_DEPTH) > MAX_JSON_DEPTH) {
        api_reply_errorf(c, SKED_EINVAL, NULL, "JSON nested deeper than %d levels",
                         MAX_JSON_DEPTH);
        return NULL;
    }
    json_error_t je;
    json_t *j = json_loadb(req->body, req->body_len, JSON_REJECT_DUPLICATES, &je);
    if (j == NULL) {
        api_reply_errorf(c, SKED_EINVAL, NULL, "invalid JSON at line %d, column %d: %s",
                         je.line, je.column, je.text);
        return NULL;
    }
    return j;
}

/* The caller's token from "Authorization: Bearer <token>". */
static int authenticate(api_call *c)
{
    const char *h = sked_http_header(c->req, "Authorization");
    if (h == NULL || strncasecmp(h, "Bearer ", 7) != 0) {
        api_reply_errorf(c, SKED_EUNAUTH, NULL,
                         "missing bearer token (Authorization: Bearer <token>)");
        return -1;
    }
    const char *tok = h + 7;
    while (*tok == ' ')
        tok++;
    char hash[65];
    sked_sha256_hex(tok, strlen(tok), hash);
    sked_err err = {0};
    int rc = sked_store_token_find(c->api->store, hash, &c->tok, &err);
    if (rc == SKED_ENOENT) {
        api_reply_errorf(c, SKED_EUNAUTH, NULL, "unknown or revoked token");
        return -1;
    }
    if (rc < 0) {
        api_reply_error(c, &err);
        return -1;
    }
    return 0;
}

sked_api *sked_api_new(sked_store *st, const sked_api_hooks *hooks)
{
    sked_api *api = calloc(1, sizeof *api);
    if (api == NULL)
        abort();
    api->store = st;
    if (hooks)
        api->hooks = *hooks;
    return api;
}

void api_changed(api_call *c)
{
    if (c->api->hooks.changed)
        c->api->hooks.changed(c->api->hooks.ctx);
}

void sked_api_free(sked_api *api) { free(api); }

/* Requests by route, method and status; latency by route and method. */
static void observe(const struct route *r, int status, sked_monotime t0)
{
    static const double bounds[] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025,
                                    0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                    0.5, 1, 2.5, 5, 10};
    char code[8], labels[256];
    snprintf(code, sizeof code, "%d", status);
    const char *route = r ? r->pattern : "unmatched";
    /* the method label takes the route's own method, or "other": clients
     * must not be able to mint series */
    const char *method = r ? r->method : "other";
    sked_metrics *m = sked_metrics_default();
    if (sked_metrics_labels(labels, sizeof labels, "route", route, "method",
                            method, "code", code, NULL) >= 0)
        sked_counter_inc(sked_counter_get(m, "sked_http_requests_total",
                                          "HTTP requests answered.", labels));
    if (sked_metrics_labels(labels, sizeof labels, "route", route, "method",
                            method, NULL) >= 0)
        sked_histogram_observe(
            sked_histogram_get(m, "sked_http_request_duration_seconds",
                               "Time to answer an HTTP request.", labels,
                               bounds, (int)(sizeof bounds / sizeof bounds[0])),
            (double)(sked_clock_mono_now() - t0) / 1e6);
}

static void route_call(api_call *c, const struct route **hit_out);

void sked_api_dispatch(void *ctx, const sked_http_req *req,
                       sked_http_resp *resp)
{
    sked_monotime t0 = sked_clock_mono_now();
    api_call c = {.api = ctx, .req = req, .resp = resp};
    const struct route *hit = NULL;
    route_call(&c, &hit);
    observe(hit, resp->status, t0);
}

static void route_call(api_call *c, const struct route **hit_out)
{
    const sked_http_req *req = c->req;
    const struct route *hit = NULL;
    int path_known = 0;
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
        if (!match(routes[i].pattern, req->path, c->id, sizeof c->id))
            continue;
        path_known = 1;
        if (strcmp(routes[i].method, req->method) == 0) {
            hit = &routes[i];
            *hit_out = hit;
            break;
        }
    }
    if (hit == NULL) {
        if (path_known)
            api_reply_errorf(c, SKED_EMETHOD, NULL, "%s is not allowed on %s",
                             req->method, req->path);
        else
            api_reply_errorf(c, SKED_ENOENT, NULL, "no such resource: %s", req->path);
        return;
    }
    if (hit->role != NO_AUTH) {
        if (authenticate(c) < 0)
            return;
        if ((int)c->tok.role < hit->role) {
            static const char *const names[] = {"read", "write", "shell", "admin"};
            api_reply_errorf(c, SKED_EPERM, NULL, "a %s token may not do this (needs %s)",
                             names[c->tok.role], names[hit->role]);
            return;
        }
    }
    hit->fn(c);
}
