/*
 * test_task.c - the task decoder: every rejection in
 * tests/unit/data/task_invalid.txt names its field and says what is wrong;
 * valid specs come out canonical (defaults filled, durations shortest,
 * times in UTC) and survive a store round trip unchanged; next occurrences
 * honour start_at, end_at and the every anchor.
 */
#include "harness.h"

#include <jansson.h>

#include "model/schedule.h"
#include "model/task.h"
#include "time/rfc3339.h"

typedef struct row {
    int line;
    char *json, *field, *msg;
} row;

static row *rows;
static size_t nrows;
static struct CMUnitTest *tests;

static void add_row(char **f, int n, int line, void *ctx)
{
    (void)ctx;
    if (n != 3) {
        fprintf(stderr, "task_invalid.txt:%d: expected 3 fields\n", line);
        exit(2);
    }
    rows = realloc(rows, (nrows + 1) * sizeof *rows);
    rows[nrows++] = (row){line, strdup(f[0]), strdup(f[1]), strdup(f[2])};
}

static void test_invalid_row(void **state)
{
    row *r = *state;
    json_error_t je;
    json_t *in = json_loads(r->json, 0, &je);
    if (in == NULL)
        fail_msg("task_invalid.txt:%d: the test's JSON is bad: %s", r->line, je.text);
    char *before = json_dumps(in, JSON_COMPACT | JSON_SORT_KEYS);
    sked_task_spec spec;
    sked_err err = {0};
    int rc = sked_task_spec_decode(in, &spec, &err);
    char *after = json_dumps(in, JSON_COMPACT | JSON_SORT_KEYS);
    int same = strcmp(before, after) == 0;
    free(before);
    free(after);
    json_decref(in);
    if (rc != SKED_EINVAL)
        fail_msg("task_invalid.txt:%d: accepted (rc %d)", r->line, rc);
    assert_true(same); /* the input is never modified */
    assert_null(spec.json);
    const char *want_field = strcmp(r->field, "-") == 0 ? "" : r->field;
    if (strcmp(err.field, want_field) != 0)
        fail_msg("task_invalid.txt:%d: blamed \"%s\" (%s), want \"%s\"", r->line,
                 err.field, err.msg, want_field);
    if (strstr(err.msg, r->msg) == NULL)
        fail_msg("task_invalid.txt:%d: message \"%s\" lacks \"%s\"", r->line, err.msg,
                 r->msg);
}

static json_t *decode_ok(const char *text, sked_task_spec *spec)
{
    json_t *in = json_loads(text, 0, NULL);
    assert_non_null(in);
    sked_err err = {0};
    if (sked_task_spec_decode(in, spec, &err) < 0)
        fail_msg("rejected: %s: %s", err.field, err.msg);
    json_decref(in);
    return spec->json;
}

/* Defaults are filled in and forms made canonical. */
static void test_canonical(void **state)
{
    (void)state;
    sked_task_spec s;
    json_t *c = decode_ok(
        "{\"name\":\"n1\",\"schedule\":{\"cron\":\"@every 90s\"},"
        "\"target\":{\"type\":\"http\",\"url\":\"https://x.example/a\",\"expect\":\"200-299\"},"
        "\"retry\":{\"max_attempts\":3,\"backoff\":\"60s\"},\"labels\":{\"team\":\"data\"},"
        "\"id\":\"ignored\",\"version\":99}", &s);
    char *txt = json_dumps(c, JSON_COMPACT);
    assert_string_equal(txt,
        "{\"name\":\"n1\",\"schedule\":{\"every\":\"1m30s\",\"start_at\":null,\"end_at\":null,"
        "\"max_runs\":null,\"jitter\":\"0s\"},\"target\":{\"type\":\"http\",\"url\":"
        "\"https://x.example/a\",\"method\":\"POST\",\"headers\":{},\"body\":null,"
        "\"expect\":\"2xx\",\"timeout\":\"30s\"},\"queue\":\"default\",\"retry\":"
        "{\"max_attempts\":3,\"backoff\":\"1m\",\"max_backoff\":\"10m\",\"multiplier\":2},"
        "\"overlap\":\"skip\",\"misfire\":\"run_once\",\"misfire_grace\":\"1m\","
        "\"labels\":{\"team\":\"data\"}}");
    assert_int_equal(s.sched.kind, SKED_SCHED_EVERY);
    assert_int_equal(s.sched.every_us, INT64_C(90000000));
    assert_false(s.shell);
    assert_string_equal(s.name, "n1");

    /* the stored text decodes to the very same canonical form */
    sked_task_spec again;
    sked_err err = {0};
    assert_int_equal(sked_task_spec_parse(txt, &again, &err), 0);
    char *txt2 = json_dumps(again.json, JSON_COMPACT);
    assert_string_equal(txt, txt2);
    free(txt);
    free(txt2);
    sked_task_spec_deinit(&again);
    sked_task_spec_deinit(&s);

    c = decode_ok("{\"schedule\":{\"at\":\"2030-01-01T01:00:00+01:00\"},"
                  "\"target\":{\"type\":\"shell\",\"command\":\"true\"}}", &s);
    assert_string_equal(json_string_value(json_object_get(json_object_get(c, "schedule"), "at")),
                        "2030-01-01T00:00:00Z");
    assert_true(s.shell);
    assert_true(json_is_null(json_object_get(c, "name")));
    sked_task_spec_deinit(&s);
}

/* The spliced response text is exactly the JSON tree's compact dump. */
static void test_json_text(void **state)
{
    (void)state;
    sked_task_spec s;
    decode_ok("{\"name\":\"x\",\"schedule\":{\"cron\":\"0 3 * * *\",\"timezone\":\"Asia/Kathmandu\"},"
              "\"target\":{\"type\":\"shell\",\"command\":\"echo \\\"hi\\\"\"},"
              "\"labels\":{\"k\":\"v\\u00e9\"}}", &s);
    sked_task_rec rec = {.id = "01a219bb-5549-7132-b6ac-683311d0d1f8", .ns = "default",
                         .state = SKED_TASK_PAUSED, .next_run_at = SKED_TIME_NONE,
                         .run_count = 7, .version = 3, .created_at = 1795773600123000,
                         .updated_at = 1795773600123456};
    rec.spec = json_dumps(s.json, JSON_COMPACT);
    size_t len;
    char *text = sked_task_json_text(&rec, &len);
    json_t *tree = sked_task_json(&rec);
    char *dump = json_dumps(tree, JSON_COMPACT);
    assert_string_equal(text, dump);
    assert_int_equal(len, strlen(dump));
    json_t *back = json_loads(text, 0, NULL);
    assert_non_null(back);
    assert_string_equal(json_string_value(json_object_get(back, "state")), "paused");
    assert_true(json_is_null(json_object_get(back, "next_run_at")));
    assert_string_equal(json_string_value(json_object_get(back, "created_at")),
                        "2026-11-27T10:00:00.123Z");
    json_decref(back);
    json_decref(tree);
    free(dump);
    free(text);
    free(rec.spec);
    sked_task_spec_deinit(&s);
}

static sked_walltime T(const char *s)
{
    sked_walltime t;
    assert_int_equal(sked_rfc3339_parse(s, strlen(s), &t, NULL, NULL), 0);
    return t;
}

/* start_at anchors `every` and delays the first fire; end_at stops it. */
static void test_schedule_bounds(void **state)
{
    (void)state;
    sked_task_spec s;
    decode_ok("{\"schedule\":{\"every\":\"1h\",\"start_at\":\"2030-01-01T00:20:00Z\","
              "\"end_at\":\"2030-01-01T02:20:00Z\"},"
              "\"target\":{\"type\":\"shell\",\"command\":\"true\"}}", &s);
    sked_walltime t;
    assert_int_equal(sked_schedule_first(&s.sched, T("2029-06-01T00:00:00Z"), &t), 0);
    assert_int_equal(t, T("2030-01-01T00:20:00Z"));
    assert_int_equal(sked_schedule_next(&s.sched, t, &t), 0);
    assert_int_equal(t, T("2030-01-01T01:20:00Z"));
    assert_int_equal(sked_schedule_next(&s.sched, t, &t), 0);
    assert_int_equal(t, T("2030-01-01T02:20:00Z")); /* end_at itself is included */
    assert_int_equal(sked_schedule_next(&s.sched, t, &t), SKED_ENOFIRE);
    /* created mid-way: the first fire is on the anchor's grid */
    assert_int_equal(sked_schedule_first(&s.sched, T("2030-01-01T01:00:00Z"), &t), 0);
    assert_int_equal(t, T("2030-01-01T01:20:00Z"));
    sked_task_spec_deinit(&s);

    /* a one-time task in the past still runs (at once) */
    decode_ok("{\"schedule\":{\"at\":\"2001-01-01T00:00:00Z\"},"
              "\"target\":{\"type\":\"shell\",\"command\":\"true\"}}", &s);
    assert_int_equal(sked_schedule_first(&s.sched, T("2026-01-01T00:00:00Z"), &t), 0);
    assert_int_equal(t, T("2001-01-01T00:00:00Z"));
    sked_task_spec_deinit(&s);

    /* a cron schedule that never fires, or has ended, is refused at create */
    sked_err err = {0};
    decode_ok("{\"schedule\":{\"cron\":\"0 0 30 2 *\"},"
              "\"target\":{\"type\":\"shell\",\"command\":\"true\"}}", &s);
    assert_int_equal(sked_schedule_first_checked(&s.sched, T("2026-01-01T00:00:00Z"), &t, &err),
                     SKED_EINVAL);
    assert_string_equal(err.field, "schedule.cron");
    sked_task_spec_deinit(&s);
    decode_ok("{\"schedule\":{\"cron\":\"0 0 * * *\",\"end_at\":\"2020-01-01T00:00:00Z\"},"
              "\"target\":{\"type\":\"shell\",\"command\":\"true\"}}", &s);
    assert_int_equal(sked_schedule_first_checked(&s.sched, T("2026-01-01T00:00:00Z"), &t, &err),
                     SKED_EINVAL);
    assert_string_equal(err.field, "schedule.end_at");
    sked_task_spec_deinit(&s);
}

int main(void)
{
    sked_test_read_table("task_invalid.txt", add_row, NULL);
    tests = calloc(nrows + 3, sizeof *tests);
    size_t k = 0;
    tests[k++] = (struct CMUnitTest)cmocka_unit_test(test_json_text);
    tests[k++] = (struct CMUnitTest)cmocka_unit_test(test_canonical);
    tests[k++] = (struct CMUnitTest)cmocka_unit_test(test_schedule_bounds);
    for (size_t i = 0; i < nrows; i++) {
        char *name = malloc(48);
        snprintf(name, 48, "task_invalid.txt:%d", rows[i].line);
        tests[k++] = (struct CMUnitTest){name, test_invalid_row, NULL, NULL, &rows[i]};
    }
    return sked_test_run("task", tests, k);
}
