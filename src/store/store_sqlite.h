/*
 * store_sqlite.h - the inside of the SQLite store backend, shared by its
 * files; the rest of sked sees only sked_store_sqlite_ops (store.h).
 *
 *   store_sqlite.c        connections, migrations, the group-commit writer,
 *                         the reader pool, error mapping, the ops table;
 *   store_sqlite_tasks.c  the task methods;
 *   store_sqlite_tokens.c the token methods.
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
#include <string.h>

#include "store/store.h"

/* Cached statements, prepared once per connection on first use. */
#define SKED_SQLITE_TASK_COLS                                             \
    "id, namespace, name, queue, spec, state, next_run_at, run_count, "  \
    "version, created_at, updated_at"
#define SKED_SQLITE_TOKEN_COLS                                            \
    "id, hash, namespace, role, created_at, revoked_at"

#define SKED_SQLITE_STMTS(X)                                              \
    X(PING, "SELECT 1")                                                   \
    X(TASK_INSERT, "INSERT INTO tasks (" SKED_SQLITE_TASK_COLS ") "       \
      "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)")            \
    X(TASK_GET_ID, "SELECT " SKED_SQLITE_TASK_COLS " FROM tasks "         \
      "WHERE namespace = ?1 AND id = ?2")                                 \
    X(TASK_GET_NAME, "SELECT " SKED_SQLITE_TASK_COLS " FROM tasks "       \
      "WHERE namespace = ?1 AND name = ?2")                               \
    X(TASK_UPDATE, "UPDATE tasks SET name = ?3, queue = ?4, spec = ?5, "  \
      "state = ?6, next_run_at = ?7, run_count = ?8, "                    \
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
      "WHERE id = ?1 AND (?2 IS NULL OR namespace = ?2)")

enum {
#define X(name, sql) SKED_SQLITE_##name,
    SKED_SQLITE_STMTS(X)
#undef X
    SKED_SQLITE_STMT_COUNT
};

/* Task listings are built from their filters: one cached statement per
 * combination of the optional filters (a bit each). */
#define SKED_SQLITE_LIST_VARIANTS 32

typedef struct sked_sqlite_conn {
    sqlite3 *db;
    sqlite3_stmt *stmt[SKED_SQLITE_STMT_COUNT];
    sqlite3_stmt *list[SKED_SQLITE_LIST_VARIANTS];
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

/* Turn SQLite result rc (with db's error message) into a SKED_E* code
 * with the message "sqlite store: what: <sqlite3_errmsg>":
 * BUSY/LOCKED -> EUNAVAIL, I/O, full disk, corruption -> EIO,
 * CONSTRAINT -> ECONFLICT, NOMEM -> ENOMEM, TOOBIG -> ETOOBIG, else
 * EINTERNAL. */
int sked_sqlite_fail(sqlite3 *db, int rc, sked_err *err, const char *what);

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

/* SKED_EINVAL naming field unless s holds 1..max bytes. */
static inline int sked_sqlite_check_len(const char *s, size_t max,
                                        const char *field, int col,
                                        sked_err *err)
{
    if (s == NULL || s[0] == '\0')
        return sked_err_set(err, SKED_EINVAL, field, col, "%s is empty",
                            field);
    if (strlen(s) > max)
        return sked_err_set(err, SKED_EINVAL, field, col,
                            "%s is longer than %zu bytes", field, max);
    return 0;
}

/* What the store relies on in a task record; i is its 1-based index. */

/* Methods (store_sqlite_tasks.c, store_sqlite_tokens.c). */
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

#endif
