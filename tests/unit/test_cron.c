/*
 * test_cron.c - the cron parser and next-fire search against the tables in
 * tests/unit/data (cron_next.txt, cron_invalid.txt; see their headers for
 * how the expected values were derived), plus hostile input, error
 * positions and the @every arithmetic.
 */
#include "harness.h"

#include <time.h>

#include "time/cron.h"
#include "time/rfc3339.h"
#include "time/tz.h"

typedef struct next_case {
    int line;
    char *zone, *from, *expr, *expect;
} next_case;

typedef struct invalid_case {
    int line;
    char *expr;
    size_t len;
    char *field;
} invalid_case;

typedef struct table {
    void **rows;
    size_t n, cap;
} table;

static void table_add(table *t, void *row)
{
    if (t->n == t->cap) {
        t->cap = t->cap ? 2 * t->cap : 64;
        t->rows = realloc(t->rows, t->cap * sizeof *t->rows);
    }
    t->rows[t->n++] = row;
}

static void next_row(char **f, int n, int line, void *ctx)
{
    if (n != 4) {
        fprintf(stderr, "cron_next.txt:%d: expected 4 fields, got %d\n", line, n);
        exit(2);
    }
    next_case *c = calloc(1, sizeof *c);
    c->line = line;
    c->zone = strdup(f[0]);
    c->from = strdup(f[1]);
    c->expr = strdup(f[2]);
    c->expect = strdup(f[3]);
    table_add(ctx, c);
}


static void invalid_row(char **f, int n, int line, void *ctx)
{
    if (n != 2) {
        fprintf(stderr, "cron_invalid.txt:%d: expected 2 fields, got %d\n", line, n);
        exit(2);
    }
    invalid_case *c = calloc(1, sizeof *c);
    c->line = line;
    c->expr = sked_test_unescape(f[0], &c->len);
    c->field = strdup(f[1]);
    table_add(ctx, c);
}

static void test_next_row(void **state)
{
    next_case *c = *state;
    sked_err err = {0};
    const sked_tz *tz;
    if (sked_tz_get(c->zone, &tz, &err) < 0)
        fail_msg("line %d: zone %s: %s", c->line, c->zone, err.msg);
    sked_walltime t;
    if (sked_rfc3339_parse(c->from, strlen(c->from), &t, NULL, &err) < 0)
        fail_msg("line %d: from %s: %s", c->line, c->from, err.msg);
    sked_cron cron;
    if (sked_cron_parse(c->expr, strlen(c->expr), &cron, &err) < 0)
        fail_msg("line %d: parse \"%s\": %s", c->line, c->expr, err.msg);
    if (strcmp(c->expect, "never") == 0) {
        sked_walltime nx;
        int rc = sked_cron_next(&cron, tz, t, &nx);
        if (rc != SKED_ENOFIRE) {
            char buf[SKED_RFC3339_MAX];
            sked_rfc3339_format_tz(nx, tz, buf);
            fail_msg("line %d: \"%s\" should never fire, got rc %d %s", c->line,
                     c->expr, rc, rc == 0 ? buf : "");
        }
        return;
    }
    char *save, *want = strtok_r(c->expect, " ", &save);
    for (int k = 1; want; k++, want = strtok_r(NULL, " ", &save)) {
        int rc = sked_cron_next(&cron, tz, t, &t);
        if (rc != 0)
            fail_msg("line %d: \"%s\" fire %d: rc %d, want %s", c->line,
                     c->expr, k, rc, want);
        char got[SKED_RFC3339_MAX];
        sked_rfc3339_format_tz(t, tz, got);
        if (strcmp(got, want) != 0)
            fail_msg("line %d: %s \"%s\" from %s, fire %d: got %s, want %s",
                     c->line, c->zone, c->expr, c->from, k, got, want);
    }
}

static void test_invalid_row(void **state)
{
    invalid_case *c = *state;
    sked_err err = {0};
    sked_cron cron;
    int rc = sked_cron_parse(c->expr, c->len, &cron, &err);
    if (rc != SKED_EINVAL)
        fail_msg("line %d: accepted (rc %d), want an error in %s", c->line, rc,
                 c->field);
    if (strcmp(err.field, c->field) != 0)
        fail_msg("line %d: blamed %s (%s), want %s", c->line, err.field,
                 err.msg, c->field);
    assert_true(err.msg[0] != '\0');
    assert_true(err.column >= 1);
}

/* The messages an API user reads: exact text and column. */
static void test_messages(void **state)
{
    (void)state;
    static const struct {
        const char *expr, *field, *msg;
        int column;
    } cases[] = {
        {"0 25 * * *", "hour", "field 2 (hour): 25 is out of range 0-23", 3},
        {"0 0 0 * *", "day-of-month",
         "field 3 (day-of-month): 0 is out of range 1-31", 5},
        {"0 0 * JANUARY *", "month",
         "field 4 (month): unknown name \"JANUARY\" (use JAN-DEC or 1-12)", 7},
        {"*/0 * * * *", "minute", "field 1 (minute): step 0 is out of range 1-60", 3},
        {"0 0 * * 1-", "day-of-week", "field 5 (day-of-week): a number is missing", 11},
        {"0 0 * * *  *  *", "expression",
         "expected 5 or 6 fields, found more (extra field at column 15)", 15},
        {"0 0 * *", "expression", "expected 5 or 6 fields, found 4", 8},
        {"60 0 0 * * *", "second", "field 1 (second): 60 is out of range 0-59", 1},
        {"0 5-1 * * *", "hour", "field 2 (hour): range 5-1 runs backwards", 5},
        {"0 0 1,,2 * *", "day-of-month",
         "field 3 (day-of-month): empty element in list", 7},
        {"@reboot", "expression",
         "unknown macro \"@reboot\" (use @yearly, @annually, @monthly, @weekly, "
         "@daily, @midnight, @hourly or @every <duration>)", 1},
        {"@every 10x", "every",
         "@every: missing or unknown unit at column 3 (use ms, s, m, h or d)", 10},
        {"0 0 * * 5#6", "day-of-week", "field 5 (day-of-week): #6 is out of range 1-5", 11},
        {"0 0 ? * *", "day-of-month",
         "field 3 (day-of-month): unexpected character at column 5 ('?')", 5},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        sked_err err = {0};
        sked_cron c;
        assert_int_equal(sked_cron_parse(cases[i].expr, strlen(cases[i].expr),
                                         &c, &err), SKED_EINVAL);
        assert_string_equal(err.field, cases[i].field);
        assert_string_equal(err.msg, cases[i].msg);
        assert_int_equal(err.column, cases[i].column);
    }
}

/* What the parser stores: the OR/AND flags, the DST class, the extensions. */
static void test_bits(void **state)
{
    (void)state;
    sked_cron c;
    sked_err err;
    assert_int_equal(sked_cron_parse("0 0 * * 5-0", 11, &c, &err), 0);
    assert_int_equal(c.dow, (1 << 5) | (1 << 6) | 1);
    assert_true(c.flags & SKED_CRON_DOM_STAR);
    assert_false(c.flags & SKED_CRON_DOW_STAR);
    assert_false(c.flags & SKED_CRON_WILDCARD);

    assert_int_equal(sked_cron_parse("*/20 */6 1-31 * *", 17, &c, &err), 0);
    assert_int_equal(c.minute, (UINT64_C(1) << 0) | (UINT64_C(1) << 20) | (UINT64_C(1) << 40));
    assert_int_equal(c.hour, (1 << 0) | (1 << 6) | (1 << 12) | (1 << 18));
    assert_true(c.flags & SKED_CRON_WILDCARD);
    assert_false(c.flags & SKED_CRON_DOM_STAR); /* 1-31 is restricted */
    assert_int_equal(c.second, 1);
    assert_int_equal(c.nfields, 5);

    assert_int_equal(sked_cron_parse("15,45 0 0 L,LW,15W * FRI#2,5L,sun", 33, &c, &err), 0);
    assert_int_equal(c.nfields, 6);
    assert_int_equal(c.second, (UINT64_C(1) << 15) | (UINT64_C(1) << 45));
    assert_true(c.flags & SKED_CRON_DOM_L);
    assert_true(c.flags & SKED_CRON_DOM_LW);
    assert_int_equal(c.dom_w, 1u << 15);
    assert_int_equal(c.dow_nth[5], 1 << 2);
    assert_int_equal(c.dow_last, 1 << 5);
    assert_int_equal(c.dow, 1);

    assert_int_equal(sked_cron_parse("  @hourly\t", 10, &c, &err), 0);
    assert_int_equal(c.minute, 1);
    assert_int_equal(c.hour, 0xffffff);
    assert_true(c.flags & SKED_CRON_WILDCARD);

    assert_int_equal(sked_cron_parse("@every 1h30m", 12, &c, &err), 0);
    assert_true(c.flags & SKED_CRON_EVERY);
    assert_int_equal(c.every_us, INT64_C(5400) * 1000000);
}

/* Hostile input is rejected quickly and never crashes. */
static void test_hostile(void **state)
{
    (void)state;
    sked_err err;
    sked_cron c;
    size_t big = 60000;
    char *s = malloc(big + 16);
    memset(s, '1', big);
    memcpy(s + big, " * * * *", 9);
    assert_int_equal(sked_cron_parse(s, strlen(s), &c, &err), SKED_EINVAL);
    assert_string_equal(err.field, "expression");

    /* 30,000 fields */
    for (size_t i = 0; i < 60000; i += 2)
        s[i] = '*', s[i + 1] = ' ';
    assert_int_equal(sked_cron_parse(s, 60000, &c, &err), SKED_EINVAL);
    assert_string_equal(err.field, "expression");

    /* the longest accepted length, full of one long list */
    size_t n = 0;
    while (n + 2 < SKED_CRON_MAX_LEN - 10) {
        s[n++] = '5';
        s[n++] = ',';
    }
    s[n++] = '5';
    memcpy(s + n, " * * * *", 8);
    n += 8;
    assert_int_equal(sked_cron_parse(s, n, &c, &err), 0);
    assert_int_equal(c.minute, UINT64_C(1) << 5);

    /* a number of 4000 digits is out of range, not an overflow */
    memset(s, '9', 4000);
    memcpy(s + 4000, " * * * *", 8);
    assert_int_equal(sked_cron_parse(s, 4008, &c, &err), SKED_EINVAL);
    assert_string_equal(err.field, "minute");
    free(s);

    /* a NUL byte inside the text */
    assert_int_equal(sked_cron_parse("0 0\0 * * *", 10, &c, &err), SKED_EINVAL);
    assert_string_equal(err.field, "hour");
}

static void test_every_next(void **state)
{
    (void)state;
    sked_walltime nx;
    const int64_t S = SKED_USEC_PER_SEC;
    assert_int_equal(sked_cron_every_next(0, 30 * S, 0, &nx), 0);
    assert_int_equal(nx, 30 * S);
    assert_int_equal(sked_cron_every_next(0, 30 * S, 29 * S + 999999, &nx), 0);
    assert_int_equal(nx, 30 * S);
    assert_int_equal(sked_cron_every_next(10 * S, 30 * S, -100 * S, &nx), 0);
    assert_int_equal(nx, -80 * S);
    assert_int_equal(sked_cron_every_next(7, 10, 7, &nx), 0);
    assert_int_equal(nx, 17);
    assert_int_equal(sked_cron_every_next(0, 10, INT64_MAX - 5, &nx), SKED_ERANGE);
}

static void test_explain(void **state)
{
    (void)state;
    static const struct { const char *expr, *want; } cases[] = {
        {"0 3 * * *", "at 03:00, every day"},
        {"*/15 * * * *", "every 15 minutes, every day"},
        {"@every 90s", "every 1m30s"},
        {"30 9 * * MON-FRI", "at 09:30, on Mon-Fri"},
        {"0 0 1 JAN,JUL *", "at 00:00, on day 1 of the month, in Jan, Jul"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        sked_cron c;
        char buf[256];
        assert_int_equal(sked_cron_parse(cases[i].expr, strlen(cases[i].expr), &c, NULL), 0);
        sked_cron_explain(&c, buf, sizeof buf);
        assert_string_equal(buf, cases[i].want);
    }
}

/* Static so the sanitizer's leak check sees the tables as reachable. */
static table next, invalid;
static struct CMUnitTest *tests;

int main(void)
{
    sked_test_read_table("cron_next.txt", next_row, &next);
    sked_test_read_table("cron_invalid.txt", invalid_row, &invalid);
    size_t fixed = 5, n = fixed + next.n + invalid.n, k = 0;
    tests = calloc(n, sizeof *tests);
    tests[k++] = (struct CMUnitTest)cmocka_unit_test(test_messages);
    tests[k++] = (struct CMUnitTest)cmocka_unit_test(test_bits);
    tests[k++] = (struct CMUnitTest)cmocka_unit_test(test_hostile);
    tests[k++] = (struct CMUnitTest)cmocka_unit_test(test_every_next);
    tests[k++] = (struct CMUnitTest)cmocka_unit_test(test_explain);
    for (size_t i = 0; i < next.n; i++) {
        char *name = malloc(48);
        snprintf(name, 48, "cron_next.txt:%d", ((next_case *)next.rows[i])->line);
        tests[k++] = (struct CMUnitTest){name, test_next_row, NULL, NULL, next.rows[i]};
    }
    for (size_t i = 0; i < invalid.n; i++) {
        char *name = malloc(48);
        snprintf(name, 48, "cron_invalid.txt:%d", ((invalid_case *)invalid.rows[i])->line);
        tests[k++] = (struct CMUnitTest){name, test_invalid_row, NULL, NULL, invalid.rows[i]};
    }
    return sked_test_run("cron", tests, k);
}
