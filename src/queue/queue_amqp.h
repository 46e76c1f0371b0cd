/*
 * queue_amqp.h - private to the RabbitMQ queue backend (queue_amqp*.c).
 *
 * The backend is split by job: queue_amqp.c implements the sked_queue_ops
 * methods the callers' threads run; queue_amqp_io.c is the one I/O thread
 * per handle that owns the connection (its loop, sending, losing the
 * connection - and why it is built that way); queue_amqp_conn.c connects
 * and makes broker round trips; queue_amqp_frames.c handles what the broker
 * sends; queue_amqp_url.c parses the URL.  This header is the shared state
 * between them; nothing outside src/queue/queue_amqp*.c includes it.
 *
 * Threading (the why is in queue_amqp_io.c): every field below says who
 * may touch it.  "lock" means h->lock; "io" means the handle's I/O thread
 * only, without the lock; "const" means set before the I/O thread starts.
 */
#ifndef SKED_QUEUE_AMQP_H
#define SKED_QUEUE_AMQP_H

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <amqp.h>

#include "core/clock.h"
#include "queue/queue.h"

/* ---- configuration (queue_amqp_url.c) ---------------------------------- */

#define AQ_HOST_MAX 255
#define AQ_CRED_MAX 255
#define AQ_PATH_MAX 1024
#define AQ_NODES_MAX 16

typedef struct anode {
    char host[AQ_HOST_MAX + 1];      /* name or address, no brackets */
    int port;
} anode;

typedef struct aconf {
    int tls;                           /* amqps:                        */
    anode nodes[AQ_NODES_MAX];
    int nnodes;
    char user[AQ_CRED_MAX + 1];
    char pass[AQ_CRED_MAX + 1];
    char vhost[AQ_CRED_MAX + 1];
    int heartbeat_s;                   /* 0: no heartbeats              */
    int64_t connect_timeout_us;        /* per node: TCP + AMQP handshake */
    int64_t timeout_us;                /* publish confirm, consumer open */
    int64_t rpc_timeout_us;            /* one broker round trip          */
    char cacert[AQ_PATH_MAX + 1];    /* amqps only                    */
    char cert[AQ_PATH_MAX + 1];
    char key[AQ_PATH_MAX + 1];
    int verify;                        /* check the broker's certificate */
    int partitions;                    /* broker queues per sked queue   */
} aconf;

/* Parse an amqp:// or amqps:// URL (grammar in queue_amqp_url.c) into
 * *conf.  On error returns SKED_EINVAL with the reason in err and *conf is
 * unspecified. */
int sked_queue_amqp_parse_url(const char *url, aconf *conf,
                              sked_err *err);

/* ---- shared state ------------------------------------------------------ */

/* Queue names on the broker: this prefix + the sked queue name. */
#define AQ_QUEUE_PREFIX "sked.q."

/* With the URL's partitions=N (N > 1) a sked queue NAME is N quorum
 * queues: "sked.q.NAME" (partition 0, so that N = 1 is the plain layout)
 * and "sked.q.NAME~1" .. "sked.q.NAME~(N-1)".  '~' is outside the task
 * queue alphabet (A-Z a-z 0-9 . _ -), so no sked queue's name is another's
 * partition.  Publishes take the partitions in turn; a consumer consumes
 * from all of them.  Inboxes (one consumer each) are never partitioned. */
#define AQ_PARTITIONS_MAX 64
/* A partition's name below AQ_QUEUE_PREFIX: the sked name + "~63" at most. */
#define AQ_NAME_MAX (SKED_QUEUE_NAME_MAX + 3)
/* Room for a broker name with its prefix and NUL. */
#define AQ_BROKER_NAME_CAP (sizeof AQ_QUEUE_PREFIX + AQ_NAME_MAX)

/* Publishers' turns over the partitions are counted per queue name hash:
 * a counter shared by all queues would give a queue the same partition
 * every time when batches mix queues in step with N. */
#define AQ_TURNS 256

/* How many partitions sked queue `queue` has under conf. */
static inline int aq_partitions(const aconf *conf, const char *queue)
{
    if (strncmp(queue, SKED_QUEUE_INBOX_PREFIX, strlen(SKED_QUEUE_INBOX_PREFIX)) == 0)
        return 1;
    return conf->partitions > 1 ? conf->partitions : 1;
}

/* Partition k's name below AQ_QUEUE_PREFIX (out: AQ_NAME_MAX + 1 bytes). */
static inline void aq_part_name(const char *queue, int k, char *out, size_t cap)
{
    if (k == 0)
        snprintf(out, cap, "%s", queue);
    else
        snprintf(out, cap, "%s~%u", queue, (unsigned)k % AQ_PARTITIONS_MAX); /* k < 64 */
}

/* Fixed channels: declarations and passive declarations (a failed passive
 * declare closes its channel, so it must not be a busy one), publishing in
 * confirm mode, and the first consumer channel. */
#define CH_CONTROL 1
#define CH_PUBLISH 2
#define CH_FIRST_CONSUMER 3

/* A user-visible delivery tag: the subscription generation in the top 24
 * bits, the broker's delivery tag on that channel in the low 40.  A tag
 * from an earlier subscription (before a reconnect) is then recognisably
 * stale, and never acked on the new channel by mistake. */
#define TAG_DTAG_BITS 40
#define TAG_DTAG_MASK ((UINT64_C(1) << TAG_DTAG_BITS) - 1)
#define TAG_SGEN_MASK ((UINT32_C(1) << 24) - 1)

typedef struct ahandle ahandle;
typedef struct aconsumer aconsumer;

/* A message being published.  Allocated by the publisher; then in exactly
 * one place: h->unsent (QUEUED: the publisher may take it back), in the I/O
 * thread's hands or h->flight (INFLIGHT: only the I/O thread frees it, and
 * only once the publisher has abandoned it), or DONE (the publisher frees
 * it). */
enum { PUB_QUEUED, PUB_INFLIGHT, PUB_DONE };

typedef struct apub {
    struct apub *prev, *next;          /* lock                          */
    int state;                         /* lock                          */
    int abandoned;                     /* lock: publisher gave up       */
    int returned;                      /* io: broker returned it        */
    int channel_losses;                /* io: publish channel closed    */
    uint64_t seq;                      /* const: message-id, per handle */
    uint64_t dtag;                     /* lock: tag on the channel      */
    int rc;                            /* lock, when DONE               */
    char msg[200];
    pthread_cond_t cond;               /* signalled when DONE           */
    char queue[AQ_NAME_MAX + 1];       /* const: its partition's name   */
    size_t len;
    char body[];
} apub;

typedef struct apub_list {
    apub *head, *tail;
} apub_list;

/* A delivery received for a consumer, not yet returned by next(). */
typedef struct adelivery {
    struct adelivery *next;
    uint64_t dtag;
    int redelivered;
    char *body;                        /* malloc'ed, len + NUL          */
    size_t len;
} adelivery;

/* The delivery tags a consumer has handed out and not yet settled: an
 * open-addressing hash set (linear probing, backward-shift deletion). */
typedef struct tagset {
    uint64_t *slot;                    /* 0 = empty (tags start at 1)   */
    size_t cap, n;                     /* cap: 0 or a power of two      */
} tagset;

/* Content (header + body frames) being assembled on a channel. */
typedef struct arx {
    int active;                        /* a method announced content    */
    int header_seen;
    int is_return;                     /* basic.return, not a delivery  */
    int failed;                        /* could not allocate the body   */
    uint64_t dtag;
    int redelivered;
    uint64_t return_seq;               /* from message-id; 0 unknown    */
    char *body;
    size_t len, got;
} arx;

/* A command for the I/O thread, queued on h->cmds. */
enum { CMD_ACK, CMD_NACK, CMD_CLOSE, CMD_DEPTH };

typedef struct acmd {
    struct acmd *next;
    int kind;
    aconsumer *c;                      /* ACK, NACK, CLOSE              */
    uint32_t sgen;                     /* ACK, NACK: c's at the time    */
    uint64_t dtag;
    int requeue;
    int covered;                       /* ACK: by a multiple ack (io)   */
    /* CLOSE and DEPTH: the caller waits on `cond` for `done`; the I/O
     * thread always completes these, connected or not. */
    int done;
    pthread_cond_t *cond;
    const char *queue;                 /* DEPTH                         */
    int64_t ready;
    int rc;
    sked_err *err;
} acmd;

struct aconsumer {
    sked_consumer base;
    ahandle *h;                        /* const                         */
    aconsumer *next;                   /* lock: in h->consumers         */
    char queue[SKED_QUEUE_NAME_MAX + 1]; /* const                       */
    int prefetch;                      /* const                         */

    /* lock */
    uint16_t channel;                  /* while subscribed, else 0      */
    uint32_t sgen;                     /* current subscription          */
    uint32_t first_sgen;               /* its first one                 */
    int subscribed;                    /* consuming on `channel`        */
    int need_sub;                      /* I/O thread should subscribe   */
    int busy;                          /* I/O thread subscribing it     */
    int ever_subscribed;
    int opening;                       /* consumer_open waits for it    */
    int sub_failed;                    /* ...and the broker refused it  */
    char sub_msg[200];
    sked_monotime retry_at;            /* resubscribe not before        */
    int closing, closed;
    adelivery *head, *tail;            /* received, not handed out      */
    int64_t nbuf;
    tagset out;                        /* handed out, not settled       */
    pthread_cond_t cond;               /* deliveries, wakes, open, close */
    int wake_pending;

    arx rx;                            /* io                            */
};

struct ahandle {
    sked_queue base;
    aconf conf;                    /* const                         */
    pthread_t io;                      /* const                         */
    int evfd;                          /* const: wakes the I/O thread   */

    pthread_mutex_t lock;
    pthread_cond_t state_cond;         /* lock: connected, first_round  */
    int stop;                          /* lock: close() was called      */
    int kicked;                        /* lock: evfd written, not read  */
    int connected;                     /* lock                          */
    int first_round;                   /* lock: first connect attempt over */
    char last_error[256];              /* lock                          */
    apub_list unsent;                  /* lock: QUEUED, FIFO            */
    apub_list flight;                  /* lock: sent, by dtag           */
    acmd *cmd_head, *cmd_tail;         /* lock                          */
    aconsumer *consumers;              /* lock                          */
    uint32_t sgen_counter;             /* lock                          */
    uint64_t next_seq;                 /* lock                          */
    uint32_t part_turn[AQ_TURNS];      /* lock: next partition, by name hash */

    /* io */
    amqp_connection_state_t conn;
    int node;                          /* nodes[] index of conn          */
    int ctl_open;                      /* CH_CONTROL is open             */
    uint64_t pub_dtag;                 /* last tag used on CH_PUBLISH    */
    uint16_t channel_max, next_channel;
    char **declared;                   /* queues declared on this conn   */
    size_t ndeclared, capdeclared;
    arx pub_rx;                        /* basic.return content           */
    sked_monotime last_rx;             /* last time the socket had data  */
    sked_monotime last_read;           /* last call into the library     */
    char io_error[256];                /* why the connection failed      */
};

/* ---- helpers shared by the backend's files ----------------------------- */

#define AQ_MSEC SKED_USEC_PER_MSEC
#define RESUBSCRIBE_RETRY_US (1000 * AQ_MSEC)  /* after a refused subscribe */

/* What a synchronous method's reply means: fine; the broker refused and
 * closed the channel (the connection is fine); the connection is unusable
 * (h->io_error says why). */
enum { RPC_OK = 0, RPC_CHANNEL = 1, RPC_CONN = -1 };

static inline void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n, size);
    if (p == NULL)
        abort();
    return p;
}

static inline void pl_push_tail(apub_list *l, apub *p)
{
    p->next = NULL;
    p->prev = l->tail;
    if (l->tail)
        l->tail->next = p;
    else
        l->head = p;
    l->tail = p;
}

static inline void pl_push_head(apub_list *l, apub *p)
{
    p->prev = NULL;
    p->next = l->head;
    if (l->head)
        l->head->prev = p;
    else
        l->tail = p;
    l->head = p;
}

static inline void pl_remove(apub_list *l, apub *p)
{
    if (p->prev)
        p->prev->next = p->next;
    else
        l->head = p->next;
    if (p->next)
        p->next->prev = p->prev;
    else
        l->tail = p->prev;
    p->prev = p->next = NULL;
}

static inline void pub_free(apub *p)
{
    pthread_cond_destroy(&p->cond);
    free(p);
}

/* A message's outcome: to its publisher, or into the bin when the
 * publisher gave up on it.  Caller holds the lock and has unlinked p. */
static inline void pub_finish(apub *p, int rc, const char *msg)
{
    if (p->abandoned) {
        pub_free(p);
        return;
    }
    p->state = PUB_DONE;
    p->rc = rc;
    snprintf(p->msg, sizeof p->msg, "%s", msg ? msg : "");
    pthread_cond_signal(&p->cond);
}

static inline void rx_free(arx *rx)
{
    free(rx->body);
    memset(rx, 0, sizeof *rx);
}

/* ---- queue_amqp_io.c: the I/O thread ----------------------------------- */

/* The I/O thread's body; arg is the handle. */
void *sked_queue_amqp_io_main(void *arg);

/* Wake the I/O thread (caller holds h->lock). */
void sked_queue_amqp_kick(ahandle *h);

/* Free a consumer's buffered deliveries and forget its handed-out tags
 * (caller holds h->lock). */
void sked_queue_amqp_consumer_reset(aconsumer *c);

/* A fresh subscription generation, never 0 (caller holds h->lock). */
uint32_t sked_queue_amqp_next_sgen(ahandle *h);

/* The consumer subscribed on channel ch, or NULL (caller holds h->lock).
 * It stays valid on the I/O thread without the lock: only that thread
 * frees a subscribed consumer. */
aconsumer *sked_queue_amqp_consumer_on(ahandle *h, amqp_channel_t ch);

/* c's subscription is gone; it subscribes again from retry_at (I/O
 * thread, holding h->lock). */
void sked_queue_amqp_unsubscribed(ahandle *h, aconsumer *c,
                                  sked_monotime retry_at);

/* ---- queue_amqp_conn.c: connecting and round trips (I/O thread) -------- */

/* Record why the connection is unusable in h->io_error; returns RPC_CONN. */
int sked_queue_amqp_fail(ahandle *h, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Try every node once, starting after the last one used; 0 when
 * connected (h->conn set, channels open), -1 with h->io_error. */
int sked_queue_amqp_connect(ahandle *h);

/* Declare queue unless this connection did; forget one (NULL: all). */
int sked_queue_amqp_ensure_declared(ahandle *h, const char *queue, char *msg,
                                    size_t cap);
void sked_queue_amqp_forget_declared(ahandle *h, const char *queue);

/* Open CH_PUBLISH in confirm mode; close a channel. */
int sked_queue_amqp_reopen_publish(ahandle *h, char *msg, size_t cap);
int sked_queue_amqp_close_channel(ahandle *h, amqp_channel_t ch);

/* Subscribe every consumer that needs it; -1 when the connection failed. */
int sked_queue_amqp_subscribe_all(ahandle *h);

/* Carry out a CMD_CLOSE or CMD_DEPTH and complete it; -1 when the
 * connection failed on the way (the command is completed all the same). */
int sked_queue_amqp_close_consumer(ahandle *h, acmd *cmd);
int sked_queue_amqp_depth_query(ahandle *h, acmd *cmd);

/* ---- queue_amqp_frames.c: what the broker sends (I/O thread) ----------- */

/* Handle the frames already received, without blocking; -1 when the
 * connection failed. */
int sked_queue_amqp_read_frames(ahandle *h);

/* ---- queue_amqp.c: the tag set ----------------------------------------- */

void sked_queue_amqp_tagset_add(tagset *s, uint64_t tag);
int sked_queue_amqp_tagset_del(tagset *s, uint64_t tag);
void sked_queue_amqp_tagset_clear(tagset *s);
/* The smallest tag in s; UINT64_MAX when s is empty. */
uint64_t sked_queue_amqp_tagset_min(const tagset *s);

#endif
