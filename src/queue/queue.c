/*
 * queue.c - the backend-independent half of the queue: finding a backend by
 * URL scheme, the thin sked_queue_* wrappers the core calls, and releasing
 * a delivery.
 *
 * Not here: any message handling (queue_mem.c, queue_amqp*.c).  A
 * wrapper does nothing but check that the backend has the method
 * (SKED_ENOTSUP when its ops version predates the method or leaves it NULL)
 * and call it; argument checks belong to the backends, and the conformance
 * suite (tests/backend/test_queue.c) holds them all to the same answers.
 */
#include "queue/queue.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Every backend linked into the binary, tried in order by scheme. */
static const sked_queue_ops *const backends[] = {
    &sked_queue_mem_ops,
    &sked_queue_amqp_ops,
    &sked_queue_amqps_ops,
};

#define NBACKENDS (sizeof backends / sizeof backends[0])

/* Does the object (a sked_queue or a sked_consumer) have this method?
 * `since` is the ops version that introduced it. */
#define HAS(obj, since, method)                                         \
    ((obj) != NULL && (obj)->ops->version >= (since) &&                 \
     (obj)->ops->method != NULL)

static int notsup(const sked_queue_ops *ops, const char *method,
                  sked_err *err)
{
    return sked_err_set(err, SKED_ENOTSUP, NULL, 0,
                        "queue backend %s does not support %s",
                        ops ? ops->name : "(none)", method);
}

/* "mem, amqp": the schemes we know, for an error message. */
static void known_schemes(char *buf, size_t cap)
{
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < NBACKENDS && used < cap; i++) {
        int n = snprintf(buf + used, cap - used, "%s%s", i ? ", " : "",
                         backends[i]->scheme);
        if (n < 0)
            break;
        used += (size_t)n;
    }
}

int sked_queue_open(const char *url, sked_queue **out, sked_err *err)
{
    *out = NULL;
    if (url == NULL || url[0] == '\0')
        return sked_err_set(err, SKED_EINVAL, "queue", 0, "empty queue URL");
    const char *colon = strchr(url, ':');
    if (colon == NULL)
        return sked_err_set(err, SKED_EINVAL, "queue", 0,
                            "queue URL \"%.64s\" has no scheme "
                            "(expected e.g. mem: or amqp://HOST)", url);
    size_t len = (size_t)(colon - url);
    for (size_t i = 0; i < NBACKENDS; i++) {
        const char *scheme = backends[i]->scheme;
        if (strlen(scheme) == len && strncmp(scheme, url, len) == 0)
            return backends[i]->open(url, out, err);
    }
    char known[128];
    known_schemes(known, sizeof known);
    return sked_err_set(err, SKED_EINVAL, "queue", 0,
                        "unknown queue scheme \"%.*s\" (known: %s)",
                        (int)(len > 32 ? 32 : len), url, known);
}

void sked_queue_close(sked_queue *q)
{
    if (q != NULL)
        q->ops->close(q);
}

int sked_queue_ping(sked_queue *q, sked_err *err)
{
    if (!HAS(q, 1, ping))
        return notsup(q ? q->ops : NULL, "ping", err);
    return q->ops->ping(q, err);
}

int sked_queue_publish(sked_queue *q, const char *queue, const void *body,
                       size_t len, sked_err *err)
{
    if (!HAS(q, 1, publish))
        return notsup(q ? q->ops : NULL, "publish", err);
    return q->ops->publish(q, queue, body, len, err);
}

int sked_queue_publish_batch(sked_queue *q, sked_message *msgs, size_t n,
                             sked_err *err)
{
    if (n == 0)
        return 0;
    if (msgs == NULL)
        return sked_err_set(err, SKED_EINVAL, NULL, 0, "publish_batch: no messages");
    if (HAS(q, 2, publish_batch))
        return q->ops->publish_batch(q, msgs, n, err);
    if (!HAS(q, 1, publish))
        return notsup(q ? q->ops : NULL, "publish", err);
    int first = 0;
    for (size_t i = 0; i < n; i++) {
        sked_err e = {0};
        msgs[i].result = q->ops->publish(q, msgs[i].queue, msgs[i].body, msgs[i].len, &e);
        if (msgs[i].result != 0 && first == 0) {
            first = msgs[i].result;
            if (err)
                *err = e;
        }
    }
    return first;
}

int sked_queue_consumer_open(sked_queue *q, const char *queue, int prefetch,
                             sked_consumer **out, sked_err *err)
{
    *out = NULL;
    if (!HAS(q, 1, consumer_open))
        return notsup(q ? q->ops : NULL, "consumer_open", err);
    return q->ops->consumer_open(q, queue, prefetch, out, err);
}

int sked_queue_consumer_next(sked_consumer *c, int64_t timeout_us,
                             sked_delivery *out, sked_err *err)
{
    if (!HAS(c, 1, consumer_next))
        return notsup(c ? c->ops : NULL, "consumer_next", err);
    return c->ops->consumer_next(c, timeout_us, out, err);
}

void sked_queue_consumer_wake(sked_consumer *c)
{
    if (HAS(c, 1, consumer_wake))
        c->ops->consumer_wake(c);
}

int sked_queue_ack(sked_consumer *c, uint64_t tag, sked_err *err)
{
    if (!HAS(c, 1, ack))
        return notsup(c ? c->ops : NULL, "ack", err);
    return c->ops->ack(c, tag, err);
}

int sked_queue_nack(sked_consumer *c, uint64_t tag, int requeue,
                    sked_err *err)
{
    if (!HAS(c, 1, nack))
        return notsup(c ? c->ops : NULL, "nack", err);
    return c->ops->nack(c, tag, requeue, err);
}

void sked_queue_consumer_close(sked_consumer *c)
{
    if (HAS(c, 1, consumer_close))
        c->ops->consumer_close(c);
}

int sked_queue_depth(sked_queue *q, const char *queue, int64_t *ready,
                     int64_t *unacked, sked_err *err)
{
    if (!HAS(q, 1, depth))
        return notsup(q ? q->ops : NULL, "depth", err);
    return q->ops->depth(q, queue, ready, unacked, err);
}

void sked_delivery_deinit(sked_delivery *d)
{
    if (d == NULL)
        return;
    free(d->body);
    memset(d, 0, sizeof *d);
}
