/*
 * tz_rule.c - the POSIX TZ rule in a TZif footer: parse it, then compute the
 * span (constant-offset interval) of any instant from it.
 *
 * tz.c calls this for instants after a zone's last listed transition, which
 * for most zones means from 2037 on, and for "slim" TZif files much earlier.
 * Everything is integer arithmetic on the proleptic Gregorian calendar
 * (civil.h); the process's TZ is never consulted.  Not here: reading TZif
 * files, caching zones, local-to-UTC conversion (all in tz.c).
 *
 * A rule with daylight saving time changes the offset twice a year.  Those
 * changes form one infinite, strictly increasing sequence of events, indexed
 * by k: event k happens in year floor(k/2), and events alternate between the
 * two offsets.  For a northern rule the even events start DST; for a southern
 * one (start later in the calendar year than end, which includes "negative
 * DST" such as Europe/Dublin's winter time) the even events end it.  The
 * Gregorian calendar repeats exactly every 400 years (146097 days, a whole
 * number of weeks), so the events do too; that is what lets the parser check
 * the alternation once and for all, and lets the evaluator reduce any int64
 * instant into a few centuries around the epoch where nothing can overflow.
 */
#include "time/tz_rule.h"

#include <stdbool.h>

#include "core/err.h"
#include "time/civil.h"

#define SECS_PER_DAY   86400
#define SECS_PER_HOUR  3600
/* 400 Gregorian years, the period of every rule. */
#define CYCLE_SECS     ((int64_t)146097 * SECS_PER_DAY)
/* The mean Gregorian year, for a first guess at the year of an instant. */
#define MEAN_YEAR_SECS ((int64_t)31556952)
/* Bounds of the hour in a transition time (RFC 8536 version 3) and in a UT
 * offset (POSIX). */
#define MAX_TIME_HOURS 167
#define MAX_OFF_HOURS  24

/* ------------------------------------------------------------------------ */
/* Evaluation                                                                */

/* Day number of date d in year y. */
static int64_t date_day(const sked_tz_rule_date *d, int64_t y)
{
    switch (d->kind) {
    case 'J':
        /* Jn never counts Feb 29: J60 is always March 1. */
        return sked_civil_days(y, 1, 1) + d->day - 1 +
               (d->day >= 60 && sked_civil_is_leap(y));
    case 'N':
        return sked_civil_days(y, 1, 1) + d->day;
    default: {
        int64_t first = sked_civil_days(y, d->mon, 1);
        int mday = 1 + (d->wday - sked_civil_wday(first) + 7) % 7 +
                   7 * (d->week - 1);
        /* Week 5 means the last such day; at most 35 > 28..31, one step. */
        if (mday > sked_civil_month_days(y, d->mon))
            mday -= 7;
        return first + mday - 1;
    }
    }
}

/* Instant of the start (end = false) or end of DST in year y.  The start is
 * given in standard time, the end in daylight time.  y stays within a few
 * centuries of the epoch, so this cannot overflow. */
static int64_t change_at(const sked_tz_rule *r, int64_t y, bool end)
{
    const sked_tz_rule_date *d = end ? &r->end : &r->start;
    int32_t off = end ? r->dst_off : r->std_off;
    return date_day(d, y) * SECS_PER_DAY + d->time - off;
}

/* Whether event k ends DST (else it starts it). */
static bool event_ends(const sked_tz_rule *r, int64_t k)
{
    bool odd = k - 2 * sked_civil_floordiv(k, 2) != 0;
    return odd != (r->kind == SKED_TZ_RULE_SOUTH);
}

static int64_t event_at(const sked_tz_rule *r, int64_t k)
{
    return change_at(r, sked_civil_floordiv(k, 2), event_ends(r, k));
}

static int32_t offset_after(const sked_tz_rule *r, int64_t k)
{
    return event_ends(r, k) ? r->std_off : r->dst_off;
}

void sked_tz_rule_span(const sked_tz_rule *r, int64_t t, sked_tz_span *out)
{
    if (r->kind == SKED_TZ_RULE_FIXED) {
        out->start = INT64_MIN;
        out->end = INT64_MAX;
        out->utoff = out->prev_utoff = r->std_off;
        return;
    }
    /* t = shift + tr with |tr| < 400 years and |shift| <= |t|. */
    int64_t shift = t / CYCLE_SECS * CYCLE_SECS;
    int64_t tr = t - shift;

    /* Find the last event at or before tr.  The guessed year is off by at
     * most one and events stray at most ~9 days out of their year, so the
     * loops run a step or two; they end because the parser checked that
     * events strictly increase. */
    int64_t k = 2 * (1970 + sked_civil_floordiv(tr, MEAN_YEAR_SECS));
    int64_t at = event_at(r, k), next;
    if (at > tr) {
        do {
            next = at;
            at = event_at(r, --k);
        } while (at > tr);
    } else {
        next = event_at(r, k + 1);
        while (next <= tr) {
            at = next;
            next = event_at(r, ++k + 1);
        }
    }

    out->utoff = offset_after(r, k);
    out->prev_utoff = offset_after(r, k - 1);
    if (__builtin_add_overflow(at, shift, &out->start)) {
        out->start = INT64_MIN;
        out->prev_utoff = out->utoff;
    }
    if (__builtin_add_overflow(next, shift, &out->end))
        out->end = INT64_MAX;
}

/* Classify a rule with two distinct offsets, checking every year of one
 * 400-year cycle (which covers all years).  Returns false when the
 * changes do not strictly alternate. */
static bool classify(sked_tz_rule *r)
{
    int64_t s = change_at(r, 2000, false), e = change_at(r, 2000, true);
    bool all_equal = true, perpetual = true;
    for (int64_t y = 2000; y < 2400; y++) {
        int64_t s1 = change_at(r, y, false), e1 = change_at(r, y, true);
        all_equal = all_equal && s1 == e1;
        /* DST ends exactly when next year's begins: DST all year, like
         * RFC 8536's "EST5EDT,0/0,J365/25". */
        perpetual = perpetual && s1 < e1 && e1 == change_at(r, y + 1, false);
    }
    if (all_equal || perpetual) {
        /* A DST period of length zero changes nothing. */
        r->std_off = perpetual ? r->dst_off : r->std_off;
        r->dst_off = r->std_off;
        r->kind = SKED_TZ_RULE_FIXED;
        return true;
    }
    if (s == e)
        return false;
    r->kind = s < e ? SKED_TZ_RULE_NORTH : SKED_TZ_RULE_SOUTH;
    int64_t prev = event_at(r, 2 * 2000);
    for (int64_t k = 2 * 2000 + 1; k <= 2 * 2400; k++) {
        int64_t at = event_at(r, k);
        if (at <= prev)
            return false;
        prev = at;
    }
    return true;
}

/* ------------------------------------------------------------------------ */
/* Parsing                                                                   */

/*
 * The grammar, after POSIX (XBD 8.3) as restricted and extended by RFC 8536
 * section 3.3:
 *
 *   tz     = std offset [ dst [ offset ] [ "," date [ "/" time ] ","
 *                                              date [ "/" time ] ] ]
 *   std, dst = 1*ALPHA | "<" 1*( ALNUM | "+" | "-" ) ">"
 *   offset = [ "+" | "-" ] hh [ ":" mm [ ":" ss ] ]      hh 0-24, west of UT
 *   time   = [ "+" | "-" ] hhh [ ":" mm [ ":" ss ] ]     hhh 0-167 (v3)
 *   date   = "J" n (1-365) | n (0-365) | "M" m "." w "." d
 *                                          m 1-12, w 1-5, d 0-6
 *
 * dst's offset defaults to one hour ahead of std, a missing time to 02:00,
 * and a missing rule to the US one, ",M3.2.0,M11.1.0", as tzcode does.
 */

typedef struct cursor {
    const char *p, *end;
} cursor;

static bool at_char(const cursor *c, char ch)
{
    return c->p < c->end && *c->p == ch;
}

static bool is_digit(char ch)
{
    return ch >= '0' && ch <= '9';
}

static bool is_alpha(char ch)
{
    return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z');
}

static bool parse_name(cursor *c)
{
    const char *s;
    if (at_char(c, '<')) {
        s = ++c->p;
        while (c->p < c->end && (is_alpha(*c->p) || is_digit(*c->p) ||
                                 *c->p == '+' || *c->p == '-'))
            c->p++;
        if (c->p == s || !at_char(c, '>'))
            return false;
        c->p++;
        return true;
    }
    s = c->p;
    while (c->p < c->end && is_alpha(*c->p))
        c->p++;
    return c->p != s;
}

/* An unsigned decimal number in [min, max]. */
static bool parse_num(cursor *c, int min, int max, int *out)
{
    int v = 0;
    if (c->p >= c->end || !is_digit(*c->p))
        return false;
    while (c->p < c->end && is_digit(*c->p)) {
        v = v * 10 + (*c->p++ - '0');
        if (v > max)
            return false;
    }
    *out = v;
    return v >= min;
}

/* [+-]hh[:mm[:ss]] with hh <= max_hours, as signed seconds. */
static bool parse_hms(cursor *c, int max_hours, int32_t *out)
{
    int sign = 1, h, m = 0, s = 0;
    if (at_char(c, '+') || at_char(c, '-'))
        sign = *c->p++ == '-' ? -1 : 1;
    if (!parse_num(c, 0, max_hours, &h))
        return false;
    if (at_char(c, ':')) {
        c->p++;
        if (!parse_num(c, 0, 59, &m))
            return false;
        if (at_char(c, ':')) {
            c->p++;
            if (!parse_num(c, 0, 59, &s))
                return false;
        }
    }
    *out = sign * (h * SECS_PER_HOUR + m * 60 + s);
    return true;
}

static bool parse_date(cursor *c, sked_tz_rule_date *d)
{
    int a, b, w;
    d->time = 2 * SECS_PER_HOUR;
    if (at_char(c, 'J')) {
        c->p++;
        if (!parse_num(c, 1, 365, &a))
            return false;
        d->kind = 'J';
        d->day = (int16_t)a;
    } else if (at_char(c, 'M')) {
        c->p++;
        if (!parse_num(c, 1, 12, &a) || !at_char(c, '.'))
            return false;
        c->p++;
        if (!parse_num(c, 1, 5, &w) || !at_char(c, '.'))
            return false;
        c->p++;
        if (!parse_num(c, 0, 6, &b))
            return false;
        d->kind = 'M';
        d->mon = (int16_t)a;
        d->week = (int16_t)w;
        d->wday = (int16_t)b;
    } else {
        if (!parse_num(c, 0, 365, &a))
            return false;
        d->kind = 'N';
        d->day = (int16_t)a;
    }
    if (at_char(c, '/')) {
        c->p++;
        return parse_hms(c, MAX_TIME_HOURS, &d->time);
    }
    return true;
}

int sked_tz_rule_parse(const char *s, size_t len, sked_tz_rule *r,
                       const char **why)
{
    static const char us_rule[] = "M3.2.0,M11.1.0";
    cursor c = {s, s + len}, rc;
    int32_t off;

    *r = (sked_tz_rule){.kind = SKED_TZ_RULE_FIXED};
    *why = "bad zone abbreviation in TZ rule";
    if (!parse_name(&c))
        goto fail;
    *why = "bad UT offset in TZ rule";
    if (!parse_hms(&c, MAX_OFF_HOURS, &off))
        goto fail;
    r->std_off = r->dst_off = -off;
    if (c.p == c.end)
        return 0;

    *why = "bad zone abbreviation in TZ rule";
    if (!parse_name(&c))
        goto fail;
    r->dst_off = r->std_off + SECS_PER_HOUR;
    if (c.p < c.end && *c.p != ',') {
        *why = "bad UT offset in TZ rule";
        if (!parse_hms(&c, MAX_OFF_HOURS, &off))
            goto fail;
        r->dst_off = -off;
    }
    if (c.p == c.end)
        rc = (cursor){us_rule, us_rule + sizeof us_rule - 1};
    else
        rc = (cursor){c.p + 1, c.end};

    *why = "bad DST rule in TZ string";
    if (!at_char(&c, ',') && c.p != c.end)
        goto fail;
    if (!parse_date(&rc, &r->start) || !at_char(&rc, ','))
        goto fail;
    rc.p++;
    if (!parse_date(&rc, &r->end) || rc.p != rc.end)
        goto fail;

    if (r->dst_off == r->std_off) {
        /* Two names for one offset: nothing ever changes. */
        r->kind = SKED_TZ_RULE_FIXED;
        return 0;
    }
    *why = "TZ rule changes do not alternate";
    if (!classify(r))
        goto fail;
    *why = NULL;
    return 0;

fail:
    *r = (sked_tz_rule){.kind = SKED_TZ_RULE_FIXED};
    return SKED_EINVAL;
}
