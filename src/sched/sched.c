/*
 * sched.c - the scheduler's timer thread: claim, dispatch, sweep.
 *
 * One loop, no polling beat: each turn it (1) claims what is due within
 * the look-ahead window when the window has moved on or it was woken,
 * (2) publishes every run whose due_at has come, (3) sweeps expired leases
 * every few seconds, then sleeps until the earliest of: the next due run,
 * the next claim, the next sweep — an absolute CLOCK_REALTIME deadline on
 * a condition variable that sked_sched_wake signals.
 *
 * A claim returns every run SCHEDULED and leased to this scheduler within
 * the window, so the heap is rebuilt from each claim; claims and dispatches
 * happen on this one thread, so a run cannot be in the heap and in flight
 * at once.  A run is marked DISPATCHED in the store (fenced on SCHEDULED
 * and its attempt) before it is published: a crash in between leaves it
 * DISPATCHED with a lease, and the sweep publishes it again — never twice
 * while its worker may still have it.
 */
#include "sched/sched_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "model/run.h"
#include "model/task.h"
#include "sched/policy.h"

#define SWEEP_EVERY (2 * SKED_USEC_PER_SEC)

/* --- heap ---------------------------------------------------------------- */

static int before(const due_run *a, const due_run *b)
{
    return a->rec.due_at != b->rec.due_at ? a->rec.due_at < b->rec.due_at
                                          : a->seq < b->seq;
}

static void heap_push(sked_sched *s, due_run d)
{
    if (s->nheap == s->capheap) {
        s->capheap = s->capheap ? 2 * s->capheap : 1024;
        s->heap = realloc(s->heap, s->capheap * sizeof *s->heap);
        if (s->heap == NULL)
            abort();
    }
    size_t i = s->nheap++;
    while (i > 0 && before(&d, &s->heap[(i - 1) / 2])) {
        s->heap[i] = s->heap[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    s->heap[i] = d;
}

static due_run heap_pop(sked_sched *s)
{
    due_run top = s->heap[0], last = s->heap[--s->nheap];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= s->nheap)
            break;
        if (c + 1 < s->nheap && before(&s->heap[c + 1], &s->heap[c]))
            c++;
        if (!before(&s->heap[c], &last))
            break;
        s->heap[i] = s->heap[c];
        i = c;
    }
    if (s->nheap > 0)
        s->heap[i] = last;
    return top;
}

static void heap_clear(sked_sched *s)
{
    while (s->nheap > 0) {
        due_run d = heap_pop(s);
        sked_run_rec_deinit(&d.rec);
        free(d.spec);
    }
}

/* --- overlap bookkeeping --------------------------------------------------- */

static unsigned bucket(const char *id)
{
    unsigned h = 5381;
    for (; *id; id++)
        h = h * 33 + (unsigned char)*id;
    return h % 256;
}

int sked_sched_active(sked_sched *s, const char *task_id)
{
    for (active_task *a = s->active[bucket(task_id)]; a; a = a->next)
        if (strcmp(a->task_id, task_id) == 0)
            return a->count;
    return 0;
}

static void task_count(sked_sched *s, const char *task_id, int delta)
{
    active_task **pp = &s->active[bucket(task_id)];
    for (; *pp; pp = &(*pp)->next) {
        if (strcmp((*pp)->task_id, task_id) == 0) {
            (*pp)->count += delta;
            if ((*pp)->count <= 0) {
                active_task *dead = *pp;
                *pp = dead->next;
                free(dead);
            }
            return;
        }
    }
    if (delta <= 0)
        return;
    active_task *a = calloc(1, sizeof *a);
    if (a == NULL)
        abort();
    snprintf(a->task_id, sizeof a->task_id, "%s", task_id);
    a->count = delta;
    a->next = *pp;
    *pp = a;
}

static unsigned run_bucket(const char *id) { return bucket(id) * 4 + (unsigned char)id[strlen(id) - 1] % 4; }

void sked_sched_active_add(sked_sched *s, const char *task_id, const char *run_id)
{
    active_run **pp = &s->active_runs[run_bucket(run_id)];
    for (active_run *r = *pp; r; r = r->next)
        if (strcmp(r->run_id, run_id) == 0)
            return;
    active_run *r = calloc(1, sizeof *r);
    if (r == NULL)
        abort();
    snprintf(r->run_id, sizeof r->run_id, "%s", run_id);
    snprintf(r->task_id, sizeof r->task_id, "%s", task_id);
    r->next = *pp;
    *pp = r;
    task_count(s, task_id, 1);
}

void sked_sched_active_forget(sked_sched *s, const char *run_id)
{
    for (active_run **pp = &s->active_runs[run_bucket(run_id)]; *pp; pp = &(*pp)->next) {
        if (strcmp((*pp)->run_id, run_id) == 0) {
            active_run *dead = *pp;
            *pp = dead->next;
            task_count(s, dead->task_id, -1);
            free(dead);
            return;
        }
    }
}

/* The run of task_id waiting under queue_one, or NULL. */
static waiting_run **waiting_of(sked_sched *s, const char *task_id)
{
    waiting_run **pp = &s->waiting[bucket(task_id)];
    for (; *pp; pp = &(*pp)->next)
        if (strcmp((*pp)->task_id, task_id) == 0)
            return pp;
    return NULL;
}

void sked_sched_forget_run(sked_sched *s, const char *run_id)
{
    if (s == NULL)
        return;
    pthread_mutex_lock(&s->mu);
    char task_id[SKED_ID_LEN + 1] = "";
    for (active_run *r = s->active_runs[run_bucket(run_id)]; r; r = r->next)
        if (strcmp(r->run_id, run_id) == 0)
            snprintf(task_id, sizeof task_id, "%s", r->task_id);
    sked_sched_active_forget(s, run_id);
    /* a run waiting behind this one (queue_one) may go now */
    int release = task_id[0] && sked_sched_active(s, task_id) == 0 &&
                  waiting_of(s, task_id) != NULL;
    if (release) {
        s->wake = 1;
        pthread_cond_signal(&s->cond);
    }
    pthread_mutex_unlock(&s->mu);
}

void sked_sched_count_status(const char *queue, sked_run_status st)
{
    char labels[160];
    if (sked_metrics_labels(labels, sizeof labels, "queue", queue, "status",
                            sked_run_status_name(st), NULL) >= 0)
        sked_counter_inc(sked_counter_get(sked_metrics_default(), "sked_runs_total",
                                          "Runs reaching a status.", labels));
}

/* --- claim ------------------------------------------------------------------- */

/* One claim: the heap becomes exactly what the store says is ours and due
 * within the window (earliest first, at most claim_limit).  Returns
 * non-zero when the limit was hit: claim again once these are out. */
static int claim(sked_sched *s, sked_walltime now)
{
    sked_monotime t0 = sked_clock_mono_now();
    sked_policy_ctx pc = {.now = now, .horizon = now + s->cfg.window_us};
    sked_claim c = {.owner = s->owner, .now = now, .horizon = pc.horizon,
                    .limit = s->cfg.claim_limit, .lease_us = s->cfg.lease_us,
                    .advance = sked_policy_advance, .ctx = &pc};
    sked_err err = {0};
    if (sked_store_claim_due(s->cfg.store, &c, &err) < 0) {
        sked_log(SKED_LOG_ERROR, "claim failed", "error", err.msg, NULL);
        return 0;
    }
    heap_clear(s);
    for (size_t i = 0; i < c.nruns; i++) {
        due_run d = {.rec = c.runs[i], .spec = c.specs[i], .seq = s->seq++};
        c.runs[i].error = c.runs[i].output = NULL;
        c.specs[i] = NULL;
        heap_push(s, d);
    }
    int more = c.more;
    sked_claim_deinit(&c);
    /* a waiting (queue_one) run that the store no longer gives us was
     * canceled, paused or taken over: stop holding its place */
    pthread_mutex_lock(&s->mu);
    for (int b = 0; b < 256; b++) {
        for (waiting_run **pp = &s->waiting[b]; *pp;) {
            int held = 0;
            for (size_t i = 0; i < s->nheap && !held; i++)
                held = strcmp(s->heap[i].rec.id, (*pp)->run_id) == 0;
            if (held || more) {
                pp = &(*pp)->next;
            } else {
                waiting_run *dead = *pp;
                *pp = dead->next;
                free(dead);
            }
        }
    }
    pthread_mutex_unlock(&s->mu);
    sked_histogram_observe(s->claim_seconds,
                           (double)(sked_clock_mono_now() - t0) / 1e6);
    return more;
}

/* --- dispatch ---------------------------------------------------------------- */

static const char *overlap_of(const char *spec)
{
    if (spec == NULL)
        return "skip";
    if (strstr(spec, "\"overlap\":\"allow\""))
        return "allow";
    if (strstr(spec, "\"overlap\":\"queue_one\""))
        return "queue_one";
    return "skip";
}

/* Publish every run due by now: mark them in one store batch, then
 * publish those whose mark applied. */
static void dispatch_due(sked_sched *s, sked_walltime now)
{
    if (s->nheap == 0 || s->heap[0].rec.due_at > now)
        return;
    sked_monotime t0 = sked_clock_mono_now();
    size_t cap = 256;
    due_run *batch = malloc(cap * sizeof *batch);
    sked_run_rec *recs = malloc(cap * sizeof *recs);
    size_t n = 0;
    while (s->nheap > 0 && s->heap[0].rec.due_at <= now && n < 4096) {
        if (n == cap) {
            cap *= 2;
            batch = realloc(batch, cap * sizeof *batch);
            recs = realloc(recs, cap * sizeof *recs);
        }
        batch[n++] = heap_pop(s);
    }
    sked_run_change *ch = calloc(n, sizeof *ch);
    pthread_mutex_lock(&s->mu);
    for (size_t i = 0; i < n; i++) {
        due_run *d = &batch[i];
        recs[i] = d->rec;
        recs[i].error = recs[i].output = NULL;
        /* a retry is the same occurrence, not a new one: never skipped */
        const char *ov = d->rec.attempt > 1 ? "allow" : overlap_of(d->spec);
        int busy = sked_sched_active(s, d->rec.task_id);
        waiting_run **w = NULL;
        if (d->spec == NULL) {
            recs[i].status = SKED_RUN_CANCELED;
            recs[i].finished_at = now;
            recs[i].error = "task deleted";
        } else if (busy > 0 && strcmp(ov, "queue_one") == 0 &&
                   ((w = waiting_of(s, d->rec.task_id)) == NULL ||
                    strcmp((*w)->run_id, d->rec.id) == 0)) {
            /* queue_one: this one waits (still SCHEDULED in the store; the
             * next claim brings it back) until the previous run settles */
            if (w == NULL) {
                waiting_run *nw = calloc(1, sizeof *nw);
                if (nw == NULL)
                    abort();
                snprintf(nw->task_id, sizeof nw->task_id, "%s", d->rec.task_id);
                snprintf(nw->run_id, sizeof nw->run_id, "%s", d->rec.id);
                nw->next = s->waiting[bucket(d->rec.task_id)];
                s->waiting[bucket(d->rec.task_id)] = nw;
            }
            recs[i].status = SKED_RUN_SCHEDULED; /* held: no change */
        } else if (busy > 0 && strcmp(ov, "allow") != 0) {
            recs[i].status = SKED_RUN_SKIPPED;
            snprintf(recs[i].reason, sizeof recs[i].reason, "overlap");
            recs[i].finished_at = now;
        } else {
            if ((w = waiting_of(s, d->rec.task_id)) != NULL &&
                strcmp((*w)->run_id, d->rec.id) == 0) {
                waiting_run *dead = *w; /* the waiting one goes now */
                *w = dead->next;
                free(dead);
            }
            recs[i].status = SKED_RUN_DISPATCHED;
            recs[i].dispatched_at = now;
            recs[i].lease_expires_at = now + s->cfg.dispatch_lease_us;
            sked_sched_active_add(s, d->rec.task_id, d->rec.id); /* tentatively */
        }
        ch[i] = (sked_run_change){.rec = &recs[i], .attempt = d->rec.attempt,
                                  .from = SKED_RUN_BIT(SKED_RUN_SCHEDULED)};
    }
    pthread_mutex_unlock(&s->mu);
    /* held runs change nothing: leave them out of the batch */
    sked_run_change *todo = calloc(n ? n : 1, sizeof *todo);
    size_t nt = 0;
    for (size_t i = 0; i < n; i++)
        if (recs[i].status != SKED_RUN_SCHEDULED)
            todo[nt++] = ch[i];
    sked_err err = {0};
    int rc = nt ? sked_store_run_update(s->cfg.store, todo, nt, &err) : 0;
    for (size_t i = 0, k = 0; i < n; i++) {
        if (recs[i].status == SKED_RUN_SCHEDULED)
            ch[i].result = SKED_EPRECOND; /* not applied: nothing to publish */
        else
            ch[i].result = todo[k++].result;
    }
    free(todo);
    for (size_t i = 0; i < n; i++) {
        due_run *d = &batch[i];
        int ok = rc == 0 && ch[i].result == 0;
        if (recs[i].status == SKED_RUN_DISPATCHED) {
            if (ok) {
                size_t len;
                char *msg = sked_job_message(&recs[i], d->spec, &len);
                sked_err perr = {0};
                if (msg == NULL ||
                    sked_queue_publish(s->cfg.queue, recs[i].queue, msg, len, &perr) < 0)
                    sked_log(SKED_LOG_ERROR, "publish failed; the sweep will retry",
                             "run", recs[i].id, "error", perr.msg, NULL);
                else
                    sked_log(SKED_LOG_DEBUG, "run dispatched", "run", recs[i].id,
                             "task", recs[i].task_id, "queue", recs[i].queue, NULL);
                free(msg);
                sked_sched_count_status(recs[i].queue, SKED_RUN_DISPATCHED);
            } else {
                sked_sched_forget_run(s, d->rec.id);
            }
        } else if (ok) {
            sked_log(SKED_LOG_INFO, recs[i].status == SKED_RUN_SKIPPED ? "run skipped" : "run canceled",
                     "run", recs[i].id, "task", recs[i].task_id, "reason",
                     recs[i].status == SKED_RUN_SKIPPED ? "overlap" : "task deleted", NULL);
            sked_sched_count_status(recs[i].queue, recs[i].status);
        }
        if (rc < 0)
            sked_log(SKED_LOG_ERROR, "dispatch update failed", "run", recs[i].id,
                     "error", err.msg, NULL);
        sked_run_rec_deinit(&d->rec);
        free(d->spec);
    }
    free(ch);
    free(recs);
    free(batch);
    sked_histogram_observe(s->dispatch_seconds,
                           (double)(sked_clock_mono_now() - t0) / 1e6);
}

/* --- sweep ------------------------------------------------------------------- */

/* Expired leases: a DISPATCHED run whose worker never started it goes back
 * to SCHEDULED (published again, same attempt); a RUNNING run whose worker
 * stopped heartbeating has lost that attempt: retried or failed. */
static void sweep(sked_sched *s, sked_walltime now, sked_walltime expired_before)
{
    sked_claim c = {0};
    sked_err err = {0};
    if (sked_store_sweep_expired(s->cfg.store, expired_before, 1000, &c, &err) < 0) {
        sked_log(SKED_LOG_ERROR, "sweep failed", "error", err.msg, NULL);
        return;
    }
    int64_t deleted = 0;
    sked_store_run_prune(s->cfg.store, now - s->cfg.retention_age_us,
                         s->cfg.retention_keep, 1000, &deleted, &err);
    if (c.nruns == 0) {
        sked_claim_deinit(&c);
        return;
    }
    sked_run_rec *recs = calloc(c.nruns, sizeof *recs);
    sked_run_change *ch = calloc(c.nruns, sizeof *ch);
    for (size_t i = 0; i < c.nruns; i++) {
        sked_run_rec *r = &recs[i];
        *r = c.runs[i];
        r->error = r->output = NULL;
        int was = r->status;
        r->lease_owner[0] = '\0';
        r->lease_expires_at = SKED_TIME_NONE;
        if (was == SKED_RUN_DISPATCHED) {
            r->status = SKED_RUN_SCHEDULED;
            r->due_at = now;
        } else {
            sked_walltime due;
            r->finished_at = now;
            r->error = "worker lost: no heartbeat before the lease expired";
            if (c.specs[i] && sked_retry_due(c.specs[i], r->attempt, now, &due) == 0) {
                r->status = SKED_RUN_SCHEDULED;
                r->attempt++;
                r->due_at = due;
            } else {
                r->status = SKED_RUN_FAILED;
            }
        }
        ch[i] = (sked_run_change){.rec = r, .attempt = c.runs[i].attempt,
                                  .from = SKED_RUN_BIT(was)};
        sked_sched_forget_run(s, r->id);
        sked_log(SKED_LOG_WARN, was == SKED_RUN_DISPATCHED ? "run republished" : "run lost its worker",
                 "run", r->id, "task", r->task_id, NULL);
    }
    if (sked_store_run_update(s->cfg.store, ch, c.nruns, &err) < 0)
        sked_log(SKED_LOG_ERROR, "sweep update failed", "error", err.msg, NULL);
    free(ch);
    free(recs);
    sked_claim_deinit(&c);
}

/* --- the loop ---------------------------------------------------------------- */

static void *timer_main(void *arg)
{
    sked_sched *s = arg;
    sked_walltime next_claim = 0, next_sweep = 0;
    int more = 0;
    if (s->cfg.recover_all_on_start)
        sweep(s, sked_clock_wall_now(), INT64_MAX);
    pthread_mutex_lock(&s->mu);
    while (!s->stop) {
        sked_walltime now = sked_clock_wall_now();
        int do_claim = s->wake || now >= next_claim || (more && s->nheap == 0);
        s->wake = 0;
        pthread_mutex_unlock(&s->mu);
        if (do_claim) {
            more = claim(s, now);
            next_claim = now + s->cfg.window_us / 2;
        }
        if (now >= next_sweep) {
            sweep(s, now, now);
            next_sweep = now + SWEEP_EVERY;
        }
        dispatch_due(s, sked_clock_wall_now());
        pthread_mutex_lock(&s->mu);
        sked_walltime until = next_claim < next_sweep ? next_claim : next_sweep;
        if (s->nheap > 0 && s->heap[0].rec.due_at < until)
            until = s->heap[0].rec.due_at;
        if (!s->stop && !s->wake && !(more && s->nheap == 0) &&
            until > sked_clock_wall_now()) {
            struct timespec ts = {.tv_sec = until / SKED_USEC_PER_SEC,
                                  .tv_nsec = (long)(until % SKED_USEC_PER_SEC) * 1000};
            pthread_cond_timedwait(&s->cond, &s->mu, &ts);
        }
    }
    pthread_mutex_unlock(&s->mu);
    heap_clear(s);
    return NULL;
}

void sked_sched_wake(sked_sched *s)
{
    if (s == NULL)
        return;
    pthread_mutex_lock(&s->mu);
    s->wake = 1;
    pthread_cond_signal(&s->cond);
    pthread_mutex_unlock(&s->mu);
}

int sked_sched_start(const sked_sched_config *cfg, sked_sched **out, sked_err *err)
{
    static const double lag_bounds[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                        0.1,   0.25,   0.5,   1,    2.5,   5,
                                        10,    30};
    static const double op_bounds[] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
                                       0.01,   0.025,   0.05,   0.1,   0.25,   1};
    sked_sched *s = calloc(1, sizeof *s);
    if (s == NULL)
        abort();
    s->cfg = *cfg;
    snprintf(s->owner, sizeof s->owner, "%s", cfg->owner);
    s->cfg.owner = s->owner;
    if (!s->cfg.window_us) s->cfg.window_us = 2 * SKED_USEC_PER_SEC;
    if (!s->cfg.lease_us) s->cfg.lease_us = 30 * SKED_USEC_PER_SEC;
    if (!s->cfg.dispatch_lease_us) s->cfg.dispatch_lease_us = 60 * SKED_USEC_PER_SEC;
    if (!s->cfg.run_lease_us) s->cfg.run_lease_us = 30 * SKED_USEC_PER_SEC;
    if (!s->cfg.claim_limit) s->cfg.claim_limit = 1000;
    if (!s->cfg.retention_age_us) s->cfg.retention_age_us = INT64_C(7) * 86400 * SKED_USEC_PER_SEC;
    if (!s->cfg.retention_keep) s->cfg.retention_keep = 1000;
    sked_metrics *m = sked_metrics_default();
    s->lag = sked_histogram_get(m, "sked_run_start_lag_seconds",
                                "Start lag: the worker's start minus scheduled_at.",
                                "", lag_bounds, 14);
    s->claim_seconds = sked_histogram_get(m, "sked_claim_seconds", "Time of one claim.",
                                          "", op_bounds, 12);
    s->dispatch_seconds = sked_histogram_get(m, "sked_dispatch_seconds",
                                             "Time to mark and publish one batch of due runs.",
                                             "", op_bounds, 12);
    s->store_seconds = sked_histogram_get(m, "sked_store_seconds",
                                          "Time of one batch of run updates from events.",
                                          "", op_bounds, 12);
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cond, NULL); /* CLOCK_REALTIME by default */
    if (sked_queue_consumer_open(cfg->queue, SKED_EVENTS_QUEUE, 1000, &s->consumer, err) < 0)
        goto fail;
    if (pthread_create(&s->events, NULL, sked_sched_events_main, s) != 0) {
        sked_queue_consumer_close(s->consumer);
        sked_err_set(err, SKED_EINTERNAL, NULL, 0, "cannot start the events thread");
        goto fail;
    }
    if (pthread_create(&s->timer, NULL, timer_main, s) != 0) {
        pthread_mutex_lock(&s->mu);
        s->stop = 1;
        pthread_mutex_unlock(&s->mu);
        sked_queue_consumer_wake(s->consumer);
        pthread_join(s->events, NULL);
        sked_queue_consumer_close(s->consumer);
        sked_err_set(err, SKED_EINTERNAL, NULL, 0, "cannot start the timer thread");
        goto fail;
    }
    *out = s;
    return 0;
fail:
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cond);
    free(s);
    return err ? err->code : SKED_EINTERNAL;
}

void sked_sched_stop(sked_sched *s)
{
    if (s == NULL)
        return;
    pthread_mutex_lock(&s->mu);
    s->stop = 1;
    pthread_cond_signal(&s->cond);
    pthread_mutex_unlock(&s->mu);
    sked_queue_consumer_wake(s->consumer);
    pthread_join(s->timer, NULL);
    pthread_join(s->events, NULL);
    sked_queue_consumer_close(s->consumer);
    for (int i = 0; i < 256; i++)
        while (s->active[i]) {
            active_task *a = s->active[i];
            s->active[i] = a->next;
            free(a);
        }
    for (int i = 0; i < 256; i++)
        while (s->waiting[i]) {
            waiting_run *w = s->waiting[i];
            s->waiting[i] = w->next;
            free(w);
        }
    for (int i = 0; i < 1024; i++)
        while (s->active_runs[i]) {
            active_run *r = s->active_runs[i];
            s->active_runs[i] = r->next;
            free(r);
        }
    free(s->heap);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cond);
    free(s);
}
