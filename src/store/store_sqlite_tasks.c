/*
 * store_sqlite_tasks.c - the task methods of the SQLite store.
 *
 * Reads take a pooled read connection for the call.  Writes are job
 * functions handed to the group-commit writer (store_sqlite.c): a job may
 * run more than once, so it writes its results only into its own struct,
 * and the method copies them to the caller after sked_sqlite_write
 * returned.  Inputs are checked here before they reach the queue, so a
 * malformed record costs the writer nothing.
 *
 * Not here: connections, transactions and migrations (store_sqlite.c),
 * tokens (store_sqlite_tokens.c).
 */
#include "store/store_sqlite.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S(st) ((sked_sqlite_store *)(st))

/* ---- reading rows ------------------------------------------------------ */

/* A malloc'ed copy of column i, NULL for SQL NULL; SKED_ENOMEM. */
static int col_dup(sqlite3_stmt *q, int i, char **out, sked_err *err)
{
    *out = NULL;
    const char *s = (const char *)sqlite3_column_text(q, i);
    if (s == NULL)
        return 0;
    size_t n = (size_t)sqlite3_column_bytes(q, i);
    if ((*out = malloc(n + 1)) == NULL)
        return sked_err_set(err, SKED_ENOMEM, NULL, 0,
                            "out of memory reading a task");
    memcpy(*out, s, n + 1);
    return 0;
}

/* The current row (SKED_SQLITE_TASK_COLS) into out. */
static int read_task(sqlite3_stmt *q, sked_task_rec *out, sked_err *err)
{
    memset(out, 0, sizeof *out);
    sked_sqlite_col_fixed(q, 0, out->id, sizeof out->id);
    sked_sqlite_col_fixed(q, 1, out->ns, sizeof out->ns);
    sked_sqlite_col_fixed(q, 3, out->queue, sizeof out->queue);
    out->state = (sked_task_state)sqlite3_column_int(q, 5);
    out->next_run_at = sked_sqlite_col_time(q, 6);
    out->run_count = sqlite3_column_int64(q, 7);
    out->version = sqlite3_column_int64(q, 8);
    out->created_at = sqlite3_column_int64(q, 9);
    out->updated_at = sqlite3_column_int64(q, 10);
    int rc = col_dup(q, 2, &out->name, err);
    if (rc == 0)
        rc = col_dup(q, 4, &out->spec, err);
    if (rc != 0)
        sked_task_rec_deinit(out);
    return rc;
}

/* ---- input checks ------------------------------------------------------ */

/* A unique constraint of tasks failed for recs[i]: the id or the name. */
static int task_conflict(sqlite3 *db, int xrc, const sked_task_rec *recs,
                         size_t i, sked_err *err)
{
    int col = (int)i + 1;
    if (xrc == SQLITE_CONSTRAINT_PRIMARYKEY)
        return sked_err_set(err, SKED_ECONFLICT, "id", col,
                            "task id %s already exists", recs[i].id);
    if (xrc != SQLITE_CONSTRAINT_UNIQUE)
        return sked_sqlite_fail(db, xrc, err, "task");
    for (size_t k = 0; k < i; k++)
        if (recs[k].name != NULL && strcmp(recs[k].name, recs[i].name) == 0 &&
            strcmp(recs[k].ns, recs[i].ns) == 0)
            return sked_err_set(err, SKED_ECONFLICT, "name", col,
                                "task name \"%s\" is repeated in the batch "
                                "(tasks %zu and %zu)",
                                recs[i].name, k + 1, i + 1);
    return sked_err_set(err, SKED_ECONFLICT, "name", col,
                        "task name \"%s\" is already used in namespace %s",
                        recs[i].name, recs[i].ns);
}

/* ---- tasks: insert ----------------------------------------------------- */

typedef struct insert_job {
    const sked_task_rec *recs;
    size_t n;
    const sked_idem *idem;
    char first_id[SKED_ID_LEN + 1];   /* out: on SKED_EEXIST */
} insert_job;

/* SKED_EEXIST / SKED_ECONFLICT when the key was seen, else 0. */
static int idem_check(sked_sqlite_conn *c, insert_job *a, sked_err *err)
{
    sqlite3_stmt *q;
    int rc = sked_sqlite_stmt(c, SKED_SQLITE_IDEM_GET, &q, err);
    if (rc != 0)
        return rc;
    sked_sqlite_bind_text(q, 1, a->recs[0].ns);
    sked_sqlite_bind_text(q, 2, a->idem->key);
    int src = sqlite3_step(q);
    if (src == SQLITE_ROW) {
        const char *hash = (const char *)sqlite3_column_text(q, 0);
        sked_sqlite_col_fixed(q, 1, a->first_id, sizeof a->first_id);
        if (hash != NULL && strcmp(hash, a->idem->request_hash) == 0)
            rc = sked_err_set(err, SKED_EEXIST, NULL, 0,
                              "Idempotency-Key seen: task %s", a->first_id);
        else
            rc = sked_err_set(err, SKED_ECONFLICT, "Idempotency-Key", 0,
                              "Idempotency-Key was already used with "
                              "another request");
    } else if (src != SQLITE_DONE) {
        rc = sked_sqlite_fail(c->db, src, err, "idempotency lookup");
    }
    sqlite3_reset(q);
    return rc;
}

static int insert_fn(sked_sqlite_conn *c, void *arg, sked_err *err)
{
    insert_job *a = arg;
    sqlite3_stmt *q;
    int rc;
    if (a->idem != NULL && (rc = idem_check(c, a, err)) != 0)
        return rc;
    if ((rc = sked_sqlite_stmt(c, SKED_SQLITE_TASK_INSERT, &q, err)) != 0)
        return rc;
    for (size_t i = 0; i < a->n; i++) {
        const sked_task_rec *r = &a->recs[i];
        sked_sqlite_bind_text(q, 1, r->id);
        sked_sqlite_bind_text(q, 2, r->ns);
        sked_sqlite_bind_text(q, 3, r->name);
        sked_sqlite_bind_text(q, 4, r->queue);
        sked_sqlite_bind_text(q, 5, r->spec);
        sqlite3_bind_int(q, 6, (int)r->state);
        sked_sqlite_bind_time(q, 7, r->next_run_at);
        sqlite3_bind_int64(q, 8, r->run_count);
        sqlite3_bind_int64(q, 9, 1);
        sqlite3_bind_int64(q, 10, r->created_at);
        sqlite3_bind_int64(q, 11, r->updated_at);
        int src = sqlite3_step(q);
        sqlite3_reset(q);
        if (src != SQLITE_DONE)
            return task_conflict(c->db, src, a->recs, i, err);
    }
    if (a->idem == NULL)
        return 0;
    if ((rc = sked_sqlite_stmt(c, SKED_SQLITE_IDEM_PUT, &q, err)) != 0)
        return rc;
    sked_sqlite_bind_text(q, 1, a->recs[0].ns);
    sked_sqlite_bind_text(q, 2, a->idem->key);
    sked_sqlite_bind_text(q, 3, a->idem->request_hash);
    sked_sqlite_bind_text(q, 4, a->recs[0].id);
    sqlite3_bind_int64(q, 5, a->recs[0].created_at);
    int src = sqlite3_step(q);
    sqlite3_reset(q);
    if (src != SQLITE_DONE)
        return sked_sqlite_fail(c->db, src, err, "idempotency key");
    return 0;
}

int sked_sqlite_task_insert(sked_store *st, sked_task_rec *recs, size_t n,
                            const sked_idem *idem, sked_err *err)
{
    int rc;
    insert_job a = {.recs = recs, .n = n, .idem = idem};
    rc = sked_sqlite_write(S(st), insert_fn, &a, err);
    if (rc == SKED_EEXIST)
        memcpy(recs[0].id, a.first_id, sizeof recs[0].id);
    for (size_t i = 0; rc == 0 && i < n; i++)
        recs[i].version = 1;
    return rc;
}

/* ---- tasks: get, list -------------------------------------------------- */

/* Run the cached statement `id` with (ns, key); 1 when a row was read. */
static int get_by(sked_sqlite_conn *c, int id, const char *ns,
                  const char *key, sked_task_rec *out, sked_err *err)
{
    sqlite3_stmt *q;
    int rc = sked_sqlite_stmt(c, id, &q, err);
    if (rc != 0)
        return rc;
    sked_sqlite_bind_text(q, 1, ns);
    sked_sqlite_bind_text(q, 2, key);
    int src = sqlite3_step(q);
    if (src == SQLITE_ROW && (rc = read_task(q, out, err)) == 0)
        rc = 1;
    else if (src != SQLITE_ROW && src != SQLITE_DONE)
        rc = sked_sqlite_fail(c->db, src, err, "task get");
    sqlite3_reset(q);
    return rc;
}

int sked_sqlite_task_get(sked_store *st, const char *ns, const char *key,
                         sked_task_rec *out, sked_err *err)
{
    if (ns == NULL || key == NULL)
        return sked_err_set(err, SKED_EINVAL, NULL, 0,
                            "task get needs a namespace and a key");
    sked_sqlite_conn *c;
    int rc = sked_sqlite_reader_get(S(st), &c, err);
    if (rc != 0)
        return rc;
    rc = get_by(c, SKED_SQLITE_TASK_GET_ID, ns, key, out, err);
    if (rc == 0)
        rc = get_by(c, SKED_SQLITE_TASK_GET_NAME, ns, key, out, err);
    sked_sqlite_reader_put(S(st), c);
    if (rc == 0)
        return sked_err_set(err, SKED_ENOENT, NULL, 0, "no task %s", key);
    return rc < 0 ? rc : 0;
}

/* Optional filters of a listing, one bit each: the statement for a set of
 * bits is built once per connection. */
enum {
    F_STATE = 1,
    F_QUEUE = 2,
    F_LABEL = 4,
    F_PREFIX = 8,
    F_AFTER = 16,
};

static int list_stmt(sked_sqlite_conn *c, unsigned mask, sqlite3_stmt **out,
                     sked_err *err)
{
    char sql[1024];
    snprintf(sql, sizeof sql,
             "SELECT " SKED_SQLITE_TASK_COLS " FROM tasks "
             "WHERE namespace = ?1%s%s%s%s%s ORDER BY id LIMIT ?8",
             mask & F_STATE ? " AND state = ?2" : "",
             mask & F_QUEUE ? " AND queue = ?3" : "",
             mask & F_LABEL ? " AND EXISTS (SELECT 1 FROM json_each("
                              "tasks.spec, '$.labels') WHERE key = ?4 AND "
                              "(?5 IS NULL OR value = ?5))" : "",
             mask & F_PREFIX ? " AND substr(name, 1, length(?6)) = ?6" : "",
             mask & F_AFTER ? " AND id > ?7" : "");
    int rc = sked_sqlite_prepare_cached(c, &c->list[mask], sql, err);
    if (rc != 0)
        return rc;
    sqlite3_clear_bindings(c->list[mask]);
    *out = c->list[mask];
    return 0;
}

int sked_sqlite_task_list(sked_store *st, const sked_task_filter *f,
                          sked_task_page *out, sked_err *err)
{
    memset(out, 0, sizeof *out);
    int rc0 = f ? sked_sqlite_check_page(f->ns, f->limit, err)
                : sked_sqlite_check_page(NULL, 0, err);
    if (rc0 != 0)
        return rc0;
    if (f->state < -1 || f->state > SKED_TASK_COMPLETED)
        return sked_err_set(err, SKED_EINVAL, "state", 0,
                            "state %d is not a task state", f->state);
    unsigned mask = (f->state >= 0 ? F_STATE : 0) |
                    (sked_sqlite_given(f->queue) ? F_QUEUE : 0) |
                    (sked_sqlite_given(f->label_key) ? F_LABEL : 0) |
                    (sked_sqlite_given(f->name_prefix) ? F_PREFIX : 0) |
                    (sked_sqlite_given(f->after_id) ? F_AFTER : 0);
    sked_sqlite_conn *c = NULL;
    sqlite3_stmt *q = NULL;
    int rc = sked_sqlite_reader_get(S(st), &c, err);
    if (rc != 0)
        return rc;
    if ((rc = list_stmt(c, mask, &q, err)) != 0)
        goto fail;
    if ((out->recs = calloc((size_t)f->limit, sizeof *out->recs)) == NULL) {
        rc = sked_err_set(err, SKED_ENOMEM, NULL, 0, "out of memory");
        goto fail;
    }
    sked_sqlite_bind_text(q, 1, f->ns);
    if (mask & F_STATE)
        sqlite3_bind_int(q, 2, f->state);
    sked_sqlite_bind_text(q, 3, f->queue);
    sked_sqlite_bind_text(q, 4, f->label_key);
    sked_sqlite_bind_text(q, 5, f->label_value);
    sked_sqlite_bind_text(q, 6, f->name_prefix);
    sked_sqlite_bind_text(q, 7, f->after_id);
    sqlite3_bind_int(q, 8, f->limit + 1);
    int src;
    while ((src = sqlite3_step(q)) == SQLITE_ROW) {
        if (out->n == (size_t)f->limit) {
            out->more = 1;
            break;
        }
        if ((rc = read_task(q, &out->recs[out->n], err)) != 0)
            goto fail;
        out->n++;
    }
    if (src != SQLITE_ROW && src != SQLITE_DONE) {
        rc = sked_sqlite_fail(c->db, src, err, "task list");
        goto fail;
    }
    sqlite3_reset(q);
    sked_sqlite_reader_put(S(st), c);
    return 0;
fail:
    if (q != NULL)
        sqlite3_reset(q);
    sked_sqlite_reader_put(S(st), c);
    sked_task_page_deinit(out);
    return rc;
}

/* ---- tasks: update, delete --------------------------------------------- */

typedef struct update_job {
    const sked_task_rec *rec;
    int64_t expect;
    int64_t version;                  /* out */
} update_job;

static int update_fn(sked_sqlite_conn *c, void *arg, sked_err *err)
{
    update_job *a = arg;
    const sked_task_rec *r = a->rec;
    sqlite3_stmt *q;
    int rc = sked_sqlite_stmt(c, SKED_SQLITE_TASK_UPDATE, &q, err);
    if (rc != 0)
        return rc;
    sked_sqlite_bind_text(q, 1, r->ns);
    sked_sqlite_bind_text(q, 2, r->id);
    sked_sqlite_bind_text(q, 3, r->name);
    sked_sqlite_bind_text(q, 4, r->queue);
    sked_sqlite_bind_text(q, 5, r->spec);
    sqlite3_bind_int(q, 6, (int)r->state);
    sked_sqlite_bind_time(q, 7, r->next_run_at);
    sqlite3_bind_int64(q, 8, r->run_count);
    sqlite3_bind_int64(q, 9, r->updated_at);
    sqlite3_bind_int64(q, 10, a->expect);
    int src = sqlite3_step(q);
    if (src == SQLITE_ROW)
        a->version = sqlite3_column_int64(q, 0);
    sqlite3_reset(q);
    if (src == SQLITE_ROW && r->state == SKED_TASK_PAUSED) {
        /* A paused task has no occurrences: the ones already claimed but
         * not yet published are canceled with the pause - those marked
         * ahead of their due time too (dispatched_at still to come; the
         * scheduler reads them again before it publishes them). */
        if ((rc = sked_sqlite_stmt(c, SKED_SQLITE_RUNS_CANCEL_PAUSED, &q, err)) != 0)
            return rc;
        sked_sqlite_bind_text(q, 1, r->id);
        sqlite3_bind_int64(q, 2, r->updated_at);
        src = sqlite3_step(q);
        sqlite3_reset(q);
        if (src != SQLITE_DONE)
            return sked_sqlite_fail(c->db, src, err, "cancel the runs of a paused task");
        return 0;
    }
    if (src == SQLITE_ROW)
        return 0;
    if (src != SQLITE_DONE)
        return task_conflict(c->db, src, r, 0, err);

    /* Nothing updated: no such task, or a stale version. */
    if ((rc = sked_sqlite_stmt(c, SKED_SQLITE_TASK_VERSION, &q, err)) != 0)
        return rc;
    sked_sqlite_bind_text(q, 1, r->ns);
    sked_sqlite_bind_text(q, 2, r->id);
    src = sqlite3_step(q);
    int64_t have = src == SQLITE_ROW ? sqlite3_column_int64(q, 0) : 0;
    sqlite3_reset(q);
    if (src == SQLITE_ROW)
        return sked_err_set(err, SKED_EPRECOND, "If-Match", 0,
                            "task %s is at version %lld, not %lld", r->id,
                            (long long)have, (long long)a->expect);
    if (src == SQLITE_DONE)
        return sked_err_set(err, SKED_ENOENT, NULL, 0, "no task %s", r->id);
    return sked_sqlite_fail(c->db, src, err, "task update");
}

int sked_sqlite_task_update(sked_store *st, sked_task_rec *rec,
                            int64_t expect_version, sked_err *err)
{
    update_job a = {.rec = rec, .expect = expect_version};
    int rc = sked_sqlite_write(S(st), update_fn, &a, err);
    if (rc == 0)
        rec->version = a.version;
    return rc;
}

typedef struct delete_job {
    const char *ns, *id;
    sked_walltime now;
} delete_job;

/* The task goes; its runs stay (history), the unfinished ones canceled in
 * the same transaction so no scheduler publishes them afterwards.  A run
 * already with a worker keeps running there: its `finished` event is then
 * fenced off by the status. */
static int delete_fn(sked_sqlite_conn *c, void *arg, sked_err *err)
{
    const delete_job *a = arg;
    sqlite3_stmt *q;
    int rc = sked_sqlite_stmt(c, SKED_SQLITE_TASK_DELETE, &q, err);
    if (rc != 0)
        return rc;
    sked_sqlite_bind_text(q, 1, a->ns);
    sked_sqlite_bind_text(q, 2, a->id);
    int src = sqlite3_step(q);
    sqlite3_reset(q);
    if (src != SQLITE_DONE)
        return sked_sqlite_fail(c->db, src, err, "task delete");
    if (sqlite3_changes(c->db) == 0)
        return sked_err_set(err, SKED_ENOENT, NULL, 0, "no task %s", a->id);
    if ((rc = sked_sqlite_stmt(c, SKED_SQLITE_RUNS_CANCEL_TASK, &q, err)) != 0)
        return rc;
    sked_sqlite_bind_text(q, 1, a->id);
    sqlite3_bind_int64(q, 2, a->now);
    src = sqlite3_step(q);
    sqlite3_reset(q);
    if (src != SQLITE_DONE)
        return sked_sqlite_fail(c->db, src, err, "task delete: cancel runs");
    return 0;
}

int sked_sqlite_task_delete(sked_store *st, const char *ns, const char *id,
                            sked_err *err)
{
    if (ns == NULL || id == NULL)
        return sked_err_set(err, SKED_EINVAL, NULL, 0,
                            "task delete needs a namespace and an id");
    delete_job a = {.ns = ns, .id = id, .now = sked_clock_wall_now()};
    return sked_sqlite_write(S(st), delete_fn, &a, err);
}
