/*
 * bench_sched.c - start lag of scheduled runs against a running sked.
 *
 *   bin/bench_sched --url http://127.0.0.1:PORT --token T --scenario a|b|c
 *                   [--target shell|http] [--count N] [--seconds S]
 *
 *   a  N one-time tasks (default 10,000) all due in the same second
 *   b  N one-time tasks due at random instants over S seconds (default 60)
 *   c  N tasks (default 100) firing every second for S seconds (default 60)
 *
 * Tasks are created with POST /v1/tasks:batch a few seconds ahead of their
 * first occurrence; the shell target is `true`, the http target a sink this
 * program serves on 127.0.0.1 (it answers 200 and counts each
 * X-Sked-Run-Id it receives).  Afterwards it reads every run through
 * GET /v1/runs and reports the start lag (started_at - scheduled_at, as the
 * worker measured it) p50/p99/max, and the missed (an occurrence with no
 * succeeded run), duplicated (a run id delivered twice to the sink, or two
 * runs of one occurrence) and early (started before scheduled_at) counts.
 * Loopback only; every loop is bounded.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>

#include "core/clock.h"
#include "time/rfc3339.h"

static const char *url, *token, *target = "shell";
static char scenario = 'a';
static int count = -1, seconds = 60, sink_port;
static long sink_hits;
static pthread_mutex_t sink_mu = PTHREAD_MUTEX_INITIALIZER;

/* --- the HTTP sink ------------------------------------------------------------ */

static void *sink_conn(void *arg)
{
    int fd = (int)(intptr_t)arg;
    char buf[8192];
    size_t have = 0;
    for (;;) {
        ssize_t r = read(fd, buf + have, sizeof buf - have - 1);
        if (r <= 0)
            break;
        have += (size_t)r;
        buf[have] = '\0';
        char *end;
        while ((end = strstr(buf, "\r\n\r\n")) != NULL) {
            char *cl = strcasestr(buf, "Content-Length:");
            size_t body = cl && cl < end ? (size_t)atol(cl + 15) : 0;
            size_t total = (size_t)(end + 4 - buf) + body;
            if (have < total)
                break;
            pthread_mutex_lock(&sink_mu);
            sink_hits++;
            pthread_mutex_unlock(&sink_mu);
            static const char ok[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
            if (write(fd, ok, sizeof ok - 1) < 0)
                goto out;
            memmove(buf, buf + total, have - total);
            have -= total;
            buf[have] = '\0';
        }
    }
out:
    close(fd);
    return NULL;
}

static void *sink_main(void *arg)
{
    int ls = (int)(intptr_t)arg;
    for (;;) {
        int fd = accept(ls, NULL, NULL);
        if (fd < 0)
            continue;
        pthread_t th;
        pthread_create(&th, NULL, sink_conn, (void *)(intptr_t)fd);
        pthread_detach(th);
    }
    return NULL;
}

static void start_sink(void)
{
    int ls = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int one = 1;
    setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    socklen_t len = sizeof a;
    if (bind(ls, (struct sockaddr *)&a, sizeof a) < 0 || listen(ls, 1024) < 0 ||
        getsockname(ls, (struct sockaddr *)&a, &len) < 0) {
        perror("sink");
        exit(1);
    }
    sink_port = ntohs(a.sin_port);
    pthread_t th;
    pthread_create(&th, NULL, sink_main, (void *)(intptr_t)ls);
    pthread_detach(th);
}

/* --- the API -------------------------------------------------------------------- */

typedef struct buf {
    char *p;
    size_t n;
} buf;

static size_t collect(char *d, size_t sz, size_t nm, void *u)
{
    buf *b = u;
    b->p = realloc(b->p, b->n + sz * nm + 1);
    memcpy(b->p + b->n, d, sz * nm);
    b->n += sz * nm;
    b->p[b->n] = '\0';
    return sz * nm;
}

static json_t *api(CURL *c, const char *method, const char *path, const char *body,
                   long *status)
{
    char u[1024], auth[256];
    snprintf(u, sizeof u, "%s%s", url, path);
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", token);
    struct curl_slist *h = curl_slist_append(NULL, auth);
    h = curl_slist_append(h, "Content-Type: application/json");
    buf b = {0};
    curl_easy_setopt(c, CURLOPT_URL, u);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_HTTPGET, body == NULL ? 1L : 0L);
    if (body == NULL)
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    CURLcode rc = curl_easy_perform(c);
    curl_slist_free_all(h);
    *status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
    json_t *j = rc == CURLE_OK && b.p ? json_loads(b.p, 0, NULL) : NULL;
    if (rc != CURLE_OK || *status >= 300)
        fprintf(stderr, "%s %s: %s %ld %.300s\n", method, path, curl_easy_strerror(rc),
                *status, b.p ? b.p : "");
    free(b.p);
    return j;
}

static void add_target(json_t *t)
{
    if (strcmp(target, "http") == 0) {
        char u[64];
        snprintf(u, sizeof u, "http://127.0.0.1:%d/hook", sink_port);
        json_object_set_new(t, "target", json_pack("{s:s,s:s}", "type", "http", "url", u));
    } else {
        json_object_set_new(t, "target", json_pack("{s:s,s:s}", "type", "shell", "command", "true"));
    }
}

static json_t *time_json(sked_walltime t)
{
    char b[SKED_RFC3339_MAX];
    sked_rfc3339_format(t, 0, 1, b);
    return json_string(b);
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--url")) url = argv[i + 1];
        else if (!strcmp(argv[i], "--token")) token = argv[i + 1];
        else if (!strcmp(argv[i], "--scenario")) scenario = argv[i + 1][0];
        else if (!strcmp(argv[i], "--target")) target = argv[i + 1];
        else if (!strcmp(argv[i], "--count")) count = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--seconds")) seconds = atoi(argv[i + 1]);
    }
    if (!url || !token || !strchr("abc", scenario)) {
        fprintf(stderr, "usage: bench_sched --url U --token T --scenario a|b|c "
                        "[--target shell|http] [--count N] [--seconds S]\n");
        return 2;
    }
    if (count < 0)
        count = scenario == 'c' ? 100 : 10000;
    if (strcmp(target, "http") == 0)
        start_sink();
    curl_global_init(CURL_GLOBAL_DEFAULT);
    CURL *c = curl_easy_init();
    long st;
    sked_walltime now = sked_clock_wall_now();
    sked_walltime t0 = (now / SKED_USEC_PER_SEC + 6) * SKED_USEC_PER_SEC; /* a whole second */
    long expected = 0;
    sked_walltime last_due = t0;
    for (int done = 0; done < count;) {
        json_t *tasks = json_array();
        for (int k = 0; k < 1000 && done < count; k++, done++) {
            json_t *t = json_object();
            if (scenario == 'c') {
                sked_walltime end = t0 + (int64_t)(seconds - 1) * SKED_USEC_PER_SEC;
                json_object_set_new(t, "schedule", json_pack("{s:s,s:o,s:o}", "every", "1s",
                                                             "start_at", time_json(t0),
                                                             "end_at", time_json(end)));
                expected += seconds;
                last_due = end;
            } else {
                sked_walltime at = t0;
                if (scenario == 'b')
                    at += (int64_t)((double)rand() / RAND_MAX * seconds * 1e6);
                if (at > last_due)
                    last_due = at;
                json_object_set_new(t, "schedule", json_pack("{s:o}", "at", time_json(at)));
                expected++;
            }
            json_object_set_new(t, "overlap", json_string("allow"));
            add_target(t);
            json_array_append_new(tasks, t);
        }
        json_t *body = json_pack("{s:o}", "tasks", tasks);
        char *text = json_dumps(body, JSON_COMPACT);
        json_decref(api(c, "POST", "/v1/tasks:batch", text, &st));
        free(text);
        json_decref(body);
        if (st != 201)
            return 1;
    }
    sked_walltime created = sked_clock_wall_now();
    printf("scenario %c: %ld occurrences from %.1f s after creation, target %s\n", scenario,
           expected, (double)(t0 - created) / 1e6, target);
    fflush(stdout);
    /* wait for the last occurrence, plus a margin for stragglers */
    while (sked_clock_wall_now() < last_due + 5 * SKED_USEC_PER_SEC)
        usleep(200000);
    /* read every run */
    size_t cap = (size_t)expected + 1024, n = 0;
    double *lags = malloc(cap * sizeof *lags);
    long succeeded = 0, early = 0, other = 0;
    char path[256] = "/v1/runs?limit=1000";
    for (int page = 0; page < 10000; page++) {
        json_t *res = api(c, "GET", path, NULL, &st);
        if (res == NULL)
            return 1;
        json_t *runs = json_object_get(res, "runs"), *r;
        size_t i;
        json_array_foreach(runs, i, r) {
            const char *status = json_string_value(json_object_get(r, "status"));
            json_t *lag = json_object_get(r, "lag_ms");
            if (status && strcmp(status, "succeeded") == 0)
                succeeded++;
            else
                other++;
            if (json_is_number(lag)) {
                double l = json_number_value(lag);
                if (l < 0)
                    early++;
                if (n < cap)
                    lags[n++] = l;
            }
        }
        const char *next = json_string_value(json_object_get(res, "next_cursor"));
        if (next == NULL) {
            json_decref(res);
            break;
        }
        snprintf(path, sizeof path, "/v1/runs?limit=1000&cursor=%s", next);
        json_decref(res);
    }
    qsort(lags, n, sizeof *lags, cmp_d);
    long missed = expected - succeeded;
    long dup = strcmp(target, "http") == 0 && sink_hits > succeeded ? sink_hits - succeeded : 0;
    printf("runs=%zu succeeded=%ld other=%ld missed=%ld duplicated=%ld early=%ld",
           n, succeeded, other, missed < 0 ? 0 : missed, dup, early);
    if (n)
        printf(" lag_ms p50=%.2f p99=%.2f max=%.2f", lags[n / 2], lags[n * 99 / 100],
               lags[n - 1]);
    if (scenario == 'a' && n)
        printf(" all_started_within_ms=%.1f", lags[n - 1]);
    printf("\n");
    free(lags);
    curl_easy_cleanup(c);
    return missed > 0 || early > 0 ? 1 : 0;
}
