/*
 * bench_http.c - task creation throughput and latency against a running
 * sked server, from N concurrent keep-alive clients.
 *
 *   bin/bench_http --port P --token T [--clients 64] [--seconds 10]
 *                  [--batch N]          (N tasks per POST /v1/tasks:batch)
 *
 * Each client is a thread with one HTTP/1.1 connection that sends requests
 * back to back (closed loop) and times each one with the monotonic clock.
 * Prints requests/s, tasks/s, and the latency median, p99 and max.  Every
 * request must get a 201; anything else is counted and reported.  Traffic
 * goes to 127.0.0.1 only.  bench/run-http-bench starts a server and runs
 * the standard scenarios.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/clock.h"

static int port, clients = 64, seconds = 10, batch = 0;
static const char *token;
static volatile int stop;

typedef struct worker {
    pthread_t th;
    int id;
    int64_t *lat;              /* microseconds */
    size_t n, cap;
    long errors;
} worker;

static const char task_body[] =
    "{\"schedule\":{\"cron\":\"*/5 * * * *\",\"timezone\":\"Europe/Berlin\"},"
    "\"target\":{\"type\":\"http\",\"url\":\"http://127.0.0.1:9/hook\"},"
    "\"labels\":{\"bench\":\"create\"}}";

static char *make_request(size_t *len)
{
    size_t cap = 64 + (sizeof task_body + 1) * (size_t)(batch ? batch : 1) + 512;
    char *body = malloc(cap), *req = malloc(cap + 512);
    size_t n = 0;
    if (batch) {
        n += (size_t)sprintf(body, "{\"tasks\":[");
        for (int i = 0; i < batch; i++)
            n += (size_t)sprintf(body + n, "%s%s", i ? "," : "", task_body);
        n += (size_t)sprintf(body + n, "]}");
    } else {
        n = (size_t)sprintf(body, "%s", task_body);
    }
    *len = (size_t)sprintf(req,
                           "POST /v1/tasks%s HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                           "Authorization: Bearer %s\r\n"
                           "Content-Type: application/json\r\n"
                           "Content-Length: %zu\r\n\r\n%s",
                           batch ? ":batch" : "", token, n, body);
    free(body);
    return req;
}

/* Read one response; return its status or -1. */
static int read_response(int fd, char *buf, size_t cap)
{
    size_t have = 0;
    char *end = NULL;
    while (end == NULL) {
        ssize_t r = read(fd, buf + have, cap - have - 1);
        if (r <= 0)
            return -1;
        have += (size_t)r;
        buf[have] = '\0';
        end = strstr(buf, "\r\n\r\n");
    }
    int status = atoi(buf + 9);
    char *cl = strcasestr(buf, "Content-Length:");
    size_t body = cl ? (size_t)atol(cl + 15) : 0;
    size_t need = (size_t)(end + 4 - buf) + body;
    while (have < need) {
        size_t want = need - have;
        char tmp[65536];
        ssize_t r = read(fd, tmp, want < sizeof tmp ? want : sizeof tmp);
        if (r <= 0)
            return -1;
        have += (size_t)r;
    }
    return status;
}

static void *run(void *arg)
{
    worker *w = arg;
    size_t len;
    char *req = make_request(&len);
    char *buf = malloc(1 << 20);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
        perror("connect");
        exit(1);
    }
    while (!stop) {
        sked_monotime t0 = sked_clock_mono_now();
        size_t off = 0;
        while (off < len) {
            ssize_t r = write(fd, req + off, len - off);
            if (r <= 0) {
                w->errors++;
                goto out;
            }
            off += (size_t)r;
        }
        int status = read_response(fd, buf, 1 << 20);
        if (status < 0) {
            w->errors++;
            goto out;
        }
        if (status != 201)
            w->errors++;
        if (w->n == w->cap) {
            w->cap = w->cap ? 2 * w->cap : 4096;
            w->lat = realloc(w->lat, w->cap * sizeof *w->lat);
        }
        w->lat[w->n++] = sked_clock_mono_now() - t0;
    }
out:
    close(fd);
    free(req);
    free(buf);
    return NULL;
}

static int cmp64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--port")) port = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--token")) token = argv[i + 1];
        else if (!strcmp(argv[i], "--clients")) clients = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--seconds")) seconds = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--batch")) batch = atoi(argv[i + 1]);
    }
    if (!port || !token || clients < 1) {
        fprintf(stderr, "usage: bench_http --port P --token T [--clients N] "
                        "[--seconds S] [--batch N]\n");
        return 2;
    }
    worker *w = calloc((size_t)clients, sizeof *w);
    sked_monotime t0 = sked_clock_mono_now();
    for (int i = 0; i < clients; i++)
        pthread_create(&w[i].th, NULL, run, &w[i]);
    sleep((unsigned)seconds);
    stop = 1;
    size_t total = 0;
    long errors = 0;
    for (int i = 0; i < clients; i++) {
        pthread_join(w[i].th, NULL);
        total += w[i].n;
        errors += w[i].errors;
    }
    double el = (double)(sked_clock_mono_now() - t0) / 1e6;
    int64_t *all = malloc((total + 1) * sizeof *all);
    size_t k = 0;
    for (int i = 0; i < clients; i++) {
        memcpy(all + k, w[i].lat, w[i].n * sizeof *all);
        k += w[i].n;
        free(w[i].lat);
    }
    qsort(all, total, sizeof *all, cmp64);
    if (total == 0) {
        printf("no request completed (errors %ld)\n", errors);
        return 1;
    }
    printf("clients=%d batch=%d seconds=%.1f requests=%zu errors=%ld\n", clients,
           batch, el, total, errors);
    printf("requests/s=%.0f tasks/s=%.0f p50_ms=%.2f p99_ms=%.2f max_ms=%.2f\n",
           (double)total / el, (double)total * (batch ? batch : 1) / el,
           (double)all[total / 2] / 1000, (double)all[total * 99 / 100] / 1000,
           (double)all[total - 1] / 1000);
    free(all);
    free(w);
    return errors ? 1 : 0;
}
