/*
 * bench_memory.c - the scheduler's memory against a running sked server,
 * read from /proc/PID/status (VmRSS, RssAnon, VmHWM).
 *
 *   bin/bench_memory --url U --token T --pid PID --mode armed
 *                    [--count N] [--lead S]
 *   bin/bench_memory --url U --token T --pid PID --mode stored
 *                    [--steps 0,100000,500000,1000000] [--idle S]
 *                    [--clients N] [--data DIR]
 *   bin/bench_memory --pid PID --mode rss [--idle S] [--data DIR]
 *
 * armed   memory per armed timer.  Prints the size of one heap entry
 *         (due_run, src/sched/sched_internal.h) and of a canonical spec;
 *         then reads the RSS idle, creates N (default 10,000) one-time
 *         tasks due --lead seconds (default 15) ahead with a shell target
 *         (outside the 2 s claim window), reads it again, waits until
 *         they are claimed (the timer holds them; due in 0.5 s) and reads
 *         it once more.  The server should be stopped before they fire.
 * stored  RSS with many stored tasks, few due: creates tasks with a cron
 *         schedule that next fires on 1 January (`0 0 1 1 *`, UTC) in
 *         batches of 1000 from --clients connections (default 4), and at
 *         each step, after --idle seconds (default 5), prints the RSS and
 *         (with --data) the size of the database files.
 * rss     waits --idle seconds and prints the RSS once (after a restart).
 *
 * Loopback only; every loop is bounded.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>

#include "core/clock.h"
#include "sched/sched_internal.h"
#include "time/rfc3339.h"

static const char *url, *token, *mode = "armed", *data_dir;
static const char *steps_arg = "0,100000,500000,1000000";
static int pid, count = 10000, lead = 15, idle = 5, clients = 4;

/* --- /proc ------------------------------------------------------------------ */

typedef struct mem {
    long rss, anon, hwm, threads; /* kB, kB, kB, count */
} mem;

static mem read_mem(void)
{
    mem m = {-1, -1, -1, -1};
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", pid);
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        perror(path);
        exit(1);
    }
    while (fgets(line, sizeof line, f)) {
        sscanf(line, "VmRSS: %ld", &m.rss);
        sscanf(line, "RssAnon: %ld", &m.anon);
        sscanf(line, "VmHWM: %ld", &m.hwm);
        sscanf(line, "Threads: %ld", &m.threads);
    }
    fclose(f);
    return m;
}

static long file_kb(const char *name)
{
    char path[4096];
    struct stat st;
    snprintf(path, sizeof path, "%s/%s", data_dir, name);
    return stat(path, &st) == 0 ? (long)(st.st_size / 1024) : 0;
}

static void print_mem(const char *what, long stored)
{
    mem m = read_mem();
    printf("%-28s stored=%-8ld rss_kb=%-7ld anon_kb=%-7ld hwm_kb=%-7ld threads=%ld", what,
           stored, m.rss, m.anon, m.hwm, m.threads);
    if (data_dir)
        printf(" db_kb=%ld wal_kb=%ld", file_kb("sked.db"), file_kb("sked.db-wal"));
    printf("\n");
    fflush(stdout);
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

/* POST body to path; the parsed answer, or NULL (and a message) unless 201. */
static json_t *post(CURL *c, const char *path, const char *body)
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
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    CURLcode rc = curl_easy_perform(c);
    curl_slist_free_all(h);
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    json_t *j = rc == CURLE_OK && status == 201 && b.p ? json_loads(b.p, 0, NULL) : NULL;
    if (j == NULL)
        fprintf(stderr, "POST %s: %s %ld %.300s\n", path, curl_easy_strerror(rc), status,
                b.p ? b.p : "");
    free(b.p);
    return j;
}

static json_t *time_json(sked_walltime t)
{
    char b[SKED_RFC3339_MAX];
    sked_rfc3339_format(t, 0, 1, b);
    return json_string(b);
}

/* The canonical spec's length: the task as answered, without the fields the
 * server adds around the stored text (sked_task_json_text). */
static size_t spec_len(json_t *task)
{
    static const char *const server[] = {"id", "namespace", "state", "next_run_at",
                                         "run_count", "version", "created_at",
                                         "updated_at"};
    json_t *t = json_deep_copy(task);
    for (size_t i = 0; i < sizeof server / sizeof *server; i++)
        json_object_del(t, server[i]);
    char *s = json_dumps(t, JSON_COMPACT);
    size_t n = s ? strlen(s) : 0;
    free(s);
    json_decref(t);
    return n;
}

/* --- armed ------------------------------------------------------------------ */

static int armed(void)
{
    CURL *c = curl_easy_init();
    printf("sizeof(sked_run_rec)=%zu sizeof(due_run)=%zu (heap array entry)\n",
           sizeof(sked_run_rec), sizeof(due_run));
    print_mem("idle", 0);
    sked_walltime due = (sked_clock_wall_now() / SKED_USEC_PER_SEC + lead) * SKED_USEC_PER_SEC;
    size_t slen = 0;
    for (int done = 0; done < count;) {
        json_t *arr = json_array();
        for (int k = 0; k < 1000 && done < count; k++, done++) {
            json_t *t = json_pack("{s:{s:o},s:{s:s,s:s},s:s}", "schedule", "at", time_json(due),
                                  "target", "type", "shell", "command", "true",
                                  "overlap", "allow");
            json_array_append_new(arr, t);
        }
        json_t *body = json_pack("{s:o}", "tasks", arr);
        char *text = json_dumps(body, JSON_COMPACT);
        json_t *res = post(c, "/v1/tasks:batch", text);
        free(text);
        json_decref(body);
        if (res == NULL)
            return 1;
        if (slen == 0)
            slen = spec_len(json_array_get(json_object_get(res, "tasks"), 0));
        json_decref(res);
    }
    printf("canonical spec: %zu bytes (one malloc per armed run)\n", slen);
    if (sked_clock_wall_now() > due - 3 * SKED_USEC_PER_SEC) {
        fprintf(stderr, "bench_memory: creating took too long; raise --lead\n");
        return 1;
    }
    sleep(1);
    print_mem("created, not yet claimed", count);
    /* claims: at most every window/2 = 1 s; due - 2 s is in the window */
    while (sked_clock_wall_now() < due - 500000)
        usleep(50000);
    print_mem("claimed, armed (due in 0.5 s)", count);
    curl_easy_cleanup(c);
    return 0;
}

/* --- stored ----------------------------------------------------------------- */

typedef struct loader {
    pthread_t th;
    long batches;
    int failed;
} loader;

static pthread_mutex_t next_mu = PTHREAD_MUTEX_INITIALIZER;
static long next_batch, last_batch;
static char *batch_body;

static void make_batch_body(void)
{
    static const char one[] =
        "{\"schedule\":{\"cron\":\"0 0 1 1 *\",\"timezone\":\"UTC\"},"
        "\"target\":{\"type\":\"http\",\"url\":\"http://127.0.0.1:9/never\"}}";
    size_t cap = 16 + 1000 * sizeof one;
    batch_body = malloc(cap);
    size_t n = (size_t)sprintf(batch_body, "{\"tasks\":[");
    for (int i = 0; i < 1000; i++)
        n += (size_t)sprintf(batch_body + n, "%s%s", i ? "," : "", one);
    sprintf(batch_body + n, "]}");
}

static void *load_main(void *arg)
{
    loader *l = arg;
    CURL *c = curl_easy_init();
    for (;;) {
        pthread_mutex_lock(&next_mu);
        int mine = next_batch < last_batch;
        if (mine)
            next_batch++;
        pthread_mutex_unlock(&next_mu);
        if (!mine)
            break;
        json_t *res = post(c, "/v1/tasks:batch", batch_body);
        if (res == NULL) {
            l->failed = 1;
            break;
        }
        json_decref(res);
        l->batches++;
    }
    curl_easy_cleanup(c);
    return NULL;
}

static int stored(void)
{
    make_batch_body();
    long stored_n = 0;
    const char *p = steps_arg;
    for (int guard = 0; *p && guard < 64; guard++) {
        long step = strtol(p, (char **)&p, 10);
        if (*p == ',')
            p++;
        if (step % 1000 != 0 || step < stored_n) {
            fprintf(stderr, "bench_memory: --steps: rising multiples of 1000\n");
            return 2;
        }
        if (step > stored_n) {
            sked_monotime t0 = sked_clock_mono_now();
            next_batch = stored_n / 1000;
            last_batch = step / 1000;
            loader *ls = calloc((size_t)clients, sizeof *ls);
            for (int i = 0; i < clients; i++)
                pthread_create(&ls[i].th, NULL, load_main, &ls[i]);
            int failed = 0;
            for (int i = 0; i < clients; i++) {
                pthread_join(ls[i].th, NULL);
                failed |= ls[i].failed;
            }
            free(ls);
            if (failed)
                return 1;
            double secs = (double)(sked_clock_mono_now() - t0) / 1e6;
            printf("created %ld tasks in %.1f s (%.0f tasks/s)\n", step - stored_n, secs,
                   (double)(step - stored_n) / secs);
            stored_n = step;
        }
        sleep((unsigned)idle);
        char what[64];
        snprintf(what, sizeof what, "after %d s idle", idle);
        print_mem(what, stored_n);
    }
    free(batch_body);
    return 0;
}

int main(int argc, char **argv)
{
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--url")) url = argv[i + 1];
        else if (!strcmp(argv[i], "--token")) token = argv[i + 1];
        else if (!strcmp(argv[i], "--pid")) pid = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--mode")) mode = argv[i + 1];
        else if (!strcmp(argv[i], "--count")) count = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--lead")) lead = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--steps")) steps_arg = argv[i + 1];
        else if (!strcmp(argv[i], "--idle")) idle = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--clients")) clients = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--data")) data_dir = argv[i + 1];
    }
    int need_api = strcmp(mode, "rss") != 0;
    if (pid <= 0 || (need_api && (!url || !token)) || count < 1 || count > 1000000 ||
        lead < 5 || idle < 0 || idle > 600 || clients < 1 || clients > 64 ||
        (strcmp(mode, "armed") && strcmp(mode, "stored") && strcmp(mode, "rss"))) {
        fprintf(stderr, "usage: bench_memory --pid PID --mode armed|stored|rss [--url U "
                        "--token T] [--count N] [--lead S] [--steps N,N,..] [--idle S] "
                        "[--clients N] [--data DIR]\n");
        return 2;
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    int rc;
    if (!strcmp(mode, "armed")) {
        rc = armed();
    } else if (!strcmp(mode, "stored")) {
        rc = stored();
    } else {
        sleep((unsigned)idle);
        char what[64];
        snprintf(what, sizeof what, "after %d s idle", idle);
        print_mem(what, -1);
        rc = 0;
    }
    curl_global_cleanup();
    return rc;
}
