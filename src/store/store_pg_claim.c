/*
 * store_pg_claim.c - what a scheduler takes from the PostgreSQL store: the
 * claim, the one write it makes to learn what it must publish next
 * (store.h, sked_claim; DESIGN.md §4), and the sweep of runs whose lease
 * expired.  Same semantics as store_sqlite_claim.c; what differs is that
 * several schedulers claim at once, on several connections.
 *
 * One transaction, in three steps:
 *
 *   1. due tasks: active tasks with next_run_at <= horizon, then one-time
 *      tasks up to once_horizon (index tasks_due_once), earliest first,
 *      at most limit, locked FOR NO KEY UPDATE SKIP LOCKED (a task
 *      another scheduler is claiming right now is left to it, nobody
 *      waits; the lock does not block the key-share lock of an
 *      idempotency key naming the task), each with its count of
 *      unfinished runs.  advance() (the caller's policy)
 *      runs here in C for each; then ONE statement inserts every
 *      occurrence (arrays, ON CONFLICT (task_id, scheduled_at) DO NOTHING:
 *      an occurrence is one row however many claims see it) and moves
 *      every task on (next_run_at, state, run_count += rows inserted);
 *      an occurrence the policy says to dispatch (store.h) is inserted
 *      DISPATCHED, and handed back if the insert was new;
 *   2. free runs: scheduled runs due by horizon whose lease is free (never
 *      leased: retries, triggers; or expired: their scheduler died), at
 *      most limit, earliest first, locked SKIP LOCKED and leased to the
 *      owner in one statement;
 *   3. the answer: every scheduled run leased to the owner and due by
 *      horizon, earliest first, at most limit + nexclude (the wrapper
 *      leaves the excluded out, store.c), with its task's spec.
 *
 * So a claim is six round trips (BEGIN, 1 read, 1 write, 2, 3, COMMIT)
 * however many tasks it takes.  The transaction may be run again after a
 * deadlock or a lost connection (store_pg.c): advance() is then called
 * again, which the contract allows.
 *
 * The sweep only reads (store.h): dispatched or running runs whose lease
 * expired, oldest lease first, with their task's spec.
 *
 * Not here: the policies (sched/policy.c), the timer (sched/), the other
 * run methods (store_pg_runs.c).
 */
#include "store/store_pg.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/ids.h"

#define S(st) ((sked_pg_store *)(st))


/* Arrays of the occurrences (runs to insert) and of the advances. */
enum {
    O_ID, O_TASK, O_NS, O_SCHED, O_DUE, O_STATUS, O_REASON, O_QUEUE,
    O_OWNER, O_LEASE, O_FINISHED, O_DISPATCHED, O_MARKED, A_ID, A_NEXT, A_STATE,
    NARR
};

/* The canonical spec's mark of a one-time task (see tasks_due_once). */
#define ONCE_SQL "strpos(spec, '\"schedule\":{\"at\":') > 0"

const char *sked_pg_claim_sql(int slot)
{
    switch (slot) {
    /* Two ranges, each locked SKIP LOCKED: every task due by $1, then
     * the one-time tasks after it up to $3 (none when $3 <= $1), only as
     * many as the first left room for. */
    case SKED_PG_CLAIM_TASKS:
        return "WITH a AS (SELECT " SKED_PG_TASK_COLS " FROM tasks "
               "WHERE next_run_at <= $1::bigint AND state = 0 "
               "ORDER BY next_run_at LIMIT $2::bigint "
               "FOR NO KEY UPDATE SKIP LOCKED), "
               "b AS (SELECT " SKED_PG_TASK_COLS " FROM tasks "
               "WHERE next_run_at > $1 AND next_run_at <= $3::bigint "
               "AND state = 0 AND next_run_at IS NOT NULL AND " ONCE_SQL " "
               "ORDER BY next_run_at LIMIT $2 - (SELECT count(*) FROM a) "
               "FOR NO KEY UPDATE SKIP LOCKED) "
               "SELECT d.*, (SELECT count(*) FROM runs AS r "
               "WHERE r.task_id = d.id AND r.status < 3) "
               "FROM (SELECT * FROM a UNION ALL SELECT * FROM b) AS d "
               "ORDER BY d.next_run_at";
    case SKED_PG_CLAIM_ADVANCE:
        return "WITH ins AS (INSERT INTO runs (id, task_id, namespace, "
               "scheduled_at, due_at, status, reason, attempt, queue, "
               "lease_owner, lease_expires_at, finished_at, dispatched_at, "
               "marked_at) "
               "SELECT o.id, o.task_id, o.ns, o.sched, o.due, o.status, "
               "o.reason, 1, o.queue, o.owner, o.lease, o.finished, o.disp, "
               "o.marked "
               "FROM unnest($1::text[], $2::text[], $3::text[], "
               "$4::bigint[], $5::bigint[], $6::smallint[], $7::text[], "
               "$8::text[], $9::text[], $10::bigint[], $11::bigint[], "
               "$12::bigint[], $13::bigint[]) "
               "AS o(id, task_id, ns, sched, due, status, reason, queue, "
               "owner, lease, finished, disp, marked) "
               "ON CONFLICT (task_id, scheduled_at) DO NOTHING "
               "RETURNING id, task_id, status), "
               "n AS (SELECT task_id, count(*) AS k FROM ins "
               "GROUP BY task_id), "
               "adv AS (UPDATE tasks AS t SET next_run_at = a.next, "
               "state = a.state, run_count = t.run_count + coalesce(n.k, 0) "
               "FROM unnest($14::text[], $15::bigint[], $16::smallint[]) "
               "AS a(id, next, state) LEFT JOIN n ON n.task_id = a.id "
               "WHERE t.id = a.id) "
               "SELECT id FROM ins WHERE status = 1";
    /* Free: never leased (NULL), or expired.  Two ranges of runs_lease
     * rather than an OR, each locked SKIP LOCKED; the lease runs from the
     * later of due_at and now (a run found late is not born expired),
     * saturating rather than overflowing. */
    case SKED_PG_CLAIM_LEASE:
        return "WITH a AS (SELECT id, due_at FROM runs WHERE status = 0 "
               "AND lease_expires_at IS NULL AND due_at <= $2::bigint "
               "ORDER BY due_at LIMIT $5::bigint "
               "FOR NO KEY UPDATE SKIP LOCKED), "
               "b AS (SELECT id, due_at FROM runs WHERE status = 0 "
               "AND lease_expires_at < $3::bigint AND due_at <= $2 "
               "ORDER BY due_at LIMIT $5 FOR NO KEY UPDATE SKIP LOCKED), "
               "pick AS (SELECT id, greatest(due_at, $3) AS start FROM "
               "(SELECT * FROM a UNION ALL SELECT * FROM b) AS ab "
               "ORDER BY due_at LIMIT $5) "
               "UPDATE runs AS r SET lease_owner = $1::text, "
               "lease_expires_at = CASE WHEN pick.start > "
               "9223372036854775807 - $4::bigint THEN 9223372036854775807 "
               "ELSE pick.start + $4 END "
               "FROM pick WHERE r.id = pick.id";
    case SKED_PG_SWEEP:
        return SKED_PG_RUN_SPEC_FROM
               "WHERE r.status IN (1, 2) AND r.lease_expires_at < $1::bigint "
               "ORDER BY r.lease_expires_at, r.id LIMIT $2::bigint";
    /* status 1 in runs_lease; few rows: only a takeover reads them */
    case SKED_PG_RUNS_IN_DOUBT:
        return SKED_PG_RUN_SPEC_FROM
               "WHERE r.status = 1 AND r.lease_owner = $1::text "
               "AND r.dispatched_at >= $2::bigint "
               "AND coalesce(r.marked_at, r.dispatched_at) < $4::bigint "
               "ORDER BY r.dispatched_at, r.id LIMIT $3::bigint";
    case SKED_PG_CLAIM_OWNED:
        return SKED_PG_RUN_SPEC_FROM
               "WHERE r.status = 0 AND r.lease_owner = $1::text "
               "AND r.due_at <= $2::bigint "
               "ORDER BY r.due_at, r.id LIMIT $3::bigint";
    }
    return NULL;
}

typedef struct claim_job {
    const sked_claim *c;
    sked_pg_runbuf out;                 /* out: step 3 */
    int more;                           /* out */
    sked_run_rec *cand;                 /* to record dispatched, if new */
    char **cand_specs;
    size_t ncand;
    sked_run_rec *disp;                 /* out: recorded dispatched */
    char **disp_specs;
    size_t ndisp;
    int done;                           /* the last run of claim_fn got
                                           as far as its COMMIT */
} claim_job;

/* The lease of a run claimed now (see CLAIM_LEASE). */
static sked_walltime lease_end(sked_walltime due, sked_walltime now,
                               int64_t lease_us)
{
    sked_walltime from = due > now ? due : now;
    return from > INT64_MAX - lease_us ? INT64_MAX : from + lease_us;
}

/* What advance() handed back is something the store can record. */
static int advance_ok(const sked_advance *adv)
{
    if (adv->nocc < 0 || adv->nocc > SKED_CLAIM_MAX_OCC)
        return 0;
    if (adv->state != SKED_TASK_ACTIVE && adv->state != SKED_TASK_COMPLETED)
        return 0;
    for (int i = 0; i < adv->nocc; i++)
        if (adv->occ[i].scheduled_at == SKED_TIME_NONE)
            return 0;
    return 1;
}

/* Ask the policy about task t and add its occurrences and its advance to
 * the arrays; a task whose advance fails (its spec cannot be read) is
 * left out, so it stays as it is.  1 when the task was added. */
static int advance_task(claim_job *a, const sked_task_rec *t, int unfinished,
                        sked_pg_arr *arr, sked_err *err)
{
    const sked_claim *cl = a->c;
    sked_advance adv;
    adv.nocc = 0;
    adv.next_run_at = SKED_TIME_NONE;
    adv.state = SKED_TASK_ACTIVE;
    if (cl->advance(cl->ctx, t, unfinished, &adv) < 0 || !advance_ok(&adv))
        return 0;
    int rc = 0;
    for (int i = 0; i < adv.nocc; i++) {
        const sked_occurrence *o = &adv.occ[i];
        sked_walltime due =
            o->due_at == SKED_TIME_NONE ? o->scheduled_at : o->due_at;
        char id[SKED_UUID_TEXT];
        sked_uuid7(id);
        sked_run_rec d;
        int dispatch = sked_claim_dispatched_rec(cl, t, id, o, &d);
        sked_pg_arr_text(&arr[O_ID], id);
        sked_pg_arr_text(&arr[O_TASK], t->id);
        sked_pg_arr_text(&arr[O_NS], t->ns);
        sked_pg_arr_i64(&arr[O_SCHED], o->scheduled_at);
        sked_pg_arr_i64(&arr[O_DUE], due);
        sked_pg_arr_text(&arr[O_QUEUE], t->queue);
        if (o->skipped) {
            /* A skip is a finished run: no lease. */
            sked_pg_arr_i64(&arr[O_STATUS], SKED_RUN_SKIPPED);
            sked_pg_arr_text(&arr[O_REASON], o->reason);
            sked_pg_arr_null(&arr[O_OWNER]);
            sked_pg_arr_null(&arr[O_LEASE]);
            sked_pg_arr_i64(&arr[O_FINISHED], cl->now);
        } else if (dispatch) {
            sked_pg_arr_i64(&arr[O_STATUS], SKED_RUN_DISPATCHED);
            sked_pg_arr_null(&arr[O_REASON]);
            sked_pg_arr_text(&arr[O_OWNER], cl->owner);
            sked_pg_arr_i64(&arr[O_LEASE], d.lease_expires_at);
            sked_pg_arr_null(&arr[O_FINISHED]);
            if (rc == 0)
                rc = sked_claim_list_add(&a->cand, &a->cand_specs, &a->ncand, &d,
                                         t->spec, err);
        } else {
            sked_pg_arr_i64(&arr[O_STATUS], SKED_RUN_SCHEDULED);
            sked_pg_arr_null(&arr[O_REASON]);
            sked_pg_arr_text(&arr[O_OWNER], cl->owner);
            sked_pg_arr_i64(&arr[O_LEASE],
                            lease_end(due, cl->now, cl->lease_us));
            sked_pg_arr_null(&arr[O_FINISHED]);
        }
        sked_pg_arr_time(&arr[O_DISPATCHED], dispatch ? d.dispatched_at : SKED_TIME_NONE);
        sked_pg_arr_time(&arr[O_MARKED], dispatch ? d.marked_at : SKED_TIME_NONE);
    }
    /* The claim moves the task along its schedule but leaves `version`
     * and `updated_at` alone: the ETag stands for the user's spec, and a
     * client's If-Match must not fail because the task fired. */
    sked_pg_arr_text(&arr[A_ID], t->id);
    sked_pg_arr_time(&arr[A_NEXT], adv.next_run_at);
    sked_pg_arr_i64(&arr[A_STATE], (int64_t)adv.state);
    return rc != 0 ? rc : 1;
}

/* Keep the candidates the statement says it inserted (res: their ids). */
static int keep_inserted(claim_job *a, const PGresult *res, sked_err *err)
{
    size_t n = (size_t)PQntuples(res);
    int rc = 0;
    const char **ids = malloc((n ? n : 1) * sizeof *ids);
    if (ids == NULL)
        rc = sked_err_set(err, SKED_ENOMEM, NULL, 0, "out of memory claiming");
    for (size_t k = 0; ids != NULL && k < n; k++)
        ids[k] = PQgetvalue(res, (int)k, 0);
    if (ids != NULL)
        qsort(ids, n, sizeof *ids, sked_id_ptr_cmp);
    for (size_t i = 0; ids != NULL && i < a->ncand; i++) {
        const char *id = a->cand[i].id;
        int hit = bsearch(&id, ids, n, sizeof *ids, sked_id_ptr_cmp) != NULL;
        if (hit && rc == 0)
            rc = sked_claim_list_add(&a->disp, &a->disp_specs, &a->ndisp, &a->cand[i],
                                     a->cand_specs[i], err);
    }
    free(ids);
    sked_claim_list_free(&a->cand, &a->cand_specs, &a->ncand);
    return rc;
}

/* Step 1. */
static int claim_tasks(sked_pg_tx *tx, claim_job *a, sked_err *err)
{
    const sked_claim *cl = a->c;
    sked_pg_params p = {0};
    PGresult *res;
    sked_pg_p_i64(&p, cl->horizon);
    sked_pg_p_i64(&p, (int64_t)cl->limit + 1);
    sked_pg_p_i64(&p, cl->once_horizon > cl->horizon ? cl->once_horizon : cl->horizon);
    int rc = sked_pg_exec(tx->c, SKED_PG_CLAIM_TASKS, &p, &res,
                          "claim: due tasks", err);
    if (rc != 0) {
        PQclear(res);
        return rc;
    }
    int n = PQntuples(res), added = 0;
    if (n > cl->limit) {
        a->more = 1;
        n = cl->limit;
    }
    sked_pg_arr arr[NARR];
    for (int k = 0; k < NARR; k++)
        sked_pg_arr_begin(&arr[k]);
    for (int i = 0; rc == 0 && i < n; i++) {
        sked_task_rec t;
        if ((rc = sked_pg_read_task(res, i, &t, err)) != 0)
            break;
        int got = advance_task(a, &t, (int)sked_pg_i64(res, i, 11), arr, err);
        sked_task_rec_deinit(&t);
        if (got < 0)
            rc = got;
        else
            added += got;
    }
    PQclear(res);
    p.n = 0;
    for (int k = 0; k < NARR; k++) {
        char *lit = sked_pg_arr_end(&arr[k]);
        if (lit == NULL && rc == 0)
            rc = sked_err_set(err, SKED_ENOMEM, NULL, 0,
                              "out of memory claiming %d tasks", n);
        sked_pg_p_own(&p, lit);
    }
    PGresult *ins = NULL;
    if (rc == 0 && added > 0)
        rc = sked_pg_exec(tx->c, SKED_PG_CLAIM_ADVANCE, &p, &ins,
                          "claim: advance", err);
    sked_pg_params_free(&p);
    if (rc == 0 && ins != NULL)
        rc = keep_inserted(a, ins, err);
    PQclear(ins);
    return rc;
}

/* Step 2. */
static int lease_free(sked_pg_tx *tx, claim_job *a, sked_err *err)
{
    const sked_claim *cl = a->c;
    sked_pg_params p = {0};
    PGresult *res;
    sked_pg_p_text(&p, cl->owner);
    sked_pg_p_i64(&p, cl->horizon);
    sked_pg_p_i64(&p, cl->now);
    sked_pg_p_i64(&p, cl->lease_us);
    sked_pg_p_i64(&p, cl->limit);
    int rc = sked_pg_exec(tx->c, SKED_PG_CLAIM_LEASE, &p, &res,
                          "claim: free runs", err);
    if (rc == 0 && sked_pg_changed(res) >= cl->limit)
        a->more = 1;
    PQclear(res);
    return rc;
}

/* Step 3. */
static int owned(sked_pg_tx *tx, claim_job *a, sked_err *err)
{
    const sked_claim *cl = a->c;
    sked_pg_params p = {0};
    PGresult *res;
    sked_pg_p_text(&p, cl->owner);
    sked_pg_p_i64(&p, cl->horizon);
    /* the excluded ones come too; the wrapper leaves them out (store.c) */
    size_t want = (size_t)cl->limit + cl->nexclude;
    sked_pg_p_i64(&p, (int64_t)want + 1);
    int rc = sked_pg_exec(tx->c, SKED_PG_CLAIM_OWNED, &p, &res,
                          "claim: owned runs", err);
    if (rc == 0)
        rc = sked_pg_collect_runs(res, 1, want, &a->out, &a->more, err);
    PQclear(res);
    return rc;
}

static int claim_fn(sked_pg_tx *tx, void *arg, sked_err *err)
{
    claim_job *a = arg;
    /* A transaction run again starts from scratch. */
    sked_pg_runbuf_free(&a->out);
    sked_claim_list_free(&a->cand, &a->cand_specs, &a->ncand);
    sked_claim_list_free(&a->disp, &a->disp_specs, &a->ndisp);
    a->more = 0;
    int rc = claim_tasks(tx, a, err);
    if (rc == 0)
        rc = lease_free(tx, a, err);
    if (rc == 0)
        rc = owned(tx, a, err);
    a->done = rc == 0;
    return rc;
}

int sked_pg_claim_due(sked_store *st, sked_claim *c, sked_err *err)
{
    int rc;
    claim_job a = {.c = c};
    rc = sked_pg_run(S(st), SKED_PG_WRITE, claim_fn, &a, err);
    sked_claim_list_free(&a.cand, &a.cand_specs, &a.ncand);
    if (rc != 0) {
        sked_pg_runbuf_free(&a.out);
        if (rc == SKED_EUNAVAIL && a.done) {
            /* the connection broke during the COMMIT, which may have been
             * applied: the caller reads these back (store.h) */
            c->dispatched = a.disp;
            c->dispatched_specs = a.disp_specs;
            c->ndispatched = a.ndisp;
        } else {
            sked_claim_list_free(&a.disp, &a.disp_specs, &a.ndisp);
        }
        return rc;
    }
    c->runs = a.out.runs;
    c->specs = a.out.specs;
    c->nruns = a.out.n;
    c->more = a.more;
    c->dispatched = a.disp;
    c->dispatched_specs = a.disp_specs;
    c->ndispatched = a.ndisp;
    return 0;
}

/* ---- sweep, and the runs a dead scheduler may have left unpublished ---- */

typedef struct sweep_job {
    int slot;                           /* SWEEP or RUNS_IN_DOUBT */
    const char *owner;                  /* RUNS_IN_DOUBT's */
    sked_walltime at;
    sked_walltime marked_before;        /* RUNS_IN_DOUBT's */
    int limit;
    sked_pg_runbuf out;                 /* out */
    int more;                           /* out */
} sweep_job;

static int sweep_fn(sked_pg_tx *tx, void *arg, sked_err *err)
{
    sweep_job *a = arg;
    sked_pg_runbuf_free(&a->out);
    a->more = 0;
    sked_pg_params p = {0};
    PGresult *res;
    if (a->owner != NULL)
        sked_pg_p_text(&p, a->owner);
    sked_pg_p_i64(&p, a->at);
    sked_pg_p_i64(&p, (int64_t)a->limit + 1);
    if (a->owner != NULL)
        sked_pg_p_i64(&p, a->marked_before);
    int rc = sked_pg_exec(tx->c, a->slot, &p, &res, "sweep", err);
    if (rc == 0)
        rc = sked_pg_collect_runs(res, 1, (size_t)a->limit, &a->out,
                                  &a->more, err);
    PQclear(res);
    return rc;
}

static int sweep_read(sked_store *st, sweep_job *a, sked_claim *out, sked_err *err)
{
    int rc = sked_pg_run(S(st), SKED_PG_READ, sweep_fn, a, err);
    if (rc != 0) {
        sked_pg_runbuf_free(&a->out);
        return rc;
    }
    out->runs = a->out.runs;
    out->specs = a->out.specs;
    out->nruns = a->out.n;
    out->more = a->more;
    return 0;
}

int sked_pg_sweep_expired(sked_store *st, sked_walltime now, int limit,
                          sked_claim *out, sked_err *err)
{
    sweep_job a = {.slot = SKED_PG_SWEEP, .at = now, .limit = limit};
    return sweep_read(st, &a, out, err);
}

int sked_pg_runs_in_doubt(sked_store *st, const char *owner, sked_walltime since,
                          sked_walltime marked_before, int limit, sked_claim *out,
                          sked_err *err)
{
    sweep_job a = {.slot = SKED_PG_RUNS_IN_DOUBT, .owner = owner, .at = since,
                   .marked_before = marked_before, .limit = limit};
    return sweep_read(st, &a, out, err);
}
