/*
 * sched_internal.h - the scheduler's state, shared by its threads:
 *   sched.c           claimer thread (claim, sweep, retention), listener
 *                     thread (the store's wake-ups), lifecycle;
 *   sched_dispatch.c  timer thread: the heap of claimed runs, overlap,
 *                     the mark (mark-then-publish);
 *   sched_publish.c   the publish, and the releaser thread (runs marked
 *                     ahead of their time);
 *   sched_events.c    events thread: workers' events into the store;
 *   sched_beat.c      beat thread: this scheduler's heartbeat and
 *                     watermark, and the takeover of dead schedulers'
 *                     runs that may be in no queue.
 */
#ifndef SKED_SCHED_INTERNAL_H
#define SKED_SCHED_INTERNAL_H

#include <pthread.h>

#include "core/metrics.h"
#include "model/run.h"
#include "sched/sched.h"

/* Releaser threads: while one reads its runs back, another publishes
 * (a burst of runs marked ahead goes out as fast as both steps allow). */
#define SKED_SCHED_RELEASERS 2

/* A claimed run waiting for its due time. */
typedef struct due_run {
    sked_run_rec rec;
    char *spec;                /* its task's canonical spec (owned) */
    /* Its heap's key: when the timer thread takes it.  In s->heap its due
     * time less premark_us, or the due time itself when its overlap must
     * be judged then; in s->ready its due time. */
    sked_walltime at;
    int deferred;              /* s->heap: `at` is its due time (defer) */
    uint64_t seq;              /* tie-break: claim order            */
} due_run;

/* A run the timer thread took out of the heap to change in the store
 * (dispatch, skip, cancel), in its dispatch batch: a claim that read the
 * store before that batch was written must not put it back. */
typedef struct handled_run {
    char run_id[SKED_ID_LEN + 1];
    int attempt;
    uint64_t batch;
} handled_run;

/* queue_one: the one run of a task waiting for its previous run. */
typedef struct waiting_run {
    char task_id[SKED_ID_LEN + 1];
    char run_id[SKED_ID_LEN + 1];
    struct waiting_run *next;
} waiting_run;

/* A write that may record runs DISPATCHED (a mark, a claim), from its
 * start until every run it recorded is published, given back or waiting
 * in s->ready; or a release of runs taken from s->ready, until they are
 * published or given back. */
typedef struct inflight_write {
    uint64_t ticket;
    sked_walltime floor;       /* its runs' dispatched_at are >= this    */
} inflight_write;

/* A dead scheduler's runs to give back (sched_beat.c). */
typedef struct takeover_job {
    char id[SKED_OWNER_MAX + 1];
    sked_walltime since, before;
} takeover_job;

struct sked_sched {
    sked_sched_config cfg;
    char owner[SKED_OWNER_MAX + 1];
    pthread_t claimer, timer, listener, events, beater;
    pthread_t releaser[SKED_SCHED_RELEASERS];
    int listening;             /* the listener thread runs               */
    pthread_mutex_t mu;
    pthread_cond_t cond;       /* timer: the heap changed, or stop        */
    pthread_cond_t claim_cond; /* claimer: wake, heap drained, or stop    */
    pthread_cond_t ready_cond; /* releaser: s->ready changed, or stop     */
    int stop, wake;
    int releasing;             /* how many releaser threads run           */
    int beating;               /* the beat thread runs                    */
    pthread_cond_t beat_cond;  /* beat thread: beat_stop                  */
    int beat_stop;
    sked_walltime started_at;  /* wall clock at sked_sched_start          */
    int more;                  /* the last claim hit its limit            */
    sked_consumer *consumer;   /* the events queue                        */
    int64_t read_us;           /* the releasers' reads' moving mean (mu)  */

    /* under mu */
    due_run *heap;             /* claimed, not yet marked                */
    size_t nheap, capheap;
    due_run *ready;            /* marked ahead (premark_us), not yet due  */
    size_t nready, capready;
    uint64_t seq;
    handled_run *handled;
    size_t nhandled, caphandled;
    uint64_t batch;            /* dispatch batches begun                  */
    uint64_t done_batch;       /* ... and written to the store            */
    waiting_run *waiting[256];
    size_t nwaiting;
    inflight_write *inflight;  /* sched_beat.c                            */
    size_t ninflight, capinflight;
    uint64_t tickets;
    sked_walltime watermark;   /* the last one reported; floors >= it     */
    sked_monotime beat_ok;     /* the last beat that went through         */
    int unsettled;             /* a previous life of this id may hold runs:
                                * mark nothing until its row is read and its
                                * runs are taken over (sched_beat.c)      */
    takeover_job *takeovers;   /* pending, for the claimer                */
    size_t ntakeovers, captakeovers;

    /* metrics */
    sked_histogram *lag, *claim_seconds, *dispatch_seconds, *store_seconds;
};

/* Replace the heap with runs[0..n) (taken over), leaving out those the
 * timer thread handled in batches after done_before; drop waiting
 * (queue_one) entries whose run the claim no longer returned unless
 * `partial`.  Wakes the timer thread.  Takes s->mu. */
void sked_sched_heap_replace(sked_sched *s, due_run *runs, size_t n,
                             uint64_t done_before, int partial);
void sked_sched_heap_free(sked_sched *s);

/* What a due_run owns (its record's error and output, its spec). */
void sked_sched_due_free(due_run *d);

/* Runs the timer and releaser threads take in one batch, at most. */
#define SKED_SCHED_BATCH_MAX 4096

/* Under s->mu: pop the runs of heap h[0..*n) whose time comes within
 * `lead` from now (at most SKED_SCHED_BATCH_MAX, earliest first) into
 * batch; when none does, wait until `lead` before the first one's time or
 * a signal of cond.  Returns how many were popped. */
size_t sked_sched_take_due(sked_sched *s, due_run *h, size_t *n, pthread_cond_t *cond,
                           due_run *batch, int64_t lead);

/* The releaser reads runs marked ahead again as long before their due
 * time as such a read takes (its moving mean, s->read_us), at most this
 * long: the read ends about when they are due, and a cancel committed
 * before it began is seen.  They go out at their due time, never before. */
#define SKED_SCHED_READ_AHEAD_MAX_US (5 * SKED_USEC_PER_MSEC)

/* p (an array of *cap items of size bytes) with room for need items:
 * doubled from 64 as needed; aborts when memory is out. */
void *sked_sched_grow(void *p, size_t *cap, size_t need, size_t size);

/* Publish runs[0..n) (DISPATCHED in the store) with their tasks' specs,
 * all in flight together (one round of publisher confirms).  A run not
 * published goes back to SCHEDULED, due now and free for any scheduler's
 * next claim (this one is woken), instead of waiting for its dispatch
 * lease; that write is repeated until the store takes it.  The timer
 * thread calls it after its mark, the claimer thread for the runs its
 * claim recorded dispatched.  `marked`: the monotonic time the write that
 * recorded them began; when that is more than SKED_SCHED_STALE_US ago
 * (this process was stopped, or the store slow), other schedulers may
 * have taken the runs over (sched_beat.c), so only those still as
 * recorded go (read back first).  0 when each run went out or back; -1
 * when the scheduler stopped first (some may be neither). */
#define SKED_SCHED_STALE_US (2 * SKED_USEC_PER_SEC)
int sked_sched_publish(sked_sched *s, sked_run_rec *const *runs, const char *const *specs,
                       size_t n, sked_monotime marked);

/* A write of recs[0..n) failed, and may still have been applied: a
 * COMMIT whose answer was lost (PostgreSQL died during it, and its
 * standby may have it).  Taken for failed, a run it recorded DISPATCHED
 * would wait unpublished for its dispatch lease, a minute.  So they are
 * read back: applied[i] = 1 when run i holds what was written - the
 * status on the same attempt, with the same dispatched_at, finished_at
 * and lease owner (the clock's microseconds at the write: no other writer
 * chose them; but a run marked ahead has its due time as dispatched_at,
 * whoever marked it, so the lease owner tells).  0, or -1
 * when the scheduler stops first (applied is then not set). */
int sked_sched_read_back(sked_sched *s, const sked_run_rec *const *recs, size_t n,
                         int *applied);

/* r, DISPATCHED or RUNNING as read from the store, lost its worker or
 * its publish: a dispatched run goes back to SCHEDULED, due now - as
 * attempt + 1 when `maybe_ran` (across processes: it may have been
 * published, even run by a worker whose start never reached the store)
 * and it is past its due time (one marked ahead and not yet due was never
 * published: it keeps its attempt and its time); a running one has lost
 * that attempt (r->error = why): retried per its task's spec (attempt + 1
 * at its backoff; returns 1) or FAILED.
 * r->error is malloc'ed (or NULL) before and after. */
int sked_sched_lose(sked_run_rec *r, const char *spec, sked_walltime now, const char *why,
                    int maybe_ran);

/* The watermark (sched_beat.c).  A write that may record runs DISPATCHED
 * begins with sked_sched_inflight_begin, which returns the time to record
 * as their dispatched_at (now, never before a watermark already
 * reported) and a ticket, and ends with sked_sched_inflight_end once each
 * of its runs is published, given back, or waiting in s->ready.  The
 * watermark is the earliest floor in flight, the earliest due time in
 * s->ready (a run there has it as dispatched_at), or now: every run this
 * scheduler recorded DISPATCHED with a dispatched_at before it is surely
 * published or given back.  So a run marked ahead holds the watermark
 * back only once it is due, however early it was marked.  A write left
 * unresolved (the scheduler stopped while the store was away) is never
 * ended: the watermark stays before its runs.  Take s->mu. */
sked_walltime sked_sched_inflight_begin(sked_sched *s, uint64_t *ticket);
void sked_sched_inflight_end(sked_sched *s, uint64_t ticket);
/* The same with s->mu held, for runs with dispatched_at >= floor taken
 * out of s->ready (to be published or given back): returns the ticket. */
uint64_t sked_sched_inflight_from_locked(sked_sched *s, sked_walltime floor);
/* Run r, recorded DISPATCHED ahead of its due time (a mark, or a claim
 * within the premark lead or of a one-time task), waits in s->ready to be
 * published at its due time.  The ready heap takes spec (malloc'ed), not
 * r's error or output.  Call with s->mu held, before the writer's
 * sked_sched_inflight_end. */
void sked_sched_ready_push_locked(sked_sched *s, const sked_run_rec *r, char *spec);
/* d, taken from s->ready by the releaser and not published (it stops),
 * goes back there as it was.  Call with s->mu held. */
void sked_sched_ready_return_locked(sked_sched *s, const due_run *d);

/* The timer's premark lead, at most: its marks are a second write for
 * runs already claimed, worth making only just before they are due. */
#define SKED_SCHED_PREMARK_MAX_US (1 * SKED_USEC_PER_SEC)
/* A one-time task (one occurrence: nothing else of it is recorded ahead)
 * is claimed this long before it is due, and its run recorded DISPATCHED
 * by the claim (its mark, marked_at), to wait in s->ready for its due
 * time: a burst of them is claimed while it comes, not after.  Not while
 * s->ready holds ONCE_READY_MAX runs (the memory such a wait costs). */
#define SKED_SCHED_ONCE_AHEAD_US (30 * SKED_USEC_PER_SEC)
#define SKED_SCHED_ONCE_READY_MAX 50000
/* Stopping: give the runs marked ahead and not yet published back to the
 * store (SCHEDULED, their due time kept), so that nobody has to take them
 * over.  The other threads are joined. */
void sked_sched_ready_give_back(sked_sched *s);

/* Another scheduler's row unchanged this long (while this one's beats go
 * through) means it is dead; this one's own beat not through for
 * SELF_FENCE means others may soon think so of it: it must not mark. */
#define SKED_SCHED_DEAD_AFTER_US (5 * SKED_USEC_PER_SEC)
#define SKED_SCHED_SELF_FENCE_US (3 * SKED_USEC_PER_SEC)
/* 1 when this scheduler must not record runs DISPATCHED now (see above).
 * Call with s->mu held. */
int sked_sched_fenced(sked_sched *s);

/* The claimer thread: give back some of the runs of dead schedulers that
 * the beat thread found (a few batches a turn).  Takes s->mu. */
void sked_sched_take_over_some(sked_sched *s);

/* The beat thread.  Runs until s->beat_stop, which sked_sched_stop sets
 * once the other threads are gone; then writes a last beat, whose
 * watermark covers every write they finished. */
void *sked_sched_beat_main(void *arg);

/* Sleep *pause (then doubled, up to a second) before trying a store write
 * or read again; log msg (with err) before the first retry.  -1, without
 * sleeping, once the scheduler stops. */
int sked_sched_retry_pause(sked_sched *s, int tries, int64_t *pause, const char *msg,
                           const sked_err *err);

/* Give runs[0..n) back, as read from the store (DISPATCHED or RUNNING,
 * with their tasks' specs; specs may be NULL for DISPATCHED ones), per
 * sked_sched_lose (maybe_ran: 0 for runs surely never published): one
 * write, each change fenced on the status, attempt and lease owner the
 * run was read with.
 * recs[i] and ch[i] (caller's arrays of n) receive what was written and
 * whether it applied (ch[i].result); free each recs[i].error after.
 * Returns the write's result. */
int sked_sched_give_back(sked_sched *s, const sked_run_rec *runs, char *const *specs,
                         size_t n, const char *why, int maybe_ran, sked_run_rec *recs,
                         sked_run_change *ch, sked_err *err);

/* Has sked_sched_stop begun?  Takes s->mu. */
int sked_sched_stopping(sked_sched *s);

/* The timer thread; with premark_us, the releaser thread, which publishes
 * the runs marked ahead at their due time (a mark that waits for the disk
 * then holds up only the marking, not the publishing). */
void *sked_sched_timer_main(void *arg);
void *sked_sched_releaser_main(void *arg);

/* Count a run reaching status (runs by status and queue). */
void sked_sched_count_status(const char *queue, sked_run_status st);

void *sked_sched_events_main(void *arg);
/* Write what events ev[0..ne) mean for their runs (fenced run changes,
 * in batches; heartbeats stored), as the events thread does with each
 * batch it takes.  -1 when the store failed: the events must come again
 * (those already written are then fenced out as repeats). */
int sked_sched_events_handle(sked_sched *s, const sked_event *ev, size_t ne);

#endif
