/*
 * cron_explain.c - a short English description of a parsed expression.
 *
 * Works from the parsed bits, not the text, so "*\/15" and "0,15,30,45"
 * read the same.  Meant for people (`sked cron explain`, the dashboard); no
 * program should parse its output.
 */
#include "time/cron.h"

#include <stdio.h>
#include <string.h>

#include "time/duration.h"

typedef struct out {
    char *buf;
    size_t cap, len;
} out;

static void put(out *o, const char *fmt, const char *a, long n)
{
    if (o->len + 1 >= o->cap)
        return;
    int w = a ? snprintf(o->buf + o->len, o->cap - o->len, fmt, a)
              : snprintf(o->buf + o->len, o->cap - o->len, fmt, n);
    if (w > 0)
        o->len += (size_t)w < o->cap - o->len ? (size_t)w : o->cap - o->len - 1;
}

static int count(uint64_t bits) { return __builtin_popcountll(bits); }

/* Values lo..hi of bits as "1-5, 7, 9"; names[] when given. */
static void list(out *o, uint64_t bits, int lo, int hi,
                 const char *const *names)
{
    int first = 1;
    for (int v = lo; v <= hi; v++) {
        if (!(bits >> v & 1))
            continue;
        int e = v;
        while (e + 1 <= hi && (bits >> (e + 1) & 1))
            e++;
        if (!first)
            put(o, ", ", "", 0);
        first = 0;
        if (names) put(o, "%s", names[v], 0); else put(o, "%ld", NULL, v);
        if (e > v + 1 || (e == v + 1 && names)) {
            put(o, "%s", e > v + 1 ? "-" : ", ", 0);
            if (names) put(o, "%s", names[e], 0); else put(o, "%ld", NULL, e);
        } else if (e == v + 1) {
            put(o, ", %ld", NULL, e);
        }
        v = e;
    }
}

/* "every N units" when bits are lo, lo+N, ... covering the field. */
static int step_of(uint64_t bits, int lo, int hi)
{
    for (int n = 1; n <= hi - lo; n++) {
        uint64_t want = 0;
        for (int v = lo; v <= hi; v += n)
            want |= UINT64_C(1) << v;
        if (want == bits)
            return n;
    }
    return 0;
}

static void field(out *o, uint64_t bits, int lo, int hi, const char *unit)
{
    int n = step_of(bits, lo, hi);
    if (n == 1)
        put(o, "every %s", unit, 0);
    else if (n > 1) {
        put(o, "every %ld ", NULL, n);
        put(o, "%ss", unit, 0);
    } else {
        put(o, "%s ", unit, 0);
        list(o, bits, lo, hi, NULL);
    }
}

void sked_cron_explain(const sked_cron *c, char *buf, size_t cap)
{
    static const char *const mon[] = {"", "Jan", "Feb", "Mar", "Apr", "May",
                                      "Jun", "Jul", "Aug", "Sep", "Oct",
                                      "Nov", "Dec"};
    static const char *const dow[] = {"Sun", "Mon", "Tue", "Wed",
                                      "Thu", "Fri", "Sat"};
    out o = {buf, cap, 0};
    if (cap == 0)
        return;
    buf[0] = '\0';
    if (c->flags & SKED_CRON_EVERY) {
        char d[SKED_DURATION_FMT_MAX];
        sked_duration_format(c->every_us, d);
        put(&o, "every %s", d, 0);
        return;
    }
    if (count(c->hour) == 1 && count(c->minute) == 1 && count(c->second) == 1) {
        put(&o, "at %02ld", NULL, __builtin_ctz(c->hour));
        put(&o, ":%02ld", NULL, __builtin_ctzll(c->minute));
        if (c->second != 1)
            put(&o, ":%02ld", NULL, __builtin_ctzll(c->second));
    } else {
        if (c->second != 1) {
            field(&o, c->second, 0, 59, "second");
            put(&o, ", ", "", 0);
        }
        field(&o, c->minute, 0, 59, "minute");
        if (count(c->hour) != 24) {
            put(&o, ", ", "", 0);
            field(&o, c->hour, 0, 23, "hour");
        }
    }
    int dom_any = (c->flags & SKED_CRON_DOM_STAR) && count(c->dom) == 31;
    int dow_any = (c->flags & SKED_CRON_DOW_STAR) && count(c->dow) == 7;
    if (dom_any && dow_any) {
        put(&o, ", every day", "", 0);
    } else {
        if (!dom_any) {
            const char *sep = ", on ";
            if (c->dom) {
                put(&o, "%sday ", sep, 0);
                list(&o, c->dom, 1, 31, NULL);
                sep = " and ";
            }
            if (c->dom_w) {
                put(&o, "%sthe weekday nearest day ", sep, 0);
                list(&o, c->dom_w, 1, 31, NULL);
                sep = " and ";
            }
            if (c->flags & SKED_CRON_DOM_L) {
                put(&o, "%sthe last day", sep, 0);
                sep = " and ";
            }
            if (c->flags & SKED_CRON_DOM_LW)
                put(&o, "%sthe last weekday", sep, 0);
            put(&o, " of the month", "", 0);
        }
        if (!dow_any) {
            const char *sep = dom_any ? ", on "
                              : (c->flags & (SKED_CRON_DOM_STAR | SKED_CRON_DOW_STAR))
                                  ? " if it is "
                                  : " or on ";
            if (c->dow) {
                put(&o, "%s", sep, 0);
                list(&o, c->dow, 0, 6, dow);
                sep = ", ";
            }
            for (int w = 0; w < 7; w++) {
                for (int k = 1; k <= 5; k++)
                    if (c->dow_nth[w] >> k & 1) {
                        static const char *const nth[] = {"", "first", "second",
                                                          "third", "fourth", "fifth"};
                        put(&o, "%sthe ", sep, 0);
                        put(&o, "%s ", nth[k], 0);
                        put(&o, "%s", dow[w], 0);
                        sep = ", ";
                    }
                if (c->dow_last >> w & 1) {
                    put(&o, "%sthe last ", sep, 0);
                    put(&o, "%s", dow[w], 0);
                    sep = ", ";
                }
            }
        }
    }
    if (count(c->month) != 12) {
        put(&o, ", in ", "", 0);
        list(&o, c->month, 1, 12, mon);
    }
}
