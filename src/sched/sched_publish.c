/*
 * sched_publish.c - job messages out to the queue: the publish of a batch
 * of runs DISPATCHED in the store (after the timer thread's mark, or a
 * claim that recorded them dispatched), giving back to the store what
 * could not be published, reading back a write whose outcome is unknown
 * before its runs are published, and the releaser thread, which publishes
 * the runs marked ahead of their time (premark_us) when it comes.
 */
#include "sched/sched_internal.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/log.h"
#include "model/run.h"

/* A release whose slowest group of runs is confirmed this long after its
 * due time is logged, with where the time went. */
#define SLOW_RELEASE_US (15 * SKED_USEC_PER_MSEC)

/* One read of runs recs[0..n): applied[i] = 1 when run i holds what was
 * written (the rule of sked_sched_read_back); with specs (else NULL),
 * specs[i] becomes its task's spec as it is now (malloc'ed, or NULL).  0,
 * or < 0 when the read failed (applied is then not set). */
static int read_as_written(sked_sched *s, const sked_run_rec *const *recs, size_t n,
                           int *applied, char **specs, sked_err *err)
{
    const char **ids = malloc((n ? n : 1) * sizeof *ids);
    sked_run_rec *got = calloc(n ? n : 1, sizeof *got);
    int *found = calloc(n ? n : 1, sizeof *found);
    if (ids == NULL || got == NULL || found == NULL)
        abort();
    for (size_t k = 0; k < n; k++)
        ids[k] = recs[k]->id;
    int rc = n > 0 ? sked_store_run_get_many(s->cfg.store, ids, n, got, found, specs, err) : 0;
    for (size_t k = 0; k < n && rc == 0; k++) {
        const sked_run_rec *want = recs[k], *r = &got[k];
        applied[k] = found[k] && r->status == want->status && r->attempt == want->attempt &&
                     r->dispatched_at == want->dispatched_at &&
                     r->finished_at == want->finished_at &&
                     /* a mark ahead has the due time as dispatched_at,
                      * the same whoever marked it, and the same when this
                      * scheduler marked it again after a takeover gave it
                      * back (a second copy in s->ready): the owner and
                      * the mark's own time tell */
                     strcmp(r->lease_owner, want->lease_owner) == 0 &&
                     sked_run_marked_at(r) == sked_run_marked_at(want);
        if (found[k])
            sked_run_rec_deinit(&got[k]);
    }
    free(ids);
    free(got);
    free(found);
    return rc;
}

int sked_sched_retry_pause(sked_sched *s, int tries, int64_t *pause, const char *msg,
                           const sked_err *err)
{
    if (sked_sched_stopping(s))
        return -1;
    if (tries == 0)
        sked_log(SKED_LOG_WARN, msg, "error", err->msg, NULL);
    struct timespec ts = {.tv_sec = *pause / SKED_USEC_PER_SEC,
                          .tv_nsec = *pause % SKED_USEC_PER_SEC * 1000};
    nanosleep(&ts, NULL);
    *pause = *pause * 2 < SKED_USEC_PER_SEC ? *pause * 2 : SKED_USEC_PER_SEC;
    return 0;
}

/* read_as_written until the store answers: repeated, after a growing
 * pause (msg logged before the first), after every failure - or, with
 * `transient`, only while the store cannot be reached.  0 when read; else
 * the failure not repeated, with *stopped = 1 when the scheduler stopped
 * first. */
static int read_retrying(sked_sched *s, const sked_run_rec *const *recs, size_t n,
                         int *applied, char **specs, int transient, const char *msg,
                         int *stopped, sked_err *err)
{
    int64_t pause = 50 * SKED_USEC_PER_MSEC;
    int rc;
    *stopped = 0;
    for (int tries = 0; (rc = read_as_written(s, recs, n, applied, specs, err)) < 0; tries++) {
        if (transient && rc != SKED_EUNAVAIL && rc != SKED_EAGAIN)
            return rc;
        if (sked_sched_retry_pause(s, tries, &pause, msg, err) < 0) {
            *stopped = 1;
            return rc;
        }
    }
    return 0;
}

/* (sched_internal.h) Waits for the store as long as it takes: nothing
 * can be marked or claimed without it anyway. */
int sked_sched_read_back(sked_sched *s, const sked_run_rec *const *recs, size_t n,
                         int *applied)
{
    sked_err err = {0};
    int stopped;
    if (read_retrying(s, recs, n, applied, NULL, 0,
                      "cannot read runs back yet; retrying until the store answers", &stopped,
                      &err) != 0)
        return -1;
    size_t yes = 0;
    for (size_t k = 0; k < n; k++)
        yes += (size_t)applied[k];
    char v[2][24];
    snprintf(v[0], sizeof v[0], "%zu", yes);
    snprintf(v[1], sizeof v[1], "%zu", n - yes);
    sked_log(SKED_LOG_WARN, "runs read back", "applied", v[0], "not_applied", v[1], NULL);
    return 0;
}

/* Runs whose publish failed go back to SCHEDULED, fenced on this
 * scheduler still holding them (so a repeat, or a run another scheduler
 * took over meanwhile, changes nothing): repeated while the store cannot
 * be reached.  -1 when the scheduler stops first or the store refuses. */
static int give_back(sked_sched *s, sked_run_change *back, size_t nb)
{
    int64_t pause = 50 * SKED_USEC_PER_MSEC;
    sked_err err = {0};
    int rc;
    for (int tries = 0; nb > 0 && (rc = sked_store_run_update(s->cfg.store, back, nb, &err)) < 0;
         tries++) {
        if (rc != SKED_EUNAVAIL && rc != SKED_EAGAIN) {
            sked_log(SKED_LOG_ERROR, "cannot give unpublished runs back; their dispatch lease "
                     "will", "error", err.msg, NULL);
            return -1;
        }
        if (sked_sched_retry_pause(s, tries, &pause, "cannot give unpublished runs back "
                                   "yet; retrying until the store answers", &err) < 0)
            return -1;
    }
    if (nb > 0)
        sked_sched_wake(s);
    return 0;
}

/* r, not published, as it goes back: SCHEDULED, due now (*ch). */
static void back_one(sked_sched *s, sked_run_rec *r, sked_run_change *ch)
{
    int attempt = r->attempt;
    r->error = NULL;
    sked_sched_lose(r, NULL, sked_clock_wall_now(), "", !s->cfg.recover_all_on_start);
    *ch = (sked_run_change){.rec = r, .attempt = attempt,
                            .from = SKED_RUN_BIT(SKED_RUN_DISPATCHED), .owner = s->owner};
}

/* With jobs_per_message > 1, jobs of one queue go out several to a
 * message, one per line (the worker splits them, worker.c): a quorum
 * queue's cost is per message - its log entry, confirm, delivery and ack
 * - so a run then costs the broker a share of one (sched.h). */
#define JOBS_BYTES (256 * 1024)

/* Append job text t (len bytes) to a message of its queue in m[0..*nm)
 * with room (fewer than per jobs), or to a new one.  Returns the
 * message's index. */
static size_t pack_job(sked_message *m, size_t *nm, int *count, int per, const char *queue,
                       char *t, size_t len)
{
    size_t k = *nm;
    while (k > 0 && strcmp(m[k - 1].queue, queue) != 0)
        k--; /* the last message of this queue (a batch has few queues) */
    if (k > 0 && count[k - 1] < per && m[k - 1].len + 1 + len <= JOBS_BYTES) {
        sked_message *g = &m[k - 1];
        char *body = realloc((char *)g->body, g->len + 1 + len);
        if (body == NULL)
            abort();
        body[g->len] = '\n';
        memcpy(body + g->len + 1, t, len);
        g->body = body;
        g->len += 1 + len;
        free(t);
        count[k - 1]++;
        return k - 1;
    }
    m[*nm] = (sked_message){.queue = queue, .body = t, .len = len};
    count[*nm] = 1;
    return (*nm)++;
}

/* (sched_internal.h) A message that was sent but not confirmed may still
 * arrive: its run then starts from SCHEDULED's successor or is refused as
 * a late start (sched_events.c). */
int sked_sched_publish(sked_sched *s, sked_run_rec *const *runs, const char *const *specs,
                       size_t n, sked_monotime marked)
{
    sked_message *msgs = calloc(n ? n : 1, sizeof *msgs);
    size_t *msg_of = malloc((n ? n : 1) * sizeof *msg_of), nm = 0;
    int *count = calloc(n ? n : 1, sizeof *count);
    int *still = malloc((n ? n : 1) * sizeof *still);
    if (msgs == NULL || msg_of == NULL || count == NULL || still == NULL)
        abort();
    for (size_t i = 0; i < n; i++)
        still[i] = 1;
    int rc = 0;
    pthread_mutex_lock(&s->mu);
    int unsure = sked_sched_fenced(s); /* others may take it for dead */
    pthread_mutex_unlock(&s->mu);
    if (marked != 0 && n > 0 &&
        (unsure || sked_clock_mono_now() - marked > SKED_SCHED_STALE_US)) {
        char age[24];
        snprintf(age, sizeof age, "%.1f", (double)(sked_clock_mono_now() - marked) / 1e6);
        sked_log(SKED_LOG_WARN, "runs recorded dispatched a while ago: publishing only those "
                 "still as recorded", "age_s", age, NULL);
        if (sked_sched_read_back(s, (const sked_run_rec *const *)runs, n, still) < 0) {
            rc = -1;
            n = 0;
        }
    }
    sked_run_change *back = calloc(n ? n : 1, sizeof *back);
    if (back == NULL)
        abort();
    size_t nb = 0;
    for (size_t i = 0; i < n; i++) {
        sked_run_rec *r = runs[i];
        msg_of[i] = SIZE_MAX;
        if (!still[i])
            continue;
        sked_sched_count_status(r->queue, r->status);
        size_t len = 0;
        char *body = sked_job_message(r, specs[i], &len);
        if (body == NULL) { /* out of memory */
            sked_log(SKED_LOG_ERROR, "cannot encode a job; the run goes back", "run", r->id,
                     NULL);
            back_one(s, r, &back[nb++]);
            continue;
        }
        msg_of[i] = pack_job(msgs, &nm, count, s->cfg.jobs_per_message, r->queue, body, len);
    }
    sked_err perr = {0};
    sked_queue_publish_batch(s->cfg.queue, msgs, nm, &perr);
    for (size_t i = 0; i < n; i++) {
        sked_run_rec *r = runs[i];
        if (msg_of[i] == SIZE_MAX)
            continue;
        if (msgs[msg_of[i]].result == 0) {
            sked_log(SKED_LOG_DEBUG, "run dispatched", "run", r->id, "task", r->task_id,
                     "queue", r->queue, NULL);
            continue;
        }
        sked_log(SKED_LOG_ERROR, "publish failed; the run goes back to be claimed again",
                 "run", r->id, "error", perr.msg, NULL);
        back_one(s, r, &back[nb++]);
    }
    for (size_t k = 0; k < nm; k++)
        free((void *)msgs[k].body);
    if (give_back(s, back, nb) < 0)
        rc = -1;
    free(back);
    free(msgs);
    free(msg_of);
    free(count);
    free(still);
    return rc;
}

/* Wait until the wall clock reads `at` (*now: its reading then); -1 when
 * the scheduler stops first.  A wait that stop can end: a step back of
 * the clock makes it as long as the step. */
static int wait_due(sked_sched *s, sked_walltime at, sked_walltime *now)
{
    pthread_mutex_lock(&s->mu);
    while (!s->stop && (*now = sked_clock_wall_now()) < at) {
        struct timespec ts = sked_clock_timespec(at);
        pthread_cond_timedwait(&s->ready_cond, &s->mu, &ts);
    }
    int stop = s->stop;
    pthread_mutex_unlock(&s->mu);
    return stop ? -1 : 0;
}

/* The read of runs[0..n) (marked ahead, now due) before their release:
 * still[i], and specs[i] their tasks' specs now (see read_as_written).
 * When the read fails they go out unread only if every one was marked
 * within half of SKED_SCHED_STALE_US and this scheduler is not fenced: a
 * change meanwhile is then caught as a cancel just after a publish, and no
 * takeover can have given them back so soon.  Otherwise (this scheduler
 * may have been cut off from the store for its beats, taken for dead and
 * back) the read is repeated while the store is unreachable; after any
 * other failure they go out unread, as before marks were kept so long.
 * 0 when read, 1 when they go unread, -1 when the scheduler stops first
 * (the caller then puts them back in s->ready before any publish). */
static int read_ready(sked_sched *s, sked_run_rec *const *runs, size_t n, int *still,
                      char **specs)
{
    sked_walltime now = sked_clock_wall_now();
    pthread_mutex_lock(&s->mu);
    int recent = !sked_sched_fenced(s);
    pthread_mutex_unlock(&s->mu);
    for (size_t i = 0; i < n && recent; i++)
        recent = runs[i]->marked_at != SKED_TIME_NONE &&
                 now - runs[i]->marked_at <= SKED_SCHED_STALE_US / 2;
    const sked_run_rec *const *recs = (const sked_run_rec *const *)runs;
    sked_err err = {0};
    int stopped = 0;
    int rc = recent ? read_as_written(s, recs, n, still, specs, &err)
                    : read_retrying(s, recs, n, still, specs, 1,
                                    "cannot read runs marked ahead back; retrying until the "
                                    "store answers", &stopped, &err);
    if (rc == 0)
        return 0;
    for (size_t i = 0; i < n; i++)
        still[i] = 1;
    if (stopped)
        return -1;
    if (!recent)
        sked_log(SKED_LOG_WARN, "cannot read runs marked ahead back; publishing them unread",
                 "error", err.msg, NULL);
    return 1;
}

/* Publish ready[0..n) (marked ahead, earliest first, due within the
 * releaser's lead) each at its due time, and free them.  What was marked
 * ahead may have changed since - canceled, its task paused or deleted,
 * through any api - so they are read again first, in one round trip that
 * ends about when they are due, and only those still as marked go out.  A
 * change after that read began, or any when the read fails, is caught as
 * a cancel just after a publish is: the start the store no longer wants
 * is refused and stopped (sched_events.c).  Returns 1 when each run is
 * out, back in the store or back in s->ready (stopping), 0 when some may
 * be neither (the publish stopped midway). */
static int publish_ready(sked_sched *s, due_run *ready, size_t n)
{
    sked_monotime t0 = sked_clock_mono_now();
    sked_run_rec **pub = calloc(n ? n : 1, sizeof *pub);
    const char **pub_spec = calloc(n ? n : 1, sizeof *pub_spec);
    int *still = calloc(n ? n : 1, sizeof *still);
    if (pub == NULL || pub_spec == NULL || still == NULL)
        abort();
    for (size_t i = 0; i < n; i++)
        pub[i] = &ready[i].rec;
    /* read with their tasks' specs as they are now: a task replaced (PUT)
     * since the mark goes out with its new target and retry settings */
    char **specs = calloc(n ? n : 1, sizeof *specs);
    if (specs == NULL)
        abort();
    int read = read_ready(s, pub, n, still, specs);
    for (size_t i = 0; read == 0 && i < n; i++)
        if (still[i] && specs[i] != NULL) {
            free(ready[i].spec);
            ready[i].spec = specs[i];
            specs[i] = NULL;
        }
    for (size_t i = 0; i < n; i++)
        free(specs[i]);
    free(specs);
    sked_monotime t_read = sked_clock_mono_now();
    if (read == 0) { /* a failure's length says nothing of the next read's */
        pthread_mutex_lock(&s->mu);
        s->read_us += (t_read - t0 - s->read_us) / 8;
        pthread_mutex_unlock(&s->mu);
    }
    /* out in groups of one due time, each when its time comes; each run
     * is then out, back or not ours any more: its mark is settled (unless
     * stopping left it neither: then its write stays in flight).  Timings
     * of the slowest group: how late it went out, and how long its
     * publish took until confirmed. */
    int64_t late = 0, publish = 0;
    int all_settled = 1;
    for (size_t i = 0, np = 0; i < n; np = 0) {
        size_t first = i;
        sked_walltime now;
        if (wait_due(s, ready[i].at, &now) < 0) {
            /* stopping: the rest go back to s->ready, which the stop
             * gives back to the store */
            pthread_mutex_lock(&s->mu);
            for (; i < n; i++)
                sked_sched_ready_return_locked(s, &ready[i]);
            pthread_mutex_unlock(&s->mu);
            break;
        }
        for (; i < n && ready[i].at <= now; i++) {
            sked_run_rec *r = &ready[i].rec;
            if (!still[i]) {
                sked_log(SKED_LOG_INFO, "run not published: changed since it was marked",
                         "run", r->id, "task", r->task_id, NULL);
                continue;
            }
            pub[np] = r;
            pub_spec[np++] = ready[i].spec;
        }
        sked_monotime p0 = sked_clock_mono_now();
        int settled = sked_sched_publish(s, pub, pub_spec, np, 0) == 0;
        int64_t took = sked_clock_mono_now() - p0;
        if (now - ready[first].at + took > late + publish) {
            late = now - ready[first].at;
            publish = took;
        }
        all_settled &= settled;
        for (size_t k = first; k < i; k++)
            sked_sched_due_free(&ready[k]);
    }
    if (late + publish >= SLOW_RELEASE_US) {
        char v[4][24];
        snprintf(v[0], sizeof v[0], "%zu", n);
        snprintf(v[1], sizeof v[1], "%.1f", (double)late / 1e3);
        snprintf(v[2], sizeof v[2], "%.1f", (double)(t_read - t0) / 1e3);
        snprintf(v[3], sizeof v[3], "%.1f", (double)publish / 1e3);
        sked_log(SKED_LOG_WARN, "slow release", "runs", v[0], "late_ms", v[1], "read_ms", v[2],
                 "publish_ms", v[3], NULL);
    }
    free(pub);
    free(pub_spec);
    free(still);
    return all_settled;
}

void sked_sched_ready_give_back(sked_sched *s)
{
    pthread_mutex_lock(&s->mu);
    due_run *v = s->ready;
    size_t n = s->nready;
    s->ready = NULL;
    s->nready = s->capready = 0;
    /* out of s->ready: in flight from the earliest due time until given
     * back (v is a heap: v[0] is the earliest) */
    uint64_t ticket = n > 0 ? sked_sched_inflight_from_locked(s, v[0].at) : 0;
    pthread_mutex_unlock(&s->mu);
    sked_run_rec *runs = calloc(n ? n : 1, sizeof *runs);
    sked_run_rec *recs = calloc(n ? n : 1, sizeof *recs);
    sked_run_change *ch = calloc(n ? n : 1, sizeof *ch);
    if (runs == NULL || recs == NULL || ch == NULL)
        abort();
    for (size_t i = 0; i < n; i++)
        runs[i] = v[i].rec; /* as marked: DISPATCHED, leased to this one */
    sked_err err = {0};
    /* never published: each keeps its due time and attempt */
    int rc = sked_sched_give_back(s, runs, NULL, n, "", 0, recs, ch, &err);
    char cnt[24];
    snprintf(cnt, sizeof cnt, "%zu", n);
    if (rc < 0) /* they stay in flight: the last beat's watermark says so */
        sked_log(SKED_LOG_WARN, "runs marked ahead not given back at stop", "runs", cnt,
                 "error", err.msg, NULL);
    else if (n > 0)
        sked_log(SKED_LOG_INFO, "runs marked ahead given back at stop", "runs", cnt, NULL);
    if (rc == 0 && n > 0)
        sked_sched_inflight_end(s, ticket);
    for (size_t i = 0; i < n; i++)
        sked_sched_due_free(&v[i]);
    free(runs);
    free(recs);
    free(ch);
    free(v);
}

void *sked_sched_releaser_main(void *arg)
{
    sked_sched *s = arg;
    due_run *batch = malloc(SKED_SCHED_BATCH_MAX * sizeof *batch);
    if (batch == NULL)
        abort();
    pthread_mutex_lock(&s->mu);
    while (!s->stop) {
        int64_t lead = s->read_us < SKED_SCHED_READ_AHEAD_MAX_US ? s->read_us
                                                                 : SKED_SCHED_READ_AHEAD_MAX_US;
        size_t n = sked_sched_take_due(s, s->ready, &s->nready, &s->ready_cond, batch, lead);
        if (n == 0)
            continue;
        /* out of s->ready, in flight until published (batch[0] is the
         * earliest: taken in order) */
        uint64_t ticket = sked_sched_inflight_from_locked(s, batch[0].at);
        pthread_mutex_unlock(&s->mu);
        int settled = publish_ready(s, batch, n);
        if (settled)
            sked_sched_inflight_end(s, ticket);
        pthread_mutex_lock(&s->mu);
    }
    pthread_mutex_unlock(&s->mu);
    free(batch);
    return NULL;
}
