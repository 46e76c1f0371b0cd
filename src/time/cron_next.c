/*
 * cron_next.c - the next-fire search: sked_cron -> the next instant.
 *
 * The search walks the zone's spans (maximal intervals of constant UTC
 * offset, tz.h) forward from the start instant.  Inside one span local time
 * and UTC are a plain shift of each other, so the first local match in the
 * span's local range is the first fire in it.  Matches are found by skipping
 * whole fields (month, day, hour, minute, second) with bit scans, never by
 * stepping minute by minute, so `0 0 29 2 *` costs a handful of steps.
 *
 * Daylight saving follows cronie.  A schedule is *wildcard* when its minute
 * or hour field begins with '*', else *fixed-time*.  At a span boundary the
 * offset either grows (a gap: local times [start+prev, start+utoff) never
 * happen) or shrinks (a fold: local times [start+utoff, start+prev) happen
 * twice).
 *   gap,  fixed-time: a match inside the gap fires once, at the span start
 *   gap,  wildcard:   a match inside the gap does not fire
 *   fold, fixed-time: fires at the first occurrence only, so the repeated
 *                     local range is left out of the later span
 *   fold, wildcard:   fires at both occurrences
 * Several gap matches give one fire, and a gap fire that coincides with a
 * real match at the span start is the same instant: fires are deduplicated
 * by construction because each call returns one instant > after.
 */
#include "time/cron.h"

#include "time/civil.h"

#define MAX_LOCAL_YEAR 9999

/* Matching days of month m of year y as bits 1..31. */
static uint32_t day_mask(const sked_cron *c, int64_t y, int m)
{
    int nd = sked_civil_month_days(y, m);
    uint32_t valid = (uint32_t)((UINT64_C(2) << nd) - 2);
    int64_t first = sked_civil_days(y, m, 1);
    int w1 = sked_civil_wday(first); /* weekday of the 1st */

    uint32_t dom = c->dom & valid;
    if (c->flags & SKED_CRON_DOM_L)
        dom |= UINT32_C(1) << nd;
    if (c->flags & SKED_CRON_DOM_LW) {
        int w = (w1 + nd - 1) % 7;
        dom |= UINT32_C(1) << (nd - (w == 0 ? 2 : w == 6 ? 1 : 0));
    }
    for (uint32_t wbits = c->dom_w & valid; wbits; wbits &= wbits - 1) {
        int n = __builtin_ctz(wbits);
        int w = (w1 + n - 1) % 7;
        int d = n;
        if (w == 6)
            d = n > 1 ? n - 1 : n + 2;
        else if (w == 0)
            d = n < nd ? n + 1 : n - 2;
        dom |= UINT32_C(1) << d;
    }

    uint32_t dow = 0;
    for (int d = 1; d <= nd; d++) {
        int w = (w1 + d - 1) % 7;
        if ((c->dow >> w & 1) || (c->dow_nth[w] >> ((d + 6) / 7) & 1) ||
            ((c->dow_last >> w & 1) && d + 7 > nd))
            dow |= UINT32_C(1) << d;
    }
    if (c->flags & (SKED_CRON_DOM_STAR | SKED_CRON_DOW_STAR))
        return dom & dow;
    return dom | dow;
}

/* Lowest set bit of mask at or above bit `from`, or -1. */
static int next_bit64(uint64_t mask, int from)
{
    if (from >= 64)
        return -1;
    mask &= ~UINT64_C(0) << from;
    return mask ? __builtin_ctzll(mask) : -1;
}

/* The first local second L with lo <= L < hi that matches c's fields, into
 * *out.  Returns 0, or -1 when there is none. */
static int find_local(const sked_cron *c, int64_t lo, int64_t hi,
                      int64_t *out)
{
    int64_t days = sked_civil_floordiv(lo, 86400);
    int64_t sod = lo - days * 86400;
    int64_t y;
    int m, d;
    sked_civil_from_days(days, &y, &m, &d);
    int h = (int)(sod / 3600), mi = (int)(sod / 60 % 60), s = (int)(sod % 60);
    int64_t mask_y = 0;
    int mask_m = 0;
    uint32_t mask = 0;

    for (;;) {
        if (y > MAX_LOCAL_YEAR)
            return -1;
        int64_t day0 = sked_civil_days(y, m, d) * 86400;
        if (day0 >= hi)
            return -1;
        if (!(c->month >> m & 1)) {
            int nm = next_bit64(c->month, m + 1);
            if (nm < 0 || nm > 12) {
                y++;
                nm = __builtin_ctz(c->month);
            }
            m = nm, d = 1, h = mi = s = 0;
            continue;
        }
        if (mask_y != y || mask_m != m) {
            mask = day_mask(c, y, m);
            mask_y = y, mask_m = m;
        }
        int nd = next_bit64(mask, d);
        if (nd < 0) {
            if (++m > 12)
                m = 1, y++;
            d = 1, h = mi = s = 0;
            continue;
        }
        if (nd != d) {
            d = nd, h = mi = s = 0;
            continue;
        }
        int nh = next_bit64(c->hour, h);
        if (nh < 0) {
            d++, h = mi = s = 0;
            continue;
        }
        if (nh != h)
            h = nh, mi = s = 0;
        int nmi = next_bit64(c->minute, mi);
        if (nmi < 0) {
            h++, mi = s = 0;
            if (h == 24)
                d++, h = 0;
            continue;
        }
        if (nmi != mi)
            mi = nmi, s = 0;
        int ns = next_bit64(c->second, s);
        if (ns < 0) {
            mi++, s = 0;
            if (mi == 60)
                h++, mi = 0;
            if (h == 24)
                d++, h = 0;
            continue;
        }
        int64_t L = day0 + h * 3600 + mi * 60 + ns;
        if (L >= hi)
            return -1;
        *out = L;
        return 0;
    }
}

int sked_cron_every_next(sked_walltime anchor, int64_t interval,
                         sked_walltime after, sked_walltime *next)
{
    /* k = floor((after - anchor) / interval) + 1, without overflow */
    __int128 diff = (__int128)after - anchor;
    __int128 k = diff / interval;
    if (diff % interval != 0 && diff < 0)
        k--;
    __int128 r = (__int128)anchor + (k + 1) * interval;
    if (r > INT64_MAX || r < INT64_MIN)
        return SKED_ERANGE;
    *next = (sked_walltime)r;
    return 0;
}

int sked_cron_next(const sked_cron *c, const sked_tz *tz, sked_walltime after,
                   sked_walltime *next)
{
    if (c->flags & SKED_CRON_EVERY)
        return sked_cron_every_next(0, c->every_us, after, next) ? SKED_ENOFIRE
                                                                  : 0;
    int fixed = !(c->flags & SKED_CRON_WILDCARD);
    int64_t cur = sked_civil_floordiv(after, SKED_USEC_PER_SEC) + 1;

    /* Horizon: SKED_CRON_HORIZON_YEARS of local time, and never past the
     * end of year 9999 (RFC 3339 has four-digit years). */
    sked_civil lt;
    sked_tz_to_local(tz, cur, &lt, NULL);
    int64_t hy = (int64_t)lt.year + SKED_CRON_HORIZON_YEARS;
    if (hy > MAX_LOCAL_YEAR + 1)
        hy = MAX_LOCAL_YEAR + 1;
    int64_t horizon = sked_civil_days(hy, 1, 1) * 86400; /* local seconds */

    for (;;) {
        sked_tz_span sp;
        sked_tz_span_at(tz, cur, &sp);
        int64_t L;
        int has_start = sp.start != INT64_MIN;
        if (fixed && has_start && cur == sp.start && sp.prev_utoff < sp.utoff &&
            find_local(c, sp.start + sp.prev_utoff, sp.start + sp.utoff, &L) == 0) {
            *next = sp.start * SKED_USEC_PER_SEC;
            return 0;
        }
        int64_t lo = cur + sp.utoff;
        if (fixed && has_start && sp.prev_utoff > sp.utoff &&
            lo < sp.start + sp.prev_utoff)
            lo = sp.start + sp.prev_utoff;
        int64_t hi = sp.end == INT64_MAX ? horizon : sp.end + sp.utoff;
        if (hi > horizon)
            hi = horizon;
        if (lo < hi && find_local(c, lo, hi, &L) == 0) {
            *next = (L - sp.utoff) * SKED_USEC_PER_SEC;
            return 0;
        }
        if (sp.end == INT64_MAX || sp.end + sp.utoff >= horizon)
            return SKED_ENOFIRE;
        cur = sp.end;
    }
}
