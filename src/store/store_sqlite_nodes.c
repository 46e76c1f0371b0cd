/*
 * store_sqlite_nodes.c - the SQLite store's records of the processes
 * themselves: workers' heartbeats (GET /v1/workers) and schedulers'
 * heartbeats with their watermarks (store.h, sked_sched_rec).
 *
 * Both are lazy writes of the group-commit writer (store_sqlite_sync.c):
 * a heartbeat lost in a crash of the machine is simply written again by
 * the next one.
 */
#include "store/store_sqlite.h"

#include <stdlib.h>
#include <string.h>

#define S(st) ((sked_sqlite_store *)(st))

/* ---- workers ------------------------------------------------------------ */

static int worker_upsert_fn(sked_sqlite_conn *c, void *arg, sked_err *err)
{
    const sked_worker_rec *w = arg;
    sqlite3_stmt *q;
    int rc = sked_sqlite_stmt(c, SKED_SQLITE_WORKER_UPSERT, &q, err);
    if (rc != 0)
        return rc;
    sqlite3_bind_text(q, 1, w->id, (int)strnlen(w->id, sizeof w->id),
                      SQLITE_STATIC);
    sqlite3_bind_text(q, 2, w->host, (int)strnlen(w->host, sizeof w->host),
                      SQLITE_STATIC);
    sked_sqlite_bind_text(q, 3, w->queues ? w->queues : "[]");
    sqlite3_bind_int(q, 4, w->slots);
    sqlite3_bind_int(q, 5, w->busy);
    sqlite3_bind_int64(q, 6, w->last_heartbeat);
    sqlite3_bind_text(q, 7, w->version,
                      (int)strnlen(w->version, sizeof w->version),
                      SQLITE_STATIC);
    int src = sqlite3_step(q);
    sqlite3_reset(q);
    if (src != SQLITE_DONE)
        return sked_sqlite_fail(c->db, src, err, "worker upsert");
    return 0;
}

int sked_sqlite_worker_upsert(sked_store *st, const sked_worker_rec *w,
                              sked_err *err)
{
    if (w == NULL || strnlen(w->id, sizeof w->id) == 0)
        return sked_err_set(err, SKED_EINVAL, "id", 0, "worker id is empty");
    if (w->last_heartbeat == SKED_TIME_NONE)
        return sked_err_set(err, SKED_EINVAL, "last_heartbeat", 0,
                            "a heartbeat needs a time");
    /* lazy: the next heartbeat writes it again */
    return sked_sqlite_write_lazy(S(st), worker_upsert_fn, (void *)w, 1, err);
}

static void free_workers(sked_worker_rec *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i].queues);
    free(v);
}

int sked_sqlite_worker_list(sked_store *st, sked_walltime since,
                            sked_worker_rec **out, size_t *n, sked_err *err)
{
    *out = NULL;
    *n = 0;
    sked_sqlite_conn *c;
    sqlite3_stmt *q = NULL;
    sked_worker_rec *v = NULL;
    size_t cnt = 0, cap = 0;
    int src, rc = sked_sqlite_reader_get(S(st), &c, err);
    if (rc != 0)
        return rc;
    if ((rc = sked_sqlite_stmt(c, SKED_SQLITE_WORKER_LIST, &q, err)) != 0)
        goto fail;
    sqlite3_bind_int64(q, 1, since == SKED_TIME_NONE ? INT64_MIN : since);
    while ((src = sqlite3_step(q)) == SQLITE_ROW) {
        if (cnt == cap) {
            size_t ncap = cap ? 2 * cap : 16;
            sked_worker_rec *more = realloc(v, ncap * sizeof *v);
            if (more == NULL) {
                rc = sked_err_set(err, SKED_ENOMEM, NULL, 0, "out of memory");
                goto fail;
            }
            v = more;
            cap = ncap;
        }
        sked_worker_rec *w = &v[cnt];
        memset(w, 0, sizeof *w);
        sked_sqlite_col_fixed(q, 0, w->id, sizeof w->id);
        sked_sqlite_col_fixed(q, 1, w->host, sizeof w->host);
        w->slots = sqlite3_column_int(q, 3);
        w->busy = sqlite3_column_int(q, 4);
        w->last_heartbeat = sqlite3_column_int64(q, 5);
        sked_sqlite_col_fixed(q, 6, w->version, sizeof w->version);
        if ((rc = sked_sqlite_col_dup(q, 2, &w->queues, "a worker", err)))
            goto fail;
        cnt++;
    }
    if (src != SQLITE_DONE) {
        rc = sked_sqlite_fail(c->db, src, err, "worker list");
        goto fail;
    }
    sqlite3_reset(q);
    sked_sqlite_reader_put(S(st), c);
    *out = v;
    *n = cnt;
    return 0;
fail:
    if (q != NULL)
        sqlite3_reset(q);
    sked_sqlite_reader_put(S(st), c);
    free_workers(v, cnt);
    return rc;
}

/* ---- schedulers ---------------------------------------------------------- */

typedef struct beat_job {
    const sked_sched_rec *me;
    sked_walltime prune_before;
    sked_sched_rec *rows;             /* out */
    size_t n;                         /* out */
} beat_job;

/* The rows as they are, into a->rows. */
static int beat_read(sked_sqlite_conn *c, beat_job *a, sked_err *err)
{
    sqlite3_stmt *q = NULL;
    int src = SQLITE_DONE, rc = sked_sqlite_stmt(c, SKED_SQLITE_SCHED_LIST, &q, err);
    size_t cap = 0;
    while (rc == 0 && (src = sqlite3_step(q)) == SQLITE_ROW) {
        if (a->n == cap) {
            cap = cap ? 2 * cap : 8;
            sked_sched_rec *more = realloc(a->rows, cap * sizeof *more);
            if (more == NULL) {
                rc = sked_err_set(err, SKED_ENOMEM, NULL, 0, "out of memory");
                break;
            }
            a->rows = more;
        }
        sked_sched_rec *r = &a->rows[a->n++];
        memset(r, 0, sizeof *r);
        sked_sqlite_col_fixed(q, 0, r->id, sizeof r->id);
        r->beats = sqlite3_column_int64(q, 1);
        r->beat_at = sqlite3_column_int64(q, 2);
        r->published_to = sqlite3_column_int64(q, 3);
    }
    if (rc == 0 && src != SQLITE_DONE)
        rc = sked_sqlite_fail(c->db, src, err, "scheduler list");
    if (q != NULL)
        sqlite3_reset(q);
    return rc;
}

static int beat_fn(sked_sqlite_conn *c, void *arg, sked_err *err)
{
    beat_job *a = arg;
    free(a->rows);
    a->rows = NULL;
    a->n = 0;
    int rc = beat_read(c, a, err);
    sqlite3_stmt *q;
    if (rc == 0 && (rc = sked_sqlite_stmt(c, SKED_SQLITE_SCHED_PUT, &q, err)) == 0) {
        sked_sqlite_bind_text(q, 1, a->me->id);
        sqlite3_bind_int64(q, 2, a->me->beats);
        sqlite3_bind_int64(q, 3, a->me->beat_at);
        sqlite3_bind_int64(q, 4, a->me->published_to);
        sqlite3_bind_int(q, 5, a->me->keep_older != 0);
        int src = sqlite3_step(q);
        sqlite3_reset(q);
        if (src != SQLITE_DONE)
            rc = sked_sqlite_fail(c->db, src, err, "scheduler beat");
    }
    if (rc == 0 && (rc = sked_sqlite_stmt(c, SKED_SQLITE_SCHED_PRUNE, &q, err)) == 0) {
        sked_sqlite_bind_text(q, 1, a->me->id);
        sqlite3_bind_int64(q, 2, a->prune_before == SKED_TIME_NONE ? INT64_MIN
                                                                    : a->prune_before);
        int src = sqlite3_step(q);
        sqlite3_reset(q);
        if (src != SQLITE_DONE)
            rc = sked_sqlite_fail(c->db, src, err, "scheduler prune");
    }
    return rc;
}

int sked_sqlite_sched_beat(sked_store *st, const sked_sched_rec *me,
                           sked_walltime prune_before, sked_sched_rec **out,
                           size_t *n, sked_err *err)
{
    beat_job a = {.me = me, .prune_before = prune_before};
    int rc = sked_sqlite_write_lazy(S(st), beat_fn, &a, 1, err);
    if (rc != 0) {
        free(a.rows);
        a.rows = NULL;
        a.n = 0;
    }
    *out = a.rows;
    *n = a.n;
    return rc;
}
