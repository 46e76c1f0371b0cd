/*
 * test_event.c - the events workers send schedulers (model/run.c):
 * sked_event_encode and sked_event_decode keep what a scheduler acts on,
 * and a `returned` event is read as "it may have run" unless it says
 * `unstarted` in so many words.  The job message carries its dispatch
 * (dispatched_at), which the worker's `returned` event gives back.
 */
#include "harness.h"

#include "model/run.h"
#include "worker/exec.h"
#include "worker/worker.h"

#define RUN "0190a4c2-7e11-7a3b-9c4d-5e6f70819203"

static sked_event round_trip(const sked_event *in)
{
    size_t len = 0;
    char *text = sked_event_encode(in, &len);
    assert_non_null(text);
    sked_event out;
    sked_err err = {0};
    assert_int_equal(sked_event_decode(text, len, &out, &err), 0);
    free(text);
    return out;
}

static sked_event decoded(const char *text, int want_rc, const char *want_field)
{
    sked_event e;
    sked_err err = {0};
    int rc = sked_event_decode(text, strlen(text), &e, &err);
    assert_int_equal(rc, want_rc);
    if (want_field)
        assert_string_equal(err.field, want_field);
    return e;
}

static void test_returned_unstarted_round_trip(void **state)
{
    (void)state;
    sked_event in = {.type = SKED_EVENT_RETURNED, .attempt = 3, .at = 1795773600000000,
                     .unstarted = 1, .dispatched_at = 1795773599000001};
    snprintf(in.run_id, sizeof in.run_id, "%s", RUN);
    snprintf(in.worker, sizeof in.worker, "w-1");
    sked_event out = round_trip(&in);
    assert_int_equal(out.type, SKED_EVENT_RETURNED);
    assert_string_equal(out.run_id, RUN);
    assert_int_equal(out.attempt, 3);
    assert_string_equal(out.worker, "w-1");
    assert_int_equal(out.at, 1795773600000000);
    assert_int_equal(out.unstarted, 1);
    assert_int_equal(out.dispatched_at, 1795773599000001);
    sked_event_deinit(&out);

    in.unstarted = 0; /* the default: the scheduler assumes it may have run */
    in.dispatched_at = SKED_TIME_NONE;
    out = round_trip(&in);
    assert_int_equal(out.unstarted, 0);
    assert_int_equal(out.dispatched_at, SKED_TIME_NONE);
    sked_event_deinit(&out);
}

/* The job message names its dispatch, and the worker reads it back; a
 * message without one (an older scheduler's) reads as none. */
static void test_job_message_dispatch(void **state)
{
    (void)state;
    sked_run_rec r = {.attempt = 2, .scheduled_at = 1795773600000000,
                      .dispatched_at = 1795773600000123};
    snprintf(r.id, sizeof r.id, "%s", RUN);
    snprintf(r.task_id, sizeof r.task_id, "%s", RUN);
    snprintf(r.queue, sizeof r.queue, "default");
    const char *spec = "{\"target\":{\"type\":\"shell\",\"command\":\"true\"}}";
    size_t len = 0;
    char *text = sked_job_message(&r, spec, &len);
    assert_non_null(text);
    sked_job *job = NULL;
    sked_err err = {0};
    assert_int_equal(sked_job_decode(text, len, &job, &err), 0);
    assert_int_equal(job->attempt, 2);
    assert_int_equal(job->dispatched_at, 1795773600000123);
    sked_job_free(job);
    free(text);
    r.dispatched_at = SKED_TIME_NONE;
    text = sked_job_message(&r, spec, &len);
    assert_non_null(text);
    assert_null(strstr(text, "dispatched_at"));
    assert_int_equal(sked_job_decode(text, len, &job, &err), 0);
    assert_int_equal(job->dispatched_at, SKED_TIME_NONE);
    sked_job_free(job);
    free(text);
}

static void test_unstarted_only_when_true_on_returned(void **state)
{
    (void)state;
    static const char *const safe[] = {
        /* a worker of an older version sends no such field */
        "{\"type\":\"returned\",\"worker\":\"w\",\"at\":1,\"run_id\":\"" RUN
        "\",\"attempt\":1}",
        /* anything but true is read the safe way */
        "{\"type\":\"returned\",\"worker\":\"w\",\"at\":1,\"run_id\":\"" RUN
        "\",\"attempt\":1,\"unstarted\":\"yes\"}",
        "{\"type\":\"returned\",\"worker\":\"w\",\"at\":1,\"run_id\":\"" RUN
        "\",\"attempt\":1,\"unstarted\":1}",
        /* it means nothing on another type */
        "{\"type\":\"started\",\"worker\":\"w\",\"at\":1,\"run_id\":\"" RUN
        "\",\"attempt\":1,\"unstarted\":true}",
    };
    for (size_t i = 0; i < sizeof safe / sizeof *safe; i++) {
        sked_event e = decoded(safe[i], 0, NULL);
        assert_int_equal(e.unstarted, 0);
        sked_event_deinit(&e);
    }
    /* ... and is not sent there */
    sked_event in = {.type = SKED_EVENT_STARTED, .attempt = 1, .at = 5, .unstarted = 1};
    snprintf(in.run_id, sizeof in.run_id, "%s", RUN);
    size_t len = 0;
    char *text = sked_event_encode(&in, &len);
    assert_non_null(text);
    assert_null(strstr(text, "unstarted"));
    free(text);
}

static void test_finished_round_trip(void **state)
{
    (void)state;
    sked_event in = {.type = SKED_EVENT_FINISHED, .attempt = 2, .at = 2000, .started_at = 1000,
                     .outcome = 1, .exit_code = 7, .http_status = 0,
                     .error = "exit status 7", .output = "out\n"};
    snprintf(in.run_id, sizeof in.run_id, "%s", RUN);
    snprintf(in.worker, sizeof in.worker, "w-2");
    sked_event out = round_trip(&in);
    assert_int_equal(out.type, SKED_EVENT_FINISHED);
    assert_int_equal(out.attempt, 2);
    assert_int_equal(out.started_at, 1000);
    assert_int_equal(out.outcome, 1);
    assert_int_equal(out.exit_code, 7);
    assert_string_equal(out.error, "exit status 7");
    assert_string_equal(out.output, "out\n");
    assert_int_equal(out.unstarted, 0);
    sked_event_deinit(&out);
}

static void test_bad_events_name_the_field(void **state)
{
    (void)state;
    decoded("{\"type\":\"exploded\",\"worker\":\"w\",\"run_id\":\"" RUN "\"}", SKED_EINVAL,
            "type");
    decoded("{\"type\":\"returned\",\"worker\":\"w\",\"attempt\":1,\"unstarted\":true}",
            SKED_EINVAL, "run_id");
    decoded("{\"type\":\"returned\"", SKED_EINVAL, NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_returned_unstarted_round_trip),
        cmocka_unit_test(test_job_message_dispatch),
        cmocka_unit_test(test_unstarted_only_when_true_on_returned),
        cmocka_unit_test(test_finished_round_trip),
        cmocka_unit_test(test_bad_events_name_the_field),
    };
    return sked_test_run("event", tests, sizeof tests / sizeof *tests);
}
