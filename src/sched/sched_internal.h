/*
 * sched_internal.h - the scheduler's state, shared by sched.c (timer
 * thread: claim, dispatch, sweep) and sched_events.c (events thread).
 */
#ifndef SKED_SCHED_INTERNAL_H
#define SKED_SCHED_INTERNAL_H

#include <pthread.h>

#include "core/metrics.h"
#include "sched/sched.h"

/* A claimed run waiting for its due time. */
typedef struct due_run {
    sked_run_rec rec;
    char *spec;                /* its task's canonical spec (owned) */
    uint64_t seq;              /* tie-break: claim order            */
} due_run;

/* Runs dispatched or running from this process, by run id, with their
 * task (for overlap).  Keyed by run so that forgetting a run twice (a
 * redelivered event, a cancel racing its finish) is harmless. */
typedef struct active_run {
    char run_id[SKED_ID_LEN + 1];
    char task_id[SKED_ID_LEN + 1];
    struct active_run *next;
} active_run;

typedef struct active_task {
    char task_id[SKED_ID_LEN + 1];
    int count;
    struct active_task *next;
} active_task;

/* queue_one: the one run of a task waiting for its previous run. */
typedef struct waiting_run {
    char task_id[SKED_ID_LEN + 1];
    char run_id[SKED_ID_LEN + 1];
    struct waiting_run *next;
} waiting_run;

struct sked_sched {
    sked_sched_config cfg;
    char owner[SKED_OWNER_MAX + 1];
    pthread_t timer, events;
    pthread_mutex_t mu;
    pthread_cond_t cond;       /* CLOCK_REALTIME: deadlines are wall times */
    int stop, wake;
    sked_consumer *consumer;   /* the events queue                         */

    /* timer thread only */
    due_run *heap;
    size_t nheap, capheap;
    uint64_t seq;

    /* under mu: overlap bookkeeping, both threads */
    active_task *active[256];
    active_run *active_runs[1024];
    waiting_run *waiting[256];

    /* metrics */
    sked_histogram *lag, *claim_seconds, *dispatch_seconds, *store_seconds;
};

/* Overlap bookkeeping (under s->mu): runs of a task in flight; add a run
 * when it is dispatched, forget it when it settles (idempotent). */
int sked_sched_active(sked_sched *s, const char *task_id);
void sked_sched_active_add(sked_sched *s, const char *task_id, const char *run_id);
void sked_sched_active_forget(sked_sched *s, const char *run_id);

/* Count a run reaching status (runs by status and queue). */
void sked_sched_count_status(const char *queue, sked_run_status st);

void *sked_sched_events_main(void *arg);

#endif
