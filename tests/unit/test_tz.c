/*
 * test_tz.c - time zones (tz.h) against the tables tests/unit/data/tz_*.txt,
 * whose expected values come from glibc's zdump and from reasoning, never
 * from this code; plus hand-built and corrupted TZif images, the name rules,
 * the cache under threads, and the int64 extremes.
 *
 * The real-zone tables were made with tzdata 2025b; another tzdata release
 * may move a future transition (Casablanca's, say) and fail a row.
 */
#include "harness.h"

#include <pthread.h>
#include <sys/stat.h>
#include <unistd.h>

#include "time/tz.h"

/* ------------------------------------------------------------------------ */
/* Table rows                                                                */

typedef struct row {
    const char *file;
    int line;
    int nf;
    char *f[8];
} row;

static row *rows;
static size_t nrows;

static void add_row(char **f, int n, int line, void *ctx)
{
    if (n > 8) {
        fprintf(stderr, "%s:%d: too many fields\n", (char *)ctx, line);
        exit(2);
    }
    rows = realloc(rows, (nrows + 1) * sizeof *rows);
    row *r = &rows[nrows++];
    r->file = ctx;
    r->line = line;
    r->nf = n;
    for (int i = 0; i < n; i++)
        r->f[i] = strdup(f[i]);
}

#define row_fail(r, ...)                                                      \
    do {                                                                      \
        char msg_[512];                                                       \
        snprintf(msg_, sizeof msg_, __VA_ARGS__);                             \
        fail_msg("%s:%d: %s", (r)->file, (r)->line, msg_);                    \
    } while (0)

#define expect_eq(r, what, got, want)                                         \
    do {                                                                      \
        long long g_ = (long long)(got), w_ = (long long)(want);              \
        if (g_ != w_)                                                         \
            row_fail(r, "%s: got %lld, want %lld", what, g_, w_);             \
    } while (0)

static void need_fields(const row *r, int n)
{
    if (r->nf < n)
        row_fail(r, "expected %d fields, got %d", n, r->nf);
}

/* "2024-03-10T07:00:00Z" (an instant) or "-" (none: the given default). */
static int64_t instant(const row *r, const char *s, int64_t none)
{
    int y = 0, mo = 0, d = 0, h = 0, mi = 0, sec = 0;
    if (strcmp(s, "-") == 0)
        return none;
    if (sscanf(s, "%d-%d-%dT%d:%d:%dZ", &y, &mo, &d, &h, &mi, &sec) != 6)
        row_fail(r, "bad instant \"%s\"", s);
    return sked_civil_days(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec;
}

/* "Sun 2024-03-10T01:59:59" or "2024-03-10T01:59:59"; *wday = -1 if absent */
static void wall(const row *r, const char *s, sked_civil *c, int *wday)
{
    static const char days[] = "SunMonTueWedThuFriSat";
    *wday = -1;
    if (s[0] >= 'A' && s[0] <= 'Z') {
        const char *p = strstr(days, (char[4]){s[0], s[1], s[2], 0});
        if (p == NULL || (p - days) % 3 != 0)
            row_fail(r, "bad weekday in \"%s\"", s);
        *wday = (int)(p - days) / 3;
        s += 4;
    }
    memset(c, 0, sizeof *c);
    if (sscanf(s, "%d-%d-%dT%d:%d:%d", &c->year, &c->mon, &c->mday, &c->hour,
               &c->min, &c->sec) != 6)
        row_fail(r, "bad wall time \"%s\"", s);
}

/* "+05:45", "-04:56:02" */
static int32_t offset(const row *r, const char *s)
{
    int h = 0, m = 0, sec = 0;
    if ((s[0] != '+' && s[0] != '-') ||
        sscanf(s + 1, "%d:%d:%d", &h, &m, &sec) < 2)
        row_fail(r, "bad offset \"%s\"", s);
    int32_t v = h * 3600 + m * 60 + sec;
    return s[0] == '-' ? -v : v;
}

static const sked_tz *zone(const row *r, const char *name)
{
    const sked_tz *tz = NULL;
    sked_err err = {0};
    if (sked_tz_get(name, &tz, &err) != 0)
        row_fail(r, "sked_tz_get(\"%s\"): %s", name, err.msg);
    return tz;
}

/* ------------------------------------------------------------------------ */
/* Hand-built TZif images                                                    */

typedef struct image {
    uint8_t b[8192];
    size_t len;
} image;

static void put8(image *im, uint8_t v)
{
    assert_true(im->len < sizeof im->b);
    im->b[im->len++] = v;
}

static void put32(image *im, uint32_t v)
{
    for (int s = 24; s >= 0; s -= 8)
        put8(im, (uint8_t)(v >> s));
}

static void put64(image *im, uint64_t v)
{
    put32(im, (uint32_t)(v >> 32));
    put32(im, (uint32_t)v);
}

typedef struct spec {
    char version;          /* 0, '2', '3', '4' */
    size_t ntimes;
    const int64_t *times;
    const uint8_t *idx;
    size_t ntypes;
    const int32_t *offs;   /* isdst 0, abbreviation "X" */
    size_t nleaps;
    const int64_t *leaps;  /* pairs: occurrence, correction */
    const char *footer;    /* v2+ only */
} spec;

static void put_header(image *im, char version, const spec *s)
{
    put8(im, 'T'), put8(im, 'Z'), put8(im, 'i'), put8(im, 'f');
    put8(im, (uint8_t)version);
    for (int i = 0; i < 15; i++)
        put8(im, 0);
    put32(im, 0);                      /* isutcnt */
    put32(im, 0);                      /* isstdcnt */
    put32(im, (uint32_t)s->nleaps);
    put32(im, (uint32_t)s->ntimes);
    put32(im, (uint32_t)s->ntypes);
    put32(im, 2);                      /* charcnt: "X\0" */
}

static void put_body(image *im, const spec *s, int tsz)
{
    for (size_t i = 0; i < s->ntimes; i++)
        tsz == 4 ? put32(im, (uint32_t)s->times[i])
                 : put64(im, (uint64_t)s->times[i]);
    for (size_t i = 0; i < s->ntimes; i++)
        put8(im, s->idx[i]);
    for (size_t i = 0; i < s->ntypes; i++) {
        put32(im, (uint32_t)s->offs[i]);
        put8(im, 0);
        put8(im, 0);
    }
    put8(im, 'X'), put8(im, 0);
    for (size_t i = 0; i < s->nleaps; i++) {
        tsz == 4 ? put32(im, (uint32_t)s->leaps[2 * i])
                 : put64(im, (uint64_t)s->leaps[2 * i]);
        put32(im, (uint32_t)s->leaps[2 * i + 1]);
    }
}

static void build(image *im, const spec *s)
{
    im->len = 0;
    if (s->version == 0) {
        put_header(im, 0, s);
        put_body(im, s, 4);
        return;
    }
    /* A v2+ file's v1 block may be empty but for one type, as zic -b slim
     * writes it. */
    spec v1 = {.ntypes = 1, .offs = (const int32_t[]){0}};
    put_header(im, s->version, &v1);
    put_body(im, &v1, 4);
    put_header(im, s->version, s);
    put_body(im, s, 8);
    put8(im, '\n');
    for (const char *p = s->footer; *p; p++)
        put8(im, (uint8_t)*p);
    put8(im, '\n');
}

static sked_tz *parse_ok(const image *im)
{
    sked_tz *tz = NULL;
    sked_err err = {0};
    int rc = sked_tz_parse("test", im->b, im->len, &tz, &err);
    if (rc != 0)
        fail_msg("sked_tz_parse: %s", err.msg);
    return tz;
}

static void parse_bad(const uint8_t *b, size_t len, const char *what)
{
    sked_tz *tz = (sked_tz *)&tz; /* must be reset to NULL */
    sked_err err = {0};
    int rc = sked_tz_parse("test", b, len, &tz, &err);
    if (rc != SKED_EINVAL)
        fail_msg("%s: accepted (rc %d)", what, rc);
    assert_null(tz);
    assert_true(err.msg[0] != '\0');
}

/* A zone made of one footer rule and no transitions. */
static sked_tz *rule_zone(const char *tz_string, sked_err *err, int *rc)
{
    image im;
    spec s = {.version = '3', .ntypes = 1, .offs = (const int32_t[]){0},
              .footer = tz_string};
    sked_tz *tz = NULL;
    build(&im, &s);
    *rc = sked_tz_parse(tz_string, im.b, im.len, &tz, err);
    return tz;
}

/* ------------------------------------------------------------------------ */
/* Row tests                                                                 */

static void check_wall(const row *r, const sked_tz *tz, int64_t t,
                       const char *want_s, int32_t want_off)
{
    sked_civil want, got;
    int wday;
    int32_t off = 0;
    wall(r, want_s, &want, &wday);
    sked_tz_to_local(tz, t, &got, &off);
    if (got.year != want.year || got.mon != want.mon ||
        got.mday != want.mday || got.hour != want.hour ||
        got.min != want.min || got.sec != want.sec ||
        (wday >= 0 && got.wday != wday))
        row_fail(r, "to_local(%lld) = %04d-%02d-%02dT%02d:%02d:%02d (wday %d)"
                 ", want %s", (long long)t, got.year, got.mon, got.mday,
                 got.hour, got.min, got.sec, got.wday, want_s);
    expect_eq(r, "to_local utoff", off, want_off);
}

/* ZONE | T | LOCAL AT T-1 | BEFORE | LOCAL AT T | AFTER, for a zone */
static void check_transition(const row *r, const sked_tz *tz)
{
    need_fields(r, 6);
    int64_t t = instant(r, r->f[1], 0);
    int32_t before = offset(r, r->f[3]), after = offset(r, r->f[5]);
    sked_tz_span s;

    sked_tz_span_at(tz, t, &s);
    expect_eq(r, "span_at(T).start", s.start, t);
    expect_eq(r, "span_at(T).utoff", s.utoff, after);
    expect_eq(r, "span_at(T).prev_utoff", s.prev_utoff, before);
    assert_true(s.end > t);
    sked_tz_span_at(tz, t - 1, &s);
    expect_eq(r, "span_at(T-1).end", s.end, t);
    expect_eq(r, "span_at(T-1).utoff", s.utoff, before);
    assert_true(s.start <= t - 1);
    expect_eq(r, "utoff_at(T)", sked_tz_utoff_at(tz, t), after);
    check_wall(r, tz, t - 1, r->f[2], before);
    check_wall(r, tz, t, r->f[4], after);
}

static void test_transition(void **state)
{
    const row *r = *state;
    check_transition(r, zone(r, r->f[0]));
}

static void test_rule(void **state)
{
    const row *r = *state;
    sked_err err = {0};
    int rc;
    const char *s = strcmp(r->f[0], "<empty>") == 0 ? "" : r->f[0];
    sked_tz *tz = rule_zone(s, &err, &rc);
    need_fields(r, 2);

    if (strcmp(r->f[1], "error") == 0) {
        if (rc != SKED_EINVAL)
            row_fail(r, "\"%s\" accepted", s);
        assert_null(tz);
        assert_true(err.msg[0] != '\0');
        return;
    }
    if (rc != 0)
        row_fail(r, "\"%s\": %s", s, err.msg);
    if (strcmp(r->f[1], "fixed") == 0) {
        need_fields(r, 3);
        int32_t off = offset(r, r->f[2]);
        const int64_t probes[] = {INT64_MIN, -1, 0, 1711846800, INT64_MAX};
        for (size_t i = 0; i < sizeof probes / sizeof probes[0]; i++) {
            sked_tz_span sp;
            sked_tz_span_at(tz, probes[i], &sp);
            expect_eq(r, "start", sp.start, INT64_MIN);
            expect_eq(r, "end", sp.end, INT64_MAX);
            expect_eq(r, "utoff", sp.utoff, off);
            expect_eq(r, "prev_utoff", sp.prev_utoff, off);
        }
        expect_eq(r, "is_utc", sked_tz_is_utc(tz), off == 0);
    } else {
        check_transition(r, tz);
        assert_false(sked_tz_is_utc(tz));
    }
    sked_tz_free(tz);
}

/* ZONE | INSTANT | START | END | UTOFF | PREV */
static void test_span(void **state)
{
    const row *r = *state;
    need_fields(r, 6);
    const sked_tz *tz = zone(r, r->f[0]);
    sked_tz_span s;
    sked_tz_span_at(tz, instant(r, r->f[1], 0), &s);
    expect_eq(r, "start", s.start, instant(r, r->f[2], INT64_MIN));
    expect_eq(r, "end", s.end, instant(r, r->f[3], INT64_MAX));
    expect_eq(r, "utoff", s.utoff, offset(r, r->f[4]));
    expect_eq(r, "prev_utoff", s.prev_utoff, offset(r, r->f[5]));
}

/* ZONE | WALL | KIND | INSTANT [| INSTANT] */
static void test_local(void **state)
{
    const row *r = *state;
    need_fields(r, 4);
    const sked_tz *tz = zone(r, r->f[0]);
    sked_civil lt;
    int wday;
    int64_t out[2] = {-1, -1};
    wall(r, r->f[1], &lt, &wday);
    lt.wday = lt.yday = 99; /* ignored */
    sked_tz_kind k = sked_tz_from_local(tz, &lt, out);
    sked_tz_kind want = strcmp(r->f[2], "GAP") == 0    ? SKED_TZ_GAP
                        : strcmp(r->f[2], "FOLD") == 0 ? SKED_TZ_FOLD
                                                       : SKED_TZ_UNIQUE;
    expect_eq(r, "kind", k, want);
    expect_eq(r, "out[0]", out[0], instant(r, r->f[3], 0));
    if (want == SKED_TZ_FOLD) {
        need_fields(r, 5);
        expect_eq(r, "out[1]", out[1], instant(r, r->f[4], 0));
    }
}

/* ZONE | IS_UTC */
static void test_zone(void **state)
{
    const row *r = *state;
    need_fields(r, 2);
    const sked_tz *tz = zone(r, r->f[0]);
    expect_eq(r, "is_utc", sked_tz_is_utc(tz) != 0, atoi(r->f[1]));
    assert_string_equal(sked_tz_name(tz), r->f[0]);
}

/* Undo the table's quoting: "...", with \n and \xNN escapes. */
static char *unquote(const row *r, const char *s)
{
    size_t len = strlen(s), n = 0;
    if (len < 2 || s[0] != '"' || s[len - 1] != '"')
        row_fail(r, "name must be quoted: %s", s);
    char *out = malloc(len);
    for (size_t i = 1; i < len - 1; i++) {
        if (s[i] == '\\' && s[i + 1] == 'n') {
            out[n++] = '\n';
            i++;
        } else if (s[i] == '\\' && s[i + 1] == 'x' && i + 3 < len - 1) {
            char hex[3] = {s[i + 2], s[i + 3], 0};
            out[n++] = (char)strtol(hex, NULL, 16);
            i += 3;
        } else {
            out[n++] = s[i];
        }
    }
    out[n] = '\0';
    return out;
}

/* "NAME" | OK/EINVAL/ENOENT | MESSAGE */
static void test_name(void **state)
{
    const row *r = *state;
    need_fields(r, 3);
    char *name = unquote(r, r->f[0]);
    const sked_tz *tz = NULL;
    sked_err err = {0};
    int rc = sked_tz_get(name, &tz, &err);
    int want = strcmp(r->f[1], "OK") == 0       ? 0
               : strcmp(r->f[1], "ENOENT") == 0 ? SKED_ENOENT
                                                : SKED_EINVAL;
    if (rc != want)
        row_fail(r, "rc %s (%s), want %s", sked_err_name(rc), err.msg, r->f[1]);
    if (want == 0) {
        assert_non_null(tz);
        assert_string_equal(sked_tz_name(tz), name);
    } else {
        assert_null(tz);
        assert_true(err.msg[0] != '\0');
        if (strcmp(r->f[2], "-") != 0)
            assert_string_equal(err.msg, r->f[2]);
    }
    free(name);
}

/* The test's own $TZDIR, restored after a test changes it. */
static char *saved_tzdir;

static void set_tzdir(const char *dir)
{
    if (dir)
        setenv("TZDIR", dir, 1);
    else if (saved_tzdir)
        setenv("TZDIR", saved_tzdir, 1);
    else
        unsetenv("TZDIR");
}

/* A zone file, read from where sked_tz_get would read it. */
static uint8_t *read_zone_file(const char *name, size_t *len)
{
    char path[4096];
    const char *dir = saved_tzdir && *saved_tzdir ? saved_tzdir
                                                  : "/usr/share/zoneinfo";
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        fail_msg("cannot open %s", path);
    uint8_t *b = malloc(1 << 16);
    *len = fread(b, 1, 1 << 16, f);
    fclose(f);
    return b;
}

/* ------------------------------------------------------------------------ */
/* Named tests                                                               */

static void test_utc_builtin(void **state)
{
    (void)state;
    const sked_tz *tz = NULL;
    assert_int_equal(sked_tz_get("UTC", &tz, NULL), 0);
    assert_ptr_equal(tz, sked_tz_utc());
    assert_string_equal(sked_tz_name(tz), "UTC");
    assert_true(sked_tz_is_utc(tz));
    sked_civil c;
    int32_t off = -1;
    sked_tz_to_local(tz, 951782400, &c, &off); /* 2000-02-29, a Tuesday */
    assert_int_equal(off, 0);
    assert_int_equal(c.year, 2000);
    assert_int_equal(c.mon, 2);
    assert_int_equal(c.mday, 29);
    assert_int_equal(c.wday, 2);
    assert_int_equal(c.yday, 59);
    /* Even with no zoneinfo at all. */
    set_tzdir("/nonexistent");
    assert_int_equal(sked_tz_get("UTC", &tz, NULL), 0);
    set_tzdir(NULL);
}

static void test_long_names(void **state)
{
    (void)state;
    char name[301];
    const sked_tz *tz = NULL;
    sked_err err = {0};
    memset(name, 'a', 300);
    name[300] = '\0';
    assert_int_equal(sked_tz_get(name, &tz, &err), SKED_EINVAL);
    name[256] = '\0';
    assert_int_equal(sked_tz_get(name, &tz, &err), SKED_EINVAL);
    name[255] = '\0'; /* the longest name allowed; no such file */
    assert_int_equal(sked_tz_get(name, &tz, &err), SKED_ENOENT);
    assert_int_equal(sked_tz_get(NULL, &tz, &err), SKED_EINVAL);
}

static const char *const thread_zones[] = {
    "Asia/Tokyo", "Europe/Paris", "America/Chicago", "Africa/Nairobi",
    "Australia/Perth", "America/Denver", "Asia/Kolkata", "Europe/Rome"};
#define NTHREAD_ZONES (sizeof thread_zones / sizeof thread_zones[0])

static void *get_zones(void *arg)
{
    const sked_tz **out = arg;
    for (int round = 0; round < 50; round++)
        for (size_t i = 0; i < NTHREAD_ZONES; i++) {
            const sked_tz *tz = NULL;
            if (sked_tz_get(thread_zones[i], &tz, NULL) != 0)
                return "get failed";
            if (round == 0)
                out[i] = tz;
            else if (out[i] != tz)
                return "pointer changed";
        }
    return NULL;
}

/* Threads race to load the same zones: one zone object per name. */
static void test_cache_threads(void **state)
{
    (void)state;
    enum { N = 8 };
    pthread_t th[N];
    const sked_tz *got[N][NTHREAD_ZONES];
    for (int i = 0; i < N; i++)
        assert_int_equal(pthread_create(&th[i], NULL, get_zones, got[i]), 0);
    for (int i = 0; i < N; i++) {
        void *res;
        pthread_join(th[i], &res);
        if (res != NULL)
            fail_msg("thread %d: %s", i, (char *)res);
    }
    for (int i = 1; i < N; i++)
        for (size_t z = 0; z < NTHREAD_ZONES; z++)
            assert_ptr_equal(got[i][z], got[0][z]);
}

static const char *const real_files[] = {
    "America/New_York", "Australia/Lord_Howe", "Europe/Dublin", "Etc/UTC",
    "Asia/Kathmandu"};

/* Every proper prefix of a real file is rejected, and leaks nothing (the
 * sanitizer build checks that). */
static void test_truncated(void **state)
{
    (void)state;
    for (size_t f = 0; f < sizeof real_files / sizeof real_files[0]; f++) {
        size_t len;
        uint8_t *b = read_zone_file(real_files[f], &len);
        sked_tz *tz = NULL;
        assert_int_equal(sked_tz_parse(real_files[f], b, len, &tz, NULL), 0);
        sked_tz_free(tz);
        for (size_t cut = 0; cut < len; cut++) {
            /* A fresh copy of exactly cut bytes, so ASan sees any overread. */
            uint8_t *p = malloc(cut ? cut : 1);
            memcpy(p, b, cut);
            char what[300];
            snprintf(what, sizeof what, "%s cut to %zu", real_files[f], cut);
            parse_bad(p, cut, what);
            free(p);
        }
        free(b);
    }
}

/* Where things are in a real v2+ file. */
typedef struct layout {
    size_t h2;         /* the second header */
    size_t body2;      /* its data block */
    uint32_t c[6];     /* its counts: isut, isstd, leap, time, type, char */
} layout;

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
           p[3];
}

static layout find_layout(const uint8_t *b)
{
    layout l;
    for (int i = 0; i < 6; i++)
        l.c[i] = get32(b + 20 + 4 * i);
    l.h2 = 44 + (size_t)l.c[3] * 5 + (size_t)l.c[4] * 6 + l.c[5] +
           (size_t)l.c[2] * 8 + l.c[1] + l.c[0];
    for (int i = 0; i < 6; i++)
        l.c[i] = get32(b + l.h2 + 20 + 4 * i);
    l.body2 = l.h2 + 44;
    return l;
}

static void set32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24), p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8), p[3] = (uint8_t)v;
}

/* One corruption at a time of a real file, each rejected. */
static void test_corrupt(void **state)
{
    (void)state;
    size_t len;
    uint8_t *orig = read_zone_file("America/New_York", &len);
    uint8_t *b = malloc(len);
    layout l = find_layout(orig);
    uint32_t timecnt = l.c[3], typecnt = l.c[4], charcnt = l.c[5];
    size_t idx = l.body2 + (size_t)timecnt * 8;
    size_t types = idx + timecnt;
    size_t flags = types + (size_t)typecnt * 6 + charcnt + (size_t)l.c[2] * 12;
    size_t footer = flags + l.c[1] + l.c[0];
    assert_int_equal(orig[footer], '\n');
    assert_true(l.c[1] > 0); /* the std/wall flags corrupted below */

#define CORRUPT(what, stmt)                                                   \
    do {                                                                      \
        memcpy(b, orig, len);                                                 \
        stmt;                                                                 \
        parse_bad(b, len, what);                                              \
    } while (0)

    CORRUPT("magic", b[0] = 'X');
    CORRUPT("second magic", b[l.h2 + 3] = 'g');
    CORRUPT("version '1'", b[4] = '1');
    CORRUPT("typecnt 0", set32(b + l.h2 + 36, 0));
    CORRUPT("charcnt 0", set32(b + l.h2 + 40, 0));
    CORRUPT("isutcnt != typecnt", set32(b + l.h2 + 20, typecnt + 1));
    CORRUPT("timecnt huge", set32(b + l.h2 + 32, 0xFFFFFFFF));
    CORRUPT("typecnt huge", set32(b + l.h2 + 36, 0xFFFFFFFF));
    CORRUPT("leapcnt huge", set32(b + l.h2 + 28, 0x7FFFFFFF));
    CORRUPT("v1 timecnt huge", set32(b + 32, 0xFFFFFFFF));
    CORRUPT("timecnt + 1", set32(b + l.h2 + 32, timecnt + 1));
    CORRUPT("type index", b[idx + 5] = (uint8_t)typecnt);
    CORRUPT("times out of order", memcpy(b + l.body2 + 8 * 10,
                                         orig + l.body2 + 8 * 11, 8));
    CORRUPT("offset INT32_MIN", set32(b + types, 0x80000000));
    CORRUPT("offset 26h", set32(b + types, 26 * 3600));
    CORRUPT("isdst 2", b[types + 4] = 2);
    CORRUPT("abbreviation index", b[types + 5] = (uint8_t)charcnt);
    CORRUPT("footer newline", b[footer] = ' ');
    CORRUPT("footer rule", b[footer + 1] = '!');
    CORRUPT("footer end", b[len - 1] = 'x');
    CORRUPT("std/wall flag", b[flags] = 7);
#undef CORRUPT
    free(b);
    free(orig);
}

/* A version-1 file: 32-bit times and no footer; the last type persists. */
static void test_v1_file(void **state)
{
    (void)state;
    image im;
    spec s = {.version = 0, .ntimes = 2,
              .times = (const int64_t[]){-100000, 1000000},
              .idx = (const uint8_t[]){1, 0}, .ntypes = 2,
              .offs = (const int32_t[]){3600, 7200}};
    build(&im, &s);
    im.b[im.len++] = 0xAA; /* trailing bytes are ignored */
    sked_tz *tz = parse_ok(&im);
    sked_tz_span sp;
    sked_tz_span_at(tz, -100001, &sp);
    assert_true(sp.start == INT64_MIN && sp.end == -100000);
    assert_int_equal(sp.utoff, 3600);
    sked_tz_span_at(tz, 0, &sp);
    assert_true(sp.start == -100000 && sp.end == 1000000);
    assert_int_equal(sp.utoff, 7200);
    assert_int_equal(sp.prev_utoff, 3600);
    sked_tz_span_at(tz, INT64_MAX, &sp);
    assert_true(sp.start == 1000000 && sp.end == INT64_MAX);
    assert_int_equal(sp.utoff, 3600);
    assert_false(sked_tz_is_utc(tz));
    sked_tz_free(tz);
}

/* isdst- or abbreviation-only changes are merged away. */
static void test_merge(void **state)
{
    (void)state;
    image im;
    spec s = {.version = '2', .ntimes = 4,
              .times = (const int64_t[]){100, 200, 300, 400},
              .idx = (const uint8_t[]){1, 2, 0, 1}, .ntypes = 3,
              .offs = (const int32_t[]){0, 0, 3600}, .footer = ""};
    build(&im, &s);
    sked_tz *tz = parse_ok(&im);
    sked_tz_span sp;
    sked_tz_span_at(tz, 150, &sp); /* type 1 has type 0's offset */
    assert_true(sp.start == INT64_MIN && sp.end == 200);
    sked_tz_span_at(tz, 200, &sp);
    assert_true(sp.start == 200 && sp.end == 300 && sp.utoff == 3600);
    sked_tz_span_at(tz, 350, &sp); /* 300 and 400 merge */
    assert_true(sp.start == 300 && sp.end == INT64_MAX && sp.utoff == 0);
    sked_tz_free(tz);

    /* Nothing but offset-0 types: UTC, though the abbreviations differ. */
    s.offs = (const int32_t[]){0, 0, 0};
    build(&im, &s);
    tz = parse_ok(&im);
    assert_true(sked_tz_is_utc(tz));
    sked_tz_free(tz);
}

/* With a footer rule, the rule decides from the last transition on (as
 * glibc does), even where the file's last type says otherwise. */
static void test_footer_takes_over(void **state)
{
    (void)state;
    image im;
    spec s = {.version = '2', .ntimes = 2,
              .times = (const int64_t[]){0, 946684800},
              .idx = (const uint8_t[]){1, 2}, .ntypes = 3,
              .offs = (const int32_t[]){-3600, -7200, 7200},
              .footer = "EST5EDT,M3.2.0,M11.1.0"};
    build(&im, &s);
    sked_tz *tz = parse_ok(&im);
    sked_tz_span sp;
    /* 2000-01-01 is in EST: a transition -02:00 -> -05:00 at 946684800 */
    sked_tz_span_at(tz, 946684800, &sp);
    assert_true(sp.start == 946684800 && sp.utoff == -18000);
    assert_int_equal(sp.prev_utoff, -7200);
    assert_true(sp.end == 952844400); /* 2000-03-12T07:00:00Z, zdump */
    sked_tz_span_at(tz, 946684799, &sp);
    assert_true(sp.start == 0 && sp.end == 946684800 && sp.utoff == -7200);
    sked_tz_free(tz);
}

/* Leap-second files (right/...) count leap seconds in their times; sked's
 * instants do not. */
static void test_leap_seconds(void **state)
{
    (void)state;
    image im;
    spec s = {.version = '4', .ntimes = 1,
              .times = (const int64_t[]){1000000 + 2},
              .idx = (const uint8_t[]){1}, .ntypes = 2,
              .offs = (const int32_t[]){0, 3600}, .nleaps = 2,
              .leaps = (const int64_t[]){500000, 1, 900000, 2}, .footer = ""};
    build(&im, &s);
    sked_tz *tz = parse_ok(&im);
    sked_tz_span sp;
    sked_tz_span_at(tz, 1000000, &sp);
    assert_true(sp.start == 1000000 && sp.utoff == 3600);
    sked_tz_free(tz);
}

/* Transition times at the very ends of int64. */
static void test_hostile_times(void **state)
{
    (void)state;
    image im;
    spec s = {.version = '2', .ntimes = 3,
              .times = (const int64_t[]){INT64_MIN, 0, INT64_MAX},
              .idx = (const uint8_t[]){1, 0, 1}, .ntypes = 2,
              .offs = (const int32_t[]){0, 93599}, .footer = ""};
    build(&im, &s);
    sked_tz *tz = parse_ok(&im);
    sked_tz_span sp;
    sked_tz_span_at(tz, INT64_MIN, &sp);
    assert_true(sp.start == INT64_MIN && sp.end == 0);
    assert_int_equal(sp.utoff, 93599);
    assert_int_equal(sp.prev_utoff, 93599);
    sked_tz_span_at(tz, INT64_MAX, &sp);
    assert_true(sp.start == 0 && sp.end == INT64_MAX && sp.utoff == 0);
    sked_civil c;
    sked_tz_to_local(tz, INT64_MAX, &c, NULL);
    sked_tz_to_local(tz, INT64_MIN, &c, NULL);
    sked_tz_free(tz);

    /* A rule taking over at INT64_MIN, i.e. everywhere. */
    s.ntimes = 1;
    s.footer = "<+1030>-10:30<+11>-11,M10.1.0,M4.1.0";
    build(&im, &s);
    tz = parse_ok(&im);
    sked_tz_span_at(tz, INT64_MIN, &sp);
    assert_true(sp.start == INT64_MIN && sp.prev_utoff == sp.utoff);
    sked_tz_free(tz);
}

/* Far instants: spans stay well-formed and saturate at the int64 ends. */
static void test_extremes(void **state)
{
    (void)state;
    static const char *const zones[] = {
        "America/New_York", "Europe/Dublin", "Australia/Lord_Howe",
        "America/Nuuk",     "Asia/Kathmandu", "UTC"};
    const int64_t probes[] = {INT64_MIN,     INT64_MIN + 1, INT64_MIN / 2,
                              -1,            0,             INT64_MAX / 2,
                              INT64_MAX - 1, INT64_MAX};
    for (size_t z = 0; z < sizeof zones / sizeof zones[0]; z++) {
        const sked_tz *tz = NULL;
        assert_int_equal(sked_tz_get(zones[z], &tz, NULL), 0);
        for (size_t i = 0; i < sizeof probes / sizeof probes[0]; i++) {
            int64_t t = probes[i];
            sked_tz_span sp;
            sked_tz_span_at(tz, t, &sp);
            assert_true(sp.start <= t);
            assert_true(t < sp.end || (t == INT64_MAX && sp.end == INT64_MAX));
            if (sp.start == INT64_MIN)
                assert_int_equal(sp.prev_utoff, sp.utoff);
            else
                assert_int_not_equal(sp.prev_utoff, sp.utoff);
            sked_civil c;
            sked_tz_to_local(tz, t, &c, NULL);
        }
        sked_civil lt = {.year = INT32_MAX, .mon = 12, .mday = 31,
                         .hour = 23, .min = 59, .sec = 59};
        int64_t out[2];
        sked_tz_from_local(tz, &lt, out);
        lt = (sked_civil){.year = INT32_MIN, .mon = 1, .mday = 1};
        sked_tz_from_local(tz, &lt, out);
        lt = (sked_civil){.year = 2024, .mon = INT32_MAX, .mday = INT32_MAX,
                          .hour = INT32_MAX, .min = INT32_MAX,
                          .sec = INT32_MAX};
        sked_tz_from_local(tz, &lt, out);
    }
}

/* Walk every span of some zones from 1800 to 2500: each begins where the
 * last ended, with the last one's offset as prev_utoff, and every local
 * wall time just inside a span maps back to its instant. */
static void test_walk(void **state)
{
    (void)state;
    static const char *const zones[] = {
        "America/New_York", "Europe/Dublin", "Australia/Lord_Howe",
        "Pacific/Chatham",  "Pacific/Apia",  "Africa/Casablanca",
        "Asia/Gaza",        "America/Nuuk"};
    const int64_t lo = -5364662400, hi = 16725225600; /* 1800, 2500 */
    for (size_t z = 0; z < sizeof zones / sizeof zones[0]; z++) {
        const sked_tz *tz = NULL;
        assert_int_equal(sked_tz_get(zones[z], &tz, NULL), 0);
        sked_tz_span s, n;
        sked_tz_span_at(tz, lo, &s);
        while (s.end < hi) {
            sked_tz_span_at(tz, s.end, &n);
            assert_true(n.start == s.end);
            assert_int_equal(n.prev_utoff, s.utoff);
            assert_int_not_equal(n.utoff, s.utoff);
            /* the last second of the span, and the first of the next */
            sked_civil c;
            int64_t out[2];
            sked_tz_to_local(tz, s.end - 1, &c, NULL);
            sked_tz_kind k = sked_tz_from_local(tz, &c, out);
            assert_true(k != SKED_TZ_GAP);
            assert_true(out[0] == s.end - 1 || out[1] == s.end - 1);
            sked_tz_to_local(tz, n.start, &c, NULL);
            k = sked_tz_from_local(tz, &c, out);
            assert_true(k != SKED_TZ_GAP);
            assert_true(out[0] == n.start || out[1] == n.start);
            s = n;
        }
    }
}

/* $TZDIR decides where zones come from; a corrupt file there is EINVAL. */
static void test_tzdir(void **state)
{
    (void)state;
    char dir[] = "/tmp/sked_test_tz_XXXXXX", path[512];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/Test", dir);
    assert_int_equal(mkdir(path, 0755), 0);

    size_t len;
    uint8_t *b = read_zone_file("Asia/Kathmandu", &len);
    snprintf(path, sizeof path, "%s/Test/Good", dir);
    FILE *f = fopen(path, "wb");
    fwrite(b, 1, len, f);
    fclose(f);
    snprintf(path, sizeof path, "%s/Test/Bad", dir);
    f = fopen(path, "wb");
    fwrite(b, 1, len / 2, f);
    fclose(f);
    free(b);

    set_tzdir(dir);
    const sked_tz *tz = NULL;
    sked_err err = {0};
    assert_int_equal(sked_tz_get("Test/Good", &tz, &err), 0);
    assert_int_equal(sked_tz_utoff_at(tz, 1700000000), 20700);
    assert_int_equal(sked_tz_get("Test/Bad", &tz, &err), SKED_EINVAL);
    assert_non_null(strstr(err.msg, "Test/Bad"));
    assert_int_equal(sked_tz_get("Test/None", &tz, &err), SKED_ENOENT);
    assert_string_equal(err.msg, "unknown zone \"Test/None\"");
    set_tzdir(NULL);

    /* Cached: still there after the directory is gone. */
    snprintf(path, sizeof path, "%s/Test/Good", dir);
    unlink(path);
    snprintf(path, sizeof path, "%s/Test/Bad", dir);
    unlink(path);
    snprintf(path, sizeof path, "%s/Test", dir);
    rmdir(path);
    rmdir(dir);
    assert_int_equal(sked_tz_get("Test/Good", &tz, &err), 0);
}

/* ------------------------------------------------------------------------ */

static const struct {
    const char *file;
    CMUnitTestFunction fn;
} tables[] = {
    {"tz_transitions.txt", test_transition},
    {"tz_spans.txt", test_span},
    {"tz_local.txt", test_local},
    {"tz_rules.txt", test_rule},
    {"tz_zones.txt", test_zone},
    {"tz_names.txt", test_name},
};

int main(void)
{
    saved_tzdir = getenv("TZDIR") ? strdup(getenv("TZDIR")) : NULL;
    static const struct CMUnitTest named[] = {
        cmocka_unit_test(test_cache_threads),
        cmocka_unit_test(test_utc_builtin),
        cmocka_unit_test(test_long_names),
        cmocka_unit_test(test_truncated),
        cmocka_unit_test(test_corrupt),
        cmocka_unit_test(test_v1_file),
        cmocka_unit_test(test_merge),
        cmocka_unit_test(test_footer_takes_over),
        cmocka_unit_test(test_leap_seconds),
        cmocka_unit_test(test_hostile_times),
        cmocka_unit_test(test_extremes),
        cmocka_unit_test(test_walk),
        cmocka_unit_test(test_tzdir),
    };
    size_t nnamed = sizeof named / sizeof named[0];
    size_t ntables = sizeof tables / sizeof tables[0];
    size_t first[sizeof tables / sizeof tables[0] + 1];

    for (size_t t = 0; t < ntables; t++) {
        first[t] = nrows;
        sked_test_read_table(tables[t].file, add_row, (void *)tables[t].file);
    }
    first[ntables] = nrows;

    struct CMUnitTest *tests = calloc(nnamed + nrows, sizeof *tests);
    size_t k = 0;
    for (size_t i = 0; i < nnamed; i++)
        tests[k++] = named[i];
    for (size_t t = 0; t < ntables; t++)
        for (size_t i = first[t]; i < first[t + 1]; i++) {
            char *name = malloc(64);
            snprintf(name, 64, "%s:%d", rows[i].file, rows[i].line);
            tests[k++] = (struct CMUnitTest){name, tables[t].fn, NULL, NULL,
                                             &rows[i]};
        }
    return sked_test_run("tz", tests, k);
}
