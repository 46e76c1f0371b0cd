/*
 * test_sched_store.c - the scheduler's rules that judge runs by what the
 * store holds, on a SQLite store in a temporary directory; the scheduler
 * is a bare struct with only what these paths use.
 *
 * - sked_sched_read_back (sched/sched_publish.c) decides, after a write
 *   whose outcome is unknown, which runs it applied: a run counts only
 *   when the store holds its status on the same attempt with the same
 *   dispatched_at and finished_at.
 * - sked_sched_events_handle (sched/sched_events.c) on `returned` events:
 *   a job its worker never started goes out again as the same attempt,
 *   once; one that may have run, as the next attempt; an event about an
 *   earlier dispatch than the store's changes nothing.
 */
#include "harness.h"

#include <unistd.h>

#include "core/clock.h"
#include "core/ids.h"
#include "sched/sched_internal.h"

static char dir[] = "/tmp/sked-readback-XXXXXX";
static char path[64];

static sked_store *open_store(void)
{
    char url[128];
    snprintf(url, sizeof url, "sqlite:%s", path);
    sked_store *st = NULL;
    sked_err err = {0};
    if (sked_store_open(url, &st, &err) != 0)
        fail_msg("open %s: %s", url, err.msg);
    return st;
}

/* A stored task and its run, marked DISPATCHED at `at` on attempt 1. */
static sked_run_rec dispatched_run(sked_store *st, sked_walltime at)
{
    sked_task_rec t = {.state = SKED_TASK_ACTIVE, .version = 1};
    sked_uuid7(t.id);
    snprintf(t.ns, sizeof t.ns, "default");
    snprintf(t.queue, sizeof t.queue, "default");
    t.spec = "{\"schedule\":{\"every\":\"1m\"}}";
    t.next_run_at = t.created_at = t.updated_at = at;
    sked_err err = {0};
    if (sked_store_task_insert(st, &t, 1, NULL, &err) != 0)
        fail_msg("task insert: %s", err.msg);
    sked_run_rec r = {.status = SKED_RUN_SCHEDULED, .attempt = 1,
                      .scheduled_at = at, .due_at = at,
                      .lease_expires_at = SKED_TIME_NONE,
                      .dispatched_at = SKED_TIME_NONE, .started_at = SKED_TIME_NONE,
                      .finished_at = SKED_TIME_NONE, .lag_us = SKED_TIME_NONE,
                      .exit_code = SKED_NO_CODE};
    sked_uuid7(r.id);
    snprintf(r.task_id, sizeof r.task_id, "%s", t.id);
    snprintf(r.ns, sizeof r.ns, "default");
    snprintf(r.queue, sizeof r.queue, "default");
    if (sked_store_run_insert(st, &r, &err) != 0)
        fail_msg("run insert: %s", err.msg);
    r.status = SKED_RUN_DISPATCHED;
    r.dispatched_at = at;
    snprintf(r.lease_owner, sizeof r.lease_owner, "s1");
    r.lease_expires_at = at + 60 * SKED_USEC_PER_SEC;
    sked_run_change ch = {.rec = &r, .attempt = 1, .from = SKED_RUN_BIT(SKED_RUN_SCHEDULED)};
    if (sked_store_run_update(st, &ch, 1, &err) != 0 || ch.result != 0)
        fail_msg("mark: %s (result %d)", err.msg, ch.result);
    return r;
}

static void test_applied_only_as_written(void **state)
{
    (void)state;
    sked_store *st = open_store();
    sked_sched s = {.cfg = {.store = st}};
    sked_walltime at = sked_clock_wall_now();
    sked_run_rec a = dispatched_run(st, at);
    /* as written */
    sked_run_rec same = a;
    /* a mark of another writer: another dispatched_at */
    sked_run_rec other = dispatched_run(st, at + 7);
    other.dispatched_at = at + 8;
    /* another attempt */
    sked_run_rec attempt = dispatched_run(st, at + 9);
    attempt.attempt = 2;
    /* a skip that was not applied: the store still has it DISPATCHED */
    sked_run_rec skipped = dispatched_run(st, at + 10);
    skipped.status = SKED_RUN_SKIPPED;
    skipped.finished_at = at + 11;
    /* never stored (a claim whose insert did not commit) */
    sked_run_rec ghost = a;
    sked_uuid7(ghost.id);
    const sked_run_rec *recs[] = {&same, &other, &attempt, &skipped, &ghost};
    int applied[5] = {-1, -1, -1, -1, -1};
    assert_int_equal(sked_sched_read_back(&s, recs, 5, applied), 0);
    assert_int_equal(applied[0], 1);
    assert_int_equal(applied[1], 0);
    assert_int_equal(applied[2], 0);
    assert_int_equal(applied[3], 0);
    assert_int_equal(applied[4], 0);
    sked_store_close(st);
}

/* An events-handling scheduler: the store, distributed semantics (a run
 * whose events were lost is not recovered at start), what wake-ups lock. */
#define EVENTS_SCHED(st)                                                   \
    {.cfg = {.store = (st), .run_lease_us = 15 * SKED_USEC_PER_SEC},       \
     .mu = PTHREAD_MUTEX_INITIALIZER, .claim_cond = PTHREAD_COND_INITIALIZER}

static sked_run_rec stored(sked_store *st, const char *id)
{
    sked_run_rec r;
    sked_err err = {0};
    if (sked_store_run_get(st, NULL, id, &r, &err) != 0)
        fail_msg("run get: %s", err.msg);
    return r;
}

/* The `returned` event of r's current attempt from worker w-1. */
static void handle_returned(sked_sched *s, const sked_run_rec *r, int unstarted,
                            sked_walltime dispatch)
{
    sked_event e = {.type = SKED_EVENT_RETURNED, .attempt = r->attempt,
                    .at = sked_clock_wall_now(), .unstarted = unstarted,
                    .dispatched_at = dispatch};
    snprintf(e.run_id, sizeof e.run_id, "%s", r->id);
    snprintf(e.worker, sizeof e.worker, "w-1");
    assert_int_equal(sked_sched_events_handle(s, &e, 1), 0);
}

static void test_returned_unstarted_once(void **state)
{
    (void)state;
    sked_store *st = open_store();
    sked_sched s = EVENTS_SCHED(st);
    sked_walltime at = sked_clock_wall_now() - 2 * SKED_USEC_PER_SEC;
    sked_run_rec a = dispatched_run(st, at);
    /* never started by the worker that had this dispatch: same attempt */
    handle_returned(&s, &a, 1, a.dispatched_at);
    sked_run_rec r = stored(st, a.id);
    assert_int_equal(r.status, SKED_RUN_SCHEDULED);
    assert_int_equal(r.attempt, 1);
    /* published again (another dispatch), then the same event once more
     * (redelivered, or the batch written and handed back): stale */
    r.status = SKED_RUN_DISPATCHED;
    r.dispatched_at = at + SKED_USEC_PER_SEC;
    snprintf(r.lease_owner, sizeof r.lease_owner, "s1");
    r.lease_expires_at = r.dispatched_at + 60 * SKED_USEC_PER_SEC;
    sked_run_change ch = {.rec = &r, .attempt = 1, .from = SKED_RUN_BIT(SKED_RUN_SCHEDULED)};
    sked_err err = {0};
    assert_int_equal(sked_store_run_update(st, &ch, 1, &err), 0);
    assert_int_equal(ch.result, 0);
    handle_returned(&s, &a, 1, a.dispatched_at);
    sked_run_rec again = stored(st, a.id);
    assert_int_equal(again.status, SKED_RUN_DISPATCHED);
    assert_int_equal(again.attempt, 1);
    assert_int_equal(again.dispatched_at, at + SKED_USEC_PER_SEC);
    /* the new dispatch's job came back from the queue: it may have run */
    handle_returned(&s, &again, 0, again.dispatched_at);
    sked_run_rec_deinit(&r);
    r = stored(st, a.id);
    assert_int_equal(r.status, SKED_RUN_SCHEDULED);
    assert_int_equal(r.attempt, 2);
    sked_run_rec_deinit(&r);
    sked_run_rec_deinit(&again);
    sked_store_close(st);
}

static void test_returned_unstarted_needs_its_dispatch(void **state)
{
    (void)state;
    sked_store *st = open_store();
    sked_sched s = EVENTS_SCHED(st);
    sked_walltime at = sked_clock_wall_now() - 2 * SKED_USEC_PER_SEC;
    sked_run_rec a = dispatched_run(st, at);
    /* a job message without its dispatch (an older scheduler's): the
     * worker cannot say which dispatch it never started */
    handle_returned(&s, &a, 1, SKED_TIME_NONE);
    sked_run_rec r = stored(st, a.id);
    assert_int_equal(r.status, SKED_RUN_SCHEDULED);
    assert_int_equal(r.attempt, 2);
    sked_run_rec_deinit(&r);
    sked_store_close(st);
}

static void test_nothing_to_read(void **state)
{
    (void)state;
    sked_store *st = open_store();
    sked_sched s = {.cfg = {.store = st}};
    int applied[1] = {-1};
    assert_int_equal(sked_sched_read_back(&s, NULL, 0, applied), 0);
    assert_int_equal(applied[0], -1);
    sked_store_close(st);
}

int main(void)
{
    if (mkdtemp(dir) == NULL)
        return 1;
    snprintf(path, sizeof path, "%s/sked.db", dir);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_applied_only_as_written),
        cmocka_unit_test(test_nothing_to_read),
        cmocka_unit_test(test_returned_unstarted_once),
        cmocka_unit_test(test_returned_unstarted_needs_its_dispatch),
    };
    int rc = sked_test_run("sched_store", tests, sizeof tests / sizeof tests[0]);
    char f[96];
    const char *const suffixes[] = {"", "-wal", "-shm"};
    for (size_t i = 0; i < 3; i++) {
        snprintf(f, sizeof f, "%s%s", path, suffixes[i]);
        unlink(f);
    }
    rmdir(dir);
    return rc;
}
