/*
 * api_meta.c - the routes around the tasks: health, readiness, metrics,
 * the index page and schedule previews.
 */
#include "api/api_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/metrics.h"
#include "core/version.h"
#include "model/task.h"
#include "time/rfc3339.h"

#define PREVIEW_MAX 1000

void api_healthz(api_call *c)
{
    json_t *j = json_pack("{s:s}", "status", "ok");
    api_reply_json(c, 200, j);
}

void api_readyz(api_call *c)
{
    sked_err err = {0};
    if (sked_store_ping(c->api->store, &err) < 0) {
        api_reply_errorf(c, SKED_EUNAVAIL, NULL, "store: %s", err.msg);
        return;
    }
    if (c->api->hooks.ready && c->api->hooks.ready(c->api->hooks.ctx, &err) < 0) {
        api_reply_errorf(c, SKED_EUNAVAIL, NULL, "queue: %s", err.msg);
        return;
    }
    api_reply_json(c, 200, json_pack("{s:s,s:s,s:s}", "status", "ready", "store", "ok",
                                     "queue", c->api->hooks.ready ? "ok" : "none"));
}

void api_metrics(api_call *c)
{
    size_t len = 0;
    char *text = sked_metrics_render(sked_metrics_default(), &len);
    if (text == NULL) {
        api_reply_errorf(c, SKED_EINTERNAL, NULL, "out of memory");
        return;
    }
    c->resp->status = 200;
    c->resp->body = text;
    c->resp->body_len = len;
    c->resp->content_type = "text/plain; version=0.0.4; charset=utf-8";
}

void api_index(api_call *c)
{
    static const char page[] =
        "<!doctype html><meta charset=utf-8><title>sked</title>"
        "<h1>sked " SKED_VERSION "</h1>"
        "<p>A distributed task scheduler. The API lives under "
        "<code>/v1</code> (bearer token required); see docs/api.md.</p>"
        "<ul><li><a href=/healthz>/healthz</a><li><a href=/readyz>/readyz</a>"
        "<li><a href=/metrics>/metrics</a></ul>";
    c->resp->status = 200;
    c->resp->body = strdup(page);
    c->resp->body_len = sizeof page - 1;
    c->resp->content_type = "text/html; charset=utf-8";
}

void api_schedules_preview(api_call *c)
{
    static const char *const keys[] = {"schedule", "from", "count", NULL};
    json_t *body = api_body_json(c);
    if (body == NULL)
        return;
    sked_err err = {0};
    sked_schedule s;
    json_t *out = NULL;
    if (!json_is_object(body)) {
        sked_err_set(&err, SKED_EINVAL, NULL, 0, "the body must be a JSON object");
        goto fail;
    }
    const char *k;
    json_t *v;
    json_object_foreach(body, k, v) {
        int known = 0;
        for (int i = 0; keys[i]; i++)
            known |= strcmp(k, keys[i]) == 0;
        if (!known) {
            sked_err_set(&err, SKED_EINVAL, k, 0, "%.60s: unknown field", k);
            goto fail;
        }
    }
    if (sked_schedule_decode(json_object_get(body, "schedule"), &s, NULL, &err) < 0)
        goto fail;
    sked_walltime from = sked_clock_wall_now();
    json_t *fv = json_object_get(body, "from");
    if (fv && !json_is_null(fv)) {
        if (!json_is_string(fv) ||
            sked_rfc3339_parse(json_string_value(fv), json_string_length(fv), &from,
                               NULL, &err) < 0) {
            sked_err_set(&err, SKED_EINVAL, "from", 0, "from: an RFC 3339 time like 2026-11-27T10:00:00Z");
            goto fail;
        }
    }
    json_int_t count = 10;
    json_t *cv = json_object_get(body, "count");
    if (cv && !json_is_null(cv)) {
        if (!json_is_integer(cv) || json_integer_value(cv) < 1 ||
            json_integer_value(cv) > PREVIEW_MAX) {
            sked_err_set(&err, SKED_EINVAL, "count", 0, "count: a whole number from 1 to %d", PREVIEW_MAX);
            goto fail;
        }
        count = json_integer_value(cv);
    }
    if (s.max_runs && count > s.max_runs)
        count = s.max_runs;
    out = json_array();
    sked_walltime t = from;
    for (json_int_t i = 0; i < count; i++) {
        if (sked_schedule_next(&s, t, &t) < 0)
            break;
        char buf[SKED_RFC3339_MAX];
        if (sked_rfc3339_format_tz(t, s.tz, buf) == 0)
            break;
        json_array_append_new(out, json_string(buf));
    }
    json_decref(body);
    json_t *res = json_object();
    json_object_set_new(res, "next", out);
    api_reply_json(c, 200, res);
    return;
fail:
    json_decref(body);
    api_reply_error(c, &err);
}

