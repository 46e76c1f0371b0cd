/*
 * queue_mem.c - the in-process queue backend: "mem:" and "mem:NAME".
 *
 * What `sked server` runs on: the scheduler publishes, workers consume and
 * events flow back, all inside one process.  A URL names a broker in a
 * process-wide registry ("mem:" is the default broker, "mem:NAME" another
 * one), so each role may open the URL on its own and still meet the others.
 * A broker lives while any handle or consumer on it is open.  Nothing is
 * durable: messages die with the process, and the store plus the
 * scheduler's sweep are what recover runs lost that way.
 *
 * Not here: URL dispatch and the wrappers (queue.c); anything networked.
 *
 * Locking.  One mutex per broker guards its queues, their messages and its
 * consumers.  Bodies are copied outside it (on publish before taking it, on
 * delivery after releasing it), so a large message does not stall other
 * queues.  Each consumer has its own condition variable on CLOCK_MONOTONIC,
 * and each queue keeps the consumers blocked in next() in a FIFO: a publish
 * signals exactly the longest-waiting consumer that has room under its
 * prefetch, and unlinks it, so a second publish wakes a second consumer.
 * Nothing polls, nothing wakes in a herd, waiting consumers take turns.  A
 * consumer that is signalled but leaves without a message (woken by
 * consumer_wake) passes the signal on.
 *
 * A message lives in exactly one list: its queue's `ready` list, or the
 * `unacked` list of the consumer it was delivered to.  Requeued messages
 * (nack, consumer close) go back to the head of `ready`.
 */
#include "queue/queue.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/clock.h"

/* AMQP's basic.qos prefetch count is 16 bits; the same limit for all. */
#define PREFETCH_MAX 65535

/* Timeouts longer than this (100 years) mean "forever"; it also keeps the
 * absolute deadline far from any overflow. */
#define FOREVER_US (INT64_C(100) * 365 * 86400 * SKED_USEC_PER_SEC)

typedef struct msg {
    struct msg *prev, *next;
    uint64_t tag;               /* the current delivery's, while unacked */
    unsigned deliveries;        /* times handed out so far               */
    size_t len;
    char body[];                /* len bytes, then a NUL                 */
} msg;

typedef struct mlist {
    msg *head, *tail;
    int64_t n;
} mlist;

typedef struct mconsumer mconsumer;

typedef struct mqueue {
    struct mqueue *next;        /* in the broker's list                  */
    char name[SKED_QUEUE_NAME_MAX + 1];
    mlist ready;
    int64_t unacked;            /* sum of its consumers' unacked.n       */
    mconsumer *wait_head;       /* consumers blocked in next, oldest     */
    mconsumer *wait_tail;       /* first                                 */
} mqueue;

typedef struct broker {
    struct broker *next;        /* in the registry                       */
    int refs;                   /* handles + consumers; registry_lock    */
    char name[SKED_QUEUE_NAME_MAX + 1];
    pthread_mutex_t lock;       /* everything below, and all consumers   */
    mqueue *queues;
    uint64_t last_tag;
} broker;

typedef struct mhandle {
    sked_queue base;
    broker *b;
} mhandle;

struct mconsumer {
    sked_consumer base;
    broker *b;
    mqueue *q;
    int prefetch;
    mlist unacked;              /* in delivery order                     */
    pthread_cond_t cond;        /* CLOCK_MONOTONIC                       */
    int wake_pending;           /* consumer_wake since the last next     */
    int waiting;                /* linked in q's wait list               */
    mconsumer *wprev, *wnext;
};

static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static broker *registry;

/* ---- small helpers ----------------------------------------------------- */

static void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n, size);
    if (p == NULL)
        abort();
    return p;
}

static void ml_push_tail(mlist *l, msg *m)
{
    m->next = NULL;
    m->prev = l->tail;
    if (l->tail)
        l->tail->next = m;
    else
        l->head = m;
    l->tail = m;
    l->n++;
}

static void ml_push_head(mlist *l, msg *m)
{
    m->prev = NULL;
    m->next = l->head;
    if (l->head)
        l->head->prev = m;
    else
        l->tail = m;
    l->head = m;
    l->n++;
}

static void ml_remove(mlist *l, msg *m)
{
    if (m->prev)
        m->prev->next = m->next;
    else
        l->head = m->next;
    if (m->next)
        m->next->prev = m->prev;
    else
        l->tail = m->prev;
    m->prev = m->next = NULL;
    l->n--;
}

static void ml_free(mlist *l)
{
    msg *m = l->head;
    while (m != NULL) {
        msg *next = m->next;
        free(m);
        m = next;
    }
    l->head = l->tail = NULL;
    l->n = 0;
}

/* Queue names and broker names: at most SKED_QUEUE_NAME_MAX bytes, no
 * control characters; queue names are also non-empty. */
static int check_name(const char *name, int allow_empty, const char *what,
                      sked_err *err)
{
    if (name == NULL || (name[0] == '\0' && !allow_empty))
        return sked_err_set(err, SKED_EINVAL, what, 0, "empty %s name",
                            what);
    size_t n = strnlen(name, SKED_QUEUE_NAME_MAX + 1);
    if (n > SKED_QUEUE_NAME_MAX)
        return sked_err_set(err, SKED_EINVAL, what, 0,
                            "%s name is longer than %d bytes", what,
                            SKED_QUEUE_NAME_MAX);
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)name[i];
        if (ch < 0x20 || ch == 0x7f)
            return sked_err_set(err, SKED_EINVAL, what, (int)i + 1,
                                "%s name has a control character", what);
    }
    return 0;
}

/* ---- brokers ------------------------------------------------------------ */

/* The broker called name, created on first use, with one more reference. */
static broker *broker_ref(const char *name)
{
    pthread_mutex_lock(&registry_lock);
    broker *b = registry;
    while (b != NULL && strcmp(b->name, name) != 0)
        b = b->next;
    if (b == NULL) {
        b = xcalloc(1, sizeof *b);
        snprintf(b->name, sizeof b->name, "%s", name);
        pthread_mutex_init(&b->lock, NULL);
        b->next = registry;
        registry = b;
    }
    b->refs++;
    pthread_mutex_unlock(&registry_lock);
    return b;
}

/* One more reference to a broker the caller already holds one on. */
static broker *broker_hold(broker *b)
{
    pthread_mutex_lock(&registry_lock);
    b->refs++;
    pthread_mutex_unlock(&registry_lock);
    return b;
}

/* Drop a reference; the last one frees the broker and what it holds. */
static void broker_unref(broker *b)
{
    pthread_mutex_lock(&registry_lock);
    int last = --b->refs == 0;
    if (last) {
        broker **pp = &registry;
        while (*pp != b)
            pp = &(*pp)->next;
        *pp = b->next;
    }
    pthread_mutex_unlock(&registry_lock);
    if (!last)
        return;
    mqueue *q = b->queues;
    while (q != NULL) {
        mqueue *next = q->next;
        ml_free(&q->ready);     /* no consumer is left, so nothing unacked */
        free(q);
        q = next;
    }
    pthread_mutex_destroy(&b->lock);
    free(b);
}

/* The queue called name; NULL when it was never used and !create.  A
 * linear search: a process has a handful of queues.  Caller holds b->lock. */
static mqueue *find_queue(broker *b, const char *name, int create)
{
    for (mqueue *q = b->queues; q != NULL; q = q->next)
        if (strcmp(q->name, name) == 0)
            return q;
    if (!create)
        return NULL;
    mqueue *q = xcalloc(1, sizeof *q);
    snprintf(q->name, sizeof q->name, "%s", name);
    q->next = b->queues;
    b->queues = q;
    return q;
}

/* ---- waiting ------------------------------------------------------------ */

static void wait_link(mqueue *q, mconsumer *c)
{
    c->wnext = NULL;
    c->wprev = q->wait_tail;
    if (q->wait_tail)
        q->wait_tail->wnext = c;
    else
        q->wait_head = c;
    q->wait_tail = c;
    c->waiting = 1;
}

static void wait_unlink(mqueue *q, mconsumer *c)
{
    if (c->wprev)
        c->wprev->wnext = c->wnext;
    else
        q->wait_head = c->wnext;
    if (c->wnext)
        c->wnext->wprev = c->wprev;
    else
        q->wait_tail = c->wprev;
    c->wprev = c->wnext = NULL;
    c->waiting = 0;
}

/* Signal up to n consumers blocked on q that have room for a delivery,
 * oldest first, unlinking each so the next kick picks another.  Caller
 * holds the broker lock (so a consumer cannot vanish under the signal). */
static void kick(mqueue *q, int64_t n)
{
    mconsumer *c = q->wait_head;
    while (c != NULL && n > 0) {
        mconsumer *next = c->wnext;
        if (c->unacked.n < c->prefetch) {
            wait_unlink(q, c);
            pthread_cond_signal(&c->cond);
            n--;
        }
        c = next;
    }
}

/* ---- the methods -------------------------------------------------------- */

static int mem_open(const char *url, sked_queue **out, sked_err *err)
{
    *out = NULL;
    const char *colon = strchr(url, ':');
    const char *name = colon ? colon + 1 : "";
    int rc = check_name(name, 1, "broker", err);
    if (rc != 0)
        return rc;
    mhandle *h = xcalloc(1, sizeof *h);
    h->base.ops = &sked_queue_mem_ops;
    h->b = broker_ref(name);
    *out = &h->base;
    return 0;
}

static void mem_close(sked_queue *base)
{
    mhandle *h = (mhandle *)base;
    broker_unref(h->b);
    free(h);
}

static int mem_ping(sked_queue *base, sked_err *err)
{
    (void)base;
    (void)err;
    return 0;
}

/* A copy of body as a message for queue, or an error (nothing allocated). */
static int msg_new(const char *queue, const void *body, size_t len, msg **out,
                   sked_err *err)
{
    int rc = check_name(queue, 0, "queue", err);
    if (rc != 0)
        return rc;
    if (body == NULL && len > 0)
        return sked_err_set(err, SKED_EINVAL, "body", 0,
                            "NULL body of %zu bytes", len);
    if (len > SIZE_MAX - sizeof(msg) - 1)
        return sked_err_set(err, SKED_ETOOBIG, "body", 0,
                            "message of %zu bytes", len);
    msg *m = malloc(sizeof *m + len + 1);
    if (m == NULL)
        return sked_err_set(err, SKED_ENOMEM, "body", 0,
                            "no memory for a message of %zu bytes", len);
    memset(m, 0, sizeof *m);
    m->len = len;
    if (len > 0)
        memcpy(m->body, body, len);
    m->body[len] = '\0';
    *out = m;
    return 0;
}

/* Every message is checked and copied first; then all are queued under one
 * hold of the lock, so a consumer woken by the batch finds all of it ready
 * (a worker then starts a whole dispatch batch in one go). */
static int mem_publish_batch(sked_queue *base, sked_message *msgs, size_t n,
                             sked_err *err)
{
    broker *b = ((mhandle *)base)->b;
    msg **ms = calloc(n, sizeof *ms);
    if (ms == NULL) {
        for (size_t i = 0; i < n; i++)
            msgs[i].result = SKED_ENOMEM;
        return sked_err_set(err, SKED_ENOMEM, NULL, 0,
                            "no memory for a batch of %zu messages", n);
    }
    int first = 0;
    for (size_t i = 0; i < n; i++) {
        sked_err e = {0};
        msgs[i].result = msg_new(msgs[i].queue, msgs[i].body, msgs[i].len,
                                 &ms[i], &e);
        if (msgs[i].result != 0 && first == 0) {
            first = msgs[i].result;
            if (err)
                *err = e;
        }
    }
    pthread_mutex_lock(&b->lock);
    for (size_t i = 0; i < n; i++) {
        if (ms[i] == NULL)
            continue;
        mqueue *q = find_queue(b, msgs[i].queue, 1);
        ml_push_tail(&q->ready, ms[i]);
        kick(q, 1);
    }
    pthread_mutex_unlock(&b->lock);
    free(ms);
    return first;
}

static int mem_publish(sked_queue *base, const char *queue, const void *body,
                       size_t len, sked_err *err)
{
    sked_message m = {.queue = queue, .body = body, .len = len};
    return mem_publish_batch(base, &m, 1, err);
}

static int mem_consumer_open(sked_queue *base, const char *queue,
                             int prefetch, sked_consumer **out, sked_err *err)
{
    *out = NULL;
    int rc = check_name(queue, 0, "queue", err);
    if (rc != 0)
        return rc;
    if (prefetch < 1 || prefetch > PREFETCH_MAX)
        return sked_err_set(err, SKED_EINVAL, "prefetch", 0,
                            "prefetch %d is not in 1..%d", prefetch,
                            PREFETCH_MAX);
    mconsumer *c = xcalloc(1, sizeof *c);
    c->base.ops = &sked_queue_mem_ops;
    c->prefetch = prefetch;
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&c->cond, &attr);
    pthread_condattr_destroy(&attr);

    c->b = broker_hold(((mhandle *)base)->b);
    pthread_mutex_lock(&c->b->lock);
    c->q = find_queue(c->b, queue, 1);
    pthread_mutex_unlock(&c->b->lock);
    *out = &c->base;
    return 0;
}

/* Hand out the head of q's ready list to c.  Caller holds the lock and
 * checked that there is one and that c has room. */
static msg *take(mconsumer *c)
{
    mqueue *q = c->q;
    msg *m = q->ready.head;
    ml_remove(&q->ready, m);
    m->tag = ++c->b->last_tag;
    m->deliveries++;
    ml_push_tail(&c->unacked, m);
    q->unacked++;
    return m;
}

/* Undo take() when the delivery could not be made. */
static void untake(mconsumer *c, msg *m)
{
    mqueue *q = c->q;
    ml_remove(&c->unacked, m);
    q->unacked--;
    m->deliveries--;
    ml_push_head(&q->ready, m);
    kick(q, 1);
}

static int mem_consumer_next(sked_consumer *base, int64_t timeout_us,
                             sked_delivery *out, sked_err *err)
{
    mconsumer *c = (mconsumer *)base;
    broker *b = c->b;
    mqueue *q = c->q;
    int forever = timeout_us < 0 || timeout_us >= FOREVER_US;
    struct timespec deadline = {0, 0};
    if (!forever && timeout_us > 0)
        deadline = sked_clock_timespec(sked_clock_mono_now() + timeout_us);

    pthread_mutex_lock(&b->lock);
    msg *m = NULL;
    int woken = 0, timed_out = timeout_us == 0;
    for (;;) {
        if (c->wake_pending) {
            woken = 1;
            break;
        }
        if (c->unacked.n < c->prefetch && q->ready.head != NULL) {
            m = take(c);
            break;
        }
        if (timed_out)
            break;
        if (!c->waiting)
            wait_link(q, c);
        if (forever)
            pthread_cond_wait(&c->cond, &b->lock);
        else if (pthread_cond_timedwait(&c->cond, &b->lock, &deadline) ==
                 ETIMEDOUT)
            timed_out = 1;
    }
    c->wake_pending = 0;
    if (c->waiting)
        wait_unlink(q, c);
    if (m == NULL) {
        /* We may have been signalled for a message we now leave behind. */
        if (woken && q->ready.head != NULL)
            kick(q, 1);
        pthread_mutex_unlock(&b->lock);
        return sked_err_set(err, SKED_EAGAIN, NULL, 0, "%s on queue %s",
                            woken ? "woken" : "no message", q->name);
    }
    size_t len = m->len;
    int redelivered = m->deliveries > 1;
    uint64_t tag = m->tag;
    pthread_mutex_unlock(&b->lock);

    /* m stays put while we copy: only an ack, nack or close of this very
     * consumer could free it, and none can name the tag before we return
     * it.  The body bytes never change after publish. */
    char *body = malloc(len + 1);
    if (body == NULL) {
        pthread_mutex_lock(&b->lock);
        untake(c, m);
        pthread_mutex_unlock(&b->lock);
        return sked_err_set(err, SKED_ENOMEM, "body", 0,
                            "no memory for a delivery of %zu bytes", len);
    }
    memcpy(body, m->body, len + 1);
    out->tag = tag;
    snprintf(out->queue, sizeof out->queue, "%s", q->name);
    out->body = body;
    out->len = len;
    out->redelivered = redelivered;
    return 0;
}

/* A wake is never lost: with no next() in progress it is kept, and the
 * following next() returns SKED_EAGAIN at once.  So a thread may set its
 * own stop flag, call wake, and know the consumer's loop will see the flag
 * whichever side of its check the wake lands on. */
static void mem_consumer_wake(sked_consumer *base)
{
    mconsumer *c = (mconsumer *)base;
    pthread_mutex_lock(&c->b->lock);
    c->wake_pending = 1;
    if (c->waiting)
        wait_unlink(c->q, c);
    pthread_cond_signal(&c->cond);
    pthread_mutex_unlock(&c->b->lock);
}

/* Unlink the delivery `tag` from c's unacked list, or NULL.  Tags grow with
 * every delivery, so search from the newest end, where acks mostly land
 * when work is short. */
static msg *find_unacked(mconsumer *c, uint64_t tag)
{
    for (msg *m = c->unacked.tail; m != NULL; m = m->prev) {
        if (m->tag == tag) {
            ml_remove(&c->unacked, m);
            c->q->unacked--;
            return m;
        }
        if (m->tag < tag)
            break;
    }
    return NULL;
}

/* c just got room: if it is blocked at its prefetch limit with messages
 * ready, let it go. */
static void room_made(mconsumer *c)
{
    if (c->waiting && c->q->ready.head != NULL) {
        wait_unlink(c->q, c);
        pthread_cond_signal(&c->cond);
    }
}

static int mem_ack(sked_consumer *base, uint64_t tag, sked_err *err)
{
    mconsumer *c = (mconsumer *)base;
    pthread_mutex_lock(&c->b->lock);
    msg *m = find_unacked(c, tag);
    if (m != NULL)
        room_made(c);
    pthread_mutex_unlock(&c->b->lock);
    if (m == NULL)
        return sked_err_set(err, SKED_EINVAL, "tag", 0,
                            "no unacknowledged delivery %llu on this consumer",
                            (unsigned long long)tag);
    free(m);
    return 0;
}

static int mem_nack(sked_consumer *base, uint64_t tag, int requeue,
                    sked_err *err)
{
    mconsumer *c = (mconsumer *)base;
    pthread_mutex_lock(&c->b->lock);
    msg *m = find_unacked(c, tag);
    int found = m != NULL;
    if (found && requeue) {
        ml_push_head(&c->q->ready, m);
        kick(c->q, 1);
        m = NULL;               /* the queue owns it again */
    }
    if (found)
        room_made(c);
    pthread_mutex_unlock(&c->b->lock);
    if (!found)
        return sked_err_set(err, SKED_EINVAL, "tag", 0,
                            "no unacknowledged delivery %llu on this consumer",
                            (unsigned long long)tag);
    free(m);
    return 0;
}

static void mem_consumer_close(sked_consumer *base)
{
    mconsumer *c = (mconsumer *)base;
    broker *b = c->b;
    mqueue *q = c->q;
    pthread_mutex_lock(&b->lock);
    if (c->waiting)
        wait_unlink(q, c);
    /* Back to the head, oldest delivery first. */
    int64_t n = c->unacked.n;
    while (c->unacked.tail != NULL) {
        msg *m = c->unacked.tail;
        ml_remove(&c->unacked, m);
        ml_push_head(&q->ready, m);
    }
    q->unacked -= n;
    kick(q, n);
    pthread_mutex_unlock(&b->lock);
    pthread_cond_destroy(&c->cond);
    free(c);
    broker_unref(b);
}

static int mem_depth(sked_queue *base, const char *queue, int64_t *ready,
                     int64_t *unacked, sked_err *err)
{
    broker *b = ((mhandle *)base)->b;
    int rc = check_name(queue, 0, "queue", err);
    if (rc != 0)
        return rc;
    pthread_mutex_lock(&b->lock);
    mqueue *q = find_queue(b, queue, 0);
    int64_t r = q ? q->ready.n : 0, u = q ? q->unacked : 0;
    pthread_mutex_unlock(&b->lock);
    if (ready)
        *ready = r;
    if (unacked)
        *unacked = u;
    return 0;
}

const sked_queue_ops sked_queue_mem_ops = {
    .version = SKED_QUEUE_OPS_VERSION,
    .name = "mem",
    .scheme = "mem",
    .open = mem_open,
    .close = mem_close,
    .ping = mem_ping,
    .publish = mem_publish,
    .consumer_open = mem_consumer_open,
    .consumer_next = mem_consumer_next,
    .consumer_wake = mem_consumer_wake,
    .ack = mem_ack,
    .nack = mem_nack,
    .consumer_close = mem_consumer_close,
    .depth = mem_depth,
    .publish_batch = mem_publish_batch,
};
