/*
 * api_runs.c - the run resource (list per task and per namespace, get,
 * cancel) and the live workers.
 */
#include "api/api_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/ids.h"
#include "model/run.h"
#include "model/task.h"
#include "time/rfc3339.h"

/* Workers are live while their heartbeat is this recent. */
#define WORKER_LIVE_US (30 * SKED_USEC_PER_SEC)

static int query_time(api_call *c, const char *name, sked_walltime *t)
{
    const char *s = sked_http_query(c->req, name);
    *t = SKED_TIME_NONE;
    if (s == NULL)
        return 0;
    if (sked_rfc3339_parse(s, strlen(s), t, NULL, NULL) < 0) {
        api_reply_errorf(c, SKED_EINVAL, name, "%s: an RFC 3339 time like 2026-11-27T10:00:00Z", name);
        return -1;
    }
    return 0;
}

void api_runs_list(api_call *c)
{
    sked_run_filter f = {.ns = c->tok.ns, .limit = 100};
    char task_id[SKED_ID_LEN + 1];
    const char *s = sked_http_query(c->req, "limit");
    if (s) {
        char *end;
        long v = strtol(s, &end, 10);
        if (*s == '\0' || *end != '\0' || v < 1 || v > 1000) {
            api_reply_errorf(c, SKED_EINVAL, "limit", "limit: a whole number from 1 to 1000");
            return;
        }
        f.limit = (int)v;
    }
    if ((s = sked_http_query(c->req, "status")) != NULL) {
        int st = sked_run_status_parse(s);
        if (st < 0) {
            api_reply_errorf(c, SKED_EINVAL, "status", "status: scheduled, dispatched, running, "
                             "succeeded, failed, timed_out, skipped or canceled");
            return;
        }
        f.status_mask = SKED_RUN_BIT(st);
    }
    if (query_time(c, "since", &f.since) < 0 || query_time(c, "until", &f.until) < 0)
        return;
    f.before_id = sked_http_query(c->req, "cursor");
    if (f.before_id && !sked_uuid_valid(f.before_id)) {
        api_reply_errorf(c, SKED_EINVAL, "cursor", "cursor: not a cursor this server gave");
        return;
    }
    const char *tid = c->id[0] ? c->id : sked_http_query(c->req, "task_id");
    if (tid) {
        /* the task's own runs: it must exist here (by id or name) */
        sked_task_rec task;
        sked_err err = {0};
        if (sked_store_task_get(c->api->store, c->tok.ns, tid, &task, &err) == 0) {
            memcpy(task_id, task.id, sizeof task_id);
            sked_task_rec_deinit(&task);
        } else if (c->id[0] || !sked_uuid_valid(tid)) {
            api_reply_errorf(c, SKED_ENOENT, NULL, "no task %s", tid);
            return;
        } else {
            snprintf(task_id, sizeof task_id, "%.36s", tid); /* a deleted task's history */
        }
        f.task_id = task_id;
    }
    sked_run_page page = {0};
    sked_err err = {0};
    if (sked_store_run_list(c->api->store, &f, &page, &err) < 0) {
        api_reply_error(c, &err);
        return;
    }
    json_t *arr = json_array();
    for (size_t i = 0; i < page.n; i++)
        json_array_append_new(arr, sked_run_json(&page.recs[i]));
    json_t *res = json_object();
    json_object_set_new(res, "runs", arr);
    json_object_set_new(res, "next_cursor", page.more && page.n
                                                ? json_string(page.recs[page.n - 1].id)
                                                : json_null());
    sked_run_page_deinit(&page);
    api_reply_json(c, 200, res);
}

void api_runs_get(api_call *c)
{
    sked_run_rec r;
    sked_err err = {0};
    if (sked_store_run_get(c->api->store, c->tok.ns, c->id, &r, &err) < 0) {
        api_reply_errorf(c, err.code, NULL, "%s", err.code == SKED_ENOENT ? "no such run" : err.msg);
        return;
    }
    api_reply_json(c, 200, sked_run_json(&r));
    sked_run_rec_deinit(&r);
}

void api_runs_cancel(api_call *c)
{
    sked_err err = {0};
    for (int tries = 0; tries < 8; tries++) {
        sked_run_rec r;
        if (sked_store_run_get(c->api->store, c->tok.ns, c->id, &r, &err) < 0) {
            api_reply_errorf(c, err.code, NULL, "%s", err.code == SKED_ENOENT ? "no such run" : err.msg);
            return;
        }
        if (!(SKED_RUN_UNFINISHED & SKED_RUN_BIT(r.status))) {
            api_reply_errorf(c, SKED_ECONFLICT, NULL, "run %s already finished (%s)", r.id,
                             sked_run_status_name(r.status));
            sked_run_rec_deinit(&r);
            return;
        }
        int was = r.status;
        r.status = SKED_RUN_CANCELED;
        r.finished_at = sked_clock_wall_now();
        free(r.error);
        r.error = strdup("canceled through the API");
        r.lease_owner[0] = '\0';
        r.lease_expires_at = SKED_TIME_NONE;
        sked_run_change ch = {.rec = &r, .attempt = r.attempt, .from = SKED_RUN_BIT(was)};
        if (sked_store_run_update(c->api->store, &ch, 1, &err) < 0) {
            sked_run_rec_deinit(&r);
            api_reply_error(c, &err);
            return;
        }
        if (ch.result == SKED_EPRECOND) { /* it moved on meanwhile: look again */
            sked_run_rec_deinit(&r);
            continue;
        }
        if (was != SKED_RUN_SCHEDULED && c->api->hooks.canceled)
            c->api->hooks.canceled(c->api->hooks.ctx, &r);
        api_reply_json(c, 200, sked_run_json(&r));
        sked_run_rec_deinit(&r);
        return;
    }
    api_reply_errorf(c, SKED_EUNAVAIL, NULL, "run %s keeps changing; try again", c->id);
}

void api_workers_list(api_call *c)
{
    sked_worker_rec *w = NULL;
    size_t n = 0;
    sked_err err = {0};
    if (sked_store_worker_list(c->api->store, sked_clock_wall_now() - WORKER_LIVE_US,
                               &w, &n, &err) < 0) {
        api_reply_error(c, &err);
        return;
    }
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++) {
        json_t *q = w[i].queues ? json_loads(w[i].queues, 0, NULL) : NULL;
        json_array_append_new(arr, json_pack("{s:s,s:s,s:o,s:i,s:i,s:o}", "id", w[i].id,
                                             "host", w[i].host, "queues", q ? q : json_array(),
                                             "slots", w[i].slots, "busy", w[i].busy,
                                             "last_heartbeat", sked_json_time(w[i].last_heartbeat)));
        free(w[i].queues);
    }
    free(w);
    api_reply_json(c, 200, json_pack("{s:o}", "workers", arr));
}
