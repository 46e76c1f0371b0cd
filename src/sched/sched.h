/*
 * sched.h - the scheduler: claims due occurrences from the store, holds
 * them in a timer heap, publishes each to its queue when due, and writes
 * the workers' started/finished/heartbeat events back to the store.
 *
 * Threads (sched_internal.h): a claimer (claims, sweeps, retention), a
 * timer (sleeps until the earliest due run on an absolute CLOCK_REALTIME
 * deadline, or until woken, and dispatches), a listener (the store's
 * wake-ups), an events thread (consumes the "sked.events" queue in
 * batches), and with premark_us a releaser.  Never publishes a run before
 * its due_at (>= scheduled_at).
 */
#ifndef SKED_SCHED_H
#define SKED_SCHED_H

#include "core/err.h"
#include "queue/queue.h"
#include "store/store.h"

#define SKED_EVENTS_QUEUE "sked.events"

#define SKED_SCHED_JOBS_PER_MESSAGE_MAX 64

typedef struct sked_sched_config {
    sked_store *store;
    sked_queue *queue;
    const char *owner;           /* this scheduler's id (lease owner)          */
    int64_t window_us;           /* claim look-ahead; 0: 2 s                   */
    /* A dead scheduler's claimed runs are taken over by the others this
     * long after their due time: well inside the 10 s contract. */
    int64_t lease_us;            /* claimed run lease past due; 0: 5 s         */
    int64_t dispatch_lease_us;   /* dispatched, waiting for started; 0: 60 s   */
    int64_t run_lease_us;        /* running, renewed by heartbeats; 0: 15 s    */
    int claim_limit;             /* per claim call; 0: 1000                    */
    int64_t retention_age_us;    /* finished runs older are pruned; 0: 7 days  */
    int retention_keep;          /* finished runs kept per task; 0: 1000       */
    /* Embedded mode: nothing else runs against this store, so at start every
     * dispatched or running run belonged to a process that is gone.  Hence
     * the scheduler's writes (claims, marks, events) may be lost in a crash
     * of the machine and are committed without waiting for the disk
     * (sked_run_change.may_lose). */
    int recover_all_on_start;
    /* Mark runs DISPATCHED this long before their due time and publish them
     * at it, so the store write is not between the due time and the start.
     * A crash in between costs nothing more than one between a mark and
     * its publish: in embedded mode a run found DISPATCHED at start is
     * published again; across processes the run's mark stays in flight
     * until it is published, so another scheduler takes it over
     * (sched_beat.c).  At most 1 s; 0: mark at the due time.  A run whose
     * task has a run in flight then, unless its overlap policy is `allow`,
     * is still marked at its due time (its overlap is judged then). */
    int64_t premark_us;
    /* Jobs of one queue packed into one message, at most (one per line;
     * the worker splits them): a quorum queue's cost is per message, so
     * this cuts the broker's work per run by about as much.  The price: a
     * worker's prefetch counts messages, so one whose slots are all busy
     * can hold up to (N - 1) x its slots jobs that idle workers could have
     * run, until its own runs end (docs/operations.md).  0 or 1: one job
     * per message. */
    int jobs_per_message;
} sked_sched_config;

typedef struct sked_sched sked_sched;

int sked_sched_start(const sked_sched_config *cfg, sked_sched **out, sked_err *err);

/* A task or run changed (create, replace, resume, trigger): claim now
 * instead of at the next look-ahead.  Thread-safe, cheap. */
void sked_sched_wake(sked_sched *s);

/* A run dispatched from here is over (canceled through the API): forget
 * it for the overlap policy.  Thread-safe, idempotent. */
void sked_sched_forget_run(sked_sched *s, const char *run_id);

/* Stop the threads (runs in the heap stay SCHEDULED and leased: another
 * scheduler, or this one restarted, takes them over) and free. */
void sked_sched_stop(sked_sched *s);

#endif
