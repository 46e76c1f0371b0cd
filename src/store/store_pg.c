/*
 * store_pg.c - the PostgreSQL store: the pool of connections, running a
 * method's transaction (with reconnects and retries), the mapping of
 * PostgreSQL errors to sked's, migrations, and the ops table.  Statements
 * and their parameters are in store_pg_sql.c, the methods in
 * store_pg_tasks.c, _tokens.c, _claim.c, _runs.c and _prune.c;
 * store_pg.h explains how the pieces fit.
 *
 * URL: "postgres://..." or "postgresql://..." goes to libpq as it is
 * (only defaults it does not set are added: connect and keepalive
 * timeouts, application name "sked"; the client encoding is UTF8).  So a
 * multi-host URL with target_session_attrs=read-write follows a failover:
 * a reconnect tries the hosts in order and keeps the writable one.
 *
 * Pool: up to POOL_MAX connections, opened lazily, one per concurrent
 * caller; a caller beyond that waits for one to come back.
 *
 * Transactions (sked_pg_run): a write is BEGIN, the method's statements,
 * COMMIT; a read is one statement on its own.  When a connection turns
 * out to be broken (PQstatus CONNECTION_BAD, the server shutting down, or
 * a standby that became read-only after a failover), it is reset
 * (PQreset) and:
 *   - a read runs once more;
 *   - a write whose failure came before COMMIT was sent runs once more
 *     (PostgreSQL rolled it back when the connection died: nothing of it
 *     was committed);
 *   - a write whose connection broke during COMMIT returns SKED_EUNAVAIL:
 *     the outcome is unknown, the caller may retry (every write sked
 *     makes is safe to repeat: idempotency keys, ON CONFLICT, fencing).
 * Deadlocks and serialization failures run the transaction again, a few
 * times, with a short backoff.
 *
 * Wake-ups: a transaction that makes something due within
 * SKED_PG_WAKE_WINDOW (a task inserted, updated or resumed; a run
 * inserted) sends `NOTIFY sked_wake, '<due_at us>'` with its COMMIT, so
 * the notification is delivered if and only if the change is committed.
 * Nothing listens yet; a scheduler will LISTEN sked_wake on a connection
 * of its own and claim at once instead of waiting for its next tick.
 *
 * Migrations: at open, each sql/postgres/NNNN_*.sql above the number in
 * schema_version is applied in its own transaction that first takes
 * pg_advisory_xact_lock(MIGRATE_LOCK) and reads the version again, so
 * processes opening at the same time apply each migration exactly once.
 */
#include "store/store_pg.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/clock.h"
#include "store/migrate.h"

#define POOL_MAX 8
/* Runs of a transaction after deadlocks/serialization failures. */
#define TX_RETRIES 5
/* pg_advisory_xact_lock key of migrations: "sked", 1. */
#define MIGRATE_LOCK "1936417636, 1"

#define S(st) ((sked_pg_store *)(st))

/* ---- errors ------------------------------------------------------------ */

/* The primary message of res, or the connection's, without the newline. */
static void message_of(sked_pg_conn *c, const PGresult *res, char *buf,
                       size_t cap)
{
    const char *m = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY)
                        : NULL;
    if (m == NULL && res != NULL)
        m = PQresultErrorMessage(res);
    if ((m == NULL || m[0] == '\0') && c != NULL)
        m = PQerrorMessage(c->db);
    snprintf(buf, cap, "%s", m && m[0] ? m : "unknown error");
    size_t n = strlen(buf);
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
        buf[--n] = '\0';
}

int sked_pg_fail(sked_pg_conn *c, const PGresult *res, const char *what,
                 sked_err *err)
{
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE)
                            : NULL;
    char msg[200];
    message_of(c, res, msg, sizeof msg);
    int code = SKED_EINTERNAL, fail = SKED_PG_FAIL_SQL;
    if (PQstatus(c->db) != CONNECTION_OK || state == NULL ||
        strncmp(state, "08", 2) == 0 || strcmp(state, "57P01") == 0 ||
        strcmp(state, "57P02") == 0 || strcmp(state, "57P03") == 0 ||
        strcmp(state, "25006") == 0 || strcmp(state, "53300") == 0) {
        /* Lost, shutting down, or a standby now: reconnect (a multi-host
         * URL then finds the primary). */
        code = SKED_EUNAVAIL;
        fail = SKED_PG_FAIL_CONN;
    } else if (strcmp(state, "40001") == 0 || strcmp(state, "40P01") == 0) {
        code = SKED_EAGAIN;
        fail = SKED_PG_FAIL_RETRY;
    } else if (strcmp(state, "26000") == 0) {
        /* Our prepared statements are gone (DISCARD ALL by a pooler):
         * prepare them again. */
        memset(c->prepared, 0, sizeof c->prepared);
        code = SKED_EAGAIN;
        fail = SKED_PG_FAIL_RETRY;
    } else if (strncmp(state, "23", 2) == 0) {
        code = SKED_ECONFLICT;
    } else if (strncmp(state, "22", 2) == 0) {
        code = SKED_EINVAL;
    } else if (strcmp(state, "57014") == 0 || strcmp(state, "55P03") == 0) {
        code = SKED_EUNAVAIL;         /* statement or lock timeout */
    } else if (strncmp(state, "53", 2) == 0 || strncmp(state, "58", 2) == 0) {
        code = SKED_EIO;              /* disk full, out of memory, I/O */
    } else if (strncmp(state, "54", 2) == 0) {
        code = SKED_ETOOBIG;
    }
    c->fail = fail;
    return sked_err_set(err, code, NULL, 0, "postgres store: %s: %s%s%s%s",
                        what, msg, state ? " (SQLSTATE " : "",
                        state ? state : "", state ? ")" : "");
}

int sked_pg_is_unique(const PGresult *res, const char *name)
{
    if (res == NULL)
        return 0;
    const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
    const char *cons = PQresultErrorField(res, PG_DIAG_CONSTRAINT_NAME);
    return state != NULL && strcmp(state, "23505") == 0 && cons != NULL &&
           strcmp(cons, name) == 0;
}

long sked_pg_changed(const PGresult *res)
{
    return strtol(PQcmdTuples((PGresult *)res), NULL, 10);
}

/* ---- commands ---------------------------------------------------------- */

/* A command without parameters or rows (BEGIN, ROLLBACK, DDL...). */
static int command(sked_pg_conn *c, const char *sql, const char *what,
                   sked_err *err)
{
    PGresult *r = PQexec(c->db, sql);
    int rc = 0;
    if (r == NULL || PQresultStatus(r) != PGRES_COMMAND_OK)
        rc = sked_pg_fail(c, r, what, err);
    PQclear(r);
    return rc;
}

/* ---- connections ------------------------------------------------------- */

/* Library modules never print: libpq's notices ("relation exists,
 * skipping") are dropped. */
static void quiet(void *arg, const char *message)
{
    (void)arg;
    (void)message;
}

void sked_pg_conn_close(sked_pg_conn *c)
{
    if (c == NULL)
        return;
    PQfinish(c->db);
    free(c);
}

/* Session settings, after every (re)connect.
 *   - Generic plans for the prepared statements: every statement here
 *     finds its rows by key or walks an index in its ORDER BY, whatever
 *     the values, so planning again per call (a claim's arrays of 1000
 *     elements made it choose hash joins over whole tables) costs more
 *     than it finds: measured, a claim of 1000 tasks took 20 ms instead
 *     of 40.
 *   - No JIT compilation: it is for analytics; a generic plan over a
 *     large table crosses jit_above_cost and would spend tens of
 *     milliseconds compiling each time.
 * A server without these settings (before 12) is left as it is. */
static int conn_setup(sked_pg_conn *c, sked_err *err)
{
    int rc = command(c, "SET plan_cache_mode = force_generic_plan; "
                        "SET jit = off", "connect", err);
    return rc != 0 && c->fail == SKED_PG_FAIL_CONN ? rc : 0;
}

int sked_pg_conn_open(const sked_pg_store *s, sked_pg_conn **out,
                      sked_err *err)
{
    /* Before the URL: defaults it may override; after it: what sked
     * needs whatever it says. */
    static const char *const keys[] = {
        "connect_timeout", "keepalives_idle", "keepalives_interval",
        "keepalives_count", "fallback_application_name", "dbname",
        "client_encoding", NULL,
    };
    const char *vals[] = {"10", "30", "10", "3", "sked", s->url, "UTF8", NULL};
    sked_pg_conn *c = calloc(1, sizeof *c);
    if (c == NULL)
        return sked_err_set(err, SKED_ENOMEM, NULL, 0, "out of memory");
    c->plans_since = sked_clock_mono_now();
    c->db = PQconnectdbParams(keys, vals, 1);
    if (c->db == NULL) {
        free(c);
        return sked_err_set(err, SKED_ENOMEM, NULL, 0,
                            "postgres store: out of memory connecting");
    }
    if (PQstatus(c->db) != CONNECTION_OK) {
        char msg[200];
        message_of(c, NULL, msg, sizeof msg);
        sked_pg_conn_close(c);
        return sked_err_set(err, SKED_EUNAVAIL, "store", 0,
                            "postgres store: cannot connect: %s", msg);
    }
    PQsetNoticeProcessor(c->db, quiet, NULL);
    int rc = conn_setup(c, err);
    if (rc != 0) {
        sked_pg_conn_close(c);
        return rc;
    }
    *out = c;
    return 0;
}

/* Reconnect c in place (same parameters); its prepared statements are
 * gone with the old session.  0 when it is connected again. */
static int conn_reset(sked_pg_conn *c)
{
    memset(c->prepared, 0, sizeof c->prepared);
    c->plans_since = sked_clock_mono_now();
    PQreset(c->db);
    if (PQstatus(c->db) != CONNECTION_OK)
        return -1;
    return conn_setup(c, NULL) == 0 ? 0 : -1;
}

/* Generic plans (conn_setup) are made on a statement's first use and kept:
 * one made while a table was small (a new install, tables just emptied)
 * walks the whole table for ever after - measured 2.1 ms per run update
 * at 10,000 runs instead of tens of microseconds.  So a connection's
 * statements are prepared again, on the table as it is, every
 * PLANS_MAX_AGE. */
#define PLANS_MAX_AGE (30 * SKED_USEC_PER_SEC)

static void plans_refresh(sked_pg_conn *c)
{
    sked_monotime now = sked_clock_mono_now();
    if (now - c->plans_since < PLANS_MAX_AGE)
        return;
    sked_err err = {0};
    if (command(c, "DEALLOCATE ALL", "deallocate", &err) == 0)
        memset(c->prepared, 0, sizeof c->prepared);
    c->plans_since = now;
}

static int conn_get(sked_pg_store *s, sked_pg_conn **out, sked_err *err)
{
    pthread_mutex_lock(&s->mu);
    while (s->idle == NULL && s->nconn >= POOL_MAX)
        pthread_cond_wait(&s->cv, &s->mu);
    sked_pg_conn *c = s->idle;
    if (c != NULL)
        s->idle = c->next;
    else
        s->nconn++;
    pthread_mutex_unlock(&s->mu);
    if (c == NULL) {
        int rc = sked_pg_conn_open(s, &c, err);
        if (rc != 0) {
            pthread_mutex_lock(&s->mu);
            s->nconn--;
            pthread_cond_signal(&s->cv);
            pthread_mutex_unlock(&s->mu);
            return rc;
        }
    } else if (PQstatus(c->db) != CONNECTION_OK && conn_reset(c) != 0) {
        /* Still down: the connection stays pooled for the next try. */
        char msg[200];
        message_of(c, NULL, msg, sizeof msg);
        pthread_mutex_lock(&s->mu);
        c->next = s->idle;
        s->idle = c;
        pthread_cond_signal(&s->cv);
        pthread_mutex_unlock(&s->mu);
        return sked_err_set(err, SKED_EUNAVAIL, "store", 0,
                            "postgres store: cannot reconnect: %s", msg);
    }
    plans_refresh(c);
    c->next = NULL;
    c->fail = SKED_PG_OK;
    *out = c;
    return 0;
}

static void conn_put(sked_pg_store *s, sked_pg_conn *c)
{
    pthread_mutex_lock(&s->mu);
    c->next = s->idle;
    s->idle = c;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

/* ---- transactions ------------------------------------------------------ */

void sked_pg_wake(sked_pg_tx *tx, sked_walltime due)
{
    if (due == SKED_TIME_NONE)
        return;
    if (due > sked_clock_wall_now() + SKED_PG_WAKE_WINDOW)
        return;
    if (tx->wake == SKED_TIME_NONE || due < tx->wake)
        tx->wake = due;
}

/* COMMIT (with the NOTIFY, in the same round trip).  A transaction that
 * ended in ROLLBACK (an error nobody reported) is an error too. */
static int commit(sked_pg_tx *tx, sked_err *err)
{
    char sql[96] = "COMMIT";
    if (tx->wake != SKED_TIME_NONE)
        snprintf(sql, sizeof sql, "NOTIFY sked_wake, '%lld'; COMMIT",
                 (long long)tx->wake);
    PGresult *r = PQexec(tx->c->db, sql);
    int rc = 0;
    if (r == NULL || PQresultStatus(r) != PGRES_COMMAND_OK)
        rc = sked_pg_fail(tx->c, r, "commit", err);
    else if (strcmp(PQcmdStatus(r), "COMMIT") != 0)
        rc = sked_err_set(err, SKED_EINTERNAL, NULL, 0,
                          "postgres store: commit: transaction was rolled "
                          "back");
    PQclear(r);
    return rc;
}

static void rollback(sked_pg_conn *c)
{
    if (PQstatus(c->db) != CONNECTION_OK ||
        PQtransactionStatus(c->db) == PQTRANS_IDLE)
        return;
    PGresult *r = PQexec(c->db, "ROLLBACK");
    PQclear(r);
}

/* A few milliseconds, more each time, with jitter: two transactions that
 * deadlocked should not meet again at once. */
static void backoff(int attempt)
{
    long us = (1000L << attempt) + (long)(sked_clock_mono_now() % 1000);
    struct timespec ts = {.tv_sec = us / 1000000,
                          .tv_nsec = us % 1000000 * 1000};
    nanosleep(&ts, NULL);
}

int sked_pg_run(sked_pg_store *s, int mode, sked_pg_fn fn, void *arg,
                sked_err *err)
{
    sked_pg_conn *c = NULL;
    int rc = conn_get(s, &c, err);
    if (rc != 0)
        return rc;
    int reconnects = 0, retries = 0;
    for (;;) {
        sked_pg_tx tx = {.s = s, .c = c, .wake = SKED_TIME_NONE};
        int committing = 0;
        c->fail = SKED_PG_OK;
        rc = mode == SKED_PG_WRITE ? command(c, "BEGIN", "begin", err) : 0;
        if (rc == 0)
            rc = fn(&tx, arg, err);
        if (rc == 0 && mode == SKED_PG_WRITE) {
            committing = 1;
            rc = commit(&tx, err);
        }
        if (rc == 0)
            break;
        if (c->fail == SKED_PG_FAIL_CONN) {
            int back = conn_reset(c) == 0;
            if (committing) {
                rc = sked_err_set(err, SKED_EUNAVAIL, "store", 0,
                                  "postgres store: connection lost during "
                                  "COMMIT: the outcome is unknown");
                break;
            }
            if (back && reconnects++ == 0)
                continue;
            break;
        }
        rollback(c);
        if (c->fail == SKED_PG_FAIL_RETRY && retries < TX_RETRIES) {
            backoff(retries++);
            continue;
        }
        break;
    }
    conn_put(s, c);
    return rc;
}

/* ---- migrations -------------------------------------------------------- */

/* One step, in one transaction under the advisory lock: create
 * schema_version if missing, read it, apply the next migration if any.
 * *done is set when nothing was left to apply. */
static int migrate_step(sked_pg_conn *c, int *done, sked_err *err)
{
    const sked_migration *m = sked_postgres_migrations;
    size_t count = sked_postgres_migrations_count;
    int known = count > 0 ? m[count - 1].number : 0;
    PGresult *r = NULL;
    int rc = command(c, "BEGIN", "migrate", err);
    if (rc != 0)
        return rc;
    r = PQexec(c->db, "SELECT pg_advisory_xact_lock(" MIGRATE_LOCK "), "
                      "to_regclass('schema_version') IS NOT NULL");
    if (r == NULL || PQresultStatus(r) != PGRES_TUPLES_OK) {
        rc = sked_pg_fail(c, r, "migrate: lock", err);
        goto fail;
    }
    int have = strcmp(PQgetvalue(r, 0, 1), "t") == 0;
    PQclear(r);
    r = NULL;
    if (!have && (rc = command(c,
                               "CREATE TABLE schema_version ("
                               " version integer PRIMARY KEY,"
                               " name text NOT NULL,"
                               " applied_at bigint NOT NULL)",
                               "migrate: schema_version", err)) != 0)
        goto fail;
    r = PQexec(c->db, "SELECT coalesce(max(version), 0) FROM schema_version");
    if (r == NULL || PQresultStatus(r) != PGRES_TUPLES_OK) {
        rc = sked_pg_fail(c, r, "migrate: schema_version", err);
        goto fail;
    }
    int cur = (int)strtol(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    r = NULL;
    if (cur > known) {
        rc = sked_err_set(err, SKED_EINVAL, "store", 0,
                          "postgres store: the database has schema version "
                          "%d, newer than this sked knows (%d); use a newer "
                          "sked",
                          cur, known);
        goto fail;
    }
    const sked_migration *next = NULL;
    for (size_t i = 0; i < count && next == NULL; i++)
        if (m[i].number > cur)
            next = &m[i];
    *done = next == NULL;
    if (next != NULL) {
        r = PQexec(c->db, next->sql);
        ExecStatusType st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
        if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK &&
            st != PGRES_EMPTY_QUERY) {
            char msg[200];
            message_of(c, r, msg, sizeof msg);
            rc = sked_pg_fail(c, r, "migrate", err);
            if (c->fail == SKED_PG_FAIL_SQL)
                rc = sked_err_set(err, SKED_EINTERNAL, "store", 0,
                                  "postgres store: migration %s failed: %s",
                                  next->name, msg);
            goto fail;
        }
        PQclear(r);
        sked_pg_params p = {0};
        sked_pg_p_i64(&p, next->number);
        sked_pg_p_text(&p, next->name);
        sked_pg_p_i64(&p, sked_clock_wall_now());
        r = PQexecParams(c->db,
                         "INSERT INTO schema_version VALUES "
                         "($1::integer, $2::text, $3::bigint)",
                         p.n, NULL, p.v, p.len, p.fmt, 0);
        if (r == NULL || PQresultStatus(r) != PGRES_COMMAND_OK) {
            rc = sked_pg_fail(c, r, "migrate: schema_version", err);
            goto fail;
        }
        PQclear(r);
        r = NULL;
    }
    return command(c, "COMMIT", "migrate: commit", err);
fail:
    PQclear(r);
    rollback(c);
    return rc;
}

static int migrate(sked_pg_conn *c, sked_err *err)
{
    for (;;) {
        int done = 0;
        int rc = migrate_step(c, &done, err);
        if (rc != 0 || done)
            return rc;
    }
}

/* ---- retention's position ---------------------------------------------- */

void sked_pg_prune_cursor_get(sked_pg_store *s, char *task, int *below)
{
    pthread_mutex_lock(&s->prune_mu);
    memcpy(task, s->prune_task, SKED_PG_CURSOR_MAX);
    *below = s->prune_below;
    pthread_mutex_unlock(&s->prune_mu);
}

void sked_pg_prune_cursor_set(sked_pg_store *s, const char *task, int below)
{
    pthread_mutex_lock(&s->prune_mu);
    snprintf(s->prune_task, sizeof s->prune_task, "%s", task);
    s->prune_below = below;
    pthread_mutex_unlock(&s->prune_mu);
}

/* ---- open, close, ping ------------------------------------------------- */

static void store_close(sked_store *st)
{
    sked_pg_store *s = S(st);
    if (s == NULL)
        return;
    while (s->idle != NULL) {
        sked_pg_conn *c = s->idle;
        s->idle = c->next;
        sked_pg_conn_close(c);
    }
    sked_pg_conn_close(s->listener);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->prune_mu);
    free(s->url);
    free(s);
}

static int store_open(const char *url, sked_store **out, sked_err *err)
{
    *out = NULL;
    char *perr = NULL;
    PQconninfoOption *opts = PQconninfoParse(url, &perr);
    if (opts == NULL) {
        char msg[200];
        snprintf(msg, sizeof msg, "%s", perr ? perr : "out of memory");
        msg[strcspn(msg, "\n")] = '\0';
        PQfreemem(perr);
        return sked_err_set(err, SKED_EINVAL, "store", 0,
                            "postgres store: bad URL: %s", msg);
    }
    PQconninfoFree(opts);
    sked_pg_store *s = calloc(1, sizeof *s);
    if (s == NULL || (s->url = strdup(url)) == NULL) {
        free(s);
        return sked_err_set(err, SKED_ENOMEM, NULL, 0, "out of memory");
    }
    s->base.ops = &sked_store_pg_ops;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    pthread_mutex_init(&s->prune_mu, NULL);
    sked_pg_conn *c = NULL;
    int rc = sked_pg_conn_open(s, &c, err);
    if (rc == 0)
        rc = migrate(c, err);
    if (rc != 0) {
        sked_pg_conn_close(c);
        store_close(&s->base);
        return rc;
    }
    s->idle = c;
    s->nconn = 1;
    *out = &s->base;
    return 0;
}

static int ping_fn(sked_pg_tx *tx, void *arg, sked_err *err)
{
    (void)arg;
    return sked_pg_exec(tx->c, SKED_PG_PING, NULL, NULL, "ping", err);
}

static int store_ping(sked_store *st, sked_err *err)
{
    return sked_pg_run(S(st), SKED_PG_READ, ping_fn, NULL, err);
}

const sked_store_ops sked_store_pg_ops = {
    .version = SKED_STORE_OPS_VERSION,
    .name = "postgres",
    .scheme = "postgres",
    .open = store_open,
    .close = store_close,
    .ping = store_ping,
    .task_insert = sked_pg_task_insert,
    .task_get = sked_pg_task_get,
    .task_list = sked_pg_task_list,
    .task_update = sked_pg_task_update,
    .task_delete = sked_pg_task_delete,
    .token_insert = sked_pg_token_insert,
    .token_find = sked_pg_token_find,
    .token_list = sked_pg_token_list,
    .token_revoke = sked_pg_token_revoke,
    .claim_due = sked_pg_claim_due,
    .run_update = sked_pg_run_update,
    .sweep_expired = sked_pg_sweep_expired,
    .run_insert = sked_pg_run_insert,
    .run_get = sked_pg_run_get,
    .run_list = sked_pg_run_list,
    .run_prune = sked_pg_run_prune,
    .worker_upsert = sked_pg_worker_upsert,
    .worker_list = sked_pg_worker_list,
    .tasks_active = sked_pg_tasks_active,
    .wait_wake = sked_pg_wait_wake,
    .run_get_many = sked_pg_run_get_many,
    .sched_beat = sked_pg_sched_beat,
    .runs_in_doubt = sked_pg_runs_in_doubt,
};
