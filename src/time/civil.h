/*
 * civil.h - proleptic Gregorian calendar arithmetic on day numbers.
 *
 * Day 0 is 1970-01-01.  Pure integer functions, valid for every year an
 * int32 holds; no time zones here (see tz.h) and no libc time functions,
 * which depend on the process's TZ.  Used by the TZif reader, the cron
 * search and the RFC 3339 reader/writer.
 */
#ifndef SKED_CIVIL_H
#define SKED_CIVIL_H

#include <stdint.h>

/* A broken-down wall-clock time.  mon is 1-12, mday 1-31, wday 0-6 with 0 =
 * Sunday, yday 0-365. */
typedef struct sked_civil {
    int32_t year;
    int mon, mday, hour, min, sec;
    int wday, yday;
} sked_civil;

static inline int sked_civil_is_leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static inline int sked_civil_month_days(int64_t y, int m)
{
    static const unsigned char days[12] = {31, 28, 31, 30, 31, 30,
                                           31, 31, 30, 31, 30, 31};
    return m == 2 ? 28 + sked_civil_is_leap(y) : days[m - 1];
}

/* Days since 1970-01-01 of y-m-d (m 1-12, d 1-31; d may run past the month's
 * end and counts on).  After H. Hinnant's public-domain days_from_civil. */
static inline int64_t sked_civil_days(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t mp = m > 2 ? m - 3 : m + 9;
    int64_t doy = (153 * mp + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

/* Weekday (0 = Sunday) of a day number. */
static inline int sked_civil_wday(int64_t days)
{
    int64_t w = (days + 4) % 7;
    return (int)(w < 0 ? w + 7 : w);
}

/* The date of a day number. */
static inline void sked_civil_from_days(int64_t z, int64_t *y, int *m, int *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

/* floor(a / b) for b > 0. */
static inline int64_t sked_civil_floordiv(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0)) ? q - 1 : q;
}

/* Seconds since the epoch (of some clock: UTC or local) -> broken down. */
static inline void sked_civil_from_secs(int64_t t, sked_civil *c)
{
    int64_t days = sked_civil_floordiv(t, 86400);
    int64_t rem = t - days * 86400;
    int64_t y;
    sked_civil_from_days(days, &y, &c->mon, &c->mday);
    c->year = (int32_t)y;
    c->hour = (int)(rem / 3600);
    c->min = (int)(rem / 60 % 60);
    c->sec = (int)(rem % 60);
    c->wday = sked_civil_wday(days);
    c->yday = (int)(days - sked_civil_days(y, 1, 1));
}

/* Broken down -> seconds since the epoch (wday and yday are ignored). */
static inline int64_t sked_civil_to_secs(const sked_civil *c)
{
    return sked_civil_days(c->year, c->mon, c->mday) * 86400 +
           (int64_t)c->hour * 3600 + c->min * 60 + c->sec;
}

#endif
