/*
 * bench_cron.c - next-fire computations per second.
 *
 *   make bench && bin/bench_cron [ROUNDS]
 *
 * For each mix of (expression, zone) it chains sked_cron_next from a fixed
 * start for a fixed number of calls, times the whole round with the
 * monotonic clock, and repeats ROUNDS times (default 7); it prints the
 * median and the spread, per mix and for the "typical" mix of 5-field
 * expressions in DST zones that docs/benchmarks.md quotes.  Single thread:
 * the figure is per core.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "time/cron.h"
#include "time/tz.h"

#define CALLS 200000

typedef struct mix {
    const char *name;
    const char *zone;
    const char *const *exprs;
} mix;

static const char *const typical[] = {
    "*/5 * * * *", "0 3 * * *", "30 9 * * MON-FRI", "0 */2 * * *",
    "15 14 1 * *", "0 22 * * 1-5", "5 4 * * SUN", "0 0 1 1 *", NULL};
static const char *const seconds[] = {"*/10 * * * * *", "0 0 12 * * *", NULL};
static const char *const extensions[] = {"0 12 L * *", "0 9 15W * *",
                                         "0 18 * * FRI#3", "0 7 * * 1L", NULL};
static const char *const rare[] = {"0 0 29 2 *", "0 0 13 * 5", NULL};

static const mix mixes[] = {
    {"typical 5-field, America/New_York", "America/New_York", typical},
    {"typical 5-field, Europe/Berlin", "Europe/Berlin", typical},
    {"typical 5-field, Australia/Lord_Howe", "Australia/Lord_Howe", typical},
    {"typical 5-field, UTC", "UTC", typical},
    {"6-field seconds, America/New_York", "America/New_York", seconds},
    {"L/W/# extensions, Europe/Berlin", "Europe/Berlin", extensions},
    {"rare (Feb 29, Friday 13th), UTC", "UTC", rare},
};

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double round_rate(const sked_cron *crons, int n, const sked_tz *tz,
                         sked_walltime *sink)
{
    sked_walltime start = INT64_C(1795773600) * 1000000; /* 2026-11-27 */
    sked_monotime t0 = sked_clock_mono_now();
    for (int k = 0; k < CALLS / n; k++) {
        for (int i = 0; i < n; i++) {
            sked_walltime t = start + (sked_walltime)k * 7919 * 1000000;
            if (sked_cron_next(&crons[i], tz, t, &t) == 0)
                *sink += t;
        }
    }
    sked_monotime t1 = sked_clock_mono_now();
    return (double)(CALLS / n * n) / ((double)(t1 - t0) / 1e6);
}

int main(int argc, char **argv)
{
    int rounds = argc > 1 ? atoi(argv[1]) : 7;
    if (rounds < 1)
        rounds = 1;
    sked_walltime sink = 0;
    printf("%-40s %14s %14s %14s\n", "mix", "median next/s", "min", "max");
    for (size_t m = 0; m < sizeof mixes / sizeof mixes[0]; m++) {
        const sked_tz *tz;
        sked_err err;
        if (sked_tz_get(mixes[m].zone, &tz, &err) < 0) {
            fprintf(stderr, "%s: %s\n", mixes[m].zone, err.msg);
            return 1;
        }
        sked_cron crons[16];
        int n = 0;
        for (; mixes[m].exprs[n]; n++)
            if (sked_cron_parse(mixes[m].exprs[n], strlen(mixes[m].exprs[n]),
                                &crons[n], &err) < 0) {
                fprintf(stderr, "%s: %s\n", mixes[m].exprs[n], err.msg);
                return 1;
            }
        double r[64];
        if (rounds > 64)
            rounds = 64;
        for (int i = 0; i < rounds; i++)
            r[i] = round_rate(crons, n, tz, &sink);
        qsort(r, (size_t)rounds, sizeof r[0], cmp);
        printf("%-40s %14.0f %14.0f %14.0f\n", mixes[m].name, r[rounds / 2],
               r[0], r[rounds - 1]);
    }
    return sink == 42 ? 1 : 0; /* keep the results alive */
}
