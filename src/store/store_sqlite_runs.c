/*
 * store_sqlite_runs.c - the run methods of the SQLite store other than the
 * claim: transitions (run_update), sweeps, manual runs, reads, listings,
 * retention.  Also the helpers that turn run rows into sked_run_rec,
 * shared with store_sqlite_claim.c.
 *
 * Same shape as store_sqlite_tasks.c: reads on a pooled read connection,
 * writes as jobs of the group-commit writer that keep their results in
 * their own struct (a job may run twice).  Not here: the claim
 * (store_sqlite_claim.c), deciding what a transition should be (sched/).
 *
 * Storage conventions (store.h <-> SQL): times SKED_TIME_NONE <-> NULL,
 * exit_code SKED_NO_CODE <-> NULL, http_status 0 <-> NULL, lag_us
 * SKED_TIME_NONE <-> NULL, empty reason/worker/lease_owner <-> NULL.  A
 * lease without an owner is no lease: its expiry is stored as NULL too, so
 * "free" is simply "lease_expires_at NULL or past".
 */
#include "store/store_sqlite.h"

#include <stdlib.h>
#include <string.h>

#define S(st) ((sked_sqlite_store *)(st))

/* run_prune examines about this many rows per call (checked between
 * tasks), so one call holds the writer for about 10 ms (measured: 50,000
 * rows in 20 ms). */
#define PRUNE_BUDGET 20000

/* ---- reading and writing rows ------------------------------------------ */

/* The current row's SKED_SQLITE_RUN_COLS into out. */
static int read_run(sqlite3_stmt *q, sked_run_rec *out, sked_err *err)
{
    memset(out, 0, sizeof *out);
    sked_sqlite_col_fixed(q, 0, out->id, sizeof out->id);
    sked_sqlite_col_fixed(q, 1, out->task_id, sizeof out->task_id);
    sked_sqlite_col_fixed(q, 2, out->ns, sizeof out->ns);
    out->scheduled_at = sked_sqlite_col_time(q, 3);
    out->due_at = sked_sqlite_col_time(q, 4);
    out->status = (sked_run_status)sqlite3_column_int(q, 5);
    sked_sqlite_col_fixed(q, 6, out->reason, sizeof out->reason);
    out->attempt = sqlite3_column_int(q, 7);
    sked_sqlite_col_fixed(q, 8, out->queue, sizeof out->queue);
    sked_sqlite_col_fixed(q, 9, out->worker, sizeof out->worker);
    sked_sqlite_col_fixed(q, 10, out->lease_owner, sizeof out->lease_owner);
    out->lease_expires_at = sked_sqlite_col_time(q, 11);
    out->dispatched_at = sked_sqlite_col_time(q, 12);
    out->started_at = sked_sqlite_col_time(q, 13);
    out->finished_at = sked_sqlite_col_time(q, 14);
    out->lag_us = sked_sqlite_col_time(q, 15);
    out->exit_code = sqlite3_column_type(q, 16) == SQLITE_NULL
                         ? SKED_NO_CODE
                         : sqlite3_column_int(q, 16);
    out->http_status = sqlite3_column_int(q, 17); /* NULL reads as 0 */
    int rc = sked_sqlite_col_dup(q, 18, &out->error, "a run", err);
    if (rc == 0)
        rc = sked_sqlite_col_dup(q, 19, &out->output, "a run", err);
    out->marked_at = sked_sqlite_col_time(q, 20);
    if (rc != 0)
        sked_run_rec_deinit(out);
    return rc;
}

static void bind_code(sqlite3_stmt *q, int i, int32_t v, int32_t none)
{
    if (v == none)
        sqlite3_bind_null(q, i);
    else
        sqlite3_bind_int(q, i, v);
}

/* The lease columns at i (owner) and i+1 (expiry): no owner, no lease. */
static void bind_lease(sqlite3_stmt *q, int i, const sked_run_rec *r)
{
    sked_sqlite_bind_fixed(q, i, r->lease_owner, sizeof r->lease_owner);
    if (strnlen(r->lease_owner, sizeof r->lease_owner) == 0)
        sqlite3_bind_null(q, i + 1);
    else
        sked_sqlite_bind_time(q, i + 1, r->lease_expires_at);
}

void sked_sqlite_runbuf_free(sked_sqlite_runbuf *b)
{
    for (size_t i = 0; i < b->n; i++) {
        sked_run_rec_deinit(&b->runs[i]);
        if (b->specs != NULL)
            free(b->specs[i]);
    }
    free(b->runs);
    free(b->specs);
    memset(b, 0, sizeof *b);
}

static int runbuf_grow(sked_sqlite_runbuf *b, int with_spec, sked_err *err)
{
    if (b->n < b->cap)
        return 0;
    size_t ncap = b->cap ? 2 * b->cap : 64;
    sked_run_rec *runs = realloc(b->runs, ncap * sizeof *runs);
    if (runs == NULL)
        goto nomem;
    b->runs = runs;
    if (with_spec) {
        char **specs = realloc(b->specs, ncap * sizeof *specs);
        if (specs == NULL)
            goto nomem;
        b->specs = specs;
    }
    b->cap = ncap;
    return 0;
nomem:
    return sked_err_set(err, SKED_ENOMEM, NULL, 0,
                        "out of memory reading runs");
}

int sked_sqlite_collect_runs(sked_sqlite_conn *c, sqlite3_stmt *q,
                             int with_spec, size_t max,
                             sked_sqlite_runbuf *b, int *more,
                             sked_err *err)
{
    size_t got = 0;
    int rc, src;
    while ((src = sqlite3_step(q)) == SQLITE_ROW) {
        if (got == max) {
            *more = 1;
            return 0;
        }
        if ((rc = runbuf_grow(b, with_spec, err)) != 0)
            return rc;
        if ((rc = read_run(q, &b->runs[b->n], err)) != 0)
            return rc;
        if (with_spec &&
            (rc = sked_sqlite_col_dup(q, SKED_SQLITE_RUN_NCOLS,
                                      &b->specs[b->n], "a spec", err)) != 0) {
            sked_run_rec_deinit(&b->runs[b->n]);
            return rc;
        }
        b->n++;
        got++;
    }
    if (src != SQLITE_DONE)
        return sked_sqlite_fail(c->db, src, err, "reading runs");
    return 0;
}

/* ---- run_update --------------------------------------------------------- */

typedef struct update_job {
    const sked_run_change *ch;
    size_t n;
    int *results;                     /* out: n results */
} update_job;

/* Nothing was updated: fenced, or no such run? */
static int why_not(sked_sqlite_conn *c, const char *id, int *result,
                   sked_err *err)
{
    sqlite3_stmt *q;
    int rc = sked_sqlite_stmt(c, SKED_SQLITE_RUN_EXISTS, &q, err);
    if (rc != 0)
        return rc;
    sked_sqlite_bind_text(q, 1, id);
    int src = sqlite3_step(q);
    sqlite3_reset(q);
    if (src == SQLITE_ROW)
        *result = SKED_EPRECOND;
    else if (src == SQLITE_DONE)
        *result = SKED_ENOENT;
    else
        return sked_sqlite_fail(c->db, src, err, "run update");
    return 0;
}

static int update_fn(sked_sqlite_conn *c, void *arg, sked_err *err)
{
    update_job *a = arg;
    sqlite3_stmt *q;
    int rc = sked_sqlite_stmt(c, SKED_SQLITE_RUN_UPDATE, &q, err);
    if (rc != 0)
        return rc;
    for (size_t i = 0; i < a->n; i++) {
        const sked_run_rec *r = a->ch[i].rec;
        char id[SKED_ID_LEN + 1];
        snprintf(id, sizeof id, "%.*s", (int)SKED_ID_LEN, r->id);
        sked_sqlite_bind_text(q, 1, id);
        sqlite3_bind_int64(q, 2, r->due_at);
        sqlite3_bind_int(q, 3, (int)r->status);
        sked_sqlite_bind_fixed(q, 4, r->reason, sizeof r->reason);
        sqlite3_bind_int(q, 5, r->attempt);
        sked_sqlite_bind_fixed(q, 6, r->worker, sizeof r->worker);
        bind_lease(q, 7, r);
        sked_sqlite_bind_time(q, 9, r->dispatched_at);
        sked_sqlite_bind_time(q, 10, r->started_at);
        sked_sqlite_bind_time(q, 11, r->finished_at);
        sked_sqlite_bind_time(q, 12, r->lag_us);
        bind_code(q, 13, r->exit_code, SKED_NO_CODE);
        bind_code(q, 14, r->http_status, 0);
        sked_sqlite_bind_text(q, 15, r->error);
        sked_sqlite_bind_text(q, 16, r->output);
        sqlite3_bind_int(q, 17, a->ch[i].attempt);
        sqlite3_bind_int64(q, 18, (sqlite3_int64)a->ch[i].from);
        sked_sqlite_bind_text(q, 19, a->ch[i].owner);
        if (a->ch[i].dispatched_fence != 0)
            sqlite3_bind_int64(q, 20, a->ch[i].dispatched_fence);
        else
            sqlite3_bind_null(q, 20);
        sked_sqlite_bind_time(q, 21, sked_run_marked_at(r));
        int src = sqlite3_step(q);
        sqlite3_reset(q);
        if (src != SQLITE_DONE)
            return sked_sqlite_fail(c->db, src, err, "run update");
        a->results[i] = 0;
        if (sqlite3_changes(c->db) == 0 &&
            (rc = why_not(c, id, &a->results[i], err)) != 0)
            return rc;
    }
    return 0;
}

int sked_sqlite_run_update(sked_store *st, sked_run_change *changes, size_t n,
                           sked_err *err)
{
    int rc;
    update_job a = {.ch = changes, .n = n};
    if ((a.results = calloc(n, sizeof *a.results)) == NULL)
        return sked_err_set(err, SKED_ENOMEM, NULL, 0, "out of memory");
    int may_lose = 1;
    for (size_t i = 0; i < n && may_lose; i++)
        may_lose = changes[i].may_lose;
    rc = sked_sqlite_write_lazy(S(st), update_fn, &a, may_lose, err);
    for (size_t i = 0; rc == 0 && i < n; i++)
        changes[i].result = a.results[i];
    free(a.results);
    return rc;
}

/* ---- sweep, and the runs a dead scheduler may have left unpublished ---- */

/* Runs of statement slot, which binds (owner if not NULL, at, limit + 1,
 * then marked_before with the owner), into out's run fields. */
static int sweep_read(sked_store *st, int slot, const char *owner, sked_walltime at,
                      sked_walltime marked_before, int limit, sked_claim *out,
                      sked_err *err)
{
    int rc;
    sked_sqlite_conn *c;
    sqlite3_stmt *q;
    sked_sqlite_runbuf b = {0};
    int more = 0, k = 1;
    if ((rc = sked_sqlite_reader_get(S(st), &c, err)) != 0)
        return rc;
    if ((rc = sked_sqlite_stmt(c, slot, &q, err)) == 0) {
        if (owner != NULL)
            sked_sqlite_bind_text(q, k++, owner);
        sqlite3_bind_int64(q, k++, at);
        sqlite3_bind_int(q, k++, limit + 1);
        if (owner != NULL)
            sqlite3_bind_int64(q, k, marked_before);
        rc = sked_sqlite_collect_runs(c, q, 1, (size_t)limit, &b, &more, err);
        sqlite3_reset(q);
    }
    sked_sqlite_reader_put(S(st), c);
    if (rc != 0) {
        sked_sqlite_runbuf_free(&b);
        return rc;
    }
    out->runs = b.runs;
    out->specs = b.specs;
    out->nruns = b.n;
    out->more = more;
    return 0;
}

int sked_sqlite_sweep_expired(sked_store *st, sked_walltime now, int limit,
                              sked_claim *out, sked_err *err)
{
    return sweep_read(st, SKED_SQLITE_SWEEP, NULL, now, 0, limit, out, err);
}

int sked_sqlite_runs_in_doubt(sked_store *st, const char *owner, sked_walltime since,
                              sked_walltime marked_before, int limit, sked_claim *out,
                              sked_err *err)
{
    return sweep_read(st, SKED_SQLITE_RUNS_IN_DOUBT, owner, since, marked_before, limit, out,
                      err);
}

/* ---- run_insert --------------------------------------------------------- */

static int insert_fn(sked_sqlite_conn *c, void *arg, sked_err *err)
{
    const sked_run_rec *r = arg;
    sqlite3_stmt *q;
    int rc = sked_sqlite_stmt(c, SKED_SQLITE_TASK_EXISTS, &q, err);
    if (rc != 0)
        return rc;
    sked_sqlite_bind_text(q, 1, r->ns);
    sked_sqlite_bind_text(q, 2, r->task_id);
    int src = sqlite3_step(q);
    sqlite3_reset(q);
    if (src == SQLITE_DONE)
        return sked_err_set(err, SKED_ENOENT, "task_id", 0, "no task %s",
                            r->task_id);
    if (src != SQLITE_ROW)
        return sked_sqlite_fail(c->db, src, err, "run insert");

    if ((rc = sked_sqlite_stmt(c, SKED_SQLITE_RUN_INSERT, &q, err)) != 0)
        return rc;
    sked_sqlite_bind_text(q, 1, r->id);
    sked_sqlite_bind_text(q, 2, r->task_id);
    sked_sqlite_bind_text(q, 3, r->ns);
    sqlite3_bind_int64(q, 4, r->scheduled_at);
    sqlite3_bind_int64(q, 5, r->due_at);
    sqlite3_bind_int(q, 6, (int)r->status);
    sked_sqlite_bind_fixed(q, 7, r->reason, sizeof r->reason);
    sqlite3_bind_int(q, 8, r->attempt);
    sked_sqlite_bind_text(q, 9, r->queue);
    sked_sqlite_bind_fixed(q, 10, r->worker, sizeof r->worker);
    bind_lease(q, 11, r);
    sked_sqlite_bind_time(q, 13, r->dispatched_at);
    sked_sqlite_bind_time(q, 14, r->started_at);
    sked_sqlite_bind_time(q, 15, r->finished_at);
    sked_sqlite_bind_time(q, 16, r->lag_us);
    bind_code(q, 17, r->exit_code, SKED_NO_CODE);
    bind_code(q, 18, r->http_status, 0);
    sked_sqlite_bind_text(q, 19, r->error);
    sked_sqlite_bind_text(q, 20, r->output);
    sked_sqlite_bind_time(q, 21, sked_run_marked_at(r));
    src = sqlite3_step(q);
    sqlite3_reset(q);
    if (src == SQLITE_CONSTRAINT_UNIQUE)
        return sked_err_set(err, SKED_ECONFLICT, "scheduled_at", 0,
                            "task %s already has a run at that time",
                            r->task_id);
    if (src == SQLITE_CONSTRAINT_PRIMARYKEY)
        return sked_err_set(err, SKED_ECONFLICT, "id", 0,
                            "run id %s already exists", r->id);
    if (src != SQLITE_DONE)
        return sked_sqlite_fail(c->db, src, err, "run insert");

    if ((rc = sked_sqlite_stmt(c, SKED_SQLITE_TASK_COUNT_RUN, &q, err)) != 0)
        return rc;
    sked_sqlite_bind_text(q, 1, r->task_id);
    src = sqlite3_step(q);
    sqlite3_reset(q);
    if (src != SQLITE_DONE)
        return sked_sqlite_fail(c->db, src, err, "run insert");
    return 0;
}

int sked_sqlite_run_insert(sked_store *st, const sked_run_rec *r,
                           sked_err *err)
{
    return sked_sqlite_write(S(st), insert_fn, (void *)r, err);
}

/* ---- run_get, run_list -------------------------------------------------- */

int sked_sqlite_run_get(sked_store *st, const char *ns, const char *id,
                        sked_run_rec *out, sked_err *err)
{
    if (id == NULL)
        return sked_err_set(err, SKED_EINVAL, NULL, 0, "run get needs an id");
    sked_sqlite_conn *c;
    sqlite3_stmt *q;
    int rc = sked_sqlite_reader_get(S(st), &c, err);
    if (rc != 0)
        return rc;
    if ((rc = sked_sqlite_stmt(c, SKED_SQLITE_RUN_GET, &q, err)) == 0) {
        sked_sqlite_bind_text(q, 1, ns);
        sked_sqlite_bind_text(q, 2, id);
        int src = sqlite3_step(q);
        if (src == SQLITE_ROW)
            rc = read_run(q, out, err);
        else if (src == SQLITE_DONE)
            rc = sked_err_set(err, SKED_ENOENT, NULL, 0, "no run %s", id);
        else
            rc = sked_sqlite_fail(c->db, src, err, "run get");
        sqlite3_reset(q);
    }
    sked_sqlite_reader_put(S(st), c);
    return rc;
}

/* One statement, stepped once per id, on one reader connection: the
 * scheduler's read-back of the runs it is about to release. */
int sked_sqlite_run_get_many(sked_store *st, const char *const *ids, size_t n,
                             sked_run_rec *out, int *found, char **specs, sked_err *err)
{
    sked_sqlite_conn *c;
    sqlite3_stmt *q;
    int rc = sked_sqlite_reader_get(S(st), &c, err);
    if (rc != 0)
        return rc;
    if ((rc = sked_sqlite_stmt(c, SKED_SQLITE_RUN_GET_SPEC, &q, err)) == 0) {
        for (size_t i = 0; i < n && rc == 0; i++) {
            sked_sqlite_bind_text(q, 1, ids[i]);
            int src = sqlite3_step(q);
            if (src == SQLITE_ROW) {
                rc = read_run(q, &out[i], err);
                if (rc == 0 && specs &&
                    (rc = sked_sqlite_col_dup(q, SKED_SQLITE_RUN_NCOLS, &specs[i], "a spec",
                                              err)) != 0)
                    sked_run_rec_deinit(&out[i]);
                found[i] = rc == 0;
            } else if (src != SQLITE_DONE) {
                rc = sked_sqlite_fail(c->db, src, err, "run get");
            }
            sqlite3_reset(q);
        }
    }
    sked_sqlite_reader_put(S(st), c);
    for (size_t i = 0; i < n && rc != 0; i++) /* all or nothing */
        if (found[i]) {
            sked_run_rec_deinit(&out[i]);
            found[i] = 0;
            if (specs) {
                free(specs[i]);
                specs[i] = NULL;
            }
        }
    return rc;
}

int sked_sqlite_tasks_active(sked_store *st, const char *const *task_ids,
                             size_t n, int *counts, sked_err *err)
{
    sked_sqlite_conn *c;
    sqlite3_stmt *q;
    int rc = sked_sqlite_reader_get(S(st), &c, err);
    if (rc != 0)
        return rc;
    if ((rc = sked_sqlite_stmt(c, SKED_SQLITE_RUNS_ACTIVE, &q, err)) == 0) {
        for (size_t i = 0; i < n && rc == 0; i++) {
            sked_sqlite_bind_text(q, 1, task_ids[i]);
            int src = sqlite3_step(q);
            if (src == SQLITE_ROW)
                counts[i] = sqlite3_column_int(q, 0);
            else
                rc = sked_sqlite_fail(c->db, src, err, "tasks active");
            sqlite3_reset(q);
        }
    }
    sked_sqlite_reader_put(S(st), c);
    return rc;
}

/* Optional filters of a run listing, one bit each. */
enum {
    F_TASK = 1,
    F_STATUS = 2,
    F_SINCE = 4,
    F_UNTIL = 8,
    F_BEFORE = 16,
};

/* With a task, `+namespace` keeps the planner on runs_task_newest: the
 * namespace's index would walk every run of the namespace. */
static int list_stmt(sked_sqlite_conn *c, unsigned mask, sqlite3_stmt **out,
                     sked_err *err)
{
    char sql[1024];
    snprintf(sql, sizeof sql,
             "SELECT " SKED_SQLITE_RUN_COLS " FROM runs WHERE %s = ?1"
             "%s%s%s%s%s ORDER BY id DESC LIMIT ?7",
             mask & F_TASK ? "+namespace" : "namespace",
             mask & F_TASK ? " AND task_id = ?2" : "",
             mask & F_STATUS ? " AND ((1 << status) & ?3) != 0" : "",
             mask & F_SINCE ? " AND scheduled_at >= ?4" : "",
             mask & F_UNTIL ? " AND scheduled_at < ?5" : "",
             mask & F_BEFORE ? " AND id < ?6" : "");
    int rc = sked_sqlite_prepare_cached(c, &c->run_list[mask], sql, err);
    if (rc != 0)
        return rc;
    sqlite3_clear_bindings(c->run_list[mask]);
    *out = c->run_list[mask];
    return 0;
}

int sked_sqlite_run_list(sked_store *st, const sked_run_filter *f,
                         sked_run_page *out, sked_err *err)
{
    memset(out, 0, sizeof *out);
    int rc0 = f ? sked_sqlite_check_page(f->ns, f->limit, err)
                : sked_sqlite_check_page(NULL, 0, err);
    if (rc0 != 0)
        return rc0;
    unsigned mask = (sked_sqlite_given(f->task_id) ? F_TASK : 0) |
                    (f->status_mask != 0 ? F_STATUS : 0) |
                    (f->since != SKED_TIME_NONE ? F_SINCE : 0) |
                    (f->until != SKED_TIME_NONE ? F_UNTIL : 0) |
                    (sked_sqlite_given(f->before_id) ? F_BEFORE : 0);
    sked_sqlite_conn *c;
    sqlite3_stmt *q = NULL;
    sked_sqlite_runbuf b = {0};
    int rc = sked_sqlite_reader_get(S(st), &c, err);
    if (rc != 0)
        return rc;
    if ((rc = list_stmt(c, mask, &q, err)) == 0) {
        sked_sqlite_bind_text(q, 1, f->ns);
        sked_sqlite_bind_text(q, 2, f->task_id);
        sqlite3_bind_int64(q, 3, (sqlite3_int64)f->status_mask);
        sqlite3_bind_int64(q, 4, f->since);
        sqlite3_bind_int64(q, 5, f->until);
        sked_sqlite_bind_text(q, 6, f->before_id);
        sqlite3_bind_int(q, 7, f->limit + 1);
        rc = sked_sqlite_collect_runs(c, q, 0, (size_t)f->limit, &b,
                                      &out->more, err);
        sqlite3_reset(q);
    }
    sked_sqlite_reader_put(S(st), c);
    if (rc != 0) {
        sked_sqlite_runbuf_free(&b);
        out->more = 0;
        return rc;
    }
    out->recs = b.runs;
    out->n = b.n;
    return 0;
}

/* ---- retention ---------------------------------------------------------- */

/* One walk over the runs, task by task (by task_id descending, the
 * unique index (task_id, scheduled_at) read backwards), each task's runs
 * newest occurrence first, so the keep rule is a counter.  The walk starts
 * where the previous call stopped and stops after PRUNE_BUDGET rows (at a
 * task boundary) or `limit` victims; at the end of the table the cursor
 * goes back to the start.  Victims are collected first and deleted after
 * the walk's statement is reset.  If the transaction is later rolled back
 * the cursor has still moved on: the skipped tasks wait for the next
 * pass. */
typedef struct prune_job {
    sked_sqlite_store *s;
    sked_walltime older_than;
    int keep, limit;
    sqlite3_int64 *victims;           /* limit rowids */
    int64_t deleted;                  /* out */
} prune_job;

static int doomed(const prune_job *a, sqlite3_stmt *q, int rank)
{
    if (a->keep > 0 && rank > a->keep)
        return 1;
    if (a->older_than == SKED_TIME_NONE)
        return 0;
    sked_walltime fin = sked_sqlite_col_time(q, 3);
    return fin != SKED_TIME_NONE && fin < a->older_than;
}

static int prune_fn(sked_sqlite_conn *c, void *arg, sked_err *err)
{
    prune_job *a = arg;
    char *cursor = sked_sqlite_prune_cursor(a->s);
    char task[SKED_SQLITE_CURSOR_MAX] = "";
    char next[SKED_SQLITE_CURSOR_MAX] = "";
    sqlite3_stmt *q;
    int from = cursor[0] != '\0';
    int rc = sked_sqlite_stmt(
        c, from ? SKED_SQLITE_PRUNE_WALK_FROM : SKED_SQLITE_PRUNE_WALK, &q,
        err);
    if (rc != 0)
        return rc;
    if (from)
        sked_sqlite_bind_text(q, 1, cursor);
    size_t n = 0, seen = 0;
    int rank = 0, src;
    while ((src = sqlite3_step(q)) == SQLITE_ROW) {
        const char *t = (const char *)sqlite3_column_text(q, 1);
        if (t == NULL)
            t = "";
        if (strcmp(t, task) != 0) {
            if (seen >= PRUNE_BUDGET) {
                snprintf(next, sizeof next, "%s", t);
                break;
            }
            snprintf(task, sizeof task, "%s", t);
            rank = 0;
        }
        seen++;
        if (sqlite3_column_int(q, 2) < SKED_RUN_SUCCEEDED)
            continue;
        rank++;
        if (!doomed(a, q, rank))
            continue;
        a->victims[n++] = sqlite3_column_int64(q, 0);
        if (n == (size_t)a->limit) {
            /* Stopped inside this task: look at it again next time. */
            snprintf(next, sizeof next, "%s", task);
            break;
        }
    }
    sqlite3_reset(q);
    if (src != SQLITE_ROW && src != SQLITE_DONE)
        return sked_sqlite_fail(c->db, src, err, "run prune");

    if ((rc = sked_sqlite_stmt(c, SKED_SQLITE_RUN_DELETE, &q, err)) != 0)
        return rc;
    for (size_t i = 0; i < n; i++) {
        sqlite3_bind_int64(q, 1, a->victims[i]);
        src = sqlite3_step(q);
        sqlite3_reset(q);
        if (src != SQLITE_DONE)
            return sked_sqlite_fail(c->db, src, err, "run prune");
    }
    memcpy(cursor, next, sizeof next);
    a->deleted = (int64_t)n;
    return 0;
}

int sked_sqlite_run_prune(sked_store *st, sked_walltime older_than,
                          int keep_per_task, int limit, int64_t *deleted,
                          sked_err *err)
{
    if (older_than == SKED_TIME_NONE && keep_per_task <= 0)
        return 0;
    prune_job a = {.s = S(st), .older_than = older_than,
                   .keep = keep_per_task, .limit = limit};
    if ((a.victims = malloc((size_t)limit * sizeof *a.victims)) == NULL)
        return sked_err_set(err, SKED_ENOMEM, NULL, 0, "out of memory");
    /* lazy: a prune lost in a crash of the machine is done again */
    int rc = sked_sqlite_write_lazy(S(st), prune_fn, &a, 1, err);
    free(a.victims);
    if (rc == 0)
        *deleted = a.deleted;
    return rc;
}
