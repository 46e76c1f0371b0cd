/*
 * cron_parse.c - text -> sked_cron.
 *
 * Grammar (blanks are ASCII space and tab; nothing else separates fields):
 *
 *   expr    := blank* (macro | fields) blank*
 *   macro   := "@yearly" | "@annually" | "@monthly" | "@weekly" | "@daily"
 *            | "@midnight" | "@hourly" | "@every" blank+ duration
 *   fields  := field{5} | field{6}          6 fields: a leading seconds field
 *   field   := elem ("," elem)*
 *   elem    := "*" ["/" step]
 *            | value ["-" value] ["/" step]   value/step = value..max/step
 *            | "L" | "LW" | number "W"        day-of-month only
 *            | value "#" number | value "L"   day-of-week only
 *   value   := number | name                 names: JAN-DEC, SUN-SAT, any case
 *
 * Ranges: second/minute 0-59, hour 0-23, day-of-month 1-31, month 1-12,
 * day-of-week 0-7 (0 and 7 are Sunday).  A range must not run backwards,
 * except that a day-of-week range may end on 0 (= 7): 5-0 is Fri..Sun.
 * Steps run from 1 to the number of values of the field.  A field is
 * "restricted" unless its text begins with '*'; that decides the
 * day-of-month/day-of-week OR rule and the daylight-saving class (see
 * cron_next.c).  Everything else is rejected with the field and column.
 *
 * The parser is linear in the input and refuses input longer than
 * SKED_CRON_MAX_LEN before looking at it.
 */
#include "time/cron.h"

#include <stdio.h>
#include <string.h>

#include "time/duration.h"

enum { F_SEC, F_MIN, F_HOUR, F_DOM, F_MON, F_DOW };

static const struct {
    const char *name;
    int min, max;
} fspec[] = {
    [F_SEC] = {"second", 0, 59},        [F_MIN] = {"minute", 0, 59},
    [F_HOUR] = {"hour", 0, 23},         [F_DOM] = {"day-of-month", 1, 31},
    [F_MON] = {"month", 1, 12},         [F_DOW] = {"day-of-week", 0, 7},
};

static const char *const month_names[] = {"jan", "feb", "mar", "apr",
                                          "may", "jun", "jul", "aug",
                                          "sep", "oct", "nov", "dec"};
static const char *const day_names[] = {"sun", "mon", "tue", "wed",
                                        "thu", "fri", "sat"};

static const struct {
    const char *name;
    const char *text;
} macros[] = {
    {"@yearly", "0 0 1 1 *"},  {"@annually", "0 0 1 1 *"},
    {"@monthly", "0 0 1 * *"}, {"@weekly", "0 0 * * 0"},
    {"@daily", "0 0 * * *"},   {"@midnight", "0 0 * * *"},
    {"@hourly", "0 * * * *"},
};

typedef struct parser {
    const char *s;  /* the whole expression, for columns */
    size_t end;     /* end of the current element */
    int kind;       /* F_* */
    int number;     /* field number as written, 1-based */
    sked_cron *c;
    sked_err *err;
} parser;

static int is_blank(char ch) { return ch == ' ' || ch == '\t'; }
static int is_digit(char ch) { return ch >= '0' && ch <= '9'; }
static int is_alpha(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z');
}
static char lower(char ch) { return ch >= 'A' && ch <= 'Z' ? ch + 32 : ch; }

/* Quote s[b..e) for a message: printable ASCII as is, other bytes as \xNN,
 * at most 24 bytes of input. */
static const char *quote(const char *s, size_t b, size_t e, char *buf,
                         size_t cap)
{
    size_t n = 0;
    for (size_t i = b; i < e && n + 8 < cap; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (i - b == 24) {
            n += (size_t)snprintf(buf + n, cap - n, "...");
            break;
        }
        if (ch >= 0x20 && ch < 0x7f)
            buf[n++] = (char)ch;
        else
            n += (size_t)snprintf(buf + n, cap - n, "\\x%02x", ch);
    }
    buf[n] = '\0';
    return buf;
}

static int fail(parser *p, size_t at, const char *fmt, const char *what)
{
    char msg[200];
    snprintf(msg, sizeof msg, fmt, what);
    return sked_err_set(p->err, SKED_EINVAL, fspec[p->kind].name, (int)at + 1,
                        "field %d (%s): %s", p->number, fspec[p->kind].name,
                        msg);
}

static int fail_at(parser *p, size_t at, const char *why)
{
    char q[120], msg[200];
    snprintf(msg, sizeof msg, "%s at column %zu ('%s')", why, at + 1,
             quote(p->s, at, at + 1, q, sizeof q));
    return fail(p, at, "%s", msg);
}

/* Read a number at *i: ASCII digits only, leading zeros allowed, capped so
 * huge input cannot overflow.  Returns the value or -1 when no digit. */
static long read_number(parser *p, size_t *i)
{
    long v = -1;
    while (*i < p->end && is_digit(p->s[*i])) {
        v = (v < 0 ? 0 : v) * 10 + (p->s[*i] - '0');
        if (v > 1000000)
            v = 1000000;
        (*i)++;
    }
    return v;
}

/* Read a value (number or name) at *i into *v; checks the field's range. */
static int read_value(parser *p, size_t *i, int *v)
{
    size_t b = *i;
    char q[120], msg[200];
    if (*i < p->end && is_alpha(p->s[*i])) {
        while (*i < p->end && is_alpha(p->s[*i]))
            (*i)++;
        size_t n = *i - b;
        /* "FRIL": a day name with the L suffix */
        if (p->kind == F_DOW && n == 4 && lower(p->s[b + 3]) == 'l')
            (*i)--, n = 3;
        const char *const *names = p->kind == F_MON ? month_names
                                   : p->kind == F_DOW ? day_names : NULL;
        int count = p->kind == F_MON ? 12 : 7;
        if (names && n == 3) {
            for (int k = 0; k < count; k++) {
                if (lower(p->s[b]) == names[k][0] &&
                    lower(p->s[b + 1]) == names[k][1] &&
                    lower(p->s[b + 2]) == names[k][2]) {
                    *v = p->kind == F_MON ? k + 1 : k;
                    return 0;
                }
            }
        }
        snprintf(msg, sizeof msg, "unknown name \"%s\"%s",
                 quote(p->s, b, *i, q, sizeof q),
                 p->kind == F_MON   ? " (use JAN-DEC or 1-12)"
                 : p->kind == F_DOW ? " (use SUN-SAT or 0-7)"
                                    : " (only numbers are allowed here)");
        return fail(p, b, "%s", msg);
    }
    long n = read_number(p, i);
    if (n < 0) {
        if (*i >= p->end)
            return fail(p, *i, "%s", "a number is missing");
        return fail_at(p, *i, "unexpected character");
    }
    if (n < fspec[p->kind].min || n > fspec[p->kind].max) {
        snprintf(msg, sizeof msg, "%s is out of range %d-%d",
                 quote(p->s, b, *i, q, sizeof q), fspec[p->kind].min,
                 fspec[p->kind].max);
        return fail(p, b, "%s", msg);
    }
    *v = (int)n;
    return 0;
}

static void set_bits(parser *p, int lo, int hi, int step)
{
    sked_cron *c = p->c;
    for (int v = lo; v <= hi; v += step) {
        switch (p->kind) {
        case F_SEC: c->second |= UINT64_C(1) << v; break;
        case F_MIN: c->minute |= UINT64_C(1) << v; break;
        case F_HOUR: c->hour |= UINT32_C(1) << v; break;
        case F_DOM: c->dom |= UINT32_C(1) << v; break;
        case F_MON: c->month |= (uint16_t)(1u << v); break;
        case F_DOW: c->dow |= (uint8_t)(1u << (v % 7)); break;
        }
    }
}

/* One list element s[b..end). */
static int parse_elem(parser *p, size_t b)
{
    const char *s = p->s;
    size_t i = b;
    int lo, hi, step = 1;
    int fmax = fspec[p->kind].max;

    if (p->kind == F_DOM && lower(s[i]) == 'l') {
        i++;
        if (i < p->end && lower(s[i]) == 'w') {
            i++;
            p->c->flags |= SKED_CRON_DOM_LW;
        } else {
            p->c->flags |= SKED_CRON_DOM_L;
        }
        if (i != p->end)
            return fail_at(p, i, "L and LW stand alone");
        return 0;
    }
    if (s[i] == '*') {
        lo = fspec[p->kind].min;
        hi = fmax;
        i++;
        if (i < p->end && s[i] != '/')
            return fail_at(p, i, "'*' may only be followed by /step");
    } else {
        int rc = read_value(p, &i, &lo);
        if (rc)
            return rc;
        hi = lo;
        if (i < p->end && lower(s[i]) == 'w' && p->kind == F_DOM) {
            if (i + 1 != p->end)
                return fail_at(p, i + 1, "nW stands alone");
            if (!is_digit(s[b]))
                return fail_at(p, b, "W needs a day number");
            p->c->dom_w |= UINT32_C(1) << lo;
            return 0;
        }
        if (i < p->end && p->kind == F_DOW && (s[i] == '#' || lower(s[i]) == 'l')) {
            int wd = lo % 7;
            if (s[i] == '#') {
                size_t kb = ++i;
                long k = read_number(p, &i);
                if (k < 1 || k > 5) {
                    char q[120], msg[160];
                    if (k < 0)
                        return fail(p, kb, "%s", "# needs a number 1-5");
                    snprintf(msg, sizeof msg, "#%s is out of range 1-5",
                             quote(s, kb, i, q, sizeof q));
                    return fail(p, kb, "%s", msg);
                }
                p->c->dow_nth[wd] |= (uint8_t)(1u << k);
            } else {
                i++;
                p->c->dow_last |= (uint8_t)(1u << wd);
            }
            if (i != p->end)
                return fail_at(p, i, "n#k and nL stand alone");
            return 0;
        }
        if (i < p->end && s[i] == '-') {
            i++;
            size_t hb = i;
            int rc2 = read_value(p, &i, &hi);
            if (rc2)
                return rc2;
            if (p->kind == F_DOW && hi == 0 && lo > 0)
                hi = 7;
            if (hi < lo) {
                char q[120], msg[200];
                snprintf(msg, sizeof msg,
                         "range %s runs backwards",
                         quote(s, b, i, q, sizeof q));
                return fail(p, hb, "%s", msg);
            }
        } else if (i < p->end && s[i] == '/') {
            hi = fmax;
        }
    }
    if (i < p->end && s[i] == '/') {
        size_t sb = ++i;
        long n = read_number(p, &i);
        int size = fspec[p->kind].max - fspec[p->kind].min + 1;
        if (p->kind == F_DOW)
            size = 7;
        if (n < 0)
            return i < p->end ? fail_at(p, i, "the step must be a number")
                              : fail(p, sb, "%s", "a step is missing after '/'");
        if (n < 1 || n > size) {
            char q[120], msg[160];
            snprintf(msg, sizeof msg, "step %s is out of range 1-%d",
                     quote(s, sb, i, q, sizeof q), size);
            return fail(p, sb, "%s", msg);
        }
        step = (int)n;
    }
    if (i != p->end)
        return fail_at(p, i, "unexpected character");
    set_bits(p, lo, hi, step);
    return 0;
}

/* One field s[b..e). */
static int parse_field(parser *p, size_t b, size_t e)
{
    size_t i = b;
    for (;;) {
        size_t comma = i;
        while (comma < e && p->s[comma] != ',')
            comma++;
        if (comma == i)
            return fail(p, i, "%s", comma < e || i > b
                                        ? "empty element in list"
                                        : "field is empty");
        p->end = comma;
        int rc = parse_elem(p, i);
        if (rc)
            return rc;
        if (comma == e)
            return 0;
        i = comma + 1;
        if (i == e)
            return fail(p, i, "%s", "list ends with ','");
    }
}

static int parse_fields(const char *s, size_t b, size_t e, sked_cron *c,
                        sked_err *err)
{
    size_t fb[7], fe[7];
    int n = 0;
    size_t i = b;
    while (i < e) {
        while (i < e && is_blank(s[i]))
            i++;
        if (i == e)
            break;
        if (n == 6)
            return sked_err_set(err, SKED_EINVAL, "expression", (int)i + 1,
                                "expected 5 or 6 fields, found more "
                                "(extra field at column %zu)", i + 1);
        fb[n] = i;
        while (i < e && !is_blank(s[i]))
            i++;
        fe[n++] = i;
    }
    if (n != 5 && n != 6)
        return sked_err_set(err, SKED_EINVAL, "expression", (int)e + 1,
                            "expected 5 or 6 fields, found %d", n);
    memset(c, 0, sizeof *c);
    c->nfields = (uint8_t)n;
    int first = n == 6 ? F_SEC : F_MIN;
    if (n == 5)
        c->second = 1; /* second 0 */
    parser p = {.s = s, .c = c, .err = err};
    for (int k = 0; k < n; k++) {
        p.kind = first + k;
        p.number = k + 1;
        int rc = parse_field(&p, fb[k], fe[k]);
        if (rc)
            return rc;
        if (s[fb[k]] == '*') {
            if (p.kind == F_DOM) c->flags |= SKED_CRON_DOM_STAR;
            if (p.kind == F_DOW) c->flags |= SKED_CRON_DOW_STAR;
            if (p.kind == F_MIN || p.kind == F_HOUR)
                c->flags |= SKED_CRON_WILDCARD;
        }
    }
    return 0;
}

static int parse_macro(const char *s, size_t b, size_t e, sked_cron *c,
                       sked_err *err)
{
    size_t ne = b;
    while (ne < e && !is_blank(s[ne]))
        ne++;
    size_t n = ne - b;
    if (n == 6 && memcmp(s + b, "@every", 6) == 0) {
        size_t d = ne;
        while (d < e && is_blank(s[d]))
            d++;
        if (d == e)
            return sked_err_set(err, SKED_EINVAL, "every", (int)d + 1,
                                "@every needs a duration, like @every 30s");
        size_t de = d;
        while (de < e && !is_blank(s[de]))
            de++;
        if (de != e)
            return sked_err_set(err, SKED_EINVAL, "every", (int)de + 1,
                                "@every takes one duration; unexpected text "
                                "at column %zu", de + 1);
        int64_t us;
        if (sked_duration_parse(s + d, e - d, &us, err) < 0) {
            char copy[sizeof err->msg];
            snprintf(copy, sizeof copy, "%s", err->msg);
            return sked_err_set(err, SKED_EINVAL, "every",
                                (int)d + err->column, "@every: %s", copy);
        }
        if (us < SKED_USEC_PER_SEC || us % SKED_USEC_PER_SEC != 0)
            return sked_err_set(err, SKED_EINVAL, "every", (int)d + 1,
                                "@every: the interval must be whole seconds, "
                                "at least 1s");
        memset(c, 0, sizeof *c);
        c->flags = SKED_CRON_EVERY;
        c->every_us = us;
        return 0;
    }
    for (size_t k = 0; k < sizeof macros / sizeof macros[0]; k++) {
        if (strlen(macros[k].name) == n && memcmp(s + b, macros[k].name, n) == 0) {
            size_t r = ne;
            while (r < e && is_blank(s[r]))
                r++;
            if (r != e)
                return sked_err_set(err, SKED_EINVAL, "expression", (int)r + 1,
                                    "%s takes no arguments", macros[k].name);
            const char *t = macros[k].text;
            return parse_fields(t, 0, strlen(t), c, err);
        }
    }
    char q[120];
    return sked_err_set(err, SKED_EINVAL, "expression", (int)b + 1,
                        "unknown macro \"%s\" (use @yearly, @annually, "
                        "@monthly, @weekly, @daily, @midnight, @hourly or "
                        "@every <duration>)", quote(s, b, ne, q, sizeof q));
}

int sked_cron_parse(const char *expr, size_t len, sked_cron *out, sked_err *err)
{
    if (len > SKED_CRON_MAX_LEN)
        return sked_err_set(err, SKED_EINVAL, "expression", SKED_CRON_MAX_LEN + 1,
                            "expression is longer than %d bytes",
                            SKED_CRON_MAX_LEN);
    size_t b = 0, e = len;
    while (b < e && is_blank(expr[b]))
        b++;
    while (e > b && is_blank(expr[e - 1]))
        e--;
    if (b == e)
        return sked_err_set(err, SKED_EINVAL, "expression", 1,
                            "expression is empty");
    if (expr[b] == '@')
        return parse_macro(expr, b, e, out, err);
    return parse_fields(expr, b, e, out, err);
}
