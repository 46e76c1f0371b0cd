/*
 * api_tasks.c - the task resource: create (one or a batch), list, get,
 * replace, delete, pause, resume, trigger.
 *
 * Every write follows one path: decode and validate the body into a
 * canonical spec (model/task.c), compute next_run_at with the time engine,
 * then one store call, which commits or changes nothing.  A rejected
 * request never reaches the store.
 */
#include "api/api_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/ids.h"
#include "core/sha256.h"
#include "model/run.h"
#include "model/task.h"

#define BATCH_MAX 1000
#define IDEM_KEY_MAX 200

/* Fill rec from a decoded spec, as a new task of the caller's namespace. */
static int rec_from_spec(api_call *c, const sked_task_spec *spec,
                         sked_walltime now, sked_task_rec *rec, sked_err *err)
{
    memset(rec, 0, sizeof *rec);
    if (spec->shell && c->tok.role < SKED_ROLE_SHELL)
        return sked_err_set(err, SKED_EPERM, "target.type", 0,
                            "target.type: only shell and admin tokens may "
                            "create shell targets");
    sked_walltime first;
    if (sked_schedule_first_checked(&spec->sched, now, &first, err) < 0)
        return err->code;
    sked_uuid7(rec->id);
    snprintf(rec->ns, sizeof rec->ns, "%s", c->tok.ns);
    rec->name = spec->name ? strdup(spec->name) : NULL;
    snprintf(rec->queue, sizeof rec->queue, "%s", spec->queue);
    rec->spec = json_dumps(spec->json, JSON_COMPACT);
    rec->state = SKED_TASK_ACTIVE;
    rec->next_run_at = first;
    rec->version = 1;
    rec->created_at = rec->updated_at = now;
    return 0;
}

static void reply_task(api_call *c, int status, const sked_task_rec *rec)
{
    size_t len;
    char *text = sked_task_json_text(rec, &len);
    if (text == NULL) {
        api_reply_errorf(c, SKED_EINTERNAL, NULL, "stored task %s is corrupt", rec->id);
        return;
    }
    char v[32], loc[64];
    snprintf(v, sizeof v, "\"%lld\"", (long long)rec->version);
    sked_http_resp_header(c->resp, "ETag", v);
    if (status == 201) {
        snprintf(loc, sizeof loc, "/v1/tasks/%s", rec->id);
        sked_http_resp_header(c->resp, "Location", loc);
    }
    c->resp->status = status;
    c->resp->body = text;
    c->resp->body_len = len;
}

/* {"tasks":[...]} (and "next_cursor" when with_cursor), spliced from the
 * stored text of each task rather than built as a JSON tree: listing and
 * batch answers are the API's biggest bodies. */
static void reply_tasks(api_call *c, int status, const sked_task_rec *recs,
                        size_t n, int with_cursor, const char *cursor)
{
    size_t cap = 256, len = 0;
    char **parts = calloc(n ? n : 1, sizeof *parts);
    size_t *lens = calloc(n ? n : 1, sizeof *lens);
    if (parts == NULL || lens == NULL)
        abort();
    for (size_t i = 0; i < n; i++) {
        parts[i] = sked_task_json_text(&recs[i], &lens[i]);
        cap += parts[i] ? lens[i] + 1 : 0;
    }
    char *out = malloc(cap);
    if (out == NULL) {
        api_reply_errorf(c, SKED_ENOMEM, NULL, "out of memory");
        goto done;
    }
    len += (size_t)sprintf(out, "{\"tasks\":[");
    int first = 1;
    for (size_t i = 0; i < n; i++) {
        if (parts[i] == NULL)
            continue; /* a corrupt row is left out, not fatal to the page */
        if (!first)
            out[len++] = ',';
        first = 0;
        memcpy(out + len, parts[i], lens[i]);
        len += lens[i];
    }
    out[len++] = ']';
    if (with_cursor)
        len += (size_t)sprintf(out + len, ",\"next_cursor\":%s%s%s", cursor ? "\"" : "",
                               cursor ? cursor : "null", cursor ? "\"" : "");
    out[len++] = '}';
    out[len] = '\0';
    c->resp->status = status;
    c->resp->body = out;
    c->resp->body_len = len;
done:
    for (size_t i = 0; i < n; i++)
        free(parts[i]);
    free(parts);
    free(lens);
}

void api_tasks_create(api_call *c)
{
    json_t *body = api_body_json(c);
    if (body == NULL)
        return;
    sked_err err = {0};
    sked_task_spec spec;
    sked_task_rec rec = {0};
    const char *key = sked_http_header(c->req, "Idempotency-Key");
    if (key && (key[0] == '\0' || strlen(key) > IDEM_KEY_MAX)) {
        sked_err_set(&err, SKED_EINVAL, "Idempotency-Key", 0,
                     "Idempotency-Key: 1 to %d characters", IDEM_KEY_MAX);
        goto fail;
    }
    if (sked_task_spec_decode(body, &spec, &err) < 0)
        goto fail;
    int rc = rec_from_spec(c, &spec, sked_clock_wall_now(), &rec, &err);
    sked_task_spec_deinit(&spec);
    if (rc < 0)
        goto fail;
    char hash[65];
    sked_sha256_hex(c->req->body, c->req->body_len, hash);
    sked_idem idem = {.key = key, .request_hash = hash};
    rc = sked_store_task_insert(c->api->store, &rec, 1, &idem, &err);
    if (rc == SKED_EEXIST) {
        /* the same request again: answer with the task it made */
        char id[SKED_ID_LEN + 1];
        memcpy(id, rec.id, sizeof id);
        sked_task_rec_deinit(&rec);
        if (sked_store_task_get(c->api->store, c->tok.ns, id, &rec, &err) < 0)
            goto fail;
        reply_task(c, 200, &rec);
    } else if (rc < 0) {
        goto fail;
    } else {
        reply_task(c, 201, &rec);
        api_changed(c);
    }
    sked_task_rec_deinit(&rec);
    json_decref(body);
    return;
fail:
    sked_task_rec_deinit(&rec);
    json_decref(body);
    api_reply_error(c, &err);
}

void api_tasks_batch(api_call *c)
{
    json_t *body = api_body_json(c);
    if (body == NULL)
        return;
    sked_err err = {0};
    json_t *arr = json_is_object(body) ? json_object_get(body, "tasks") : NULL;
    size_t n = json_array_size(arr), done = 0;
    sked_task_rec *recs = NULL;
    if (!json_is_array(arr) || n == 0 || n > BATCH_MAX) {
        sked_err_set(&err, SKED_EINVAL, "tasks", 0,
                     "tasks: an array of 1 to %d tasks is required", BATCH_MAX);
        goto fail;
    }
    recs = calloc(n, sizeof *recs);
    if (recs == NULL)
        abort();
    sked_walltime now = sked_clock_wall_now();
    for (; done < n; done++) {
        sked_task_spec spec;
        if (sked_task_spec_decode(json_array_get(arr, done), &spec, &err) < 0)
            goto bad_elem;
        int rc = rec_from_spec(c, &spec, now, &recs[done], &err);
        sked_task_spec_deinit(&spec);
        if (rc < 0)
            goto bad_elem;
    }
    if (sked_store_task_insert(c->api->store, recs, n, NULL, &err) < 0) {
        if (err.code == SKED_ECONFLICT && err.column > 0) {
            char f[64];
            snprintf(f, sizeof f, "tasks[%d]", err.column - 1);
            sked_err_prefix_field(&err, f);
        }
        goto fail;
    }
    reply_tasks(c, 201, recs, n, 0, NULL);
    api_changed(c);
    goto done;
bad_elem: {
        char f[32];
        snprintf(f, sizeof f, "tasks[%zu]", done);
        char msg[sizeof err.msg];
        snprintf(msg, sizeof msg, "%s", err.msg);
        int whole = err.field[0] == '\0';
        sked_err_prefix_field(&err, f);
        snprintf(err.msg, sizeof err.msg, "%s%s%.200s", f, whole ? ": " : ".", msg);
    }
fail:
    api_reply_error(c, &err);
done:
    for (size_t i = 0; i < n && recs; i++)
        sked_task_rec_deinit(&recs[i]);
    free(recs);
    json_decref(body);
}

static int parse_limit(api_call *c, int *limit)
{
    const char *s = sked_http_query(c->req, "limit");
    *limit = 100;
    if (s == NULL)
        return 0;
    char *end;
    long v = strtol(s, &end, 10);
    if (*s == '\0' || *end != '\0' || v < 1 || v > 1000) {
        api_reply_errorf(c, SKED_EINVAL, "limit", "limit: a whole number from 1 to 1000");
        return -1;
    }
    *limit = (int)v;
    return 0;
}

void api_tasks_list(api_call *c)
{
    static const char *const states[] = {"active", "paused", "completed", NULL};
    sked_task_filter f = {.ns = c->tok.ns, .state = -1};
    if (parse_limit(c, &f.limit) < 0)
        return;
    const char *s = sked_http_query(c->req, "state");
    if (s) {
        for (int i = 0; states[i]; i++)
            if (strcmp(s, states[i]) == 0)
                f.state = i;
        if (f.state < 0) {
            api_reply_errorf(c, SKED_EINVAL, "state", "state: active, paused or completed");
            return;
        }
    }
    f.queue = sked_http_query(c->req, "queue");
    f.name_prefix = sked_http_query(c->req, "name_prefix");
    f.after_id = sked_http_query(c->req, "cursor");
    if (f.after_id && !sked_uuid_valid(f.after_id)) {
        api_reply_errorf(c, SKED_EINVAL, "cursor", "cursor: not a cursor this server gave");
        return;
    }
    char key[SKED_LABEL_KEY_MAX + 2];
    const char *label = sked_http_query(c->req, "label");
    if (label) {
        const char *colon = strchr(label, ':');
        if (colon == NULL || colon == label || (size_t)(colon - label) > SKED_LABEL_KEY_MAX) {
            api_reply_errorf(c, SKED_EINVAL, "label", "label: expected key:value");
            return;
        }
        memcpy(key, label, (size_t)(colon - label));
        key[colon - label] = '\0';
        f.label_key = key;
        f.label_value = colon + 1;
    }
    sked_task_page page = {0};
    sked_err err = {0};
    if (sked_store_task_list(c->api->store, &f, &page, &err) < 0) {
        api_reply_error(c, &err);
        return;
    }
    reply_tasks(c, 200, page.recs, page.n, 1,
                page.more && page.n ? page.recs[page.n - 1].id : NULL);
    sked_task_page_deinit(&page);
}

/* The task {id} of the caller's namespace, or a 404 reply. */
static int load(api_call *c, sked_task_rec *rec)
{
    sked_err err = {0};
    if (sked_store_task_get(c->api->store, c->tok.ns, c->id, rec, &err) < 0) {
        if (err.code == SKED_ENOENT)
            api_reply_errorf(c, SKED_ENOENT, NULL, "no task %s", c->id);
        else
            api_reply_error(c, &err);
        return -1;
    }
    return 0;
}

/* The task {id}, to be changed: a shell task may only be changed (edited,
 * paused, resumed, triggered, deleted) by a shell or admin token, as it may
 * only be created by one. */
static int load_for_write(api_call *c, sked_task_rec *rec)
{
    if (load(c, rec) < 0)
        return -1;
    if (c->tok.role < SKED_ROLE_SHELL && sked_task_rec_is_shell(rec)) {
        api_reply_errorf(c, SKED_EPERM, "target.type",
                         "task %s runs a shell command: only shell and admin "
                         "tokens may change it", rec->id);
        sked_task_rec_deinit(rec);
        return -1;
    }
    return 0;
}

void api_tasks_get(api_call *c)
{
    sked_task_rec rec;
    if (load(c, &rec) < 0)
        return;
    reply_task(c, 200, &rec);
    sked_task_rec_deinit(&rec);
}

/* If-Match: a bare or quoted version number; 0 when absent. */
static int if_match(api_call *c, int64_t *version)
{
    const char *h = sked_http_header(c->req, "If-Match");
    *version = 0;
    if (h == NULL || strcmp(h, "*") == 0)
        return 0;
    const char *p = h;
    if (p[0] == 'W' && p[1] == '/')
        p += 2;
    int quoted = *p == '"';
    p += quoted;
    char *end;
    long long v = strtoll(p, &end, 10);
    if (end == p || v < 1 || (quoted && *end++ != '"') || *end != '\0') {
        api_reply_errorf(c, SKED_EINVAL, "If-Match", "If-Match: a task version like 3 or \"3\"");
        return -1;
    }
    *version = v;
    return 0;
}

/* A change to a stored task: edit rec in place.  Returns 1 to write it
 * back, 0 to answer with the task unchanged, or a negative code (err
 * filled) to refuse. */
typedef int (*task_change)(api_call *c, sked_task_rec *rec, void *arg,
                           sked_err *err);

#define MODIFY_TRIES 8

/* Read-modify-write of the task {id}.  With If-Match (if_match > 0) the
 * task must be at that version, else 412.  Without it, a concurrent change
 * between our read and our write is not the caller's problem: read again
 * and re-apply the change, a few times. */
static void modify(api_call *c, int64_t if_match, task_change change, void *arg)
{
    sked_err err = {0};
    for (int i = 0; i < MODIFY_TRIES; i++) {
        sked_task_rec rec;
        if (load_for_write(c, &rec) < 0)
            return;
        int rc = 0;
        if (if_match && rec.version != if_match)
            rc = sked_err_set(&err, SKED_EPRECOND, "If-Match", 0,
                              "task %s is at version %lld, not %lld", rec.id,
                              (long long)rec.version, (long long)if_match);
        else
            rc = change(c, &rec, arg, &err);
        int wrote = rc == 1;
        if (wrote) {
            rec.updated_at = sked_clock_wall_now();
            rc = sked_store_task_update(c->api->store, &rec, rec.version, &err);
            if (rc == SKED_EPRECOND && !if_match) {
                sked_task_rec_deinit(&rec);
                continue; /* lost a race: read again */
            }
        }
        if (rc >= 0) {
            reply_task(c, 200, &rec);
            if (wrote)
                api_changed(c);
        } else
            api_reply_error(c, &err);
        sked_task_rec_deinit(&rec);
        return;
    }
    api_reply_errorf(c, SKED_EUNAVAIL, NULL, "task %s keeps changing; try again", c->id);
}

/* replace: the new spec, keeping identity, history and a pause. */
static int change_replace(api_call *c, sked_task_rec *rec, void *arg, sked_err *err)
{
    const sked_task_spec *spec = arg;
    sked_task_rec fresh;
    if (rec_from_spec(c, spec, sked_clock_wall_now(), &fresh, err) < 0)
        return err->code;
    memcpy(fresh.id, rec->id, sizeof fresh.id);
    fresh.created_at = rec->created_at;
    fresh.run_count = rec->run_count;
    fresh.version = rec->version;
    if (rec->state == SKED_TASK_PAUSED) {
        fresh.state = SKED_TASK_PAUSED;
        fresh.next_run_at = SKED_TIME_NONE;
    }
    sked_task_rec_deinit(rec);
    *rec = fresh;
    return 1;
}

void api_tasks_replace(api_call *c)
{
    int64_t expect;
    if (if_match(c, &expect) < 0)
        return;
    json_t *body = api_body_json(c);
    if (body == NULL)
        return;
    sked_err err = {0};
    sked_task_spec spec;
    int rc = sked_task_spec_decode(body, &spec, &err);
    json_decref(body);
    if (rc < 0) {
        api_reply_error(c, &err);
        return;
    }
    modify(c, expect, change_replace, &spec);
    sked_task_spec_deinit(&spec);
}

void api_tasks_delete(api_call *c)
{
    sked_task_rec rec;
    if (load_for_write(c, &rec) < 0)
        return;
    sked_err err = {0};
    if (sked_store_task_delete(c->api->store, c->tok.ns, rec.id, &err) < 0)
        api_reply_error(c, &err);
    else
        api_reply_json(c, 204, NULL);
    sked_task_rec_deinit(&rec);
}

static int change_pause(api_call *c, sked_task_rec *rec, void *arg, sked_err *err)
{
    (void)c, (void)arg, (void)err;
    if (rec->state != SKED_TASK_ACTIVE)
        return 0; /* paused already, or completed */
    rec->state = SKED_TASK_PAUSED;
    rec->next_run_at = SKED_TIME_NONE;
    return 1;
}

void api_tasks_pause(api_call *c)
{
    modify(c, 0, change_pause, NULL);
}

/* resume: the next occurrence from now; none left means the task is done */
static int change_resume(api_call *c, sked_task_rec *rec, void *arg, sked_err *err)
{
    (void)c, (void)arg;
    if (rec->state != SKED_TASK_PAUSED)
        return 0;
    sked_task_spec spec;
    if (sked_task_spec_parse(rec->spec, &spec, err) < 0)
        return err->code;
    sked_walltime next;
    if (sked_schedule_first(&spec.sched, sked_clock_wall_now(), &next) == 0) {
        rec->state = SKED_TASK_ACTIVE;
        rec->next_run_at = next;
    } else {
        rec->state = SKED_TASK_COMPLETED;
        rec->next_run_at = SKED_TIME_NONE;
    }
    sked_task_spec_deinit(&spec);
    return 1;
}

void api_tasks_resume(api_call *c)
{
    modify(c, 0, change_resume, NULL);
}

/* Trigger: a run of the task due now, outside its schedule; it counts as
 * an occurrence at this instant (unique like any other). */
void api_tasks_trigger(api_call *c)
{
    sked_task_rec task;
    if (load_for_write(c, &task) < 0)
        return;
    sked_run_rec r = {0};
    sked_uuid7(r.id);
    memcpy(r.task_id, task.id, sizeof r.task_id);
    memcpy(r.ns, task.ns, sizeof r.ns);
    memcpy(r.queue, task.queue, sizeof r.queue);
    sked_walltime now = sked_clock_wall_now();
    r.scheduled_at = r.due_at = now;
    r.status = SKED_RUN_SCHEDULED;
    r.attempt = 1;
    r.lease_expires_at = r.dispatched_at = r.started_at = r.finished_at = SKED_TIME_NONE;
    r.lag_us = SKED_TIME_NONE;
    r.exit_code = SKED_NO_CODE;
    sked_task_rec_deinit(&task);
    sked_err err = {0};
    if (sked_store_run_insert(c->api->store, &r, &err) < 0) {
        api_reply_error(c, &err);
        return;
    }
    api_changed(c);
    api_reply_json(c, 202, sked_run_json(&r));
}
