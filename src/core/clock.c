/*
 * clock.c - reading the wall and monotonic clocks.
 */
#include "core/clock.h"

#include <time.h>

static int64_t read_clock(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * SKED_USEC_PER_SEC + ts.tv_nsec / 1000;
}

sked_walltime sked_clock_wall_now(void) { return read_clock(CLOCK_REALTIME); }
sked_monotime sked_clock_mono_now(void) { return read_clock(CLOCK_MONOTONIC); }

struct timespec sked_clock_timespec(int64_t t)
{
    int64_t rem = t % SKED_USEC_PER_SEC;
    if (rem < 0)
        rem += SKED_USEC_PER_SEC;
    return (struct timespec){.tv_sec = (time_t)((t - rem) / SKED_USEC_PER_SEC),
                             .tv_nsec = (long)rem * 1000};
}
