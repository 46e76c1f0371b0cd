/*
 * store_sqlite.c - the embedded SQLite store: opening and migrating the
 * file, the group-commit writer, the pool of read connections, and the
 * mapping of SQLite errors to sked's.  The methods live in
 * store_sqlite_tasks.c, _tokens.c, _claim.c and _runs.c; store_sqlite.h
 * explains how the pieces fit.
 *
 * Every connection runs in WAL mode with synchronous=FULL (a commit is on
 * disk when COMMIT returns; but see lazy commits below), foreign keys on and a 5 s busy timeout.  Other
 * processes may write the same file (`sked token create --data DIR` while
 * the server runs): every write transaction is BEGIN IMMEDIATE, so a busy
 * file means waiting for its lock, never a failed upgrade mid-transaction.
 *
 * Group commit: callers queue jobs and sleep; the writer thread takes every
 * queued job (up to GROUP_MAX), runs them in one transaction with a
 * SAVEPOINT each and COMMITs once, so one fsync serves many callers.  A
 * job that fails is rolled back to its savepoint alone.  If a failure
 * aborts the whole transaction (SQLite does that on I/O errors, a full
 * disk, out of memory), the failing job gets its error and the others go
 * back to the head of the queue to run again in the next group.
 *
 * Lazy commits: a group made only of jobs the caller can recover (the
 * scheduler's claims, marks and events in the embedded mode, pruning,
 * heartbeats) commits with synchronous=OFF and does not wait for the
 * disk; the sync thread (store_sqlite_sync.c) fsyncs the WAL within 50 ms
 * and runs the checkpoints, so no commit of the writer absorbs one.
 */
#include "store/store_sqlite.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"
#include "store/store_sqlite_sync.h"

#define BUSY_TIMEOUT_MS 5000
#define GROUP_MAX 256
#define SLOW_GROUP_MS 100 /* a commit that took longer is logged */

static const char *const stmt_sql[SKED_SQLITE_STMT_COUNT] = {
#define X(name, sql) [SKED_SQLITE_##name] = sql,
    SKED_SQLITE_STMTS(X)
#undef X
};

typedef enum job_state { JOB_QUEUED, JOB_DONE, JOB_RETRY } job_state;

typedef struct job {
    sked_sqlite_job_fn fn;
    void *arg;
    int may_lose;              /* committed without fsync if all are so */
    int rc;
    sked_err err;
    job_state state;
    pthread_cond_t cv;         /* signalled when state becomes JOB_DONE */
    struct job *next;
} job;

struct sked_sqlite_store {
    sked_store base;
    char *path;

    /* The writer: its connection and thread; the queue under mu. */
    sked_sqlite_conn *w;
    sked_sqlite_sync *sync;    /* fsyncs lazy commits, checkpoints */
    pthread_t writer;
    pthread_mutex_t mu;
    pthread_cond_t work;
    job *head, *tail;
    int stopping;
    job *group[GROUP_MAX];     /* the writer's current group */
    job_state outcome[GROUP_MAX];

    /* Idle read connections. */
    pthread_mutex_t pool_mu;
    sked_sqlite_conn *idle;

    /* run_prune's walk resumes here (writer thread only). */
    char prune_cursor[SKED_SQLITE_CURSOR_MAX];
};

char *sked_sqlite_prune_cursor(sked_sqlite_store *s)
{
    return s->prune_cursor;
}

/* ---- errors ------------------------------------------------------------ */

int sked_sqlite_fail(sqlite3 *db, int rc, sked_err *err, const char *what)
{
    const char *detail = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
    int code;
    switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        code = SKED_EUNAVAIL;
        break;
    case SQLITE_NOMEM:
        code = SKED_ENOMEM;
        break;
    case SQLITE_CONSTRAINT:
        code = SKED_ECONFLICT;
        break;
    case SQLITE_TOOBIG:
        code = SKED_ETOOBIG;
        break;
    case SQLITE_IOERR:
    case SQLITE_FULL:
    case SQLITE_CANTOPEN:
    case SQLITE_READONLY:
    case SQLITE_PROTOCOL:
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
    case SQLITE_PERM:
        code = SKED_EIO;
        break;
    default:
        code = SKED_EINTERNAL;
        break;
    }
    return sked_err_set(err, code, NULL, 0, "sqlite store: %s: %s", what,
                        detail);
}

int sked_sqlite_exec(sqlite3 *db, const char *sql, sked_err *err)
{
    int rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
    if (rc != SQLITE_OK)
        return sked_sqlite_fail(db, rc, err, sql);
    return 0;
}

/* ---- connections ------------------------------------------------------- */

int sked_sqlite_prepare_cached(sked_sqlite_conn *c, sqlite3_stmt **slot,
                               const char *sql, sked_err *err)
{
    if (*slot == NULL) {
        int rc = sqlite3_prepare_v3(c->db, sql, -1, SQLITE_PREPARE_PERSISTENT,
                                    slot, NULL);
        if (rc != SQLITE_OK) {
            *slot = NULL;
            return sked_sqlite_fail(c->db, rc, err, "prepare");
        }
    }
    return 0;
}

int sked_sqlite_stmt(sked_sqlite_conn *c, int id, sqlite3_stmt **out,
                     sked_err *err)
{
    int rc = sked_sqlite_prepare_cached(c, &c->stmt[id], stmt_sql[id], err);
    if (rc != 0)
        return rc;
    sqlite3_clear_bindings(c->stmt[id]);
    *out = c->stmt[id];
    return 0;
}

static void conn_close(sked_sqlite_conn *c)
{
    if (c == NULL)
        return;
    for (int i = 0; i < SKED_SQLITE_STMT_COUNT; i++)
        sqlite3_finalize(c->stmt[i]);
    for (int i = 0; i < SKED_SQLITE_LIST_VARIANTS; i++)
        sqlite3_finalize(c->list[i]);
    for (int i = 0; i < SKED_SQLITE_RUN_LIST_VARIANTS; i++)
        sqlite3_finalize(c->run_list[i]);
    sqlite3_close_v2(c->db);
    free(c);
}

/* Open a connection to path with sked's settings.  The writer's also
 * switches the file to WAL (a persistent property of the file). */
static int conn_open(const char *path, int writer, sked_sqlite_conn **out,
                     sked_err *err)
{
    sked_sqlite_conn *c = calloc(1, sizeof *c);
    if (c == NULL)
        return sked_err_set(err, SKED_ENOMEM, NULL, 0, "out of memory");
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_open_v2(path, &c->db,
                             SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
                                 SQLITE_OPEN_NOMUTEX,
                             NULL);
    if (rc != SQLITE_OK) {
        rc = sked_sqlite_fail(c->db, rc, err, path);
        goto fail;
    }
    sqlite3_extended_result_codes(c->db, 1);
    sqlite3_busy_timeout(c->db, BUSY_TIMEOUT_MS);
    if (writer) {
        rc = sqlite3_prepare_v2(c->db, "PRAGMA journal_mode=WAL", -1, &st,
                                NULL);
        if (rc == SQLITE_OK)
            rc = sqlite3_step(st);
        if (rc != SQLITE_ROW) {
            rc = sked_sqlite_fail(c->db, rc, err, path);
            goto fail;
        }
        const char *mode = (const char *)sqlite3_column_text(st, 0);
        if (mode == NULL || strcmp(mode, "wal") != 0) {
            rc = sked_err_set(err, SKED_EIO, NULL, 0,
                              "sqlite store: %s: cannot switch to WAL "
                              "(journal mode stays %s)",
                              path, mode ? mode : "unknown");
            goto fail;
        }
        sqlite3_finalize(st);
        st = NULL;
    }
    rc = sked_sqlite_exec(c->db, "PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;", err);
    /* The writer's savepoints (one per job) keep the pages they change in
     * a sub-journal; in memory it costs no write(2) per page (a claim of
     * 1000 tasks touches megabytes). */
    if (rc == 0 && writer)
        rc = sked_sqlite_exec(c->db, "PRAGMA cache_size=-16000; PRAGMA temp_store=MEMORY",
                  err);
    if (rc != 0)
        goto fail;
    *out = c;
    return 0;
fail:
    sqlite3_finalize(st);
    conn_close(c);
    return rc;
}

int sked_sqlite_reader_get(sked_sqlite_store *s, sked_sqlite_conn **out,
                           sked_err *err)
{
    pthread_mutex_lock(&s->pool_mu);
    sked_sqlite_conn *c = s->idle;
    if (c != NULL)
        s->idle = c->next;
    pthread_mutex_unlock(&s->pool_mu);
    if (c == NULL) {
        int rc = conn_open(s->path, 0, &c, err);
        if (rc != 0)
            return rc;
    }
    c->next = NULL;
    *out = c;
    return 0;
}

void sked_sqlite_reader_put(sked_sqlite_store *s, sked_sqlite_conn *c)
{
    pthread_mutex_lock(&s->pool_mu);
    c->next = s->idle;
    s->idle = c;
    pthread_mutex_unlock(&s->pool_mu);
}

/* ---- the writer -------------------------------------------------------- */

/* Roll the whole transaction back after group[i] failed in a way that
 * aborted it: group[i] keeps its error, every other job runs again. */
static void abort_group(sked_sqlite_store *s, size_t n, size_t i)
{
    if (!sqlite3_get_autocommit(s->w->db))
        sqlite3_exec(s->w->db, "ROLLBACK", NULL, NULL, NULL);
    for (size_t k = 0; k < n; k++)
        s->outcome[k] = k == i ? JOB_DONE : JOB_RETRY;
}

static int run_group_tx(sked_sqlite_store *s, size_t n);

/* Run s->group[0..n) in one transaction; set each job's rc/err and its
 * outcome (JOB_DONE or JOB_RETRY) in s->outcome.  The jobs' `state` is
 * left alone: callers read it under the lock. */
static void run_group(sked_sqlite_store *s, size_t n)
{
    sqlite3 *db = s->w->db;
    /* A group of changes that may be lost commits without any fsync: OFF,
     * not NORMAL, which still syncs the WAL's header when the WAL starts
     * over (hundreds of ms now and then on a busy disk).  Only the WAL is
     * written (checkpoints run with FULL), the sync thread syncs it within
     * moments, and the next durable commit syncs these frames with it.
     * OFF's known hazard - a new WAL header lost in a power cut while the
     * database file already holds pages of the new cycle - cannot arise:
     * only a checkpoint writes the database file, and every checkpoint
     * here runs with FULL, which syncs the WAL (header included) before
     * it copies a page. */
    int lazy = 1;
    for (size_t i = 0; i < n && lazy; i++)
        lazy = s->group[i]->may_lose;
    sked_monotime t0 = sked_clock_mono_now();
    if (lazy)
        sqlite3_exec(db, "PRAGMA synchronous=OFF", NULL, NULL, NULL);
    int ckpt = run_group_tx(s, n) == 0 && sked_sqlite_sync_committed(s->sync, lazy);
    if (lazy)
        sqlite3_exec(db, "PRAGMA synchronous=FULL", NULL, NULL, NULL);
    if (ckpt)
        sqlite3_wal_checkpoint_v2(db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
    int64_t ms = (sked_clock_mono_now() - t0) / SKED_USEC_PER_MSEC;
    if (ms >= SLOW_GROUP_MS) { /* every queued write waited this long */
        char text[3][24];
        snprintf(text[0], sizeof text[0], "%lld", (long long)ms);
        snprintf(text[1], sizeof text[1], "%zu", n);
        snprintf(text[2], sizeof text[2], "%s", ckpt ? "yes" : "no");
        sked_log(SKED_LOG_WARN, "slow store commit", "ms", text[0], "jobs", text[1],
                 "durable", lazy ? "no" : "yes", "checkpoint", text[2], NULL);
    }
}

/* Returns 0 when the transaction committed. */
static int run_group_tx(sked_sqlite_store *s, size_t n)
{
    sqlite3 *db = s->w->db;
    int rc = sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
        for (size_t i = 0; i < n; i++) {
            job *j = s->group[i];
            j->rc = sked_sqlite_fail(db, rc, &j->err, "begin");
            s->outcome[i] = JOB_DONE;
        }
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        job *j = s->group[i];
        sked_err_clear(&j->err);
        j->rc = sked_sqlite_exec(db, "SAVEPOINT job", &j->err);
        if (j->rc != 0) {
            abort_group(s, n, i);
            return -1;
        }
        j->rc = j->fn(s->w, j->arg, &j->err);
        if (j->rc != 0) {
            /* A statement error that ended the transaction (I/O, full
             * disk) took the earlier jobs' work with it. */
            sked_err tmp;
            if (sqlite3_get_autocommit(db) ||
                sked_sqlite_exec(db, "ROLLBACK TO job", &tmp) != 0 ||
                sked_sqlite_exec(db, "RELEASE job", &tmp) != 0) {
                abort_group(s, n, i);
                return -1;
            }
        } else if ((j->rc = sked_sqlite_exec(db, "RELEASE job", &j->err)) != 0) {
            abort_group(s, n, i);
            return -1;
        }
    }
    sked_err cerr;
    rc = sked_sqlite_exec(db, "COMMIT", &cerr);
    if (rc != 0 && !sqlite3_get_autocommit(db))
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    for (size_t i = 0; i < n; i++) {
        job *j = s->group[i];
        if (rc != 0 && j->rc == 0) {
            j->rc = rc;
            j->err = cerr;
        }
        s->outcome[i] = JOB_DONE;
    }
    return rc;
}

static void *writer_main(void *arg)
{
    sked_sqlite_store *s = arg;
    pthread_mutex_lock(&s->mu);
    for (;;) {
        while (s->head == NULL && !s->stopping)
            pthread_cond_wait(&s->work, &s->mu);
        if (s->head == NULL)
            break;
        /* A group is all durable or all may-lose jobs (in queue order):
         * a may-lose job must not wait for another job's fsync. */
        size_t n = 0;
        int lazy = s->head->may_lose;
        while (s->head != NULL && n < GROUP_MAX && s->head->may_lose == lazy) {
            s->group[n++] = s->head;
            s->head = s->head->next;
        }
        if (s->head == NULL)
            s->tail = NULL;
        pthread_mutex_unlock(&s->mu);

        run_group(s, n);

        pthread_mutex_lock(&s->mu);
        /* Jobs to run again go back to the head of the queue, in order. */
        job *retry = NULL, *last = NULL;
        for (size_t i = 0; i < n; i++) {
            job *j = s->group[i];
            if (s->outcome[i] != JOB_RETRY)
                continue;
            if (last == NULL)
                retry = j;
            else
                last->next = j;
            last = j;
        }
        if (last != NULL) {
            last->next = s->head;
            if (s->head == NULL)
                s->tail = last;
            s->head = retry;
        }
        /* Once a caller sees JOB_DONE it may return and free its job:
         * touch nothing of a job after this. */
        for (size_t i = 0; i < n; i++) {
            if (s->outcome[i] == JOB_DONE) {
                s->group[i]->state = JOB_DONE;
                pthread_cond_signal(&s->group[i]->cv);
            }
        }
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

int sked_sqlite_write(sked_sqlite_store *s, sked_sqlite_job_fn fn, void *arg,
                      sked_err *err)
{
    return sked_sqlite_write_lazy(s, fn, arg, 0, err);
}

int sked_sqlite_write_lazy(sked_sqlite_store *s, sked_sqlite_job_fn fn, void *arg,
                           int may_lose, sked_err *err)
{
    job j = {.fn = fn, .arg = arg, .may_lose = may_lose, .state = JOB_QUEUED};
    pthread_cond_init(&j.cv, NULL);
    pthread_mutex_lock(&s->mu);
    if (s->stopping) {
        pthread_mutex_unlock(&s->mu);
        pthread_cond_destroy(&j.cv);
        return sked_err_set(err, SKED_EUNAVAIL, NULL, 0,
                            "sqlite store: closing");
    }
    if (s->tail != NULL)
        s->tail->next = &j;
    else
        s->head = &j;
    s->tail = &j;
    pthread_cond_signal(&s->work);
    while (j.state != JOB_DONE)
        pthread_cond_wait(&j.cv, &s->mu);
    pthread_mutex_unlock(&s->mu);
    pthread_cond_destroy(&j.cv);
    if (j.rc != 0 && err != NULL)
        *err = j.err;
    return j.rc;
}

/* ---- open, close, ping ------------------------------------------------- */

/* "sqlite:PATH" -> PATH; "sqlite:///abs" is accepted as "/abs". */
static const char *url_path(const char *url)
{
    const char *p = url + strlen("sqlite:");
    if (strncmp(p, "///", 3) == 0)
        p += 2;
    return p;
}

static void store_close(sked_store *st)
{
    sked_sqlite_store *s = (sked_sqlite_store *)st;
    if (s == NULL)
        return;
    pthread_mutex_lock(&s->mu);
    s->stopping = 1;
    pthread_cond_signal(&s->work);
    pthread_mutex_unlock(&s->mu);
    pthread_join(s->writer, NULL);
    sked_sqlite_sync_stop(s->sync, s->w->db);
    conn_close(s->w);
    while (s->idle != NULL) {
        sked_sqlite_conn *c = s->idle;
        s->idle = c->next;
        conn_close(c);
    }
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->work);
    pthread_mutex_destroy(&s->pool_mu);
    free(s->path);
    free(s);
}

static int store_open(const char *url, sked_store **out, sked_err *err)
{
    *out = NULL;
    const char *path = url_path(url);
    if (path[0] == '\0' || strcmp(path, ":memory:") == 0)
        return sked_err_set(err, SKED_EINVAL, "store", 0,
                            "sqlite store: \"%s\": expected sqlite:PATH of "
                            "a file", url);
    if (!sqlite3_threadsafe())
        return sked_err_set(err, SKED_EINVAL, "store", 0,
                            "sqlite store: libsqlite3 was built without "
                            "thread support");
    /* The file holds token hashes: create it private.  SQLite gives its
     * -wal and -shm files the mode of the database file. */
    int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd >= 0)
        close(fd);
    sked_sqlite_store *s = calloc(1, sizeof *s);
    if (s == NULL || (s->path = strdup(path)) == NULL) {
        free(s);
        return sked_err_set(err, SKED_ENOMEM, NULL, 0, "out of memory");
    }
    s->base.ops = &sked_store_sqlite_ops;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->work, NULL);
    pthread_mutex_init(&s->pool_mu, NULL);
    int rc = conn_open(s->path, 1, &s->w, err);
    if (rc != 0)
        goto fail;
    if ((rc = sked_sqlite_migrate(s->w->db, s->path, err)) != 0)
        goto fail;
    if ((rc = sked_sqlite_sync_start(s->path, s->w->db, &s->sync, err)) != 0)
        goto fail;
    if (pthread_create(&s->writer, NULL, writer_main, s) != 0) {
        rc = sked_err_set(err, SKED_EINTERNAL, NULL, 0,
                          "sqlite store: cannot start the writer thread");
        goto fail;
    }
    *out = &s->base;
    return 0;
fail:
    if (s->w)
        sked_sqlite_sync_stop(s->sync, s->w->db);
    conn_close(s->w);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->work);
    pthread_mutex_destroy(&s->pool_mu);
    free(s->path);
    free(s);
    return rc;
}

void sked_sqlite_store_sync_stats(sked_store *st, sked_sqlite_sync_stats *out)
{
    sked_sqlite_sync_get_stats(((sked_sqlite_store *)st)->sync, out);
}

static int store_ping(sked_store *st, sked_err *err)
{
    sked_sqlite_store *s = (sked_sqlite_store *)st;
    sked_sqlite_conn *c;
    sqlite3_stmt *q;
    int rc = sked_sqlite_reader_get(s, &c, err);
    if (rc != 0)
        return rc;
    if ((rc = sked_sqlite_stmt(c, SKED_SQLITE_PING, &q, err)) == 0) {
        int src = sqlite3_step(q);
        if (src != SQLITE_ROW)
            rc = sked_sqlite_fail(c->db, src, err, "ping");
        sqlite3_reset(q);
    }
    sked_sqlite_reader_put(s, c);
    return rc;
}

const sked_store_ops sked_store_sqlite_ops = {
    .version = SKED_STORE_OPS_VERSION,
    .name = "sqlite",
    .scheme = "sqlite",
    .open = store_open,
    .close = store_close,
    .ping = store_ping,
    .task_insert = sked_sqlite_task_insert,
    .task_get = sked_sqlite_task_get,
    .task_list = sked_sqlite_task_list,
    .task_update = sked_sqlite_task_update,
    .task_delete = sked_sqlite_task_delete,
    .token_insert = sked_sqlite_token_insert,
    .token_find = sked_sqlite_token_find,
    .token_list = sked_sqlite_token_list,
    .token_revoke = sked_sqlite_token_revoke,
    .claim_due = sked_sqlite_claim_due,
    .run_update = sked_sqlite_run_update,
    .sweep_expired = sked_sqlite_sweep_expired,
    .run_insert = sked_sqlite_run_insert,
    .run_get = sked_sqlite_run_get,
    .run_list = sked_sqlite_run_list,
    .run_prune = sked_sqlite_run_prune,
    .worker_upsert = sked_sqlite_worker_upsert,
    .worker_list = sked_sqlite_worker_list,
    .tasks_active = sked_sqlite_tasks_active,
    .run_get_many = sked_sqlite_run_get_many,
    .sched_beat = sked_sqlite_sched_beat,
    .runs_in_doubt = sked_sqlite_runs_in_doubt,
};
