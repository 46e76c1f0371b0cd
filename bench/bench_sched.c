/*
 * bench_sched.c - start lag of scheduled runs against a running sked.
 *
 *   bin/bench_sched --url http://127.0.0.1:PORT --token T --scenario a|b|c
 *                   [--target shell|http] [--count N] [--seconds S]
 *                   [--lead S] [--wait S] [--seed N]
 *
 *   a  N one-time tasks (default 10,000) all due at the same instant
 *   b  N one-time tasks due at random instants over S seconds (default 60)
 *   c  N tasks (default 100) firing every second for S seconds (default 60)
 *
 * Tasks are created with POST /v1/tasks:batch (1000 per request) --lead
 * seconds (default 6) before the first occurrence, on a whole second; the
 * shell target is `true`, the http target a sink this program serves on
 * 127.0.0.1 (it answers 200 at once and counts each X-Sked-Run-Id it
 * receives).  After the last occurrence it waits until no run is
 * scheduled, dispatched or running (at most --wait seconds, default 60),
 * then reads every run through GET /v1/runs and checks each against the
 * occurrences it asked for:
 *
 *   lag         started_at - scheduled_at as the worker measured it (lag_ms)
 *   missed      an asked-for occurrence with no succeeded run
 *   duplicated  a second run of one occurrence, a second attempt, or a run
 *               id the sink received twice
 *   early       a run started before its scheduled_at (lag < 0)
 *   unexpected  a run at an instant that was not asked for
 *   throughput  succeeded runs / (last finished_at - first scheduled_at)
 *
 * The last line is key=value pairs (bench/run-sched-bench collects them).
 * Exit status 1 when anything was missed, duplicated, early or unexpected.
 * Loopback only; every loop is bounded.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>

#include "core/clock.h"
#include "time/rfc3339.h"

#define ID_LEN 36
#define SKED_TIME_NONE INT64_MIN /* as in store/store.h */

static const char *url, *token, *target = "shell";
static char scenario = 'a';
static int count = -1, seconds = 60, lead = 6, wait_max = 60, sink_port;
static unsigned seed = 1;

/* --- the HTTP sink: a set of the run ids it was sent ---------------------------- */

typedef struct seen {
    char id[ID_LEN + 1];
    int hits;
} seen;

static pthread_mutex_t sink_mu = PTHREAD_MUTEX_INITIALIZER;
static seen *sink_set;
static size_t sink_cap, sink_n;
static long sink_requests, sink_noid;

static size_t hash_id(const char *id)
{
    size_t h = 1469598103934665603u;
    for (; *id; id++)
        h = (h ^ (unsigned char)*id) * 1099511628211u;
    return h;
}

/* The slot of id in sink_set (empty if absent).  Under sink_mu. */
static seen *sink_slot(seen *set, size_t cap, const char *id)
{
    for (size_t i = hash_id(id) & (cap - 1), k = 0; k < cap; i = (i + 1) & (cap - 1), k++)
        if (set[i].id[0] == '\0' || strcmp(set[i].id, id) == 0)
            return &set[i];
    return NULL; /* not reached: the set is kept at most half full */
}

static void sink_record(const char *id)
{
    pthread_mutex_lock(&sink_mu);
    sink_requests++;
    if (id == NULL) {
        sink_noid++;
        pthread_mutex_unlock(&sink_mu);
        return;
    }
    if (2 * (sink_n + 1) > sink_cap) {
        size_t ncap = sink_cap ? 2 * sink_cap : 65536;
        seen *nset = calloc(ncap, sizeof *nset);
        if (nset == NULL)
            abort();
        for (size_t i = 0; i < sink_cap; i++)
            if (sink_set[i].id[0])
                *sink_slot(nset, ncap, sink_set[i].id) = sink_set[i];
        free(sink_set);
        sink_set = nset;
        sink_cap = ncap;
    }
    seen *s = sink_slot(sink_set, sink_cap, id);
    if (s->id[0] == '\0') {
        snprintf(s->id, sizeof s->id, "%s", id);
        sink_n++;
    }
    s->hits++;
    pthread_mutex_unlock(&sink_mu);
}

static int sink_hits(const char *id)
{
    pthread_mutex_lock(&sink_mu);
    seen *s = sink_cap ? sink_slot(sink_set, sink_cap, id) : NULL;
    int h = s && s->id[0] ? s->hits : 0;
    pthread_mutex_unlock(&sink_mu);
    return h;
}

/* The value of header name in the head [p, end), copied to out. */
static int header_value(const char *p, const char *end, const char *name, char *out,
                        size_t outsz)
{
    size_t nl = strlen(name);
    for (const char *line = p; line < end;) {
        const char *eol = memchr(line, '\n', (size_t)(end - line));
        if (eol == NULL)
            eol = end;
        if ((size_t)(eol - line) > nl && strncasecmp(line, name, nl) == 0 && line[nl] == ':') {
            const char *v = line + nl + 1;
            while (v < eol && (*v == ' ' || *v == '\t'))
                v++;
            size_t n = (size_t)(eol - v);
            while (n && (v[n - 1] == '\r' || v[n - 1] == ' '))
                n--;
            if (n >= outsz)
                n = outsz - 1;
            memcpy(out, v, n);
            out[n] = '\0';
            return 1;
        }
        line = eol + 1;
    }
    return 0;
}

static void *sink_conn(void *arg)
{
    int fd = (int)(intptr_t)arg;
    char buf[16384];
    size_t have = 0;
    /* bounded: a connection ends when the peer closes or sends garbage */
    for (;;) {
        if (have >= sizeof buf - 1)
            break; /* a head that does not fit: not from sked */
        ssize_t r = read(fd, buf + have, sizeof buf - have - 1);
        if (r <= 0)
            break;
        have += (size_t)r;
        buf[have] = '\0';
        char *end;
        while ((end = strstr(buf, "\r\n\r\n")) != NULL) {
            char cl[32] = "", id[64] = "";
            header_value(buf, end, "Content-Length", cl, sizeof cl);
            size_t total = (size_t)(end + 4 - buf) + (size_t)atol(cl);
            if (total >= sizeof buf)
                goto out;
            if (have < total)
                break;
            sink_record(header_value(buf, end, "X-Sked-Run-Id", id, sizeof id) ? id : NULL);
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
        if (fd < 0) {
            usleep(1000);
            continue;
        }
        pthread_t th;
        if (pthread_create(&th, NULL, sink_conn, (void *)(intptr_t)fd) != 0) {
            close(fd);
            continue;
        }
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
    if (b->p == NULL)
        abort();
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
    h = curl_slist_append(h, "Expect:");
    buf b = {0};
    curl_easy_reset(c);
    curl_easy_setopt(c, CURLOPT_URL, u);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 60L);
    if (body != NULL) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    } else {
        curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
    }
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

static sked_walltime time_of(json_t *v)
{
    const char *s = json_string_value(v);
    sked_walltime t = SKED_TIME_NONE;
    if (s)
        sked_rfc3339_parse(s, strlen(s), &t, NULL, NULL);
    return t;
}

/* --- what was asked for ---------------------------------------------------------- */

typedef struct task {
    char id[ID_LEN + 1];
    sked_walltime first;       /* its (first) occurrence                */
    int nocc;                  /* occurrences: 1, or S for scenario c   */
    int *runs, *ok;            /* per occurrence: runs seen, succeeded  */
} task;

static task *tasks;
static size_t ntasks;

static int cmp_task(const void *a, const void *b)
{
    return strcmp(((const task *)a)->id, ((const task *)b)->id);
}

static task *find_task(const char *id)
{
    task key;
    snprintf(key.id, sizeof key.id, "%s", id);
    return bsearch(&key, tasks, ntasks, sizeof *tasks, cmp_task);
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Nearest-rank percentile of sorted v[0..n). */
static double pct(const double *v, size_t n, double p)
{
    size_t k = (size_t)(p / 100.0 * (double)n + 0.999999);
    return v[k ? k - 1 : 0];
}

/* How many runs have status st (0 or 1: a page of one tells). */
static int any_with_status(CURL *c, const char *st)
{
    char path[128];
    long code;
    snprintf(path, sizeof path, "/v1/runs?limit=1&status=%s", st);
    json_t *res = api(c, "GET", path, NULL, &code);
    int n = res ? (int)json_array_size(json_object_get(res, "runs")) : 1;
    json_decref(res);
    return n;
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
        else if (!strcmp(argv[i], "--lead")) lead = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--wait")) wait_max = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--seed")) seed = (unsigned)atoi(argv[i + 1]);
    }
    if (!url || !token || !scenario || !strchr("abc", scenario) || seconds < 1 ||
        lead < 1 || wait_max < 1 || (strcmp(target, "shell") && strcmp(target, "http"))) {
        fprintf(stderr, "usage: bench_sched --url U --token T --scenario a|b|c "
                        "[--target shell|http] [--count N] [--seconds S] [--lead S] "
                        "[--wait S] [--seed N]\n");
        return 2;
    }
    if (count < 0)
        count = scenario == 'c' ? 100 : 10000;
    if (count < 1 || count > 1000000) {
        fprintf(stderr, "bench_sched: --count: 1 to 1000000\n");
        return 2;
    }
    int http = strcmp(target, "http") == 0;
    if (http)
        start_sink();
    srand(seed);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    CURL *c = curl_easy_init();
    long st;

    /* --- create ------------------------------------------------------------ */
    tasks = calloc((size_t)count, sizeof *tasks);
    sked_walltime now = sked_clock_wall_now();
    sked_walltime t0 = (now / SKED_USEC_PER_SEC + lead) * SKED_USEC_PER_SEC;
    sked_walltime last_due = t0;
    long expected = 0;
    for (int done = 0; done < count;) {
        json_t *arr = json_array();
        int first = done;
        for (int k = 0; k < 1000 && done < count; k++, done++) {
            json_t *t = json_object();
            task *tk = &tasks[done];
            if (scenario == 'c') {
                sked_walltime end = t0 + (int64_t)(seconds - 1) * SKED_USEC_PER_SEC;
                json_object_set_new(t, "schedule", json_pack("{s:s,s:o,s:o}", "every", "1s",
                                                             "start_at", time_json(t0),
                                                             "end_at", time_json(end)));
                tk->first = t0;
                tk->nocc = seconds;
                last_due = end;
            } else {
                sked_walltime at = t0;
                if (scenario == 'b') /* whole microseconds in [0, S) */
                    at += (int64_t)((double)rand() / ((double)RAND_MAX + 1) *
                                    seconds * 1e6);
                if (at > last_due)
                    last_due = at;
                json_object_set_new(t, "schedule", json_pack("{s:o}", "at", time_json(at)));
                tk->first = at;
                tk->nocc = 1;
            }
            expected += tk->nocc;
            json_object_set_new(t, "overlap", json_string("allow"));
            add_target(t);
            json_array_append_new(arr, t);
        }
        json_t *body = json_pack("{s:o}", "tasks", arr);
        char *text = json_dumps(body, JSON_COMPACT);
        json_t *res = api(c, "POST", "/v1/tasks:batch", text, &st);
        free(text);
        json_decref(body);
        json_t *made = json_object_get(res, "tasks");
        if (st != 201 || json_array_size(made) != (size_t)(done - first)) {
            fprintf(stderr, "bench_sched: the batch was not created\n");
            return 1;
        }
        for (int k = first; k < done; k++) {
            const char *id = json_string_value(
                json_object_get(json_array_get(made, (size_t)(k - first)), "id"));
            snprintf(tasks[k].id, sizeof tasks[k].id, "%s", id ? id : "");
            tasks[k].runs = calloc((size_t)tasks[k].nocc, sizeof(int));
            tasks[k].ok = calloc((size_t)tasks[k].nocc, sizeof(int));
        }
        json_decref(res);
    }
    ntasks = (size_t)count;
    qsort(tasks, ntasks, sizeof *tasks, cmp_task);
    sked_walltime created = sked_clock_wall_now();
    if (created >= t0)
        fprintf(stderr, "bench_sched: creating took past the first occurrence; "
                        "raise --lead\n");
    printf("scenario %c: %d tasks, %ld occurrences from %.1f s after creation to "
           "%.1f s, target %s\n", scenario, count, expected, (double)(t0 - created) / 1e6,
           (double)(last_due - created) / 1e6, target);
    fflush(stdout);

    /* --- wait: the last occurrence, then until nothing is unfinished -------- */
    while (sked_clock_wall_now() < last_due + SKED_USEC_PER_SEC)
        usleep(100000);
    sked_walltime give_up = last_due + (int64_t)wait_max * SKED_USEC_PER_SEC;
    int settled = 0;
    while (!settled && sked_clock_wall_now() < give_up) {
        settled = !any_with_status(c, "scheduled") && !any_with_status(c, "dispatched") &&
                  !any_with_status(c, "running");
        if (!settled)
            usleep(500000);
    }
    if (!settled)
        fprintf(stderr, "bench_sched: runs still unfinished %d s after the last "
                        "occurrence\n", wait_max);
    usleep(200000); /* the sink may answer a moment before the run settles */

    /* --- read every run and check it against what was asked for ------------- */
    size_t cap = (size_t)expected + 1024, n = 0;
    double *lags = malloc(cap * sizeof *lags);
    double *dlags = malloc(cap * sizeof *dlags), *slags = malloc(cap * sizeof *slags);
    size_t nd = 0;
    struct { double lag, disp, start; sked_walltime sched; } worst[3] = {{-1e18, 0, 0, 0},
                                                                        {-1e18, 0, 0, 0},
                                                                        {-1e18, 0, 0, 0}};
    long runs = 0, succeeded = 0, other = 0, early = 0, unexpected = 0, retried = 0,
         redelivered = 0, sink_unseen = 0, unknown_task = 0;
    sked_walltime first_sched = INT64_MAX, last_start = INT64_MIN, last_fin = INT64_MIN;
    char path[256] = "/v1/runs?limit=1000";
    /* LAG_DUMP=FILE: one line per run, "scheduled_us lag_ms timer_ms
     * dispatched_to_started_ms", to see which instants set the tail */
    FILE *dump = getenv("LAG_DUMP") ? fopen(getenv("LAG_DUMP"), "w") : NULL;
    for (int page = 0; page < 100000; page++) {
        json_t *res = api(c, "GET", path, NULL, &st);
        if (res == NULL)
            return 1;
        json_t *arr = json_object_get(res, "runs"), *r;
        size_t i;
        json_array_foreach(arr, i, r) {
            runs++;
            const char *status = json_string_value(json_object_get(r, "status"));
            const char *tid = json_string_value(json_object_get(r, "task_id"));
            const char *rid = json_string_value(json_object_get(r, "id"));
            json_t *lag = json_object_get(r, "lag_ms");
            sked_walltime sched = time_of(json_object_get(r, "scheduled_at"));
            sked_walltime started = time_of(json_object_get(r, "started_at"));
            sked_walltime fin = time_of(json_object_get(r, "finished_at"));
            sked_walltime disp = time_of(json_object_get(r, "dispatched_at"));
            int ok = status && strcmp(status, "succeeded") == 0;
            ok ? succeeded++ : other++;
            if (json_integer_value(json_object_get(r, "attempt")) > 1)
                retried++;
            if (http && rid) {
                int h = sink_hits(rid);
                if (h > 1)
                    redelivered += h - 1;
                if (ok && h == 0)
                    sink_unseen++;
            }
            if (json_is_number(lag)) {
                double l = json_number_value(lag);
                if (dump && disp != SKED_TIME_NONE && started != SKED_TIME_NONE)
                    fprintf(dump, "%lld %.3f %.3f %.3f\n", (long long)sched, l,
                            (double)(disp - sched) / 1e3, (double)(started - disp) / 1e3);
                if (l < 0)
                    early++;
                if (n < cap)
                    lags[n++] = l;
                if (disp != SKED_TIME_NONE && started != SKED_TIME_NONE && nd < cap) {
                    dlags[nd] = (double)(disp - sched) / 1e3;
                    slags[nd++] = (double)(started - disp) / 1e3;
                }
                for (int w = 0; w < 3; w++) /* the three worst, worst first */
                    if (l > worst[w].lag) {
                        memmove(&worst[w + 1], &worst[w], (size_t)(2 - w) * sizeof *worst);
                        worst[w].lag = l;
                        worst[w].sched = sched;
                        worst[w].disp = disp != SKED_TIME_NONE ? (double)(disp - sched) / 1e3 : -1;
                        worst[w].start = disp != SKED_TIME_NONE && started != SKED_TIME_NONE
                                             ? (double)(started - disp) / 1e3 : -1;
                        break;
                    }
            }
            if (sched != SKED_TIME_NONE && sched < first_sched)
                first_sched = sched;
            if (started != SKED_TIME_NONE && started > last_start)
                last_start = started;
            if (ok && fin != SKED_TIME_NONE && fin > last_fin)
                last_fin = fin;
            task *tk = tid ? find_task(tid) : NULL;
            if (tk == NULL) {
                unknown_task++;
                continue;
            }
            int64_t off = sched - tk->first;
            int64_t k = off / SKED_USEC_PER_SEC;
            if (sched == SKED_TIME_NONE || off < 0 || off % SKED_USEC_PER_SEC != 0 ||
                k >= tk->nocc) {
                unexpected++;
                continue;
            }
            tk->runs[k]++;
            tk->ok[k] += ok;
        }
        const char *next = json_string_value(json_object_get(res, "next_cursor"));
        if (next == NULL || json_array_size(arr) == 0) {
            json_decref(res);
            break;
        }
        snprintf(path, sizeof path, "/v1/runs?limit=1000&cursor=%s", next);
        json_decref(res);
    }
    long missed = 0, extra_runs = 0;
    for (size_t i = 0; i < ntasks; i++)
        for (int k = 0; k < tasks[i].nocc; k++) {
            missed += tasks[i].ok[k] == 0;
            extra_runs += tasks[i].runs[k] > 1 ? tasks[i].runs[k] - 1 : 0;
        }
    long dup = extra_runs + retried + redelivered;
    if (dump)
        fclose(dump);
    qsort(lags, n, sizeof *lags, cmp_d);
    qsort(dlags, nd, sizeof *dlags, cmp_d);
    qsort(slags, nd, sizeof *slags, cmp_d);
    if (nd)
        printf("where the lag goes (ms): scheduled->dispatched (timer) p50 %.2f p99 %.2f "
               "max %.2f; dispatched->started (store mark, queue, worker) p50 %.2f p99 "
               "%.2f max %.2f\n",
               pct(dlags, nd, 50), pct(dlags, nd, 99), dlags[nd - 1], pct(slags, nd, 50),
               pct(slags, nd, 99), slags[nd - 1]);
    for (int w = 0; w < 3 && worst[w].lag > -1e18; w++)
        printf("worst %d: lag %.2f ms, scheduled %+.3f s from the first occurrence "
               "(%.3f), timer %.2f ms, dispatched->started %.2f ms\n",
               w + 1, worst[w].lag, (double)(worst[w].sched - t0) / 1e6,
               (double)worst[w].sched / 1e6, worst[w].disp, worst[w].start);
    double span = last_fin > first_sched ? (double)(last_fin - first_sched) / 1e6 : 0;
    printf("runs %ld (succeeded %ld, other %ld, of tasks not ours %ld); duplicated: "
           "%ld extra runs of an occurrence, %ld retried, %ld redelivered to the sink; "
           "succeeded but never seen by the sink %ld; sink requests %ld (%ld without a "
           "run id)\n",
           runs, succeeded, other, unknown_task, extra_runs, retried, redelivered,
           sink_unseen, http ? sink_requests : 0, http ? sink_noid : 0);
    printf("scenario=%c target=%s occurrences=%ld runs=%ld missed=%ld duplicated=%ld "
           "early=%ld unexpected=%ld",
           scenario, target, expected, runs, missed, dup, early, unexpected);
    if (n)
        printf(" lag_p50_ms=%.2f lag_p99_ms=%.2f lag_max_ms=%.2f", pct(lags, n, 50),
               pct(lags, n, 99), lags[n - 1]);
    printf(" throughput=%.0f", span > 0 ? (double)succeeded / span : 0.0);
    if (scenario == 'a' && last_start != INT64_MIN)
        printf(" all_started_within_ms=%.1f", (double)(last_start - t0) / 1e3);
    printf("\n");
    free(lags);
    free(dlags);
    free(slags);
    for (size_t i = 0; i < ntasks; i++) {
        free(tasks[i].runs);
        free(tasks[i].ok);
    }
    free(tasks);
    curl_easy_cleanup(c);
    curl_global_cleanup();
    return missed > 0 || early > 0 || dup > 0 || unexpected > 0 ? 1 : 0;
}
