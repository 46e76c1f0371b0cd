/*
 * queue_amqp_io.c - the one thread that owns a RabbitMQ handle's
 * connection: its loop, sending the callers' messages and settlements,
 * losing the connection and connecting again.
 *
 * Threading, and why.  A rabbitmq-c connection is not thread-safe, and
 * reading it is the only way to learn anything: confirms, deliveries,
 * heartbeats and the broker closing a channel all arrive on the one socket.
 * So each handle has one I/O thread that alone calls rabbitmq-c; the
 * callers' threads never touch the socket.  They hand it work under the
 * handle's mutex - a message to publish (h->unsent), an ack, nack, consumer
 * close or depth query (h->cmds) - and write an eventfd the thread polls
 * beside the socket.  The thread hands results back the same way: a
 * publisher sleeps on its message's condition variable until the confirm
 * for it arrives, and deliveries land in their consumer's buffer, where
 * consumer_next waits on the consumer's condition variable.  The
 * alternative, a connection per consumer guarded by a mutex, would need
 * the same poll-and-wake dance per connection (a consumer blocked in
 * next() must still let acks through), and a publisher would hold the
 * publishing connection across a confirm round trip, one message at a
 * time.  Here any number of publishers keep messages in flight at once and
 * one thread reads their confirms.  Blocking broker round trips (declare,
 * qos, consume, channel close) run on this thread and stall it for that
 * round trip; they happen on first use of a queue and when consumers come
 * and go, not per message.
 *
 * Channels: 1 for declarations (a failed passive declare closes it), 2 for
 * publishing in confirm mode, and a fresh number from 3 up for every
 * consumer subscription.  Numbers are not reused until the counter wraps
 * at the negotiated channel_max, so frames still queued for a closed
 * channel can never be taken for a newer one.
 *
 * Losing the connection (socket error, broker close, two missed
 * heartbeats): every sent but unconfirmed message goes back to the head of
 * the unsent list, in order, and is published again on the next
 * connection (so a message whose confirm was lost may arrive twice:
 * at-least-once); every consumer gets a new subscription generation, its
 * buffered deliveries are dropped and its handed-out tags go stale (the
 * broker requeues all of them), and it subscribes again once connected.
 * Pending acks are dropped, never sent on the new connection.  Reconnects
 * try the next node first, then the others, then back off (50 ms doubling
 * to 1 s) and go round again.
 *
 * Not here: argument checks and the waiting on the callers' side
 * (queue_amqp.c), connecting and broker round trips (queue_amqp_conn.c),
 * reading frames (queue_amqp_frames.c), URL parsing (queue_amqp_url.c).
 */
#include "queue/queue_amqp.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BACKOFF_MIN_US (50 * AQ_MSEC)
#define BACKOFF_MAX_US (1000 * AQ_MSEC)
#define TICK_US (250 * AQ_MSEC)        /* heartbeats, resubscribe retries */
#define CLOSE_RPC_TIMEOUT_US (2000 * AQ_MSEC)

static struct timeval tv_of(int64_t us)
{
    struct timeval tv = {(time_t)(us / SKED_USEC_PER_SEC),
                         (suseconds_t)(us % SKED_USEC_PER_SEC)};
    return tv;
}

void sked_queue_amqp_kick(ahandle *h)
{
    if (h->kicked)
        return;
    h->kicked = 1;
    uint64_t one = 1;
    ssize_t n = write(h->evfd, &one, sizeof one);
    (void)n;                    /* a full counter still wakes the poll */
}

void sked_queue_amqp_consumer_reset(aconsumer *c)
{
    adelivery *d = c->head;
    while (d != NULL) {
        adelivery *next = d->next;
        free(d->body);
        free(d);
        d = next;
    }
    c->head = c->tail = NULL;
    c->nbuf = 0;
    sked_queue_amqp_tagset_clear(&c->out);
}

/* The subscribed consumer on channel ch, or NULL.  Linear: a process has a
 * handful of consumers.  Caller holds the lock. */
aconsumer *sked_queue_amqp_consumer_on(ahandle *h, amqp_channel_t ch)
{
    for (aconsumer *c = h->consumers; c != NULL; c = c->next)
        if (c->subscribed && c->channel == ch)
            return c;
    return NULL;
}

uint32_t sked_queue_amqp_next_sgen(ahandle *h)
{
    h->sgen_counter = (h->sgen_counter + 1) & TAG_SGEN_MASK;
    if (h->sgen_counter == 0)
        h->sgen_counter = 1;
    return h->sgen_counter;
}

/* c's subscription is gone (channel or connection lost, or cancelled):
 * its deliveries are the broker's again, so its tags go stale, queued
 * acks for it are dropped, and it subscribes afresh (not before
 * retry_at).  Caller holds the lock; runs on the I/O thread. */
void sked_queue_amqp_unsubscribed(ahandle *h, aconsumer *c,
                                  sked_monotime retry_at)
{
    c->sgen = sked_queue_amqp_next_sgen(h);
    sked_queue_amqp_consumer_reset(c);
    rx_free(&c->rx);
    acmd **pp = &h->cmd_head;
    h->cmd_tail = NULL;
    while (*pp != NULL) {
        acmd *cmd = *pp;
        if ((cmd->kind == CMD_ACK || cmd->kind == CMD_NACK) && cmd->c == c) {
            *pp = cmd->next;
            free(cmd);
        } else {
            h->cmd_tail = cmd;
            pp = &cmd->next;
        }
    }
    c->subscribed = 0;
    c->channel = 0;
    if (!c->closing) {
        c->need_sub = 1;
        c->retry_at = retry_at;
    }
}

/* ---- losing the connection --------------------------------------------- */

/* Complete what cannot wait for a connection: closes (the broker already
 * took the deliveries back) and depth queries fail fast; acks are
 * dropped (their tags are stale).  Caller holds the lock. */
static void flush_offline(ahandle *h)
{
    acmd *cmd = h->cmd_head;
    h->cmd_head = h->cmd_tail = NULL;
    while (cmd != NULL) {
        acmd *next = cmd->next;
        switch (cmd->kind) {
        case CMD_ACK:
        case CMD_NACK:
            free(cmd);
            break;
        case CMD_CLOSE: {
            aconsumer **pp = &h->consumers;
            while (*pp != NULL && *pp != cmd->c)
                pp = &(*pp)->next;
            if (*pp != NULL)
                *pp = cmd->c->next;
            rx_free(&cmd->c->rx);
            cmd->done = 1;
            pthread_cond_broadcast(cmd->cond);
            break;
        }
        case CMD_DEPTH:
            cmd->rc = sked_err_set(cmd->err, SKED_EUNAVAIL, NULL, 0,
                                   "not connected to RabbitMQ: %s",
                                   h->last_error);
            cmd->done = 1;
            pthread_cond_broadcast(cmd->cond);
            break;
        }
        cmd = next;
    }
}

/* The connection is gone: forget it, and put everything that depended
 * on it back to where a new connection picks it up. */
static void drop_connection(ahandle *h)
{
    if (h->conn != NULL) {
        amqp_destroy_connection(h->conn);
        h->conn = NULL;
    }
    sked_queue_amqp_forget_declared(h, NULL);
    h->ctl_open = 0;
    rx_free(&h->pub_rx);
    sked_monotime now = sked_clock_mono_now();

    pthread_mutex_lock(&h->lock);
    h->connected = 0;
    snprintf(h->last_error, sizeof h->last_error, "%s", h->io_error);
    /* Unconfirmed messages go out first on the next connection, in the
     * order they were first sent. */
    while (h->flight.tail != NULL) {
        apub *p = h->flight.tail;
        pl_remove(&h->flight, p);
        if (p->abandoned) {
            pub_free(p);
            continue;
        }
        p->state = PUB_QUEUED;
        pl_push_head(&h->unsent, p);
    }
    for (aconsumer *c = h->consumers; c != NULL; c = c->next) {
        c->busy = 0;
        if (c->subscribed)
            sked_queue_amqp_unsubscribed(h, c, now);
        rx_free(&c->rx);
    }
    flush_offline(h);
    pthread_mutex_unlock(&h->lock);
}

/* ---- the callers' work ------------------------------------------------- */

static int send_publishes(ahandle *h)
{
    for (;;) {
        pthread_mutex_lock(&h->lock);
        apub *p = h->unsent.head;
        if (p != NULL) {
            pl_remove(&h->unsent, p);
            p->state = PUB_INFLIGHT;
        }
        pthread_mutex_unlock(&h->lock);
        if (p == NULL)
            return 0;

        char msg[200];
        int rc = sked_queue_amqp_ensure_declared(h, p->queue, msg, sizeof msg);
        if (rc != RPC_OK) {
            pthread_mutex_lock(&h->lock);
            if (rc == RPC_CHANNEL) {
                pub_finish(p, SKED_EIO, msg);
            } else {
                p->state = PUB_QUEUED;   /* again, on the next connection */
                pl_push_head(&h->unsent, p);
            }
            pthread_mutex_unlock(&h->lock);
            if (rc == RPC_CONN)
                return -1;
            continue;
        }
        pthread_mutex_lock(&h->lock);
        p->dtag = ++h->pub_dtag;
        p->returned = 0;
        pl_push_tail(&h->flight, p);
        pthread_mutex_unlock(&h->lock);

        /* p stays ours until confirmed: only this thread frees a message
         * in flight. */
        char name[AQ_BROKER_NAME_CAP];
        snprintf(name, sizeof name, AQ_QUEUE_PREFIX "%s", p->queue);
        char id[24];
        snprintf(id, sizeof id, "%llu", (unsigned long long)p->seq);
        amqp_basic_properties_t props = {
            ._flags = AMQP_BASIC_DELIVERY_MODE_FLAG |
                      AMQP_BASIC_MESSAGE_ID_FLAG,
            .delivery_mode = AMQP_DELIVERY_PERSISTENT,
            .message_id = amqp_cstring_bytes(id),
        };
        amqp_bytes_t body = {p->len, p->body};
        /* mandatory: a message no queue takes comes back (basic.return)
         * instead of being confirmed into the void. */
        int st = amqp_basic_publish(h->conn, CH_PUBLISH, amqp_empty_bytes,
                                    amqp_cstring_bytes(name), 1, 0, &props,
                                    body);
        if (st != AMQP_STATUS_OK)
            return sked_queue_amqp_fail(h, "basic.publish: %s",
                                        amqp_error_string2(st));
    }
}

/* One consumer's acks in a list of commands, folded into one basic.ack
 * with `multiple`: it settles every delivery of the channel up to its
 * tag still unsettled at the broker, so it may stand for the acks of
 * the list below `limit` - the smallest tag the application still holds
 * (deliveries not yet handed out come later still: tags grow in order of
 * arrival) or is nacking in this list.  Every other tag below is settled
 * already, by this list or an earlier one. */
typedef struct ack_fold {
    aconsumer *c;
    uint64_t limit;            /* acks below it are covered             */
    uint64_t top;              /* the largest covered: sent, multiple   */
    int closing;               /* a CLOSE in the list: fold nothing     */
} ack_fold;

#define MAX_FOLDS 16

/* Under h->lock, in the same hold that took the list from h->cmd_head:
 * settle() removes a tag from c->out and queues its command under one
 * hold, so a tag missing from both is settled and sent. */
static size_t fold_acks(acmd *list, ack_fold *f)
{
    size_t nf = 0;
    for (acmd *cmd = list; cmd != NULL; cmd = cmd->next) {
        cmd->covered = 0; /* defensive: a list is folded once */
        if (cmd->kind != CMD_ACK && cmd->kind != CMD_NACK && cmd->kind != CMD_CLOSE)
            continue;
        size_t k = 0;
        while (k < nf && f[k].c != cmd->c)
            k++;
        if (k == nf) {
            if (nf == MAX_FOLDS) /* a handful per process: fold the first */
                continue;
            f[nf++] = (ack_fold){.c = cmd->c, .limit =
                                 sked_queue_amqp_tagset_min(&cmd->c->out)};
        }
        if (cmd->kind == CMD_CLOSE)
            f[k].closing = 1;
        else if (cmd->kind == CMD_NACK && cmd->sgen == cmd->c->sgen && cmd->dtag < f[k].limit)
            f[k].limit = cmd->dtag;
    }
    for (acmd *cmd = list; cmd != NULL; cmd = cmd->next) {
        if (cmd->kind != CMD_ACK || cmd->sgen != cmd->c->sgen)
            continue;
        for (size_t k = 0; k < nf; k++)
            if (f[k].c == cmd->c && !f[k].closing && cmd->dtag < f[k].limit) {
                cmd->covered = 1;
                if (cmd->dtag > f[k].top)
                    f[k].top = cmd->dtag;
            }
    }
    return nf;
}

static int run_commands(ahandle *h)
{
    ack_fold folds[MAX_FOLDS];
    pthread_mutex_lock(&h->lock);
    acmd *cmd = h->cmd_head;
    h->cmd_head = h->cmd_tail = NULL;
    size_t nf = fold_acks(cmd, folds);
    pthread_mutex_unlock(&h->lock);
    while (cmd != NULL) {
        acmd *next = cmd->next;
        int rc = 0;
        if (cmd->kind == CMD_ACK || cmd->kind == CMD_NACK) {
            pthread_mutex_lock(&h->lock);
            aconsumer *c = cmd->c;
            int live = c->subscribed && c->sgen == cmd->sgen;
            amqp_channel_t ch = c->channel;
            pthread_mutex_unlock(&h->lock);
            int multiple = 0;
            for (size_t k = 0; k < nf && cmd->covered; k++)
                if (folds[k].c == c) /* the fold's top stands for the rest */
                    multiple = cmd->dtag == folds[k].top ? 1 : -1;
            if (live && multiple >= 0) {
                int st = cmd->kind == CMD_ACK
                             ? amqp_basic_ack(h->conn, ch, cmd->dtag, multiple)
                             : amqp_basic_nack(h->conn, ch, cmd->dtag, 0,
                                               cmd->requeue);
                if (st != AMQP_STATUS_OK)
                    rc = sked_queue_amqp_fail(h, "basic.ack: %s",
                                              amqp_error_string2(st));
            }
            free(cmd);
        } else if (cmd->kind == CMD_CLOSE) {
            rc = sked_queue_amqp_close_consumer(h, cmd);
        } else {
            rc = sked_queue_amqp_depth_query(h, cmd);
        }
        cmd = next;
        if (rc != 0) {
            /* The rest waits for drop_connection's flush. */
            pthread_mutex_lock(&h->lock);
            if (cmd != NULL) {
                acmd *last = cmd;
                while (last->next != NULL)
                    last = last->next;
                last->next = h->cmd_head;
                if (h->cmd_head == NULL)
                    h->cmd_tail = last;
                h->cmd_head = cmd;
            }
            pthread_mutex_unlock(&h->lock);
            return -1;
        }
    }
    return 0;
}

/* ---- the loop ---------------------------------------------------------- */

/* Wait for the eventfd (work from a caller) or timeout_us, and reset it. */
static void wait_event(ahandle *h, int sockfd, int64_t timeout_us,
                       int *sock_ready)
{
    struct pollfd pfd[2] = {{h->evfd, POLLIN, 0}, {sockfd, POLLIN, 0}};
    int n = poll(pfd, sockfd >= 0 ? 2 : 1,
                 (int)((timeout_us + AQ_MSEC - 1) / AQ_MSEC));
    if (n > 0 && (pfd[0].revents & POLLIN)) {
        uint64_t v;
        ssize_t r = read(h->evfd, &v, sizeof v);
        (void)r;
        pthread_mutex_lock(&h->lock);
        h->kicked = 0;
        pthread_mutex_unlock(&h->lock);
    }
    *sock_ready = n > 0 && sockfd >= 0 && pfd[1].revents != 0;
}

/* One turn on a live connection: do the callers' work, then wait for
 * the socket or the next piece of work. */
static int io_turn(ahandle *h)
{
    if (run_commands(h) != 0 || send_publishes(h) != 0 ||
        sked_queue_amqp_subscribe_all(h) != 0)
        return -1;
    int buffered = amqp_frames_enqueued(h->conn) ||
                   amqp_data_in_buffer(h->conn);
    int ready = 0;
    wait_event(h, amqp_get_sockfd(h->conn), buffered ? 0 : TICK_US, &ready);
    sked_monotime now = sked_clock_mono_now();
    if (ready)
        h->last_rx = now;
    /* Reading also lets rabbitmq-c send our heartbeats when due. */
    if (buffered || ready || now - h->last_read >= TICK_US) {
        h->last_read = now;
        if (sked_queue_amqp_read_frames(h) != 0)
            return -1;
        amqp_maybe_release_buffers(h->conn);
    }
    int64_t hb = (int64_t)h->conf.heartbeat_s * SKED_USEC_PER_SEC;
    if (hb > 0 && now - h->last_rx > 2 * hb + TICK_US)
        return sked_queue_amqp_fail(
            h, "no data from RabbitMQ for %lld s (missed heartbeats)",
            (long long)((now - h->last_rx) / SKED_USEC_PER_SEC));
    return 0;
}

static int stopping(ahandle *h)
{
    pthread_mutex_lock(&h->lock);
    int stop = h->stop;
    pthread_mutex_unlock(&h->lock);
    return stop;
}

static void shutdown_io(ahandle *h)
{
    if (h->conn != NULL) {
        struct timeval tv = tv_of(CLOSE_RPC_TIMEOUT_US);
        amqp_set_rpc_timeout(h->conn, &tv);
        amqp_connection_close(h->conn, AMQP_REPLY_SUCCESS);
    }
    snprintf(h->io_error, sizeof h->io_error, "queue handle closed");
    drop_connection(h);
    pthread_mutex_lock(&h->lock);
    /* Publishers should be gone; any left learn that nothing happened. */
    while (h->unsent.head != NULL) {
        apub *p = h->unsent.head;
        pl_remove(&h->unsent, p);
        pub_finish(p, SKED_EUNAVAIL, "queue handle closed");
    }
    pthread_mutex_unlock(&h->lock);
    sked_queue_amqp_forget_declared(h, NULL);
    free(h->declared);
    h->declared = NULL;
}

void *sked_queue_amqp_io_main(void *arg)
{
    ahandle *h = arg;
    int64_t backoff = 0;
    while (!stopping(h)) {
        if (h->conn != NULL) {
            if (io_turn(h) != 0)
                drop_connection(h);
            continue;
        }
        if (sked_queue_amqp_connect(h) == 0) {
            backoff = 0;
            pthread_mutex_lock(&h->lock);
            h->connected = 1;
            h->first_round = 1;
            h->last_error[0] = '\0';
            pthread_cond_broadcast(&h->state_cond);
            pthread_mutex_unlock(&h->lock);
            continue;
        }
        pthread_mutex_lock(&h->lock);
        h->first_round = 1;
        snprintf(h->last_error, sizeof h->last_error, "%s", h->io_error);
        flush_offline(h);
        pthread_cond_broadcast(&h->state_cond);
        pthread_mutex_unlock(&h->lock);
        backoff = backoff ? backoff * 2 : BACKOFF_MIN_US;
        if (backoff > BACKOFF_MAX_US)
            backoff = BACKOFF_MAX_US;
        /* Sleep, but wake for close() and let closes and depth queries
         * through meanwhile. */
        sked_monotime until = sked_clock_mono_now() + backoff;
        for (sked_monotime now = sked_clock_mono_now();
             now < until && !stopping(h); now = sked_clock_mono_now()) {
            int ready;
            wait_event(h, -1, until - now, &ready);
            pthread_mutex_lock(&h->lock);
            flush_offline(h);
            pthread_mutex_unlock(&h->lock);
        }
    }
    shutdown_io(h);
    return NULL;
}
