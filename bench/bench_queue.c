/*
 * bench_queue.c - how long a queue backend takes to hold a message and to
 * hand it to a consumer, alone, at a steady low rate: the broker's own
 * share of a run's start lag, without sked's store or workers around it.
 *
 *   make bench && bin/bench_queue URL [SECONDS] [BATCH] [EVERY_MS]
 *
 * Every EVERY_MS (default 1000) the main thread publishes BATCH (default
 * 100) messages to the queue "sked-bench-probe" in one publish_batch and
 * waits for it to return (RabbitMQ: every message publisher-confirmed); a
 * consumer thread (prefetch 1000) acks each delivery at once.  Each body
 * carries the monotonic time of its publish.  For SECONDS (default 60) it
 * collects the batch's confirm time and each message's publish -> delivery
 * time, then prints their p50, p99 and max, and every batch whose confirm
 * took 15 ms or more, with its second.  Nothing else should run on the
 * machine meanwhile, unless that is what is measured.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/clock.h"
#include "queue/queue.h"

#define QNAME "sked-bench-probe"
#define SLOW_US (15 * 1000)

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static void sleep_us(int64_t us)
{
    struct timespec ts = {(time_t)(us / 1000000), (long)(us % 1000000) * 1000};
    nanosleep(&ts, NULL);
}

typedef struct probe {
    sked_consumer *c;
    int64_t *lat;              /* publish -> delivery, us */
    size_t nlat, caplat;
    size_t want;
    pthread_mutex_t mu;
} probe;

static void *consume(void *arg)
{
    probe *p = arg;
    for (;;) {
        sked_delivery d;
        sked_err err = {0};
        int rc = sked_queue_consumer_next(p->c, 200 * 1000, &d, &err);
        if (rc == SKED_EAGAIN)
            goto check;
        if (rc != 0) {
            fprintf(stderr, "bench_queue: consume: %s\n", err.msg);
            exit(1);
        }
        int64_t sent = strtoll(d.body, NULL, 10), got = sked_clock_mono_now();
        free(d.body);
        sked_queue_ack(p->c, d.tag, &err);
        pthread_mutex_lock(&p->mu);
        if (p->nlat == p->caplat) {
            p->caplat = p->caplat ? 2 * p->caplat : 4096;
            p->lat = realloc(p->lat, p->caplat * sizeof *p->lat);
            if (p->lat == NULL)
                abort();
        }
        p->lat[p->nlat++] = got - sent;
        pthread_mutex_unlock(&p->mu);
    check:
        pthread_mutex_lock(&p->mu);
        int done = p->nlat >= p->want && p->want > 0;
        pthread_mutex_unlock(&p->mu);
        if (done)
            return NULL;
    }
}

static void report(const char *what, int64_t *v, size_t n)
{
    if (n == 0)
        return;
    qsort(v, n, sizeof *v, cmp_i64);
    printf("%s: n %zu p50 %.2f ms p99 %.2f ms max %.2f ms\n", what, n, v[n / 2] / 1e3,
           v[n * 99 / 100] / 1e3, v[n - 1] / 1e3);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: bench_queue URL [SECONDS] [BATCH] [EVERY_MS]\n");
        return 2;
    }
    int secs = argc > 2 ? atoi(argv[2]) : 60, batch = argc > 3 ? atoi(argv[3]) : 100;
    int every_ms = argc > 4 ? atoi(argv[4]) : 1000;
    if (secs <= 0 || batch <= 0 || batch > 1000 || every_ms <= 0) {
        fprintf(stderr, "bench_queue: SECONDS, BATCH (1-1000) and EVERY_MS must be positive\n");
        return 2;
    }
    sked_queue *q;
    sked_err err = {0};
    if (sked_queue_open(argv[1], &q, &err) < 0) {
        fprintf(stderr, "bench_queue: %s\n", err.msg);
        return 1;
    }
    probe p = {.mu = PTHREAD_MUTEX_INITIALIZER};
    if (sked_queue_consumer_open(q, QNAME, 1000, &p.c, &err) < 0) {
        fprintf(stderr, "bench_queue: %s\n", err.msg);
        return 1;
    }
    pthread_t th;
    pthread_create(&th, NULL, consume, &p);
    size_t rounds = (size_t)secs * 1000 / (size_t)every_ms;
    int64_t *conf = calloc(rounds, sizeof *conf);
    sked_message *m = calloc((size_t)batch, sizeof *m);
    char (*bodies)[32] = calloc((size_t)batch, sizeof *bodies);
    if (conf == NULL || m == NULL || bodies == NULL)
        abort();
    sked_monotime start = sked_clock_mono_now();
    for (size_t r = 0; r < rounds; r++) {
        sked_monotime at = start + (int64_t)r * every_ms * 1000;
        while (sked_clock_mono_now() < at)
            sleep_us(at - sked_clock_mono_now());
        sked_monotime t0 = sked_clock_mono_now();
        for (int i = 0; i < batch; i++) {
            int len = snprintf(bodies[i], sizeof bodies[i], "%lld", (long long)t0);
            m[i] = (sked_message){.queue = QNAME, .body = bodies[i], .len = (size_t)len};
        }
        if (sked_queue_publish_batch(q, m, (size_t)batch, &err) < 0) {
            fprintf(stderr, "bench_queue: publish: %s\n", err.msg);
            return 1;
        }
        conf[r] = sked_clock_mono_now() - t0;
        if (conf[r] >= SLOW_US)
            printf("slow confirm at %.1f s: %.2f ms\n", (double)(t0 - start) / 1e6,
                   conf[r] / 1e3);
    }
    pthread_mutex_lock(&p.mu);
    p.want = rounds * (size_t)batch;
    pthread_mutex_unlock(&p.mu);
    pthread_join(th, NULL);
    report("batch confirmed", conf, rounds);
    report("publish -> delivery", p.lat, p.nlat);
    sked_queue_consumer_close(p.c);
    sked_queue_close(q);
    free(conf);
    free(m);
    free(bodies);
    free(p.lat);
    return 0;
}
