/*
 * bench_spawn.c - what starting a shell run costs, and what the pool of
 * pre-spawned shells (src/worker/exec_pool.c) saves.
 *
 *   make bench && bin/bench_spawn [ROUNDS] [BURST]
 *
 * (1) The raw ceiling: posix_spawn("/bin/sh", "-c", "true") + waitpid in
 *     a loop, from one thread and from two, in spawns/s; and how long one
 *     posix_spawn call blocks its thread.
 * (2) The executor: BURST (default 100) shell jobs `true` submitted at
 *     once, as when that many tasks come due at the same instant; the lag
 *     of each is started_at - the instant before the first submit (what
 *     DESIGN §2.4 calls start lag, without the scheduler's share); p50, p99
 *     and max per burst, and when the last run finished.  Pool on (its
 *     default size for 100 slots: 100 shells, full before each burst) and
 *     off, alternating.
 * Each figure is the median over ROUNDS rounds (default 5), with the
 * range.  Nothing else should run on the machine meanwhile.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/clock.h"
#include "worker/exec.h"

extern char **environ;

#define SPAWNS 400 /* per round of (1) */
#define MAX_BURST 1000

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static int cmp_dbl(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* median [min-max] of n values, sorted in place */
static void summary(double *v, int n, char *out, size_t len, const char *fmt)
{
    qsort(v, (size_t)n, sizeof *v, cmp_dbl);
    char a[32], b[32], c[32];
    snprintf(a, sizeof a, fmt, v[n / 2]);
    snprintf(b, sizeof b, fmt, v[0]);
    snprintf(c, sizeof c, fmt, v[n - 1]);
    snprintf(out, len, "%s [%s-%s]", a, b, c);
}

/* ---- (1) raw posix_spawn --------------------------------------------- */

typedef struct spawner {
    int n;
    int64_t blocked_us; /* summed time inside posix_spawn */
} spawner;

static void *spawn_loop(void *arg)
{
    spawner *s = arg;
    char *argv[] = {"sh", "-c", "true", NULL};
    for (int i = 0; i < s->n; i++) {
        pid_t pid;
        sked_monotime t0 = sked_clock_mono_now();
        int rc = posix_spawn(&pid, "/bin/sh", NULL, NULL, argv, environ);
        s->blocked_us += sked_clock_mono_now() - t0;
        if (rc != 0) {
            fprintf(stderr, "posix_spawn: %s\n", strerror(rc));
            exit(1);
        }
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
            ;
    }
    return NULL;
}

/* spawns/s with `threads` threads; *call_us: mean time in posix_spawn */
static double raw_rate(int threads, double *call_us)
{
    pthread_t th[2];
    spawner s[2] = {{.n = SPAWNS / threads}, {.n = SPAWNS / threads}};
    sked_monotime t0 = sked_clock_mono_now();
    for (int i = 0; i < threads; i++)
        pthread_create(&th[i], NULL, spawn_loop, &s[i]);
    for (int i = 0; i < threads; i++)
        pthread_join(th[i], NULL);
    double secs = (double)(sked_clock_mono_now() - t0) / SKED_USEC_PER_SEC;
    int64_t blocked = 0;
    for (int i = 0; i < threads; i++)
        blocked += s[i].blocked_us;
    *call_us = (double)blocked / (threads * (SPAWNS / threads));
    return threads * (SPAWNS / threads) / secs;
}

/* ---- (2) the executor's burst ------------------------------------------ */

typedef struct burst {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int n, done, failed;
    sked_walltime started[MAX_BURST], finished[MAX_BURST];
} burst;

static void on_started(void *ctx, sked_job *job, sked_walltime at)
{
    burst *b = ctx;
    b->started[(intptr_t)job->user] = at; /* one writer per slot */
}

static void on_done(void *ctx, sked_job *job, const sked_job_result *res)
{
    burst *b = ctx;
    pthread_mutex_lock(&b->mu);
    b->finished[(intptr_t)job->user] = res->finished_at;
    b->failed += res->outcome != SKED_JOB_SUCCEEDED;
    b->done++;
    pthread_cond_broadcast(&b->cv);
    pthread_mutex_unlock(&b->mu);
    sked_job_free(job);
}

typedef struct burst_result {
    double p50_ms, p99_ms, max_ms, last_done_ms;
} burst_result;

static sked_exec *new_exec(burst *b, int shell_pool)
{
    sked_exec_config cfg = {.shell_pool = shell_pool, .slots = 100,
                            .started = on_started, .done = on_done, .ctx = b};
    sked_exec *ex;
    sked_err err;
    if (sked_exec_new(&cfg, &ex, &err) != 0) {
        fprintf(stderr, "sked_exec_new: %s\n", err.msg);
        exit(1);
    }
    return ex;
}

/* Wait until the pool (if any) is full and the machine had a moment. */
static void settle(sked_exec *ex)
{
    for (int i = 0; i < 5000; i++) {
        sked_shell_pool_stats st;
        sked_exec_pool_stats(ex, &st);
        if (st.idle == st.size)
            break;
        usleep(1000);
    }
    usleep(200 * 1000);
}

static burst_result run_burst(sked_exec *ex, burst *b, int n, int round)
{
    settle(ex);
    pthread_mutex_lock(&b->mu);
    b->n = n;
    b->done = b->failed = 0;
    pthread_mutex_unlock(&b->mu);
    sked_job *jobs[MAX_BURST];
    for (int i = 0; i < n; i++) {
        sked_job *j = calloc(1, sizeof *j);
        snprintf(j->run_id, sizeof j->run_id, "r%d-%d", round, i);
        snprintf(j->task_id, sizeof j->task_id, "t%d", i);
        j->kind = SKED_JOB_SHELL;
        j->command = strdup("true");
        j->timeout_us = 60 * SKED_USEC_PER_SEC;
        j->user = (void *)(intptr_t)i;
        jobs[i] = j;
    }
    sked_walltime t0 = sked_clock_wall_now();
    for (int i = 0; i < n; i++) {
        jobs[i]->scheduled_at = t0;
        sked_err err;
        if (sked_exec_submit(ex, jobs[i], &err) != 0) {
            fprintf(stderr, "submit: %s\n", err.msg);
            exit(1);
        }
    }
    pthread_mutex_lock(&b->mu);
    while (b->done < n)
        pthread_cond_wait(&b->cv, &b->mu);
    int failed = b->failed;
    pthread_mutex_unlock(&b->mu);
    if (failed) {
        fprintf(stderr, "%d runs failed\n", failed);
        exit(1);
    }
    int64_t lag[MAX_BURST];
    sked_walltime last = 0;
    for (int i = 0; i < n; i++) {
        lag[i] = b->started[i] - t0;
        if (b->finished[i] > last)
            last = b->finished[i];
    }
    qsort(lag, (size_t)n, sizeof *lag, cmp_i64);
    int p99 = (99 * n + 99) / 100 - 1; /* nearest rank */
    return (burst_result){.p50_ms = lag[n / 2] / 1000.0,
                          .p99_ms = lag[p99] / 1000.0,
                          .max_ms = lag[n - 1] / 1000.0,
                          .last_done_ms = (last - t0) / 1000.0};
}

int main(int argc, char **argv)
{
    int rounds = argc > 1 ? atoi(argv[1]) : 5;
    int n = argc > 2 ? atoi(argv[2]) : 100;
    if (rounds < 1 || rounds > 100 || n < 1 || n > MAX_BURST) {
        fprintf(stderr, "usage: bench_spawn [ROUNDS 1-100] [BURST 1-%d]\n",
                MAX_BURST);
        return 2;
    }
    char line[128];

    /* (1) */
    double r1[100], r2[100], c1[100], c2[100];
    for (int r = 0; r < rounds; r++) {
        r1[r] = raw_rate(1, &c1[r]);
        r2[r] = raw_rate(2, &c2[r]);
    }
    printf("raw posix_spawn(/bin/sh -c true) + waitpid, %d per round, "
           "%d rounds:\n", SPAWNS, rounds);
    summary(r1, rounds, line, sizeof line, "%.0f");
    printf("  1 thread:  %s spawns/s", line);
    summary(c1, rounds, line, sizeof line, "%.0f");
    printf(", posix_spawn blocks %s us\n", line);
    summary(r2, rounds, line, sizeof line, "%.0f");
    printf("  2 threads: %s spawns/s", line);
    summary(c2, rounds, line, sizeof line, "%.0f");
    printf(", posix_spawn blocks %s us\n", line);

    /* (2) */
    static burst b = {.mu = PTHREAD_MUTEX_INITIALIZER,
                      .cv = PTHREAD_COND_INITIALIZER};
    sked_exec *on = new_exec(&b, 0), *off = new_exec(&b, -1);
    burst_result res[2][100];
    for (int r = 0; r < rounds; r++) {
        res[0][r] = run_burst(on, &b, n, 2 * r);
        res[1][r] = run_burst(off, &b, n, 2 * r + 1);
    }
    sked_shell_pool_stats st;
    sked_exec_pool_stats(on, &st);
    printf("executor, burst of %d `true` at once, %d rounds, lag = "
           "started_at - submit (ms):\n", n, rounds);
    for (int k = 0; k < 2; k++) {
        double v[4][100];
        for (int r = 0; r < rounds; r++) {
            v[0][r] = res[k][r].p50_ms;
            v[1][r] = res[k][r].p99_ms;
            v[2][r] = res[k][r].max_ms;
            v[3][r] = res[k][r].last_done_ms;
        }
        printf("  pool %-4s", k == 0 ? "on" : "off");
        const char *names[] = {"p50", "p99", "max", "last finished"};
        for (int i = 0; i < 4; i++) {
            summary(v[i], rounds, line, sizeof line, "%.2f");
            printf(" %s %s%s", names[i], line, i < 3 ? "," : "\n");
        }
    }
    printf("  (pool size %d; %llu runs in pool shells, %llu spawned "
           "directly)\n",
           st.size, (unsigned long long)st.used,
           (unsigned long long)st.direct);
    sked_exec_free(on);
    sked_exec_free(off);
    return 0;
}
