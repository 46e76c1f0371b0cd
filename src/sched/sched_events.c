/*
 * sched_events.c - the scheduler's events thread: workers' started,
 * finished and heartbeat events, written to the store in batches.
 *
 * Each turn takes every event waiting (deliveries until about EVENT_BATCH
 * events; a worker packs several per message, one per line), turns each into
 * a fenced run change (only the current attempt, only from the statuses it
 * can follow), applies them in one store transaction, and only then acks
 * the deliveries: an event is never lost, and a redelivered one is fenced
 * out as a no-op.  A failed or timed-out attempt with attempts left goes
 * back to SCHEDULED with attempt + 1 at its backoff time; the timer thread
 * is woken to claim it.
 */
#include "sched/sched_internal.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/ids.h"
#include "core/log.h"
#include "model/run.h"
#include "worker/exec.h"
#include "worker/worker.h"

#define EVENT_BATCH 512

typedef struct pending {
    sked_run_rec rec;          /* the row to write                     */
    sked_run_change change;
    char task_id[SKED_ID_LEN + 1];
    char queue[SKED_NS_MAX + 1];
    int settles;               /* leaves dispatched/running for good   */
    int retry;
    int lag_first;             /* first start: observe the lag         */
    int start;                 /* a started event ...                  */
    int benign;                /* ... that, refused, is only a repeat  */
    char starter[SKED_WORKER_MAX + 1]; /* ... from this worker         */
} pending;

/* The runs a batch of events is about, read in one round trip before the
 * events are planned; an entry goes stale once a change to its run is
 * written (a later event of that run reads it again). */
typedef struct run_cache {
    const char **ids;          /* sorted; borrowed from the events      */
    sked_run_rec *recs;
    int *found;
    size_t n;
} run_cache;

static void cache_fill(sked_sched *s, run_cache *c, const sked_event *ev, size_t nev)
{
    size_t cap = 0;
    for (size_t i = 0; i < nev; i++)
        cap += ev[i].type == SKED_EVENT_HEARTBEAT ? ev[i].nruns : 1;
    memset(c, 0, sizeof *c);
    c->ids = malloc((cap ? cap : 1) * sizeof *c->ids);
    if (c->ids == NULL)
        abort();
    for (size_t i = 0; i < nev; i++) {
        if (ev[i].type != SKED_EVENT_HEARTBEAT)
            c->ids[c->n++] = ev[i].run_id;
        for (size_t k = 0; ev[i].type == SKED_EVENT_HEARTBEAT && k < ev[i].nruns; k++)
            c->ids[c->n++] = ev[i].runs[k];
    }
    qsort(c->ids, c->n, sizeof *c->ids, sked_id_ptr_cmp);
    size_t k = 0;
    for (size_t i = 0; i < c->n; i++)
        if (k == 0 || strcmp(c->ids[i], c->ids[k - 1]) != 0)
            c->ids[k++] = c->ids[i];
    c->n = k;
    c->recs = calloc(c->n ? c->n : 1, sizeof *c->recs);
    c->found = calloc(c->n ? c->n : 1, sizeof *c->found);
    if (c->recs == NULL || c->found == NULL)
        abort();
    sked_err err = {0};
    if (c->n > 0 && sked_store_run_get_many(s->cfg.store, c->ids, c->n, c->recs, c->found,
                                            NULL, &err) < 0)
        sked_log(SKED_LOG_WARN, "reading the events' runs failed", "error", err.msg, NULL);
}

static void cache_forget(run_cache *c, const char *id)
{
    const char **hit = bsearch(&id, c->ids, c->n, sizeof *c->ids, sked_id_ptr_cmp);
    if (hit && c->found[hit - c->ids]) {
        sked_run_rec_deinit(&c->recs[hit - c->ids]);
        c->found[hit - c->ids] = 0;
    }
}

static void cache_free(run_cache *c)
{
    for (size_t i = 0; i < c->n; i++)
        if (c->found[i])
            sked_run_rec_deinit(&c->recs[i]);
    free(c->ids);
    free(c->recs);
    free(c->found);
}

/* A copy of run id: from the cache, else from the store. */
/* The run of an event: 0, SKED_ENOENT (no such run: the event is
 * dropped), or another error (the store failed: the batch goes back). */
static int load(sked_sched *s, run_cache *c, const char *id, sked_run_rec *rec)
{
    const char **hit = bsearch(&id, c->ids, c->n, sizeof *c->ids, sked_id_ptr_cmp);
    if (hit && c->found[hit - c->ids]) {
        const sked_run_rec *r = &c->recs[hit - c->ids];
        *rec = *r;
        rec->error = r->error ? strdup(r->error) : NULL;
        rec->output = r->output ? strdup(r->output) : NULL;
        return 0;
    }
    sked_err err = {0};
    int rc = sked_store_run_get(s->cfg.store, NULL, id, rec, &err);
    if (rc == SKED_ENOENT)
        sked_log(SKED_LOG_WARN, "event for an unknown run", "run", id, NULL);
    else if (rc < 0)
        sked_log(SKED_LOG_WARN, "cannot read an event's run", "run", id, "error", err.msg, NULL);
    return rc;
}

static void set_str(char **dst, const char *src)
{
    free(*dst);
    *dst = src ? strdup(src) : NULL;
}

/* A start refused only because it repeats what is known (a redelivered
 * event, or its finished event was written first, maybe by another
 * scheduler): nothing to stop. */
static int start_repeats(const sked_run_rec *r, int attempt, const char *worker)
{
    return r->attempt == attempt && strcmp(r->worker, worker) == 0 &&
           (r->status == SKED_RUN_RUNNING ||
            (r->status != SKED_RUN_CANCELED &&
             !(SKED_RUN_UNFINISHED & SKED_RUN_BIT(r->status))));
}

/* Turn one event into zero or more pending changes.  -1 when the store
 * could not be read: the batch must come again (nothing of it is lost). */
static int plan(sked_sched *s, run_cache *c, const sked_event *e, pending *p, size_t *np,
                sked_walltime now)
{
    if (e->type == SKED_EVENT_HEARTBEAT) {
        sked_worker_rec w = {.slots = e->slots, .busy = e->busy, .last_heartbeat = now};
        snprintf(w.id, sizeof w.id, "%s", e->worker);
        snprintf(w.host, sizeof w.host, "%s", e->host);
        snprintf(w.version, sizeof w.version, "%s", "");
        w.queues = e->queues;
        sked_err err = {0};
        if (sked_store_worker_upsert(s->cfg.store, &w, &err) < 0)
            sked_log(SKED_LOG_WARN, "worker heartbeat not stored", "worker", e->worker,
                     "error", err.msg, NULL);
        for (size_t i = 0; i < e->nruns && *np < EVENT_BATCH * 2; i++) {
            pending *q = &p[*np];
            memset(q, 0, sizeof *q);
            int rc = load(s, c, e->runs[i], &q->rec);
            if (rc == SKED_ENOENT)
                continue;
            if (rc < 0)
                return -1;
            if (q->rec.status != SKED_RUN_RUNNING || q->rec.attempt != e->run_attempts[i]) {
                sked_run_rec_deinit(&q->rec);
                continue;
            }
            q->rec.lease_expires_at = now + s->cfg.run_lease_us;
            q->change = (sked_run_change){.attempt = e->run_attempts[i],
                                          .from = SKED_RUN_BIT(SKED_RUN_RUNNING)};
            (*np)++;
        }
        return 0;
    }
    pending *q = &p[*np];
    memset(q, 0, sizeof *q);
    int rc = load(s, c, e->run_id, &q->rec);
    if (rc < 0)
        return rc == SKED_ENOENT ? 0 : -1;
    sked_run_rec *r = &q->rec;
    snprintf(q->task_id, sizeof q->task_id, "%s", r->task_id);
    snprintf(q->queue, sizeof q->queue, "%s", r->queue);
    q->change.attempt = e->attempt;
    if (e->type == SKED_EVENT_RETURNED) {
        /* the broker gave the job back: whoever had it is gone */
        int named = e->dispatched_at != SKED_TIME_NONE;
        if ((r->status != SKED_RUN_RUNNING && r->status != SKED_RUN_DISPATCHED) ||
            r->attempt != e->attempt ||
            (r->status == SKED_RUN_DISPATCHED && named && e->dispatched_at != r->dispatched_at)) {
            /* settled or moved on meanwhile - or published again since
             * (the event is a repeat, or about an earlier message): the
             * copy now out is not the one that came back */
            sked_run_rec_deinit(r);
            return 0;
        }
        q->change.from = SKED_RUN_BIT(r->status);
        if (r->status == SKED_RUN_RUNNING) {
            /* The worker that started it may only have lost its
             * connection (a RabbitMQ node died) and still run it, or have
             * run it with its `finished` not out yet.  Its lease is cut to
             * half a run lease: a live worker renews it with its next
             * heartbeat, which lists its runs (every 5 s); for a dead one
             * the sweep charges the attempt when the cut lease runs out. */
            sked_walltime cut = now + s->cfg.run_lease_us / 2;
            if (r->lease_expires_at != SKED_TIME_NONE && r->lease_expires_at <= cut) {
                sked_run_rec_deinit(r);
                return 0;
            }
            r->lease_expires_at = cut;
            (*np)++;
            return 0;
        }
        /* never started, as far as the store knows: back to SCHEDULED,
         * published again (sked_sched_lose) and claimed now - as the same
         * attempt when its worker had this very dispatch's only delivery
         * and never started it */
        int unstarted = e->unstarted && named;
        sked_sched_lose(r, NULL, now, "", !s->cfg.recover_all_on_start && !unstarted);
        /* ... and written only over that dispatch: another scheduler may
         * have handled a repeat of this event since the run was read */
        if (named)
            q->change.dispatched_fence = e->dispatched_at;
        q->settles = 1;
        q->retry = 1;
        (*np)++;
        return 0;
    }
    int repeats = start_repeats(r, e->attempt, e->worker);
    snprintf(r->worker, sizeof r->worker, "%s", e->worker);
    if (e->type == SKED_EVENT_STARTED) {
        q->start = 1;
        snprintf(q->starter, sizeof q->starter, "%s", e->worker);
        q->benign = repeats;
        r->status = SKED_RUN_RUNNING;
        if (r->started_at == SKED_TIME_NONE)
            r->started_at = e->at;
        if (r->lag_us == SKED_TIME_NONE) {
            r->lag_us = e->at - r->scheduled_at;
            q->lag_first = 1;
        }
        /* the worker answers for it now, as long as it heartbeats */
        snprintf(r->lease_owner, sizeof r->lease_owner, "%.63s", e->worker);
        r->lease_expires_at = now + s->cfg.run_lease_us;
        q->change.from = SKED_RUN_BIT(SKED_RUN_DISPATCHED);
    } else {
        if (r->started_at == SKED_TIME_NONE && e->started_at != SKED_TIME_NONE) {
            /* its started event is still on its way (another scheduler
             * has it): the start is known from here too */
            r->started_at = e->started_at;
            if (r->lag_us == SKED_TIME_NONE) {
                r->lag_us = e->started_at - r->scheduled_at;
                q->lag_first = 1;
            }
        }
        r->finished_at = e->at;
        r->exit_code = e->exit_code;
        r->http_status = e->http_status;
        set_str(&r->error, e->error);
        set_str(&r->output, e->output);
        r->lease_owner[0] = '\0';
        r->lease_expires_at = SKED_TIME_NONE;
        q->settles = 1;
        switch (e->outcome) {
        case SKED_JOB_SUCCEEDED:
            r->status = SKED_RUN_SUCCEEDED;
            break;
        case SKED_JOB_CANCELED:
            r->status = SKED_RUN_CANCELED;
            break;
        default: {
            r->status = e->outcome == SKED_JOB_TIMED_OUT ? SKED_RUN_TIMED_OUT : SKED_RUN_FAILED;
            sked_task_rec task;
            sked_err err = {0};
            sked_walltime due;
            if (sked_store_task_get(s->cfg.store, r->ns, r->task_id, &task, &err) == 0) {
                if (sked_retry_due(task.spec, r->attempt, now, &due) == 0) {
                    r->status = SKED_RUN_SCHEDULED;
                    r->attempt++;
                    r->due_at = due;
                    q->retry = 1;
                }
                sked_task_rec_deinit(&task);
            }
        }
        }
        q->change.from = SKED_RUN_BIT(SKED_RUN_RUNNING) | SKED_RUN_BIT(SKED_RUN_DISPATCHED);
    }
    (*np)++;
    return 0;
}

/* A refused start, judged on the run as stored now: what was read before
 * the write may predate a finished event another scheduler wrote. */
static int start_repeats_now(sked_sched *s, const sked_run_rec *r, const pending *q)
{
    sked_run_rec now;
    sked_err err = {0};
    if (sked_store_run_get(s->cfg.store, NULL, r->id, &now, &err) < 0)
        return 0;
    int repeats = start_repeats(&now, q->change.attempt, q->starter);
    sked_run_rec_deinit(&now);
    return repeats;
}

/* Write the pending changes; -1 when the store failed (nothing to trust:
 * the caller hands the events back to be read again). */
static int apply(sked_sched *s, run_cache *c, pending *p, size_t n)
{
    if (n == 0)
        return 0;
    sked_run_change *ch = calloc(n, sizeof *ch);
    for (size_t i = 0; i < n; i++) {
        ch[i] = p[i].change;
        ch[i].rec = &p[i].rec;
        /* embedded: a run whose events were lost is recovered at start */
        ch[i].may_lose = s->cfg.recover_all_on_start;
    }
    sked_monotime t0 = sked_clock_mono_now();
    sked_err err = {0};
    int rc = sked_store_run_update(s->cfg.store, ch, n, &err);
    sked_histogram_observe(s->store_seconds, (double)(sked_clock_mono_now() - t0) / 1e6);
    if (rc < 0)
        sked_log(SKED_LOG_ERROR, "event batch not stored", "error", err.msg, NULL);
    int wake = 0;
    for (size_t i = 0; i < n; i++) {
        sked_run_rec *r = &p[i].rec;
        cache_forget(c, r->id); /* written: read it again if needed */
        if (p[i].settles)
            sked_sched_forget_run(s, r->id); /* applied or stale: it is over here */
        if (rc == 0 && ch[i].result == 0) {
            if (p[i].lag_first)
                sked_histogram_observe(s->lag, (double)r->lag_us / 1e6);
            if (p[i].retry)
                wake = 1;
            if (r->status != SKED_RUN_RUNNING || p[i].lag_first) {
                char lag[32] = "";
                if (r->lag_us != SKED_TIME_NONE)
                    snprintf(lag, sizeof lag, "%.3f", (double)r->lag_us / 1000.0);
                char att[16];
                snprintf(att, sizeof att, "%d", r->attempt);
                sked_log(r->status == SKED_RUN_FAILED || r->status == SKED_RUN_TIMED_OUT
                             ? SKED_LOG_WARN : SKED_LOG_INFO,
                         p[i].retry ? "run retry scheduled" : "run transition",
                         "run", r->id, "task", r->task_id, "status",
                         sked_run_status_name(r->status), "attempt", att,
                         "lag_ms", lag, "worker", r->worker, NULL);
                sked_sched_count_status(r->queue, r->status);
            }
        } else if (rc == 0 && p[i].start && !p[i].benign && !start_repeats_now(s, r, &p[i])) {
            /* started after it was canceled, or after its attempt was
             * given up: that execution must stop */
            sked_err e2 = {0};
            sked_log(SKED_LOG_WARN, "late start refused; ordering a cancel", "run", r->id,
                     "worker", p[i].starter, NULL);
            if (sked_worker_send_cancel(s->cfg.queue, p[i].starter, r->id, ch[i].attempt, &e2) < 0)
                sked_log(SKED_LOG_WARN, "cancel order not sent", "run", r->id, "error", e2.msg, NULL);
        } else if (rc == 0) {
            sked_log(SKED_LOG_DEBUG, "stale event ignored", "run", r->id, NULL);
        }
        sked_run_rec_deinit(r);
    }
    free(ch);
    if (wake)
        sked_sched_wake(s);
    return rc < 0 ? -1 : 0;
}

/* Decode the events of one delivery, one per line (worker.c packs them),
 * appending to *ev; a bad line is dropped with a warning. */
static void decode_delivery(const sked_delivery *d, sked_event **ev, size_t *ne, size_t *cap)
{
    const char *p = d->body, *end = d->body + d->len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *line_end = nl ? nl : end;
        *ev = sked_sched_grow(*ev, cap, *ne + 1, sizeof **ev);
        sked_err err = {0};
        if (line_end > p) {
            if (sked_event_decode(p, (size_t)(line_end - p), &(*ev)[*ne], &err) == 0)
                (*ne)++;
            else
                sked_log(SKED_LOG_WARN, "bad event dropped", "error", err.msg, NULL);
        }
        p = line_end + 1;
    }
}

/* Started events made redundant by a finished event of the same attempt
 * later in the batch, which carries the start (worker.c): planning only
 * the finished one writes each such run once instead of twice. */
typedef struct fin_key {
    const char *run_id;
    int attempt;
} fin_key;

static int by_fin(const void *a, const void *b)
{
    const fin_key *x = a, *y = b;
    int c = strcmp(x->run_id, y->run_id);
    return c ? c : (x->attempt > y->attempt) - (x->attempt < y->attempt);
}

static void mark_redundant(const sked_event *ev, size_t ne, char *redundant)
{
    fin_key *fin = malloc((ne ? ne : 1) * sizeof *fin);
    if (fin == NULL)
        abort();
    size_t nf = 0;
    for (size_t i = 0; i < ne; i++)
        if (ev[i].type == SKED_EVENT_FINISHED && ev[i].started_at != SKED_TIME_NONE)
            fin[nf++] = (fin_key){ev[i].run_id, ev[i].attempt};
    qsort(fin, nf, sizeof *fin, by_fin);
    for (size_t i = 0; i < ne; i++) {
        fin_key k = {ev[i].run_id, ev[i].attempt};
        redundant[i] = ev[i].type == SKED_EVENT_STARTED && nf > 0 &&
                       bsearch(&k, fin, nf, sizeof k, by_fin) != NULL;
    }
    free(fin);
}

int sked_sched_events_handle(sked_sched *s, const sked_event *ev, size_t ne)
{
    /* each planned change is set whole by plan() */
    pending *p = malloc((EVENT_BATCH * 2 + 1) * sizeof *p);
    char *redundant = malloc(ne ? ne : 1);
    if (p == NULL || redundant == NULL)
        abort();
    size_t np = 0;
    int failed = 0;
    sked_walltime now = sked_clock_wall_now();
    mark_redundant(ev, ne, redundant);
    run_cache c;
    cache_fill(s, &c, ev, ne);
    for (size_t i = 0; i < ne; i++) {
        const sked_event *e = &ev[i];
        if (redundant[i])
            continue;
        /* a second event of a run in this batch is planned on top of the
         * first one's result: write what is pending first */
        for (size_t k = 0; k < np && e->type != SKED_EVENT_HEARTBEAT; k++)
            if (strcmp(p[k].rec.id, e->run_id) == 0) {
                failed |= apply(s, &c, p, np);
                np = 0;
                break;
            }
        if (np + (e->type == SKED_EVENT_HEARTBEAT ? e->nruns : 1) > EVENT_BATCH * 2) {
            failed |= apply(s, &c, p, np);
            np = 0;
        }
        if (plan(s, &c, e, p, &np, now) < 0) {
            failed = 1; /* handed back by the caller, read again */
            break;
        }
    }
    failed |= apply(s, &c, p, np);
    cache_free(&c);
    free(redundant);
    free(p);
    return failed ? -1 : 0;
}

void *sked_sched_events_main(void *arg)
{
    sked_sched *s = arg;
    sked_delivery *d = calloc(EVENT_BATCH, sizeof *d);
    size_t evcap = EVENT_BATCH;
    sked_event *ev = calloc(evcap, sizeof *ev);
    if (d == NULL || ev == NULL)
        abort();
    for (;;) {
        if (sked_sched_stopping(s))
            break;
        sked_err err = {0};
        size_t nd = 0, ne = 0;
        if (sked_queue_consumer_next(s->consumer, -1, &d[0], &err) < 0)
            continue;
        decode_delivery(&d[nd++], &ev, &ne, &evcap);
        while (nd < EVENT_BATCH && ne < EVENT_BATCH &&
               sked_queue_consumer_next(s->consumer, 0, &d[nd], &err) == 0)
            decode_delivery(&d[nd++], &ev, &ne, &evcap);
        int failed = sked_sched_events_handle(s, ev, ne) < 0;
        for (size_t i = 0; i < ne; i++)
            sked_event_deinit(&ev[i]);
        /* Written: acknowledged.  The store failed (a failover, say): the
         * events go back and come again; those already written are fenced
         * out as repeats then. */
        for (size_t i = 0; i < nd; i++) {
            if (failed)
                sked_queue_nack(s->consumer, d[i].tag, 1, &err);
            else
                sked_queue_ack(s->consumer, d[i].tag, &err);
            sked_delivery_deinit(&d[i]);
        }
        if (failed) {
            struct timespec pause = {0, 200 * 1000 * 1000}; /* do not spin on a dead store */
            nanosleep(&pause, NULL);
        }
    }
    free(ev);
    free(d);
    return NULL;
}
