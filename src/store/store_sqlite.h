/*
 * store_sqlite.h - the inside of the SQLite store backend, shared by its
 * files; the rest of sked sees only sked_store_sqlite_ops (store.h).
 *
 *   store_sqlite.c        connections, migrations, the group-commit writer,
 *                         the reader pool, error mapping, the ops table;
 *   store_sqlite_tasks.c  the task methods;
 *   store_sqlite_tokens.c the token methods;
 *   store_sqlite_claim.c  the claim (the scheduler's one big write);
 *   store_sqlite_runs.c   the other run methods, retention;
 *   store_sqlite_nodes.c  workers' and schedulers' heartbeats;
 *   store_sqlite_migrate.c the schema migrations;
 *   store_sqlite_sync.c   background fsync of lazy commits, checkpoints.
 *
 * Writes: one writer thread owns the write connection.  A method packs its
 * work into a job function and calls sked_sqlite_write, which queues the
 * job and blocks; the writer runs every queued job inside one
 * BEGIN IMMEDIATE ... COMMIT, each job in its own SAVEPOINT, so a job that
 * fails rolls back alone.  A job may therefore run more than once (when the
 * whole transaction has to be retried): it must write its results only
 * into its own argument struct, never into the caller's records; the
 * method copies them out once sked_sqlite_write returned 0.
 *
 * Reads: a pool of read connections; a reader takes one for the call and
 * gives it back.  Every statement is reset after use, so no read
 * transaction outlives a call.
 */
#ifndef SKED_STORE_SQLITE_H
#define SKED_STORE_SQLITE_H

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/store.h"

/* Cached statements, prepared once per connection on first use. */
#define SKED_SQLITE_TASK_COLS                                             \
    "id, namespace, name, queue, spec, state, next_run_at, run_count, "  \
    "version, created_at, updated_at"
#define SKED_SQLITE_TOKEN_COLS                                            \
    "id, hash, namespace, role, created_at, revoked_at"
/* The columns of a run, in sked_sqlite_read_run's order, each prefixed
 * with p ("" or "r."). */
#define SKED_SQLITE_RUN_COLS_OF(p)                                        \
    p "id, " p "task_id, " p "namespace, " p "scheduled_at, " p "due_at, " \
    p "status, " p "reason, " p "attempt, " p "queue, " p "worker, "       \
    p "lease_owner, " p "lease_expires_at, " p "dispatched_at, "           \
    p "started_at, " p "finished_at, " p "lag_us, " p "exit_code, "        \
    p "http_status, " p "error, " p "output, " p "marked_at"
#define SKED_SQLITE_RUN_COLS SKED_SQLITE_RUN_COLS_OF("")
#define SKED_SQLITE_RUN_NCOLS 21
/* A run and its task's spec (NULL once the task is deleted). */
#define SKED_SQLITE_RUN_SPEC_FROM                                         \
    "SELECT " SKED_SQLITE_RUN_COLS_OF("r.") ", t.spec FROM runs AS r "     \
    "LEFT JOIN tasks AS t ON t.id = r.task_id "

#define SKED_SQLITE_STMTS(X)                                              \
    X(PING, "SELECT 1")                                                   \
    X(TASK_INSERT, "INSERT INTO tasks (" SKED_SQLITE_TASK_COLS ") "       \
      "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)")            \
    X(TASK_GET_ID, "SELECT " SKED_SQLITE_TASK_COLS " FROM tasks "         \
      "WHERE namespace = ?1 AND id = ?2")                                 \
    X(TASK_GET_NAME, "SELECT " SKED_SQLITE_TASK_COLS " FROM tasks "       \
      "WHERE namespace = ?1 AND name = ?2")                               \
    X(TASK_UPDATE, "UPDATE tasks SET name = ?3, queue = ?4, spec = ?5, "  \
      "state = ?6, next_run_at = ?7, run_count = max(run_count, ?8), "    \
      "version = version + 1, updated_at = ?9 "                           \
      "WHERE namespace = ?1 AND id = ?2 AND (?10 <= 0 OR version = ?10) " \
      "RETURNING version")                                                \
    X(TASK_VERSION, "SELECT version FROM tasks "                          \
      "WHERE namespace = ?1 AND id = ?2")                                 \
    X(TASK_DELETE, "DELETE FROM tasks WHERE namespace = ?1 AND id = ?2")  \
    X(IDEM_GET, "SELECT request_hash, task_id FROM idempotency_keys "     \
      "WHERE namespace = ?1 AND key = ?2")                                \
    X(IDEM_PUT, "INSERT INTO idempotency_keys "                           \
      "(namespace, key, request_hash, task_id, created_at) "              \
      "VALUES (?1, ?2, ?3, ?4, ?5)")                                      \
    X(TOKEN_INSERT, "INSERT INTO tokens (" SKED_SQLITE_TOKEN_COLS ") "    \
      "VALUES (?1, ?2, ?3, ?4, ?5, ?6)")                                  \
    X(TOKEN_FIND, "SELECT " SKED_SQLITE_TOKEN_COLS " FROM tokens "        \
      "WHERE hash = ?1 AND revoked_at IS NULL")                           \
    X(TOKEN_LIST, "SELECT " SKED_SQLITE_TOKEN_COLS " FROM tokens "        \
      "WHERE ?1 IS NULL OR namespace = ?1 ORDER BY created_at, id")       \
    X(TOKEN_REVOKE, "UPDATE tokens SET revoked_at = "                     \
      "coalesce(revoked_at, ?3) "                                         \
      "WHERE id = ?1 AND (?2 IS NULL OR namespace = ?2)")                 \
    /* claim: due tasks, their unfinished runs, new runs, the advance */  \
    /* due by ?1, then one-time tasks (the canonical spec's mark of an \
     * `at` schedule: index tasks_due_once) up to ?3 */                   \
    X(CLAIM_TASKS, "SELECT * FROM (SELECT " SKED_SQLITE_TASK_COLS         \
      " FROM tasks WHERE next_run_at <= ?1 AND state = 0 "                \
      "ORDER BY next_run_at LIMIT ?2) UNION ALL "                         \
      "SELECT * FROM (SELECT " SKED_SQLITE_TASK_COLS " FROM tasks "       \
      "WHERE next_run_at > ?1 AND next_run_at <= ?3 AND state = 0 "       \
      "AND next_run_at IS NOT NULL "                                      \
      "AND instr(spec, '\"schedule\":{\"at\":') > 0 "                   \
      "ORDER BY next_run_at LIMIT ?2) ORDER BY next_run_at LIMIT ?2")     \
    X(RUN_UNFINISHED, "SELECT count(*) FROM runs "                        \
      "WHERE task_id = ?1 AND status < 3")                                \
    X(CLAIM_INSERT, "INSERT INTO runs (id, task_id, namespace, "          \
      "scheduled_at, due_at, status, reason, attempt, queue, "            \
      "lease_owner, lease_expires_at, finished_at, dispatched_at, "      \
      "marked_at) "                                                       \
      "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 1, ?8, ?9, ?10, ?11, ?12, ?13) " \
      "ON CONFLICT (task_id, scheduled_at) DO NOTHING")                   \
    X(CLAIM_ADVANCE, "UPDATE tasks SET next_run_at = ?2, state = ?3, "    \
      "run_count = run_count + ?4 WHERE id = ?1")                         \
    /* A free lease is nobody's (NULL) or past: two ranges of runs_lease, \
     * as an OR would cost the index. */                                  \
    X(CLAIM_RELEASE, "UPDATE runs SET lease_owner = ?1, "                 \
      "lease_expires_at = max(due_at, ?3) + ?4 WHERE rowid IN ("          \
      "SELECT rowid FROM (SELECT rowid, due_at FROM runs "                \
      "WHERE status = 0 AND lease_expires_at IS NULL AND due_at <= ?2 "   \
      "UNION ALL SELECT rowid, due_at FROM runs "                         \
      "WHERE status = 0 AND lease_expires_at < ?3 AND due_at <= ?2 "      \
      "ORDER BY 2 LIMIT ?5))")                                            \
    X(CLAIM_OWNED, SKED_SQLITE_RUN_SPEC_FROM                              \
      "WHERE r.status = 0 AND r.lease_owner = ?1 AND r.due_at <= ?2 "     \
      "ORDER BY r.due_at, r.id LIMIT ?3")                                 \
    /* runs */                                                            \
    X(SWEEP, SKED_SQLITE_RUN_SPEC_FROM                                    \
      "WHERE r.status IN (1, 2) AND r.lease_expires_at < ?1 "             \
      "ORDER BY r.lease_expires_at, r.id LIMIT ?2")                       \
    X(RUN_UPDATE, "UPDATE runs SET due_at = ?2, status = ?3, reason = ?4, " \
      "attempt = ?5, worker = ?6, lease_owner = ?7, "                     \
      "lease_expires_at = ?8, dispatched_at = ?9, started_at = ?10, "     \
      "finished_at = ?11, lag_us = ?12, exit_code = ?13, "                \
      "http_status = ?14, error = ?15, output = ?16, marked_at = ?21 "    \
      "WHERE id = ?1 AND attempt = ?17 AND ((1 << status) & ?18) != 0 "   \
      "AND (?19 IS NULL OR lease_owner = ?19) "                           \
      "AND (?20 IS NULL OR dispatched_at = ?20)")                         \
    X(RUNS_IN_DOUBT, SKED_SQLITE_RUN_SPEC_FROM                            \
      "WHERE r.status = 1 AND r.lease_owner = ?1 AND r.dispatched_at >= ?2 " \
      "AND coalesce(r.marked_at, r.dispatched_at) < ?4 "                  \
      "ORDER BY r.dispatched_at, r.id LIMIT ?3")                          \
    X(RUN_EXISTS, "SELECT 1 FROM runs WHERE id = ?1")                     \
    X(TASK_EXISTS, "SELECT 1 FROM tasks WHERE namespace = ?1 AND id = ?2") \
    X(RUN_INSERT, "INSERT INTO runs (" SKED_SQLITE_RUN_COLS ") VALUES ("  \
      "?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, " \
      "?16, ?17, ?18, ?19, ?20, ?21)")                                    \
    X(TASK_COUNT_RUN, "UPDATE tasks SET run_count = run_count + 1 "       \
      "WHERE id = ?1")                                                    \
    /* by id in any namespace, with its task's spec */                   \
    X(RUN_GET_SPEC, SKED_SQLITE_RUN_SPEC_FROM "WHERE r.id = ?1")          \
    X(RUN_GET, "SELECT " SKED_SQLITE_RUN_COLS " FROM runs "               \
      "WHERE id = ?2 AND (?1 IS NULL OR namespace = ?1)")                 \
    /* "status < 3" as the partial index runs_unfinished says it */       \
    X(RUNS_ACTIVE, "SELECT count(*) FROM runs "                           \
      "WHERE task_id = ?1 AND status < 3 AND status > 0")                 \
    X(RUNS_CANCEL_PAUSED, "UPDATE runs SET status = 7, finished_at = ?2, " \
      "error = 'task paused', lease_owner = NULL, lease_expires_at = NULL, " \
      "marked_at = NULL "                                                 \
      "WHERE task_id = ?1 AND (status = 0 OR "                            \
      "(status = 1 AND dispatched_at > ?2))")                             \
    X(RUNS_CANCEL_TASK, "UPDATE runs SET status = 7, finished_at = ?2, "  \
      "marked_at = NULL, error = 'task deleted' "                         \
      "WHERE task_id = ?1 AND status < 3")                                \
    /* retention: every run, task by task, newest occurrence first */     \
    X(PRUNE_WALK, "SELECT rowid, task_id, status, finished_at FROM runs " \
      "ORDER BY task_id DESC, scheduled_at DESC")                         \
    X(PRUNE_WALK_FROM, "SELECT rowid, task_id, status, finished_at "      \
      "FROM runs WHERE task_id <= ?1 "                                    \
      "ORDER BY task_id DESC, scheduled_at DESC")                         \
    X(RUN_DELETE, "DELETE FROM runs WHERE rowid = ?1")                    \
    /* workers */                                                         \
    X(WORKER_UPSERT, "INSERT INTO workers (id, host, queues, slots, "     \
      "busy, last_heartbeat, version) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) " \
      "ON CONFLICT (id) DO UPDATE SET host = excluded.host, "             \
      "queues = excluded.queues, slots = excluded.slots, "                \
      "busy = excluded.busy, last_heartbeat = excluded.last_heartbeat, "  \
      "version = excluded.version")                                       \
    X(WORKER_LIST, "SELECT id, host, queues, slots, busy, "               \
      "last_heartbeat, version FROM workers WHERE last_heartbeat > ?1 "   \
      "ORDER BY id")                                                      \
    /* schedulers' heartbeats */                                          \
    X(SCHED_LIST, "SELECT id, beats, beat_at, published_to "              \
      "FROM schedulers ORDER BY id")                                      \
    X(SCHED_PUT, "INSERT INTO schedulers (id, beats, beat_at, "           \
      "published_to) VALUES (?1, ?2, ?3, ?4) ON CONFLICT (id) DO UPDATE " \
      "SET beats = excluded.beats, beat_at = excluded.beat_at, "          \
      "published_to = CASE WHEN ?5 THEN min(published_to, "               \
      "excluded.published_to) ELSE excluded.published_to END")           \
    X(SCHED_PRUNE, "DELETE FROM schedulers WHERE beat_at < ?2 "           \
      "AND id <> ?1")

enum {
#define X(name, sql) SKED_SQLITE_##name,
    SKED_SQLITE_STMTS(X)
#undef X
    SKED_SQLITE_STMT_COUNT
};

/* Task and run listings are built from their filters: one cached
 * statement per combination of the optional filters (a bit each). */
#define SKED_SQLITE_LIST_VARIANTS 32
#define SKED_SQLITE_RUN_LIST_VARIANTS 32

typedef struct sked_sqlite_conn {
    sqlite3 *db;
    sqlite3_stmt *stmt[SKED_SQLITE_STMT_COUNT];
    sqlite3_stmt *list[SKED_SQLITE_LIST_VARIANTS];
    sqlite3_stmt *run_list[SKED_SQLITE_RUN_LIST_VARIANTS];
    struct sked_sqlite_conn *next;   /* in the reader pool */
} sked_sqlite_conn;

/* A job runs on the writer's connection inside a savepoint; it returns 0
 * to keep its changes, else a SKED_E* code (with err filled) to have them
 * rolled back. */
typedef int (*sked_sqlite_job_fn)(sked_sqlite_conn *c, void *arg,
                                  sked_err *err);

typedef struct sked_sqlite_store sked_sqlite_store;

/* Run fn(arg) in the writer's next group commit and wait for it.  Returns
 * fn's result; 0 means its changes are committed and durable.  Errors of
 * the transaction itself (BEGIN or COMMIT failed) are returned as mapped
 * SQLite errors, and then nothing of the job was kept. */
int sked_sqlite_write(sked_sqlite_store *s, sked_sqlite_job_fn fn, void *arg,
                      sked_err *err);
/* The same; with may_lose, 0 means committed but maybe not yet on disk
 * when every job of the group was so (sked_run_change.may_lose). */
int sked_sqlite_write_lazy(sked_sqlite_store *s, sked_sqlite_job_fn fn, void *arg,
                           int may_lose, sked_err *err);

/* Borrow a read connection for the duration of one call, and give it back.
 * get returns 0 or a SKED_E* code (connection could not be opened). */
int sked_sqlite_reader_get(sked_sqlite_store *s, sked_sqlite_conn **out,
                           sked_err *err);
void sked_sqlite_reader_put(sked_sqlite_store *s, sked_sqlite_conn *c);

/* The cached statement `id` of c, prepared on first use, with its bindings
 * cleared.  Callers sqlite3_reset it when done. */
int sked_sqlite_stmt(sked_sqlite_conn *c, int id, sqlite3_stmt **out,
                     sked_err *err);

/* Prepare sql into *slot unless a statement is already there (the task
 * listings cache their variants in c->list this way). */
int sked_sqlite_prepare_cached(sked_sqlite_conn *c, sqlite3_stmt **slot,
                               const char *sql, sked_err *err);

/* Where the retention walk of run_prune resumes (a task id, "" for the
 * start): a buffer of SKED_SQLITE_CURSOR_MAX bytes in the store, touched
 * only by jobs, so only by the writer thread. */
#define SKED_SQLITE_CURSOR_MAX 128
char *sked_sqlite_prune_cursor(sked_sqlite_store *s);

/* Turn SQLite result rc (with db's error message) into a SKED_E* code
 * with the message "sqlite store: what: <sqlite3_errmsg>":
 * BUSY/LOCKED -> EUNAVAIL, I/O, full disk, corruption -> EIO,
 * CONSTRAINT -> ECONFLICT, NOMEM -> ENOMEM, TOOBIG -> ETOOBIG, else
 * EINTERNAL. */
int sked_sqlite_fail(sqlite3 *db, int rc, sked_err *err, const char *what);

/* sqlite3_exec of sql without results; 0 or sked_sqlite_fail's code. */
int sked_sqlite_exec(sqlite3 *db, const char *sql, sked_err *err);

/* Bring the file open on db (its path, for messages) to the newest
 * embedded schema (store_sqlite_migrate.c). */
int sked_sqlite_migrate(sqlite3 *db, const char *path, sked_err *err);

/* ---- small helpers of the method files -------------------------------- */

/* Strings are the caller's for the duration of the call, which outlasts
 * the job: bind them without copying. */
static inline void sked_sqlite_bind_text(sqlite3_stmt *q, int i,
                                         const char *s)
{
    if (s == NULL)
        sqlite3_bind_null(q, i);
    else
        sqlite3_bind_text(q, i, s, -1, SQLITE_STATIC);
}

/* SKED_TIME_NONE <-> NULL. */
static inline void sked_sqlite_bind_time(sqlite3_stmt *q, int i,
                                         sked_walltime t)
{
    if (t == SKED_TIME_NONE)
        sqlite3_bind_null(q, i);
    else
        sqlite3_bind_int64(q, i, t);
}

/* NULL <-> SKED_TIME_NONE. */
static inline sked_walltime sked_sqlite_col_time(sqlite3_stmt *q, int i)
{
    if (sqlite3_column_type(q, i) == SQLITE_NULL)
        return SKED_TIME_NONE;
    return sqlite3_column_int64(q, i);
}

/* Column i into a fixed buffer (truncating; "" for NULL). */
static inline void sked_sqlite_col_fixed(sqlite3_stmt *q, int i, char *dst,
                                         size_t cap)
{
    const char *s = (const char *)sqlite3_column_text(q, i);
    snprintf(dst, cap, "%s", s ? s : "");
}

/* A malloc'ed copy of column i into *out, NULL for SQL NULL; SKED_ENOMEM
 * (what names what was being read). */
static inline int sked_sqlite_col_dup(sqlite3_stmt *q, int i, char **out,
                                      const char *what, sked_err *err)
{
    *out = NULL;
    const char *s = (const char *)sqlite3_column_text(q, i);
    if (s == NULL)
        return 0;
    size_t n = (size_t)sqlite3_column_bytes(q, i);
    if ((*out = malloc(n + 1)) == NULL)
        return sked_err_set(err, SKED_ENOMEM, NULL, 0,
                            "out of memory reading %s", what);
    memcpy(*out, s, n + 1);
    return 0;
}

/* "" <-> NULL for the fixed-size text fields of a record (which need not
 * be NUL-terminated when full). */
static inline void sked_sqlite_bind_fixed(sqlite3_stmt *q, int i,
                                          const char *s, size_t cap)
{
    size_t n = strnlen(s, cap);
    if (n == 0)
        sqlite3_bind_null(q, i);
    else
        sqlite3_bind_text(q, i, s, (int)n, SQLITE_STATIC);
}

/* ---- runs (store_sqlite_runs.c) ----------------------------------------- */

/* Runs handed out with their task's spec (claims, sweeps), or without
 * (listings: specs stays NULL). */
typedef struct sked_sqlite_runbuf {
    sked_run_rec *runs;
    char **specs;
    size_t n, cap;
} sked_sqlite_runbuf;

void sked_sqlite_runbuf_free(sked_sqlite_runbuf *b);

/* Step q (reset by the caller) and append up to max rows to b: the run's
 * columns (SKED_SQLITE_RUN_COLS) first, then, when with_spec, the spec.
 * *more is set when a row beyond max exists.  SKED_ENOMEM, or the mapped
 * SQLite error; b keeps what it had on error (free it). */
int sked_sqlite_collect_runs(sked_sqlite_conn *c, sqlite3_stmt *q,
                             int with_spec, size_t max,
                             sked_sqlite_runbuf *b, int *more,
                             sked_err *err);

/* Methods (store_sqlite_tasks.c, store_sqlite_tokens.c,
 * store_sqlite_claim.c, store_sqlite_runs.c). */
int sked_sqlite_task_insert(sked_store *st, sked_task_rec *recs, size_t n,
                            const sked_idem *idem, sked_err *err);
int sked_sqlite_task_get(sked_store *st, const char *ns, const char *key,
                         sked_task_rec *out, sked_err *err);
int sked_sqlite_task_list(sked_store *st, const sked_task_filter *f,
                          sked_task_page *out, sked_err *err);
int sked_sqlite_task_update(sked_store *st, sked_task_rec *rec,
                            int64_t expect_version, sked_err *err);
int sked_sqlite_task_delete(sked_store *st, const char *ns, const char *id,
                            sked_err *err);
int sked_sqlite_token_insert(sked_store *st, const sked_token_rec *t,
                             sked_err *err);
int sked_sqlite_token_find(sked_store *st, const char *hash,
                           sked_token_rec *out, sked_err *err);
int sked_sqlite_token_list(sked_store *st, const char *ns,
                           sked_token_rec **out, size_t *n, sked_err *err);
int sked_sqlite_token_revoke(sked_store *st, const char *ns, const char *id,
                             sked_walltime at, sked_err *err);
int sked_sqlite_claim_due(sked_store *st, sked_claim *c, sked_err *err);
int sked_sqlite_run_update(sked_store *st, sked_run_change *changes, size_t n,
                           sked_err *err);
int sked_sqlite_sweep_expired(sked_store *st, sked_walltime now, int limit,
                              sked_claim *out, sked_err *err);
int sked_sqlite_run_insert(sked_store *st, const sked_run_rec *r,
                           sked_err *err);
int sked_sqlite_run_get(sked_store *st, const char *ns, const char *id,
                        sked_run_rec *out, sked_err *err);
int sked_sqlite_run_list(sked_store *st, const sked_run_filter *f,
                         sked_run_page *out, sked_err *err);
int sked_sqlite_run_prune(sked_store *st, sked_walltime older_than,
                          int keep_per_task, int limit, int64_t *deleted,
                          sked_err *err);
int sked_sqlite_worker_upsert(sked_store *st, const sked_worker_rec *w,
                              sked_err *err);
int sked_sqlite_tasks_active(sked_store *st, const char *const *task_ids,
                             size_t n, int *counts, sked_err *err);
int sked_sqlite_worker_list(sked_store *st, sked_walltime since,
                            sked_worker_rec **out, size_t *n, sked_err *err);
int sked_sqlite_sched_beat(sked_store *st, const sked_sched_rec *me,
                           sked_walltime prune_before, sked_sched_rec **out,
                           size_t *n, sked_err *err);
int sked_sqlite_run_get_many(sked_store *st, const char *const *ids, size_t n,
                             sked_run_rec *out, int *found, char **specs, sked_err *err);
int sked_sqlite_runs_in_doubt(sked_store *st, const char *owner, sked_walltime since,
                              sked_walltime marked_before, int limit, sked_claim *out,
                              sked_err *err);


/* A filter string that filters: not NULL, not empty. */
static inline int sked_sqlite_given(const char *s)
{
    return s != NULL && s[0] != '\0';
}

/* The checks every listing makes: a namespace and a page size. */
static inline int sked_sqlite_check_page(const char *ns, int limit, sked_err *err)
{
    if (!sked_sqlite_given(ns))
        return sked_err_set(err, SKED_EINVAL, "namespace", 0,
                            "a listing needs a namespace");
    if (limit < 1 || limit > 1000)
        return sked_err_set(err, SKED_EINVAL, "limit", 0,
                            "limit %d is not within 1..1000", limit);
    return 0;
}

#endif
