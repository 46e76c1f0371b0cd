/*
 * rfc3339.c - the RFC 3339 reader and writer (see rfc3339.h).
 *
 * Pure arithmetic on civil.h; the process's TZ is never consulted.
 */
#include "time/rfc3339.h"

#include <stdio.h>

#include "time/civil.h"

/* Read exactly n digits at s[*i]; advance *i.  Returns -1 when a byte is
 * not an ASCII digit or the input ends. */
static int digits(const char *s, size_t len, size_t *i, int n)
{
    int v = 0;
    for (int k = 0; k < n; k++) {
        if (*i >= len || s[*i] < '0' || s[*i] > '9')
            return -1;
        v = v * 10 + (s[(*i)++] - '0');
    }
    return v;
}

static int expect(const char *s, size_t len, size_t *i, char c)
{
    if (*i >= len || s[*i] != c)
        return -1;
    (*i)++;
    return 0;
}

#define BAD(what) \
    sked_err_set(err, SKED_EINVAL, NULL, (int)i + 1, \
                 "expected %s at column %zu of an RFC 3339 time like " \
                 "2026-11-27T10:00:00Z", what, i + 1)

int sked_rfc3339_parse(const char *s, size_t len, sked_walltime *out,
                       int32_t *utoff, sked_err *err)
{
    size_t i = 0;
    int y, mo, d, h, mi, sec;
    if ((y = digits(s, len, &i, 4)) < 0) return BAD("a 4-digit year");
    if (expect(s, len, &i, '-') < 0) return BAD("'-'");
    if ((mo = digits(s, len, &i, 2)) < 0) return BAD("a 2-digit month");
    if (expect(s, len, &i, '-') < 0) return BAD("'-'");
    if ((d = digits(s, len, &i, 2)) < 0) return BAD("a 2-digit day");
    if (i >= len || (s[i] != 'T' && s[i] != 't')) return BAD("'T'");
    i++;
    if ((h = digits(s, len, &i, 2)) < 0) return BAD("a 2-digit hour");
    if (expect(s, len, &i, ':') < 0) return BAD("':'");
    if ((mi = digits(s, len, &i, 2)) < 0) return BAD("2-digit minutes");
    if (expect(s, len, &i, ':') < 0) return BAD("':'");
    if ((sec = digits(s, len, &i, 2)) < 0) return BAD("2-digit seconds");
    int64_t frac = 0;
    if (i < len && s[i] == '.') {
        i++;
        int n = 0;
        int64_t scale = 100000;
        while (i < len && s[i] >= '0' && s[i] <= '9') {
            if (n < 6)
                frac += (s[i] - '0') * scale;
            scale /= 10;
            n++;
            i++;
        }
        if (n == 0) return BAD("fraction digits");
        if (n > 9) return BAD("at most 9 fraction digits");
    }
    int32_t off = 0;
    if (i < len && (s[i] == 'Z' || s[i] == 'z')) {
        i++;
    } else if (i < len && (s[i] == '+' || s[i] == '-')) {
        int sign = s[i] == '-' ? -1 : 1;
        i++;
        int oh, om;
        if ((oh = digits(s, len, &i, 2)) < 0) return BAD("a 2-digit offset hour");
        if (expect(s, len, &i, ':') < 0) return BAD("':' in the offset");
        if ((om = digits(s, len, &i, 2)) < 0) return BAD("2-digit offset minutes");
        if (oh > 23 || om > 59)
            return sked_err_set(err, SKED_EINVAL, NULL, (int)i - 4,
                                "offset out of range (at most 23:59)");
        off = sign * (oh * 3600 + om * 60);
    } else {
        return BAD("'Z' or an offset like +02:00");
    }
    if (i != len)
        return BAD("the end of the time");
    if (y < 1 || mo < 1 || mo > 12 || d < 1 ||
        d > sked_civil_month_days(y, mo) || h > 23 || mi > 59 || sec > 59)
        return sked_err_set(err, SKED_EINVAL, NULL, 1,
                            "%.*s is not a valid date and time",
                            (int)(len > 40 ? 40 : len), s);
    int64_t local = sked_civil_days(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec;
    *out = (local - off) * SKED_USEC_PER_SEC + frac;
    if (utoff)
        *utoff = off;
    return 0;
}

size_t sked_rfc3339_format(sked_walltime t, int32_t utoff, int use_z,
                           char *buf)
{
    if (utoff % 60 != 0)
        utoff = 0, use_z = 1;
    int64_t secs = sked_civil_floordiv(t, SKED_USEC_PER_SEC);
    int64_t us = t - secs * SKED_USEC_PER_SEC;
    sked_civil c;
    sked_civil_from_secs(secs + utoff, &c);
    if (c.year < 1 || c.year > 9999) {
        buf[0] = '\0';
        return 0;
    }
    int n = snprintf(buf, SKED_RFC3339_MAX, "%04d-%02d-%02dT%02d:%02d:%02d",
                     (int)c.year, c.mon, c.mday, c.hour, c.min, c.sec);
    if (us % 1000 == 0 && us != 0)
        n += snprintf(buf + n, SKED_RFC3339_MAX - (size_t)n, ".%03d",
                      (int)(us / 1000));
    else if (us != 0)
        n += snprintf(buf + n, SKED_RFC3339_MAX - (size_t)n, ".%06d", (int)us);
    if (utoff == 0 && use_z) {
        n += snprintf(buf + n, SKED_RFC3339_MAX - (size_t)n, "Z");
    } else {
        int a = utoff < 0 ? -utoff : utoff;
        n += snprintf(buf + n, SKED_RFC3339_MAX - (size_t)n, "%c%02d:%02d",
                      utoff < 0 ? '-' : '+', a / 3600, a / 60 % 60);
    }
    return (size_t)n;
}

size_t sked_rfc3339_format_tz(sked_walltime t, const sked_tz *tz, char *buf)
{
    int64_t secs = sked_civil_floordiv(t, SKED_USEC_PER_SEC);
    return sked_rfc3339_format(t, sked_tz_utoff_at(tz, secs),
                               sked_tz_is_utc(tz), buf);
}
