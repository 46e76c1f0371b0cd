/*
 * store_pg_sched.c - what schedulers on PostgreSQL need to know of each
 * other: how many runs of a task are in flight anywhere (the overlap
 * policy), who is alive and what each has surely published (heartbeats),
 * and when another process made something due soon (LISTEN).
 *
 * Wake-ups: writes that make something due within SKED_PG_WAKE_WINDOW
 * send NOTIFY sked_wake with their COMMIT (store_pg.c).  wait_wake keeps a
 * session of its own, outside the pool, that LISTENs; a notification is
 * only a hint (the scheduler then claims), so after every reconnect it
 * answers "woken" at once: what was sent while it was away is not lost,
 * only coalesced.  With a multi-host URL and target_session_attrs=
 * read-write the session follows the primary through a failover, like the
 * pool's.
 */
#include "store/store_pg.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <time.h>

#define S(st) ((sked_pg_store *)(st))

const char *sked_pg_sched_sql(int slot)
{
    switch (slot) {
    case SKED_PG_RUNS_GET_MANY:
        return "SELECT " SKED_PG_RUN_COLS " FROM runs WHERE id = ANY($1::text[])";
    case SKED_PG_RUNS_GET_MANY_SPEC:
        return SKED_PG_RUN_SPEC_FROM "WHERE r.id = ANY($1::text[])";
    /* One statement (its own transaction): every CTE sees the rows as
     * they were before it, so `old` is the table before this beat. */
    case SKED_PG_SCHED_BEAT:
        return "WITH old AS (SELECT id, beats, beat_at, published_to "
               "FROM schedulers), "
               "up AS (INSERT INTO schedulers (id, beats, beat_at, published_to) "
               "VALUES ($1::text, $2::bigint, $3::bigint, $4::bigint) "
               "ON CONFLICT (id) DO UPDATE SET beats = excluded.beats, "
               "beat_at = excluded.beat_at, published_to = CASE WHEN $6::boolean "
               "THEN least(schedulers.published_to, excluded.published_to) "
               "ELSE excluded.published_to END), "
               "gone AS (DELETE FROM schedulers WHERE beat_at < $5::bigint "
               "AND id <> $1) "
               "SELECT id, beats, beat_at, published_to FROM old ORDER BY id";
    case SKED_PG_RUNS_ACTIVE:
        /* status > 0 AND status < 3: dispatched or running, by the
         * partial index runs_unfinished (status < 3) */
        return "SELECT (SELECT count(*) FROM runs AS r WHERE r.task_id = t "
               "AND r.status > 0 AND r.status < 3) "
               "FROM unnest($1::text[]) WITH ORDINALITY AS u(t, i) ORDER BY i";
    }
    return NULL;
}

/* Execute statement slot with one parameter: ids as a text[] literal.
 * *res as sked_pg_exec leaves it (PQclear it). */
static int exec_ids(sked_pg_tx *tx, int slot, const char *const *ids, size_t n,
                    PGresult **res, const char *what, sked_err *err)
{
    *res = NULL;
    sked_pg_arr arr;
    sked_pg_arr_begin(&arr);
    for (size_t i = 0; i < n; i++)
        sked_pg_arr_text(&arr, ids[i]);
    char *lit = sked_pg_arr_end(&arr);
    if (lit == NULL)
        return sked_err_set(err, SKED_ENOMEM, NULL, 0, "out of memory");
    sked_pg_params p = {0};
    sked_pg_p_own(&p, lit);
    int rc = sked_pg_exec(tx->c, slot, &p, res, what, err);
    sked_pg_params_free(&p);
    return rc;
}

typedef struct active_job {
    const char *const *ids;
    size_t n;
    int *counts;
} active_job;

static int active_fn(sked_pg_tx *tx, void *arg, sked_err *err)
{
    active_job *a = arg;
    PGresult *res;
    int rc = exec_ids(tx, SKED_PG_RUNS_ACTIVE, a->ids, a->n, &res, "tasks active", err);
    if (rc == 0 && (size_t)PQntuples(res) != a->n)
        rc = sked_err_set(err, SKED_EINTERNAL, NULL, 0, "tasks active: %d rows for %zu ids",
                          PQntuples(res), a->n);
    for (size_t i = 0; rc == 0 && i < a->n; i++)
        a->counts[i] = (int)sked_pg_i64(res, (int)i, 0);
    PQclear(res);
    return rc;
}

int sked_pg_tasks_active(sked_store *st, const char *const *task_ids, size_t n,
                         int *counts, sked_err *err)
{
    for (size_t i = 0; i < n; i++)
        if (task_ids[i] == NULL)
            return sked_err_set(err, SKED_EINVAL, NULL, (int)i + 1, "tasks active: NULL id");
    active_job a = {.ids = task_ids, .n = n, .counts = counts};
    return sked_pg_run(S(st), SKED_PG_READ, active_fn, &a, err);
}

typedef struct many_job {
    const char *const *ids;
    size_t n;
    sked_run_rec *out;
    int *found;
    char **specs;                      /* or NULL */
} many_job;

static void many_reset(many_job *a)
{
    for (size_t i = 0; i < a->n; i++)
        if (a->found[i]) {
            sked_run_rec_deinit(&a->out[i]);
            a->found[i] = 0;
            if (a->specs) {
                free(a->specs[i]);
                a->specs[i] = NULL;
            }
        }
}

static int many_fn(sked_pg_tx *tx, void *arg, sked_err *err)
{
    many_job *a = arg;
    many_reset(a); /* a second run of the transaction starts over */
    PGresult *res;
    int rc = exec_ids(tx, a->specs ? SKED_PG_RUNS_GET_MANY_SPEC : SKED_PG_RUNS_GET_MANY, a->ids,
                      a->n, &res, "run get", err);
    int rows = rc == 0 ? PQntuples(res) : 0;
    for (int row = 0; rc == 0 && row < rows; row++) {
        sked_run_rec r;
        if ((rc = sked_pg_read_run(res, row, &r, err)) != 0)
            break;
        char *spec = NULL;
        if (a->specs && (rc = sked_pg_dup(res, row, SKED_PG_RUN_NCOLS, &spec, "a spec", err)) != 0) {
            sked_run_rec_deinit(&r);
            break;
        }
        int placed = 0; /* every slot asking for this id (ids may repeat) */
        for (size_t i = 0; i < a->n; i++) {
            if (a->found[i] || strcmp(a->ids[i], r.id) != 0)
                continue;
            if (!placed) {
                a->out[i] = r;
                placed = 1;
            } else {
                a->out[i] = r;
                a->out[i].error = r.error ? strdup(r.error) : NULL;
                a->out[i].output = r.output ? strdup(r.output) : NULL;
            }
            if (a->specs)
                a->specs[i] = spec ? strdup(spec) : NULL;
            a->found[i] = 1;
        }
        free(spec);
        if (!placed)
            sked_run_rec_deinit(&r);
    }
    PQclear(res);
    if (rc != 0)
        many_reset(a);
    return rc;
}

int sked_pg_run_get_many(sked_store *st, const char *const *ids, size_t n, sked_run_rec *out,
                         int *found, char **specs, sked_err *err)
{
    many_job a = {.ids = ids, .n = n, .out = out, .found = found, .specs = specs};
    return sked_pg_run(S(st), SKED_PG_READ, many_fn, &a, err);
}

/* ---- wake-ups ------------------------------------------------------------ */

static void sleep_us(int64_t us)
{
    struct timespec ts = {.tv_sec = us / SKED_USEC_PER_SEC,
                          .tv_nsec = (long)(us % SKED_USEC_PER_SEC) * 1000};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

/* Take every notification the session holds; 1 when there was one. */
static int drain(PGconn *db)
{
    int got = 0;
    PGnotify *n;
    while ((n = PQnotifies(db)) != NULL) {
        got = 1;
        PQfreemem(n);
    }
    return got;
}

static int lost(sked_pg_store *s, int64_t timeout_us, sked_err *err)
{
    char msg[200];
    snprintf(msg, sizeof msg, "%s", s->listener ? PQerrorMessage(s->listener->db) : "");
    msg[strcspn(msg, "\n")] = '\0';
    sked_pg_conn_close(s->listener);
    s->listener = NULL;
    /* do not spin against a store that is down */
    sleep_us(timeout_us < SKED_USEC_PER_SEC ? timeout_us : SKED_USEC_PER_SEC);
    return sked_err_set(err, SKED_EUNAVAIL, "store", 0, "postgres store: listen: %s", msg);
}

int sked_pg_wait_wake(sked_store *st, int64_t timeout_us, sked_err *err)
{
    sked_pg_store *s = S(st);
    if (timeout_us < 0)
        timeout_us = 0;
    if (s->listener == NULL) {
        if (sked_pg_conn_open(s, &s->listener, err) != 0) {
            s->listener = NULL;
            sleep_us(timeout_us < SKED_USEC_PER_SEC ? timeout_us : SKED_USEC_PER_SEC);
            return err ? err->code : SKED_EUNAVAIL;
        }
        PGresult *r = PQexec(s->listener->db, "LISTEN sked_wake");
        int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
        PQclear(r);
        if (!ok)
            return lost(s, timeout_us, err);
        return 0; /* whatever was sent while we were not listening */
    }
    PGconn *db = s->listener->db;
    if (drain(db))
        return 0;
    struct pollfd pfd = {.fd = PQsocket(db), .events = POLLIN};
    if (pfd.fd < 0)
        return lost(s, timeout_us, err);
    int ms = (int)((timeout_us + 999) / 1000);
    int n = poll(&pfd, 1, ms);
    if (n < 0 && errno != EINTR)
        return lost(s, timeout_us, err);
    if (n <= 0)
        return SKED_EAGAIN;
    if (!PQconsumeInput(db) || PQstatus(db) != CONNECTION_OK)
        return lost(s, timeout_us, err);
    return drain(db) ? 0 : SKED_EAGAIN;
}

/* ---- heartbeats ---------------------------------------------------------- */

typedef struct beat_job {
    const sked_sched_rec *me;
    sked_walltime prune_before;
    sked_sched_rec *rows;               /* out */
    size_t n;                           /* out */
} beat_job;

static int beat_fn(sked_pg_tx *tx, void *arg, sked_err *err)
{
    beat_job *a = arg;
    free(a->rows);
    a->rows = NULL;
    a->n = 0;
    sked_pg_params p = {0};
    PGresult *res;
    sked_pg_p_text(&p, a->me->id);
    sked_pg_p_i64(&p, a->me->beats);
    sked_pg_p_i64(&p, a->me->beat_at);
    sked_pg_p_i64(&p, a->me->published_to);
    sked_pg_p_i64(&p, a->prune_before == SKED_TIME_NONE ? INT64_MIN : a->prune_before);
    sked_pg_p_raw(&p, a->me->keep_older ? "t" : "f");
    int rc = sked_pg_exec(tx->c, SKED_PG_SCHED_BEAT, &p, &res, "scheduler beat", err);
    size_t rows = rc == 0 ? (size_t)PQntuples(res) : 0;
    if (rows > 0 && (a->rows = calloc(rows, sizeof *a->rows)) == NULL)
        rc = sked_err_set(err, SKED_ENOMEM, NULL, 0, "out of memory");
    for (size_t i = 0; rc == 0 && i < rows; i++, a->n++) {
        sked_sched_rec *r = &a->rows[i];
        sked_pg_fixed(res, (int)i, 0, r->id, sizeof r->id);
        r->beats = sked_pg_i64(res, (int)i, 1);
        r->beat_at = sked_pg_i64(res, (int)i, 2);
        r->published_to = sked_pg_i64(res, (int)i, 3);
    }
    PQclear(res);
    return rc;
}

int sked_pg_sched_beat(sked_store *st, const sked_sched_rec *me,
                       sked_walltime prune_before, sked_sched_rec **out,
                       size_t *n, sked_err *err)
{
    /* one statement: a beat repeated after a broken connection is the
     * same beat */
    beat_job a = {.me = me, .prune_before = prune_before};
    int rc = sked_pg_run(S(st), SKED_PG_READ, beat_fn, &a, err);
    if (rc != 0) {
        free(a.rows);
        a.rows = NULL;
        a.n = 0;
    }
    *out = a.rows;
    *n = a.n;
    return rc;
}
