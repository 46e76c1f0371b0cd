/*
 * store_sqlite.c - the embedded SQLite store: opening and migrating the
 * file, the group-commit writer, the pool of read connections, and the
 * mapping of SQLite errors to sked's.  The methods live in
 * store_sqlite_tasks.c, _tokens.c, _claim.c and _runs.c; store_sqlite.h
 * explains how the pieces fit.
 *
 * Every connection runs in WAL mode with synchronous=FULL (a commit is on
 * disk when COMMIT returns), foreign keys on and a 5 s busy timeout.  Other
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
 */
#include "store/store_sqlite.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store/migrate.h"

#define BUSY_TIMEOUT_MS 5000
#define GROUP_MAX 256

static const char *const stmt_sql[SKED_SQLITE_STMT_COUNT] = {
#define X(name, sql) [SKED_SQLITE_##name] = sql,
    SKED_SQLITE_STMTS(X)
#undef X
};

typedef enum job_state { JOB_QUEUED, JOB_DONE, JOB_RETRY } job_state;

typedef struct job {
    sked_sqlite_job_fn fn;
    void *arg;
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

static int exec(sqlite3 *db, const char *sql, sked_err *err)
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
    rc = exec(c->db, "PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;", err);
    /* The writer's savepoints (one per job) keep the pages they change in
     * a sub-journal; in memory it costs no write(2) per page (a claim of
     * 1000 tasks touches megabytes). */
    if (rc == 0 && writer)
        rc = exec(c->db, "PRAGMA cache_size=-16000; PRAGMA temp_store=MEMORY",
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

/* ---- migrations -------------------------------------------------------- */

static int schema_version(sqlite3 *db, int *out, sked_err *err)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(
        db, "SELECT coalesce(max(version), 0) FROM schema_version", -1, &st,
        NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        rc = sked_sqlite_fail(db, rc, err, "reading schema_version");
        sqlite3_finalize(st);
        return rc;
    }
    *out = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    return 0;
}

/* Apply migration m in its own transaction with its schema_version row,
 * unless another process got there first (hence BEGIN IMMEDIATE and a
 * second look at the version). */
static int apply_one(sqlite3 *db, const sked_migration *m, sked_err *err)
{
    char *ins = NULL;
    int cur = 0;
    int rc = exec(db, "BEGIN IMMEDIATE", err);
    if (rc != 0)
        return rc;
    rc = schema_version(db, &cur, err);
    if (rc != 0)
        goto fail;
    if (m->number > cur) {
        if (sqlite3_exec(db, m->sql, NULL, NULL, NULL) != SQLITE_OK) {
            rc = sked_err_set(err, SKED_EINTERNAL, NULL, 0,
                              "sqlite store: migration %s failed: %s",
                              m->name, sqlite3_errmsg(db));
            goto fail;
        }
        ins = sqlite3_mprintf("INSERT INTO schema_version VALUES "
                              "(%d, %Q, %lld)", m->number, m->name,
                              (long long)sked_clock_wall_now());
        if (ins == NULL) {
            rc = sked_err_set(err, SKED_ENOMEM, NULL, 0, "out of memory");
            goto fail;
        }
        if ((rc = exec(db, ins, err)) != 0)
            goto fail;
    }
    if ((rc = exec(db, "COMMIT", err)) != 0)
        goto fail;
    sqlite3_free(ins);
    return 0;
fail:
    sqlite3_free(ins);
    if (!sqlite3_get_autocommit(db))
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    return rc;
}

/* Bring the file to the newest embedded schema; refuse a file written by a
 * newer sked. */
static int migrate(sqlite3 *db, const char *path, sked_err *err)
{
    const sked_migration *m = sked_sqlite_migrations;
    size_t count = sked_sqlite_migrations_count;
    int known = count > 0 ? m[count - 1].number : 0;
    int cur = 0;
    int rc = exec(db,
                  "CREATE TABLE IF NOT EXISTS schema_version ("
                  " version INTEGER PRIMARY KEY,"
                  " name TEXT NOT NULL,"
                  " applied_at INTEGER NOT NULL)",
                  err);
    if (rc == 0)
        rc = schema_version(db, &cur, err);
    if (rc != 0)
        return rc;
    if (cur > known)
        return sked_err_set(err, SKED_EINVAL, "store", 0,
                            "sqlite store: %s has schema version %d, newer "
                            "than this sked knows (%d); use a newer sked",
                            path, cur, known);
    for (size_t i = 0; i < count; i++)
        if (m[i].number > cur && (rc = apply_one(db, &m[i], err)) != 0)
            return rc;
    return 0;
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

/* Run s->group[0..n) in one transaction; set each job's rc/err and its
 * outcome (JOB_DONE or JOB_RETRY) in s->outcome.  The jobs' `state` is
 * left alone: callers read it under the lock. */
static void run_group(sked_sqlite_store *s, size_t n)
{
    sqlite3 *db = s->w->db;
    int rc = sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
        for (size_t i = 0; i < n; i++) {
            job *j = s->group[i];
            j->rc = sked_sqlite_fail(db, rc, &j->err, "begin");
            s->outcome[i] = JOB_DONE;
        }
        return;
    }
    for (size_t i = 0; i < n; i++) {
        job *j = s->group[i];
        sked_err_clear(&j->err);
        j->rc = exec(db, "SAVEPOINT job", &j->err);
        if (j->rc != 0) {
            abort_group(s, n, i);
            return;
        }
        j->rc = j->fn(s->w, j->arg, &j->err);
        if (j->rc != 0) {
            /* A statement error that ended the transaction (I/O, full
             * disk) took the earlier jobs' work with it. */
            sked_err tmp;
            if (sqlite3_get_autocommit(db) ||
                exec(db, "ROLLBACK TO job", &tmp) != 0 ||
                exec(db, "RELEASE job", &tmp) != 0) {
                abort_group(s, n, i);
                return;
            }
        } else if ((j->rc = exec(db, "RELEASE job", &j->err)) != 0) {
            abort_group(s, n, i);
            return;
        }
    }
    sked_err cerr;
    rc = exec(db, "COMMIT", &cerr);
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
        size_t n = 0;
        while (s->head != NULL && n < GROUP_MAX) {
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
    job j = {.fn = fn, .arg = arg, .state = JOB_QUEUED};
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
    if ((rc = migrate(s->w->db, s->path, err)) != 0)
        goto fail;
    if (pthread_create(&s->writer, NULL, writer_main, s) != 0) {
        rc = sked_err_set(err, SKED_EINTERNAL, NULL, 0,
                          "sqlite store: cannot start the writer thread");
        goto fail;
    }
    *out = &s->base;
    return 0;
fail:
    conn_close(s->w);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->work);
    pthread_mutex_destroy(&s->pool_mu);
    free(s->path);
    free(s);
    return rc;
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
};
