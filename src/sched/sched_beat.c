/*
 * sched_beat.c - the scheduler's heartbeat, its watermark, and the takeover
 * of the runs a dead scheduler may have left in no queue.
 *
 * A scheduler records runs DISPATCHED (its mark, or a claim of runs due
 * already) and then publishes them.  Killed in between, it leaves runs
 * DISPATCHED that no queue holds; their dispatch lease (a minute) is far
 * too long to wait.  So every scheduler writes, about once a second, a row
 * with its watermark (sked_sched_rec.published_to): every run it recorded
 * DISPATCHED with a dispatched_at before that time has been published or
 * given back.  The watermark is the earliest start of a write still in
 * flight (sked_sched_inflight_begin .. _end), the earliest due time of the
 * runs marked ahead waiting in s->ready (their dispatched_at), or now.
 *
 * Every beat also reads the others' rows.  A scheduler whose row has not
 * changed for SKED_SCHED_DEAD_AFTER_US, as seen by this one while its own
 * beats went through promptly, is taken for dead: its DISPATCHED runs
 * from its watermark on go back to SCHEDULED, due now (fenced on its
 * lease), and are claimed and published again.  The claimer thread does
 * that work (sked_sched_take_over_some), so a long takeover never holds up
 * a beat.  Runs before the watermark are in their queues and are left
 * alone.  "Its own beats went through promptly" matters: when the store
 * stalls (a failover, commits held by a dying synchronous standby)
 * nobody's row moves, and nobody is taken for dead until the store has
 * answered well for that long again.  A scheduler stopped cleanly writes
 * a last row with published_to = INT64_MAX: nothing of it is in doubt.
 *
 * The other side of it: a scheduler whose own last beat went through
 * more than SKED_SCHED_SELF_FENCE_US ago may soon be taken for dead, so
 * it marks nothing and records no run dispatched until it beats again
 * (its claimed runs' leases run out and others take them).  What it
 * marked before is older than any takeover that can count it as dead.
 *
 * Cost: one small write a second per scheduler, nothing per run.  What it
 * risks: a run published by a scheduler that dies before its watermark
 * passes the run (its next beat, or later if an older write of it is
 * still in flight: a publish waiting for confirms, a give-back waiting
 * for the store), when the run still waits unstarted in its queue at the
 * takeover, is published twice: again as attempt + 1 (sched_sched_lose),
 * so the first copy's start, if it comes later, is refused and stopped
 * (sched_events.c), and an execution of each is an attempt of its own -
 * visible, not silent.  A scheduler frozen for a few
 * seconds between its mark and its publish reads its runs back first
 * (SKED_SCHED_STALE_US) and publishes only those not taken over.
 *
 * Ids are unique among live schedulers.  A scheduler restarted under the
 * same id (`--name`) finds its previous life's row at its first beat (a
 * watermark from before this life began), and takes over that life's runs
 * at once; until that is done its own rows keep the older watermark, so a
 * crash loop loses nothing.  It marks nothing before (s->unsettled): what
 * is recorded dispatched under its id then is all the previous life's,
 * even runs that life marked ahead, whose dispatched_at (their due time)
 * may fall after this life began.  Clocks are assumed in step (NTP, DESIGN.md
 * §4): a takeover compares a scheduler's dispatched_at and marked_at with
 * times of its own clock only, but a restart on another host mixes two
 * clocks.
 */
#include "sched/sched_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"

#define BEAT_EVERY (1 * SKED_USEC_PER_SEC)
/* A beat slower than this: the store is not answering well, so what was
 * seen of the others does not count. */
#define BEAT_SLOW (1 * SKED_USEC_PER_SEC)
/* Rows not beaten for this long are deleted: by then the dispatch leases
 * of a dead scheduler's runs have run out, and the sweep has them. */
#define PRUNE_AFTER (5 * 60 * SKED_USEC_PER_SEC)
#define TAKEOVER_BATCH 1000
#define TAKEOVER_ROUNDS 4       /* batches per turn of the claimer */

/* --- the watermark (sched_internal.h) --------------------------------------- */

uint64_t sked_sched_inflight_from_locked(sked_sched *s, sked_walltime floor)
{
    s->inflight = sked_sched_grow(s->inflight, &s->capinflight, s->ninflight + 1,
                                  sizeof *s->inflight);
    s->inflight[s->ninflight++] = (inflight_write){.ticket = ++s->tickets, .floor = floor};
    return s->tickets;
}

sked_walltime sked_sched_inflight_begin(sked_sched *s, uint64_t *ticket)
{
    pthread_mutex_lock(&s->mu);
    sked_walltime now = sked_clock_wall_now();
    if (now < s->watermark) /* the clock stepped back */
        now = s->watermark;
    *ticket = sked_sched_inflight_from_locked(s, now);
    pthread_mutex_unlock(&s->mu);
    return now;
}

void sked_sched_inflight_end(sked_sched *s, uint64_t ticket)
{
    pthread_mutex_lock(&s->mu);
    for (size_t i = 0; i < s->ninflight; i++)
        if (s->inflight[i].ticket == ticket) {
            s->inflight[i] = s->inflight[--s->ninflight];
            break;
        }
    pthread_mutex_unlock(&s->mu);
}

/* The watermark; *none = 1 when no write is in flight. */
static sked_walltime watermark(sked_sched *s, int *none)
{
    pthread_mutex_lock(&s->mu);
    *none = s->ninflight == 0;
    sked_walltime w = sked_clock_wall_now();
    for (size_t i = 0; i < s->ninflight; i++)
        if (s->inflight[i].floor < w)
            w = s->inflight[i].floor;
    if (s->nready > 0 && s->ready[0].at < w) /* the earliest marked ahead */
        w = s->ready[0].at;
    if (w < s->watermark)
        w = s->watermark;
    s->watermark = w;
    pthread_mutex_unlock(&s->mu);
    return w;
}

int sked_sched_fenced(sked_sched *s)
{
    return s->unsettled ||
           (s->beating && sked_clock_mono_now() - s->beat_ok > SKED_SCHED_SELF_FENCE_US);
}

/* --- takeover (the claimer thread) ------------------------------------------ */

/* Give back owner's DISPATCHED runs with since <= dispatched_at, marked
 * before `before` (marked_at; dispatched_at for runs without one):
 * SCHEDULED, due now, fenced on owner still holding them.  0 when done; 1
 * when more are left for the next turn (claims must go on meanwhile); -1
 * when the store failed (the next turn tries again: what was given back
 * is not found again). */
static int take_over(sked_sched *s, const char *owner, sked_walltime since,
                     sked_walltime before)
{
    size_t total = 0;
    int rc = 0, more = 1;
    for (int round = 0; more && rc == 0; round++) {
        if (round == TAKEOVER_ROUNDS) {
            rc = 1;
            break;
        }
        sked_claim c = {0};
        sked_err err = {0};
        if (sked_store_runs_in_doubt(s->cfg.store, owner, since, before, TAKEOVER_BATCH, &c,
                                     &err) < 0) {
            sked_log(SKED_LOG_WARN, "cannot read a dead scheduler's runs", "scheduler", owner,
                     "error", err.msg, NULL);
            return -1;
        }
        sked_run_rec *recs = calloc(c.nruns ? c.nruns : 1, sizeof *recs);
        sked_run_change *ch = calloc(c.nruns ? c.nruns : 1, sizeof *ch);
        if (recs == NULL || ch == NULL)
            abort();
        /* (the store left out the runs marked from `before` on: a later
         * life's) */
        size_t n = c.nruns;
        more = c.more;
        if (sked_sched_give_back(s, c.runs, c.specs, n, "", 1, recs, ch, &err) < 0) {
            sked_log(SKED_LOG_WARN, "cannot give a dead scheduler's runs back", "scheduler",
                     owner, "error", err.msg, NULL);
            rc = -1;
        }
        for (size_t i = 0; i < n && rc == 0; i++) {
            if (ch[i].result != 0)
                continue; /* started, or taken over by another scheduler */
            total++;
            sked_log(SKED_LOG_WARN, "run given back: its scheduler is gone and may not have "
                     "published it", "run", recs[i].id, "task", recs[i].task_id,
                     "scheduler", owner, NULL);
        }
        for (size_t i = 0; i < n; i++)
            free(recs[i].error);
        free(recs);
        free(ch);
        sked_claim_deinit(&c);
    }
    if (total > 0)
        sked_sched_wake(s); /* claim them now */
    return rc;
}

/* The takeover of id's runs from since (before `before`) is pending:
 * queued, replacing one of the same id.  Takes s->mu. */
static void takeover_queue(sked_sched *s, const char *id, sked_walltime since,
                           sked_walltime before)
{
    pthread_mutex_lock(&s->mu);
    size_t i = 0;
    while (i < s->ntakeovers && strcmp(s->takeovers[i].id, id) != 0)
        i++;
    if (i == s->ntakeovers) {
        s->takeovers = sked_sched_grow(s->takeovers, &s->captakeovers, i + 1,
                                       sizeof *s->takeovers);
        s->ntakeovers++;
    }
    takeover_job *t = &s->takeovers[i];
    snprintf(t->id, sizeof t->id, "%s", id);
    t->since = since;
    t->before = before;
    pthread_mutex_unlock(&s->mu);
    sked_sched_wake(s);
}

static void takeover_drop(sked_sched *s, const char *id)
{
    pthread_mutex_lock(&s->mu);
    for (size_t i = 0; i < s->ntakeovers; i++)
        if (strcmp(s->takeovers[i].id, id) == 0) {
            s->takeovers[i] = s->takeovers[--s->ntakeovers];
            break;
        }
    pthread_mutex_unlock(&s->mu);
}

static int takeover_pending(sked_sched *s, const char *id)
{
    pthread_mutex_lock(&s->mu);
    int found = 0;
    for (size_t i = 0; i < s->ntakeovers && !found; i++)
        found = strcmp(s->takeovers[i].id, id) == 0;
    pthread_mutex_unlock(&s->mu);
    return found;
}

/* No previous life of this id holds runs any more: this one may mark. */
static void settle(sked_sched *s)
{
    pthread_mutex_lock(&s->mu);
    if (s->unsettled) {
        s->unsettled = 0;
        pthread_cond_broadcast(&s->cond); /* the timer */
        s->wake = 1;                      /* the claimer */
        pthread_cond_signal(&s->claim_cond);
    }
    pthread_mutex_unlock(&s->mu);
}

void sked_sched_take_over_some(sked_sched *s)
{
    pthread_mutex_lock(&s->mu);
    size_t n = s->ntakeovers;
    takeover_job *jobs = n ? malloc(n * sizeof *jobs) : NULL;
    if (n && jobs == NULL)
        abort();
    if (n)
        memcpy(jobs, s->takeovers, n * sizeof *jobs);
    pthread_mutex_unlock(&s->mu);
    for (size_t k = 0; k < n; k++) {
        if (take_over(s, jobs[k].id, jobs[k].since, jobs[k].before) != 0)
            continue; /* left for the next turn */
        pthread_mutex_lock(&s->mu);
        for (size_t i = 0; i < s->ntakeovers; i++) {
            takeover_job *t = &s->takeovers[i];
            if (strcmp(t->id, jobs[k].id) == 0 && t->since == jobs[k].since &&
                t->before == jobs[k].before) { /* not queued again meanwhile */
                *t = s->takeovers[--s->ntakeovers];
                break;
            }
        }
        pthread_mutex_unlock(&s->mu);
        if (strcmp(jobs[k].id, s->owner) == 0)
            settle(s);
    }
    free(jobs);
}

/* --- the beat thread ------------------------------------------------------------ */

typedef struct peer {
    sked_sched_rec row;        /* as last read                            */
    sked_monotime changed;     /* when this scheduler saw it change       */
    int done;                  /* taken over, for this row                */
    int seen;                  /* in the last beat's rows                 */
} peer;

typedef struct beat_state {
    sked_sched_rec me;
    peer *peers;
    size_t npeers, cappeers;
    sked_monotime trust_from;  /* own beats prompt since                  */
    int down;                  /* the last beat failed or was slow        */
    int through;               /* a beat went through                     */
    int checked;               /* this id's row as it was read            */
    int prev_seen;             /* ... and it was a previous life's        */
} beat_state;

/* The first beat through read this id's row as it was before: a
 * watermark from before this life began is a previous life's (one that
 * stopped cleanly wrote INT64_MAX: nothing in doubt), whose runs are taken
 * over before this life marks any (s->unsettled).  Checked even when the
 * beat was slow: the row is this life's from then on. */
static void check_own_row(sked_sched *s, beat_state *b, const sked_sched_rec *rows, size_t n)
{
    b->checked = 1;
    for (size_t i = 0; i < n; i++)
        if (strcmp(rows[i].id, s->owner) == 0 && rows[i].published_to < s->started_at) {
            b->prev_seen = 1;
            /* this life has marked nothing yet: every run recorded
             * dispatched under this id is that life's, including those
             * it marked ahead, due after this one began */
            takeover_queue(s, rows[i].id, rows[i].published_to, INT64_MAX);
        }
    if (!b->prev_seen)
        settle(s);
}

/* Write one beat.  With rows (a beat of the running thread), read the
 * others' rows into b->peers and act on them. */
static void beat_once(sked_sched *s, beat_state *b, int with_rows)
{
    int none;
    b->me.beats++;
    b->me.beat_at = sked_clock_wall_now();
    b->me.published_to = watermark(s, &none);
    /* A previous life's watermark stays until its runs are taken over:
     * kept by the first write, which may replace that life's row before
     * this one has read it, and by every write until the takeover is done
     * (a crash loop then loses nothing). */
    b->me.keep_older = !b->checked || (b->prev_seen && takeover_pending(s, s->owner));
    if (!with_rows && none && !b->me.keep_older)
        b->me.published_to = INT64_MAX; /* stopped: nothing in doubt */
    sked_sched_rec *rows = NULL;
    size_t n = 0;
    sked_err err = {0};
    sked_monotime t0 = sked_clock_mono_now();
    int rc = sked_store_sched_beat(s->cfg.store, &b->me, b->me.beat_at - PRUNE_AFTER, &rows, &n,
                                   &err);
    sked_monotime t1 = sked_clock_mono_now();
    if (rc == 0) { /* it changed the row: others see this scheduler alive */
        b->through = 1;
        pthread_mutex_lock(&s->mu);
        s->beat_ok = t0;
        pthread_mutex_unlock(&s->mu);
        if (with_rows && !b->checked)
            check_own_row(s, b, rows, n);
    }
    if (rc < 0 || t1 - t0 > BEAT_SLOW) {
        if (!b->down)
            sked_log(SKED_LOG_WARN, rc < 0 ? "scheduler beat failed" : "scheduler beat slow",
                     "scheduler", s->owner, "error", rc < 0 ? err.msg : "", NULL);
        b->down = 1;
        b->trust_from = t1; /* what others seemed to do meanwhile proves nothing */
        free(rows);
        return;
    }
    if (b->down)
        sked_log(SKED_LOG_INFO, "scheduler beats again", "scheduler", s->owner, NULL);
    b->down = 0;
    for (size_t k = 0; k < b->npeers; k++)
        b->peers[k].seen = 0;
    for (size_t i = 0; i < n && with_rows; i++) {
        const sked_sched_rec *r = &rows[i];
        if (strcmp(r->id, s->owner) == 0)
            continue;
        peer *p = NULL;
        for (size_t k = 0; k < b->npeers && p == NULL; k++)
            if (strcmp(b->peers[k].row.id, r->id) == 0)
                p = &b->peers[k];
        if (p == NULL) {
            b->peers = sked_sched_grow(b->peers, &b->cappeers, b->npeers + 1, sizeof *b->peers);
            p = &b->peers[b->npeers++];
            *p = (peer){.row = *r, .changed = t1};
        } else if (p->row.beats != r->beats || p->row.beat_at != r->beat_at ||
                   p->row.published_to != r->published_to) {
            if (p->done) /* back (it was frozen, or restarted): not dead */
                takeover_drop(s, r->id);
            *p = (peer){.row = *r, .changed = t1};
        }
        p->seen = 1;
    }
    free(rows);
    size_t keep = 0;
    for (size_t k = 0; k < b->npeers; k++) {
        peer *p = &b->peers[k];
        if (!p->seen) /* pruned */
            continue;
        sked_monotime quiet = p->changed > b->trust_from ? p->changed : b->trust_from;
        if (p->row.published_to == INT64_MAX) /* stopped cleanly */
            p->done = 1;
        if (!p->done && t1 - quiet >= SKED_SCHED_DEAD_AFTER_US) {
            char age[24];
            snprintf(age, sizeof age, "%.1f", (double)(t1 - quiet) / 1e6);
            sked_log(SKED_LOG_WARN, "scheduler presumed dead: giving back its runs that may be "
                     "in no queue", "scheduler", p->row.id, "quiet_s", age, NULL);
            /* It began no mark once its own beat was SELF_FENCE old, and
             * if it comes back it marks only after a beat that went
             * through DEAD_AFTER after this one: both on its clock, which
             * its marked_at are on too.  The cut lies halfway between.
             * (A run marked ahead has its due time as dispatched_at, up
             * to SKED_SCHED_ONCE_AHEAD_US after its mark: hence marked_at.) */
            takeover_queue(s, p->row.id, p->row.published_to,
                           p->row.beat_at + (SKED_SCHED_SELF_FENCE_US +
                                             SKED_SCHED_DEAD_AFTER_US) / 2);
            p->done = 1;
        }
        b->peers[keep++] = *p;
    }
    b->npeers = keep;
}

void *sked_sched_beat_main(void *arg)
{
    sked_sched *s = arg;
    beat_state b = {.trust_from = sked_clock_mono_now()};
    snprintf(b.me.id, sizeof b.me.id, "%s", s->owner);
    pthread_mutex_lock(&s->mu);
    while (!s->beat_stop) {
        pthread_mutex_unlock(&s->mu);
        sked_walltime next = sked_clock_wall_now() + BEAT_EVERY;
        beat_once(s, &b, 1);
        pthread_mutex_lock(&s->mu);
        struct timespec ts = sked_clock_timespec(next);
        if (!s->beat_stop)
            pthread_cond_timedwait(&s->beat_cond, &s->mu, &ts);
    }
    pthread_mutex_unlock(&s->mu);
    /* the other threads are gone: nothing is in flight but what they
     * left unresolved (then the watermark stays before it) */
    beat_once(s, &b, 0);
    free(b.peers);
    return NULL;
}
