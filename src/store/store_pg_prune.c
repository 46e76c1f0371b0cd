/*
 * store_pg_prune.c - retention in the PostgreSQL store (run_prune): finished
 * runs older than a limit, or beyond the newest N of their task.
 *
 * The count rule walks the table, a slice per call (below).  The age rule
 * needs no walk: runs_finished (finished runs by finished_at) hands over
 * the oldest victims directly, as many as the walk left of `limit`.  The
 * walk goes first, so it ranks a task's finished runs with the old ones
 * still among them, as the SQLite store does.
 *
 * Not here: when to call it (sched/), the other run methods
 * (store_pg_runs.c).
 */
#include "store/store_pg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S(st) ((sked_pg_store *)(st))

/* run_prune reads about this many rows per call (whole tasks), so one
 * call holds its connection for tens of milliseconds. */
#define PRUNE_BUDGET 20000

const char *sked_pg_prune_sql(int slot)
{
    switch (slot) {
    /* Retention's walk over finished runs: task by task (descending),
     * newest occurrence first, from the start, from a task on, or below a
     * task. */
    case SKED_PG_PRUNE_WALK:
        return "SELECT id, task_id FROM runs WHERE status >= 3 "
               "ORDER BY task_id DESC, scheduled_at DESC LIMIT $1::bigint";
    case SKED_PG_PRUNE_WALK_FROM:
        return "SELECT id, task_id FROM runs "
               "WHERE task_id <= $2::text AND status >= 3 "
               "ORDER BY task_id DESC, scheduled_at DESC LIMIT $1::bigint";
    case SKED_PG_PRUNE_WALK_BELOW:
        return "SELECT id, task_id FROM runs "
               "WHERE task_id < $2::text AND status >= 3 "
               "ORDER BY task_id DESC, scheduled_at DESC LIMIT $1::bigint";
    case SKED_PG_PRUNE_TASK:
        return "SELECT id, task_id FROM runs "
               "WHERE task_id = $1::text AND status >= 3 "
               "ORDER BY scheduled_at DESC";
    case SKED_PG_PRUNE_AGED:
        return "DELETE FROM runs WHERE id IN (SELECT id FROM runs "
               "WHERE status >= 3 AND finished_at < $1::bigint "
               "ORDER BY finished_at LIMIT $2::bigint) AND status >= 3";
    case SKED_PG_RUN_DELETE:
        return "DELETE FROM runs WHERE id = ANY ($1::text[]) AND status >= 3";
    }
    return NULL;
}

/* The count rule's walk over the finished runs, task by task (by task_id
 * descending, the unique index (task_id, scheduled_at) read backwards),
 * each task's runs newest occurrence first, so the rule is a counter.  A
 * call reads up to PRUNE_BUDGET rows from where the previous call stopped
 * and judges only whole tasks: the last task of a full slice is left for
 * the next call, unless it is the only one (a task with more runs than
 * the budget), which is then read whole.  At the end of the table the
 * walk starts over.  The position is the store's (all its connections
 * share it); it moves on only when the transaction committed. */
typedef struct prune_job {
    sked_pg_store *s;
    sked_walltime older_than;
    int keep, limit;
    char **victims;                     /* limit ids, pointing into res */
    char next[SKED_PG_CURSOR_MAX];      /* out: where the next call starts */
    int next_below;                     /* out: strictly below next */
    int64_t deleted;                    /* out */
} prune_job;

/* Judge rows [0, rows) of res (whole tasks); collect victims into
 * a->victims from *nv on.  1 when the victim limit stopped the walk, with
 * a->next set to the task to look at again. */
static int judge(prune_job *a, PGresult *res, int rows, size_t *nv)
{
    const char *task = "";
    int rank = 0;
    for (int i = 0; i < rows; i++) {
        const char *t = PQgetvalue(res, i, 1);
        if (strcmp(t, task) != 0) {
            task = t;
            rank = 0;
        }
        if (++rank <= a->keep)
            continue;
        a->victims[(*nv)++] = PQgetvalue(res, i, 0);
        if (*nv == (size_t)a->limit) {
            snprintf(a->next, sizeof a->next, "%s", task);
            a->next_below = 0;
            return 1;
        }
    }
    return 0;
}

static int prune_delete(sked_pg_tx *tx, prune_job *a, size_t nv,
                        sked_err *err)
{
    if (nv == 0)
        return 0;
    sked_pg_arr arr;
    sked_pg_arr_begin(&arr);
    for (size_t i = 0; i < nv; i++)
        sked_pg_arr_text(&arr, a->victims[i]);
    char *lit = sked_pg_arr_end(&arr);
    if (lit == NULL)
        return sked_err_set(err, SKED_ENOMEM, NULL, 0, "out of memory");
    sked_pg_params p = {0};
    PGresult *res;
    sked_pg_p_own(&p, lit);
    int rc = sked_pg_exec(tx->c, SKED_PG_RUN_DELETE, &p, &res, "run prune",
                          err);
    if (rc == 0)
        a->deleted += sked_pg_changed(res);
    PQclear(res);
    sked_pg_params_free(&p);
    return rc;
}

/* The age rule: the oldest finished runs, as many as the limit leaves. */
static int prune_aged(sked_pg_tx *tx, prune_job *a, sked_err *err)
{
    sked_pg_params p = {0};
    PGresult *res;
    sked_pg_p_i64(&p, a->older_than);
    sked_pg_p_i64(&p, a->limit - a->deleted);
    int rc = sked_pg_exec(tx->c, SKED_PG_PRUNE_AGED, &p, &res, "run prune",
                          err);
    if (rc == 0)
        a->deleted += sked_pg_changed(res);
    PQclear(res);
    return rc;
}

/* The count rule: one slice of the walk. */
static int prune_walk(sked_pg_tx *tx, prune_job *a, sked_err *err)
{
    char cursor[SKED_PG_CURSOR_MAX];
    int below;
    sked_pg_prune_cursor_get(a->s, cursor, &below);
    a->next[0] = '\0';
    a->next_below = 0;

    sked_pg_params p = {0};
    PGresult *res = NULL, *whole = NULL;
    sked_pg_p_i64(&p, PRUNE_BUDGET);
    if (cursor[0] != '\0')
        sked_pg_p_text(&p, cursor);
    int rc = sked_pg_exec(tx->c,
                          cursor[0] == '\0' ? SKED_PG_PRUNE_WALK
                          : below           ? SKED_PG_PRUNE_WALK_BELOW
                                            : SKED_PG_PRUNE_WALK_FROM,
                          &p, &res, "run prune", err);
    if (rc != 0)
        goto done;
    int rows = PQntuples(res);
    size_t nv = 0;
    if (rows < PRUNE_BUDGET) {
        judge(a, res, rows, &nv);           /* the end: wrap around */
    } else {
        const char *last = PQgetvalue(res, rows - 1, 1);
        int keep_rows = rows;
        while (keep_rows > 0 &&
               strcmp(PQgetvalue(res, keep_rows - 1, 1), last) == 0)
            keep_rows--;
        if (keep_rows > 0) {
            if (!judge(a, res, keep_rows, &nv)) {
                snprintf(a->next, sizeof a->next, "%s", last);
                a->next_below = 0;
            }
        } else {
            /* One task fills the slice: read all of it. */
            p.n = 0;
            sked_pg_p_text(&p, last);
            if ((rc = sked_pg_exec(tx->c, SKED_PG_PRUNE_TASK, &p, &whole,
                                   "run prune", err)) != 0)
                goto done;
            if (!judge(a, whole, PQntuples(whole), &nv)) {
                snprintf(a->next, sizeof a->next, "%s", last);
                a->next_below = 1;
            }
        }
    }
    rc = prune_delete(tx, a, nv, err);
done:
    PQclear(res);
    PQclear(whole);
    return rc;
}

static int prune_fn(sked_pg_tx *tx, void *arg, sked_err *err)
{
    prune_job *a = arg;
    int rc = 0;
    a->deleted = 0;
    if (a->keep > 0 && (rc = prune_walk(tx, a, err)) != 0)
        return rc;
    if (a->older_than != SKED_TIME_NONE && a->deleted < a->limit)
        rc = prune_aged(tx, a, err);
    return rc;
}

int sked_pg_run_prune(sked_store *st, sked_walltime older_than,
                      int keep_per_task, int limit, int64_t *deleted,
                      sked_err *err)
{
    if (older_than == SKED_TIME_NONE && keep_per_task <= 0)
        return 0;
    prune_job a = {.s = S(st), .older_than = older_than,
                   .keep = keep_per_task, .limit = limit};
    if ((a.victims = malloc((size_t)limit * sizeof *a.victims)) == NULL)
        return sked_err_set(err, SKED_ENOMEM, NULL, 0, "out of memory");
    int rc = sked_pg_run(S(st), SKED_PG_WRITE, prune_fn, &a, err);
    free(a.victims);
    if (rc != 0)
        return rc;
    if (keep_per_task > 0)
        sked_pg_prune_cursor_set(S(st), a.next, a.next_below);
    *deleted = a.deleted;
    return 0;
}
