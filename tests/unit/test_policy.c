/*
 * test_policy.c - what a claim records for one due task (sched/policy.c):
 * misfire run_once / skip / run_all after an outage, occurrences up to the
 * horizon, jitter bounds, max_runs and end_at completing the task, and a
 * one-time task that is never "late".  Expected values are worked out by
 * hand from the schedules below.
 */
#include "harness.h"

#include "model/task.h"
#include "sched/policy.h"
#include "time/rfc3339.h"

#define S INT64_C(1000000)

static sked_walltime T(const char *s)
{
    sked_walltime t;
    assert_int_equal(sked_rfc3339_parse(s, strlen(s), &t, NULL, NULL), 0);
    return t;
}

/* A stored task from a spec JSON, due at next_run_at. */
static sked_task_rec task(const char *json, sked_walltime next, int64_t runs)
{
    json_t *in = json_loads(json, 0, NULL);
    assert_non_null(in);
    sked_task_spec spec;
    sked_err err = {0};
    if (sked_task_spec_decode(in, &spec, &err) < 0)
        fail_msg("%s: %s", err.field, err.msg);
    json_decref(in);
    sked_task_rec r = {.id = "01a219bb-5549-7132-b6ac-683311d0d1f8", .ns = "default",
                       .state = SKED_TASK_ACTIVE, .next_run_at = next, .run_count = runs};
    r.spec = json_dumps(spec.json, JSON_COMPACT);
    sked_task_spec_deinit(&spec);
    return r;
}

static void advance(const char *json, sked_walltime next, sked_walltime now,
                    sked_walltime horizon, int64_t runs, sked_advance *out)
{
    sked_task_rec r = task(json, next, runs);
    sked_policy_ctx pc = {.now = now, .horizon = horizon};
    assert_int_equal(sked_policy_advance(&pc, &r, 0, out), 0);
    free(r.spec);
}

#define EVERY10(misfire)                                            \
    "{\"schedule\":{\"every\":\"10s\"},\"misfire\":\"" misfire "\","   \
    "\"target\":{\"type\":\"shell\",\"command\":\"true\"}}"

/* Down from 10:00:00 to 10:05:00 (grace 1m): 10:00:00..10:03:50 are late
 * (before 10:04:00); 10:04:00..10:05:02 are within grace or ahead. */
static void test_misfire(void **state)
{
    (void)state;
    sked_advance a;
    sked_walltime t0 = T("2030-01-01T10:00:00Z"), now = T("2030-01-01T10:05:00Z");
    sked_walltime horizon = now + 2 * S;

    advance(EVERY10("skip"), t0, now, horizon, 0, &a);
    /* 24 late ones skipped (10:00:00..10:03:50), then 10:04:00..10:05:00 run */
    assert_int_equal(a.nocc, 24 + 7);
    for (int i = 0; i < 24; i++) {
        assert_true(a.occ[i].skipped);
        assert_string_equal(a.occ[i].reason, "misfire");
    }
    for (int i = 24; i < a.nocc; i++)
        assert_false(a.occ[i].skipped);
    assert_int_equal(a.occ[24].scheduled_at, T("2030-01-01T10:04:00Z"));
    assert_int_equal(a.next_run_at, T("2030-01-01T10:05:10Z"));
    assert_int_equal(a.state, SKED_TASK_ACTIVE);

    advance(EVERY10("run_once"), t0, now, horizon, 0, &a);
    /* the latest late one (10:03:50) runs, the 23 before it are skipped */
    assert_int_equal(a.nocc, 31);
    for (int i = 0; i < 23; i++)
        assert_true(a.occ[i].skipped);
    assert_false(a.occ[23].skipped);
    assert_int_equal(a.occ[23].scheduled_at, T("2030-01-01T10:03:50Z"));

    advance(EVERY10("run_all"), t0, now, horizon, 0, &a);
    assert_int_equal(a.nocc, 31);
    for (int i = 0; i < a.nocc; i++)
        assert_false(a.occ[i].skipped);
    assert_int_equal(a.occ[0].due_at, t0); /* late: no jitter, due at once */
}

/* More occurrences than one claim records: the rest wait for the next. */
static void test_claim_cap(void **state)
{
    (void)state;
    sked_advance a;
    sked_walltime t0 = T("2030-01-01T00:00:00Z");
    advance(EVERY10("run_all"), t0, t0 + 3600 * S, t0 + 3600 * S, 0, &a);
    assert_int_equal(a.nocc, SKED_CLAIM_MAX_OCC);
    assert_int_equal(a.next_run_at, t0 + SKED_CLAIM_MAX_OCC * 10 * S);
}

static void test_jitter_bounds(void **state)
{
    (void)state;
    const char *json = "{\"schedule\":{\"every\":\"2s\",\"jitter\":\"1h\"},"
                       "\"target\":{\"type\":\"shell\",\"command\":\"true\"}}";
    sked_walltime t0 = T("2030-01-01T00:00:00Z");
    for (int k = 0; k < 50; k++) {
        sked_advance a;
        advance(json, t0, t0, t0 + 10 * S, 0, &a);
        for (int i = 0; i < a.nocc; i++) {
            /* never early, never at or past the next occurrence */
            assert_true(a.occ[i].due_at >= a.occ[i].scheduled_at);
            assert_true(a.occ[i].due_at < a.occ[i].scheduled_at + 2 * S);
        }
    }
}

static void test_completion(void **state)
{
    (void)state;
    sked_advance a;
    sked_walltime t0 = T("2030-01-01T00:00:00Z");
    /* max_runs 3 with 1 run done: two more, then completed */
    advance("{\"schedule\":{\"every\":\"1s\",\"max_runs\":3},"
            "\"target\":{\"type\":\"shell\",\"command\":\"true\"}}", t0, t0, t0 + 10 * S, 1, &a);
    assert_int_equal(a.nocc, 2);
    assert_int_equal(a.state, SKED_TASK_COMPLETED);
    assert_int_equal(a.next_run_at, SKED_TIME_NONE);
    /* end_at: the last one is at end_at */
    advance("{\"schedule\":{\"every\":\"1s\",\"end_at\":\"2030-01-01T00:00:02Z\"},"
            "\"target\":{\"type\":\"shell\",\"command\":\"true\"}}", t0, t0, t0 + 10 * S, 0, &a);
    assert_int_equal(a.nocc, 3);
    assert_int_equal(a.state, SKED_TASK_COMPLETED);
    /* a one-time task long past is not a misfire: it runs, once */
    advance("{\"schedule\":{\"at\":\"2001-01-01T00:00:00Z\"},\"misfire\":\"skip\","
            "\"target\":{\"type\":\"shell\",\"command\":\"true\"}}",
            T("2001-01-01T00:00:00Z"), t0, t0 + 2 * S, 0, &a);
    assert_int_equal(a.nocc, 1);
    assert_false(a.occ[0].skipped);
    assert_int_equal(a.state, SKED_TASK_COMPLETED);
}

/* A run already due, the only one recorded for a task with nothing
 * unfinished, is recorded dispatched by the claim; one ahead of now, one
 * of a task with a run unfinished, or one of several, is not. */
static void test_dispatch_at_claim(void **state)
{
    (void)state;
    sked_advance a;
    sked_walltime t0 = T("2030-01-01T10:00:00Z");
    const char *every = EVERY10("run_all");
    sked_task_rec r = task(every, t0, 0);
    sked_policy_ctx pc = {.now = t0 + S, .horizon = t0 + 2 * S};
    assert_int_equal(sked_policy_advance(&pc, &r, 0, &a), 0);
    assert_int_equal(a.nocc, 1);
    assert_int_equal(a.occ[0].dispatch, 1);
    assert_int_equal(sked_policy_advance(&pc, &r, 1, &a), 0);
    assert_int_equal(a.nocc, 1);
    assert_int_equal(a.occ[0].dispatch, 0);
    pc.now = t0 - S; /* claimed ahead of its time */
    assert_int_equal(sked_policy_advance(&pc, &r, 0, &a), 0);
    assert_int_equal(a.occ[0].dispatch, 0);
    pc.dispatch_lead_us = S - 1; /* ... not within the premark lead */
    assert_int_equal(sked_policy_advance(&pc, &r, 0, &a), 0);
    assert_int_equal(a.occ[0].dispatch, 0);
    pc.dispatch_lead_us = S; /* within it: the claim is its mark ahead */
    assert_int_equal(sked_policy_advance(&pc, &r, 0, &a), 0);
    assert_int_equal(a.occ[0].dispatch, 1);
    assert_int_equal(sked_policy_advance(&pc, &r, 1, &a), 0);
    assert_int_equal(a.occ[0].dispatch, 0);
    pc.dispatch_lead_us = 0;
    pc.now = t0 + 15 * S; /* two due (run_all): overlap is decided later */
    pc.horizon = t0 + 16 * S;
    assert_int_equal(sked_policy_advance(&pc, &r, 0, &a), 0);
    assert_int_equal(a.nocc, 2);
    assert_int_equal(a.occ[0].dispatch + a.occ[1].dispatch, 0);
    free(r.spec);
}

/* A one-time task is claimed ahead up to once_horizon, its one run
 * recorded dispatched (to go out at its due time); a recurring task only
 * up to horizon.  The store finds one-time tasks by the text its
 * canonical spec holds (tasks_due_once): checked here too. */
static void test_once_ahead(void **state)
{
    (void)state;
    sked_advance a;
    sked_walltime t0 = T("2030-01-01T10:00:00Z");
    sked_task_rec once = task("{\"schedule\":{\"at\":\"2030-01-01T10:00:20Z\"},"
                              "\"target\":{\"type\":\"shell\",\"command\":\"true\"}}",
                              t0 + 20 * S, 0);
    sked_task_rec every = task(EVERY10("run_once"), t0 + 20 * S, 0);
    assert_non_null(strstr(once.spec, "\"schedule\":{\"at\":"));
    assert_null(strstr(every.spec, "\"schedule\":{\"at\":"));
    sked_policy_ctx pc = {.now = t0, .horizon = t0 + 2 * S, .once_horizon = t0 + 30 * S,
                          .dispatch_lead_us = S};
    assert_int_equal(sked_policy_advance(&pc, &once, 0, &a), 0);
    assert_int_equal(a.nocc, 1);
    assert_true(a.occ[0].due_at == t0 + 20 * S);
    assert_int_equal(a.occ[0].dispatch, 1); /* 20 s ahead, beyond the lead */
    assert_int_equal(a.state, SKED_TASK_COMPLETED);
    assert_int_equal(sked_policy_advance(&pc, &once, 1, &a), 0); /* a run unfinished */
    assert_int_equal(a.nocc, 1);
    assert_int_equal(a.occ[0].dispatch, 0);
    assert_int_equal(sked_policy_advance(&pc, &every, 0, &a), 0);
    assert_int_equal(a.nocc, 0);
    assert_true(a.next_run_at == t0 + 20 * S);
    pc.once_horizon = t0 + 10 * S; /* not far enough */
    assert_int_equal(sked_policy_advance(&pc, &once, 0, &a), 0);
    assert_int_equal(a.nocc, 0);
    assert_true(a.next_run_at == t0 + 20 * S);
    assert_int_equal(a.state, SKED_TASK_ACTIVE);
    free(once.spec);
    free(every.spec);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_misfire),
        cmocka_unit_test(test_dispatch_at_claim),
        cmocka_unit_test(test_claim_cap),
        cmocka_unit_test(test_jitter_bounds),
        cmocka_unit_test(test_completion),
        cmocka_unit_test(test_once_ahead),
    };
    return sked_test_run("policy", tests, sizeof tests / sizeof tests[0]);
}
