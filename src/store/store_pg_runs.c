/*
 * store_pg_runs.c - the run methods of the PostgreSQL store other than the
 * claim, the sweep and retention: transitions (run_update), manual runs,
 * reads, listings, and the workers' heartbeats.  Also the helpers that
 * turn run rows into sked_run_rec, shared with store_pg_claim.c.
 *
 * Same shape as store_pg_tasks.c: transaction functions that keep their
 * results in their own struct (one may run twice).  A batch of changes
 * is one UPDATE ... FROM unnest(arrays) that also reports, change by
 * change, whether it applied, was fenced or found no run.  Not here: the
 * claim and the sweep (store_pg_claim.c), retention (store_pg_prune.c),
 * deciding what a transition should be (sched/).
 *
 * Storage conventions (store.h <-> SQL), as in the SQLite store: times
 * SKED_TIME_NONE <-> NULL, exit_code SKED_NO_CODE <-> NULL, http_status
 * 0 <-> NULL, lag_us SKED_TIME_NONE <-> NULL, empty reason/worker/
 * lease_owner <-> NULL.  A lease without an owner is no lease: its expiry
 * is stored as NULL too.
 */
#include "store/store_pg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S(st) ((sked_pg_store *)(st))

/* The 21 arrays of RUN_UPDATE, in its order. */
enum {
    U_ID, U_DUE, U_STATUS, U_REASON, U_ATTEMPT, U_WORKER, U_OWNER, U_LEASE,
    U_DISPATCHED, U_STARTED, U_FINISHED, U_LAG, U_EXIT, U_HTTP, U_ERROR,
    U_OUTPUT, U_FENCE, U_MASK, U_FENCE_OWNER, U_FENCE_DISPATCHED, U_MARKED,
    UNARR
};

const char *sked_pg_run_sql(int slot)
{
    switch (slot) {
    /* Every change of the batch (ids distinct), fenced on attempt and
     * status (and lease owner, when given); then one row per change:
     * applied?  does the run exist? */
    case SKED_PG_RUN_UPDATE:
        return "WITH u AS (SELECT * FROM unnest($1::text[], $2::bigint[], "
               "$3::smallint[], $4::text[], $5::integer[], $6::text[], "
               "$7::text[], $8::bigint[], $9::bigint[], $10::bigint[], "
               "$11::bigint[], $12::bigint[], $13::integer[], "
               "$14::integer[], $15::text[], $16::text[], $17::integer[], "
               "$18::bigint[], $19::text[], $20::bigint[], $21::bigint[]) "
               "WITH ORDINALITY "
               "AS u(id, due_at, status, reason, attempt, worker, "
               "lease_owner, lease_expires_at, dispatched_at, started_at, "
               "finished_at, lag_us, exit_code, http_status, error, output, "
               "fence, mask, fence_owner, fence_dispatched, marked_at, ord)), "
               "upd AS (UPDATE runs AS r SET due_at = u.due_at, "
               "status = u.status, reason = u.reason, attempt = u.attempt, "
               "worker = u.worker, lease_owner = u.lease_owner, "
               "lease_expires_at = u.lease_expires_at, "
               "dispatched_at = u.dispatched_at, started_at = u.started_at, "
               "finished_at = u.finished_at, lag_us = u.lag_us, "
               "exit_code = u.exit_code, http_status = u.http_status, "
               "error = u.error, output = u.output, marked_at = u.marked_at "
               "FROM u "
               "WHERE r.id = u.id AND r.attempt = u.fence "
               "AND ((1::bigint << r.status) & u.mask) <> 0 "
               "AND (u.fence_owner IS NULL "
               "OR r.lease_owner = u.fence_owner) "
               "AND (u.fence_dispatched IS NULL "
               "OR r.dispatched_at = u.fence_dispatched) "
               "RETURNING u.ord) "
               "SELECT upd.ord IS NOT NULL, x.id IS NOT NULL FROM u "
               "LEFT JOIN upd ON upd.ord = u.ord "
               "LEFT JOIN runs AS x ON x.id = u.id ORDER BY u.ord";
    /* The runs of a batch, locked in id order before RUN_UPDATE changes
     * them (see lock_runs). */
    case SKED_PG_RUN_LOCK:
        return "SELECT 1 FROM runs WHERE id = ANY($1::text[]) ORDER BY id "
               "FOR NO KEY UPDATE";
    /* Counted in its task's run_count; the task row is locked first, as a
     * claim does, so the two never wait on each other in opposite order. */
    case SKED_PG_RUN_INSERT:
        return "WITH t AS (UPDATE tasks SET run_count = run_count + 1 "
               "WHERE namespace = $3::text AND id = $2::text RETURNING id) "
               "INSERT INTO runs (" SKED_PG_RUN_COLS ") SELECT $1::text, "
               "t.id, $3, $4::bigint, $5::bigint, $6::smallint, $7::text, "
               "$8::integer, $9::text, $10::text, $11::text, $12::bigint, "
               "$13::bigint, $14::bigint, $15::bigint, $16::bigint, "
               "$17::integer, $18::integer, $19::text, $20::text, "
               "$21::bigint FROM t "
               "RETURNING 1";
    case SKED_PG_RUN_GET:
        return "SELECT " SKED_PG_RUN_COLS " FROM runs "
               "WHERE id = $2::text AND ($1::text IS NULL OR namespace = $1)";
    case SKED_PG_WORKER_UPSERT:
        return "INSERT INTO workers (id, host, queues, slots, busy, "
               "last_heartbeat, version) VALUES ($1::text, $2::text, "
               "$3::text, $4::integer, $5::integer, $6::bigint, $7::text) "
               "ON CONFLICT (id) DO UPDATE SET host = excluded.host, "
               "queues = excluded.queues, slots = excluded.slots, "
               "busy = excluded.busy, "
               "last_heartbeat = excluded.last_heartbeat, "
               "version = excluded.version";
    case SKED_PG_WORKER_LIST:
        return "SELECT id, host, queues, slots, busy, last_heartbeat, "
               "version FROM workers WHERE last_heartbeat > $1::bigint "
               "ORDER BY id";
    }
    return NULL;
}

/* ---- reading rows ------------------------------------------------------ */

int sked_pg_read_run(const PGresult *r, int row, sked_run_rec *out,
                     sked_err *err)
{
    memset(out, 0, sizeof *out);
    sked_pg_fixed(r, row, 0, out->id, sizeof out->id);
    sked_pg_fixed(r, row, 1, out->task_id, sizeof out->task_id);
    sked_pg_fixed(r, row, 2, out->ns, sizeof out->ns);
    out->scheduled_at = sked_pg_time(r, row, 3);
    out->due_at = sked_pg_time(r, row, 4);
    out->status = (sked_run_status)sked_pg_i64(r, row, 5);
    sked_pg_fixed(r, row, 6, out->reason, sizeof out->reason);
    out->attempt = (int)sked_pg_i64(r, row, 7);
    sked_pg_fixed(r, row, 8, out->queue, sizeof out->queue);
    sked_pg_fixed(r, row, 9, out->worker, sizeof out->worker);
    sked_pg_fixed(r, row, 10, out->lease_owner, sizeof out->lease_owner);
    out->lease_expires_at = sked_pg_time(r, row, 11);
    out->dispatched_at = sked_pg_time(r, row, 12);
    out->started_at = sked_pg_time(r, row, 13);
    out->finished_at = sked_pg_time(r, row, 14);
    out->lag_us = sked_pg_time(r, row, 15);
    out->exit_code = sked_pg_null(r, row, 16)
                         ? SKED_NO_CODE
                         : (int32_t)sked_pg_i64(r, row, 16);
    out->http_status = (int32_t)sked_pg_i64(r, row, 17); /* NULL reads 0 */
    int rc = sked_pg_dup(r, row, 18, &out->error, "a run", err);
    if (rc == 0)
        rc = sked_pg_dup(r, row, 19, &out->output, "a run", err);
    out->marked_at = sked_pg_time(r, row, 20);
    if (rc != 0)
        sked_run_rec_deinit(out);
    return rc;
}

void sked_pg_runbuf_free(sked_pg_runbuf *b)
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

int sked_pg_collect_runs(const PGresult *res, int with_spec, size_t max,
                         sked_pg_runbuf *b, int *more, sked_err *err)
{
    size_t rows = (size_t)PQntuples(res), n = rows;
    if (n > max) {
        n = max;
        *more = 1;
    }
    if (n == 0)
        return 0;
    sked_run_rec *runs = realloc(b->runs, (b->n + n) * sizeof *runs);
    if (runs == NULL)
        goto nomem;
    b->runs = runs;
    if (with_spec) {
        char **specs = realloc(b->specs, (b->n + n) * sizeof *specs);
        if (specs == NULL)
            goto nomem;
        b->specs = specs;
    }
    for (size_t i = 0; i < n; i++) {
        int rc = sked_pg_read_run(res, (int)i, &b->runs[b->n], err);
        if (rc != 0)
            return rc;
        if (with_spec &&
            (rc = sked_pg_dup(res, (int)i, SKED_PG_RUN_NCOLS,
                              &b->specs[b->n], "a spec", err)) != 0) {
            sked_run_rec_deinit(&b->runs[b->n]);
            return rc;
        }
        b->n++;
    }
    return 0;
nomem:
    return sked_err_set(err, SKED_ENOMEM, NULL, 0,
                        "out of memory reading runs");
}

/* ---- run_update -------------------------------------------------------- */

/* A batch may change one run twice (in order: the second sees the first).
 * One UPDATE changes a row once, so the batch goes as chunks in which
 * every run appears once: chunk k ends before the first change whose run
 * is already in it. */
typedef struct update_job {
    const sked_run_change *ch;
    size_t n;
    size_t *ends;                       /* end of each chunk */
    size_t nchunks;
    int *results;                       /* out: n results */
} update_job;

typedef struct id_at {
    const char *id;
    size_t i;
} id_at;

static int cmp_id_at(const void *x, const void *y)
{
    const id_at *a = x, *b = y;
    int c = strncmp(a->id, b->id, SKED_ID_LEN + 1);
    return c != 0 ? c : (a->i > b->i) - (a->i < b->i);
}

/* Split into chunks (see update_job); SKED_ENOMEM. */
static int plan_chunks(update_job *a, sked_err *err)
{
    size_t n = a->n;
    id_at *order = malloc(n * sizeof *order);
    size_t *prev = malloc(n * sizeof *prev);
    a->ends = malloc(n * sizeof *a->ends);
    if (order == NULL || prev == NULL || a->ends == NULL) {
        free(order);
        free(prev);
        return sked_err_set(err, SKED_ENOMEM, NULL, 0, "out of memory");
    }
    for (size_t i = 0; i < n; i++) {
        order[i] = (id_at){.id = a->ch[i].rec->id, .i = i};
        prev[i] = SIZE_MAX;
    }
    /* Equal ids end up side by side, in batch order. */
    qsort(order, n, sizeof *order, cmp_id_at);
    for (size_t k = 1; k < n; k++)
        if (strncmp(order[k - 1].id, order[k].id, SKED_ID_LEN + 1) == 0)
            prev[order[k].i] = order[k - 1].i;
    size_t start = 0;
    a->nchunks = 0;
    for (size_t i = 0; i < n; i++) {
        if (prev[i] != SIZE_MAX && prev[i] >= start) {
            a->ends[a->nchunks++] = i;
            start = i;
        }
    }
    a->ends[a->nchunks++] = n;
    free(order);
    free(prev);
    return 0;
}

static void bind_code(sked_pg_arr *a, int32_t v, int32_t none)
{
    if (v == none)
        sked_pg_arr_null(a);
    else
        sked_pg_arr_i64(a, v);
}

/* Changes [from, to) as the arrays of RUN_UPDATE, into p. */
static int chunk_params(const update_job *a, size_t from, size_t to,
                        sked_pg_params *p, sked_err *err)
{
    sked_pg_arr arr[UNARR];
    for (int k = 0; k < UNARR; k++)
        sked_pg_arr_begin(&arr[k]);
    for (size_t i = from; i < to; i++) {
        const sked_run_rec *r = a->ch[i].rec;
        int owned = strnlen(r->lease_owner, sizeof r->lease_owner) > 0;
        sked_pg_arr_fixed(&arr[U_ID], r->id, SKED_ID_LEN);
        sked_pg_arr_i64(&arr[U_DUE], r->due_at);
        sked_pg_arr_i64(&arr[U_STATUS], (int64_t)r->status);
        sked_pg_arr_fixed(&arr[U_REASON], r->reason, sizeof r->reason);
        sked_pg_arr_i64(&arr[U_ATTEMPT], r->attempt);
        sked_pg_arr_fixed(&arr[U_WORKER], r->worker, sizeof r->worker);
        sked_pg_arr_fixed(&arr[U_OWNER], r->lease_owner,
                          sizeof r->lease_owner);
        sked_pg_arr_time(&arr[U_LEASE],
                         owned ? r->lease_expires_at : SKED_TIME_NONE);
        sked_pg_arr_time(&arr[U_DISPATCHED], r->dispatched_at);
        sked_pg_arr_time(&arr[U_STARTED], r->started_at);
        sked_pg_arr_time(&arr[U_FINISHED], r->finished_at);
        sked_pg_arr_time(&arr[U_LAG], r->lag_us);
        bind_code(&arr[U_EXIT], r->exit_code, SKED_NO_CODE);
        bind_code(&arr[U_HTTP], r->http_status, 0);
        sked_pg_arr_text(&arr[U_ERROR], r->error);
        sked_pg_arr_text(&arr[U_OUTPUT], r->output);
        sked_pg_arr_i64(&arr[U_FENCE], a->ch[i].attempt);
        sked_pg_arr_i64(&arr[U_MASK], (int64_t)a->ch[i].from);
        sked_pg_arr_text(&arr[U_FENCE_OWNER], a->ch[i].owner);
        if (a->ch[i].dispatched_fence != 0)
            sked_pg_arr_i64(&arr[U_FENCE_DISPATCHED], a->ch[i].dispatched_fence);
        else
            sked_pg_arr_null(&arr[U_FENCE_DISPATCHED]);
        sked_pg_arr_time(&arr[U_MARKED], sked_run_marked_at(r));
    }
    int oom = 0;
    for (int k = 0; k < UNARR; k++) {
        char *lit = sked_pg_arr_end(&arr[k]);
        oom |= lit == NULL;
        sked_pg_p_own(p, lit);
    }
    if (oom)
        return sked_err_set(err, SKED_ENOMEM, NULL, 0,
                            "out of memory encoding %zu changes", to - from);
    return 0;
}

/* Lock the batch's runs in id order before changing them.  RUN_UPDATE
 * locks each row as its plan reaches it - in the batch's order, or the
 * table's - and two batches that share runs (every scheduler writes
 * events, and a run's `started` and `finished` may reach two of them)
 * then deadlocked: PostgreSQL broke each tie only after deadlock_timeout
 * (1 s), five times in one burst of 100,000 runs. */
static int lock_runs(sked_pg_tx *tx, const update_job *a, sked_err *err)
{
    if (a->n < 2)
        return 0;
    sked_pg_arr ids;
    sked_pg_arr_begin(&ids);
    for (size_t i = 0; i < a->n; i++)
        sked_pg_arr_fixed(&ids, a->ch[i].rec->id, SKED_ID_LEN);
    char *lit = sked_pg_arr_end(&ids);
    if (lit == NULL)
        return sked_err_set(err, SKED_ENOMEM, NULL, 0,
                            "out of memory encoding %zu run ids", a->n);
    sked_pg_params p = {0};
    sked_pg_p_own(&p, lit);
    PGresult *res = NULL;
    int rc = sked_pg_exec(tx->c, SKED_PG_RUN_LOCK, &p, &res, "run lock", err);
    sked_pg_params_free(&p);
    PQclear(res);
    return rc;
}

static int update_fn(sked_pg_tx *tx, void *arg, sked_err *err)
{
    update_job *a = arg;
    size_t from = 0;
    int rc = lock_runs(tx, a, err);
    if (rc != 0)
        return rc;
    for (size_t k = 0; k < a->nchunks; k++) {
        size_t to = a->ends[k];
        sked_pg_params p = {0};
        PGresult *res = NULL;
        rc = chunk_params(a, from, to, &p, err);
        if (rc == 0)
            rc = sked_pg_exec(tx->c, SKED_PG_RUN_UPDATE, &p, &res,
                              "run update", err);
        sked_pg_params_free(&p);
        if (rc == 0 && (size_t)PQntuples(res) != to - from)
            rc = sked_err_set(err, SKED_EINTERNAL, NULL, 0,
                              "postgres store: run update: %d results for "
                              "%zu changes",
                              PQntuples(res), to - from);
        for (size_t i = from; rc == 0 && i < to; i++) {
            int row = (int)(i - from);
            if (PQgetvalue(res, row, 0)[0] == 't')
                a->results[i] = 0;
            else if (PQgetvalue(res, row, 1)[0] == 't')
                a->results[i] = SKED_EPRECOND;
            else
                a->results[i] = SKED_ENOENT;
        }
        PQclear(res);
        if (rc != 0)
            return rc;
        from = to;
    }
    return 0;
}

int sked_pg_run_update(sked_store *st, sked_run_change *changes, size_t n,
                       sked_err *err)
{
    int rc;
    update_job a = {.ch = changes, .n = n};
    if ((a.results = calloc(n, sizeof *a.results)) == NULL)
        return sked_err_set(err, SKED_ENOMEM, NULL, 0, "out of memory");
    rc = plan_chunks(&a, err);
    if (rc == 0)
        rc = sked_pg_run(S(st), SKED_PG_WRITE, update_fn, &a, err);
    for (size_t i = 0; rc == 0 && i < n; i++)
        changes[i].result = a.results[i];
    free(a.results);
    free(a.ends);
    return rc;
}

/* ---- run_insert -------------------------------------------------------- */

static void p_code(sked_pg_params *p, int32_t v, int32_t none)
{
    if (v == none)
        sked_pg_p_null(p);
    else
        sked_pg_p_i64(p, v);
}

static int insert_fn(sked_pg_tx *tx, void *arg, sked_err *err)
{
    const sked_run_rec *r = arg;
    int owned = strnlen(r->lease_owner, sizeof r->lease_owner) > 0;
    sked_pg_params p = {0};
    PGresult *res;
    sked_pg_p_text(&p, r->id);
    sked_pg_p_text(&p, r->task_id);
    sked_pg_p_text(&p, r->ns);
    sked_pg_p_i64(&p, r->scheduled_at);
    sked_pg_p_i64(&p, r->due_at);
    sked_pg_p_i64(&p, (int64_t)r->status);
    sked_pg_p_fixed(&p, r->reason, sizeof r->reason);
    sked_pg_p_i64(&p, r->attempt);
    sked_pg_p_text(&p, r->queue);
    sked_pg_p_fixed(&p, r->worker, sizeof r->worker);
    sked_pg_p_fixed(&p, r->lease_owner, sizeof r->lease_owner);
    sked_pg_p_time(&p, owned ? r->lease_expires_at : SKED_TIME_NONE);
    sked_pg_p_time(&p, r->dispatched_at);
    sked_pg_p_time(&p, r->started_at);
    sked_pg_p_time(&p, r->finished_at);
    sked_pg_p_time(&p, r->lag_us);
    p_code(&p, r->exit_code, SKED_NO_CODE);
    p_code(&p, r->http_status, 0);
    sked_pg_p_text(&p, r->error);
    sked_pg_p_text(&p, r->output);
    sked_pg_p_time(&p, sked_run_marked_at(r));
    int rc = sked_pg_exec(tx->c, SKED_PG_RUN_INSERT, &p, &res, "run insert",
                          err);
    if (sked_pg_is_unique(res, "runs_task_scheduled_key"))
        rc = sked_err_set(err, SKED_ECONFLICT, "scheduled_at", 0,
                          "task %s already has a run at that time",
                          r->task_id);
    else if (sked_pg_is_unique(res, "runs_pkey"))
        rc = sked_err_set(err, SKED_ECONFLICT, "id", 0,
                          "run id %s already exists", r->id);
    else if (rc == 0 && PQntuples(res) == 0)
        rc = sked_err_set(err, SKED_ENOENT, "task_id", 0, "no task %s",
                          r->task_id);
    PQclear(res);
    if (rc == 0 && r->status == SKED_RUN_SCHEDULED)
        sked_pg_wake(tx, r->due_at);
    return rc;
}

int sked_pg_run_insert(sked_store *st, const sked_run_rec *r, sked_err *err)
{
    return sked_pg_run(S(st), SKED_PG_WRITE, insert_fn, (void *)r, err);
}

/* ---- run_get, run_list ------------------------------------------------- */

typedef struct get_job {
    const char *ns, *id;
    sked_run_rec *out;                  /* out, when found */
    int found;                          /* out */
} get_job;

static int get_fn(sked_pg_tx *tx, void *arg, sked_err *err)
{
    get_job *a = arg;
    sked_pg_params p = {0};
    PGresult *res;
    sked_pg_p_text(&p, a->ns);
    sked_pg_p_text(&p, a->id);
    int rc = sked_pg_exec(tx->c, SKED_PG_RUN_GET, &p, &res, "run get", err);
    a->found = rc == 0 && PQntuples(res) > 0;
    if (a->found && (rc = sked_pg_read_run(res, 0, a->out, err)) != 0)
        a->found = 0;
    PQclear(res);
    return rc;
}

int sked_pg_run_get(sked_store *st, const char *ns, const char *id,
                    sked_run_rec *out, sked_err *err)
{
    if (id == NULL)
        return sked_err_set(err, SKED_EINVAL, NULL, 0, "run get needs an id");
    get_job a = {.ns = ns, .id = id, .out = out};
    int rc = sked_pg_run(S(st), SKED_PG_READ, get_fn, &a, err);
    if (rc == 0 && !a.found)
        rc = sked_err_set(err, SKED_ENOENT, NULL, 0, "no run %s", id);
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

static int list_prepare(sked_pg_conn *c, unsigned mask, sked_err *err)
{
    static const Oid types[7] = {25, 25, 20, 20, 20, 25, 20};
    char sql[1024];
    snprintf(sql, sizeof sql,
             "SELECT " SKED_PG_RUN_COLS " FROM runs WHERE namespace = $1"
             "%s%s%s%s%s ORDER BY id DESC LIMIT $7",
             mask & F_TASK ? " AND task_id = $2" : "",
             mask & F_STATUS ? " AND ((1::bigint << status) & $3) <> 0" : "",
             mask & F_SINCE ? " AND scheduled_at >= $4" : "",
             mask & F_UNTIL ? " AND scheduled_at < $5" : "",
             mask & F_BEFORE ? " AND id < $6" : "");
    return sked_pg_prepare(c, SKED_PG_RUN_LIST_SLOT(mask), sql, 7, types, err);
}

typedef struct list_job {
    const sked_run_filter *f;
    unsigned mask;
    sked_pg_runbuf out;                 /* out */
    int more;                           /* out */
} list_job;

static int list_fn(sked_pg_tx *tx, void *arg, sked_err *err)
{
    list_job *a = arg;
    const sked_run_filter *f = a->f;
    sked_pg_runbuf_free(&a->out);
    a->more = 0;
    int rc = list_prepare(tx->c, a->mask, err);
    if (rc != 0)
        return rc;
    sked_pg_params p = {0};
    PGresult *res;
    sked_pg_p_text(&p, f->ns);
    sked_pg_p_text(&p, f->task_id);
    sked_pg_p_i64(&p, (int64_t)f->status_mask);
    sked_pg_p_time(&p, f->since);
    sked_pg_p_time(&p, f->until);
    sked_pg_p_text(&p, f->before_id);
    sked_pg_p_i64(&p, (int64_t)f->limit + 1);
    rc = sked_pg_exec(tx->c, SKED_PG_RUN_LIST_SLOT(a->mask), &p, &res,
                      "run list", err);
    if (rc == 0)
        rc = sked_pg_collect_runs(res, 0, (size_t)f->limit, &a->out,
                                  &a->more, err);
    PQclear(res);
    return rc;
}

int sked_pg_run_list(sked_store *st, const sked_run_filter *f,
                     sked_run_page *out, sked_err *err)
{
    memset(out, 0, sizeof *out);
    int rc = f ? sked_pg_check_page(f->ns, f->limit, err)
               : sked_pg_check_page(NULL, 0, err);
    if (rc != 0)
        return rc;
    list_job a = {
        .f = f,
        .mask = (sked_pg_given(f->task_id) ? F_TASK : 0) |
                (f->status_mask != 0 ? F_STATUS : 0) |
                (f->since != SKED_TIME_NONE ? F_SINCE : 0) |
                (f->until != SKED_TIME_NONE ? F_UNTIL : 0) |
                (sked_pg_given(f->before_id) ? F_BEFORE : 0),
    };
    rc = sked_pg_run(S(st), SKED_PG_READ, list_fn, &a, err);
    if (rc != 0) {
        sked_pg_runbuf_free(&a.out);
        return rc;
    }
    out->recs = a.out.runs;
    out->n = a.out.n;
    out->more = a.more;
    return 0;
}

/* ---- workers ----------------------------------------------------------- */

static int worker_upsert_fn(sked_pg_tx *tx, void *arg, sked_err *err)
{
    const sked_worker_rec *w = arg;
    sked_pg_params p = {0};
    sked_pg_p_fixed(&p, w->id, sizeof w->id);
    sked_pg_p_bytes(&p, w->host, strnlen(w->host, sizeof w->host));
    sked_pg_p_text(&p, w->queues ? w->queues : "[]");
    sked_pg_p_i64(&p, w->slots);
    sked_pg_p_i64(&p, w->busy);
    sked_pg_p_i64(&p, w->last_heartbeat);
    sked_pg_p_bytes(&p, w->version, strnlen(w->version, sizeof w->version));
    return sked_pg_exec(tx->c, SKED_PG_WORKER_UPSERT, &p, NULL,
                        "worker upsert", err);
}

int sked_pg_worker_upsert(sked_store *st, const sked_worker_rec *w,
                          sked_err *err)
{
    if (w == NULL || strnlen(w->id, sizeof w->id) == 0)
        return sked_err_set(err, SKED_EINVAL, "id", 0, "worker id is empty");
    if (w->last_heartbeat == SKED_TIME_NONE)
        return sked_err_set(err, SKED_EINVAL, "last_heartbeat", 0,
                            "a heartbeat needs a time");
    return sked_pg_run(S(st), SKED_PG_WRITE, worker_upsert_fn, (void *)w,
                       err);
}

typedef struct workers_job {
    sked_walltime since;
    sked_worker_rec *v;                 /* out */
    size_t n;                           /* out */
} workers_job;

static void free_workers(sked_worker_rec *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i].queues);
    free(v);
}

static int worker_list_fn(sked_pg_tx *tx, void *arg, sked_err *err)
{
    workers_job *a = arg;
    free_workers(a->v, a->n);
    a->v = NULL;
    a->n = 0;
    sked_pg_params p = {0};
    PGresult *res;
    sked_pg_p_i64(&p, a->since == SKED_TIME_NONE ? INT64_MIN : a->since);
    int rc = sked_pg_exec(tx->c, SKED_PG_WORKER_LIST, &p, &res,
                          "worker list", err);
    size_t rows = rc == 0 ? (size_t)PQntuples(res) : 0;
    if (rows > 0 && (a->v = calloc(rows, sizeof *a->v)) == NULL)
        rc = sked_err_set(err, SKED_ENOMEM, NULL, 0, "out of memory");
    for (size_t i = 0; rc == 0 && i < rows; i++) {
        sked_worker_rec *w = &a->v[i];
        int row = (int)i;
        sked_pg_fixed(res, row, 0, w->id, sizeof w->id);
        sked_pg_fixed(res, row, 1, w->host, sizeof w->host);
        w->slots = (int)sked_pg_i64(res, row, 3);
        w->busy = (int)sked_pg_i64(res, row, 4);
        w->last_heartbeat = sked_pg_i64(res, row, 5);
        sked_pg_fixed(res, row, 6, w->version, sizeof w->version);
        rc = sked_pg_dup(res, row, 2, &w->queues, "a worker", err);
        if (rc == 0)
            a->n++;
    }
    PQclear(res);
    return rc;
}

int sked_pg_worker_list(sked_store *st, sked_walltime since,
                        sked_worker_rec **out, size_t *n, sked_err *err)
{
    workers_job a = {.since = since};
    int rc = sked_pg_run(S(st), SKED_PG_READ, worker_list_fn, &a, err);
    if (rc != 0) {
        free_workers(a.v, a.n);
        a.v = NULL;
        a.n = 0;
    }
    *out = a.v;
    *n = a.n;
    return rc;
}
