/*
 * run.c - run JSON, job messages, worker events, retry arithmetic (run.h).
 */
#include "model/run.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/ids.h"
#include "model/task.h"
#include "time/duration.h"

static const char *const statuses[] = {"scheduled", "dispatched", "running",
                                       "succeeded", "failed",     "timed_out",
                                       "skipped",   "canceled"};

const char *sked_run_status_name(sked_run_status s)
{
    return (unsigned)s < 8 ? statuses[s] : "unknown";
}

int sked_run_status_parse(const char *name)
{
    for (int i = 0; i < 8; i++)
        if (strcmp(name, statuses[i]) == 0)
            return i;
    return -1;
}

/* s as a JSON string even when it is not valid UTF-8 (process output cut
 * anywhere, binary noise): invalid bytes become '?'. */
static json_t *json_text(const char *s)
{
    json_t *j = json_string(s);
    if (j != NULL)
        return j;
    size_t n = strlen(s);
    char *copy = malloc(n + 1);
    if (copy == NULL)
        return json_null();
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < n) {
        unsigned c = p[i];
        size_t len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3
                   : (c >> 3) == 30 ? 4 : 0;
        int ok = len > 0 && i + len <= n;
        for (size_t k = 1; ok && k < len; k++)
            ok = (p[i + k] & 0xc0) == 0x80;
        if (ok && len > 1) {
            memcpy(copy + i, s + i, len); /* a well-formed sequence */
            json_t *one = json_stringn(s + i, len);
            if (one == NULL) /* overlong or surrogate: still invalid */
                memset(copy + i, '?', len);
            json_decref(one);
            i += len;
        } else {
            copy[i] = ok ? s[i] : '?';
            i++;
        }
    }
    copy[n] = '\0';
    j = json_string(copy);
    free(copy);
    return j ? j : json_null();
}

static json_t *str_or_null(const char *s)
{
    return s && s[0] ? json_text(s) : json_null();
}

json_t *sked_run_json(const sked_run_rec *r)
{
    json_t *j = json_object();
    json_object_set_new(j, "id", json_string(r->id));
    json_object_set_new(j, "task_id", json_string(r->task_id));
    json_object_set_new(j, "scheduled_at", sked_json_time(r->scheduled_at));
    json_object_set_new(j, "status", json_string(sked_run_status_name(r->status)));
    json_object_set_new(j, "reason", str_or_null(r->reason));
    json_object_set_new(j, "attempt", json_integer(r->attempt));
    json_object_set_new(j, "queue", json_string(r->queue));
    json_object_set_new(j, "worker", str_or_null(r->worker));
    json_object_set_new(j, "due_at", sked_json_time(r->due_at));
    json_object_set_new(j, "dispatched_at", sked_json_time(r->dispatched_at));
    json_object_set_new(j, "started_at", sked_json_time(r->started_at));
    json_object_set_new(j, "finished_at", sked_json_time(r->finished_at));
    json_object_set_new(j, "lag_ms", r->lag_us == SKED_TIME_NONE
                                         ? json_null()
                                         : json_real((double)r->lag_us / 1000.0));
    json_object_set_new(j, "duration_ms",
                        r->started_at != SKED_TIME_NONE && r->finished_at != SKED_TIME_NONE
                            ? json_integer((r->finished_at - r->started_at) / 1000)
                            : json_null());
    json_object_set_new(j, "exit_code", r->exit_code == SKED_NO_CODE
                                            ? json_null()
                                            : json_integer(r->exit_code));
    json_object_set_new(j, "http_status", r->http_status ? json_integer(r->http_status)
                                                         : json_null());
    json_object_set_new(j, "error", str_or_null(r->error));
    json_object_set_new(j, "output", r->output ? json_text(r->output) : json_null());
    return j;
}

/* Append s to b as a JSON string; b has room (6 bytes per byte + 2). */
static size_t put_json_string(char *b, const char *s)
{
    size_t n = 0;
    b[n++] = '"';
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\') {
            b[n++] = '\\';
            b[n++] = (char)*p;
        } else if (*p < 0x20) {
            n += (size_t)sprintf(b + n, "\\u%04x", *p);
        } else {
            b[n++] = (char)*p;
        }
    }
    b[n++] = '"';
    return n;
}

/* The spec goes in verbatim: it is canonical JSON already (model/task.c),
 * and the dispatch path must not parse and print it again for every run. */
char *sked_job_message(const sked_run_rec *r, const char *spec_text, size_t *len)
{
    if (spec_text == NULL || spec_text[0] != '{')
        return NULL;
    size_t cap = 200 + 6 * (strlen(r->id) + strlen(r->task_id) + strlen(r->queue)) +
                 strlen(spec_text);
    char *b = malloc(cap);
    if (b == NULL)
        return NULL;
    size_t n = (size_t)sprintf(b, "{\"run_id\":");
    n += put_json_string(b + n, r->id);
    n += (size_t)sprintf(b + n, ",\"task_id\":");
    n += put_json_string(b + n, r->task_id);
    n += (size_t)sprintf(b + n, ",\"attempt\":%d,\"scheduled_at\":%lld,",
                         r->attempt, (long long)r->scheduled_at);
    if (r->dispatched_at != SKED_TIME_NONE)
        n += (size_t)sprintf(b + n, "\"dispatched_at\":%lld,", (long long)r->dispatched_at);
    n += (size_t)sprintf(b + n, "\"queue\":");
    n += put_json_string(b + n, r->queue);
    n += (size_t)sprintf(b + n, ",\"spec\":%s}", spec_text);
    if (len)
        *len = n;
    return b;
}

static const char *const event_types[] = {"started", "finished", "heartbeat", "returned",
                                          "cancel"};

char *sked_event_encode(const sked_event *e, size_t *len)
{
    json_t *j = json_object();
    json_object_set_new(j, "type", json_string(event_types[e->type]));
    json_object_set_new(j, "worker", json_string(e->worker));
    json_object_set_new(j, "at", json_integer(e->at));
    if (e->type != SKED_EVENT_HEARTBEAT) {
        json_object_set_new(j, "run_id", json_string(e->run_id));
        json_object_set_new(j, "attempt", json_integer(e->attempt));
    }
    if (e->type == SKED_EVENT_RETURNED && e->unstarted)
        json_object_set_new(j, "unstarted", json_true());
    if (e->type == SKED_EVENT_RETURNED && e->dispatched_at != SKED_TIME_NONE)
        json_object_set_new(j, "dispatched_at", json_integer(e->dispatched_at));
    if (e->type == SKED_EVENT_FINISHED) {
        json_object_set_new(j, "outcome", json_integer(e->outcome));
        json_object_set_new(j, "started_at", json_integer(e->started_at));
        json_object_set_new(j, "exit_code", json_integer(e->exit_code));
        json_object_set_new(j, "http_status", json_integer(e->http_status));
        json_object_set_new(j, "error", str_or_null(e->error));
        json_object_set_new(j, "output", e->output ? json_text(e->output) : json_null());
    }
    if (e->type == SKED_EVENT_HEARTBEAT) {
        json_object_set_new(j, "host", json_string(e->host));
        json_t *q = e->queues ? json_loads(e->queues, 0, NULL) : NULL;
        json_object_set_new(j, "queues", q ? q : json_array());
        json_object_set_new(j, "slots", json_integer(e->slots));
        json_object_set_new(j, "busy", json_integer(e->busy));
        json_t *runs = json_array();
        for (size_t i = 0; i < e->nruns; i++)
            json_array_append_new(runs, json_pack("[s,i]", e->runs[i], e->run_attempts[i]));
        json_object_set_new(j, "runs", runs);
    }
    char *text = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    if (text && len)
        *len = strlen(text);
    return text;
}

static void copy_str(char *dst, size_t cap, json_t *v)
{
    const char *s = json_string_value(v);
    snprintf(dst, cap, "%s", s ? s : "");
}

static char *dup_or_null(json_t *v)
{
    const char *s = json_string_value(v);
    return s ? strdup(s) : NULL;
}

int sked_event_decode(const char *text, size_t len, sked_event *e, sked_err *err)
{
    memset(e, 0, sizeof *e);
    json_error_t je;
    json_t *j = json_loadb(text, len, 0, &je);
    if (j == NULL)
        return sked_err_set(err, SKED_EINVAL, NULL, 0, "event: %s", je.text);
    const char *type = json_string_value(json_object_get(j, "type"));
    int t = -1;
    for (int i = 0; type && i < (int)(sizeof event_types / sizeof *event_types); i++)
        if (strcmp(type, event_types[i]) == 0)
            t = i;
    if (t < 0) {
        json_decref(j);
        return sked_err_set(err, SKED_EINVAL, "type", 0, "event: unknown type");
    }
    e->type = (sked_event_type)t;
    copy_str(e->worker, sizeof e->worker, json_object_get(j, "worker"));
    if (e->type != SKED_EVENT_HEARTBEAT) { /* a heartbeat names its runs in "runs" */
        copy_str(e->run_id, sizeof e->run_id, json_object_get(j, "run_id"));
        e->attempt = (int)json_integer_value(json_object_get(j, "attempt"));
    }
    e->at = json_integer_value(json_object_get(j, "at"));
    /* anything but true is the safe reading: it may have run */
    e->unstarted = e->type == SKED_EVENT_RETURNED && json_is_true(json_object_get(j, "unstarted"));
    json_t *da = json_object_get(j, "dispatched_at");
    e->dispatched_at = e->type == SKED_EVENT_RETURNED && json_is_integer(da)
                           ? json_integer_value(da) : SKED_TIME_NONE;
    e->outcome = (int)json_integer_value(json_object_get(j, "outcome"));
    json_t *sa = json_object_get(j, "started_at");
    e->started_at = json_is_integer(sa) ? json_integer_value(sa) : SKED_TIME_NONE;
    json_t *ec = json_object_get(j, "exit_code");
    e->exit_code = json_is_integer(ec) ? (int32_t)json_integer_value(ec) : SKED_NO_CODE;
    e->http_status = (int32_t)json_integer_value(json_object_get(j, "http_status"));
    e->error = dup_or_null(json_object_get(j, "error"));
    e->output = dup_or_null(json_object_get(j, "output"));
    if (e->type == SKED_EVENT_HEARTBEAT) {
        copy_str(e->host, sizeof e->host, json_object_get(j, "host"));
        json_t *q = json_object_get(j, "queues");
        e->queues = q ? json_dumps(q, JSON_COMPACT) : strdup("[]");
        e->slots = (int)json_integer_value(json_object_get(j, "slots"));
        e->busy = (int)json_integer_value(json_object_get(j, "busy"));
        json_t *runs = json_object_get(j, "runs");
        size_t n = json_array_size(runs);
        e->runs = calloc(n ? n : 1, sizeof *e->runs);
        e->run_attempts = calloc(n ? n : 1, sizeof *e->run_attempts);
        for (size_t i = 0; i < n; i++) {
            json_t *r = json_array_get(runs, i);
            copy_str(e->runs[i], sizeof e->runs[i], json_array_get(r, 0));
            e->run_attempts[i] = (int)json_integer_value(json_array_get(r, 1));
        }
        e->nruns = n;
    } else if (e->run_id[0] == '\0') {
        json_decref(j);
        sked_event_deinit(e);
        return sked_err_set(err, SKED_EINVAL, "run_id", 0, "event: run_id missing");
    }
    json_decref(j);
    return 0;
}

void sked_event_deinit(sked_event *e)
{
    free(e->error);
    free(e->output);
    free(e->queues);
    free(e->runs);
    free(e->run_attempts);
    memset(e, 0, sizeof *e);
}

int sked_retry_due(const char *spec_text, int attempt, sked_walltime now,
                   sked_walltime *due)
{
    json_t *spec = json_loads(spec_text, 0, NULL);
    if (spec == NULL)
        return SKED_ENOFIRE;
    json_t *retry = json_object_get(spec, "retry");
    int max = (int)json_integer_value(json_object_get(retry, "max_attempts"));
    int64_t backoff = 10 * SKED_USEC_PER_SEC, cap = 600 * SKED_USEC_PER_SEC;
    const char *b = json_string_value(json_object_get(retry, "backoff"));
    const char *mb = json_string_value(json_object_get(retry, "max_backoff"));
    if (b)
        sked_duration_parse(b, strlen(b), &backoff, NULL);
    if (mb)
        sked_duration_parse(mb, strlen(mb), &cap, NULL);
    double mult = json_number_value(json_object_get(retry, "multiplier"));
    json_decref(spec);
    if (attempt >= (max < 1 ? 1 : max))
        return SKED_ENOFIRE;
    double d = (double)backoff * pow(mult < 1 ? 1 : mult, attempt - 1);
    int64_t delay = d > (double)cap ? cap : (int64_t)d;
    uint64_t r;
    sked_random_bytes(&r, sizeof r);
    int64_t jit = delay / 10 > 0 ? (int64_t)(r % (uint64_t)(delay / 10)) : 0;
    *due = now + delay + jit;
    return 0;
}
