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
 * settled once every job of it is: run and reported, reported back
 * (returned), or found a duplicate - acked then, or nacked back to the
 * queue (requeue) when one of them could not start or was killed by this
 * worker's stop.  job->user of each job it runs points to it. */
typedef struct slot_ref {
    sked_consumer *consumer;
    uint64_t tag;
    int left;                        /* (mu) jobs not settled yet       */
    int requeue;                     /* (mu) settle with nack(requeue)  */
} slot_ref;

typedef struct running {
    char run_id[SKED_ID_LEN + 1];
    int attempt;
    struct running *next;
} running;

/* An event to publish, and the delivery to settle once it is out. */
typedef struct outbox_item {
    char *text;                      /* NULL: nothing to publish        */
    size_t len;
    sked_consumer *consumer;         /* NULL: nothing to settle         */
    uint64_t tag;
    int requeue;                     /* settle with nack(requeue)       */
    char run_id[SKED_ID_LEN + 1];    /* the event's run and attempt     */
    int run_attempt;
    int finished_with_start;         /* a finished event carrying its
                                        start: a queued started one of
                                        the same attempt is dropped   */
    struct outbox_item *next;
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
    pthread_cond_t cond;               /* a slot freed, or stop */
    int busy, stop;
    running *runs;
};

/* worker_outbox.c.  Publish one event now (heartbeats), retrying briefly. */
void sked_worker_publish_event(sked_worker *w, const sked_event *e);
/* Queue an event (may be NULL) and the settlement of delivery (c, tag)
 * (c may be NULL; requeue: nack it back) for the outbox thread. */
void sked_worker_outbox_put(sked_worker *w, const sked_event *e, sked_consumer *c,
                            uint64_t tag, int requeue);
void *sked_worker_outbox_main(void *arg);
/* One job of delivery ref is settled, after event e (may be NULL) of it;
 * requeue: the delivery must go back to the queue.  The last one queues
 * the delivery's settlement behind e, and frees ref. */
void sked_worker_settle_job(sked_worker *w, slot_ref *ref, const sked_event *e, int requeue);
/* The executor's callbacks (ctx: the worker). */
void sked_worker_on_started(void *ctx, sked_job *job, sked_walltime at);
void sked_worker_on_done(void *ctx, sked_job *job, const sked_job_result *res);

#endif
