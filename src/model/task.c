/*
 * task.c - decoding and validating a task specification (see task.h).
 *
 * Each decode_* function reads one object of the API's task JSON, checks
 * every field, and adds the canonical form of the field to an output
 * object.  Errors carry the JSON path of the field at fault.
 */
#include "model/task.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/ids.h"
#include "time/duration.h"
#include "time/rfc3339.h"

#define BAD(field, ...) sked_err_set(err, SKED_EINVAL, field, 0, __VA_ARGS__)

static const char *const server_fields[] = {
    "id", "namespace", "state", "next_run_at", "run_count", "version",
    "created_at", "updated_at", NULL};

static int in_list(const char *key, const char *const *list)
{
    for (; *list; list++)
        if (strcmp(key, *list) == 0)
            return 1;
    return 0;
}

/* Every key of obj must be in allowed (or, at top level, a server field). */
static int check_keys(json_t *obj, const char *prefix,
                      const char *const *allowed, int top, sked_err *err)
{
    const char *key;
    json_t *v;
    json_object_foreach(obj, key, v) {
        if (in_list(key, allowed) || (top && in_list(key, server_fields)))
            continue;
        char f[64];
        snprintf(f, sizeof f, "%s%s%.40s", prefix, prefix[0] ? "." : "", key);
        return BAD(f, "%s: unknown field", f);
    }
    return 0;
}

/* A name of [A-Za-z0-9._-], 1..max bytes (extra: also '/'). */
static int ident_ok(const char *s, size_t max, int slash)
{
    size_t n = strlen(s);
    if (n == 0 || n > max)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-' ||
              (slash && c == '/')))
            return 0;
    }
    return 1;
}

/* Optional string member: *out NULL when absent or null. */
static int get_string(json_t *obj, const char *key, const char *field,
                      size_t max, const char **out, sked_err *err)
{
    json_t *v = json_object_get(obj, key);
    *out = NULL;
    if (v == NULL || json_is_null(v))
        return 0;
    if (!json_is_string(v))
        return BAD(field, "%s: must be a string", field);
    if (json_string_length(v) > max)
        return BAD(field, "%s: longer than %zu bytes", field, max);
    *out = json_string_value(v);
    return 0;
}

/* Optional duration member, default def (a duration string). */
static int get_duration(json_t *obj, const char *key, const char *field,
                        const char *def, int64_t min, int64_t max,
                        int64_t *out, sked_err *err)
{
    const char *s;
    if (get_string(obj, key, field, 64, &s, err) < 0)
        return err->code;
    if (s == NULL)
        s = def;
    sked_err e2 = {0};
    if (sked_duration_parse(s, strlen(s), out, &e2) < 0)
        return BAD(field, "%s: %s", field, e2.msg);
    char a[SKED_DURATION_FMT_MAX], b[SKED_DURATION_FMT_MAX];
    if (*out < min || *out > max) {
        sked_duration_format(min, a);
        sked_duration_format(max, b);
        return BAD(field, "%s: must be between %s and %s", field, a, b);
    }
    return 0;
}

static void set_duration(json_t *obj, const char *key, int64_t us)
{
    char buf[SKED_DURATION_FMT_MAX];
    sked_duration_format(us, buf);
    json_object_set_new(obj, key, json_string(buf));
}

json_t *sked_json_time(sked_walltime t)
{
    char buf[SKED_RFC3339_MAX];
    if (t == SKED_TIME_NONE || sked_rfc3339_format(t, 0, 1, buf) == 0)
        return json_null();
    return json_string(buf);
}

/* Optional time member; SKED_TIME_NONE when absent or null. */
static int get_time(json_t *obj, const char *key, const char *field,
                    sked_walltime *out, sked_err *err)
{
    const char *s;
    *out = SKED_TIME_NONE;
    if (get_string(obj, key, field, 64, &s, err) < 0)
        return err->code;
    if (s == NULL)
        return 0;
    sked_err e2 = {0};
    if (sked_rfc3339_parse(s, strlen(s), out, NULL, &e2) < 0)
        return BAD(field, "%s: %s", field, e2.msg);
    return 0;
}

static int get_enum(json_t *obj, const char *key, const char *const *values,
                    const char **out, sked_err *err)
{
    const char *s;
    if (get_string(obj, key, key, 32, &s, err) < 0)
        return err->code;
    if (s == NULL) {
        *out = values[0];
        return 0;
    }
    for (int i = 0; values[i]; i++)
        if (strcmp(s, values[i]) == 0) {
            *out = values[i];
            return 0;
        }
    char list[128] = "";
    for (int i = 0; values[i]; i++)
        snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s",
                 i ? ", " : "", values[i]);
    return BAD(key, "%s: must be one of %s", key, list);
}

int sked_schedule_decode(json_t *in, sked_schedule *out, json_t **canon,
                         sked_err *err)
{
    static const char *const keys[] = {"cron", "timezone", "every", "at",
                                       "start_at", "end_at", "max_runs",
                                       "jitter", NULL};
    if (!json_is_object(in))
        return BAD("schedule", "schedule: must be an object with cron, every or at");
    if (check_keys(in, "schedule", keys, 0, err) < 0)
        return err->code;
    const char *cron, *every, *at, *zone;
    if (get_string(in, "cron", "schedule.cron", SKED_CRON_MAX_LEN, &cron, err) < 0 ||
        get_string(in, "every", "schedule.every", 64, &every, err) < 0 ||
        get_string(in, "at", "schedule.at", 64, &at, err) < 0 ||
        get_string(in, "timezone", "schedule.timezone", 255, &zone, err) < 0)
        return err->code;
    if ((cron != NULL) + (every != NULL) + (at != NULL) != 1)
        return BAD("schedule", "schedule: exactly one of cron, every or at is required");
    memset(out, 0, sizeof *out);
    out->tz = sked_tz_utc();
    json_t *c = json_object();
    sked_err e2 = {0};
    if (cron) {
        if (sked_cron_parse(cron, strlen(cron), &out->cron, &e2) < 0) {
            json_decref(c);
            return sked_err_set(err, SKED_EINVAL, "schedule.cron", e2.column,
                                "schedule.cron: %s", e2.msg);
        }
        if (out->cron.flags & SKED_CRON_EVERY) {
            out->kind = SKED_SCHED_EVERY; /* "@every D" is every: D */
            out->every_us = out->cron.every_us;
            set_duration(c, "every", out->every_us);
        } else {
            out->kind = SKED_SCHED_CRON;
            json_object_set_new(c, "cron", json_string(cron));
        }
    } else if (every) {
        out->kind = SKED_SCHED_EVERY;
        if (sked_duration_parse(every, strlen(every), &out->every_us, &e2) < 0) {
            json_decref(c);
            return BAD("schedule.every", "schedule.every: %s", e2.msg);
        }
        if (out->every_us < SKED_USEC_PER_SEC || out->every_us % SKED_USEC_PER_SEC) {
            json_decref(c);
            return BAD("schedule.every", "schedule.every: must be whole seconds, at least 1s");
        }
        set_duration(c, "every", out->every_us);
    } else {
        out->kind = SKED_SCHED_AT;
        if (get_time(in, "at", "schedule.at", &out->at, err) < 0) {
            json_decref(c);
            return err->code;
        }
        json_object_set_new(c, "at", sked_json_time(out->at));
    }
    if (zone && out->kind != SKED_SCHED_CRON) {
        json_decref(c);
        return BAD("schedule.timezone", "schedule.timezone: only a cron schedule has a time zone");
    }
    if (out->kind == SKED_SCHED_CRON) {
        if (sked_tz_get(zone ? zone : "UTC", &out->tz, &e2) < 0) {
            json_decref(c);
            return BAD("schedule.timezone", "schedule.timezone: %s", e2.msg);
        }
        json_object_set_new(c, "timezone", json_string(zone ? zone : "UTC"));
    }
    json_t *mr = json_object_get(in, "max_runs");
    if (out->kind == SKED_SCHED_AT) {
        static const char *const recurring[] = {"start_at", "end_at", "max_runs", NULL};
        for (int i = 0; recurring[i]; i++) {
            json_t *v = json_object_get(in, recurring[i]);
            if (v && !json_is_null(v)) {
                char f[40];
                snprintf(f, sizeof f, "schedule.%s", recurring[i]);
                BAD(f, "%s: only for recurring schedules (cron or every), not at", f);
                goto fail;
            }
        }
    }
    if (get_time(in, "start_at", "schedule.start_at", &out->start_at, err) < 0 ||
        get_time(in, "end_at", "schedule.end_at", &out->end_at, err) < 0 ||
        get_duration(in, "jitter", "schedule.jitter", "0s", 0,
                     INT64_C(3600) * SKED_USEC_PER_SEC, &out->jitter_us, err) < 0)
        goto fail;
    if (mr && !json_is_null(mr)) {
        if (!json_is_integer(mr) || json_integer_value(mr) < 1) {
            BAD("schedule.max_runs", "schedule.max_runs: must be a whole number >= 1");
            goto fail;
        }
        out->max_runs = json_integer_value(mr);
    }
    if (out->start_at != SKED_TIME_NONE && out->end_at != SKED_TIME_NONE &&
        out->end_at <= out->start_at) {
        BAD("schedule.end_at", "schedule.end_at: must be after start_at");
        goto fail;
    }
    json_object_set_new(c, "start_at", sked_json_time(out->start_at));
    json_object_set_new(c, "end_at", sked_json_time(out->end_at));
    json_object_set_new(c, "max_runs", out->max_runs ? json_integer(out->max_runs) : json_null());
    set_duration(c, "jitter", out->jitter_us);
    if (canon)
        *canon = c;
    else
        json_decref(c);
    return 0;
fail:
    json_decref(c);
    return err->code;
}

/* An object of string values, each key checked by key_ok. */
static int decode_string_map(json_t *in, const char *field, size_t max_n,
                             size_t key_max, size_t val_max, int env,
                             json_t **out, sked_err *err)
{
    *out = NULL;
    json_t *o = json_object();
    if (in == NULL || json_is_null(in)) {
        *out = o;
        return 0;
    }
    if (!json_is_object(in)) {
        json_decref(o);
        return BAD(field, "%s: must be an object of strings", field);
    }
    if (json_object_size(in) > max_n) {
        json_decref(o);
        return BAD(field, "%s: more than %zu entries", field, max_n);
    }
    const char *k;
    json_t *v;
    json_object_foreach(in, k, v) {
        char f[128];
        snprintf(f, sizeof f, "%s.%.60s", field, k);
        int ok = env ? ident_ok(k, key_max, 0) && !(k[0] >= '0' && k[0] <= '9') &&
                           strchr(k, '.') == NULL && strchr(k, '-') == NULL
                     : ident_ok(k, key_max, 1);
        if (!ok) {
            json_decref(o);
            return BAD(f, env ? "%s: not a valid variable name" : "%s: keys are 1-%zu characters of A-Z a-z 0-9 . _ - /",
                       f, key_max);
        }
        if (!json_is_string(v) || json_string_length(v) > val_max ||
            strchr(json_string_value(v), '\n') || strchr(json_string_value(v), '\r')) {
            json_decref(o);
            return BAD(f, "%s: must be a string of at most %zu bytes, no line breaks", f, val_max);
        }
        json_object_set(o, k, v);
    }
    *out = o;
    return 0;
}

static int decode_target(json_t *in, json_t **out, int *shell, sked_err *err)
{
    static const char *const shell_keys[] = {"type", "command", "env", "cwd", "timeout", NULL};
    static const char *const http_keys[] = {"type", "url", "method", "headers", "body",
                                            "expect", "timeout", NULL};
    static const char *const methods[] = {"POST", "GET", "PUT", "PATCH", "DELETE", "HEAD", NULL};
    if (!json_is_object(in))
        return BAD("target", "target: must be an object with a type (shell or http)");
    const char *type;
    if (get_string(in, "type", "target.type", 16, &type, err) < 0)
        return err->code;
    if (type == NULL || (strcmp(type, "shell") != 0 && strcmp(type, "http") != 0))
        return BAD("target.type", "target.type: must be shell or http");
    *shell = strcmp(type, "shell") == 0;
    if (check_keys(in, "target", *shell ? shell_keys : http_keys, 0, err) < 0)
        return err->code;
    json_t *t = json_object();
    json_t *m = NULL;
    int64_t timeout;
    json_object_set_new(t, "type", json_string(type));
    if (*shell) {
        const char *cmd, *cwd;
        if (get_string(in, "command", "target.command", SKED_COMMAND_MAX, &cmd, err) < 0 ||
            get_string(in, "cwd", "target.cwd", 4096, &cwd, err) < 0)
            goto fail;
        if (cmd == NULL || cmd[0] == '\0') {
            BAD("target.command", "target.command: required, the command for /bin/sh -c");
            goto fail;
        }
        if (cwd && cwd[0] != '/') {
            BAD("target.cwd", "target.cwd: must be an absolute path");
            goto fail;
        }
        if (decode_string_map(json_object_get(in, "env"), "target.env", SKED_ENV_MAX,
                              128, 8192, 1, &m, err) < 0)
            goto fail;
        if (get_duration(in, "timeout", "target.timeout", "1h", SKED_USEC_PER_SEC,
                         INT64_C(7) * 86400 * SKED_USEC_PER_SEC, &timeout, err) < 0)
            goto fail;
        json_object_set_new(t, "command", json_string(cmd));
        json_object_set_new(t, "env", m);
        m = NULL;
        json_object_set_new(t, "cwd", cwd ? json_string(cwd) : json_null());
    } else {
        const char *url, *body;
        const char *method;
        if (get_string(in, "url", "target.url", SKED_URL_MAX, &url, err) < 0 ||
            get_string(in, "body", "target.body", SKED_HTTP_BODY_MAX, &body, err) < 0)
            goto fail;
        if (url == NULL) {
            BAD("target.url", "target.url: required for an http target");
            goto fail;
        }
        const char *rest = strncasecmp(url, "http://", 7) == 0    ? url + 7
                           : strncasecmp(url, "https://", 8) == 0 ? url + 8
                                                                  : NULL;
        if (rest == NULL) {
            BAD("target.url", "target.url: scheme must be http or https");
            goto fail;
        }
        if (rest[0] == '\0' || rest[0] == '/' || strpbrk(url, " \t\r\n")) {
            BAD("target.url", "target.url: needs a host and no blanks");
            goto fail;
        }
        json_t *mv = json_object_get(in, "method");
        if (mv && !json_is_null(mv)) {
            sked_err e2;
            if (get_enum(in, "method", methods, &method, &e2) < 0) {
                BAD("target.method", "target.method: must be one of GET, POST, PUT, PATCH, DELETE, HEAD");
                goto fail;
            }
        } else {
            method = "POST";
        }
        const char *expect;
        if (get_string(in, "expect", "target.expect", 16, &expect, err) < 0)
            goto fail;
        int lo = 200, hi = 299;
        if (expect) {
            int a, b, n;
            if (strlen(expect) == 3 && expect[0] >= '1' && expect[0] <= '5' &&
                expect[1] == 'x' && expect[2] == 'x')
                lo = (expect[0] - '0') * 100, hi = lo + 99;
            else if (sscanf(expect, "%3d-%3d%n", &a, &b, &n) == 2 && (size_t)n == strlen(expect) &&
                     a >= 100 && b <= 599 && a <= b)
                lo = a, hi = b;
            else if (sscanf(expect, "%3d%n", &a, &n) == 1 && (size_t)n == strlen(expect) &&
                     a >= 100 && a <= 599)
                lo = hi = a;
            else {
                BAD("target.expect", "target.expect: a status like 204, a range like 200-299, or a class like 2xx");
                goto fail;
            }
        }
        if (decode_string_map(json_object_get(in, "headers"), "target.headers",
                              SKED_HEADERS_MAX, 128, 8192, 0, &m, err) < 0)
            goto fail;
        if (get_duration(in, "timeout", "target.timeout", "30s", SKED_USEC_PER_MSEC * 100,
                         INT64_C(86400) * SKED_USEC_PER_SEC, &timeout, err) < 0)
            goto fail;
        char range[16];
        if (lo % 100 == 0 && hi == lo + 99)
            snprintf(range, sizeof range, "%dxx", lo / 100);
        else if (lo == hi)
            snprintf(range, sizeof range, "%d", lo);
        else
            snprintf(range, sizeof range, "%d-%d", lo, hi);
        json_object_set_new(t, "url", json_string(url));
        json_object_set_new(t, "method", json_string(method));
        json_object_set_new(t, "headers", m);
        m = NULL;
        json_object_set_new(t, "body", body ? json_string(body) : json_null());
        json_object_set_new(t, "expect", json_string(range));
    }
    set_duration(t, "timeout", timeout);
    *out = t;
    return 0;
fail:
    json_decref(m);
    json_decref(t);
    return err->code;
}

static int decode_retry(json_t *in, json_t **out, sked_err *err)
{
    static const char *const keys[] = {"max_attempts", "backoff", "max_backoff",
                                       "multiplier", NULL};
    json_t *empty = NULL;
    if (in == NULL || json_is_null(in))
        in = empty = json_object();
    if (!json_is_object(in))
        return BAD("retry", "retry: must be an object");
    int64_t attempts = 1, backoff, max_backoff;
    double mult = 2;
    if (check_keys(in, "retry", keys, 0, err) < 0)
        goto fail;
    json_t *v = json_object_get(in, "max_attempts");
    if (v && !json_is_null(v)) {
        if (!json_is_integer(v) || json_integer_value(v) < 1 ||
            json_integer_value(v) > SKED_MAX_ATTEMPTS) {
            BAD("retry.max_attempts", "retry.max_attempts: a whole number from 1 to %d", SKED_MAX_ATTEMPTS);
            goto fail;
        }
        attempts = json_integer_value(v);
    }
    if (get_duration(in, "backoff", "retry.backoff", "10s", 0,
                     INT64_C(86400) * SKED_USEC_PER_SEC, &backoff, err) < 0 ||
        get_duration(in, "max_backoff", "retry.max_backoff", "10m", 0,
                     INT64_C(7) * 86400 * SKED_USEC_PER_SEC, &max_backoff, err) < 0)
        goto fail;
    if (max_backoff < backoff) {
        BAD("retry.max_backoff", "retry.max_backoff: must be at least backoff");
        goto fail;
    }
    v = json_object_get(in, "multiplier");
    if (v && !json_is_null(v)) {
        if (!json_is_number(v) || json_number_value(v) < 1 || json_number_value(v) > 10) {
            BAD("retry.multiplier", "retry.multiplier: a number from 1 to 10");
            goto fail;
        }
        mult = json_number_value(v);
    }
    json_decref(empty);
    *out = json_object();
    json_object_set_new(*out, "max_attempts", json_integer(attempts));
    set_duration(*out, "backoff", backoff);
    set_duration(*out, "max_backoff", max_backoff);
    json_object_set_new(*out, "multiplier", mult == (double)(int64_t)mult
                                                ? json_integer((int64_t)mult)
                                                : json_real(mult));
    return 0;
fail:
    json_decref(empty);
    return err->code;
}

int sked_task_spec_decode(json_t *in, sked_task_spec *out, sked_err *err)
{
    static const char *const keys[] = {"name", "schedule", "target", "queue",
                                       "retry", "overlap", "misfire",
                                       "misfire_grace", "labels", NULL};
    static const char *const overlaps[] = {"skip", "allow", "queue_one", NULL};
    static const char *const misfires[] = {"run_once", "skip", "run_all", NULL};
    memset(out, 0, sizeof *out);
    if (!json_is_object(in))
        return BAD("", "a task must be a JSON object");
    if (check_keys(in, "", keys, 1, err) < 0)
        return err->code;
    json_t *c = json_object(), *part = NULL;
    const char *name, *queue, *overlap, *misfire;
    int64_t grace;
    if (get_string(in, "name", "name", SKED_NAME_MAX, &name, err) < 0)
        goto fail;
    if (name && (!ident_ok(name, SKED_NAME_MAX, 0) || sked_uuid_valid(name))) {
        BAD("name", "name: 1-%d characters of A-Z a-z 0-9 . _ - and not a UUID", SKED_NAME_MAX);
        goto fail;
    }
    json_object_set_new(c, "name", name ? json_string(name) : json_null());
    json_t *sv = json_object_get(in, "schedule");
    if (sv == NULL) {
        BAD("schedule", "schedule: required (cron, every or at)");
        goto fail;
    }
    if (sked_schedule_decode(sv, &out->sched, &part, err) < 0)
        goto fail;
    json_object_set_new(c, "schedule", part);
    json_t *tv = json_object_get(in, "target");
    if (tv == NULL) {
        BAD("target", "target: required (a shell command or an http request)");
        goto fail;
    }
    if (decode_target(tv, &part, &out->shell, err) < 0)
        goto fail;
    json_object_set_new(c, "target", part);
    if (get_string(in, "queue", "queue", SKED_NS_MAX, &queue, err) < 0)
        goto fail;
    if (queue && !ident_ok(queue, SKED_NS_MAX, 0)) {
        BAD("queue", "queue: 1-%d characters of A-Z a-z 0-9 . _ -", SKED_NS_MAX);
        goto fail;
    }
    if (queue && strncmp(queue, "sked.", 5) == 0) {
        BAD("queue", "queue: names beginning with \"sked.\" are sked's own");
        goto fail;
    }
    json_object_set_new(c, "queue", json_string(queue ? queue : "default"));
    if (decode_retry(json_object_get(in, "retry"), &part, err) < 0)
        goto fail;
    json_object_set_new(c, "retry", part);
    if (get_enum(in, "overlap", overlaps, &overlap, err) < 0 ||
        get_enum(in, "misfire", misfires, &misfire, err) < 0 ||
        get_duration(in, "misfire_grace", "misfire_grace", "1m", 0,
                     INT64_C(7) * 86400 * SKED_USEC_PER_SEC, &grace, err) < 0)
        goto fail;
    json_object_set_new(c, "overlap", json_string(overlap));
    json_object_set_new(c, "misfire", json_string(misfire));
    set_duration(c, "misfire_grace", grace);
    if (decode_string_map(json_object_get(in, "labels"), "labels", SKED_LABELS_MAX,
                          SKED_LABEL_KEY_MAX, SKED_LABEL_VALUE_MAX, 0, &part, err) < 0)
        goto fail;
    json_object_set_new(c, "labels", part);
    out->json = c;
    json_t *nv = json_object_get(c, "name");
    out->name = json_is_string(nv) ? json_string_value(nv) : NULL;
    out->queue = json_string_value(json_object_get(c, "queue"));
    return 0;
fail:
    json_decref(c);
    memset(out, 0, sizeof *out);
    return err->code;
}

int sked_schedule_first_checked(const sked_schedule *s, sked_walltime now,
                                sked_walltime *out, sked_err *err)
{
    if (sked_schedule_first(s, now, out) == 0)
        return 0;
    if (s->end_at != SKED_TIME_NONE)
        return BAD("schedule.end_at", "schedule.end_at: the schedule has no occurrence before end_at");
    return BAD("schedule.cron", "schedule.cron: the expression never fires");
}

void sked_task_spec_deinit(sked_task_spec *s)
{
    json_decref(s->json);
    memset(s, 0, sizeof *s);
}

int sked_task_spec_parse(const char *text, sked_task_spec *out, sked_err *err)
{
    json_error_t je;
    json_t *j = json_loads(text, 0, &je);
    if (j == NULL)
        return BAD("", "stored spec is not valid JSON: %s", je.text);
    int rc = sked_task_spec_decode(j, out, err);
    json_decref(j);
    return rc;
}

/* A time as JSON text: "..." or null. */
static const char *time_text(sked_walltime t, char *buf)
{
    if (t == SKED_TIME_NONE || sked_rfc3339_format(t, 0, 1, buf + 1) == 0)
        return "null";
    buf[0] = '"';
    strcat(buf, "\"");
    return buf;
}

char *sked_task_json_text(const sked_task_rec *rec, size_t *len)
{
    static const char *const states[] = {"active", "paused", "completed"};
    size_t sl = strlen(rec->spec);
    if (sl < 2 || rec->spec[0] != '{' || rec->spec[sl - 1] != '}')
        return NULL;
    char next[SKED_RFC3339_MAX + 2], cr[SKED_RFC3339_MAX + 2], up[SKED_RFC3339_MAX + 2];
    char head[160], tail[400];
    int hl = snprintf(head, sizeof head, "{\"id\":\"%s\",\"namespace\":\"%s\"%s",
                      rec->id, rec->ns, sl > 2 ? "," : "");
    int tl = snprintf(tail, sizeof tail,
                      ",\"state\":\"%s\",\"next_run_at\":%s,\"run_count\":%lld,"
                      "\"version\":%lld,\"created_at\":%s,\"updated_at\":%s}",
                      states[rec->state % 3], time_text(rec->next_run_at, next),
                      (long long)rec->run_count, (long long)rec->version,
                      time_text(rec->created_at, cr), time_text(rec->updated_at, up));
    size_t n = (size_t)hl + (sl - 2) + (size_t)tl;
    char *out = malloc(n + 1);
    if (out == NULL)
        return NULL;
    memcpy(out, head, (size_t)hl);
    memcpy(out + hl, rec->spec + 1, sl - 2);
    memcpy(out + (size_t)hl + sl - 2, tail, (size_t)tl + 1);
    if (len)
        *len = n;
    return out;
}

int sked_task_rec_is_shell(const sked_task_rec *rec)
{
    /* the canonical form writes the target's type first, always */
    return strstr(rec->spec, "\"target\":{\"type\":\"shell\"") != NULL;
}

json_t *sked_task_json(const sked_task_rec *rec)
{
    static const char *const states[] = {"active", "paused", "completed"};
    json_t *spec = json_loads(rec->spec, 0, NULL);
    if (spec == NULL)
        return NULL;
    json_t *t = json_object();
    json_object_set_new(t, "id", json_string(rec->id));
    json_object_set_new(t, "namespace", json_string(rec->ns));
    json_object_update(t, spec);
    json_decref(spec);
    json_object_set_new(t, "state", json_string(states[rec->state % 3]));
    json_object_set_new(t, "next_run_at", sked_json_time(rec->next_run_at));
    json_object_set_new(t, "run_count", json_integer(rec->run_count));
    json_object_set_new(t, "version", json_integer(rec->version));
    json_object_set_new(t, "created_at", sked_json_time(rec->created_at));
    json_object_set_new(t, "updated_at", sked_json_time(rec->updated_at));
    return t;
}
