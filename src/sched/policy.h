/*
 * policy.h - what a claim records for one due task: the occurrences (run
 * or skip), jitter, misfire handling, end of schedule.
 *
 * sked_policy_advance is the store's sked_advance_fn (store.h): it runs
 * inside the claim transaction, so it only computes — no I/O, no locks.
 *
 * Misfire (occurrences found late, after an outage): an occurrence is
 * misfired when it is more than the task's misfire_grace before `now`.
 *   run_once: the latest misfired occurrence runs, the older ones are
 *             recorded as skipped (reason "misfire");
 *   skip:     every misfired occurrence is recorded as skipped;
 *   run_all:  every misfired occurrence runs, oldest first.
 * Occurrences on time are recorded as scheduled up to the claim horizon.
 * Jitter delays due_at by a random amount up to the task's jitter, never
 * to or past the next occurrence.  Overlap is decided later, when a run is
 * due (sched.c), because only then is it known whether the previous run
 * has finished.
 */
#ifndef SKED_POLICY_H
#define SKED_POLICY_H

#include "core/clock.h"
#include "store/store.h"

typedef struct sked_policy_ctx {
    sked_walltime now;
    sked_walltime horizon;
    /* A one-time task's occurrence is recorded up to here when later than
     * horizon (sked_claim.once_horizon), and dispatched by the claim
     * whenever it is (its task has nothing unfinished): it goes out at its
     * due time, one write however early it was claimed. */
    sked_walltime once_horizon;
    /* An occurrence due within this of now (and alone, of a task with
     * nothing unfinished) is recorded dispatched by the claim, to be
     * published at its due time (the scheduler's premark lead; 0: only
     * those due by now). */
    int64_t dispatch_lead_us;
} sked_policy_ctx;

/* The sked_advance_fn: ctx is a sked_policy_ctx.  Returns 0, or a
 * negative code when the task's spec cannot be read (the claim then leaves
 * the task alone). */
int sked_policy_advance(void *ctx, const sked_task_rec *task, int unfinished,
                        sked_advance *out);

#endif
