/*
 * sched_lease.c - the lease of a run this scheduler marks DISPATCHED, when
 * other schedulers share the store (not recover_all_on_start).
 *
 * The mark (or a claim that records a run dispatched) comes before the
 * publish, so a scheduler that dies between the two leaves a run
 * DISPATCHED that no queue holds.  Another scheduler's sweep publishes it
 * again once its lease expires - which must be soon, to keep the 10 s
 * contract, but not while the run may be waiting in its queue for a free
 * worker: published twice, it would run twice on one attempt.  So the
 * lease has two lengths:
 *
 *   marked        lease_us past the later of its due time and the mark
 *                 (5 s: as for a claimed run whose scheduler died);
 *   publishing    renewed to lease_us from now by each flush while the
 *                 publish waits for its confirm (a broker that is away);
 *   confirmed     dispatch_lease_us (60 s) from dispatched_at, written by
 *                 the first flush at least FLUSH_EVERY after the confirm:
 *                 by then nearly every run has started (RUNNING, with the
 *                 worker's lease), and those are fenced out unwritten.
 *
 * A thread of its own flushes (one run_update for renewals and extensions
 * together) every FLUSH_EVERY: not the claimer, whose publish of the runs
 * a claim recorded dispatched may wait for the broker as long as the
 * timer's.  Embedded mode needs none of it: every dispatched run is
 * recovered at start, and the mark takes the dispatch lease at once.
 *
 * Left open: a scheduler that dies within FLUSH_EVERY of a confirm leaves
 * the short lease on runs it did publish; one of them still waiting in
 * its queue when that lease ends (a worker backlog of 5 s) is published
 * again.  That is the backlog case of any dispatch lease, at 5 s instead
 * of 60 s, and needs the scheduler's crash besides.
 */
#include "sched/sched_internal.h"

#include <stdlib.h>
#include <string.h>

#include "core/log.h"

#define FLUSH_EVERY (500 * SKED_USEC_PER_MSEC)

struct sked_pub_batch {
    sked_run_rec *recs;        /* copies (no error, no output)      */
    size_t n;
    struct sked_pub_batch *next;
};

sked_walltime sked_sched_mark_lease(const sked_sched *s, sked_walltime dispatched_at)
{
    int64_t len = s->short_leases ? s->cfg.lease_us : s->cfg.dispatch_lease_us;
    return dispatched_at > INT64_MAX - len ? INT64_MAX : dispatched_at + len;
}

static sked_run_rec copy_of(const sked_run_rec *r)
{
    sked_run_rec c = *r;
    c.error = c.output = NULL;
    return c;
}

sked_pub_batch *sked_sched_publishing(sked_sched *s, sked_run_rec *const *runs, size_t n)
{
    if (!s->short_leases || n == 0)
        return NULL;
    sked_pub_batch *b = calloc(1, sizeof *b);
    if (b == NULL || (b->recs = malloc(n * sizeof *b->recs)) == NULL)
        abort();
    for (size_t i = 0; i < n; i++)
        if (runs[i]->status == SKED_RUN_DISPATCHED)
            b->recs[b->n++] = copy_of(runs[i]);
    pthread_mutex_lock(&s->mu);
    b->next = s->publishing;
    s->publishing = b;
    pthread_mutex_unlock(&s->mu);
    return b;
}

void sked_sched_published(sked_sched *s, sked_pub_batch *b, sked_run_rec *const *runs,
                          const int *confirmed, size_t n)
{
    if (b == NULL)
        return;
    pthread_mutex_lock(&s->mu);
    for (sked_pub_batch **pp = &s->publishing; *pp; pp = &(*pp)->next)
        if (*pp == b) {
            *pp = b->next;
            break;
        }
    s->fresh = sked_sched_grow(s->fresh, &s->capfresh, s->nfresh + n, sizeof *s->fresh);
    for (size_t i = 0; i < n; i++) {
        if (!confirmed[i] || runs[i]->status != SKED_RUN_DISPATCHED)
            continue;
        sked_run_rec *c = &s->fresh[s->nfresh++];
        *c = copy_of(runs[i]);
        c->lease_expires_at = c->dispatched_at > INT64_MAX - s->cfg.dispatch_lease_us
                                  ? INT64_MAX
                                  : c->dispatched_at + s->cfg.dispatch_lease_us;
    }
    pthread_mutex_unlock(&s->mu);
    free(b->recs);
    free(b);
}

/* One write (what a failed one held is tried again). */
static void flush(sked_sched *s, sked_walltime now)
{
    /* what to write: the publishes in flight, renewed, and the runs
     * confirmed before the last flush, extended (those confirmed since
     * wait for the next one) */
    pthread_mutex_lock(&s->mu);
    size_t nr = 0;
    for (sked_pub_batch *b = s->publishing; b; b = b->next)
        nr += b->n;
    sked_run_rec *old = s->aged;
    size_t nold = s->naged;
    s->aged = s->fresh;
    s->naged = s->nfresh;
    s->capaged = s->capfresh;
    s->fresh = NULL;
    s->nfresh = s->capfresh = 0;
    sked_run_rec *renew = malloc((nr ? nr : 1) * sizeof *renew);
    if (renew == NULL)
        abort();
    nr = 0;
    for (sked_pub_batch *b = s->publishing; b; b = b->next)
        for (size_t i = 0; i < b->n; i++) {
            renew[nr] = b->recs[i];
            renew[nr++].lease_expires_at = now + s->cfg.lease_us;
        }
    pthread_mutex_unlock(&s->mu);

    size_t n = nr + nold;
    sked_run_change *ch = calloc(n ? n : 1, sizeof *ch);
    if (ch == NULL)
        abort();
    for (size_t i = 0; i < n; i++) {
        const sked_run_rec *r = i < nr ? &renew[i] : &old[i - nr];
        ch[i] = (sked_run_change){.rec = r, .attempt = r->attempt,
                                  .from = SKED_RUN_BIT(SKED_RUN_DISPATCHED)};
    }
    sked_err err = {0};
    int rc = n > 0 ? sked_store_run_update(s->cfg.store, ch, n, &err) : 0;
    if (rc < 0) {
        if (!s->lease_failing)
            sked_log(SKED_LOG_WARN, "lease update failed; it is tried again every 500 ms",
                     "error", err.msg, NULL);
        /* the extensions go with the next flush (renewals are made anew) */
        pthread_mutex_lock(&s->mu);
        s->aged = sked_sched_grow(s->aged, &s->capaged, s->naged + nold, sizeof *s->aged);
        memcpy(s->aged + s->naged, old, nold * sizeof *old);
        s->naged += nold;
        pthread_mutex_unlock(&s->mu);
    } else if (s->lease_failing) {
        sked_log(SKED_LOG_INFO, "lease updates written again", NULL);
    }
    s->lease_failing = rc < 0;
    free(ch);
    free(renew);
    free(old);
}

void *sked_sched_leases_main(void *arg)
{
    sked_sched *s = arg;
    pthread_mutex_lock(&s->mu);
    while (!s->stop) {
        pthread_mutex_unlock(&s->mu);
        flush(s, sked_clock_wall_now());
        pthread_mutex_lock(&s->mu);
        struct timespec ts = sked_clock_timespec(sked_clock_wall_now() + FLUSH_EVERY);
        while (!s->stop && pthread_cond_timedwait(&s->lease_cond, &s->mu, &ts) == 0)
            ; /* only stop signals it */
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

void sked_sched_leases_free(sked_sched *s)
{
    while (s->publishing) {
        sked_pub_batch *b = s->publishing;
        s->publishing = b->next;
        free(b->recs);
        free(b);
    }
    free(s->fresh);
    free(s->aged);
}
