/*
 * store_pg.h - the inside of the PostgreSQL store backend, shared by its
 * files; the rest of sked sees only sked_store_pg_ops (store.h).
 *
 *   store_pg.c         the connection pool, transactions, reconnects,
 *                      error mapping, migrations, the ops table;
 *   store_pg_sql.c     parameters, array literals, prepared statements,
 *                      reading results;
 *   store_pg_tasks.c   the task methods;
 *   store_pg_tokens.c  the token methods;
 *   store_pg_claim.c   the claim (the scheduler's one big write) and the
 *                      sweep;
 *   store_pg_runs.c    the other run methods, workers;
 *   store_pg_prune.c   retention;
 *   store_pg_sched.c   schedulers' coordination: runs in flight per task,
 *                      LISTEN for wake-ups.
 *
 * A method packs its work into a function (sked_pg_fn) and hands it to
 * sked_pg_run, which takes a pooled connection and runs the function in
 * one transaction (BEGIN ... COMMIT; a single-statement read runs alone).
 * The function may run more than once (after a deadlock, a serialization
 * failure, or a connection that broke before COMMIT was sent): it must
 * write its results only into its own argument struct, resetting them when
 * it starts, and the method copies them out once sked_pg_run returned 0.
 *
 * Statements are prepared once per connection, on first use, by slot
 * number (the fixed ones below, and the variants of the two listings);
 * parameters travel as text (numbers, array literals) or as binary text
 * with an explicit length (strings), results come back as text.
 */
#ifndef SKED_STORE_PG_H
#define SKED_STORE_PG_H

#include <libpq-fe.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "store/store.h"

/* Columns of a task, in sked_pg_read_task's order. */
#define SKED_PG_TASK_COLS                                                 \
    "id, namespace, name, queue, spec, state, next_run_at, run_count, "   \
    "version, created_at, updated_at"
#define SKED_PG_TOKEN_COLS "id, hash, namespace, role, created_at, revoked_at"
/* Columns of a run, in sked_pg_read_run's order, each prefixed with p. */
#define SKED_PG_RUN_COLS_OF(p)                                            \
    p "id, " p "task_id, " p "namespace, " p "scheduled_at, " p "due_at, " \
    p "status, " p "reason, " p "attempt, " p "queue, " p "worker, "       \
    p "lease_owner, " p "lease_expires_at, " p "dispatched_at, "           \
    p "started_at, " p "finished_at, " p "lag_us, " p "exit_code, "        \
    p "http_status, " p "error, " p "output, " p "marked_at"
#define SKED_PG_RUN_COLS SKED_PG_RUN_COLS_OF("")
#define SKED_PG_RUN_NCOLS 21
/* A run and its task's spec (NULL once the task is deleted). */
#define SKED_PG_RUN_SPEC_FROM                                             \
    "SELECT " SKED_PG_RUN_COLS_OF("r.") ", t.spec FROM runs AS r "         \
    "LEFT JOIN tasks AS t ON t.id = r.task_id "

/* The fixed statements, by slot.  The SQL lives with the code that uses
 * it (sked_pg_task_sql and its siblings below); this only numbers them. */
#define SKED_PG_STMTS(X)                                                  \
    X(PING)                                                               \
    X(TASK_INSERT) X(TASK_EXISTS) X(TASK_GET) X(TASK_UPDATE)              \
    X(TASK_VERSION) X(TASK_DELETE) X(IDEM_PUT) X(IDEM_GET)                \
    X(TOKEN_INSERT) X(TOKEN_FIND) X(TOKEN_LIST) X(TOKEN_REVOKE)           \
    X(CLAIM_TASKS) X(CLAIM_ADVANCE) X(CLAIM_LEASE) X(CLAIM_OWNED)         \
    X(SWEEP) X(RUN_LOCK) X(RUN_UPDATE) X(RUN_INSERT) X(RUN_GET)           \
    X(PRUNE_WALK) X(PRUNE_WALK_FROM) X(PRUNE_WALK_BELOW) X(PRUNE_TASK)    \
    X(PRUNE_AGED) X(RUN_DELETE) X(WORKER_UPSERT) X(WORKER_LIST)         \
    X(RUNS_ACTIVE) X(RUNS_GET_MANY) X(RUNS_GET_MANY_SPEC) X(RUNS_IN_DOUBT) X(SCHED_BEAT)

enum {
#define X(name) SKED_PG_##name,
    SKED_PG_STMTS(X)
#undef X
    SKED_PG_STMT_COUNT
};

/* Slots of the listings' variants: one per set of filters (5 bits). */
#define SKED_PG_LIST_VARIANTS 32
#define SKED_PG_TASK_LIST_SLOT(mask) (SKED_PG_STMT_COUNT + (int)(mask))
#define SKED_PG_RUN_LIST_SLOT(mask) \
    (SKED_PG_STMT_COUNT + SKED_PG_LIST_VARIANTS + (int)(mask))
#define SKED_PG_SLOTS (SKED_PG_STMT_COUNT + 2 * SKED_PG_LIST_VARIANTS)

/* The SQL of fixed statement `slot`: each method file answers for its
 * own, NULL for another file's. */
const char *sked_pg_task_sql(int slot);
const char *sked_pg_token_sql(int slot);
const char *sked_pg_claim_sql(int slot);
const char *sked_pg_run_sql(int slot);
const char *sked_pg_prune_sql(int slot);
const char *sked_pg_sched_sql(int slot);

/* Why the last command on a connection failed, for sked_pg_run. */
enum {
    SKED_PG_OK = 0,
    SKED_PG_FAIL_SQL,     /* the statement's fault: give up              */
    SKED_PG_FAIL_CONN,    /* connection lost or not writable: reconnect   */
    SKED_PG_FAIL_RETRY,   /* deadlock, serialization: run the tx again    */
};

typedef struct sked_pg_conn {
    PGconn *db;
    int fail;                            /* SKED_PG_FAIL_* of the last error */
    unsigned char prepared[SKED_PG_SLOTS];
    int64_t plans_since;                 /* monotonic us: prepared since  */
    struct sked_pg_conn *next;           /* in the idle list */
} sked_pg_conn;

typedef struct sked_pg_store sked_pg_store;

/* run_prune's walk position (a task id), shared by the connections. */
#define SKED_PG_CURSOR_MAX 256

struct sked_pg_store {
    sked_store base;
    char *url;

    pthread_mutex_t mu;                  /* the pool: */
    pthread_cond_t cv;                   /*   signalled when one comes back */
    sked_pg_conn *idle;
    int nconn;                           /*   open, or being opened */

    pthread_mutex_t prune_mu;            /* run_prune's walk position */
    char prune_task[SKED_PG_CURSOR_MAX];
    int prune_below;

    sked_pg_conn *listener;              /* wait_wake's own session */
};


/* A new session on s's URL, set up as the pool's are; close with
 * sked_pg_conn_close (NULL is fine). */
int sked_pg_conn_open(const sked_pg_store *s, sked_pg_conn **out,
                      sked_err *err);
void sked_pg_conn_close(sked_pg_conn *c);

/* One run of a transaction function. */
typedef struct sked_pg_tx {
    sked_pg_store *s;
    sked_pg_conn *c;
    /* Set (with sked_pg_wake) to the earliest due time the transaction
     * made: at COMMIT the store sends NOTIFY sked_wake with it. */
    sked_walltime wake;
} sked_pg_tx;

typedef int (*sked_pg_fn)(sked_pg_tx *tx, void *arg, sked_err *err);

/* How sked_pg_run runs fn. */
enum {
    SKED_PG_READ = 0,     /* one statement, no BEGIN: retried once when the
                             connection broke                            */
    SKED_PG_WRITE = 1,    /* BEGIN ... COMMIT                             */
};

/* Run fn on a pooled connection, as `mode` says; 0 or fn's error, or
 * SKED_EUNAVAIL when the store cannot be reached or the connection broke
 * while COMMIT was in flight (the outcome is then unknown; the caller may
 * retry), SKED_EAGAIN when deadlocks/serialization failures persisted. */
int sked_pg_run(sked_pg_store *s, int mode, sked_pg_fn fn, void *arg,
                sked_err *err);

/* A NOTIFY sked_wake is due when something active comes due this soon. */
#define SKED_PG_WAKE_WINDOW (5 * SKED_USEC_PER_SEC)
/* Ask for NOTIFY sked_wake at commit when `due` is within the window. */
void sked_pg_wake(sked_pg_tx *tx, sked_walltime due);

/* ---- parameters -------------------------------------------------------- */

#define SKED_PG_MAXP 24

typedef struct sked_pg_params {
    int n;
    const char *v[SKED_PG_MAXP];
    int len[SKED_PG_MAXP];
    int fmt[SKED_PG_MAXP];
    char num[SKED_PG_MAXP][24];
    char *own[SKED_PG_MAXP];             /* freed by sked_pg_params_free */
} sked_pg_params;

void sked_pg_p_null(sked_pg_params *p);
/* n bytes at s as text (empty, not NULL, when n is 0). */
void sked_pg_p_bytes(sked_pg_params *p, const char *s, size_t n);
/* s as text; NULL is SQL NULL. */
void sked_pg_p_text(sked_pg_params *p, const char *s);
/* A fixed-size field (not necessarily NUL-terminated when full); "" is
 * SQL NULL. */
void sked_pg_p_fixed(sked_pg_params *p, const char *s, size_t cap);
void sked_pg_p_i64(sked_pg_params *p, int64_t v);
/* SKED_TIME_NONE is SQL NULL. */
void sked_pg_p_time(sked_pg_params *p, sked_walltime t);
/* A malloc'ed array literal (sked_pg_arr_end): p owns it. */
void sked_pg_p_own(sked_pg_params *p, char *literal);
/* Text in PostgreSQL's input syntax (an array literal), borrowed. */
void sked_pg_p_raw(sked_pg_params *p, const char *literal);
void sked_pg_params_free(sked_pg_params *p);

/* ---- array literals ("{...}", text format) ----------------------------- */

typedef struct sked_pg_arr {
    char *buf;
    size_t len, cap;
    int n, oom;
} sked_pg_arr;

void sked_pg_arr_begin(sked_pg_arr *a);
void sked_pg_arr_null(sked_pg_arr *a);
void sked_pg_arr_text(sked_pg_arr *a, const char *s);      /* NULL: NULL */
/* A fixed-size field; "" is NULL. */
void sked_pg_arr_fixed(sked_pg_arr *a, const char *s, size_t cap);
void sked_pg_arr_i64(sked_pg_arr *a, int64_t v);
void sked_pg_arr_time(sked_pg_arr *a, sked_walltime t);    /* NONE: NULL */
/* The literal (malloc'ed), or NULL when memory ran out (a is released
 * either way). */
char *sked_pg_arr_end(sked_pg_arr *a);
void sked_pg_arr_free(sked_pg_arr *a);

/* ---- statements -------------------------------------------------------- */

/* Prepare a listing's variant `slot` with its SQL and parameter types
 * (idempotent per connection). */
int sked_pg_prepare(sked_pg_conn *c, int slot, const char *sql, int nparams,
                    const Oid *types, sked_err *err);
/* Execute statement `slot` (prepared on first use) with p.  0, or the
 * mapped error with c->fail set (`what` names the step in the message).
 * Unless out is NULL, *out receives the result, the failed one too (for
 * sked_pg_is_unique): PQclear it either way. */
int sked_pg_exec(sked_pg_conn *c, int slot, const sked_pg_params *p,
                 PGresult **out, const char *what, sked_err *err);
/* A unique_violation (23505) of constraint `name` in res? */
int sked_pg_is_unique(const PGresult *res, const char *name);
/* Rows a command changed (its command tag). */
long sked_pg_changed(const PGresult *res);

/* Map a failed result (or NULL: the connection) to a SKED_E* code, set
 * c->fail and the message. */
int sked_pg_fail(sked_pg_conn *c, const PGresult *res, const char *what,
                 sked_err *err);

/* ---- reading results --------------------------------------------------- */

static inline int sked_pg_null(const PGresult *r, int row, int col)
{
    return PQgetisnull(r, row, col);
}

/* A number column; NULL reads as 0. */
static inline int64_t sked_pg_i64(const PGresult *r, int row, int col)
{
    if (PQgetisnull(r, row, col))
        return 0;
    return strtoll(PQgetvalue(r, row, col), NULL, 10);
}

/* A time column; NULL reads as SKED_TIME_NONE. */
static inline sked_walltime sked_pg_time(const PGresult *r, int row, int col)
{
    if (PQgetisnull(r, row, col))
        return SKED_TIME_NONE;
    return strtoll(PQgetvalue(r, row, col), NULL, 10);
}

/* Column into a fixed buffer, truncated; NULL reads as "". */
static inline void sked_pg_fixed(const PGresult *r, int row, int col,
                                 char *dst, size_t cap)
{
    const char *s = PQgetvalue(r, row, col);
    size_t n = (size_t)PQgetlength(r, row, col);
    if (n >= cap)
        n = cap - 1;
    memcpy(dst, s, n);
    dst[n] = '\0';
}

/* A malloc'ed copy of a column, NULL for SQL NULL; SKED_ENOMEM. */
int sked_pg_dup(const PGresult *r, int row, int col, char **out,
                const char *what, sked_err *err);

int sked_pg_read_task(const PGresult *r, int row, sked_task_rec *out,
                      sked_err *err);
int sked_pg_read_run(const PGresult *r, int row, sked_run_rec *out,
                     sked_err *err);

/* Runs handed out with their task's spec (claims, sweeps), or without
 * (listings: specs stays NULL). */
typedef struct sked_pg_runbuf {
    sked_run_rec *runs;
    char **specs;
    size_t n;
} sked_pg_runbuf;

/* Append the rows of res (run columns, then the spec when with_spec) to
 * b, at most max of them; *more is set when res holds a row beyond max. */
int sked_pg_collect_runs(const PGresult *res, int with_spec, size_t max,
                         sked_pg_runbuf *b, int *more, sked_err *err);
void sked_pg_runbuf_free(sked_pg_runbuf *b);

/* ---- checks ------------------------------------------------------------ */

/* The checks every listing makes: a namespace and a page size. */
int sked_pg_check_page(const char *ns, int limit, sked_err *err);

static inline int sked_pg_given(const char *s)
{
    return s != NULL && s[0] != '\0';
}

void sked_pg_prune_cursor_get(sked_pg_store *s, char *task, int *below);
void sked_pg_prune_cursor_set(sked_pg_store *s, const char *task, int below);

/* ---- methods ----------------------------------------------------------- */

int sked_pg_task_insert(sked_store *st, sked_task_rec *recs, size_t n,
                        const sked_idem *idem, sked_err *err);
int sked_pg_task_get(sked_store *st, const char *ns, const char *key,
                     sked_task_rec *out, sked_err *err);
int sked_pg_task_list(sked_store *st, const sked_task_filter *f,
                      sked_task_page *out, sked_err *err);
int sked_pg_task_update(sked_store *st, sked_task_rec *rec,
                        int64_t expect_version, sked_err *err);
int sked_pg_task_delete(sked_store *st, const char *ns, const char *id,
                        sked_err *err);
int sked_pg_token_insert(sked_store *st, const sked_token_rec *t,
                         sked_err *err);
int sked_pg_token_find(sked_store *st, const char *hash, sked_token_rec *out,
                       sked_err *err);
int sked_pg_token_list(sked_store *st, const char *ns, sked_token_rec **out,
                       size_t *n, sked_err *err);
int sked_pg_token_revoke(sked_store *st, const char *ns, const char *id,
                         sked_walltime at, sked_err *err);
int sked_pg_claim_due(sked_store *st, sked_claim *c, sked_err *err);
int sked_pg_run_update(sked_store *st, sked_run_change *changes, size_t n,
                       sked_err *err);
int sked_pg_sweep_expired(sked_store *st, sked_walltime now, int limit,
                          sked_claim *out, sked_err *err);
int sked_pg_runs_in_doubt(sked_store *st, const char *owner, sked_walltime since,
                          sked_walltime marked_before, int limit, sked_claim *out,
                          sked_err *err);
int sked_pg_sched_beat(sked_store *st, const sked_sched_rec *me,
                       sked_walltime prune_before, sked_sched_rec **out,
                       size_t *n, sked_err *err);
int sked_pg_run_insert(sked_store *st, const sked_run_rec *r, sked_err *err);
int sked_pg_run_get(sked_store *st, const char *ns, const char *id,
                    sked_run_rec *out, sked_err *err);
int sked_pg_run_list(sked_store *st, const sked_run_filter *f,
                     sked_run_page *out, sked_err *err);
int sked_pg_run_prune(sked_store *st, sked_walltime older_than,
                      int keep_per_task, int limit, int64_t *deleted,
                      sked_err *err);
int sked_pg_worker_upsert(sked_store *st, const sked_worker_rec *w,
                          sked_err *err);
int sked_pg_tasks_active(sked_store *st, const char *const *task_ids, size_t n,
                         int *counts, sked_err *err);
int sked_pg_wait_wake(sked_store *st, int64_t timeout_us, sked_err *err);
int sked_pg_run_get_many(sked_store *st, const char *const *ids, size_t n, sked_run_rec *out,
                         int *found, char **specs, sked_err *err);
int sked_pg_worker_list(sked_store *st, sked_walltime since,
                        sked_worker_rec **out, size_t *n, sked_err *err);

#endif
