/*
 * schedule.h - when a task fires: cron in a zone, a fixed interval, or once.
 *
 * A sked_schedule is decoded from the API's "schedule" object (task.c does
 * that) and answers one question: the next occurrence after an instant,
 * within start_at, end_at and max_runs.  Plain value, no allocation,
 * shareable between threads.
 */
#ifndef SKED_SCHEDULE_H
#define SKED_SCHEDULE_H

#include <stdint.h>

#include "core/clock.h"
#include "core/err.h"
#include "store/store.h"
#include "time/cron.h"
#include "time/tz.h"

typedef enum sked_sched_kind {
    SKED_SCHED_CRON = 0,
    SKED_SCHED_EVERY = 1,
    SKED_SCHED_AT = 2,
} sked_sched_kind;

typedef struct sked_schedule {
    sked_sched_kind kind;
    sked_cron cron;            /* CRON */
    const sked_tz *tz;         /* CRON's zone (UTC for the others)    */
    int64_t every_us;          /* EVERY: whole seconds, >= 1 s        */
    sked_walltime at;          /* AT                                  */
    sked_walltime start_at;    /* SKED_TIME_NONE when absent          */
    sked_walltime end_at;      /* SKED_TIME_NONE when absent          */
    int64_t max_runs;          /* 0: no limit                         */
    int64_t jitter_us;         /* 0: none                             */
} sked_schedule;

/* The first occurrence strictly after `after`, ignoring max_runs (the
 * caller counts runs), honouring start_at (nothing before it) and end_at
 * (nothing after it).  EVERY fires at anchor + k * every where the anchor is
 * start_at when given, else the Unix epoch.  AT fires once, at `at`.
 * Returns 0 or SKED_ENOFIRE when there is no such occurrence. */
int sked_schedule_next(const sked_schedule *s, sked_walltime after,
                       sked_walltime *out);

/* The first occurrence of a task created (or resumed) at `now`: the first
 * instant at or after now, except that a one-time task whose `at` is
 * already past runs at once (its occurrence stays `at`). */
int sked_schedule_first(const sked_schedule *s, sked_walltime now,
                        sked_walltime *out);

#endif
