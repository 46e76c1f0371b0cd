/*
 * sched.c - the scheduler: its claimer and listener threads, and starting
 * and stopping them all (sched_internal.h lists them).
 *
 * The claimer claims what is due within the look-ahead window when the
 * window has moved on (every half window) or when woken (a task changed
 * here, a retry, another process's NOTIFY heard by the listener), and
 * sweeps expired leases and prunes old runs every few seconds.  A claim
 * returns every run SCHEDULED and leased to this scheduler within the
 * window, so the timer thread's heap is replaced by each claim
 * (sched_dispatch.c).  Claims, sweeps and their fsyncs never delay the
 * timer thread: it only marks and publishes runs that are due.
 */
#include "sched/sched_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "model/run.h"
#include "model/task.h"
#include "sched/policy.h"

#define SWEEP_EVERY (2 * SKED_USEC_PER_SEC)

void sked_sched_count_status(const char *queue, sked_run_status st)
{
    char labels[160];
    if (sked_metrics_labels(labels, sizeof labels, "queue", queue, "status",
                            sked_run_status_name(st), NULL) >= 0)
        sked_counter_inc(sked_counter_get(sked_metrics_default(), "sked_runs_total",
                                          "Runs reaching a status.", labels));
}

int sked_sched_lose(sked_run_rec *r, const char *spec, sked_walltime now, const char *why,
                    int maybe_ran)
{
    int was = r->status;
    r->lease_owner[0] = '\0';
    r->lease_expires_at = SKED_TIME_NONE;
    if (was == SKED_RUN_DISPATCHED) {
        r->status = SKED_RUN_SCHEDULED;
        /* A run is published at its due time, never before: one marked
         * ahead and not yet due was not published, and keeps its attempt
         * and its time.  Past it, across processes, it may have been
         * published, and even run by a worker whose start never reached
         * the store: published again it is a new attempt, so a second
         * execution shows as one (the first attempt's late start is
         * refused). */
        if (r->due_at <= now && maybe_ran) {
            r->attempt++;
            r->due_at = now;
        }
        return 0;
    }
    sked_walltime due;
    r->finished_at = now;
    free(r->error);
    r->error = strdup(why);
    if (spec && sked_retry_due(spec, r->attempt, now, &due) == 0) {
        r->status = SKED_RUN_SCHEDULED;
        r->attempt++;
        r->due_at = due;
        return 1;
    }
    r->status = SKED_RUN_FAILED;
    return 0;
}

/* --- claim ------------------------------------------------------------------- */

/* Publish the runs claim c recorded dispatched (policy.c): those due
 * already at once, from this thread, so that a crash leaves them as short
 * a time unpublished as a mark does; those due later (within the premark
 * lead, or one-time tasks' claimed ahead) wait in s->ready like runs
 * marked ahead.  `unsure`: the claim failed, maybe only to answer
 * (store.h): those the store has as recorded go. */
static int publish_claimed(sked_sched *s, sked_claim *c, int unsure, sked_monotime began)
{
    size_t n = c->ndispatched, np = 0;
    if (n == 0)
        return 0;
    sked_run_rec **pub = malloc(n * sizeof *pub);
    const char **specs = malloc(n * sizeof *specs);
    int *applied = malloc(n * sizeof *applied);
    if (pub == NULL || specs == NULL || applied == NULL)
        abort();
    for (size_t i = 0; i < n; i++) {
        pub[i] = &c->dispatched[i];
        applied[i] = 1;
    }
    int rc = 0;
    if (unsure && sked_sched_read_back(s, (const sked_run_rec *const *)pub, n, applied) < 0)
        n = 0, rc = -1;
    sked_walltime now = sked_clock_wall_now();
    pthread_mutex_lock(&s->mu); /* once for the runs that wait in s->ready */
    for (size_t i = 0; i < n; i++) {
        sked_run_rec *r = &c->dispatched[i];
        if (!applied[i])
            continue;
        if (r->due_at > now && s->cfg.premark_us > 0) { /* a releaser runs */
            sked_sched_ready_push_locked(s, r, c->dispatched_specs[i]);
            c->dispatched_specs[i] = NULL; /* the ready heap owns it now */
            continue;
        }
        pub[np] = r;
        specs[np++] = c->dispatched_specs[i];
    }
    pthread_mutex_unlock(&s->mu);
    if (sked_sched_publish(s, pub, specs, np, began) < 0)
        rc = -1;
    free(pub);
    free(specs);
    free(applied);
    return rc;
}

/* One claim: the heap becomes exactly what the store says is ours and due
 * within the window (earliest first, at most claim_limit).  Returns
 * non-zero when the limit was hit: claim again once these are out.  *now
 * becomes the claim's time (sked_sched_inflight_begin). */
static int claim(sked_sched *s, sked_walltime *nowp)
{
    sked_monotime t0 = sked_clock_mono_now();
    uint64_t ticket;
    sked_walltime now = *nowp = sked_sched_inflight_begin(s, &ticket);
    /* the runs of batches not written yet: the store would hand them back
     * as still scheduled, taking the places of the runs after them */
    pthread_mutex_lock(&s->mu);
    uint64_t done_before = s->done_batch;
    size_t nex = 0;
    char (*ex)[SKED_ID_LEN + 1] = malloc((s->nhandled ? s->nhandled : 1) * sizeof *ex);
    const char **exp = malloc((s->nhandled ? s->nhandled : 1) * sizeof *exp);
    if (ex == NULL || exp == NULL)
        abort();
    for (size_t i = 0; i < s->nhandled; i++)
        if (s->handled[i].batch > done_before) {
            memcpy(ex[nex], s->handled[i].run_id, sizeof ex[nex]);
            exp[nex] = ex[nex];
            nex++;
        }
    int fenced = sked_sched_fenced(s); /* record nothing dispatched */
    /* one-time tasks further ahead, while the runs waiting to go out fit
     * (only with premarking: a releaser publishes them when due; and not
     * while fenced: they would only be leased to this scheduler) */
    sked_walltime once = s->cfg.premark_us > 0 && !fenced &&
                                 s->nready < SKED_SCHED_ONCE_READY_MAX
                             ? now + SKED_SCHED_ONCE_AHEAD_US
                             : SKED_TIME_NONE;
    pthread_mutex_unlock(&s->mu);
    sked_policy_ctx pc = {.now = now, .horizon = now + s->cfg.window_us,
                          .once_horizon = once, .dispatch_lead_us = s->cfg.premark_us};
    sked_claim c = {.owner = s->owner, .now = now, .horizon = pc.horizon,
                    .once_horizon = once,
                    .limit = s->cfg.claim_limit, .lease_us = s->cfg.lease_us,
                    .advance = sked_policy_advance, .ctx = &pc,
                    .exclude = exp, .nexclude = nex,
                    .dispatch_lease_us = fenced ? 0 : s->cfg.dispatch_lease_us,
                    /* embedded: what a lost claim held is claimed again */
                    .may_lose = s->cfg.recover_all_on_start};
    sked_err err = {0};
    int rc = sked_store_claim_due(s->cfg.store, &c, &err);
    free(exp);
    free(ex);
    if (rc < 0) {
        sked_log(SKED_LOG_ERROR, "claim failed", "error", err.msg, NULL);
        if (publish_claimed(s, &c, 1, t0) == 0)
            sked_sched_inflight_end(s, ticket);
        sked_claim_deinit(&c);
        return 0;
    }
    due_run *runs = malloc((c.nruns ? c.nruns : 1) * sizeof *runs);
    if (runs == NULL)
        abort();
    for (size_t i = 0; i < c.nruns; i++) {
        runs[i] = (due_run){.rec = c.runs[i], .spec = c.specs[i]};
        c.runs[i].error = c.runs[i].output = NULL;
        c.specs[i] = NULL;
    }
    int more = c.more;
    size_t n = c.nruns;
    sked_sched_heap_replace(s, runs, n, done_before, more);
    free(runs);
    if (publish_claimed(s, &c, 0, t0) == 0)
        sked_sched_inflight_end(s, ticket);
    sked_claim_deinit(&c);
    sked_histogram_observe(s->claim_seconds,
                           (double)(sked_clock_mono_now() - t0) / 1e6);
    return more;
}

/* --- sweep ------------------------------------------------------------------- */

int sked_sched_give_back(sked_sched *s, const sked_run_rec *runs, char *const *specs,
                         size_t n, const char *why, int maybe_ran, sked_run_rec *recs,
                         sked_run_change *ch, sked_err *err)
{
    sked_walltime now = sked_clock_wall_now();
    for (size_t i = 0; i < n; i++) {
        recs[i] = runs[i];
        recs[i].error = recs[i].output = NULL;
        sked_sched_lose(&recs[i], specs ? specs[i] : NULL, now, why,
                        maybe_ran && !s->cfg.recover_all_on_start);
        /* fenced on the lease as read: another scheduler may have given
         * the run back meanwhile and a claim marked it again */
        ch[i] = (sked_run_change){.rec = &recs[i], .attempt = runs[i].attempt,
                                  .from = SKED_RUN_BIT(runs[i].status),
                                  .owner = runs[i].lease_owner[0] ? runs[i].lease_owner : NULL};
    }
    return n > 0 ? sked_store_run_update(s->cfg.store, ch, n, err) : 0;
}

/* Expired leases: a DISPATCHED run whose worker never started it goes back
 * to SCHEDULED (published again as a new attempt); a RUNNING run whose worker
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
    if (recs == NULL || ch == NULL)
        abort();
    int rc = sked_sched_give_back(s, c.runs, c.specs, c.nruns,
                                  "worker lost: no heartbeat before the lease expired", 1, recs,
                                  ch, &err);
    for (size_t i = 0; i < c.nruns; i++) {
        sked_sched_forget_run(s, recs[i].id);
        sked_log(SKED_LOG_WARN, c.runs[i].status == SKED_RUN_DISPATCHED ? "run republished"
                                                                         : "run lost its worker",
                 "run", recs[i].id, "task", recs[i].task_id, NULL);
    }
    if (rc < 0)
        sked_log(SKED_LOG_ERROR, "sweep update failed", "error", err.msg, NULL);
    else
        sked_sched_wake(s); /* claim what went back to SCHEDULED now */
    for (size_t i = 0; i < c.nruns; i++)
        free(recs[i].error);
    free(ch);
    free(recs);
    sked_claim_deinit(&c);
}

/* --- threads ---------------------------------------------------------------- */

static void *claimer_main(void *arg)
{
    sked_sched *s = arg;
    sked_walltime next_claim = 0, next_sweep = 0;
    if (s->cfg.recover_all_on_start)
        sweep(s, sked_clock_wall_now(), INT64_MAX);
    pthread_mutex_lock(&s->mu);
    while (!s->stop) {
        sked_walltime now = sked_clock_wall_now();
        /* the last claim hit its limit: claim again before the heap runs
         * dry, so claims and dispatches overlap under a burst */
        int drained = s->more && s->nheap < (size_t)s->cfg.claim_limit / 2;
        /* a previous life's runs are taken over first (sched_beat.c):
         * claims meanwhile would only renew leases nobody may use */
        int hold = s->unsettled;
        int do_claim = !hold && (s->wake || now >= next_claim || drained);
        if (!hold)
            s->wake = 0;
        pthread_mutex_unlock(&s->mu);
        if (do_claim) {
            int more = claim(s, &now);
            pthread_mutex_lock(&s->mu);
            s->more = more;
            pthread_mutex_unlock(&s->mu);
            next_claim = now + s->cfg.window_us / 2;
        }
        if (now >= next_sweep) {
            sweep(s, now, now);
            next_sweep = now + SWEEP_EVERY;
        }
        sked_sched_take_over_some(s); /* dead schedulers' runs, if any */
        pthread_mutex_lock(&s->mu);
        sked_walltime until = next_claim < next_sweep ? next_claim : next_sweep;
        if (s->unsettled) /* until settled (signalled) or a takeover turn */
            until = sked_clock_wall_now() + 100 * SKED_USEC_PER_MSEC;
        if (!s->stop &&
            (s->unsettled ||
             (!s->wake && !(s->more && s->nheap < (size_t)s->cfg.claim_limit / 2))) &&
            until > sked_clock_wall_now()) {
            struct timespec ts = sked_clock_timespec(until);
            pthread_cond_timedwait(&s->claim_cond, &s->mu, &ts);
        }
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

/* Other processes' writes (PostgreSQL NOTIFY): claim now.  Stops when the
 * store has no notifications (one process: its API wakes us directly). */
static void *listener_main(void *arg)
{
    sked_sched *s = arg;
    int down = 0;
    for (;;) {
        if (sked_sched_stopping(s))
            break;
        sked_err err = {0};
        int rc = sked_store_wait_wake(s->cfg.store, 500 * SKED_USEC_PER_MSEC, &err);
        if (rc == SKED_ENOTSUP)
            break;
        if (rc == 0)
            sked_sched_wake(s);
        if (rc == SKED_EUNAVAIL && !down)
            sked_log(SKED_LOG_WARN, "not listening for wake-ups", "error", err.msg, NULL);
        else if (rc != SKED_EUNAVAIL && down)
            sked_log(SKED_LOG_INFO, "listening for wake-ups again", NULL);
        down = rc == SKED_EUNAVAIL;
    }
    return NULL;
}

int sked_sched_stopping(sked_sched *s)
{
    pthread_mutex_lock(&s->mu);
    int stop = s->stop;
    pthread_mutex_unlock(&s->mu);
    return stop;
}

void sked_sched_wake(sked_sched *s)
{
    if (s == NULL)
        return;
    pthread_mutex_lock(&s->mu);
    s->wake = 1;
    pthread_cond_signal(&s->claim_cond);
    pthread_mutex_unlock(&s->mu);
}

void sked_sched_forget_run(sked_sched *s, const char *run_id)
{
    (void)run_id;
    if (s == NULL)
        return;
    /* a run waiting behind it (queue_one) may go now: claim again */
    pthread_mutex_lock(&s->mu);
    int waiting = s->nwaiting > 0;
    pthread_mutex_unlock(&s->mu);
    if (waiting)
        sked_sched_wake(s);
}

static void stop_threads(sked_sched *s, int timer, int releaser, int claimer, int listener,
                         int beater)
{
    pthread_mutex_lock(&s->mu);
    s->stop = 1;
    pthread_cond_broadcast(&s->cond);
    pthread_cond_broadcast(&s->claim_cond);
    pthread_cond_broadcast(&s->ready_cond);
    pthread_mutex_unlock(&s->mu);
    sked_queue_consumer_wake(s->consumer);
    if (listener)
        pthread_join(s->listener, NULL);
    if (claimer)
        pthread_join(s->claimer, NULL);
    if (timer)
        pthread_join(s->timer, NULL);
    for (int i = 0; i < releaser; i++)
        pthread_join(s->releaser[i], NULL);
    pthread_join(s->events, NULL);
    sked_queue_consumer_close(s->consumer);
    if (beater) {
        sked_sched_ready_give_back(s);
        pthread_mutex_lock(&s->mu);
        s->beat_stop = 1;
        pthread_cond_signal(&s->beat_cond);
        pthread_mutex_unlock(&s->mu);
        pthread_join(s->beater, NULL);
    }
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
    s->started_at = sked_clock_wall_now();
    s->beat_ok = sked_clock_mono_now();
    s->watermark = s->started_at; /* this life's are never before it */
    s->unsettled = !s->cfg.recover_all_on_start;
    if (s->cfg.premark_us > SKED_SCHED_PREMARK_MAX_US)
        s->cfg.premark_us = SKED_SCHED_PREMARK_MAX_US;
    snprintf(s->owner, sizeof s->owner, "%s", cfg->owner);
    s->cfg.owner = s->owner;
    if (!s->cfg.window_us) s->cfg.window_us = 2 * SKED_USEC_PER_SEC;
    if (!s->cfg.lease_us) s->cfg.lease_us = 5 * SKED_USEC_PER_SEC;
    if (!s->cfg.dispatch_lease_us) s->cfg.dispatch_lease_us = 60 * SKED_USEC_PER_SEC;
    if (!s->cfg.run_lease_us) s->cfg.run_lease_us = 15 * SKED_USEC_PER_SEC;
    if (!s->cfg.claim_limit) s->cfg.claim_limit = 1000;
    if (s->cfg.jobs_per_message < 1) s->cfg.jobs_per_message = 1;
    if (s->cfg.jobs_per_message > SKED_SCHED_JOBS_PER_MESSAGE_MAX)
        s->cfg.jobs_per_message = SKED_SCHED_JOBS_PER_MESSAGE_MAX;
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
    pthread_cond_init(&s->claim_cond, NULL);
    pthread_cond_init(&s->ready_cond, NULL);
    pthread_cond_init(&s->beat_cond, NULL);
    if (sked_queue_consumer_open(cfg->queue, SKED_EVENTS_QUEUE, 1000, &s->consumer, err) < 0)
        goto fail;
    if (pthread_create(&s->events, NULL, sked_sched_events_main, s) != 0) {
        sked_queue_consumer_close(s->consumer);
        sked_err_set(err, SKED_EINTERNAL, NULL, 0, "cannot start the events thread");
        goto fail;
    }
    int t = pthread_create(&s->timer, NULL, sked_sched_timer_main, s) == 0;
    /* without premarking nothing is ever ready ahead */
    int want = s->cfg.premark_us > 0;
    while (t && want && s->releasing < SKED_SCHED_RELEASERS &&
           pthread_create(&s->releaser[s->releasing], NULL, sked_sched_releaser_main, s) == 0)
        s->releasing++;
    int r = t && (!want || s->releasing == SKED_SCHED_RELEASERS);
    int c = r && pthread_create(&s->claimer, NULL, claimer_main, s) == 0;
    int l = c && pthread_create(&s->listener, NULL, listener_main, s) == 0;
    /* embedded: nobody else could take over what a crash leaves */
    int b = l && !s->cfg.recover_all_on_start &&
            pthread_create(&s->beater, NULL, sked_sched_beat_main, s) == 0;
    pthread_mutex_lock(&s->mu);
    s->beating = b;
    pthread_mutex_unlock(&s->mu);
    if (!l || (!s->cfg.recover_all_on_start && !s->beating)) {
        stop_threads(s, t, s->releasing, c, l, s->beating);
        sked_err_set(err, SKED_EINTERNAL, NULL, 0, "cannot start the scheduler's threads");
        goto fail;
    }
    *out = s;
    return 0;
fail:
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cond);
    pthread_cond_destroy(&s->claim_cond);
    pthread_cond_destroy(&s->ready_cond);
    pthread_cond_destroy(&s->beat_cond);
    sked_sched_heap_free(s);
    free(s->inflight);
    free(s->takeovers);
    free(s);
    return err ? err->code : SKED_EINTERNAL;
}

void sked_sched_stop(sked_sched *s)
{
    if (s == NULL)
        return;
    stop_threads(s, 1, s->releasing, 1, 1, s->beating);
    sked_sched_heap_free(s);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cond);
    pthread_cond_destroy(&s->claim_cond);
    pthread_cond_destroy(&s->ready_cond);
    pthread_cond_destroy(&s->beat_cond);
    free(s->inflight);
    free(s->takeovers);
    free(s);
}
