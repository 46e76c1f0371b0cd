/*
 * test_queue.c - the queue conformance suite: every semantic listed in
 * src/queue/queue.h, run against whichever backend SKED_TEST_QUEUE_URL
 * names (default "mem:").
 *
 * The suite never assumes an empty broker: every test works on queue names
 * of its own, unique per run (a random salt, the pid and a counter), so it
 * can be pointed at a shared, long-lived RabbitMQ.  A networked broker
 * pushes deliveries and updates its counters asynchronously, so the suite
 * awaits a delivery with a timeout instead of polling once, awaits depths
 * until they match, and only relies on orders a broker can promise (a
 * requeued message is first again only for a consumer with prefetch 1).
 * Timing assertions are loose: "promptly" means within half a second.
 * Helper threads never call cmocka asserts; they record what happened and
 * the main thread checks.  An alarm ends the program if a test hangs.
 *
 * Backend-specific parts, all marked where they are:
 *   - test_reconnect crashes and restarts the broker between publishes when
 *     SKED_TEST_QUEUE_RESTART names a command that does so (tests/run passes
 *     "scripts/rabbit-test restart DIR"); on mem: there is no broker to
 *     restart and it runs the same traffic without; on a networked backend
 *     without the command it is skipped;
 *   - test_mem_named_brokers is about mem: URLs only.
 * Everything else holds every backend to the same answers.
 */
#include "../unit/harness.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <time.h>
#include <unistd.h>

#include "core/clock.h"
#include "queue/queue.h"

#define MSEC SKED_USEC_PER_MSEC
#define WAIT_US (5 * SKED_USEC_PER_SEC) /* a delivery that must come   */
#define QUIET_US (100 * MSEC)           /* ...and one that must not    */
#define PROMPT_US (500 * MSEC)          /* a wake-up that must be quick */
#define WATCHDOG_S 120

static char url[4096];
static unsigned salt;
static atomic_uint counter;

/* ---- helpers ----------------------------------------------------------- */

static int is_mem(void)
{
    return strncmp(url, "mem:", 4) == 0;
}

static void new_name(char *out, size_t cap)
{
    unsigned n = atomic_fetch_add(&counter, 1);
    snprintf(out, cap, "t%08x-%u-%u", salt, (unsigned)getpid(), n);
}

static void sleep_us(int64_t us)
{
    struct timespec ts = {(time_t)(us / SKED_USEC_PER_SEC),
                          (long)(us % SKED_USEC_PER_SEC) * 1000};
    while (nanosleep(&ts, &ts) != 0)
        ;
}

#define MAXC 8

typedef struct fixture {
    sked_queue *q;
    char name[SKED_QUEUE_NAME_MAX + 1];
    char name2[SKED_QUEUE_NAME_MAX + 1];
    sked_consumer *cons[MAXC]; /* closed by teardown if a test failed */
} fixture;

static sked_queue *open_queue(const char *u)
{
    sked_queue *q = NULL;
    sked_err err = {0};
    int rc = sked_queue_open(u, &q, &err);
    if (rc != 0)
        fail_msg("open %s: %s (%s)", u, err.msg, sked_err_name(rc));
    return q;
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    f->q = open_queue(url);
    new_name(f->name, sizeof f->name);
    new_name(f->name2, sizeof f->name2);
    *state = f;
    alarm(WATCHDOG_S);
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    for (int i = 0; i < MAXC; i++)
        sked_queue_consumer_close(f->cons[i]);
    sked_queue_close(f->q);
    free(f);
    alarm(0);
    return 0;
}

static sked_consumer *consumer(fixture *f, const char *queue, int prefetch)
{
    sked_consumer *c = NULL;
    sked_err err = {0};
    int rc = sked_queue_consumer_open(f->q, queue, prefetch, &c, &err);
    if (rc != 0)
        fail_msg("consumer_open %s: %s (%s)", queue, err.msg,
                 sked_err_name(rc));
    for (int i = 0; i < MAXC; i++)
        if (f->cons[i] == NULL) {
            f->cons[i] = c;
            return c;
        }
    fail_msg("more than %d consumers in one test", MAXC);
    return NULL;
}

/* Teardown need not close c: the test does (or hands it to a thread). */
static void forget(fixture *f, sked_consumer *c)
{
    for (int i = 0; i < MAXC; i++)
        if (f->cons[i] == c)
            f->cons[i] = NULL;
}

static void consumer_close(fixture *f, sked_consumer *c)
{
    forget(f, c);
    sked_queue_consumer_close(c);
}

static void publish_n(sked_queue *q, const char *queue, const void *body,
                      size_t len)
{
    sked_err err = {0};
    int rc = sked_queue_publish(q, queue, body, len, &err);
    if (rc != 0)
        fail_msg("publish to %s: %s (%s)", queue, err.msg, sked_err_name(rc));
}

static void publish(sked_queue *q, const char *queue, const char *s)
{
    publish_n(q, queue, s, strlen(s));
}

/* The next delivery, which must come. */
static void get(sked_consumer *c, sked_delivery *d)
{
    sked_err err = {0};
    memset(d, 0, sizeof *d);
    int rc = sked_queue_consumer_next(c, WAIT_US, d, &err);
    if (rc != 0)
        fail_msg("expected a delivery, got %s: %s", sked_err_name(rc),
                 err.msg);
    assert_non_null(d->body);
    assert_int_equal(d->body[d->len], '\0');
}

/* A delivery of the string s, with this redelivered flag; returns its tag
 * and frees it. */
static uint64_t get_str(sked_consumer *c, const char *s, int redelivered)
{
    sked_delivery d;
    get(c, &d);
    assert_int_equal(d.len, strlen(s));
    assert_string_equal(d.body, s);
    assert_int_equal(d.redelivered, redelivered);
    uint64_t tag = d.tag;
    sked_delivery_deinit(&d);
    return tag;
}

/* No delivery within QUIET_US; *out untouched. */
static void get_none(sked_consumer *c)
{
    sked_delivery d;
    memset(&d, 0xa5, sizeof d);
    sked_err err = {0};
    int rc = sked_queue_consumer_next(c, QUIET_US, &d, &err);
    if (rc == 0)
        fail_msg("unexpected delivery of %zu bytes: %.40s", d.len, d.body);
    assert_int_equal(rc, SKED_EAGAIN);
    unsigned char *p = (unsigned char *)&d;
    for (size_t i = 0; i < sizeof d; i++)
        assert_int_equal(p[i], 0xa5);
}

static void ack(sked_consumer *c, uint64_t tag)
{
    sked_err err = {0};
    int rc = sked_queue_ack(c, tag, &err);
    if (rc != 0)
        fail_msg("ack %llu: %s (%s)", (unsigned long long)tag, err.msg,
                 sked_err_name(rc));
}

static void nack(sked_consumer *c, uint64_t tag, int requeue)
{
    sked_err err = {0};
    int rc = sked_queue_nack(c, tag, requeue, &err);
    if (rc != 0)
        fail_msg("nack %llu: %s (%s)", (unsigned long long)tag, err.msg,
                 sked_err_name(rc));
}

/* Wait until queue's depth is (ready, unacked); a broker's counters may lag
 * its deliveries a little. */
static void expect_depth(sked_queue *q, const char *queue, int64_t ready,
                         int64_t unacked)
{
    sked_monotime until = sked_clock_mono_now() + WAIT_US;
    int64_t r = -1, u = -1;
    for (;;) {
        sked_err err = {0};
        int rc = sked_queue_depth(q, queue, &r, &u, &err);
        if (rc != 0)
            fail_msg("depth %s: %s (%s)", queue, err.msg, sked_err_name(rc));
        if ((r == ready && u == unacked) || sked_clock_mono_now() > until)
            break;
        sleep_us(5 * MSEC);
    }
    if (r != ready || u != unacked)
        fail_msg("depth of %s: ready %lld unacked %lld, expected %lld %lld",
                 queue, (long long)r, (long long)u, (long long)ready,
                 (long long)unacked);
}

/* ---- opening ----------------------------------------------------------- */

static void test_open_bad_url(void **state)
{
    (void)state;
    sked_queue *q = (sked_queue *)&q;
    sked_err err = {0};
    assert_int_equal(sked_queue_open("bogus://host/x", &q, &err), SKED_EINVAL);
    assert_null(q);
    assert_non_null(strstr(err.msg, "bogus"));
    assert_int_equal(sked_queue_open("", &q, &err), SKED_EINVAL);
    assert_int_equal(sked_queue_open("noscheme", &q, &err), SKED_EINVAL);
    assert_null(q);
}

static void test_ping(void **state)
{
    fixture *f = *state;
    sked_err err = {0};
    assert_int_equal(sked_queue_ping(f->q, &err), 0);
}

/* Names and prefetch counts every backend refuses alike. */
static void test_invalid_args(void **state)
{
    fixture *f = *state;
    sked_err err = {0};
    sked_consumer *c = NULL;
    char longname[SKED_QUEUE_NAME_MAX + 2];
    memset(longname, 'x', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    assert_int_equal(sked_queue_publish(f->q, "", "x", 1, &err), SKED_EINVAL);
    assert_int_equal(sked_queue_publish(f->q, longname, "x", 1, &err),
                     SKED_EINVAL);
    assert_int_equal(sked_queue_publish(f->q, "a\nb", "x", 1, &err),
                     SKED_EINVAL);
    assert_int_equal(sked_queue_consumer_open(f->q, "", 1, &c, &err),
                     SKED_EINVAL);
    assert_null(c);
    assert_int_equal(sked_queue_consumer_open(f->q, f->name, 0, &c, &err),
                     SKED_EINVAL);
    assert_string_equal(err.field, "prefetch");
    assert_int_equal(sked_queue_consumer_open(f->q, f->name, -1, &c, &err),
                     SKED_EINVAL);
    assert_null(c);
    int64_t r, u;
    assert_int_equal(sked_queue_depth(f->q, "", &r, &u, &err), SKED_EINVAL);

    /* The longest name allowed works. */
    char name[SKED_QUEUE_NAME_MAX + 1];
    memset(name, 'n', sizeof name - 1);
    name[sizeof name - 1] = '\0';
    memcpy(name, f->name, strlen(f->name));
    assert_int_equal(strlen(name), SKED_QUEUE_NAME_MAX);
    publish(f->q, name, "long");
    sked_consumer *lc = consumer(f, name, 1);
    ack(lc, get_str(lc, "long", 0));
}

/* A second handle on the same URL reaches the same queues: how the roles
 * of one process (or of many, on a broker) meet. */
static void test_two_handles_share(void **state)
{
    fixture *f = *state;
    sked_queue *q2 = open_queue(url);
    publish(q2, f->name, "via second handle");
    sked_queue_close(q2);
    expect_depth(f->q, f->name, 1, 0);
    sked_consumer *c = consumer(f, f->name, 1);
    ack(c, get_str(c, "via second handle", 0));
}

/* ---- delivery ---------------------------------------------------------- */

static void test_round_trip(void **state)
{
    fixture *f = *state;
    char buf[] = {'a', '\0', 'b', '\0', '\0', 'c', '\xff'};
    publish_n(f->q, f->name, buf, sizeof buf);
    memset(buf, 'z', sizeof buf);   /* the queue made its own copy */
    publish_n(f->q, f->name, NULL, 0);

    sked_consumer *c = consumer(f, f->name, 2);
    sked_delivery d;
    get(c, &d);
    assert_int_equal(d.len, 7);
    assert_memory_equal(d.body, "a\0b\0\0c\xff", 7);
    assert_string_equal(d.queue, f->name);
    assert_int_equal(d.redelivered, 0);
    ack(c, d.tag);
    sked_delivery_deinit(&d);
    assert_null(d.body);
    assert_int_equal(d.len, 0);

    get(c, &d);
    assert_int_equal(d.len, 0);
    assert_string_equal(d.body, "");
    ack(c, d.tag);
    sked_delivery_deinit(&d);
    sked_delivery_deinit(&d);       /* twice is harmless */
    expect_depth(f->q, f->name, 0, 0);
}

static void test_big_body(void **state)
{
    fixture *f = *state;
    size_t len = 1u << 20;
    unsigned char *buf = malloc(len);
    unsigned x = salt | 1;
    for (size_t i = 0; i < len; i++) {
        x = x * 1103515245u + 12345u;
        buf[i] = (i % 97 == 0) ? 0 : (unsigned char)(x >> 16);
    }
    publish_n(f->q, f->name, buf, len);
    sked_consumer *c = consumer(f, f->name, 1);
    sked_delivery d;
    get(c, &d);
    assert_int_equal(d.len, len);
    assert_memory_equal(d.body, buf, len);
    ack(c, d.tag);
    sked_delivery_deinit(&d);
    free(buf);
}

static void test_fifo(void **state)
{
    fixture *f = *state;
    char s[32];
    for (int i = 0; i < 200; i++) {
        snprintf(s, sizeof s, "m%03d", i);
        publish(f->q, f->name, s);
    }
    sked_consumer *c = consumer(f, f->name, 10);
    for (int i = 0; i < 200; i++) {
        snprintf(s, sizeof s, "m%03d", i);
        ack(c, get_str(c, s, 0));
    }
    get_none(c);
}

/* A batch: every message published (FIFO per queue across the batch), a
 * bad one refused with its own result while the others still go. */
static void test_publish_batch(void **state)
{
    fixture *f = *state;
    enum { N = 300 };
    static char bodies[N][16];
    sked_message m[N + 1];
    for (int i = 0; i < N; i++) {
        snprintf(bodies[i], sizeof bodies[i], "p%03d", i);
        m[i] = (sked_message){.queue = i % 3 ? f->name : f->name2, .body = bodies[i],
                              .len = strlen(bodies[i]), .result = -1};
    }
    sked_err err = {0};
    assert_int_equal(sked_queue_publish_batch(f->q, m, N, &err), 0);
    for (int i = 0; i < N; i++)
        assert_int_equal(m[i].result, 0);
    expect_depth(f->q, f->name, 200, 0);
    expect_depth(f->q, f->name2, 100, 0);
    sked_consumer *c = consumer(f, f->name, 50), *c2 = consumer(f, f->name2, 50);
    for (int i = 0; i < N; i++)
        ack(i % 3 ? c : c2, get_str(i % 3 ? c : c2, bodies[i], 0));
    get_none(c);

    /* the middle one has a bad queue name */
    m[0] = (sked_message){.queue = f->name, .body = "a", .len = 1, .result = -1};
    m[1] = (sked_message){.queue = "", .body = "b", .len = 1, .result = -1};
    m[2] = (sked_message){.queue = f->name, .body = "c", .len = 1, .result = -1};
    assert_int_equal(sked_queue_publish_batch(f->q, m, 3, &err), SKED_EINVAL);
    assert_int_equal(m[0].result, 0);
    assert_int_equal(m[1].result, SKED_EINVAL);
    assert_int_equal(m[2].result, 0);
    ack(c, get_str(c, "a", 0));
    ack(c, get_str(c, "c", 0));
    get_none(c);
    assert_int_equal(sked_queue_publish_batch(f->q, m, 0, &err), 0);
}

/* Publishing never waits for consumers: a backlog just accumulates. */
static void test_backlog(void **state)
{
    fixture *f = *state;
    char s[32];
    for (int i = 0; i < 5000; i++) {
        snprintf(s, sizeof s, "b%d", i);
        publish(f->q, f->name, s);
    }
    expect_depth(f->q, f->name, 5000, 0);
    sked_consumer *c = consumer(f, f->name, 100);
    for (int i = 0; i < 5000; i++) {
        snprintf(s, sizeof s, "b%d", i);
        ack(c, get_str(c, s, 0));
    }
    expect_depth(f->q, f->name, 0, 0);
}

static void test_queues_independent(void **state)
{
    fixture *f = *state;
    publish(f->q, f->name, "one");
    publish(f->q, f->name2, "two");
    sked_consumer *c1 = consumer(f, f->name, 5);
    sked_delivery d;
    get(c1, &d);
    assert_string_equal(d.body, "one");
    assert_string_equal(d.queue, f->name);
    ack(c1, d.tag);
    sked_delivery_deinit(&d);
    get_none(c1);
    expect_depth(f->q, f->name2, 1, 0);

    sked_consumer *c2 = consumer(f, f->name2, 5);
    get(c2, &d);
    assert_string_equal(d.body, "two");
    assert_string_equal(d.queue, f->name2);
    /* A tag of one queue's consumer means nothing to another's. */
    sked_err err = {0};
    assert_int_equal(sked_queue_ack(c1, d.tag, &err), SKED_EINVAL);
    ack(c2, d.tag);
    sked_delivery_deinit(&d);
    expect_depth(f->q, f->name, 0, 0);
    expect_depth(f->q, f->name2, 0, 0);
}

/* ---- prefetch, ack, nack ----------------------------------------------- */

static void test_prefetch(void **state)
{
    fixture *f = *state;
    char s[32];
    for (int i = 0; i < 10; i++) {
        snprintf(s, sizeof s, "p%d", i);
        publish(f->q, f->name, s);
    }
    sked_consumer *c = consumer(f, f->name, 3);
    uint64_t tags[10];
    for (int i = 0; i < 3; i++) {
        snprintf(s, sizeof s, "p%d", i);
        tags[i] = get_str(c, s, 0);
    }
    get_none(c);
    get_none(c);
    ack(c, tags[1]);
    tags[3] = get_str(c, "p3", 0);
    get_none(c);
    ack(c, tags[0]);
    ack(c, tags[2]);
    ack(c, tags[3]);
    for (int i = 4; i < 10; i++) {
        snprintf(s, sizeof s, "p%d", i);
        ack(c, get_str(c, s, 0));
    }
    get_none(c);
    expect_depth(f->q, f->name, 0, 0);
}

/* With prefetch 1 each consumer holds one message, so two of them split
 * two messages one each. */
static void test_prefetch_spreads(void **state)
{
    fixture *f = *state;
    sked_consumer *a = consumer(f, f->name, 1);
    sked_consumer *b = consumer(f, f->name, 1);
    publish(f->q, f->name, "x");
    publish(f->q, f->name, "y");
    sked_delivery da, db;
    get(a, &da);
    get(b, &db);
    assert_true((strcmp(da.body, "x") == 0 && strcmp(db.body, "y") == 0) ||
                (strcmp(da.body, "y") == 0 && strcmp(db.body, "x") == 0));
    expect_depth(f->q, f->name, 0, 2);
    ack(a, da.tag);
    ack(b, db.tag);
    sked_delivery_deinit(&da);
    sked_delivery_deinit(&db);
    expect_depth(f->q, f->name, 0, 0);
}

static void test_ack_removes(void **state)
{
    fixture *f = *state;
    publish(f->q, f->name, "once");
    sked_consumer *c = consumer(f, f->name, 1);
    uint64_t tag = get_str(c, "once", 0);
    expect_depth(f->q, f->name, 0, 1);
    ack(c, tag);
    expect_depth(f->q, f->name, 0, 0);
    consumer_close(f, c);
    c = consumer(f, f->name, 1);
    get_none(c);
}

static void test_nack_requeue(void **state)
{
    fixture *f = *state;
    publish(f->q, f->name, "first");
    publish(f->q, f->name, "second");
    sked_consumer *c = consumer(f, f->name, 1);
    nack(c, get_str(c, "first", 0), 1);
    uint64_t tag = get_str(c, "first", 1);   /* back at the head */
    nack(c, tag, 1);
    ack(c, get_str(c, "first", 1));
    ack(c, get_str(c, "second", 0));
    get_none(c);
    expect_depth(f->q, f->name, 0, 0);
}

static void test_nack_drop(void **state)
{
    fixture *f = *state;
    publish(f->q, f->name, "doomed");
    publish(f->q, f->name, "kept");
    sked_consumer *c = consumer(f, f->name, 1);
    nack(c, get_str(c, "doomed", 0), 0);
    ack(c, get_str(c, "kept", 0));
    get_none(c);
    expect_depth(f->q, f->name, 0, 0);
}

/* Deliveries settled out of order, acks and requeueing nacks mixed, some
 * held, all in a quick row (RabbitMQ: the I/O thread may fold a run of
 * acks into one `multiple` ack): each ack settles exactly its delivery,
 * each nacked one comes back once, the held ones stay held (nacked
 * later, they come back too), and the consumer goes on working. */
static void test_settle_out_of_order(void **state)
{
    fixture *f = *state;
    enum { N = 60 };
    char body[N][16];
    for (int i = 0; i < N; i++) {
        snprintf(body[i], sizeof body[i], "m%d", i);
        publish(f->q, f->name, body[i]);
    }
    sked_consumer *c = consumer(f, f->name, N);
    uint64_t tag[N];
    for (int i = 0; i < N; i++)
        tag[i] = get_str(c, body[i], 0);
    int held = 0, nacked = 0;
    for (int k = 0; k < N; k++) {
        int i = (k * 37 + 11) % N; /* a permutation of 0..N-1 */
        if (i % 7 == 3)
            held++;
        else if (i % 5 == 0) {
            nack(c, tag[i], 1);
            nacked++;
        } else
            ack(c, tag[i]);
    }
    int back[N] = {0};
    for (int k = 0; k < nacked; k++) {
        sked_delivery d;
        get(c, &d);
        assert_true(d.redelivered);
        int i = atoi(d.body + 1);
        assert_true(i >= 0 && i < N && i % 5 == 0 && i % 7 != 3);
        assert_int_equal(back[i]++, 0);
        ack(c, d.tag);
        sked_delivery_deinit(&d);
    }
    get_none(c);
    expect_depth(f->q, f->name, 0, held);
    /* the held ones were never settled: each nacked now comes back */
    for (int i = 0; i < N; i++)
        if (i % 7 == 3)
            nack(c, tag[i], 1);
    for (int k = 0; k < held; k++) {
        sked_delivery d;
        get(c, &d);
        assert_true(d.redelivered);
        int i = atoi(d.body + 1);
        assert_true(i >= 0 && i < N && i % 7 == 3);
        assert_int_equal(back[i]++, 0);
        ack(c, d.tag);
        sked_delivery_deinit(&d);
    }
    get_none(c);
    expect_depth(f->q, f->name, 0, 0);
    publish(f->q, f->name, "after");
    ack(c, get_str(c, "after", 0));
    get_none(c);
    expect_depth(f->q, f->name, 0, 0);
}

/* An unknown, spent or foreign tag is refused and changes nothing. */
static void test_bad_tags(void **state)
{
    fixture *f = *state;
    sked_err err = {0};
    publish(f->q, f->name, "t1");
    publish(f->q, f->name, "t2");
    sked_consumer *a = consumer(f, f->name, 1);
    uint64_t tag = get_str(a, "t1", 0);
    ack(a, tag);
    assert_int_equal(sked_queue_ack(a, tag, &err), SKED_EINVAL);
    assert_string_equal(err.field, "tag");
    assert_int_equal(sked_queue_nack(a, tag, 1, &err), SKED_EINVAL);
    assert_int_equal(sked_queue_nack(a, tag, 0, &err), SKED_EINVAL);

    tag = get_str(a, "t2", 0);
    sked_consumer *b = consumer(f, f->name, 1);
    assert_int_equal(sked_queue_ack(b, tag, &err), SKED_EINVAL);
    assert_int_equal(sked_queue_nack(b, tag, 1, &err), SKED_EINVAL);
    assert_int_equal(sked_queue_ack(a, tag + 1000000, &err), SKED_EINVAL);
    assert_int_equal(sked_queue_ack(a, 0, &err), SKED_EINVAL);
    expect_depth(f->q, f->name, 0, 1);
    get_none(b);                    /* still a's, not requeued */
    ack(a, tag);
    expect_depth(f->q, f->name, 0, 0);
}

static void test_depth(void **state)
{
    fixture *f = *state;
    expect_depth(f->q, f->name, 0, 0);  /* never used: empty, no error */
    for (int i = 0; i < 5; i++)
        publish(f->q, f->name, "d");
    expect_depth(f->q, f->name, 5, 0);
    sked_consumer *c = consumer(f, f->name, 2);
    uint64_t t1 = get_str(c, "d", 0);
    uint64_t t2 = get_str(c, "d", 0);
    expect_depth(f->q, f->name, 3, 2);
    ack(c, t1);
    uint64_t t3 = get_str(c, "d", 0);
    expect_depth(f->q, f->name, 2, 2);
    nack(c, t2, 1);
    nack(c, t3, 0);
    consumer_close(f, c);
    expect_depth(f->q, f->name, 3, 0);
    int64_t r = -1;
    sked_err err = {0};
    assert_int_equal(sked_queue_depth(f->q, f->name, &r, NULL, &err), 0);
    assert_int_equal(r, 3);
}

/* ---- consumers closing ------------------------------------------------- */

/* Unacknowledged deliveries of a closed consumer come back, redelivered,
 * ahead of what was never delivered. */
static void test_close_requeues(void **state)
{
    fixture *f = *state;
    char s[32];
    for (int i = 1; i <= 5; i++) {
        snprintf(s, sizeof s, "m%d", i);
        publish(f->q, f->name, s);
    }
    sked_consumer *a = consumer(f, f->name, 2);
    get_str(a, "m1", 0);
    get_str(a, "m2", 0);
    expect_depth(f->q, f->name, 3, 2);
    consumer_close(f, a);
    expect_depth(f->q, f->name, 5, 0);

    sked_consumer *b = consumer(f, f->name, 1);
    int seen = 0;
    for (int i = 0; i < 2; i++) {
        sked_delivery d;
        get(b, &d);
        assert_int_equal(d.redelivered, 1);
        if (strcmp(d.body, "m1") == 0)
            seen |= 1;
        else if (strcmp(d.body, "m2") == 0)
            seen |= 2;
        else
            fail_msg("expected m1 or m2 redelivered, got %s", d.body);
        ack(b, d.tag);
        sked_delivery_deinit(&d);
    }
    assert_int_equal(seen, 3);
    for (int i = 3; i <= 5; i++) {
        snprintf(s, sizeof s, "m%d", i);
        ack(b, get_str(b, s, 0));
    }
    get_none(b);
}

/* ---- waiting ----------------------------------------------------------- */

static void test_timeout(void **state)
{
    fixture *f = *state;
    sked_consumer *c = consumer(f, f->name, 1);
    sked_delivery d;
    memset(&d, 0x5a, sizeof d);
    sked_err err = {0};

    sked_monotime t0 = sked_clock_mono_now();
    assert_int_equal(sked_queue_consumer_next(c, 0, &d, &err), SKED_EAGAIN);
    assert_true(sked_clock_mono_now() - t0 < PROMPT_US);

    t0 = sked_clock_mono_now();
    assert_int_equal(sked_queue_consumer_next(c, 50 * MSEC, &d, &err),
                     SKED_EAGAIN);
    sked_monotime took = sked_clock_mono_now() - t0;
    if (took < 49 * MSEC || took > 2 * SKED_USEC_PER_SEC)
        fail_msg("a 50 ms wait took %lld us", (long long)took);
    unsigned char *p = (unsigned char *)&d;
    for (size_t i = 0; i < sizeof d; i++)
        assert_int_equal(p[i], 0x5a);
}

/* A helper thread: after delay_us, publish (when body is set) or ack tag
 * (when c_ack is set) or wake c; then, as a backstop against a test that
 * would block for ever, wake c again after backstop_us. */
typedef struct helper {
    sked_queue *q;
    const char *queue;
    const char *body;
    sked_consumer *c;           /* the consumer the main thread blocks on */
    sked_consumer *c_ack;
    uint64_t tag;
    int close_it;               /* close c_ack instead of acking */
    int64_t delay_us, backstop_us;
    sked_monotime acted_at;
    int rc;
    atomic_int done;
} helper;

static void *helper_main(void *arg)
{
    helper *h = arg;
    sleep_us(h->delay_us);
    h->acted_at = sked_clock_mono_now();
    if (h->body)
        h->rc = sked_queue_publish(h->q, h->queue, h->body, strlen(h->body),
                                   NULL);
    else if (h->c_ack && h->close_it)
        sked_queue_consumer_close(h->c_ack);
    else if (h->c_ack)
        h->rc = sked_queue_ack(h->c_ack, h->tag, NULL);
    else
        sked_queue_consumer_wake(h->c);
    sked_monotime until = sked_clock_mono_now() + h->backstop_us;
    while (!atomic_load(&h->done) && sked_clock_mono_now() < until)
        sleep_us(MSEC);
    if (!atomic_load(&h->done))
        sked_queue_consumer_wake(h->c);
    return NULL;
}

/* Block on c for ever while h acts; return next()'s code and how long after
 * the helper acted it returned. */
static int block_with(helper *h, sked_delivery *d, int64_t *lag)
{
    pthread_t t;
    h->backstop_us = 3 * SKED_USEC_PER_SEC;
    if (h->delay_us == 0)
        h->delay_us = 50 * MSEC;
    assert_int_equal(pthread_create(&t, NULL, helper_main, h), 0);
    memset(d, 0, sizeof *d);
    int rc = sked_queue_consumer_next(h->c, -1, d, NULL);
    sked_monotime now = sked_clock_mono_now();
    atomic_store(&h->done, 1);
    pthread_join(t, NULL);
    *lag = now - h->acted_at;
    return rc;
}

static void test_publish_wakes_waiter(void **state)
{
    fixture *f = *state;
    sked_consumer *c = consumer(f, f->name, 1);
    helper h = {.q = f->q, .queue = f->name, .body = "wake up", .c = c};
    sked_delivery d;
    int64_t lag;
    int rc = block_with(&h, &d, &lag);
    assert_int_equal(h.rc, 0);
    if (rc != 0)
        fail_msg("a publish did not wake a blocked consumer (%s)",
                 sked_err_name(rc));
    assert_string_equal(d.body, "wake up");
    if (lag > PROMPT_US)
        fail_msg("woke %lld us after the publish", (long long)lag);
    ack(c, d.tag);
    sked_delivery_deinit(&d);
}

static void test_wake(void **state)
{
    fixture *f = *state;
    sked_consumer *c = consumer(f, f->name, 1);
    helper h = {.c = c};
    sked_delivery d;
    int64_t lag;
    assert_int_equal(block_with(&h, &d, &lag), SKED_EAGAIN);
    assert_true(lag < PROMPT_US);
    /* The consumer works on after a wake. */
    publish(f->q, f->name, "after");
    ack(c, get_str(c, "after", 0));
}

/* A wake that comes before next() is not lost: the next call returns at
 * once (the stop-flag-then-wake pattern of workers relies on it), and only
 * that one call. */
static void test_wake_before_next(void **state)
{
    fixture *f = *state;
    sked_consumer *c = consumer(f, f->name, 1);
    sked_delivery d;
    sked_err err = {0};
    sked_queue_consumer_wake(c);
    sked_monotime t0 = sked_clock_mono_now();
    assert_int_equal(sked_queue_consumer_next(c, 2 * SKED_USEC_PER_SEC, &d,
                                              &err),
                     SKED_EAGAIN);
    assert_true(sked_clock_mono_now() - t0 < PROMPT_US);
    get_none(c);
    publish(f->q, f->name, "then");
    ack(c, get_str(c, "then", 0));
}

/* A consumer blocked at its prefetch limit gets going when another thread
 * acks one of its deliveries. */
static void test_ack_from_other_thread(void **state)
{
    fixture *f = *state;
    publish(f->q, f->name, "held");
    publish(f->q, f->name, "next");
    sked_consumer *c = consumer(f, f->name, 1);
    uint64_t tag = get_str(c, "held", 0);
    helper h = {.c = c, .c_ack = c, .tag = tag};
    sked_delivery d;
    int64_t lag;
    int rc = block_with(&h, &d, &lag);
    assert_int_equal(h.rc, 0);
    if (rc != 0)
        fail_msg("an ack did not free a blocked consumer (%s)",
                 sked_err_name(rc));
    assert_string_equal(d.body, "next");
    assert_true(lag < PROMPT_US);
    ack(c, d.tag);
    sked_delivery_deinit(&d);
}

/* A consumer blocked on an empty queue gets the deliveries of one that
 * closes. */
static void test_close_wakes_waiter(void **state)
{
    fixture *f = *state;
    publish(f->q, f->name, "orphan");
    sked_consumer *a = consumer(f, f->name, 1);
    get_str(a, "orphan", 0);
    sked_consumer *b = consumer(f, f->name, 1);
    forget(f, a);               /* the helper closes it */
    helper h = {.c = b, .c_ack = a, .close_it = 1};
    sked_delivery d;
    int64_t lag;
    int rc = block_with(&h, &d, &lag);
    if (rc != 0)
        fail_msg("a close did not hand its delivery to a blocked consumer "
                 "(%s)", sked_err_name(rc));
    assert_string_equal(d.body, "orphan");
    assert_int_equal(d.redelivered, 1);
    assert_true(lag < PROMPT_US);
    ack(b, d.tag);
    sked_delivery_deinit(&d);
}

/* ---- many threads ------------------------------------------------------ */

#define NPUB 2
#define PER_PUB 500
#define NMSG (NPUB * PER_PUB)

typedef struct share {
    sked_queue *q;
    const char *queue;
    sked_consumer *c[2];
    atomic_int got;             /* deliveries so far, all consumers */
    int count[NPUB][PER_PUB];   /* per message; written by its taker only */
    int taken[2];
    char error[2][200];         /* first problem seen by each consumer */
    char pub_error[NPUB][200];
    int pub_id[NPUB];
    sked_monotime until;
} share;

typedef struct share_arg {
    share *s;
    int i;
} share_arg;

static void *share_publisher(void *arg)
{
    share_arg *a = arg;
    share *s = a->s;
    char body[32];
    for (int n = 0; n < PER_PUB; n++) {
        snprintf(body, sizeof body, "%d:%d", a->i, n);
        sked_err err = {0};
        if (sked_queue_publish(s->q, s->queue, body, strlen(body), &err)) {
            snprintf(s->pub_error[a->i], sizeof s->pub_error[a->i],
                     "publish: %.150s", err.msg);
            break;
        }
    }
    return NULL;
}

static void *share_consumer(void *arg)
{
    share_arg *a = arg;
    share *s = a->s;
    sked_consumer *c = s->c[a->i];
    int last[NPUB] = {-1, -1};
    char *error = s->error[a->i];
    while (atomic_load(&s->got) < NMSG && sked_clock_mono_now() < s->until) {
        sked_delivery d;
        sked_err err = {0};
        int rc = sked_queue_consumer_next(c, 100 * MSEC, &d, &err);
        if (rc == SKED_EAGAIN)
            continue;
        if (rc != 0) {
            snprintf(error, 200, "next: %.150s", err.msg);
            break;
        }
        int p = -1, n = -1;
        if (sscanf(d.body, "%d:%d", &p, &n) != 2 || p < 0 || p >= NPUB ||
            n < 0 || n >= PER_PUB) {
            snprintf(error, 200, "bad body %.40s", d.body);
        } else {
            /* Publishers' own orders survive: each consumer sees a
             * subsequence of the queue. */
            if (n <= last[p] && !error[0])
                snprintf(error, 200, "%d:%d after %d:%d", p, n, p, last[p]);
            last[p] = n;
            s->count[p][n]++;
            if (d.redelivered && !error[0])
                snprintf(error, 200, "%s redelivered", d.body);
        }
        s->taken[a->i]++;
        if (sked_queue_ack(c, d.tag, &err) != 0 && !error[0])
            snprintf(error, 200, "ack: %.150s", err.msg);
        sked_delivery_deinit(&d);
        atomic_fetch_add(&s->got, 1);
    }
    return NULL;
}

static void test_two_consumers_share(void **state)
{
    fixture *f = *state;
    share *s = calloc(1, sizeof *s);
    s->q = f->q;
    s->queue = f->name;
    s->until = sked_clock_mono_now() + 60 * SKED_USEC_PER_SEC;
    s->c[0] = consumer(f, f->name, 10);
    s->c[1] = consumer(f, f->name, 10);
    pthread_t pt[NPUB], ct[2];
    share_arg pa[NPUB], ca[2];
    for (int i = 0; i < 2; i++) {
        ca[i] = (share_arg){s, i};
        assert_int_equal(pthread_create(&ct[i], NULL, share_consumer, &ca[i]),
                         0);
    }
    for (int i = 0; i < NPUB; i++) {
        pa[i] = (share_arg){s, i};
        assert_int_equal(
            pthread_create(&pt[i], NULL, share_publisher, &pa[i]), 0);
    }
    for (int i = 0; i < NPUB; i++)
        pthread_join(pt[i], NULL);
    for (int i = 0; i < 2; i++)
        pthread_join(ct[i], NULL);

    for (int i = 0; i < NPUB; i++)
        if (s->pub_error[i][0])
            fail_msg("publisher %d: %s", i, s->pub_error[i]);
    for (int i = 0; i < 2; i++)
        if (s->error[i][0])
            fail_msg("consumer %d: %s", i, s->error[i]);
    for (int p = 0; p < NPUB; p++)
        for (int n = 0; n < PER_PUB; n++)
            if (s->count[p][n] != 1)
                fail_msg("message %d:%d delivered %d times", p, n,
                         s->count[p][n]);
    assert_int_equal(s->taken[0] + s->taken[1], NMSG);
    free(s);
    expect_depth(f->q, f->name, 0, 0);
}

/* ---- partitioned queues (RabbitMQ) -------------------------------------- */

/* partitions=3 (queue_amqp.h): publishes, single or batched, take each
 * queue's partitions in turn, also when two queues alternate - so a
 * handle without the option (which sees only partition 0, "sked.q.NAME")
 * finds a third of them; depth sums the partitions, those not made yet
 * counting 0; a consumer gets every message exactly once from all three,
 * holding no more than its prefetch (4: 2 + 1 + 1); an inbox is never
 * partitioned. */
static void test_amqp_partitions(void **state)
{
    fixture *f = *state;
    enum { N = 30, P = 3, PREFETCH = 4 };
    char purl[sizeof url + 32], s[32];
    snprintf(purl, sizeof purl, "%s%cpartitions=%d", url, strchr(url, '?') ? '&' : '?', P);
    sked_queue *pq = open_queue(purl);
    publish(pq, f->name, "a00");
    expect_depth(pq, f->name, 1, 0); /* partitions 1 and 2 not made yet */
    static char bodies[N][16];
    sked_message m[N];
    for (int i = 0; i < N; i++) {
        if (i > 0) {
            snprintf(s, sizeof s, "a%02d", i);
            publish(pq, f->name, s);
        }
        publish(pq, f->name2, "other"); /* in step with 3 if turns were shared */
        publish(pq, f->name2, "other");
        snprintf(bodies[i], sizeof bodies[i], "b%02d", i);
        m[i] = (sked_message){.queue = f->name, .body = bodies[i], .len = 3};
    }
    sked_err err = {0};
    assert_int_equal(sked_queue_publish_batch(pq, m, N, &err), 0);
    expect_depth(pq, f->name, 2 * N, 0);
    expect_depth(f->q, f->name, 2 * N / P, 0);
    expect_depth(pq, f->name2, 2 * N, 0);
    expect_depth(f->q, f->name2, 2 * N / P, 0);

    sked_consumer *c = NULL;
    assert_int_equal(sked_queue_consumer_open(pq, f->name, PREFETCH, &c, &err), 0);
    int seen[2][N] = {{0}};
    uint64_t held[PREFETCH];
    int nheld = 0;
    for (int got = 0; got < 2 * N;) {
        /* holding nothing, a delivery must come; holding some, more may
         * not (a drained partition's share stays unused): settle those */
        sked_delivery d;
        sked_err e = {0};
        if (nheld == PREFETCH)
            get_none(c); /* no more than its prefetch */
        int rc = nheld == PREFETCH ? SKED_EAGAIN
                                   : sked_queue_consumer_next(c, nheld ? QUIET_US : WAIT_US,
                                                              &d, &e);
        if (rc != 0) {
            if (nheld == 0)
                fail_msg("expected a delivery, got %s: %s", sked_err_name(rc), e.msg);
            for (int i = 0; i < nheld; i++)
                ack(c, held[i]);
            nheld = 0;
            continue;
        }
        assert_int_equal(d.len, 3);
        int k = atoi(d.body + 1);
        assert_true((d.body[0] == 'a' || d.body[0] == 'b') && k >= 0 && k < N);
        assert_int_equal(seen[d.body[0] == 'b'][k]++, 0);
        assert_string_equal(d.queue, f->name);
        held[nheld++] = d.tag;
        got++;
        sked_delivery_deinit(&d);
    }
    for (int i = 0; i < nheld; i++)
        ack(c, held[i]);
    get_none(c);
    expect_depth(pq, f->name, 0, 0);
    sked_queue_consumer_close(c);

    char inbox[SKED_QUEUE_NAME_MAX + 1];
    snprintf(inbox, sizeof inbox, SKED_QUEUE_INBOX_PREFIX "%.100s", f->name);
    for (int i = 0; i < P; i++)
        publish(pq, inbox, "to me");
    expect_depth(f->q, inbox, P, 0);
    c = consumer(f, inbox, P);
    for (int i = 0; i < P; i++)
        ack(c, get_str(c, "to me", 0));
    sked_queue_close(pq);
}

/* ---- the wrappers ------------------------------------------------------ */

/* A backend that has nothing: every wrapper says ENOTSUP, none crashes. */
static void test_wrappers_enotsup(void **state)
{
    (void)state;
    static const sked_queue_ops empty = {.version = 1, .name = "empty",
                                         .scheme = "empty"};
    sked_queue q = {&empty};
    sked_consumer c = {&empty};
    sked_consumer *cp = &c;
    sked_delivery d = {0};
    int64_t r, u;
    sked_err err = {0};
    assert_int_equal(sked_queue_ping(&q, &err), SKED_ENOTSUP);
    assert_non_null(strstr(err.msg, "empty"));
    assert_int_equal(sked_queue_publish(&q, "x", "x", 1, &err), SKED_ENOTSUP);
    assert_int_equal(sked_queue_consumer_open(&q, "x", 1, &cp, &err),
                     SKED_ENOTSUP);
    assert_null(cp);
    assert_int_equal(sked_queue_consumer_next(&c, 0, &d, &err), SKED_ENOTSUP);
    assert_int_equal(sked_queue_ack(&c, 1, &err), SKED_ENOTSUP);
    assert_int_equal(sked_queue_nack(&c, 1, 1, &err), SKED_ENOTSUP);
    assert_int_equal(sked_queue_depth(&q, "x", &r, &u, &err), SKED_ENOTSUP);
    sked_queue_consumer_wake(&c);
    sked_queue_consumer_close(&c);
    sked_queue_consumer_close(NULL);
    sked_queue_close(NULL);
    sked_delivery_deinit(NULL);
}

/* Malformed or unreachable RabbitMQ URLs fail at open with a clear code,
 * whichever backend the suite runs on (none of these reaches a broker). */
static void test_amqp_bad_urls(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "amqp://",
        "amqp://host:0/",
        "amqp://host:65536/",
        "amqp://host:12x/",
        "amqp://h1,,h2/",
        "amqp://h1,/",
        "amqp://[::1/",
        "amqp://host/?heartbeat=abc",
        "amqp://host/?timeout=0",
        "amqp://host/?nosuch=1",
        "amqp://host/?partitions=0",
        "amqp://host/?partitions=65",
        "amqp://host/?partitions=-2",
        "amqp://host/?partitions=2x",
        "amqp://host/?partitions=",
        "amqp://host/?cacert=/x",       /* TLS options need amqps: */
        "amqp://us%zzer@host/",
        "amqp://host/v%00h",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        sked_queue *q = (sked_queue *)&q;
        sked_err err = {0};
        int rc = sked_queue_open(bad[i], &q, &err);
        if (rc != SKED_EINVAL)
            fail_msg("open %s: %s, expected EINVAL", bad[i],
                     sked_err_name(rc));
        assert_null(q);
    }
    /* Well-formed, but nothing listens on port 1: unavailable, at once,
     * and the password is not repeated in the message. */
    sked_queue *q = NULL;
    sked_err err = {0};
    sked_monotime t0 = sked_clock_mono_now();
    assert_int_equal(sked_queue_open("amqp://u:s3cret@127.0.0.1:1,"
                                     "127.0.0.1:1/?connect_timeout=2",
                                     &q, &err),
                     SKED_EUNAVAIL);
    assert_null(q);
    assert_true(sked_clock_mono_now() - t0 < 2 * SKED_USEC_PER_SEC);
    assert_null(strstr(err.msg, "s3cret"));
    assert_non_null(strstr(err.msg, "127.0.0.1:1"));
}

/* ---- reconnecting (networked backends) --------------------------------- */

#define RC_PUB 2
#define RC_PER_PUB 150
#define RC_PRE 20

typedef struct recon {
    sked_queue *q;
    const char *queue;
    int confirmed[RC_PUB];       /* messages whose publish returned 0 */
    int retries[RC_PUB];
    char error[RC_PUB][200];
    sked_monotime until;
} recon;

typedef struct recon_arg {
    recon *r;
    int i;
} recon_arg;

/* Publish "i:n" for n = 0, 1, ... with a little pause, so that the
 * publishing spans the broker's restart; a failed publish is retried (it
 * may or may not have been queued: at-least-once). */
static void *recon_publisher(void *arg)
{
    recon_arg *a = arg;
    recon *r = a->r;
    char body[32];
    for (int n = 0; n < RC_PER_PUB; n++) {
        snprintf(body, sizeof body, "%d:%d", a->i, n);
        for (;;) {
            sked_err err = {0};
            if (sked_queue_publish(r->q, r->queue, body, strlen(body),
                                   &err) == 0)
                break;
            r->retries[a->i]++;
            if (sked_clock_mono_now() > r->until) {
                snprintf(r->error[a->i], sizeof r->error[a->i],
                         "publish %s: %.150s", body, err.msg);
                return NULL;
            }
            sleep_us(100 * MSEC);
        }
        r->confirmed[a->i] = n + 1;
        sleep_us(20 * MSEC);
    }
    return NULL;
}

/* The broker crashes (SIGKILL) and comes back while publishers publish
 * and a consumer holds deliveries: no confirmed message is lost, the held
 * tags are refused afterwards (never acked on the new connection) and
 * their messages come back, and the same consumer goes on receiving. */
static void test_reconnect(void **state)
{
    fixture *f = *state;
    const char *restart = getenv("SKED_TEST_QUEUE_RESTART");
    int restarts = restart != NULL && restart[0] != '\0';
    if (!is_mem() && !restarts)
        skip();                 /* networked, but no way to restart it */
    char s[32];
    for (int i = 0; i < RC_PRE; i++) {
        snprintf(s, sizeof s, "pre%d", i);
        publish(f->q, f->name, s);
    }
    sked_consumer *c = consumer(f, f->name, 10);
    uint64_t held[5];
    for (int i = 0; i < 5; i++) {
        snprintf(s, sizeof s, "pre%d", i);
        held[i] = get_str(c, s, 0);
    }

    /* RabbitMQ 3.10 registers a new quorum queue's Raft member in a table
     * it writes to disk lazily: a single node killed within a second or so
     * of creating a queue can come back without it (in a cluster, the other
     * members keep it).  So the queue gets some age before the crash. */
    if (restarts)
        sleep_us(3 * SKED_USEC_PER_SEC);

    recon *r = calloc(1, sizeof *r);
    r->q = f->q;
    r->queue = f->name;
    r->until = sked_clock_mono_now() + 90 * SKED_USEC_PER_SEC;
    pthread_t t[RC_PUB];
    recon_arg args[RC_PUB];
    for (int i = 0; i < RC_PUB; i++) {
        args[i] = (recon_arg){r, i};
        assert_int_equal(pthread_create(&t[i], NULL, recon_publisher,
                                        &args[i]), 0);
    }
    sleep_us(300 * MSEC);
    if (restarts) {
        char cmd[4200];
        snprintf(cmd, sizeof cmd, "%s >/dev/null", restart);
        int rc = system(cmd);
        if (rc != 0)
            fail_msg("restart command failed (%d): %s", rc, restart);
    }
    for (int i = 0; i < RC_PUB; i++)
        pthread_join(t[i], NULL);
    for (int i = 0; i < RC_PUB; i++)
        if (r->error[i][0])
            fail_msg("publisher %d: %s", i, r->error[i]);

    /* Tags handed out before the crash mean nothing now. */
    sked_err err = {0};
    for (int i = 0; i < 5; i++) {
        int rc = sked_queue_ack(c, held[i], &err);
        if (restarts && rc == 0)
            fail_msg("ack of a tag from before the restart succeeded");
        if (!restarts && rc != 0)
            fail_msg("ack %d: %s", i, err.msg);
    }
    assert_int_equal(sked_queue_ping(f->q, &err), 0);

    /* Everything confirmed is there, at least once. */
    int pre[RC_PRE] = {0}, got[RC_PUB][RC_PER_PUB];
    memset(got, 0, sizeof got);
    int missing = RC_PRE - (restarts ? 0 : 5);
    for (int i = 0; i < RC_PUB; i++)
        missing += r->confirmed[i];
    int dups = 0;
    sked_monotime until = sked_clock_mono_now() + 30 * SKED_USEC_PER_SEC;
    while (missing > 0 && sked_clock_mono_now() < until) {
        sked_delivery d;
        if (sked_queue_consumer_next(c, 200 * MSEC, &d, &err) != 0)
            continue;
        int p = 0, n = 0, counts = 0;
        int *slot = NULL;
        if (sscanf(d.body, "pre%d", &n) == 1 && n >= 0 && n < RC_PRE) {
            slot = &pre[n];
            counts = restarts || n >= 5;
        } else if (sscanf(d.body, "%d:%d", &p, &n) == 2 && p >= 0 &&
                   p < RC_PUB && n >= 0 && n < RC_PER_PUB) {
            slot = &got[p][n];
            counts = n < r->confirmed[p];
        }
        if (slot == NULL)
            fail_msg("unexpected message %.40s", d.body);
        if ((*slot)++ == 0)
            missing -= counts;
        else
            dups++;
        ack(c, d.tag);
        sked_delivery_deinit(&d);
    }
    for (int i = restarts ? 0 : 5; i < RC_PRE; i++)
        if (pre[i] == 0)
            fail_msg("pre%d was lost", i);
    for (int i = 0; i < RC_PUB; i++)
        for (int n = 0; n < r->confirmed[i]; n++)
            if (got[i][n] == 0)
                fail_msg("confirmed message %d:%d was lost", i, n);
    if (dups > 0 || r->retries[0] + r->retries[1] > 0)
        print_message("  reconnect: %d duplicate deliveries, %d publish "
                      "retries (at-least-once)\n", dups,
                      r->retries[0] + r->retries[1]);
    free(r);
}

/* ---- mem: only ---------------------------------------------------------- */

/* "mem:A" and "mem:B" are different brokers; "mem:A" twice is one. */
static void test_mem_named_brokers(void **state)
{
    fixture *f = *state;
    char ua[160], ub[160];
    snprintf(ua, sizeof ua, "mem:%s-a", f->name);
    snprintf(ub, sizeof ub, "mem:%s-b", f->name);
    sked_queue *a = open_queue(ua), *a2 = open_queue(ua), *b = open_queue(ub);
    publish(a, f->name, "in a");
    expect_depth(a2, f->name, 1, 0);
    expect_depth(b, f->name, 0, 0);
    expect_depth(f->q, f->name, 0, 0);
    sked_queue_close(a);
    sked_queue_close(a2);
    sked_queue_close(b);
}

typedef struct batcher {
    sked_queue *q;
    sked_message *m;
    size_t n;
    int rc;
} batcher;

static void *publish_later(void *arg)
{
    batcher *b = arg;
    usleep(20000); /* the consumer is waiting by then */
    sked_err err = {0};
    b->rc = sked_queue_publish_batch(b->q, b->m, b->n, &err);
    return NULL;
}

/* A consumer woken by a batch finds all of it ready: a worker then takes
 * a whole dispatch batch before starting any of it. */
static void test_mem_batch_whole(void **state)
{
    fixture *f = *state;
    enum { N = 2000 };
    sked_message *m = calloc(N, sizeof *m);
    for (int i = 0; i < N; i++)
        m[i] = (sked_message){.queue = f->name, .body = "x", .len = 1};
    sked_consumer *c = consumer(f, f->name, N);
    batcher b = {.q = f->q, .m = m, .n = N};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, publish_later, &b), 0);
    sked_delivery d;
    sked_err err = {0};
    assert_int_equal(sked_queue_consumer_next(c, 5 * SKED_USEC_PER_SEC, &d, &err), 0);
    int got = 1;
    sked_delivery_deinit(&d);
    while (sked_queue_consumer_next(c, 0, &d, &err) == 0) {
        got++;
        sked_delivery_deinit(&d);
    }
    pthread_join(th, NULL);
    assert_int_equal(b.rc, 0);
    assert_int_equal(got, N);
    free(m);
}

/* ---- main -------------------------------------------------------------- */

/* A test that hangs (a lost wake-up the backstop could not rescue) ends the
 * program; the last "[ RUN ]" line names it. */
static void watchdog(int sig)
{
    (void)sig;
    static const char msg[] = "\nqueue suite: a test hung past the "
                              "watchdog; see the last RUN line\n";
    ssize_t n = write(2, msg, sizeof msg - 1);
    (void)n;
    _exit(3);
}

int main(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    salt = (unsigned)ts.tv_sec * 2654435761u ^ (unsigned)ts.tv_nsec ^
           (unsigned)getpid() << 16;
    signal(SIGALRM, watchdog);
    const char *env = getenv("SKED_TEST_QUEUE_URL");
    snprintf(url, sizeof url, "%s", env && env[0] ? env : "mem:");
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    struct CMUnitTest tests[] = {
        cmocka_unit_test(test_open_bad_url),
        T(test_ping),
        T(test_invalid_args),
        T(test_two_handles_share),
        T(test_round_trip),
        T(test_big_body),
        T(test_fifo),
        T(test_publish_batch),
        T(test_backlog),
        T(test_queues_independent),
        T(test_prefetch),
        T(test_prefetch_spreads),
        T(test_ack_removes),
        T(test_nack_requeue),
        T(test_nack_drop),
        T(test_settle_out_of_order),
        T(test_bad_tags),
        T(test_depth),
        T(test_close_requeues),
        T(test_timeout),
        T(test_publish_wakes_waiter),
        T(test_wake),
        T(test_wake_before_next),
        T(test_ack_from_other_thread),
        T(test_close_wakes_waiter),
        T(test_two_consumers_share),
        T(test_amqp_partitions),
        T(test_reconnect),
        cmocka_unit_test(test_amqp_bad_urls),
        cmocka_unit_test(test_wrappers_enotsup),
        T(test_mem_named_brokers),
        T(test_mem_batch_whole),
    };
#undef T
    /* "queue_mem", "queue_amqp": the summary names the backend. */
    char name[32];
    snprintf(name, sizeof name, "queue_%.*s", (int)strcspn(url, ":"), url);
    char scheme[16];
    snprintf(scheme, sizeof scheme, "%.*s", (int)strcspn(url, ":"), url);
    size_t n = sked_test_for_backend(tests, sizeof tests / sizeof tests[0], scheme);
    return sked_test_run(name, tests, n);
}
