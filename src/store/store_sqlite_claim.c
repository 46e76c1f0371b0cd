/*
 * store_sqlite_claim.c - the claim of the SQLite store: the one write a
 * scheduler makes to learn what it must publish next (store.h, sked_claim;
 * DESIGN.md §4).
 *
 * One job of the group-commit writer, so one transaction, in three steps:
 *
 *   1. due tasks: active tasks with next_run_at <= horizon, and one-time
 *      tasks with next_run_at <= once_horizon, earliest first,
 *      at most limit.  For each, advance() (the caller's policy) says which
 *      occurrences to record and where the task goes next; the runs are
 *      inserted with ON CONFLICT (task_id, scheduled_at) DO NOTHING, so an
 *      occurrence is one row however many claims see it, and the task's
 *      next_run_at, state and run_count move on;
 *   2. free runs: scheduled runs due by horizon whose lease is free (never
 *      leased: retries, triggers; or expired: their scheduler died) are
 *      leased to the owner, at most limit;
 *   3. the answer: every scheduled run leased to the owner and due by
 *      horizon, earliest first, at most limit + nexclude (the wrapper
 *      leaves the excluded out, store.c), with its task's spec - the new
 *      ones, the re-leased ones, and the ones leased by earlier claims of
 *      the same owner (so a scheduler restarted under the same id gets
 *      its runs back).
 *
 * SQLite has one writer, so two claims never interleave here; the unique
 * index still guards every way an occurrence could be inserted twice
 * (a trigger at the same instant, a policy that repeats itself, a task
 * written back by an API update that raced the claim).
 *
 * Not here: the policies (sched/policy.c), the timer (sched/), the other
 * run methods (store_sqlite_runs.c).
 */
#include "store/store_sqlite.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/ids.h"

#define S(st) ((sked_sqlite_store *)(st))


typedef struct claim_job {
    const sked_claim *c;              /* the inputs only */
    sked_task_rec *tasks;             /* scratch: c->limit due tasks */
    sked_sqlite_runbuf out;           /* out: step 3 */
    int more;                         /* out */
    sked_run_rec *disp;               /* out: recorded dispatched */
    char **disp_specs;
    size_t ndisp;
} claim_job;

/* The lease of a run claimed now: it runs from the later of due and now,
 * so a run found late (a misfire, a retry that waited for a claim) is not
 * born with an expired lease that another scheduler could take at once. */
static sked_walltime lease_end(sked_walltime due, sked_walltime now,
                               int64_t lease_us)
{
    sked_walltime from = due > now ? due : now;
    return from > INT64_MAX - lease_us ? INT64_MAX : from + lease_us;
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
    int rc = sked_sqlite_col_dup(q, 2, &out->name, "a task", err);
    if (rc == 0)
        rc = sked_sqlite_col_dup(q, 4, &out->spec, "a task", err);
    if (rc != 0)
        sked_task_rec_deinit(out);
    return rc;
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

/* How many runs of task id are scheduled, dispatched or running. */
static int count_unfinished(sked_sqlite_conn *c, const char *id, int *out,
                            sked_err *err)
{
    sqlite3_stmt *q;
    int rc = sked_sqlite_stmt(c, SKED_SQLITE_RUN_UNFINISHED, &q, err);
    if (rc != 0)
        return rc;
    sked_sqlite_bind_text(q, 1, id);
    int src = sqlite3_step(q);
    if (src == SQLITE_ROW)
        *out = sqlite3_column_int(q, 0);
    sqlite3_reset(q);
    if (src != SQLITE_ROW)
        return sked_sqlite_fail(c->db, src, err, "claim: unfinished runs");
    return 0;
}

/* Insert the occurrences of adv for task t; *inserted counts the rows
 * that were new; those recorded dispatched go to a's list. */
static int insert_occurrences(sked_sqlite_conn *c, claim_job *a,
                              const sked_task_rec *t, const sked_advance *adv,
                              int *inserted, sked_err *err)
{
    const sked_claim *cl = a->c;
    sqlite3_stmt *q;
    int rc = sked_sqlite_stmt(c, SKED_SQLITE_CLAIM_INSERT, &q, err);
    if (rc != 0)
        return rc;
    *inserted = 0;
    for (int i = 0; i < adv->nocc; i++) {
        const sked_occurrence *o = &adv->occ[i];
        sked_walltime due =
            o->due_at == SKED_TIME_NONE ? o->scheduled_at : o->due_at;
        char id[SKED_UUID_TEXT];
        sked_uuid7(id);
        sked_run_rec d;
        int dispatch = sked_claim_dispatched_rec(cl, t, id, o, &d);
        sked_sqlite_bind_text(q, 1, id);
        sked_sqlite_bind_text(q, 2, t->id);
        sked_sqlite_bind_text(q, 3, t->ns);
        sqlite3_bind_int64(q, 4, o->scheduled_at);
        sqlite3_bind_int64(q, 5, due);
        sked_sqlite_bind_text(q, 8, t->queue);
        if (o->skipped) {
            /* A skip is a finished run: no lease. */
            sqlite3_bind_int(q, 6, SKED_RUN_SKIPPED);
            sked_sqlite_bind_text(q, 7, o->reason);
            sqlite3_bind_null(q, 9);
            sqlite3_bind_null(q, 10);
            sqlite3_bind_int64(q, 11, cl->now);
        } else if (dispatch) {
            sqlite3_bind_int(q, 6, SKED_RUN_DISPATCHED);
            sqlite3_bind_null(q, 7);
            sked_sqlite_bind_text(q, 9, cl->owner);
            sqlite3_bind_int64(q, 10, d.lease_expires_at);
            sqlite3_bind_null(q, 11);
        } else {
            sqlite3_bind_int(q, 6, SKED_RUN_SCHEDULED);
            sqlite3_bind_null(q, 7);
            sked_sqlite_bind_text(q, 9, cl->owner);
            sqlite3_bind_int64(q, 10, lease_end(due, cl->now, cl->lease_us));
            sqlite3_bind_null(q, 11);
        }
        if (dispatch) {
            sqlite3_bind_int64(q, 12, d.dispatched_at);
            sqlite3_bind_int64(q, 13, d.marked_at);
        } else {
            sqlite3_bind_null(q, 12);
            sqlite3_bind_null(q, 13);
        }
        int src = sqlite3_step(q);
        sqlite3_reset(q);
        if (src != SQLITE_DONE)
            return sked_sqlite_fail(c->db, src, err, "claim: insert run");
        int changed = sqlite3_changes(c->db);
        *inserted += changed;
        if (dispatch && changed &&
            (rc = sked_claim_list_add(&a->disp, &a->disp_specs, &a->ndisp, &d, t->spec,
                                      err)) != 0)
            return rc;
    }
    return 0;
}

/* Step 1 for one task.  A task whose advance fails (its spec cannot be
 * read) is left as it is. */
static int advance_task(sked_sqlite_conn *c, claim_job *a,
                        const sked_task_rec *t, sked_err *err)
{
    const sked_claim *cl = a->c;
    int unfinished = 0, inserted = 0;
    int rc = count_unfinished(c, t->id, &unfinished, err);
    if (rc != 0)
        return rc;
    sked_advance adv;
    adv.nocc = 0;
    adv.next_run_at = SKED_TIME_NONE;
    adv.state = SKED_TASK_ACTIVE;
    if (cl->advance(cl->ctx, t, unfinished, &adv) < 0 || !advance_ok(&adv))
        return 0;
    if ((rc = insert_occurrences(c, a, t, &adv, &inserted, err)) != 0)
        return rc;

    /* The claim moves the task along its schedule but leaves `version` and
     * `updated_at` alone: the ETag stands for the user's spec, and a
     * client's If-Match must not fail because the task fired. */
    sqlite3_stmt *q;
    if ((rc = sked_sqlite_stmt(c, SKED_SQLITE_CLAIM_ADVANCE, &q, err)) != 0)
        return rc;
    sked_sqlite_bind_text(q, 1, t->id);
    sked_sqlite_bind_time(q, 2, adv.next_run_at);
    sqlite3_bind_int(q, 3, (int)adv.state);
    sqlite3_bind_int(q, 4, inserted);
    int src = sqlite3_step(q);
    sqlite3_reset(q);
    if (src != SQLITE_DONE)
        return sked_sqlite_fail(c->db, src, err, "claim: advance task");
    return 0;
}

/* Step 1: read the due tasks first (the statement is reset before any of
 * them is written), then advance them one by one. */
static int claim_tasks(sked_sqlite_conn *c, claim_job *a, sked_err *err)
{
    const sked_claim *cl = a->c;
    sqlite3_stmt *q;
    int rc = sked_sqlite_stmt(c, SKED_SQLITE_CLAIM_TASKS, &q, err);
    if (rc != 0)
        return rc;
    sqlite3_bind_int64(q, 1, cl->horizon);
    sqlite3_bind_int64(q, 3, cl->once_horizon > cl->horizon ? cl->once_horizon : cl->horizon);
    sqlite3_bind_int(q, 2, cl->limit + 1);
    size_t n = 0;
    int src;
    while ((src = sqlite3_step(q)) == SQLITE_ROW) {
        if (n == (size_t)cl->limit) {
            a->more = 1;
            break;
        }
        if ((rc = read_task(q, &a->tasks[n], err)) != 0)
            break;
        n++;
    }
    sqlite3_reset(q);
    if (rc == 0 && src != SQLITE_ROW && src != SQLITE_DONE)
        rc = sked_sqlite_fail(c->db, src, err, "claim: due tasks");
    for (size_t i = 0; rc == 0 && i < n; i++)
        rc = advance_task(c, a, &a->tasks[i], err);
    for (size_t i = 0; i < n; i++)
        sked_task_rec_deinit(&a->tasks[i]);
    return rc;
}

/* Step 2: lease free scheduled runs to the owner. */
static int lease_free(sked_sqlite_conn *c, claim_job *a, sked_err *err)
{
    const sked_claim *cl = a->c;
    sqlite3_stmt *q;
    int rc = sked_sqlite_stmt(c, SKED_SQLITE_CLAIM_RELEASE, &q, err);
    if (rc != 0)
        return rc;
    sked_sqlite_bind_text(q, 1, cl->owner);
    sqlite3_bind_int64(q, 2, cl->horizon);
    sqlite3_bind_int64(q, 3, cl->now);
    sqlite3_bind_int64(q, 4, cl->lease_us);
    sqlite3_bind_int(q, 5, cl->limit);
    int src = sqlite3_step(q);
    sqlite3_reset(q);
    if (src != SQLITE_DONE)
        return sked_sqlite_fail(c->db, src, err, "claim: free runs");
    if (sqlite3_changes(c->db) >= cl->limit)
        a->more = 1;
    return 0;
}

/* Step 3: what the owner holds. */
static int owned(sked_sqlite_conn *c, claim_job *a, sked_err *err)
{
    const sked_claim *cl = a->c;
    sqlite3_stmt *q;
    int rc = sked_sqlite_stmt(c, SKED_SQLITE_CLAIM_OWNED, &q, err);
    if (rc != 0)
        return rc;
    sked_sqlite_bind_text(q, 1, cl->owner);
    sqlite3_bind_int64(q, 2, cl->horizon);
    /* the excluded ones come too; the wrapper leaves them out (store.c) */
    size_t want = (size_t)cl->limit + cl->nexclude;
    sqlite3_bind_int64(q, 3, (sqlite3_int64)want + 1);
    rc = sked_sqlite_collect_runs(c, q, 1, want, &a->out, &a->more, err);
    sqlite3_reset(q);
    return rc;
}

static int claim_fn(sked_sqlite_conn *c, void *arg, sked_err *err)
{
    claim_job *a = arg;
    /* A retried transaction runs the job again from scratch. */
    sked_sqlite_runbuf_free(&a->out);
    sked_claim_list_free(&a->disp, &a->disp_specs, &a->ndisp);
    a->more = 0;
    int rc = claim_tasks(c, a, err);
    if (rc == 0)
        rc = lease_free(c, a, err);
    if (rc == 0)
        rc = owned(c, a, err);
    return rc;
}

int sked_sqlite_claim_due(sked_store *st, sked_claim *c, sked_err *err)
{
    int rc;
    claim_job a = {.c = c};
    if ((a.tasks = calloc((size_t)c->limit, sizeof *a.tasks)) == NULL)
        return sked_err_set(err, SKED_ENOMEM, NULL, 0, "out of memory");
    rc = sked_sqlite_write_lazy(S(st), claim_fn, &a, c->may_lose, err);
    free(a.tasks);
    if (rc != 0) {
        sked_sqlite_runbuf_free(&a.out);
        sked_claim_list_free(&a.disp, &a.disp_specs, &a.ndisp);
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
