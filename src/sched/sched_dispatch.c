/*
 * sched_dispatch.c - the scheduler's timer thread: claimed runs wait in a
 * min-heap by due time; one thread sleeps until the earliest (an absolute
 * CLOCK_REALTIME deadline on a condition variable) and dispatches every
 * run that has come due, in one batch:
 *
 *   1. overlap: how many runs of each task are in flight now, from the
 *      store (whichever scheduler dispatched them), plus those this batch
 *      dispatches — skip, hold (queue_one) or go;
 *   2. mark: one fenced store batch (SCHEDULED -> DISPATCHED, SKIPPED or
 *      CANCELED, on the run's attempt); when it fails the runs are read
 *      back to learn which marks were applied (a COMMIT whose answer was
 *      lost in a failover may have been);
 *   3. publish the runs whose mark applied, all in flight together (one
 *      round of publisher confirms for the batch; sched_publish.c).
 *
 * Marking before publishing means a crash in between leaves the run
 * DISPATCHED with a lease: the embedded server publishes it again at
 * start, and across processes another scheduler's takeover gives it back
 * once this one's heartbeat stops (sched_beat.c), or the sweep once its
 * lease runs out.  Never publishes a run before its due_at.
 *
 * With cfg.premark_us, steps 1-2 run that long before the
 * due time and the marked runs wait in a second heap, s->ready, to be
 * published at their due time: the store write is off the path from due
 * time to start.  They are read again just before (one round trip), so a
 * run canceled, or of a task paused or deleted, meanwhile is not
 * published.  Overlap is judged at the mark, except for a run whose task
 * has a run in flight then: unless its policy is `allow` it is marked at
 * its due time instead (defer), when the one in flight may have ended.
 *
 * The claimer thread (sched.c) replaces the heap with each claim.  A claim
 * reads the store while this thread may be writing a batch; runs of
 * batches not yet written when the claim began are left out of the new
 * heap (s->handled), so a run is never dispatched twice by one scheduler
 * either; the store's fencing would refuse the second mark anyway.
 */
#include "sched/sched_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "model/run.h"

#define SLOW_DISPATCH_US (100 * SKED_USEC_PER_MSEC) /* logged when longer */

/* --- heap (under s->mu) ---------------------------------------------------- */

static int before(const due_run *a, const due_run *b)
{
    return a->at != b->at ? a->at < b->at : a->seq < b->seq;
}

void *sked_sched_grow(void *p, size_t *cap, size_t need, size_t size)
{
    if (need <= *cap)
        return p;
    size_t c = *cap ? *cap : 64;
    while (c < need)
        c *= 2;
    p = realloc(p, c * size);
    if (p == NULL)
        abort();
    *cap = c;
    return p;
}

/* The two heaps, s->heap (claimed) and s->ready (marked ahead of time),
 * are min-heaps of v[0..*n) by `at`, when the timer takes the run. */
static void heap_push(due_run **v, size_t *n, size_t *cap, due_run d)
{
    *v = sked_sched_grow(*v, cap, *n + 1, sizeof **v);
    due_run *h = *v;
    size_t i = (*n)++;
    while (i > 0 && before(&d, &h[(i - 1) / 2])) {
        h[i] = h[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    h[i] = d;
}

static due_run heap_pop(due_run *h, size_t *n)
{
    due_run top = h[0], last = h[--*n];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= *n)
            break;
        if (c + 1 < *n && before(&h[c + 1], &h[c]))
            c++;
        if (!before(&h[c], &last))
            break;
        h[i] = h[c];
        i = c;
    }
    if (*n > 0)
        h[i] = last;
    return top;
}

void sked_sched_ready_push_locked(sked_sched *s, const sked_run_rec *r, char *spec)
{
    due_run w = {.rec = *r, .spec = spec, .at = r->due_at, .seq = s->seq++};
    w.rec.error = w.rec.output = NULL;
    heap_push(&s->ready, &s->nready, &s->capready, w);
    /* the earliest now: every releaser waiting for the earliest (one of
     * them may be waiting for its batch's time on the same condition) */
    if (s->ready[0].seq == w.seq)
        pthread_cond_broadcast(&s->ready_cond);
}

void sked_sched_ready_return_locked(sked_sched *s, const due_run *d)
{
    heap_push(&s->ready, &s->nready, &s->capready, *d);
}

void sked_sched_due_free(due_run *d)
{
    sked_run_rec_deinit(&d->rec);
    free(d->spec);
}

void sked_sched_heap_free(sked_sched *s)
{
    while (s->nheap > 0) {
        due_run d = heap_pop(s->heap, &s->nheap);
        sked_sched_due_free(&d);
    }
    while (s->nready > 0) { /* given back at stop, or DISPATCHED in the store:
                               recovered at start (embedded) or taken over */
        due_run d = heap_pop(s->ready, &s->nready);
        sked_sched_due_free(&d);
    }
    free(s->heap);
    free(s->ready);
    free(s->handled);
    for (int b = 0; b < 256; b++)
        while (s->waiting[b]) {
            waiting_run *w = s->waiting[b];
            s->waiting[b] = w->next;
            free(w);
        }
}

/* --- queue_one's waiting runs (under s->mu) ------------------------------- */

static unsigned bucket(const char *id)
{
    unsigned h = 5381;
    for (; *id; id++)
        h = h * 33 + (unsigned char)*id;
    return h % 256;
}

static waiting_run **waiting_of(sked_sched *s, const char *task_id)
{
    waiting_run **pp = &s->waiting[bucket(task_id)];
    for (; *pp; pp = &(*pp)->next)
        if (strcmp((*pp)->task_id, task_id) == 0)
            return pp;
    return NULL;
}

static void waiting_drop(sked_sched *s, waiting_run **pp)
{
    waiting_run *dead = *pp;
    *pp = dead->next;
    free(dead);
    s->nwaiting--;
}

/* --- the claimer's side ------------------------------------------------------ */

static int by_handled(const void *a, const void *b)
{
    const handled_run *x = a, *y = b;
    int c = strcmp(x->run_id, y->run_id);
    return c ? c : (x->attempt > y->attempt) - (x->attempt < y->attempt);
}

void sked_sched_heap_replace(sked_sched *s, due_run *runs, size_t n,
                             uint64_t done_before, int partial)
{
    pthread_mutex_lock(&s->mu);
    /* handled in batches written before the claim read: the claim saw
     * their new status, forget them */
    size_t k = 0;
    for (size_t i = 0; i < s->nhandled; i++)
        if (s->handled[i].batch > done_before)
            s->handled[k++] = s->handled[i];
    s->nhandled = k;
    if (s->nhandled > 1)
        qsort(s->handled, s->nhandled, sizeof *s->handled, by_handled);
    /* Deferred runs stay, to be taken at their due time: a claim that
     * began while one was in a batch being dispatched left it out (as
     * handled), and one that returns it must not make it be taken ahead
     * of its time again. */
    due_run *kept = NULL;
    size_t nkept = 0, capkept = 0;
    while (s->nheap > 0) {
        due_run d = heap_pop(s->heap, &s->nheap);
        if (!d.deferred) {
            sked_sched_due_free(&d);
            continue;
        }
        kept = sked_sched_grow(kept, &capkept, nkept + 1, sizeof *kept);
        kept[nkept++] = d;
    }
    for (size_t i = 0; i < n; i++) {
        handled_run key = {.attempt = runs[i].rec.attempt};
        snprintf(key.run_id, sizeof key.run_id, "%s", runs[i].rec.id);
        if (s->nhandled > 0 &&
            bsearch(&key, s->handled, s->nhandled, sizeof key, by_handled) != NULL) {
            sked_sched_due_free(&runs[i]);
            continue;
        }
        runs[i].seq = s->seq++;
        runs[i].at = runs[i].rec.due_at - s->cfg.premark_us;
        for (size_t j = 0; j < nkept; j++) {
            if (kept[j].rec.attempt == runs[i].rec.attempt &&
                strcmp(kept[j].rec.id, runs[i].rec.id) == 0) {
                runs[i].at = runs[i].rec.due_at;
                runs[i].deferred = 1;
                sked_sched_due_free(&kept[j]);
                kept[j] = kept[--nkept];
                break;
            }
        }
        heap_push(&s->heap, &s->nheap, &s->capheap, runs[i]);
    }
    for (size_t j = 0; j < nkept; j++) /* left out by the claim */
        heap_push(&s->heap, &s->nheap, &s->capheap, kept[j]);
    free(kept);
    /* a waiting (queue_one) run that the store no longer gives us was
     * canceled, paused or taken over: stop holding its place */
    for (int b = 0; b < 256 && !partial; b++) {
        for (waiting_run **pp = &s->waiting[b]; *pp;) {
            int held = 0;
            for (size_t i = 0; i < s->nheap && !held; i++)
                held = strcmp(s->heap[i].rec.id, (*pp)->run_id) == 0;
            if (held)
                pp = &(*pp)->next;
            else
                waiting_drop(s, pp);
        }
    }
    pthread_cond_signal(&s->cond);
    pthread_mutex_unlock(&s->mu);
}

/* --- overlap ----------------------------------------------------------------- */

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

static int one_time(const char *spec)
{
    /* a canonical spec (model/task.c) holds this text only as its own
     * schedule's first key: inside JSON strings quotes are escaped */
    return strstr(spec, "\"schedule\":{\"at\":") != NULL;
}

typedef struct task_ref {
    const char *task_id;
    size_t i;
} task_ref;

static int by_task(const void *a, const void *b)
{
    return strcmp(((const task_ref *)a)->task_id, ((const task_ref *)b)->task_id);
}

/* Group the batch's runs by task (grp[i], -1 for a deleted task's run)
 * and fill inflight[g] with the runs of group g's task dispatched or
 * running now, across schedulers.  Returns the number of groups. */
static size_t inflight_by_task(sked_sched *s, const due_run *b, size_t n, int *grp,
                               int **inflight)
{
    task_ref *refs = malloc((n ? n : 1) * sizeof *refs);
    const char **ids = malloc((n ? n : 1) * sizeof *ids);
    if (refs == NULL || ids == NULL)
        abort();
    size_t nr = 0, ng = 0;
    for (size_t i = 0; i < n; i++) {
        grp[i] = -1;
        /* a one-time task has one occurrence: it cannot overlap itself */
        if (b[i].spec != NULL && !one_time(b[i].spec))
            refs[nr++] = (task_ref){b[i].rec.task_id, i};
    }
    qsort(refs, nr, sizeof *refs, by_task);
    for (size_t r = 0; r < nr; r++) {
        if (r == 0 || strcmp(refs[r].task_id, refs[r - 1].task_id) != 0)
            ids[ng++] = refs[r].task_id;
        grp[refs[r].i] = (int)ng - 1;
    }
    *inflight = calloc(ng ? ng : 1, sizeof **inflight);
    if (*inflight == NULL)
        abort();
    sked_err err = {0};
    if (ng > 0 && sked_store_tasks_active(s->cfg.store, ids, ng, *inflight, &err) < 0)
        /* the marks below will most likely fail too; if they do not, the
         * worst is an overlap not detected */
        sked_log(SKED_LOG_WARN, "overlap check failed", "error", err.msg, NULL);
    free(refs);
    free(ids);
    return ng;
}

/* --- dispatch ---------------------------------------------------------------- */

/* Put d, taken ahead of its time in batch bno, back into the heap to be
 * taken again at its due time (d keeps nothing the heap's copy owns).
 * Under s->mu. */
static void defer(sked_sched *s, due_run *d, uint64_t bno)
{
    due_run w = {.rec = d->rec, .spec = d->spec, .at = d->rec.due_at, .deferred = 1,
                 .seq = d->seq};
    w.rec.error = w.rec.output = NULL; /* d's, freed with it */
    d->spec = NULL;
    heap_push(&s->heap, &s->nheap, &s->capheap, w);
    /* nothing is written for it: a claim may bring it back */
    for (size_t k = 0; k < s->nhandled; k++) {
        handled_run *h = &s->handled[k];
        if (h->batch == bno && h->attempt == d->rec.attempt &&
            strcmp(h->run_id, d->rec.id) == 0) {
            *h = s->handled[--s->nhandled];
            break;
        }
    }
}

/* Decide, mark and publish one batch of runs (taken over), due by now or,
 * with premark_us, soon: those are marked now and wait in s->ready until
 * their due time - unless their task has a run in flight and its overlap
 * policy is not `allow`: they are decided at their due time (defer). */
static void dispatch(sked_sched *s, due_run *batch, size_t n, uint64_t bno)
{
    sked_monotime t0 = sked_clock_mono_now();
    uint64_t ticket;
    sked_walltime now = sked_sched_inflight_begin(s, &ticket);
    int *grp = malloc(n * sizeof *grp), *inflight = NULL;
    sked_run_rec *recs = malloc(n * sizeof *recs);
    sked_run_change *todo = calloc(n, sizeof *todo);
    size_t *todo_of = malloc(n * sizeof *todo_of), nt = 0;
    if (grp == NULL || recs == NULL || todo == NULL || todo_of == NULL)
        abort();
    inflight_by_task(s, batch, n, grp, &inflight);
    sked_monotime t_read = sked_clock_mono_now();

    pthread_mutex_lock(&s->mu);
    for (size_t i = 0; i < n; i++) {
        due_run *d = &batch[i];
        recs[i] = d->rec;
        recs[i].error = recs[i].output = NULL;
        /* a retry is the same occurrence, not a new one: never skipped */
        const char *ov = d->rec.attempt > 1 ? "allow" : overlap_of(d->spec);
        int busy = grp[i] >= 0 ? inflight[grp[i]] : 0;
        waiting_run **w = waiting_of(s, d->rec.task_id);
        if (d->spec == NULL) {
            recs[i].status = SKED_RUN_CANCELED;
            recs[i].finished_at = now;
            recs[i].error = "task deleted";
        } else if (busy > 0 && strcmp(ov, "allow") != 0 && d->rec.due_at > now) {
            /* taken ahead of its time, while a run of its task is in
             * flight: whether it overlaps is known only at its due time */
            defer(s, d, bno);
            continue;
        } else if (busy > 0 && strcmp(ov, "queue_one") == 0 &&
                   (w == NULL || strcmp((*w)->run_id, d->rec.id) == 0)) {
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
                s->nwaiting++;
            }
            continue; /* held: nothing to write */
        } else if (busy > 0 && strcmp(ov, "allow") != 0) {
            recs[i].status = SKED_RUN_SKIPPED;
            snprintf(recs[i].reason, sizeof recs[i].reason, "overlap");
            recs[i].finished_at = now;
        } else {
            if (w != NULL && strcmp((*w)->run_id, d->rec.id) == 0)
                waiting_drop(s, w); /* the waiting one goes now */
            recs[i].status = SKED_RUN_DISPATCHED;
            /* marked ahead: it goes out at its due time */
            recs[i].dispatched_at = d->rec.due_at > now ? d->rec.due_at : now;
            recs[i].marked_at = now;
            recs[i].lease_expires_at = recs[i].dispatched_at + s->cfg.dispatch_lease_us;
            if (grp[i] >= 0)
                inflight[grp[i]]++;
        }
        todo_of[nt] = i;
        /* embedded: every dispatched run is recovered at start anyway, so
         * the mark need not wait for the disk (it is still written before
         * the publish, and survives a crash of the process) */
        /* fenced on our claim's lease: once it ran out another
         * scheduler's claim may hold the run */
        todo[nt++] = (sked_run_change){.rec = &recs[i], .attempt = d->rec.attempt,
                                       .from = SKED_RUN_BIT(SKED_RUN_SCHEDULED),
                                       .may_lose = s->cfg.recover_all_on_start,
                                       .owner = s->owner};
    }
    pthread_mutex_unlock(&s->mu);

    sked_err err = {0};
    sked_monotime t_mark = sked_clock_mono_now();
    int rc = nt ? sked_store_run_update(s->cfg.store, todo, nt, &err) : 0;
    if (rc < 0) {
        sked_log(SKED_LOG_ERROR, "dispatch update failed; reading back which marks were applied",
                 "error", err.msg, NULL);
        const sked_run_rec **written = malloc(nt * sizeof *written);
        int *applied = malloc(nt * sizeof *applied);
        if (written == NULL || applied == NULL)
            abort();
        for (size_t k = 0; k < nt; k++)
            written[k] = todo[k].rec;
        rc = sked_sched_read_back(s, written, nt, applied); /* -1: stopped, unresolved */
        for (size_t k = 0; k < nt && rc == 0; k++)
            todo[k].result = applied[k] ? 0 : SKED_EPRECOND;
        free(written);
        free(applied);
    }
    sked_monotime t_marked = sked_clock_mono_now();
    pthread_mutex_lock(&s->mu);
    s->done_batch = bno;
    pthread_mutex_unlock(&s->mu);

    /* publish what was marked and is due, all in flight together; what
     * is not due yet waits in s->ready */
    sked_run_rec **pub = calloc(nt ? nt : 1, sizeof *pub);
    const char **pub_spec = calloc(nt ? nt : 1, sizeof *pub_spec);
    size_t np = 0;
    if (pub == NULL || pub_spec == NULL)
        abort();
    sked_walltime marked = sked_clock_wall_now();
    for (size_t k = 0; k < nt && rc == 0; k++) {
        sked_run_rec *r = &recs[todo_of[k]];
        due_run *d = &batch[todo_of[k]];
        if (todo[k].result != 0)
            continue; /* changed meanwhile (canceled, taken over): not ours */
        if (r->status == SKED_RUN_DISPATCHED && s->cfg.premark_us > 0 && r->due_at > marked) {
            pthread_mutex_lock(&s->mu);
            sked_sched_ready_push_locked(s, r, d->spec);
            pthread_mutex_unlock(&s->mu);
            d->spec = NULL; /* the ready heap owns it now */
            continue;
        }
        if (r->status == SKED_RUN_DISPATCHED) {
            pub[np] = r;
            pub_spec[np++] = d->spec;
            continue;
        }
        sked_sched_count_status(r->queue, r->status);
        sked_log(SKED_LOG_INFO, r->status == SKED_RUN_SKIPPED ? "run skipped" : "run canceled",
                 "run", r->id, "task", r->task_id, "reason",
                 r->status == SKED_RUN_SKIPPED ? "overlap" : "task deleted", NULL);
    }
    if (sked_sched_publish(s, pub, pub_spec, np, t0) == 0 && rc == 0)
        sked_sched_inflight_end(s, ticket);
    free(pub);
    free(pub_spec);
    for (size_t i = 0; i < n; i++)
        sked_sched_due_free(&batch[i]);
    free(grp);
    free(inflight);
    free(recs);
    free(todo);
    free(todo_of);
    sked_monotime t_end = sked_clock_mono_now();
    sked_histogram_observe(s->dispatch_seconds, (double)(t_end - t0) / 1e6);
    if (t_end - t0 >= SLOW_DISPATCH_US) {
        char v[4][24];
        snprintf(v[0], sizeof v[0], "%zu", n);
        snprintf(v[1], sizeof v[1], "%.1f", (double)(t_read - t0) / 1e3);
        snprintf(v[2], sizeof v[2], "%.1f", (double)(t_marked - t_mark) / 1e3);
        snprintf(v[3], sizeof v[3], "%.1f", (double)(t_end - t0) / 1e3);
        sked_log(SKED_LOG_WARN, "slow dispatch", "runs", v[0], "overlap_read_ms", v[1],
                 "mark_ms", v[2], "total_ms", v[3], NULL);
    }
}

size_t sked_sched_take_due(sked_sched *s, due_run *h, size_t *n, pthread_cond_t *cond,
                           due_run *batch, int64_t lead)
{
    sked_walltime now = sked_clock_wall_now() + lead;
    size_t k = 0;
    while (*n > 0 && h[0].at <= now && k < SKED_SCHED_BATCH_MAX)
        batch[k++] = heap_pop(h, n);
    if (k > 0)
        return k;
    if (*n == 0) {
        pthread_cond_wait(cond, &s->mu);
    } else {
        struct timespec ts = sked_clock_timespec(h[0].at - lead);
        pthread_cond_timedwait(cond, &s->mu, &ts);
    }
    return 0;
}

void *sked_sched_timer_main(void *arg)
{
    sked_sched *s = arg;
    due_run *batch = malloc(SKED_SCHED_BATCH_MAX * sizeof *batch);
    if (batch == NULL)
        abort();
    pthread_mutex_lock(&s->mu);
    while (!s->stop) {
        if (sked_sched_fenced(s)) {
            /* others may take this scheduler for dead: mark nothing until
             * it beats again (its claims' leases run out meanwhile) */
            struct timespec ts = sked_clock_timespec(sked_clock_wall_now() +
                                                     100 * SKED_USEC_PER_MSEC);
            pthread_cond_timedwait(&s->cond, &s->mu, &ts);
            continue;
        }
        size_t n = sked_sched_take_due(s, s->heap, &s->nheap, &s->cond, batch, 0);
        if (n == 0)
            continue;
        uint64_t bno = ++s->batch;
        s->handled = sked_sched_grow(s->handled, &s->caphandled, s->nhandled + n,
                                     sizeof *s->handled);
        for (size_t i = 0; i < n; i++) {
            handled_run *h = &s->handled[s->nhandled++];
            snprintf(h->run_id, sizeof h->run_id, "%s", batch[i].rec.id);
            h->attempt = batch[i].rec.attempt;
            h->batch = bno;
        }
        if (s->more && s->nheap < (size_t)s->cfg.claim_limit / 2)
            pthread_cond_signal(&s->claim_cond); /* claim the rest, ahead */
        pthread_mutex_unlock(&s->mu);
        dispatch(s, batch, n, bno);
        pthread_mutex_lock(&s->mu);
    }
    pthread_mutex_unlock(&s->mu);
    free(batch);
    return NULL;
}
