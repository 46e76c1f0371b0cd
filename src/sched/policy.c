/*
 * policy.c - the occurrences a claim records for one task (see policy.h).
 */
#include "sched/policy.h"

#include <string.h>

#include "core/ids.h"
#include "model/task.h"
#include "time/duration.h"

typedef enum { MISFIRE_RUN_ONCE, MISFIRE_SKIP, MISFIRE_RUN_ALL } misfire_policy;

/* The task's misfire policy and grace, from its canonical spec. */
static void misfire_of(const sked_task_spec *spec, misfire_policy *p, int64_t *grace)
{
    const char *m = json_string_value(json_object_get(spec->json, "misfire"));
    *p = m && strcmp(m, "skip") == 0      ? MISFIRE_SKIP
         : m && strcmp(m, "run_all") == 0 ? MISFIRE_RUN_ALL
                                          : MISFIRE_RUN_ONCE;
    const char *g = json_string_value(json_object_get(spec->json, "misfire_grace"));
    *grace = 60 * SKED_USEC_PER_SEC;
    if (g)
        sked_duration_parse(g, strlen(g), grace, NULL);
}

/* A random delay in [0, max) microseconds. */
static int64_t jitter(int64_t max)
{
    if (max <= 0)
        return 0;
    uint64_t r;
    sked_random_bytes(&r, sizeof r);
    return (int64_t)(r % (uint64_t)max);
}

static void add(sked_advance *out, sked_walltime t, sked_walltime next,
                int64_t jit, int skipped, const char *reason)
{
    sked_occurrence *o = &out->occ[out->nocc++];
    o->scheduled_at = t;
    o->skipped = skipped;
    o->reason = reason;
    int64_t room = next == SKED_TIME_NONE ? jit : next - t;
    o->due_at = t + jitter(jit < room ? jit : room);
}

int sked_policy_advance(void *ctx, const sked_task_rec *task, int unfinished,
                        sked_advance *out)
{
    const sked_policy_ctx *pc = ctx;
    sked_task_spec spec;
    sked_err err;
    if (sked_task_spec_parse(task->spec, &spec, &err) < 0) {
        /* a spec this version cannot read must not stay first in line
         * for ever: the task ends, with no occurrence recorded */
        memset(out, 0, sizeof *out);
        out->next_run_at = SKED_TIME_NONE;
        out->state = SKED_TASK_COMPLETED;
        return 0;
    }
    const sked_schedule *s = &spec.sched;
    misfire_policy mp;
    int64_t grace;
    misfire_of(&spec, &mp, &grace);

    memset(out, 0, sizeof *out);
    out->state = SKED_TASK_ACTIVE;
    int64_t runs = task->run_count;
    sked_walltime t = task->next_run_at, next = SKED_TIME_NONE;
    int have_next = 0;
    /* a one-time task claimed ahead (its run released at its due time) */
    int ahead = s->kind == SKED_SCHED_AT && pc->once_horizon > pc->horizon;
    sked_walltime horizon = ahead ? pc->once_horizon : pc->horizon;
    while (t != SKED_TIME_NONE && t <= horizon && out->nocc < SKED_CLAIM_MAX_OCC) {
        if (s->max_runs && runs >= s->max_runs) {
            t = SKED_TIME_NONE;
            break;
        }
        have_next = sked_schedule_next(s, t, &next) == 0;
        if (!have_next)
            next = SKED_TIME_NONE;
        /* a one-time task is never late: it runs once, whenever found */
        int late = s->kind != SKED_SCHED_AT && t < pc->now - grace;
        if (late && mp == MISFIRE_SKIP)
            add(out, t, next, 0, 1, "misfire");
        else if (late && mp == MISFIRE_RUN_ONCE && have_next && next < pc->now - grace)
            add(out, t, next, 0, 1, "misfire"); /* a later one is late too */
        else
            add(out, t, next, late ? 0 : s->jitter_us, 0, NULL);
        runs++;
        t = next;
    }
    if (t != SKED_TIME_NONE && s->max_runs && runs >= s->max_runs)
        t = SKED_TIME_NONE;
    out->next_run_at = t;
    if (t == SKED_TIME_NONE)
        out->state = SKED_TASK_COMPLETED;
    /* Overlap is decided when a run is due (sched_dispatch.c), but a run
     * due by now, the only one recorded for a task with nothing
     * unfinished, cannot overlap anything: the claim records it
     * dispatched and it is published at once (a burst, a late claim).
     * So is one due within the premark lead: the claim is then its mark
     * ahead, one write instead of two (a burst's lead time); and a
     * one-time task's, however far ahead it is claimed. */
    int real = 0, k = -1;
    for (int i = 0; i < out->nocc; i++)
        if (!out->occ[i].skipped) {
            real++;
            k = i;
        }
    if (real == 1 && unfinished == 0 &&
        (ahead || out->occ[k].due_at - pc->dispatch_lead_us <= pc->now))
        out->occ[k].dispatch = 1;
    sked_task_spec_deinit(&spec);
    return 0;
}
