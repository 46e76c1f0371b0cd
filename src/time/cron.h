/*
 * cron.h - cron expressions: the parser and the next-fire search.
 *
 * A sked_cron is a plain value (no pointers, no allocation): copy it, store
 * it in a task, share it between threads.  sked_cron_parse turns text into
 * one; sked_cron_next finds the first fire instant strictly after a given
 * instant in a time zone, following cronie's daylight-saving rules.  The
 * grammar and the rules are written in docs/cron.md and above the parser in
 * cron_parse.c.
 *
 * Not here: `every:` schedules anchored at start_at (the task model does that
 * with sked_cron_every_next), formatting (rfc3339.h).
 */
#ifndef SKED_CRON_H
#define SKED_CRON_H

#include <stddef.h>
#include <stdint.h>

#include "core/clock.h"
#include "core/err.h"
#include "time/tz.h"

/* Longest expression accepted, in bytes; longer input is rejected at once. */
#define SKED_CRON_MAX_LEN 4096

/* How far next() looks before it calls a schedule one that never fires. */
#define SKED_CRON_HORIZON_YEARS 400

enum {
    SKED_CRON_DOM_STAR = 1 << 0, /* day-of-month text begins with '*'     */
    SKED_CRON_DOW_STAR = 1 << 1, /* day-of-week text begins with '*'      */
    SKED_CRON_DOM_L    = 1 << 2, /* L: last day of the month              */
    SKED_CRON_DOM_LW   = 1 << 3, /* LW: last weekday of the month         */
    SKED_CRON_WILDCARD = 1 << 4, /* minute or hour text begins with '*'   */
    SKED_CRON_EVERY    = 1 << 5, /* @every: fixed interval, fields unused */
};

typedef struct sked_cron {
    uint64_t second;    /* bit n: second n (0-59)                      */
    uint64_t minute;    /* bit n: minute n (0-59)                      */
    uint32_t hour;      /* bit n: hour n (0-23)                        */
    uint32_t dom;       /* bit n: day n (1-31)                         */
    uint32_t dom_w;     /* bit n: nW, the weekday nearest day n        */
    uint16_t month;     /* bit n: month n (1-12)                       */
    uint8_t dow;        /* bit n: weekday n (0-6, 0 = Sunday)          */
    uint8_t dow_last;   /* bit n: nL, the last weekday n of the month  */
    uint8_t dow_nth[7]; /* bit k of [n]: n#k, the k-th weekday n (1-5)  */
    uint8_t nfields;    /* 5 or 6 as written; 0 for @every             */
    uint32_t flags;     /* SKED_CRON_*                                 */
    int64_t every_us;   /* @every interval, microseconds               */
} sked_cron;

/* Parse expr[0..len) (NUL bytes are ordinary, invalid, bytes).  On success
 * fills *out and returns 0.  On error returns SKED_EINVAL, leaves *out
 * unspecified, and sets err: field is the cron field at fault ("second",
 * "minute", "hour", "day-of-month", "month", "day-of-week"), "expression"
 * for the expression as a whole (field count, unknown macro) or "every" for
 * the duration of @every; column is 1-based in expr; msg reads like
 * `field 2 (hour): 25 is out of range 0-23`. */
int sked_cron_parse(const char *expr, size_t len, sked_cron *out,
                    sked_err *err);

/* The first fire instant of c in zone tz strictly after `after`, into *next.
 * Cron fires on whole seconds; @every fires at the Unix epoch + k * interval.
 * Returns 0, or SKED_ENOFIRE when nothing fires within
 * SKED_CRON_HORIZON_YEARS of `after` nor before year 10000 (*next untouched).
 * Pure: no allocation, no locks. */
int sked_cron_next(const sked_cron *c, const sked_tz *tz, sked_walltime after,
                   sked_walltime *next);

/* anchor + k * interval for the least k giving an instant > after (k may be
 * negative).  interval > 0.  Returns 0, or SKED_ERANGE on overflow. */
int sked_cron_every_next(sked_walltime anchor, int64_t interval,
                         sked_walltime after, sked_walltime *next);

/* A short English description of c into buf (cap bytes, always
 * NUL-terminated), e.g. "at 03:00, every day" or "every 30s". */
void sked_cron_explain(const sked_cron *c, char *buf, size_t cap);

#endif
