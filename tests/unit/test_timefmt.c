/*
 * test_timefmt.c - durations and RFC 3339 instants against the tables
 * tests/unit/data/duration.txt and rfc3339.txt, and the writers' output.
 */
#include "harness.h"

#include "core/clock.h"

#include "time/duration.h"
#include "time/rfc3339.h"

typedef struct row {
    int line;
    char *in;
    size_t len;
    char *want;  /* value, or "error" */
    char *extra; /* canonical form / offset */
} row;

static row *rows;
static size_t nrows;
static struct CMUnitTest *tests;


static void add_row(char **f, int n, int line, void *ctx)
{
    (void)ctx;
    if (n < 2) {
        fprintf(stderr, "line %d: expected at least 2 fields\n", line);
        exit(2);
    }
    rows = realloc(rows, (nrows + 1) * sizeof *rows);
    row *r = &rows[nrows++];
    r->line = line;
    r->in = sked_test_unescape(f[0], &r->len);
    r->want = strdup(f[1]);
    r->extra = n > 2 ? strdup(f[2]) : NULL;
}

static void test_duration_row(void **state)
{
    row *r = *state;
    sked_err err = {0};
    int64_t us = -1;
    int rc = sked_duration_parse(r->in, r->len, &us, &err);
    if (strcmp(r->want, "error") == 0) {
        if (rc != SKED_EINVAL)
            fail_msg("duration.txt:%d: \"%s\" accepted as %lld", r->line, r->in,
                     (long long)us);
        assert_true(err.msg[0] != '\0');
        assert_int_equal(us, -1); /* untouched */
        return;
    }
    if (rc != 0)
        fail_msg("duration.txt:%d: \"%s\": %s", r->line, r->in, err.msg);
    assert_int_equal(us, strtoll(r->want, NULL, 10));
    char buf[SKED_DURATION_FMT_MAX];
    sked_duration_format(us, buf);
    assert_string_equal(buf, r->extra);
}

static void test_rfc3339_row(void **state)
{
    row *r = *state;
    sked_err err = {0};
    sked_walltime t = -7;
    int32_t off = -1;
    int rc = sked_rfc3339_parse(r->in, r->len, &t, &off, &err);
    if (strcmp(r->want, "error") == 0) {
        if (rc != SKED_EINVAL)
            fail_msg("rfc3339.txt:%d: \"%s\" accepted", r->line, r->in);
        assert_true(err.msg[0] != '\0');
        assert_int_equal(t, -7);
        return;
    }
    if (rc != 0)
        fail_msg("rfc3339.txt:%d: \"%s\": %s", r->line, r->in, err.msg);
    assert_int_equal(t, strtoll(r->want, NULL, 10));
    assert_int_equal(off, strtol(r->extra, NULL, 10));
}

/* The writer: offsets, Z, fractions, the year range. */
static void test_rfc3339_format(void **state)
{
    (void)state;
    char buf[SKED_RFC3339_MAX];
    const int64_t S = SKED_USEC_PER_SEC;
    sked_rfc3339_format(1615705200 * S, -14400, 0, buf);
    assert_string_equal(buf, "2021-03-14T03:00:00-04:00");
    sked_rfc3339_format(1795773600 * S + 123000, 0, 1, buf);
    assert_string_equal(buf, "2026-11-27T10:00:00.123Z");
    sked_rfc3339_format(1795773600 * S + 123456, 0, 0, buf);
    assert_string_equal(buf, "2026-11-27T10:00:00.123456+00:00");
    sked_rfc3339_format(1622528100 * S, 20700, 0, buf);
    assert_string_equal(buf, "2021-06-01T12:00:00+05:45");
    sked_rfc3339_format(-500000, 0, 1, buf);
    assert_string_equal(buf, "1969-12-31T23:59:59.500Z");
    /* a sub-minute (LMT) offset cannot be written: UTC instead */
    sked_rfc3339_format(0, -17762, 0, buf);
    assert_string_equal(buf, "1970-01-01T00:00:00Z");
    /* outside 0001-9999 */
    assert_int_equal(sked_rfc3339_format(253402300800 * S, 0, 1, buf), 0);
    assert_int_equal(sked_rfc3339_format(-62135596801 * S, 0, 1, buf), 0);
}

/* Microseconds as the timespec of a timed wait: whole seconds, the rest
 * in nanoseconds, and a negative time rounded down, never a negative
 * tv_nsec. */
static void test_clock_timespec(void **state)
{
    (void)state;
    struct timespec ts = sked_clock_timespec(1795773600 * SKED_USEC_PER_SEC + 999999);
    assert_int_equal(ts.tv_sec, 1795773600);
    assert_int_equal(ts.tv_nsec, 999999000);
    ts = sked_clock_timespec(2 * SKED_USEC_PER_SEC);
    assert_int_equal(ts.tv_sec, 2);
    assert_int_equal(ts.tv_nsec, 0);
    ts = sked_clock_timespec(-1);
    assert_int_equal(ts.tv_sec, -1);
    assert_int_equal(ts.tv_nsec, 999999000);
}

int main(void)
{
    sked_test_read_table("duration.txt", add_row, NULL);
    size_t ndur = nrows;
    sked_test_read_table("rfc3339.txt", add_row, NULL);
    tests = calloc(nrows + 2, sizeof *tests);
    size_t k = 0;
    tests[k++] = (struct CMUnitTest)cmocka_unit_test(test_rfc3339_format);
    tests[k++] = (struct CMUnitTest)cmocka_unit_test(test_clock_timespec);
    for (size_t i = 0; i < nrows; i++) {
        char *name = malloc(48);
        snprintf(name, 48, "%s:%d", i < ndur ? "duration.txt" : "rfc3339.txt",
                 rows[i].line);
        tests[k++] = (struct CMUnitTest){
            name, i < ndur ? test_duration_row : test_rfc3339_row, NULL, NULL,
            &rows[i]};
    }
    return sked_test_run("timefmt", tests, k);
}
