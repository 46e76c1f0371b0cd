/*
 * bench_exec_http.c - what an HTTP run costs the executor in CPU time.
 *
 *   make bench && bin/bench_exec_http [RUNS] [ROUNDS]
 *
 * A sink thread answers every request on loopback ("200", empty body,
 * keep-alive); the executor gets RUNS (default 20,000) POST jobs to it,
 * at most SLOTS (200, a worker's default) in flight, as a worker under a
 * burst does.  Per round: runs/s, and CPU microseconds per run of the
 * whole process less the sink thread's own (so: the executor thread,
 * libcurl and the kernel's share for the client side).  Each figure is
 * the median over ROUNDS rounds (default 5) with the range.  Nothing else
 * should run on the machine meanwhile.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/clock.h"
#include "worker/exec.h"

#define SLOTS 200
#define MAX_CONN 1024

/* ---- the sink ------------------------------------------------------------ */

typedef struct conn {
    int fd;
    size_t len;
    char buf[8192];
} conn;

static int sink_fd, sink_port;
static double sink_cpu_s; /* the sink thread's CPU time, at its end */
static volatile int sink_stop;
static long sink_accepted; /* connections, for the report */

static double thread_cpu_s(int who)
{
    struct rusage ru;
    getrusage(who, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_stime.tv_sec +
           ((double)ru.ru_utime.tv_usec + (double)ru.ru_stime.tv_usec) / 1e6;
}

/* Answer every complete request in c->buf (headers, then Content-Length
 * bytes of body).  0, or -1 when the connection is to be closed. */
static int serve(conn *c)
{
    static const char ok[] = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
    for (;;) {
        c->buf[c->len] = '\0';
        char *end = strstr(c->buf, "\r\n\r\n");
        if (end == NULL)
            return c->len < sizeof c->buf - 1 ? 0 : -1;
        size_t head = (size_t)(end + 4 - c->buf), body = 0;
        char *cl = strcasestr(c->buf, "\r\nContent-Length:");
        if (cl != NULL && cl < end)
            body = strtoul(cl + 17, NULL, 10);
        if (c->len < head + body)
            return 0;
        if (write(c->fd, ok, sizeof ok - 1) != (ssize_t)(sizeof ok - 1))
            return -1;
        memmove(c->buf, c->buf + head + body, c->len - head - body);
        c->len -= head + body;
    }
}

static void *sink_main(void *arg)
{
    (void)arg;
    int ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
    epoll_ctl(ep, EPOLL_CTL_ADD, sink_fd, &ev);
    struct epoll_event evs[64];
    conn *dead[64];
    int ndead = 0;
    while (!sink_stop) {
        int n = epoll_wait(ep, evs, 64, 100);
        for (int i = 0; i < n; i++) {
            conn *c = evs[i].data.ptr;
            if (c == NULL) {
                int fd = accept(sink_fd, NULL, NULL);
                if (fd < 0)
                    continue;
                c = calloc(1, sizeof *c);
                c->fd = fd;
                sink_accepted++;
                struct epoll_event ce = {.events = EPOLLIN, .data.ptr = c};
                epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ce);
                continue;
            }
            if (c->fd < 0)
                continue; /* closed earlier in this batch */
            ssize_t r = read(c->fd, c->buf + c->len, sizeof c->buf - 1 - c->len);
            if (r <= 0 || (c->len += (size_t)r, serve(c) < 0)) {
                epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
                close(c->fd);
                c->fd = -1;
                dead[ndead++] = c;
            }
        }
        while (ndead > 0) /* freed once no event of this batch names them */
            free(dead[--ndead]);
    }
    sink_cpu_s = thread_cpu_s(RUSAGE_THREAD);
    close(ep);
    return NULL;
}

/* ---- the executor ---------------------------------------------------------- */

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int inflight, done, failed;

static void on_done(void *ctx, sked_job *job, const sked_job_result *res)
{
    (void)ctx;
    pthread_mutex_lock(&mu);
    inflight--;
    done++;
    failed += res->outcome != SKED_JOB_SUCCEEDED;
    pthread_cond_signal(&cv);
    pthread_mutex_unlock(&mu);
    sked_job_free(job);
}

static sked_job *job_new(int i, const char *url)
{
    sked_job *j = calloc(1, sizeof *j);
    snprintf(j->run_id, sizeof j->run_id, "run-%d", i);
    snprintf(j->task_id, sizeof j->task_id, "task-%d", i);
    j->attempt = 1;
    j->kind = SKED_JOB_HTTP;
    j->timeout_us = 10 * SKED_USEC_PER_SEC;
    j->url = strdup(url);
    j->method = strdup("POST");
    j->body = strdup("{\"bench\":true}");
    return j;
}

/* One round: runs/s and CPU us per run (the sink's excluded). */
static void round_of(sked_exec *ex, int runs, int base, const char *url, double *rate,
                     double *cpu_us)
{
    double cpu0 = thread_cpu_s(RUSAGE_SELF);
    sked_monotime t0 = sked_clock_mono_now();
    pthread_mutex_lock(&mu);
    done = 0;
    for (int i = 0; i < runs; i++) {
        while (inflight >= SLOTS)
            pthread_cond_wait(&cv, &mu);
        inflight++;
        pthread_mutex_unlock(&mu);
        sked_err err;
        if (sked_exec_submit(ex, job_new(base + i, url), &err) < 0) {
            fprintf(stderr, "submit: %s\n", err.msg);
            exit(1);
        }
        pthread_mutex_lock(&mu);
    }
    while (done < runs)
        pthread_cond_wait(&cv, &mu);
    pthread_mutex_unlock(&mu);
    *rate = runs / ((double)(sked_clock_mono_now() - t0) / SKED_USEC_PER_SEC);
    *cpu_us = (thread_cpu_s(RUSAGE_SELF) - cpu0) * 1e6 / runs;
}

static int cmp_dbl(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    int runs = argc > 1 ? atoi(argv[1]) : 20000, rounds = argc > 2 ? atoi(argv[2]) : 5;
    if (runs < 1 || rounds < 1 || rounds > 50) {
        fprintf(stderr, "usage: bench_exec_http [RUNS] [ROUNDS (1-50)]\n");
        return 2;
    }
    sink_fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof a;
    if (bind(sink_fd, (struct sockaddr *)&a, sizeof a) < 0 || listen(sink_fd, 1024) < 0 ||
        getsockname(sink_fd, (struct sockaddr *)&a, &alen) < 0) {
        perror("sink");
        return 1;
    }
    sink_port = ntohs(a.sin_port);
    pthread_t sink;
    pthread_create(&sink, NULL, sink_main, NULL);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/hook", sink_port);

    /* loopback is denied by default (the address guard): allow it here */
    const char *allow[] = {"127.0.0.0/8", NULL}, *deny[] = {"255.255.255.255/32", NULL};
    sked_exec_config cfg = {.done = on_done, .slots = SLOTS, .http_allow = allow,
                            .http_deny = deny};
    sked_exec *ex;
    sked_err err;
    if (sked_exec_new(&cfg, &ex, &err) < 0) {
        fprintf(stderr, "executor: %s\n", err.msg);
        return 1;
    }
    double warm_rate, warm_cpu;
    round_of(ex, SLOTS * 2, 0, url, &warm_rate, &warm_cpu); /* connections up */
    double rate[50], cpu[50];
    for (int r = 0; r < rounds; r++) {
        round_of(ex, runs, (r + 1) * runs, url, &rate[r], &cpu[r]);
        printf("round %d: %.0f runs/s, %.1f us CPU per run (sink included)\n", r + 1, rate[r],
               cpu[r]);
    }
    sked_exec_free(ex);
    sink_stop = 1;
    pthread_join(sink, NULL);
    /* the sink's share, spread evenly over every run it served */
    double sink_us = sink_cpu_s * 1e6 / ((double)runs * rounds + SLOTS * 2);
    for (int r = 0; r < rounds; r++)
        cpu[r] -= sink_us;
    qsort(rate, (size_t)rounds, sizeof *rate, cmp_dbl);
    qsort(cpu, (size_t)rounds, sizeof *cpu, cmp_dbl);
    printf("failed %d; sink %.1f us per run; %ld connections\n", failed, sink_us,
           sink_accepted);
    printf("runs=%d rounds=%d rate_per_s=%.0f [%.0f-%.0f] cpu_us_per_run=%.1f [%.1f-%.1f]\n",
           runs, rounds, rate[rounds / 2], rate[0], rate[rounds - 1], cpu[rounds / 2], cpu[0],
           cpu[rounds - 1]);
    close(sink_fd);
    return failed != 0;
}
