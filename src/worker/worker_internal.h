/*
 * worker_internal.h - the worker's state, shared by worker.c (consumers,
 * inbox, heartbeats, lifecycle) and worker_outbox.c (events out, deliveries
 * settled).  Fields under `mu` are touched by every thread of the worker.
 * Not for use outside src/worker/.
 */
#ifndef SKED_WORKER_INTERNAL_H
#define SKED_WORKER_INTERNAL_H

#include <pthread.h>

#include "model/run.h"
#include "worker/worker.h"

/* A delivery: one message of one or more jobs (one per line).  It is
 * acknowledged once every job of it is settled: run and reported, or
 * reported back (`returned`: it came back from the queue, could not
 * start, or was killed by this worker's stop), or found a duplicate.
 * Never nacked: back in the queue, a message would bring its finished
 * jobs back too.  job->user of each job taken points to it. */
typedef struct slot_ref {
    sked_consumer *consumer;
    uint64_t tag;
    int left;                        /* (mu) jobs not settled yet       */
} slot_ref;

/* A job of a delivery that came with more jobs than free slots: it waits
 * here for a slot (sked_worker_start_pending). */
typedef struct pending_job {
    sked_job *job;
    int fresh;                 /* a first delivery, its attempt not here */
    struct pending_job *next;
} pending_job;

typedef struct running {
    char run_id[SKED_ID_LEN + 1];
    int attempt;
    struct running *next;
} running;

/* An event to publish, and the delivery to settle once it is out. */
typedef struct outbox_item {
    char *text;                      /* NULL: nothing to publish (but
                                        a start, below)                */
    size_t len;
    /* A started event is encoded only when it goes out (outbox_pack):
     * most are dropped first, their finished event carrying the start.
     * SKED_TIME_NONE: none, or dropped. */
    sked_walltime start_at;
    sked_consumer *consumer;         /* NULL: nothing to settle         */
    uint64_t tag;
    char run_id[SKED_ID_LEN + 1];    /* the event's run and attempt     */
    int run_attempt;
    int finished_with_start;         /* a finished event carrying its
                                        start: a queued started one of
                                        the same attempt is dropped   */
    sked_walltime put_at;            /* when it came (a start's hold)   */
    int urgent;                      /* a start another event of its run
                                        follows: goes out, not held    */
    struct outbox_item *next, *prev; /* prev: toward the head (a fold
                                        looks from the tail back)      */
} outbox_item;

typedef struct qthread {
    struct sked_worker *w;
    char name[SKED_QUEUE_NAME_MAX + 1];
    sked_consumer *consumer;
    pthread_t th;
} qthread;

struct sked_worker {
    sked_worker_config cfg;
    char id[SKED_WORKER_MAX + 1];
    char host[128];
    char *queues_json;
    sked_exec *exec;
    qthread *qs;
    int nq;
    pthread_t hb, out, inbox_th;
    sked_consumer *inbox;              /* sked.inbox.<id>: orders to us   */
    pthread_mutex_t mu;
    pthread_cond_t out_cond;           /* the outbox has items, or stop   */
    outbox_item *out_head, *out_tail;  /* under mu                        */
    int out_stop;
    pthread_cond_t cond;               /* a slot freed while a consumer
                                          waits for one, or stop        */
    int room_waiters;                  /* (mu) consumers waiting for a
                                          free slot                     */
    pthread_cond_t hb_cond;            /* the heartbeat thread: stop    */
    int busy, stop;
    running *runs;
    pending_job *pend_head, *pend_tail; /* (mu) waiting for a slot      */
    int npend;
};

/* worker_outbox.c.  Publish one event now (heartbeats), retrying briefly. */
void sked_worker_publish_event(sked_worker *w, const sked_event *e);
/* Queue event e (a start) for the outbox thread. */
void sked_worker_outbox_put(sked_worker *w, const sked_event *e);
void *sked_worker_outbox_main(void *arg);
/* One job of delivery ref is settled, after event e (may be NULL) of it.
 * The last one queues the delivery's ack behind e, and frees ref. */
void sked_worker_settle_job(sked_worker *w, slot_ref *ref, const sked_event *e);
/* job is reported back, not run (see slot_ref): its `returned` event
 * (`unstarted`: see sked_event), then its settlement; frees job. */
void sked_worker_return_job(sked_worker *w, sked_job *job, int unstarted);
/* worker.c: job's slot is free again (it ended, or could not start): it
 * leaves the running list, and a consumer may take more. */
void sked_worker_slot_free(sked_worker *w, const sked_job *job);
/* worker.c: start the jobs waiting for a slot while slots are free (the
 * executor's done callback, after freeing one). */
void sked_worker_start_pending(sked_worker *w);
/* The executor's callbacks (ctx: the worker). */
void sked_worker_on_started(void *ctx, sked_job *job, sked_walltime at);
void sked_worker_on_done(void *ctx, sked_job *job, const sked_job_result *res);

#endif
