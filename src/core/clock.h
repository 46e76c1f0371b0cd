/*
 * clock.h - the two kinds of time in sked, kept apart by type.
 *
 * sked_walltime: microseconds since the Unix epoch, UTC (CLOCK_REALTIME).
 *   What cron, `at`, scheduled_at and every stored time mean.
 * sked_monotime: microseconds on CLOCK_MONOTONIC.  Timeouts, leases measured
 *   locally, intervals.  Never stored, never compared with a wall time.
 *
 * Both are plain int64_t so arithmetic stays readable; the names say which
 * clock a value belongs to.  Never mix them.
 */
#ifndef SKED_CLOCK_H
#define SKED_CLOCK_H

#include <stdint.h>
#include <time.h>

typedef int64_t sked_walltime;
typedef int64_t sked_monotime;

#define SKED_USEC_PER_SEC  INT64_C(1000000)
#define SKED_USEC_PER_MSEC INT64_C(1000)

sked_walltime sked_clock_wall_now(void);
sked_monotime sked_clock_mono_now(void);

/* t (of either clock) as a struct timespec: the absolute deadline of a
 * timed wait on a condition variable of the same clock. */
struct timespec sked_clock_timespec(int64_t t);

#endif
