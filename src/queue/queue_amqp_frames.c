/*
 * queue_amqp_frames.c - what RabbitMQ sends a handle: publisher confirms,
 * returned messages, deliveries (method, header, body frames assembled per
 * channel), consumer cancellations, and channels or the connection closed
 * by the broker.
 *
 * Runs on the handle's I/O thread only (queue_amqp_io.c).  A frame for a
 * channel that no longer has a consumer is stale - the broker requeues
 * whatever it carried - and is dropped.  Frames are copied out at once,
 * and their library buffers released, so nothing here points into
 * rabbitmq-c's memory past one frame.
 *
 * Not here: sending (queue_amqp_io.c), round trips (queue_amqp_conn.c).
 */
#include "queue/queue_amqp.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FRAMES_PER_TURN 256            /* then the loop serves the callers */
#define CHANNEL_LOSSES_MAX 3           /* publish channel closures a message
                                        * may be part of before it fails */

/* ---- the publishing channel -------------------------------------------- */

/* basic.ack / basic.nack from the broker on the publishing channel. */
static void confirm(ahandle *h, uint64_t tag, int multiple, int ok)
{
    pthread_mutex_lock(&h->lock);
    apub *p = h->flight.head;
    while (p != NULL && p->dtag <= tag) {
        apub *next = p->next;
        if (multiple || p->dtag == tag) {
            pl_remove(&h->flight, p);
            if (!ok)
                pub_finish(p, SKED_EIO, "RabbitMQ refused the message "
                                        "(basic.nack)");
            else if (p->returned)
                pub_finish(p, SKED_EIO, "RabbitMQ could not route the "
                                        "message: its queue is gone");
            else
                pub_finish(p, 0, NULL);
            if (!multiple)
                break;
        }
        p = next;
    }
    pthread_mutex_unlock(&h->lock);
}

/* The broker closed the publishing channel (a message it would not take):
 * what was in flight goes out again on a new channel, except messages
 * that were in flight at too many closures - the likely culprits. */
static int publish_channel_lost(ahandle *h, const char *why)
{
    char msg[200];
    snprintf(msg, sizeof msg, "RabbitMQ closed the publishing channel: %s",
             why);
    pthread_mutex_lock(&h->lock);
    while (h->flight.tail != NULL) {
        apub *p = h->flight.tail;
        pl_remove(&h->flight, p);
        if (p->abandoned) {
            pub_free(p);
        } else if (++p->channel_losses >= CHANNEL_LOSSES_MAX) {
            pub_finish(p, SKED_EIO, msg);
        } else {
            p->state = PUB_QUEUED;
            pl_push_head(&h->unsent, p);
        }
    }
    pthread_mutex_unlock(&h->lock);
    rx_free(&h->pub_rx);
    h->pub_dtag = 0;
    h->io_error[0] = '\0';
    if (sked_queue_amqp_reopen_publish(h, msg, sizeof msg) != RPC_OK) {
        char cause[sizeof h->io_error];
        snprintf(cause, sizeof cause, "%s",
                 h->io_error[0] ? h->io_error : msg);
        return sked_queue_amqp_fail(
            h, "reopening the publishing channel: %s", cause);
    }
    return 0;
}

/* The broker refused a message (basic.nack): seen while a quorum queue's
 * leader was lost, after which one channel kept refusing while others
 * published again.  A fresh channel costs little: close this one and send
 * what was in flight again on a new one (publish_channel_lost). */
static int publish_channel_reset(ahandle *h)
{
    sked_queue_amqp_close_channel(h, CH_PUBLISH);
    return publish_channel_lost(h, "a message was refused (basic.nack)");
}

/* ---- deliveries and the rest ------------------------------------------- */

/* A complete delivery: into its consumer's buffer. */
static int deliver(ahandle *h, aconsumer *c, amqp_channel_t ch)
{
    arx *rx = &c->rx;
    if (rx->failed) {
        /* No memory for the body: hand it back for another try. */
        int st = amqp_basic_reject(h->conn, ch, rx->dtag, 1);
        rx_free(rx);
        return st == AMQP_STATUS_OK
                   ? 0
                   : sked_queue_amqp_fail(h, "basic.reject: %s",
                                          amqp_error_string2(st));
    }
    adelivery *d = xcalloc(1, sizeof *d);
    d->dtag = rx->dtag;
    d->redelivered = rx->redelivered;
    d->body = rx->body;
    d->len = rx->len;
    d->body[d->len] = '\0';
    rx->body = NULL;
    rx_free(rx);
    pthread_mutex_lock(&h->lock);
    if (c->tail)
        c->tail->next = d;
    else
        c->head = d;
    c->tail = d;
    c->nbuf++;
    pthread_cond_signal(&c->cond);
    pthread_mutex_unlock(&h->lock);
    return 0;
}

/* A content header or body frame on ch. */
static int content(ahandle *h, amqp_frame_t *f)
{
    aconsumer *c = NULL;
    arx *rx;
    if (f->channel == CH_PUBLISH) {
        rx = &h->pub_rx;
    } else {
        pthread_mutex_lock(&h->lock);
        c = sked_queue_amqp_consumer_on(h, f->channel);
        pthread_mutex_unlock(&h->lock);
        /* c stays valid: only this thread frees a subscribed consumer. */
        if (c == NULL)
            return 0;           /* for a channel already closed: stale */
        rx = &c->rx;
    }
    if (!rx->active)
        return 0;
    if (f->frame_type == AMQP_FRAME_HEADER) {
        if (rx->header_seen)
            return sked_queue_amqp_fail(h, "protocol: second content header");
        rx->header_seen = 1;
        uint64_t size = f->payload.properties.body_size;
        if (size >= SIZE_MAX)
            return sked_queue_amqp_fail(h, "protocol: body of %llu bytes",
                                        (unsigned long long)size);
        rx->len = (size_t)size;
        if (rx->is_return) {
            amqp_basic_properties_t *pr = f->payload.properties.decoded;
            if (pr != NULL && (pr->_flags & AMQP_BASIC_MESSAGE_ID_FLAG)) {
                char id[24];
                snprintf(id, sizeof id, "%.*s", (int)pr->message_id.len,
                         (const char *)pr->message_id.bytes);
                rx->return_seq = strtoull(id, NULL, 10);
            }
        } else {
            rx->body = malloc(rx->len + 1);
            rx->failed = rx->body == NULL;
        }
    } else {
        if (!rx->header_seen)
            return sked_queue_amqp_fail(h, "protocol: body before header");
        size_t n = f->payload.body_fragment.len;
        if (n > rx->len - rx->got)
            return sked_queue_amqp_fail(
                h, "protocol: body longer than announced");
        if (rx->body != NULL)
            memcpy(rx->body + rx->got, f->payload.body_fragment.bytes, n);
        rx->got += n;
    }
    if (rx->got < rx->len)
        return 0;
    if (c != NULL)
        return deliver(h, c, f->channel);
    /* A returned message: its confirm follows and reports it failed. */
    pthread_mutex_lock(&h->lock);
    for (apub *p = h->flight.head; p != NULL; p = p->next)
        if (p->seq == rx->return_seq) {
            p->returned = 1;
            sked_queue_amqp_forget_declared(h, p->queue);
        }
    pthread_mutex_unlock(&h->lock);
    rx_free(rx);
    return 0;
}

/* The broker closed channel ch (its reasons in m). */
static int channel_closed(ahandle *h, amqp_channel_t ch,
                          amqp_channel_close_t *m)
{
    char why[160];
    snprintf(why, sizeof why, "%u %.*s", m->reply_code,
             (int)m->reply_text.len, (const char *)m->reply_text.bytes);
    amqp_channel_close_ok_t ok = {0};
    if (amqp_send_method(h->conn, ch, AMQP_CHANNEL_CLOSE_OK_METHOD, &ok) !=
        AMQP_STATUS_OK)
        return sked_queue_amqp_fail(h,
                                    "answering channel.close: socket error");
    if (ch == CH_CONTROL) {
        h->ctl_open = 0;
        return 0;
    }
    if (ch == CH_PUBLISH)
        return publish_channel_lost(h, why);
    pthread_mutex_lock(&h->lock);
    aconsumer *c = sked_queue_amqp_consumer_on(h, ch);
    if (c != NULL)
        sked_queue_amqp_unsubscribed(
            h, c, sked_clock_mono_now() + RESUBSCRIBE_RETRY_US);
    pthread_mutex_unlock(&h->lock);
    return 0;
}

static int method(ahandle *h, amqp_frame_t *f)
{
    amqp_channel_t ch = f->channel;
    void *m = f->payload.method.decoded;
    switch (f->payload.method.id) {
    case AMQP_BASIC_DELIVER_METHOD: {
        amqp_basic_deliver_t *d = m;
        pthread_mutex_lock(&h->lock);
        aconsumer *c = sked_queue_amqp_consumer_on(h, ch);
        pthread_mutex_unlock(&h->lock);
        if (c == NULL)
            return 0;           /* stale: the broker requeues it */
        if (c->rx.active)
            return sked_queue_amqp_fail(
                h, "protocol: delivery before the last ended");
        rx_free(&c->rx);
        c->rx.active = 1;
        c->rx.dtag = d->delivery_tag;
        c->rx.redelivered = d->redelivered != 0;
        if (d->delivery_tag > TAG_DTAG_MASK)
            return sked_queue_amqp_fail(h,
                                        "delivery tag overflow; reconnecting");
        return 0;
    }
    case AMQP_BASIC_ACK_METHOD:
        if (ch == CH_PUBLISH)
            confirm(h, ((amqp_basic_ack_t *)m)->delivery_tag,
                    ((amqp_basic_ack_t *)m)->multiple, 1);
        return 0;
    case AMQP_BASIC_NACK_METHOD:
        if (ch != CH_PUBLISH)
            return 0;
        confirm(h, ((amqp_basic_nack_t *)m)->delivery_tag,
                ((amqp_basic_nack_t *)m)->multiple, 0);
        return publish_channel_reset(h);
    case AMQP_BASIC_RETURN_METHOD:
        if (ch == CH_PUBLISH) {
            rx_free(&h->pub_rx);
            h->pub_rx.active = 1;
            h->pub_rx.is_return = 1;
        }
        return 0;
    case AMQP_BASIC_CANCEL_METHOD: {
        /* The queue went away under a consumer: close the channel (its
         * deliveries go back) and subscribe again, which redeclares. */
        pthread_mutex_lock(&h->lock);
        aconsumer *c = sked_queue_amqp_consumer_on(h, ch);
        if (c != NULL)
            sked_queue_amqp_unsubscribed(
                h, c, sked_clock_mono_now() + RESUBSCRIBE_RETRY_US);
        pthread_mutex_unlock(&h->lock);
        if (c == NULL)
            return 0;
        int rc = sked_queue_amqp_close_channel(h, ch);
        return rc == RPC_CONN ? -1 : 0;
    }
    case AMQP_CHANNEL_CLOSE_METHOD:
        return channel_closed(h, ch, m);
    case AMQP_CONNECTION_CLOSE_METHOD: {
        amqp_connection_close_t *c = m;
        amqp_connection_close_ok_t ok = {0};
        amqp_send_method(h->conn, 0, AMQP_CONNECTION_CLOSE_OK_METHOD, &ok);
        return sked_queue_amqp_fail(
            h, "RabbitMQ closed the connection: %u %.*s", c->reply_code,
            (int)c->reply_text.len, (const char *)c->reply_text.bytes);
    }
    default:
        /* connection.blocked/unblocked and the like: publishes simply
         * wait longer for their confirms. */
        return 0;
    }
}

/* Handle the frames that are already here, without blocking. */
int sked_queue_amqp_read_frames(ahandle *h)
{
    for (int i = 0; i < FRAMES_PER_TURN; i++) {
        struct timeval zero = {0, 0};
        amqp_frame_t f;
        int st = amqp_simple_wait_frame_noblock(h->conn, &f, &zero);
        if (st == AMQP_STATUS_TIMEOUT)
            return 0;
        if (st != AMQP_STATUS_OK)
            return sked_queue_amqp_fail(h, "reading from RabbitMQ: %s",
                                        amqp_error_string2(st));
        int rc = 0;
        if (f.frame_type == AMQP_FRAME_METHOD)
            rc = method(h, &f);
        else if (f.frame_type == AMQP_FRAME_HEADER ||
                 f.frame_type == AMQP_FRAME_BODY)
            rc = content(h, &f);
        if (rc != 0)
            return -1;
        if (h->conn != NULL)
            amqp_maybe_release_buffers_on_channel(h->conn, f.channel);
    }
    return 0;
}
