/*
 * store_pg_tasks.c - the task methods of the PostgreSQL store.
 *
 * Each method is a transaction function run by sked_pg_run (store_pg.c):
 * it may run more than once, so it keeps its results in its own struct
 * and the method copies them to the caller afterwards.  Inputs are checked
 * here, before any round trip.  A batch of tasks is one INSERT of arrays
 * (unnest), not a statement per task.
 *
 * Not here: connections, transactions and migrations (store_pg.c), tokens
 * (store_pg_tokens.c), runs (store_pg_claim.c, store_pg_runs.c).
 */
#include "store/store_pg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S(st) ((sked_pg_store *)(st))

const char *sked_pg_task_sql(int slot)
{
    switch (slot) {
    /* A batch in one statement.  A row that would break a unique
     * constraint (the id, or the name in its namespace, also against an
     * earlier row of the same batch) is skipped, not an error: the
     * transaction goes on and the method tells which row it was. */
    case SKED_PG_TASK_INSERT:
        return "INSERT INTO tasks (" SKED_PG_TASK_COLS ") "
               "SELECT u.id, u.ns, u.name, u.queue, u.spec, u.state, "
               "u.next_run_at, u.run_count, 1, u.created_at, u.updated_at "
               "FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], "
               "$5::text[], $6::smallint[], $7::bigint[], $8::bigint[], "
               "$9::bigint[], $10::bigint[]) AS u(id, ns, name, queue, spec, "
               "state, next_run_at, run_count, created_at, updated_at) "
               "ON CONFLICT DO NOTHING RETURNING id";
    case SKED_PG_TASK_EXISTS:
        return "SELECT 1 FROM tasks WHERE id = $1::text";
    /* By id, or else by name. */
    case SKED_PG_TASK_GET:
        return "SELECT " SKED_PG_TASK_COLS " FROM tasks "
               "WHERE namespace = $1::text AND (id = $2::text OR name = $2) "
               "ORDER BY id = $2 DESC LIMIT 1";
    /* The update, and the cancel of the runs a pause takes away.  The runs
     * are locked in id order first, as a batch of run changes locks them
     * (store_pg_runs.c, lock_runs), so the two never deadlock. */
    case SKED_PG_TASK_UPDATE:
        return "WITH t AS (UPDATE tasks SET name = $3::text, "
               "queue = $4::text, spec = $5::text, state = $6::smallint, "
               "next_run_at = $7::bigint, "
               "run_count = greatest(run_count, $8::bigint), "
               "version = version + 1, updated_at = $9::bigint "
               "WHERE namespace = $1::text AND id = $2::text "
               "AND ($10::bigint <= 0 OR version = $10) "
               "RETURNING version, state), "
               "c AS (UPDATE runs SET status = 7, finished_at = $9, marked_at = NULL, "
               "error = 'task paused', lease_owner = NULL, "
               "lease_expires_at = NULL "
               "WHERE task_id = $2 AND status < 3 AND (status = 0 OR "
               "(status = 1 AND dispatched_at > $9)) "
               "AND EXISTS (SELECT 1 FROM t WHERE t.state = 1) "
               "AND id IN (SELECT id FROM runs WHERE task_id = $2 "
               "AND status < 3 ORDER BY id FOR NO KEY UPDATE)) "
               "SELECT version FROM t";
    case SKED_PG_TASK_VERSION:
        return "SELECT version FROM tasks "
               "WHERE namespace = $1::text AND id = $2::text";
    case SKED_PG_TASK_DELETE:
        return "WITH d AS (DELETE FROM tasks "
               "WHERE namespace = $1::text AND id = $2::text RETURNING id), "
               "c AS (UPDATE runs SET status = 7, finished_at = $3::bigint, marked_at = NULL, "
               "error = 'task deleted' WHERE task_id = $2 AND status < 3 "
               "AND EXISTS (SELECT 1 FROM d) "
               "AND id IN (SELECT id FROM runs WHERE task_id = $2 "
               "AND status < 3 ORDER BY id FOR NO KEY UPDATE)) "
               "SELECT count(*) FROM d";
    case SKED_PG_IDEM_PUT:
        return "INSERT INTO idempotency_keys "
               "(namespace, key, request_hash, task_id, created_at) "
               "VALUES ($1::text, $2::text, $3::text, $4::text, $5::bigint) "
               "ON CONFLICT (namespace, key) DO NOTHING RETURNING 1";
    case SKED_PG_IDEM_GET:
        return "SELECT request_hash, task_id FROM idempotency_keys "
               "WHERE namespace = $1::text AND key = $2::text";
    }
    return NULL;
}

/* ---- reading rows ------------------------------------------------------ */

int sked_pg_read_task(const PGresult *r, int row, sked_task_rec *out,
                      sked_err *err)
{
    memset(out, 0, sizeof *out);
    sked_pg_fixed(r, row, 0, out->id, sizeof out->id);
    sked_pg_fixed(r, row, 1, out->ns, sizeof out->ns);
    sked_pg_fixed(r, row, 3, out->queue, sizeof out->queue);
    out->state = (sked_task_state)sked_pg_i64(r, row, 5);
    out->next_run_at = sked_pg_time(r, row, 6);
    out->run_count = sked_pg_i64(r, row, 7);
    out->version = sked_pg_i64(r, row, 8);
    out->created_at = sked_pg_i64(r, row, 9);
    out->updated_at = sked_pg_i64(r, row, 10);
    int rc = sked_pg_dup(r, row, 2, &out->name, "a task", err);
    if (rc == 0)
        rc = sked_pg_dup(r, row, 4, &out->spec, "a task", err);
    if (rc != 0)
        sked_task_rec_deinit(out);
    return rc;
}

/* ---- input checks ------------------------------------------------------ */

/* ---- tasks: insert ----------------------------------------------------- */

typedef struct insert_job {
    const sked_task_rec *recs;
    size_t n;
    const sked_idem *idem;
    char *lit[10];                      /* the batch as array literals */
    char first_id[SKED_ID_LEN + 1];     /* out: on SKED_EEXIST */
} insert_job;

/* The batch's columns as the ten arrays of TASK_INSERT. */
static int build_arrays(insert_job *a, sked_err *err)
{
    sked_pg_arr arr[10];
    for (int k = 0; k < 10; k++)
        sked_pg_arr_begin(&arr[k]);
    for (size_t i = 0; i < a->n; i++) {
        const sked_task_rec *r = &a->recs[i];
        sked_pg_arr_text(&arr[0], r->id);
        sked_pg_arr_text(&arr[1], r->ns);
        sked_pg_arr_text(&arr[2], r->name);
        sked_pg_arr_text(&arr[3], r->queue);
        sked_pg_arr_text(&arr[4], r->spec);
        sked_pg_arr_i64(&arr[5], (int64_t)r->state);
        sked_pg_arr_time(&arr[6], r->next_run_at);
        sked_pg_arr_i64(&arr[7], r->run_count);
        sked_pg_arr_i64(&arr[8], r->created_at);
        sked_pg_arr_i64(&arr[9], r->updated_at);
    }
    int oom = 0;
    for (int k = 0; k < 10; k++)
        oom |= (a->lit[k] = sked_pg_arr_end(&arr[k])) == NULL;
    if (oom)
        return sked_err_set(err, SKED_ENOMEM, NULL, 0,
                            "out of memory encoding %zu tasks", a->n);
    return 0;
}

/* The key is written first: a concurrent request with the same key waits
 * for this one and then sees the key (SKED_EEXIST), instead of failing on
 * the task's name.  SKED_EEXIST / SKED_ECONFLICT when the key was seen. */
static int idem_put(sked_pg_tx *tx, insert_job *a, sked_err *err)
{
    sked_pg_params p = {0};
    PGresult *res;
    sked_pg_p_text(&p, a->recs[0].ns);
    sked_pg_p_text(&p, a->idem->key);
    sked_pg_p_text(&p, a->idem->request_hash);
    sked_pg_p_text(&p, a->recs[0].id);
    sked_pg_p_i64(&p, a->recs[0].created_at);
    int rc = sked_pg_exec(tx->c, SKED_PG_IDEM_PUT, &p, &res,
                          "idempotency key", err);
    int fresh = rc == 0 && PQntuples(res) == 1;
    PQclear(res);
    if (rc != 0 || fresh)
        return rc;
    p.n = 0;
    sked_pg_p_text(&p, a->recs[0].ns);
    sked_pg_p_text(&p, a->idem->key);
    if ((rc = sked_pg_exec(tx->c, SKED_PG_IDEM_GET, &p, &res,
                           "idempotency lookup", err)) != 0) {
        PQclear(res);
        return rc;
    }
    if (PQntuples(res) == 0) {
        /* Its task was deleted in between: try the whole thing again. */
        PQclear(res);
        tx->c->fail = SKED_PG_FAIL_RETRY;
        return sked_err_set(err, SKED_EAGAIN, NULL, 0,
                            "Idempotency-Key changed under the insert");
    }
    sked_pg_fixed(res, 0, 1, a->first_id, sizeof a->first_id);
    if (strcmp(PQgetvalue(res, 0, 0), a->idem->request_hash) == 0)
        rc = sked_err_set(err, SKED_EEXIST, NULL, 0,
                          "Idempotency-Key seen: task %s", a->first_id);
    else
        rc = sked_err_set(err, SKED_ECONFLICT, "Idempotency-Key", 0,
                          "Idempotency-Key was already used with another "
                          "request");
    PQclear(res);
    return rc;
}

static int cmp_str(const void *x, const void *y)
{
    return strcmp(*(const char *const *)x, *(const char *const *)y);
}

/* The batch skipped some rows (res: the ids inserted): name the first,
 * and why - its id exists, or its name is taken or repeated. */
static int batch_conflict(sked_pg_tx *tx, const insert_job *a,
                          const PGresult *res, sked_err *err)
{
    size_t got = (size_t)PQntuples(res), i;
    const char **ids = malloc((got + 1) * sizeof *ids);
    if (ids == NULL)
        return sked_err_set(err, SKED_ENOMEM, NULL, 0, "out of memory");
    for (size_t k = 0; k < got; k++)
        ids[k] = PQgetvalue(res, (int)k, 0);
    qsort(ids, got, sizeof *ids, cmp_str);
    for (i = 0; i < a->n; i++) {
        const char *key = a->recs[i].id;
        if (bsearch(&key, ids, got, sizeof *ids, cmp_str) == NULL)
            break;
    }
    free(ids);
    if (i == a->n) /* cannot be: as many rows as asked for */
        return sked_err_set(err, SKED_EINTERNAL, NULL, 0,
                            "postgres store: task insert lost a row");
    const sked_task_rec *r = &a->recs[i];
    int col = (int)i + 1;
    sked_pg_params p = {0};
    PGresult *q;
    sked_pg_p_text(&p, r->id);
    int rc = sked_pg_exec(tx->c, SKED_PG_TASK_EXISTS, &p, &q, "task insert",
                          err);
    int id_taken = rc == 0 && PQntuples(q) > 0;
    PQclear(q);
    if (rc != 0)
        return rc;
    if (id_taken || r->name == NULL)
        return sked_err_set(err, SKED_ECONFLICT, "id", col,
                            "task id %s already exists", r->id);
    for (size_t k = 0; k < i; k++)
        if (a->recs[k].name != NULL && strcmp(a->recs[k].name, r->name) == 0 &&
            strcmp(a->recs[k].ns, r->ns) == 0)
            return sked_err_set(err, SKED_ECONFLICT, "name", col,
                                "task name \"%s\" is repeated in the batch "
                                "(tasks %zu and %zu)",
                                r->name, k + 1, i + 1);
    return sked_err_set(err, SKED_ECONFLICT, "name", col,
                        "task name \"%s\" is already used in namespace %s",
                        r->name, r->ns);
}

static int insert_fn(sked_pg_tx *tx, void *arg, sked_err *err)
{
    insert_job *a = arg;
    int rc;
    if (a->idem != NULL && (rc = idem_put(tx, a, err)) != 0)
        return rc;
    sked_pg_params p = {0};
    PGresult *res;
    for (int k = 0; k < 10; k++)
        sked_pg_p_raw(&p, a->lit[k]);
    rc = sked_pg_exec(tx->c, SKED_PG_TASK_INSERT, &p, &res, "task insert",
                      err);
    if (rc == 0 && (size_t)PQntuples(res) != a->n)
        rc = batch_conflict(tx, a, res, err);
    PQclear(res);
    if (rc != 0)
        return rc;
    for (size_t i = 0; i < a->n; i++)
        if (a->recs[i].state == SKED_TASK_ACTIVE)
            sked_pg_wake(tx, a->recs[i].next_run_at);
    return 0;
}

int sked_pg_task_insert(sked_store *st, sked_task_rec *recs, size_t n,
                        const sked_idem *idem, sked_err *err)
{
    int rc;
    insert_job a = {.recs = recs, .n = n, .idem = idem};
    rc = build_arrays(&a, err);
    if (rc == 0)
        rc = sked_pg_run(S(st), SKED_PG_WRITE, insert_fn, &a, err);
    for (int k = 0; k < 10; k++)
        free(a.lit[k]);
    if (rc == SKED_EEXIST)
        memcpy(recs[0].id, a.first_id, sizeof recs[0].id);
    for (size_t i = 0; rc == 0 && i < n; i++)
        recs[i].version = 1;
    return rc;
}

/* ---- tasks: get, list -------------------------------------------------- */

typedef struct get_job {
    const char *ns, *key;
    sked_task_rec out;                  /* out */
    int found;                          /* out */
} get_job;

static int get_fn(sked_pg_tx *tx, void *arg, sked_err *err)
{
    get_job *a = arg;
    sked_pg_params p = {0};
    PGresult *res;
    sked_pg_p_text(&p, a->ns);
    sked_pg_p_text(&p, a->key);
    int rc = sked_pg_exec(tx->c, SKED_PG_TASK_GET, &p, &res, "task get", err);
    a->found = rc == 0 && PQntuples(res) > 0;
    if (a->found && (rc = sked_pg_read_task(res, 0, &a->out, err)) != 0)
        a->found = 0;
    PQclear(res);
    return rc;
}

int sked_pg_task_get(sked_store *st, const char *ns, const char *key,
                     sked_task_rec *out, sked_err *err)
{
    if (ns == NULL || key == NULL)
        return sked_err_set(err, SKED_EINVAL, NULL, 0,
                            "task get needs a namespace and a key");
    get_job a = {.ns = ns, .key = key};
    int rc = sked_pg_run(S(st), SKED_PG_READ, get_fn, &a, err);
    if (rc != 0)
        return rc;
    if (!a.found)
        return sked_err_set(err, SKED_ENOENT, NULL, 0, "no task %s", key);
    *out = a.out;
    return 0;
}

/* Optional filters of a listing, one bit each: the statement for a set
 * of bits is prepared once per connection. */
enum {
    F_STATE = 1,
    F_QUEUE = 2,
    F_LABEL = 4,
    F_PREFIX = 8,
    F_AFTER = 16,
};

/* Label: spec.labels[key] exists (any JSON value; an array or a scalar
 * has no keys), and equals the string value when one is given. */
static int list_prepare(sked_pg_conn *c, unsigned mask, sked_err *err)
{
    static const Oid types[8] = {25, 23, 25, 25, 25, 25, 25, 20};
    char sql[1024];
    snprintf(sql, sizeof sql,
             "SELECT " SKED_PG_TASK_COLS " FROM tasks "
             "WHERE namespace = $1%s%s%s%s%s ORDER BY id LIMIT $8",
             mask & F_STATE ? " AND state = $2" : "",
             mask & F_QUEUE ? " AND queue = $3" : "",
             mask & F_LABEL ? " AND (spec::jsonb -> 'labels' -> $4) IS NOT "
                              "NULL AND ($5 IS NULL OR spec::jsonb -> "
                              "'labels' -> $4 = to_jsonb($5))" : "",
             mask & F_PREFIX ? " AND starts_with(name, $6)" : "",
             mask & F_AFTER ? " AND id > $7" : "");
    return sked_pg_prepare(c, SKED_PG_TASK_LIST_SLOT(mask), sql, 8, types,
                           err);
}

typedef struct list_job {
    const sked_task_filter *f;
    unsigned mask;
    sked_task_page out;                 /* out */
} list_job;

static int list_fn(sked_pg_tx *tx, void *arg, sked_err *err)
{
    list_job *a = arg;
    const sked_task_filter *f = a->f;
    sked_task_page_deinit(&a->out);
    int rc = list_prepare(tx->c, a->mask, err);
    if (rc != 0)
        return rc;
    sked_pg_params p = {0};
    PGresult *res;
    sked_pg_p_text(&p, f->ns);
    sked_pg_p_i64(&p, f->state);
    sked_pg_p_text(&p, f->queue);
    sked_pg_p_text(&p, f->label_key);
    sked_pg_p_text(&p, f->label_value);
    sked_pg_p_text(&p, f->name_prefix);
    sked_pg_p_text(&p, f->after_id);
    sked_pg_p_i64(&p, f->limit + 1);
    rc = sked_pg_exec(tx->c, SKED_PG_TASK_LIST_SLOT(a->mask), &p, &res,
                      "task list", err);
    if (rc == 0) {
        size_t rows = (size_t)PQntuples(res), n = rows;
        if (n > (size_t)f->limit) {
            n = (size_t)f->limit;
            a->out.more = 1;
        }
        if (n > 0 && (a->out.recs = calloc(n, sizeof *a->out.recs)) == NULL)
            rc = sked_err_set(err, SKED_ENOMEM, NULL, 0, "out of memory");
        for (size_t i = 0; rc == 0 && i < n; i++) {
            rc = sked_pg_read_task(res, (int)i, &a->out.recs[i], err);
            if (rc == 0)
                a->out.n++;
        }
    }
    PQclear(res);
    return rc;
}

int sked_pg_task_list(sked_store *st, const sked_task_filter *f,
                      sked_task_page *out, sked_err *err)
{
    memset(out, 0, sizeof *out);
    int rc = f ? sked_pg_check_page(f->ns, f->limit, err)
               : sked_pg_check_page(NULL, 0, err);
    if (rc != 0)
        return rc;
    if (f->state < -1 || f->state > SKED_TASK_COMPLETED)
        return sked_err_set(err, SKED_EINVAL, "state", 0,
                            "state %d is not a task state", f->state);
    list_job a = {
        .f = f,
        .mask = (f->state >= 0 ? F_STATE : 0) |
                (sked_pg_given(f->queue) ? F_QUEUE : 0) |
                (sked_pg_given(f->label_key) ? F_LABEL : 0) |
                (sked_pg_given(f->name_prefix) ? F_PREFIX : 0) |
                (sked_pg_given(f->after_id) ? F_AFTER : 0),
    };
    rc = sked_pg_run(S(st), SKED_PG_READ, list_fn, &a, err);
    if (rc != 0) {
        sked_task_page_deinit(&a.out);
        return rc;
    }
    *out = a.out;
    return 0;
}

/* ---- tasks: update, delete --------------------------------------------- */

typedef struct update_job {
    const sked_task_rec *rec;
    int64_t expect;
    int64_t version;                    /* out */
} update_job;

static int update_fn(sked_pg_tx *tx, void *arg, sked_err *err)
{
    update_job *a = arg;
    const sked_task_rec *r = a->rec;
    sked_pg_params p = {0};
    PGresult *res;
    sked_pg_p_text(&p, r->ns);
    sked_pg_p_text(&p, r->id);
    sked_pg_p_text(&p, r->name);
    sked_pg_p_text(&p, r->queue);
    sked_pg_p_text(&p, r->spec);
    sked_pg_p_i64(&p, (int64_t)r->state);
    sked_pg_p_time(&p, r->next_run_at);
    sked_pg_p_i64(&p, r->run_count);
    sked_pg_p_i64(&p, r->updated_at);
    sked_pg_p_i64(&p, a->expect);
    int rc = sked_pg_exec(tx->c, SKED_PG_TASK_UPDATE, &p, &res, "task update",
                          err);
    if (rc != 0) {
        if (sked_pg_is_unique(res, "tasks_name_key"))
            rc = sked_err_set(err, SKED_ECONFLICT, "name", 1,
                              "task name \"%s\" is already used in "
                              "namespace %s",
                              r->name, r->ns);
        PQclear(res);
        return rc;
    }
    int updated = PQntuples(res) > 0;
    if (updated)
        a->version = sked_pg_i64(res, 0, 0);
    PQclear(res);
    if (updated) {
        if (r->state == SKED_TASK_ACTIVE)
            sked_pg_wake(tx, r->next_run_at);
        return 0;
    }

    /* Nothing updated: no such task, or a stale version. */
    p.n = 0;
    sked_pg_p_text(&p, r->ns);
    sked_pg_p_text(&p, r->id);
    if ((rc = sked_pg_exec(tx->c, SKED_PG_TASK_VERSION, &p, &res,
                           "task update", err)) == 0) {
        if (PQntuples(res) > 0)
            rc = sked_err_set(err, SKED_EPRECOND, "If-Match", 0,
                              "task %s is at version %lld, not %lld", r->id,
                              (long long)sked_pg_i64(res, 0, 0),
                              (long long)a->expect);
        else
            rc = sked_err_set(err, SKED_ENOENT, NULL, 0, "no task %s", r->id);
    }
    PQclear(res);
    return rc;
}

int sked_pg_task_update(sked_store *st, sked_task_rec *rec,
                        int64_t expect_version, sked_err *err)
{
    update_job a = {.rec = rec, .expect = expect_version};
    int rc = sked_pg_run(S(st), SKED_PG_WRITE, update_fn, &a, err);
    if (rc == 0)
        rec->version = a.version;
    return rc;
}

typedef struct delete_job {
    const char *ns, *id;
    sked_walltime now;
} delete_job;

/* The task goes; its runs stay (history), the unfinished ones canceled in
 * the same statement so no scheduler publishes them afterwards.  A run
 * already with a worker keeps running there: its `finished` event is then
 * fenced off by the status. */
static int delete_fn(sked_pg_tx *tx, void *arg, sked_err *err)
{
    const delete_job *a = arg;
    sked_pg_params p = {0};
    PGresult *res;
    sked_pg_p_text(&p, a->ns);
    sked_pg_p_text(&p, a->id);
    sked_pg_p_i64(&p, a->now);
    int rc = sked_pg_exec(tx->c, SKED_PG_TASK_DELETE, &p, &res, "task delete",
                          err);
    if (rc == 0 && sked_pg_i64(res, 0, 0) == 0)
        rc = sked_err_set(err, SKED_ENOENT, NULL, 0, "no task %s", a->id);
    PQclear(res);
    return rc;
}

int sked_pg_task_delete(sked_store *st, const char *ns, const char *id,
                        sked_err *err)
{
    if (ns == NULL || id == NULL)
        return sked_err_set(err, SKED_EINVAL, NULL, 0,
                            "task delete needs a namespace and an id");
    delete_job a = {.ns = ns, .id = id, .now = sked_clock_wall_now()};
    return sked_pg_run(S(st), SKED_PG_WRITE, delete_fn, &a, err);
}
