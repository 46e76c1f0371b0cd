/*
 * queue_amqp.c - the RabbitMQ queue backend: "amqp://..." and "amqps://...".
 *
 * What the distributed roles run on: schedulers publish due runs, workers
 * consume them and publish their events, each process with its own
 * connection.  A sked queue NAME is the durable quorum queue "sked.q.NAME"
 * (x-queue-type=quorum, not exclusive, not auto-delete), declared on first
 * use; messages are persistent, publishes wait for the publisher confirm
 * (on a quorum queue: fsynced on a majority), consumers ack manually with
 * basic.qos prefetch.  The URL may list several nodes of a cluster; the
 * handle reconnects across them (queue_amqp_url.c has the grammar).  With
 * the URL's partitions=N a sked queue is N quorum queues, published to in
 * turn and all consumed (queue_amqp.h): a quorum queue is one Raft group,
 * and N of them spread its work over the broker's cores and nodes.
 *
 * This file is the callers' side of every method: argument checks (the same
 * answers as "mem:"), handing work to the handle's I/O thread and waiting
 * for it.  queue_amqp_io.c owns the connection and explains the threading.
 *
 * What the semantics of queue.h become here:
 *   - publish returns 0 once RabbitMQ confirmed the message; publish_batch
 *     sends all its messages before waiting for the first confirm.  It waits up
 *     to the URL's timeout (30 s) across reconnects; unconfirmed messages
 *     are republished after a reconnect, so a message may arrive twice.
 *     Any number of threads may publish at once: their messages are in
 *     flight together, one confirm stream answers them all;
 *   - consumer_open returns once subscribed, or with the broker's refusal;
 *     when the broker cannot be reached it returns a consumer that
 *     subscribes as soon as it can;
 *   - a delivery tag is only good for the subscription that gave it: after
 *     a reconnect (or the broker closing the consumer's channel) the broker
 *     redelivers the unacknowledged messages itself, and ack/nack of an
 *     older tag fail with SKED_EUNAVAIL without sending anything;
 *   - ack and nack return once the I/O thread has the settlement queued;
 *     a connection lost before it reaches the broker means a redelivery,
 *     which at-least-once allows.  Acks queued together go out as one
 *     basic.ack with `multiple` where nothing below them is still held
 *     (queue_amqp_io.c, fold_acks): a quorum queue logs one settle
 *     command for them instead of one each;
 *   - depth: `ready` is the broker's count of ready messages (a passive
 *     queue.declare; 0 for a queue that does not exist yet); `unacked` is
 *     what this handle's own consumers hold (delivered to them and not
 *     settled, buffered or handed out).  AMQP has no way to count other
 *     processes' unacknowledged deliveries; the management API does, and
 *     that is for dashboards, not for this interface;
 *   - partitioned (partitions=N > 1): FIFO, and a requeued message's
 *     place at the head, hold per partition only, not across them; a
 *     consumer's prefetch is shared out over the partitions (at least 1
 *     each, so it holds at most max(prefetch, N)); depth's `ready` is the
 *     sum over the partitions, one passive declare each;
 *   - ping: 0 while connected; otherwise SKED_EUNAVAIL with the last
 *     connection error (the I/O thread keeps reconnecting meanwhile).
 */
#include "queue/queue_amqp.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

/* AMQP's basic.qos prefetch count is 16 bits. */
#define PREFETCH_MAX 65535

/* RabbitMQ 3.10's default max_message_size; a bigger message would get the
 * publishing channel closed. */
#define BODY_MAX ((size_t)128 << 20)

/* Timeouts longer than this (100 years) mean "forever". */
#define FOREVER_US (INT64_C(100) * 365 * 86400 * SKED_USEC_PER_SEC)

/* ---- small helpers ----------------------------------------------------- */

static void cond_init_mono(pthread_cond_t *cond)
{
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(cond, &attr);
    pthread_condattr_destroy(&attr);
}

/* Queue names: 1..SKED_QUEUE_NAME_MAX bytes, no control characters. */
static int check_name(const char *name, sked_err *err)
{
    if (name == NULL || name[0] == '\0')
        return sked_err_set(err, SKED_EINVAL, "queue", 0, "empty queue name");
    size_t n = strnlen(name, SKED_QUEUE_NAME_MAX + 1);
    if (n > SKED_QUEUE_NAME_MAX)
        return sked_err_set(err, SKED_EINVAL, "queue", 0,
                            "queue name is longer than %d bytes",
                            SKED_QUEUE_NAME_MAX);
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)name[i];
        if (ch < 0x20 || ch == 0x7f)
            return sked_err_set(err, SKED_EINVAL, "queue", (int)i + 1,
                                "queue name has a control character");
    }
    return 0;
}

static void cmd_push(ahandle *h, acmd *cmd)
{
    cmd->next = NULL;
    if (h->cmd_tail)
        h->cmd_tail->next = cmd;
    else
        h->cmd_head = cmd;
    h->cmd_tail = cmd;
    sked_queue_amqp_kick(h);
}

/* ---- the tag set ------------------------------------------------------- */

static size_t tag_home(uint64_t tag, size_t mask)
{
    return (size_t)((tag * UINT64_C(0x9E3779B97F4A7C15)) >> 32) & mask;
}

static void tagset_grow(tagset *s)
{
    tagset bigger = {xcalloc(s->cap ? 2 * s->cap : 16, sizeof(uint64_t)),
                     s->cap ? 2 * s->cap : 16, 0};
    for (size_t i = 0; i < s->cap; i++)
        if (s->slot[i] != 0)
            sked_queue_amqp_tagset_add(&bigger, s->slot[i]);
    free(s->slot);
    *s = bigger;
}

void sked_queue_amqp_tagset_add(tagset *s, uint64_t tag)
{
    if (2 * (s->n + 1) > s->cap)
        tagset_grow(s);
    size_t mask = s->cap - 1, i = tag_home(tag, mask);
    while (s->slot[i] != 0)
        i = (i + 1) & mask;
    s->slot[i] = tag;
    s->n++;
}

/* Remove tag; 0 when it was not there. */
int sked_queue_amqp_tagset_del(tagset *s, uint64_t tag)
{
    if (s->n == 0 || tag == 0)
        return 0;
    size_t mask = s->cap - 1, i = tag_home(tag, mask);
    while (s->slot[i] != tag) {
        if (s->slot[i] == 0)
            return 0;
        i = (i + 1) & mask;
    }
    /* Backward-shift: pull later members of the probe run into the hole
     * when the hole lies between their home and where they sit. */
    for (size_t j = (i + 1) & mask; s->slot[j] != 0; j = (j + 1) & mask) {
        size_t home = tag_home(s->slot[j], mask);
        if (((j - home) & mask) >= ((j - i) & mask)) {
            s->slot[i] = s->slot[j];
            i = j;
        }
    }
    s->slot[i] = 0;
    s->n--;
    return 1;
}

uint64_t sked_queue_amqp_tagset_min(const tagset *s)
{
    uint64_t min = UINT64_MAX;
    for (size_t i = 0; i < s->cap && s->n > 0; i++)
        if (s->slot[i] != 0 && s->slot[i] < min)
            min = s->slot[i];
    return min;
}

void sked_queue_amqp_tagset_clear(tagset *s)
{
    free(s->slot);
    memset(s, 0, sizeof *s);
}

/* ---- the handle -------------------------------------------------------- */

static void handle_free(ahandle *h)
{
    if (h->evfd >= 0)
        close(h->evfd);
    pthread_cond_destroy(&h->state_cond);
    pthread_mutex_destroy(&h->lock);
    free(h);
}

static void amqp_close_handle(sked_queue *base)
{
    ahandle *h = (ahandle *)base;
    pthread_mutex_lock(&h->lock);
    h->stop = 1;
    sked_queue_amqp_kick(h);
    pthread_mutex_unlock(&h->lock);
    pthread_join(h->io, NULL);
    handle_free(h);
}

static int amqp_open(const char *url, sked_queue **out, sked_err *err)
{
    *out = NULL;
    ahandle *h = xcalloc(1, sizeof *h);
    h->evfd = -1;
    pthread_mutex_init(&h->lock, NULL);
    cond_init_mono(&h->state_cond);
    int rc = sked_queue_amqp_parse_url(url, &h->conf, err);
    if (rc != 0) {
        handle_free(h);
        return rc;
    }
    h->base.ops = &sked_queue_amqp_ops;
    h->node = -1;
    h->evfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (h->evfd < 0) {
        rc = sked_err_set(err, SKED_EIO, NULL, 0, "eventfd: %s",
                          strerror(errno));
        handle_free(h);
        return rc;
    }
    if (pthread_create(&h->io, NULL, sked_queue_amqp_io_main, h) != 0) {
        handle_free(h);
        return sked_err_set(err, SKED_EIO, NULL, 0,
                            "cannot start the RabbitMQ I/O thread");
    }
    /* The first round of connection attempts decides: a URL that reaches
     * no node is an error now, not a silent retry loop. */
    pthread_mutex_lock(&h->lock);
    while (!h->first_round)
        pthread_cond_wait(&h->state_cond, &h->lock);
    int ok = h->connected;
    char why[sizeof h->last_error];
    snprintf(why, sizeof why, "%s", h->last_error);
    pthread_mutex_unlock(&h->lock);
    if (!ok) {
        amqp_close_handle(&h->base);
        return sked_err_set(err, SKED_EUNAVAIL, "queue", 0,
                            "cannot connect to RabbitMQ: %s", why);
    }
    *out = &h->base;
    return 0;
}

static int amqp_ping(sked_queue *base, sked_err *err)
{
    ahandle *h = (ahandle *)base;
    pthread_mutex_lock(&h->lock);
    int ok = h->connected;
    char why[sizeof h->last_error];
    snprintf(why, sizeof why, "%s", h->last_error);
    pthread_mutex_unlock(&h->lock);
    if (ok)
        return 0;
    return sked_err_set(err, SKED_EUNAVAIL, NULL, 0,
                        "not connected to RabbitMQ (reconnecting): %s", why);
}

/* ---- publishing -------------------------------------------------------- */

/* A message copied for the I/O thread, or NULL with err set.  Its queue
 * (the partition's name) is set when it is queued. */
static apub *pub_new(const sked_message *m, sked_err *err)
{
    int rc = check_name(m->queue, err);
    if (rc != 0)
        return NULL;
    if (m->body == NULL && m->len > 0) {
        sked_err_set(err, SKED_EINVAL, "body", 0, "NULL body of %zu bytes", m->len);
        return NULL;
    }
    if (m->len > BODY_MAX) {
        sked_err_set(err, SKED_ETOOBIG, "body", 0,
                     "message of %zu bytes (RabbitMQ takes at most %zu)", m->len, BODY_MAX);
        return NULL;
    }
    apub *p = malloc(sizeof *p + m->len + 1);
    if (p == NULL) {
        sked_err_set(err, SKED_ENOMEM, "body", 0, "no memory for a message of %zu bytes", m->len);
        return NULL;
    }
    memset(p, 0, sizeof *p);
    cond_init_mono(&p->cond);
    p->len = m->len;
    if (m->len > 0)
        memcpy(p->body, m->body, m->len);
    p->body[m->len] = '\0';
    return p;
}

/* Every message goes out at once; then wait for each one's confirm, all
 * against one deadline.  Under h->lock. */
static int pub_wait(ahandle *h, apub *p, sked_message *m, const struct timespec *deadline,
                  sked_err *err)
{
    while (p->state != PUB_DONE &&
           pthread_cond_timedwait(&p->cond, &h->lock, deadline) != ETIMEDOUT)
        ;
    int secs = (int)(h->conf.timeout_us / SKED_USEC_PER_SEC), rc;
    if (p->state == PUB_DONE) {
        rc = p->rc;
        if (rc != 0)
            sked_err_set(err, rc, NULL, 0, "publish to %s: %s", m->queue, p->msg);
        pub_free(p);
    } else if (p->state == PUB_QUEUED) {
        /* Never sent: take it back, nothing was published. */
        pl_remove(&h->unsent, p);
        rc = sked_err_set(err, SKED_EUNAVAIL, NULL, 0,
                          "publish to %s: not sent within %d s, RabbitMQ "
                          "unreachable: %s", m->queue, secs, h->last_error);
        pub_free(p);
    } else {
        /* Sent but unconfirmed: the I/O thread frees it when it is settled. */
        p->abandoned = 1;
        rc = sked_err_set(err, SKED_EUNAVAIL, NULL, 0,
                          "publish to %s: no confirm within %d s; it may or may "
                          "not be queued", m->queue, secs);
    }
    return rc;
}

/* The partition queue's next message goes to: each in turn (caller holds
 * h->lock). */
static int next_partition(ahandle *h, const char *queue)
{
    int parts = aq_partitions(&h->conf, queue);
    if (parts == 1)
        return 0;
    uint32_t hash = 2166136261u; /* FNV-1a */
    for (const unsigned char *p = (const unsigned char *)queue; *p; p++)
        hash = (hash ^ *p) * 16777619u;
    return (int)(h->part_turn[hash % AQ_TURNS]++ % (uint32_t)parts);
}

static int amqp_publish_batch(sked_queue *base, sked_message *msgs, size_t n,
                              sked_err *err)
{
    ahandle *h = (ahandle *)base;
    apub **ps = calloc(n ? n : 1, sizeof *ps);
    if (ps == NULL)
        return sked_err_set(err, SKED_ENOMEM, NULL, 0, "out of memory");
    int first = 0;
    for (size_t i = 0; i < n; i++) {
        sked_err e = {0};
        if ((ps[i] = pub_new(&msgs[i], &e)) == NULL) {
            msgs[i].result = e.code;
            if (first == 0) {
                first = e.code;
                if (err)
                    *err = e;
            }
        }
    }
    struct timespec deadline = sked_clock_timespec(sked_clock_mono_now() + h->conf.timeout_us);
    pthread_mutex_lock(&h->lock);
    for (size_t i = 0; i < n; i++) {
        if (ps[i] == NULL)
            continue;
        ps[i]->seq = ++h->next_seq;
        aq_part_name(msgs[i].queue, next_partition(h, msgs[i].queue), ps[i]->queue,
                     sizeof ps[i]->queue);
        ps[i]->state = PUB_QUEUED;
        pl_push_tail(&h->unsent, ps[i]);
    }
    sked_queue_amqp_kick(h);
    for (size_t i = 0; i < n; i++) {
        if (ps[i] == NULL)
            continue;
        sked_err e = {0};
        msgs[i].result = pub_wait(h, ps[i], &msgs[i], &deadline, &e);
        if (msgs[i].result != 0 && first == 0) {
            first = msgs[i].result;
            if (err)
                *err = e;
        }
    }
    pthread_mutex_unlock(&h->lock);
    free(ps);
    return first;
}

static int amqp_publish(sked_queue *base, const char *queue, const void *body,
                        size_t len, sked_err *err)
{
    sked_message m = {.queue = queue, .body = body, .len = len};
    return amqp_publish_batch(base, &m, 1, err);
}

/* ---- consumers --------------------------------------------------------- */

static void consumer_free(aconsumer *c)
{
    sked_queue_amqp_consumer_reset(c);
    free(c->rx.body);
    pthread_cond_destroy(&c->cond);
    free(c);
}

static void unlink_consumer(ahandle *h, aconsumer *c)
{
    aconsumer **pp = &h->consumers;
    while (*pp != NULL && *pp != c)
        pp = &(*pp)->next;
    if (*pp != NULL)
        *pp = c->next;
}

static int amqp_consumer_open(sked_queue *base, const char *queue,
                              int prefetch, sked_consumer **out,
                              sked_err *err)
{
    ahandle *h = (ahandle *)base;
    *out = NULL;
    int rc = check_name(queue, err);
    if (rc != 0)
        return rc;
    if (prefetch < 1 || prefetch > PREFETCH_MAX)
        return sked_err_set(err, SKED_EINVAL, "prefetch", 0,
                            "prefetch %d is not in 1..%d", prefetch,
                            PREFETCH_MAX);
    aconsumer *c = xcalloc(1, sizeof *c);
    c->base.ops = &sked_queue_amqp_ops;
    c->h = h;
    snprintf(c->queue, sizeof c->queue, "%s", queue);
    c->prefetch = prefetch;
    cond_init_mono(&c->cond);

    struct timespec deadline = sked_clock_timespec(sked_clock_mono_now() + h->conf.timeout_us);
    pthread_mutex_lock(&h->lock);
    c->sgen = c->first_sgen = sked_queue_amqp_next_sgen(h);
    c->need_sub = 1;
    c->next = h->consumers;
    h->consumers = c;
    sked_queue_amqp_kick(h);
    if (h->connected) {
        c->opening = 1;
        while (!c->subscribed && !c->sub_failed &&
               pthread_cond_timedwait(&c->cond, &h->lock, &deadline) !=
                   ETIMEDOUT)
            ;
        c->opening = 0;
    }
    if (c->sub_failed) {
        unlink_consumer(h, c);
        rc = sked_err_set(err, SKED_EIO, "queue", 0,
                          "RabbitMQ refused a consumer on %s: %s", queue,
                          c->sub_msg);
        pthread_mutex_unlock(&h->lock);
        consumer_free(c);
        return rc;
    }
    pthread_mutex_unlock(&h->lock);
    *out = &c->base;
    return 0;
}

static int amqp_consumer_next(sked_consumer *base, int64_t timeout_us,
                              sked_delivery *out, sked_err *err)
{
    aconsumer *c = (aconsumer *)base;
    ahandle *h = c->h;
    int forever = timeout_us < 0 || timeout_us >= FOREVER_US;
    struct timespec deadline = {0, 0};
    if (!forever && timeout_us > 0)
        deadline = sked_clock_timespec(sked_clock_mono_now() + timeout_us);

    pthread_mutex_lock(&h->lock);
    adelivery *d = NULL;
    int woken = 0, timed_out = timeout_us == 0;
    for (;;) {
        if (c->wake_pending) {
            woken = 1;
            break;
        }
        if (c->head != NULL) {
            d = c->head;
            c->head = d->next;
            if (c->head == NULL)
                c->tail = NULL;
            c->nbuf--;
            break;
        }
        if (timed_out)
            break;
        if (forever)
            pthread_cond_wait(&c->cond, &h->lock);
        else if (pthread_cond_timedwait(&c->cond, &h->lock, &deadline) ==
                 ETIMEDOUT)
            timed_out = 1;
    }
    c->wake_pending = 0;
    if (d == NULL) {
        pthread_mutex_unlock(&h->lock);
        return sked_err_set(err, SKED_EAGAIN, NULL, 0, "%s on queue %s",
                            woken ? "woken" : "no message", c->queue);
    }
    sked_queue_amqp_tagset_add(&c->out, d->dtag);
    out->tag = (uint64_t)c->sgen << TAG_DTAG_BITS | d->dtag;
    pthread_mutex_unlock(&h->lock);

    snprintf(out->queue, sizeof out->queue, "%s", c->queue);
    out->body = d->body;
    out->len = d->len;
    out->redelivered = d->redelivered;
    free(d);
    return 0;
}

/* A wake is never lost: with no next() in progress it is kept, and the
 * following next() returns SKED_EAGAIN at once. */
static void amqp_consumer_wake(sked_consumer *base)
{
    aconsumer *c = (aconsumer *)base;
    pthread_mutex_lock(&c->h->lock);
    c->wake_pending = 1;
    pthread_cond_broadcast(&c->cond);
    pthread_mutex_unlock(&c->h->lock);
}

static int settle(aconsumer *c, uint64_t tag, int kind, int requeue,
                  sked_err *err)
{
    ahandle *h = c->h;
    uint32_t sgen = (uint32_t)(tag >> TAG_DTAG_BITS);
    uint64_t dtag = tag & TAG_DTAG_MASK;
    pthread_mutex_lock(&h->lock);
    if (sgen == c->sgen && sked_queue_amqp_tagset_del(&c->out, dtag)) {
        acmd *cmd = xcalloc(1, sizeof *cmd);
        cmd->kind = kind;
        cmd->c = c;
        cmd->sgen = sgen;
        cmd->dtag = dtag;
        cmd->requeue = requeue;
        cmd_push(h, cmd);
        pthread_mutex_unlock(&h->lock);
        return 0;
    }
    /* A tag of this consumer's earlier subscription (a foreign tag that
     * happens to carry a generation from that span reads the same). */
    int stale = sgen != c->sgen && sgen >= c->first_sgen && sgen < c->sgen;
    pthread_mutex_unlock(&h->lock);
    if (stale)
        return sked_err_set(err, SKED_EUNAVAIL, "tag", 0,
                            "delivery %llu came before the connection to "
                            "RabbitMQ was lost; the broker redelivers it",
                            (unsigned long long)tag);
    return sked_err_set(err, SKED_EINVAL, "tag", 0,
                        "no unacknowledged delivery %llu on this consumer",
                        (unsigned long long)tag);
}

static int amqp_ack(sked_consumer *base, uint64_t tag, sked_err *err)
{
    return settle((aconsumer *)base, tag, CMD_ACK, 0, err);
}

static int amqp_nack(sked_consumer *base, uint64_t tag, int requeue,
                     sked_err *err)
{
    return settle((aconsumer *)base, tag, CMD_NACK, requeue != 0, err);
}

static void amqp_consumer_close(sked_consumer *base)
{
    aconsumer *c = (aconsumer *)base;
    ahandle *h = c->h;
    pthread_mutex_lock(&h->lock);
    c->closing = 1;
    c->need_sub = 0;
    if (c->subscribed || c->busy) {
        /* The I/O thread closes its channel; the broker requeues what it
         * held.  Acks queued before this go out first. */
        acmd cmd = {.kind = CMD_CLOSE, .c = c, .cond = &c->cond};
        cmd_push(h, &cmd);
        while (!cmd.done)
            pthread_cond_wait(&c->cond, &h->lock);
    } else {
        unlink_consumer(h, c);
    }
    pthread_mutex_unlock(&h->lock);
    consumer_free(c);
}

/* ---- depth ------------------------------------------------------------- */

static int amqp_depth(sked_queue *base, const char *queue, int64_t *ready,
                      int64_t *unacked, sked_err *err)
{
    ahandle *h = (ahandle *)base;
    int rc = check_name(queue, err);
    if (rc != 0)
        return rc;
    pthread_cond_t cond;
    cond_init_mono(&cond);
    acmd cmd = {.kind = CMD_DEPTH, .queue = queue, .cond = &cond, .err = err};
    pthread_mutex_lock(&h->lock);
    if (!h->connected) {
        rc = sked_err_set(err, SKED_EUNAVAIL, NULL, 0,
                          "not connected to RabbitMQ: %s", h->last_error);
        pthread_mutex_unlock(&h->lock);
        pthread_cond_destroy(&cond);
        return rc;
    }
    cmd_push(h, &cmd);
    while (!cmd.done)
        pthread_cond_wait(&cond, &h->lock);
    int64_t held = 0;
    for (aconsumer *c = h->consumers; c != NULL; c = c->next)
        if (strcmp(c->queue, queue) == 0)
            held += c->nbuf + (int64_t)c->out.n;
    pthread_mutex_unlock(&h->lock);
    pthread_cond_destroy(&cond);
    if (cmd.rc != 0)
        return cmd.rc;
    if (ready)
        *ready = cmd.ready;
    if (unacked)
        *unacked = held;
    return 0;
}

const sked_queue_ops sked_queue_amqp_ops = {
    .version = SKED_QUEUE_OPS_VERSION,
    .name = "amqp",
    .scheme = "amqp",
    .open = amqp_open,
    .close = amqp_close_handle,
    .ping = amqp_ping,
    .publish = amqp_publish,
    .publish_batch = amqp_publish_batch,
    .consumer_open = amqp_consumer_open,
    .consumer_next = amqp_consumer_next,
    .consumer_wake = amqp_consumer_wake,
    .ack = amqp_ack,
    .nack = amqp_nack,
    .consumer_close = amqp_consumer_close,
    .depth = amqp_depth,
};

/* The same backend under the TLS scheme: the URL's scheme picks TLS. */
const sked_queue_ops sked_queue_amqps_ops = {
    .version = SKED_QUEUE_OPS_VERSION,
    .name = "amqp",
    .scheme = "amqps",
    .open = amqp_open,
    .close = amqp_close_handle,
    .ping = amqp_ping,
    .publish = amqp_publish,
    .publish_batch = amqp_publish_batch,
    .consumer_open = amqp_consumer_open,
    .consumer_next = amqp_consumer_next,
    .consumer_wake = amqp_consumer_wake,
    .ack = amqp_ack,
    .nack = amqp_nack,
    .consumer_close = amqp_consumer_close,
    .depth = amqp_depth,
};
