/*
 * store_sqlite_sync.h - background fsync of lazy commits and WAL
 * checkpoints for the SQLite store (store_sqlite_sync.c says why).
 *
 * The store opens one per file after its writer connection and before its
 * writer thread, tells it of every commit from the writer thread, and
 * stops it after the writer thread (so the last lazy commits are synced)
 * and before closing the writer connection.
 */
#ifndef SKED_STORE_SQLITE_SYNC_H
#define SKED_STORE_SQLITE_SYNC_H

#include <sqlite3.h>
#include <stdint.h>

#include "core/err.h"
#include "store/store.h"

typedef struct sked_sqlite_sync sked_sqlite_sync;

typedef struct sked_sqlite_sync_stats {
    uint64_t syncs;        /* fdatasyncs of the WAL done                 */
    uint64_t checkpoints;  /* PASSIVE checkpoints done by the sync thread */
    uint64_t writer_checkpoints; /* and by the writer (the WAL was long) */
    uint64_t unsynced;     /* lazy commits not yet known durable         */
} sked_sqlite_sync_stats;

/* Start the sync thread for the database at path, whose writer connection
 * is writer: installs a wal hook on writer, which turns off its automatic
 * checkpoints.  0, or a SKED_E* code with err filled. */
int sked_sqlite_sync_start(const char *path, sqlite3 *writer, sked_sqlite_sync **out,
                           sked_err *err);

/* Writer thread, after each successful COMMIT: lazy says it was committed
 * with synchronous=OFF (to be synced within 50 ms); a durable one
 * covers every lazy commit before it.  Returns 1 when the WAL has grown
 * so long that the writer must checkpoint it itself (PASSIVE), now.  y
 * may be NULL. */
int sked_sqlite_sync_committed(sked_sqlite_sync *y, int lazy);

/* Sync what is pending, stop the thread, free y (NULL is fine). */
void sked_sqlite_sync_stop(sked_sqlite_sync *y, sqlite3 *writer);

void sked_sqlite_sync_get_stats(sked_sqlite_sync *y, sked_sqlite_sync_stats *out);
/* The same for an open SQLite store (tests, diagnostics). */
void sked_sqlite_store_sync_stats(sked_store *st, sked_sqlite_sync_stats *out);

#endif
