/*
 * queue.h - the message queue between schedulers and workers.
 *
 * Like the store (store.h), a queue backend is a versioned table of
 * function pointers found by URL scheme: "mem:" (in-process, the embedded
 * default) and "amqp://..." / "amqps://..." (RabbitMQ quorum queues).  The
 * core calls the sked_queue_* wrappers, never the table.
 *
 * Semantics every backend keeps (tests/backend/test_queue.c checks them):
 *   - publish returns 0 only once the message is safely held by the queue
 *     (RabbitMQ: publisher-confirmed); on error it may or may not have been
 *     enqueued (at-least-once: callers may publish again);
 *   - queues are named; a message goes to exactly one consumer of its queue
 *     at a time; order is FIFO per queue for first deliveries;
 *   - a consumer holds at most `prefetch` unacknowledged deliveries;
 *   - ack removes a delivery for good; nack with requeue puts it back at the
 *     head (redelivered = 1), without requeue drops it;
 *   - when a consumer closes (or its connection dies) with deliveries still
 *     unacknowledged, they are redelivered to other consumers (redelivered=1);
 *   - ack and nack may be called from any thread; one consumer's next() is
 *     called by one thread at a time; consumer_close must not overlap
 *     next/ack/nack on the same consumer;
 *   - a consumer_wake that comes while no next() waits makes the following
 *     next() return SKED_EAGAIN at once (wakes are never lost: set a stop
 *     flag, wake, and the loop sees the flag);
 *   - queue names are 1-127 bytes without control characters, prefetch is
 *     1..65535; a tag means something only on the consumer that got it.
 * A RabbitMQ queue partitioned by its URL (partitions=N) keeps all of
 * these but FIFO and the requeued message's place at the head (per
 * partition only) and prefetch (at most max(prefetch, N)): queue_amqp.c.
 *
 * "mem:" is the process's default in-process broker; "mem:NAME" another,
 * separate one.  Every open of the same URL in a process reaches the same
 * queues.
 *
 * Change procedure: append methods, bump SKED_QUEUE_OPS_VERSION, wrappers
 * return SKED_ENOTSUP for older backends, extend the conformance suite.
 */
#ifndef SKED_QUEUE_H
#define SKED_QUEUE_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

#define SKED_QUEUE_OPS_VERSION 2
#define SKED_QUEUE_NAME_MAX 127
/* Queues named so are one process's inbox: a broker may delete one (and
 * its messages) about a minute after its last consumer went away. */
#define SKED_QUEUE_INBOX_PREFIX "sked.inbox."

typedef struct sked_queue sked_queue;
typedef struct sked_consumer sked_consumer;

typedef struct sked_delivery {
    uint64_t tag;              /* for ack/nack on the consumer that got it */
    char queue[SKED_QUEUE_NAME_MAX + 1];
    char *body;                /* malloc'ed, NUL-terminated; caller frees  */
    size_t len;
    int redelivered;           /* delivered before and not acknowledged    */
} sked_delivery;

/* One message of a publish_batch. */
typedef struct sked_message {
    const char *queue;
    const void *body;
    size_t len;
    int result;                /* out: 0 once held by the queue, or an error */
} sked_message;

typedef struct sked_queue_ops {
    int version;
    const char *name;          /* "mem", "amqp" */
    const char *scheme;        /* URL scheme without ':' */

    int (*open)(const char *url, sked_queue **out, sked_err *err);
    void (*close)(sked_queue *q);      /* consumers must be closed first */
    int (*ping)(sked_queue *q, sked_err *err);

    /* Publish body[0..len) to queue (created on first use).  See above. */
    int (*publish)(sked_queue *q, const char *queue, const void *body,
                   size_t len, sked_err *err);

    int (*consumer_open)(sked_queue *q, const char *queue, int prefetch,
                         sked_consumer **out, sked_err *err);
    /* The next delivery, waiting up to timeout_us (0: do not wait; <0:
     * forever, until sked_queue_consumer_wake).  SKED_EAGAIN when none came
     * in time or the wait was woken; *out is then untouched. */
    int (*consumer_next)(sked_consumer *c, int64_t timeout_us,
                         sked_delivery *out, sked_err *err);
    /* Make a consumer_next in progress on c return SKED_EAGAIN now. */
    void (*consumer_wake)(sked_consumer *c);
    int (*ack)(sked_consumer *c, uint64_t tag, sked_err *err);
    int (*nack)(sked_consumer *c, uint64_t tag, int requeue, sked_err *err);
    /* Close; its unacknowledged deliveries go back to the queue. */
    void (*consumer_close)(sked_consumer *c);

    /* Messages ready and delivered-but-unacknowledged in queue. */
    int (*depth)(sked_queue *q, const char *queue, int64_t *ready,
                 int64_t *unacked, sked_err *err);

    /* Version 2.  Publish n messages with publish's semantics each, in
     * flight together (one round of confirms, not n).  Sets every
     * msgs[i].result; returns 0 when all were published, else the first
     * error (err describes it).  The wrapper publishes one by one for a
     * backend without it. */
    int (*publish_batch)(sked_queue *q, sked_message *msgs, size_t n,
                         sked_err *err);
} sked_queue_ops;

struct sked_queue {
    const sked_queue_ops *ops;
};
struct sked_consumer {
    const sked_queue_ops *ops;
};

int sked_queue_open(const char *url, sked_queue **out, sked_err *err);
void sked_queue_close(sked_queue *q);
int sked_queue_ping(sked_queue *q, sked_err *err);
int sked_queue_publish(sked_queue *q, const char *queue, const void *body,
                       size_t len, sked_err *err);
int sked_queue_publish_batch(sked_queue *q, sked_message *msgs, size_t n,
                             sked_err *err);
int sked_queue_consumer_open(sked_queue *q, const char *queue, int prefetch,
                             sked_consumer **out, sked_err *err);
int sked_queue_consumer_next(sked_consumer *c, int64_t timeout_us,
                             sked_delivery *out, sked_err *err);
void sked_queue_consumer_wake(sked_consumer *c);
int sked_queue_ack(sked_consumer *c, uint64_t tag, sked_err *err);
int sked_queue_nack(sked_consumer *c, uint64_t tag, int requeue, sked_err *err);
void sked_queue_consumer_close(sked_consumer *c);
int sked_queue_depth(sked_queue *q, const char *queue, int64_t *ready,
                     int64_t *unacked, sked_err *err);

/* Free a delivery's body and clear it. */
void sked_delivery_deinit(sked_delivery *d);

extern const sked_queue_ops sked_queue_mem_ops;
/* RabbitMQ (queue_amqp*.c): the same backend under "amqp" and "amqps". */
extern const sked_queue_ops sked_queue_amqp_ops;
extern const sked_queue_ops sked_queue_amqps_ops;

#endif
