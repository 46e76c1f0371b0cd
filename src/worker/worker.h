/*
 * worker.h - a worker: consumes job messages from named queues, runs each
 * with the executor (exec.h), and reports started/finished/heartbeat
 * events on the "sked.events" queue.  It needs only the queue, never the
 * store (DESIGN.md §1, §6).
 *
 * A delivery is acknowledged only after its finished event was published,
 * so a worker that dies mid-run leaves the message to be redelivered (and
 * the run's lease to expire): the run is never silently lost.
 */
#ifndef SKED_WORKER_H
#define SKED_WORKER_H

#include "core/err.h"
#include "queue/queue.h"
#include "worker/exec.h"

typedef struct sked_worker_config {
    sked_queue *queue;
    const char *id;                 /* e.g. "host/pid"; default built from both */
    const char *const *queues;      /* NULL-terminated; NULL: {"default"}       */
    int slots;                      /* concurrent runs; 0: 100                  */
    int64_t heartbeat_us;           /* 0: 5 s                                   */
    int64_t drain_us;               /* on stop, wait this long for runs; 0: 10 s */
    size_t max_output;              /* output tail kept per run; 0: 64 KiB      */
    int shell_pool;                 /* idle pre-spawned shells (exec.h);
                                       0: min(slots, 128); < 0: none        */
    const char *const *http_deny;   /* CIDRs (exec.h); NULL: the default list   */
    const char *const *http_allow;
} sked_worker_config;

typedef struct sked_worker sked_worker;

int sked_worker_start(const sked_worker_config *cfg, sked_worker **out,
                      sked_err *err);

/* Cancel run_id if this worker runs it, every attempt of it (its process
 * group is killed).  SKED_ENOENT when it does not. */
int sked_worker_cancel(sked_worker *w, const char *run_id);

/* Slots in use now, and in all. */
int sked_worker_busy(sked_worker *w);
int sked_worker_slots(sked_worker *w);

/* Idle pre-spawned shells now (0 when the pool is off). */
int sked_worker_shell_pool_idle(sked_worker *w);

/* Stop taking work, let running runs finish for up to drain_us (their
 * events are sent as usual), kill what still runs without reporting it
 * (its lease runs out: a lost attempt), stop the threads, free. */
void sked_worker_stop(sked_worker *w);

/* Every worker consumes its own inbox, the queue "sked.inbox.<id>" (on
 * RabbitMQ it expires a minute after its worker is gone): orders for that
 * worker, today only cancel.  Ask worker_id to stop attempt of run_id
 * (every attempt of it when attempt is 0), if it runs it (a no-op
 * otherwise). */
int sked_worker_send_cancel(sked_queue *q, const char *worker_id, const char *run_id,
                            int attempt, sked_err *err);

/* Decode a job message (model/run.h) into a new job; for tests too. */
int sked_job_decode(const char *text, size_t len, sked_job **out, sked_err *err);

#endif
