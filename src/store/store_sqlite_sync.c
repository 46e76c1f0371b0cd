/*
 * store_sqlite_sync.c - the embedded store's background durability: the
 * fsync that lazy commits skipped, and the WAL checkpoints, both done on
 * a thread of their own so that neither holds the writer.
 *
 * Why.  The writer thread commits one group at a time.  A durable commit
 * (synchronous=FULL) fsyncs the WAL while it holds SQLite's write lock,
 * and SQLite's automatic checkpoint runs inside the commit that crosses
 * its threshold, fsyncing the WAL and the database file.  On a shared
 * virtual disk an fsync now and then takes hundreds of milliseconds, and
 * every job queued behind it - a dispatch mark that must go out on time -
 * waited as long.  So the scheduler's own writes are lazy (committed with
 * synchronous=OFF: on disk after a crash of the process, maybe not
 * after a crash of the machine), and this thread:
 *   - fsyncs the WAL within SYNC_DELAY_US of a lazy commit, which bounds
 *     what a power loss can take (as PostgreSQL's walwriter does for
 *     asynchronous commits); a durable commit in between syncs everything
 *     before it, and then there is nothing to do;
 *   - checkpoints the WAL (PASSIVE: never waits for readers or the
 *     writer) once the writer's commits have left CKPT_FRAMES frames in
 *     it; the writer's own automatic checkpoint is off (sqlite3_wal_hook
 *     replaces it).
 *
 * Ownership: the syncer has its own connection (for checkpoints) and its
 * own read-only fd of the -wal file (for fdatasync, which Linux allows on
 * any fd of the file).  sked_sqlite_sync_committed is called by the
 * writer thread only; everything else is under y->mu.
 */
#include "store/store_sqlite_sync.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/log.h"

#define SYNC_DELAY_US (50 * SKED_USEC_PER_MSEC)
#define CKPT_FRAMES 1000 /* SQLite's own default threshold */
/* The WAL starts over only when a write begins after a checkpoint copied
 * every frame.  Under a steady stream of commits the background checkpoint
 * may never catch that moment, and the writer does it itself once the WAL
 * is this long (its commits wait for that one; it is rare). */
#define WRITER_CKPT_FRAMES (16 * CKPT_FRAMES)

struct sked_sqlite_sync {
    char *wal_path;
    sqlite3 *db;                  /* the checkpointing connection          */
    int wal_fd;                   /* -1 until first needed                 */
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cond;          /* work, or stop                         */
    int stop;
    uint64_t lazy_seq;            /* lazy commits so far                   */
    uint64_t synced_seq;          /* of which durable (synced or followed
                                     by a durable commit)                  */
    sked_monotime first_unsynced; /* when lazy_seq passed synced_seq       */
    int frames;                   /* in the WAL after the last commit      */
    int wrote;                    /* the hook ran since the last commit:
                                     that commit wrote (and FULL synced)  */
    int ckpt_frames;              /* frames when the last one was asked    */
    int want_ckpt;
    sked_sqlite_sync_stats stats;
};

/* The writer's wal hook: every commit reports the WAL's length. */
static int on_wal(void *arg, sqlite3 *db, const char *name, int frames)
{
    (void)db;
    (void)name;
    sked_sqlite_sync *y = arg;
    pthread_mutex_lock(&y->mu);
    y->frames = frames;
    y->wrote = 1;
    if (frames < y->ckpt_frames) /* the WAL started over */
        y->ckpt_frames = 0;
    if (frames >= y->ckpt_frames + CKPT_FRAMES && !y->want_ckpt) {
        y->ckpt_frames = frames;
        y->want_ckpt = 1;
        pthread_cond_signal(&y->cond);
    }
    pthread_mutex_unlock(&y->mu);
    return SQLITE_OK;
}

int sked_sqlite_sync_committed(sked_sqlite_sync *y, int lazy)
{
    if (y == NULL)
        return 0;
    pthread_mutex_lock(&y->mu);
    int writer_ckpt = y->frames >= WRITER_CKPT_FRAMES;
    if (writer_ckpt)
        y->stats.writer_checkpoints++;
    /* A commit that changed nothing wrote nothing: SQLite neither wrote
     * nor synced the WAL for it (and called no hook). */
    int wrote = y->wrote;
    y->wrote = 0;
    if (!wrote) {
        /* nothing to sync, nothing synced */
    } else if (!lazy) {
        y->synced_seq = y->lazy_seq; /* FULL synced the WAL up to here */
    } else if (y->lazy_seq++ == y->synced_seq) {
        y->first_unsynced = sked_clock_mono_now();
        pthread_cond_signal(&y->cond);
    }
    pthread_mutex_unlock(&y->mu);
    return writer_ckpt;
}

/* fdatasync the WAL; 0, or -1 (logged) when it cannot be done. */
static int sync_wal(sked_sqlite_sync *y)
{
    if (y->wal_fd < 0)
        y->wal_fd = open(y->wal_path, O_RDONLY | O_CLOEXEC);
    if (y->wal_fd < 0 || fdatasync(y->wal_fd) < 0) {
        char e[160];
        snprintf(e, sizeof e, "%s", strerror(errno));
        sked_log(SKED_LOG_ERROR, "cannot sync the WAL", "file", y->wal_path,
                 "error", e, NULL);
        return -1;
    }
    return 0;
}

static void *sync_main(void *arg)
{
    sked_sqlite_sync *y = arg;
    pthread_mutex_lock(&y->mu);
    for (;;) {
        if (y->want_ckpt) {
            y->want_ckpt = 0;
            pthread_mutex_unlock(&y->mu);
            int log = 0, done = 0;
            int rc = sqlite3_wal_checkpoint_v2(y->db, NULL, SQLITE_CHECKPOINT_PASSIVE,
                                               &log, &done);
            pthread_mutex_lock(&y->mu);
            if (rc == SQLITE_OK)
                y->stats.checkpoints++;
            continue;
        }
        int pending = y->synced_seq != y->lazy_seq;
        if (pending && (y->stop || sked_clock_mono_now() >= y->first_unsynced + SYNC_DELAY_US)) {
            uint64_t seq = y->lazy_seq;
            pthread_mutex_unlock(&y->mu);
            int rc = sync_wal(y);
            pthread_mutex_lock(&y->mu);
            if (rc == 0) {
                y->stats.syncs++;
                if (y->synced_seq < seq)
                    y->synced_seq = seq;
                /* what was committed during the fsync waits its turn */
                y->first_unsynced = sked_clock_mono_now();
            } else if (y->stop) {
                break; /* nothing more we can do */
            } else {
                y->first_unsynced = sked_clock_mono_now(); /* try again later */
            }
            continue;
        }
        if (y->stop)
            break;
        if (pending) {
            struct timespec ts = sked_clock_timespec(y->first_unsynced + SYNC_DELAY_US);
            pthread_cond_timedwait(&y->cond, &y->mu, &ts);
        } else {
            pthread_cond_wait(&y->cond, &y->mu);
        }
    }
    pthread_mutex_unlock(&y->mu);
    return NULL;
}

int sked_sqlite_sync_start(const char *path, sqlite3 *writer, sked_sqlite_sync **out,
                           sked_err *err)
{
    *out = NULL;
    sked_sqlite_sync *y = calloc(1, sizeof *y);
    if (y == NULL)
        return sked_err_set(err, SKED_ENOMEM, NULL, 0, "out of memory");
    y->wal_fd = -1;
    size_t n = strlen(path) + sizeof "-wal";
    y->wal_path = malloc(n);
    if (y->wal_path == NULL) {
        free(y);
        return sked_err_set(err, SKED_ENOMEM, NULL, 0, "out of memory");
    }
    snprintf(y->wal_path, n, "%s-wal", path);
    int rc = sqlite3_open_v2(path, &y->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX,
                             NULL);
    if (rc != SQLITE_OK) {
        rc = sked_err_set(err, SKED_EIO, NULL, 0, "sqlite store: %s: %s", path,
                          y->db ? sqlite3_errmsg(y->db) : sqlite3_errstr(rc));
        goto fail;
    }
    /* the checkpoint syncs the WAL before it copies, the file after */
    sqlite3_exec(y->db, "PRAGMA synchronous=FULL", NULL, NULL, NULL);
    pthread_mutex_init(&y->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC); /* first_unsynced's clock */
    pthread_cond_init(&y->cond, &ca);
    pthread_condattr_destroy(&ca);
    if (pthread_create(&y->thread, NULL, sync_main, y) != 0) {
        pthread_mutex_destroy(&y->mu);
        pthread_cond_destroy(&y->cond);
        rc = sked_err_set(err, SKED_EINTERNAL, NULL, 0,
                          "sqlite store: cannot start the sync thread");
        goto fail;
    }
    sqlite3_wal_hook(writer, on_wal, y); /* and no automatic checkpoint */
    *out = y;
    return 0;
fail:
    sqlite3_close(y->db);
    free(y->wal_path);
    free(y);
    return rc;
}

void sked_sqlite_sync_stop(sked_sqlite_sync *y, sqlite3 *writer)
{
    if (y == NULL)
        return;
    sqlite3_wal_hook(writer, NULL, NULL);
    pthread_mutex_lock(&y->mu);
    y->stop = 1;
    pthread_cond_signal(&y->cond);
    pthread_mutex_unlock(&y->mu);
    pthread_join(y->thread, NULL);
    sqlite3_close(y->db);
    if (y->wal_fd >= 0)
        close(y->wal_fd);
    pthread_mutex_destroy(&y->mu);
    pthread_cond_destroy(&y->cond);
    free(y->wal_path);
    free(y);
}

void sked_sqlite_sync_get_stats(sked_sqlite_sync *y, sked_sqlite_sync_stats *out)
{
    memset(out, 0, sizeof *out);
    if (y == NULL)
        return;
    pthread_mutex_lock(&y->mu);
    *out = y->stats;
    out->unsynced = y->lazy_seq - y->synced_seq;
    pthread_mutex_unlock(&y->mu);
}
