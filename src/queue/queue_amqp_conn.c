/*
 * queue_amqp_conn.c - the RabbitMQ backend's synchronous side: connecting
 * to a node (TCP or TLS, login, the fixed channels), and every broker
 * round trip - channel open and close, queue declarations, subscribing a
 * consumer, depth queries.
 *
 * Everything here runs on a handle's I/O thread (queue_amqp_io.c explains
 * why there is exactly one) and may block it for one round trip, bounded
 * by the connection's RPC timeout.  Functions return RPC_OK, RPC_CHANNEL
 * (the broker refused and closed the channel; the connection is fine) or
 * RPC_CONN (the connection is unusable: h->io_error says why).
 *
 * Queues are durable quorum queues "sked.q.NAME": x-queue-type=quorum,
 * not exclusive, not auto-delete, with a delivery limit (below).
 *
 * Not here: the loop, publishing and reading frames (queue_amqp_io.c,
 * queue_amqp_frames.c).
 */
#include "queue/queue_amqp.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <amqp_ssl_socket.h>
#include <amqp_tcp_socket.h>

/* How long an inbox queue outlives its last consumer. */
#define INBOX_EXPIRES_MS 60000

#define FRAME_MAX 131072
/* A quorum queue without a delivery limit (RabbitMQ 3.10+) puts a nacked
 * message back at its tail; with one, at its head, which is what queue.h
 * promises.  So every queue gets one, high enough never to matter: a run
 * delivered this often has long spent its attempts, and the scheduler's
 * sweep, not the broker, is what recovers a run whose message is gone. */
#define DELIVERY_LIMIT 1000

static char *xstrdup(const char *s)
{
    char *p = strdup(s);
    if (p == NULL)
        abort();
    return p;
}

static struct timeval tv_of(int64_t us)
{
    struct timeval tv = {(time_t)(us / SKED_USEC_PER_SEC),
                         (suseconds_t)(us % SKED_USEC_PER_SEC)};
    return tv;
}

int sked_queue_amqp_fail(ahandle *h, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(h->io_error, sizeof h->io_error, fmt, ap);
    va_end(ap);
    return RPC_CONN;
}

/* ---- synchronous methods ----------------------------------------------- */

/* Classify the reply to a synchronous method on channel ch.  When the
 * broker closed the channel, answer it (channel.close-ok) and say why in
 * msg, with its reply code in *code. */
static int rpc_result(ahandle *h, amqp_rpc_reply_t r, amqp_channel_t ch,
                      const char *what, char *msg, size_t cap, int *code)
{
    *code = 0;
    if (r.reply_type == AMQP_RESPONSE_NORMAL ||
        r.reply_type == AMQP_RESPONSE_SERVER_EXCEPTION)
        h->last_rx = sked_clock_mono_now();   /* the broker is alive */
    switch (r.reply_type) {
    case AMQP_RESPONSE_NORMAL:
        return RPC_OK;
    case AMQP_RESPONSE_LIBRARY_EXCEPTION:
        return sked_queue_amqp_fail(h, "%s: %s", what,
                                    amqp_error_string2(r.library_error));
    case AMQP_RESPONSE_SERVER_EXCEPTION:
        if (r.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
            amqp_channel_close_t *m = r.reply.decoded;
            *code = m->reply_code;
            snprintf(msg, cap, "%s: %.*s", what, (int)m->reply_text.len,
                     (const char *)m->reply_text.bytes);
            amqp_channel_close_ok_t ok = {0};
            if (amqp_send_method(h->conn, ch, AMQP_CHANNEL_CLOSE_OK_METHOD,
                                 &ok) != AMQP_STATUS_OK)
                return sked_queue_amqp_fail(
                    h, "%s: cannot answer channel.close", what);
            return RPC_CHANNEL;
        }
        if (r.reply.id == AMQP_CONNECTION_CLOSE_METHOD) {
            amqp_connection_close_t *m = r.reply.decoded;
            amqp_connection_close_ok_t ok = {0};
            amqp_send_method(h->conn, 0, AMQP_CONNECTION_CLOSE_OK_METHOD, &ok);
            return sked_queue_amqp_fail(
                h, "%s: broker closed the connection: %.*s", what,
                (int)m->reply_text.len, (const char *)m->reply_text.bytes);
        }
        return sked_queue_amqp_fail(h, "%s: unexpected reply 0x%08x", what,
                                    (unsigned)r.reply.id);
    default:
        return sked_queue_amqp_fail(h, "%s: no reply", what);
    }
}

static int open_channel(ahandle *h, amqp_channel_t ch, char *msg, size_t cap)
{
    int code;
    amqp_channel_open(h->conn, ch);
    return rpc_result(h, amqp_get_rpc_reply(h->conn), ch, "channel.open",
                      msg, cap, &code);
}

/* queue.declare of sked.q.<queue> on ch: a durable quorum queue, or with
 * passive only whether it exists (*count: its ready messages). */
static int declare(ahandle *h, amqp_channel_t ch, const char *queue,
                   int passive, uint32_t *count, char *msg, size_t cap,
                   int *code)
{
    *code = 0;
    if (ch == CH_CONTROL && !h->ctl_open) {
        int rc = open_channel(h, CH_CONTROL, msg, cap);
        if (rc != RPC_OK)
            return rc;
        h->ctl_open = 1;
    }
    char name[AQ_BROKER_NAME_CAP];
    snprintf(name, sizeof name, AQ_QUEUE_PREFIX "%s", queue);
    amqp_table_entry_t arg[] = {
        {.key = amqp_cstring_bytes("x-queue-type"),
         .value = {.kind = AMQP_FIELD_KIND_UTF8,
                   .value.bytes = amqp_cstring_bytes("quorum")}},
        {.key = amqp_cstring_bytes("x-delivery-limit"),
         .value = {.kind = AMQP_FIELD_KIND_I32,
                   .value.i32 = DELIVERY_LIMIT}},
        /* a process's inbox (sked.inbox.*) goes a while after its
         * consumer does: inboxes of dead workers do not pile up */
        {.key = amqp_cstring_bytes("x-expires"),
         .value = {.kind = AMQP_FIELD_KIND_I32, .value.i32 = INBOX_EXPIRES_MS}},
    };
    int inbox = strncmp(queue, SKED_QUEUE_INBOX_PREFIX, strlen(SKED_QUEUE_INBOX_PREFIX)) == 0;
    amqp_table_t args = {.num_entries = passive ? 0 : inbox ? 3 : 2, .entries = arg};
    amqp_queue_declare_ok_t *ok =
        amqp_queue_declare(h->conn, ch, amqp_cstring_bytes(name),
                           passive != 0, 1, 0, 0, args);
    int rc = rpc_result(h, amqp_get_rpc_reply(h->conn), ch, "queue.declare",
                        msg, cap, code);
    if (rc == RPC_CHANNEL && ch == CH_CONTROL)
        h->ctl_open = 0;
    if (rc == RPC_OK && count != NULL)
        *count = ok->message_count;
    amqp_maybe_release_buffers_on_channel(h->conn, ch);
    return rc;
}

/* Declare queue unless this connection already did. */
int sked_queue_amqp_ensure_declared(ahandle *h, const char *queue, char *msg,
                                    size_t cap)
{
    for (size_t i = 0; i < h->ndeclared; i++)
        if (strcmp(h->declared[i], queue) == 0)
            return RPC_OK;
    int code;
    int rc = declare(h, CH_CONTROL, queue, 0, NULL, msg, cap, &code);
    if (rc != RPC_OK)
        return rc;
    if (h->ndeclared == h->capdeclared) {
        h->capdeclared = h->capdeclared ? 2 * h->capdeclared : 8;
        h->declared = realloc(h->declared,
                              h->capdeclared * sizeof *h->declared);
        if (h->declared == NULL)
            abort();
    }
    h->declared[h->ndeclared++] = xstrdup(queue);
    return RPC_OK;
}

void sked_queue_amqp_forget_declared(ahandle *h, const char *queue)
{
    for (size_t i = 0; i < h->ndeclared; i++) {
        if (queue == NULL || strcmp(h->declared[i], queue) == 0) {
            free(h->declared[i]);
            h->declared[i] = NULL;
        }
    }
    size_t n = 0;
    for (size_t i = 0; i < h->ndeclared; i++)
        if (h->declared[i] != NULL)
            h->declared[n++] = h->declared[i];
    h->ndeclared = n;
}

/* Open CH_PUBLISH in confirm mode (again, after the broker closed it). */
int sked_queue_amqp_reopen_publish(ahandle *h, char *msg, size_t cap)
{
    int code;
    int rc = open_channel(h, CH_PUBLISH, msg, cap);
    if (rc != RPC_OK)
        return rc;
    amqp_confirm_select(h->conn, CH_PUBLISH);
    return rpc_result(h, amqp_get_rpc_reply(h->conn), CH_PUBLISH,
                      "confirm.select", msg, cap, &code);
}

/* Close channel ch; its unacknowledged deliveries go back to their queue. */
int sked_queue_amqp_close_channel(ahandle *h, amqp_channel_t ch)
{
    char msg[200];
    int code;
    int rc = rpc_result(h, amqp_channel_close(h->conn, ch, AMQP_REPLY_SUCCESS),
                        ch, "channel.close", msg, sizeof msg, &code);
    amqp_maybe_release_buffers_on_channel(h->conn, ch);
    return rc;
}

/* ---- consumers --------------------------------------------------------- */

/* A free channel number for a new subscription, or 0.  Caller holds the
 * lock. */
static amqp_channel_t alloc_channel(ahandle *h)
{
    for (unsigned tries = 0; tries <= h->channel_max; tries++) {
        amqp_channel_t ch = h->next_channel;
        h->next_channel = ch >= h->channel_max ? CH_FIRST_CONSUMER
                                               : (amqp_channel_t)(ch + 1);
        int used = 0;
        for (aconsumer *c = h->consumers; c != NULL && !used; c = c->next)
            used = c->subscribed && c->channel == ch;
        if (!used)
            return ch;
    }
    return 0;
}

/* Open ch, limit it to prefetch unacknowledged deliveries, declare the
 * queue and start consuming.  A partitioned queue gets one basic.consume
 * per partition on ch, each after a basic.qos of its share of prefetch
 * (per consumer, which is what quorum queues take: they refuse a
 * channel-wide one): prefetch / N, one more for the first prefetch % N,
 * and at least 1, so the consumer holds at most max(prefetch, N). */
static int subscribe(ahandle *h, amqp_channel_t ch, const char *queue,
                     int prefetch, char *msg, size_t cap)
{
    int code;
    int rc = open_channel(h, ch, msg, cap);
    int parts = aq_partitions(&h->conf, queue);
    for (int k = 0; k < parts && rc == RPC_OK; k++) {
        int share = prefetch / parts + (k < prefetch % parts);
        char part[AQ_NAME_MAX + 1], name[AQ_BROKER_NAME_CAP];
        aq_part_name(queue, k, part, sizeof part);
        snprintf(name, sizeof name, AQ_QUEUE_PREFIX "%s", part);
        amqp_basic_qos(h->conn, ch, 0, (uint16_t)(share > 0 ? share : 1), 0);
        rc = rpc_result(h, amqp_get_rpc_reply(h->conn), ch, "basic.qos", msg,
                        cap, &code);
        if (rc == RPC_OK)
            rc = declare(h, ch, part, 0, NULL, msg, cap, &code);
        if (rc == RPC_OK) {
            amqp_basic_consume(h->conn, ch, amqp_cstring_bytes(name),
                               amqp_empty_bytes, 0, 0, 0, amqp_empty_table);
            rc = rpc_result(h, amqp_get_rpc_reply(h->conn), ch, "basic.consume",
                            msg, cap, &code);
        }
        amqp_maybe_release_buffers_on_channel(h->conn, ch);
    }
    return rc;
}

/* Subscribe every consumer that needs it (new, or after a loss). */
int sked_queue_amqp_subscribe_all(ahandle *h)
{
    sked_monotime now = sked_clock_mono_now();
    for (;;) {
        pthread_mutex_lock(&h->lock);
        aconsumer *c = h->consumers;
        while (c != NULL &&
               !(c->need_sub && !c->closing && c->retry_at <= now))
            c = c->next;
        if (c == NULL) {
            pthread_mutex_unlock(&h->lock);
            return 0;
        }
        amqp_channel_t ch = alloc_channel(h);
        c->need_sub = 0;
        c->busy = 1;
        pthread_mutex_unlock(&h->lock);

        char msg[200] = "no free channel";
        int rc = ch ? subscribe(h, ch, c->queue, c->prefetch, msg, sizeof msg)
                    : RPC_CHANNEL;
        rx_free(&c->rx);
        pthread_mutex_lock(&h->lock);
        c->busy = 0;
        if (rc == RPC_OK) {
            c->channel = ch;
            c->subscribed = 1;
            c->ever_subscribed = 1;
        } else if (rc == RPC_CHANNEL && c->opening) {
            c->sub_failed = 1;
            snprintf(c->sub_msg, sizeof c->sub_msg, "%s", msg);
        } else if (!c->closing) {
            c->need_sub = 1;
            c->retry_at = now + (rc == RPC_CHANNEL ? RESUBSCRIBE_RETRY_US : 0);
        }
        pthread_cond_broadcast(&c->cond);
        pthread_mutex_unlock(&h->lock);
        if (rc == RPC_CONN)
            return -1;
    }
}

int sked_queue_amqp_close_consumer(ahandle *h, acmd *cmd)
{
    aconsumer *c = cmd->c;
    pthread_mutex_lock(&h->lock);
    aconsumer **pp = &h->consumers;
    while (*pp != NULL && *pp != c)
        pp = &(*pp)->next;
    if (*pp != NULL)
        *pp = c->next;
    int live = c->subscribed;
    amqp_channel_t ch = c->channel;
    c->subscribed = 0;
    c->channel = 0;
    pthread_mutex_unlock(&h->lock);

    /* Closing the channel hands its unacked deliveries back. */
    int rc = live ? sked_queue_amqp_close_channel(h, ch) : RPC_OK;
    rx_free(&c->rx);
    pthread_mutex_lock(&h->lock);
    cmd->done = 1;
    pthread_cond_broadcast(cmd->cond);
    pthread_mutex_unlock(&h->lock);
    return rc == RPC_CONN ? -1 : 0;
}

int sked_queue_amqp_depth_query(ahandle *h, acmd *cmd)
{
    char msg[200];
    int code, rc = RPC_OK;
    int64_t ready = 0;
    int parts = aq_partitions(&h->conf, cmd->queue);
    for (int k = 0; k < parts; k++) {
        char part[AQ_NAME_MAX + 1];
        uint32_t count = 0;
        aq_part_name(cmd->queue, k, part, sizeof part);
        rc = declare(h, CH_CONTROL, part, 1, &count, msg, sizeof msg, &code);
        if (rc == RPC_CHANNEL && code == AMQP_NOT_FOUND)
            rc = RPC_OK;        /* never used: empty */
        if (rc != RPC_OK)
            break;
        ready += count;
    }
    pthread_mutex_lock(&h->lock);
    if (rc == RPC_OK) {
        cmd->ready = ready;
    } else if (rc == RPC_CHANNEL) {
        cmd->rc = sked_err_set(cmd->err, SKED_EIO, "queue", 0, "%s", msg);
    } else {
        cmd->rc = sked_err_set(cmd->err, SKED_EUNAVAIL, NULL, 0,
                               "RabbitMQ connection lost: %s", h->io_error);
    }
    cmd->done = 1;
    pthread_cond_broadcast(cmd->cond);
    pthread_mutex_unlock(&h->lock);
    return rc == RPC_CONN ? -1 : 0;
}

/* ---- connecting -------------------------------------------------------- */

static int connect_node(ahandle *h, int i)
{
    const aconf *cf = &h->conf;
    const anode *n = &cf->nodes[i];
    char msg[200];
    int code;
    amqp_connection_state_t conn = amqp_new_connection();
    if (conn == NULL)
        abort();
    h->conn = conn;
    amqp_socket_t *sock = cf->tls ? amqp_ssl_socket_new(conn)
                                  : amqp_tcp_socket_new(conn);
    if (sock == NULL) {
        sked_queue_amqp_fail(h, "%s:%d: cannot create a socket", n->host,
                             n->port);
        goto fail;
    }
    if (cf->tls) {
        int st = AMQP_STATUS_OK;
        if (cf->cacert[0] != '\0')
            st = amqp_ssl_socket_set_cacert(sock, cf->cacert);
        if (st == AMQP_STATUS_OK && cf->cert[0] != '\0')
            st = amqp_ssl_socket_set_key(sock, cf->cert, cf->key);
        if (st != AMQP_STATUS_OK) {
            sked_queue_amqp_fail(h, "%s:%d: TLS setup: %s", n->host, n->port,
                                 amqp_error_string2(st));
            goto fail;
        }
        amqp_ssl_socket_set_verify_peer(sock, cf->verify);
        amqp_ssl_socket_set_verify_hostname(sock, cf->verify);
    }
    struct timeval ctv = tv_of(cf->connect_timeout_us);
    struct timeval rtv = tv_of(cf->rpc_timeout_us);
    amqp_set_handshake_timeout(conn, &ctv);
    amqp_set_rpc_timeout(conn, &rtv);
    int st = amqp_socket_open_noblock(sock, n->host, n->port, &ctv);
    if (st != AMQP_STATUS_OK) {
        sked_queue_amqp_fail(h, "%s:%d: %s", n->host, n->port,
                             amqp_error_string2(st));
        goto fail;
    }

    /* Advertise consumer_cancel_notify, or the broker would silently stop
     * a consumer whose queue was deleted. */
    char cname[64];
    snprintf(cname, sizeof cname, "sked pid %ld", (long)getpid());
    amqp_table_entry_t caps[] = {
        {amqp_cstring_bytes("consumer_cancel_notify"),
         {.kind = AMQP_FIELD_KIND_BOOLEAN, .value.boolean = 1}},
        {amqp_cstring_bytes("publisher_confirms"),
         {.kind = AMQP_FIELD_KIND_BOOLEAN, .value.boolean = 1}},
        {amqp_cstring_bytes("basic.nack"),
         {.kind = AMQP_FIELD_KIND_BOOLEAN, .value.boolean = 1}},
    };
    amqp_table_entry_t props[] = {
        {amqp_cstring_bytes("capabilities"),
         {.kind = AMQP_FIELD_KIND_TABLE,
          .value.table = {sizeof caps / sizeof caps[0], caps}}},
        {amqp_cstring_bytes("connection_name"),
         {.kind = AMQP_FIELD_KIND_UTF8,
          .value.bytes = amqp_cstring_bytes(cname)}},
    };
    amqp_table_t ptable = {sizeof props / sizeof props[0], props};
    amqp_rpc_reply_t r = amqp_login_with_properties(
        conn, cf->vhost, 0, FRAME_MAX, cf->heartbeat_s, &ptable,
        AMQP_SASL_METHOD_PLAIN, cf->user, cf->pass);
    if (r.reply_type != AMQP_RESPONSE_NORMAL) {
        if (r.reply_type == AMQP_RESPONSE_SERVER_EXCEPTION &&
            r.reply.id == AMQP_CONNECTION_CLOSE_METHOD) {
            amqp_connection_close_t *m = r.reply.decoded;
            sked_queue_amqp_fail(
                h, "%s:%d: login as %s to vhost %s refused: %.*s", n->host,
                n->port, cf->user, cf->vhost, (int)m->reply_text.len,
                (const char *)m->reply_text.bytes);
        } else {
            sked_queue_amqp_fail(
                h, "%s:%d: login as %s: %s", n->host, n->port, cf->user,
                r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION
                    ? amqp_error_string2(r.library_error)
                    : "refused");
        }
        goto fail;
    }
    int cmax = amqp_get_channel_max(conn);
    h->channel_max = (uint16_t)(cmax <= 0 || cmax > 65535 ? 65535 : cmax);
    h->next_channel = CH_FIRST_CONSUMER;
    h->node = i;
    if (open_channel(h, CH_CONTROL, msg, sizeof msg) != RPC_OK ||
        open_channel(h, CH_PUBLISH, msg, sizeof msg) != RPC_OK)
        goto fail_prefixed;
    h->ctl_open = 1;
    amqp_confirm_select(conn, CH_PUBLISH);
    if (rpc_result(h, amqp_get_rpc_reply(conn), CH_PUBLISH,
                   "confirm.select", msg, sizeof msg, &code) != RPC_OK)
        goto fail_prefixed;
    h->pub_dtag = 0;
    h->last_rx = h->last_read = sked_clock_mono_now();
    amqp_maybe_release_buffers(conn);
    return 0;

fail_prefixed: {
    char why[sizeof h->io_error];
    snprintf(why, sizeof why, "%s", h->io_error[0] ? h->io_error : msg);
    sked_queue_amqp_fail(h, "%s:%d: %s", n->host, n->port, why);
}
fail:
    amqp_destroy_connection(conn);
    h->conn = NULL;
    return -1;
}

static int stopping(ahandle *h)
{
    pthread_mutex_lock(&h->lock);
    int stop = h->stop;
    pthread_mutex_unlock(&h->lock);
    return stop;
}

/* Try every node once, starting after the one we were on. */
int sked_queue_amqp_connect(ahandle *h)
{
    int n = h->conf.nnodes;
    int start = (h->node + 1) % n;
    char errors[sizeof h->io_error] = "";
    for (int k = 0; k < n && !stopping(h); k++) {
        h->io_error[0] = '\0';
        if (connect_node(h, (start + k) % n) == 0)
            return 0;
        /* "node A: why; node B: why", cut at the buffer's end */
        size_t used = strlen(errors);
        if (used > 0 && used + 2 < sizeof errors) {
            memcpy(errors + used, "; ", 3);
            used += 2;
        }
        size_t len = strlen(h->io_error);
        if (len > sizeof errors - 1 - used)
            len = sizeof errors - 1 - used;
        memcpy(errors + used, h->io_error, len);
        errors[used + len] = '\0';
    }
    snprintf(h->io_error, sizeof h->io_error, "%s",
             errors[0] ? errors : "stopped");
    return -1;
}
