/*
 * run.h - what travels with a run: its JSON for the API, the job message a
 * scheduler publishes for a worker, the events a worker sends back, and
 * the retry arithmetic.
 *
 * Messages are small JSON documents (DESIGN.md §7):
 *   job:      {"run_id","task_id","attempt","scheduled_at","queue",
 *              "spec":{the task's canonical spec, as stored}}
 *   started:  {"type":"started","run_id","attempt","worker","at"}
 *   finished: {"type":"finished","run_id","attempt","worker","at",
 *              "started_at","outcome","exit_code","http_status","error",
 *              "output"}
 *   heartbeat:{"type":"heartbeat","worker","host","queues":[..],
 *              "slots","busy","runs":[[run_id,attempt],..],"at","version"}
 * Times in messages are integer microseconds since the epoch.  A message
 * on the events queue holds one or more events, one per line (worker.c
 * packs what gathered; JSON text never holds a raw newline); a message on
 * a work queue one or more jobs, the same way (sched_publish.c packs up to
 * the scheduler's jobs_per_message).
 */
#ifndef SKED_RUN_H
#define SKED_RUN_H

#include <jansson.h>

#include "core/err.h"
#include "store/store.h"

/* The run as the API shows it (API.md "Run"); a new reference. */
json_t *sked_run_json(const sked_run_rec *r);

/* "scheduled", "dispatched", ... and back; -1 for an unknown name. */
const char *sked_run_status_name(sked_run_status s);
int sked_run_status_parse(const char *name);

/* The job message of run r of a task whose canonical spec is spec_text:
 * {"run_id", "task_id", "attempt", "scheduled_at", "dispatched_at",
 * "queue", "spec"}, the spec as stored; dispatched_at (left out when
 * none) tells this dispatch of the attempt from another one.  malloc'ed text; NULL when the spec is not an object. */
char *sked_job_message(const sked_run_rec *r, const char *spec_text,
                       size_t *len);

typedef enum sked_event_type {
    SKED_EVENT_STARTED = 0,
    SKED_EVENT_FINISHED = 1,
    SKED_EVENT_HEARTBEAT = 2,
    /* A job message came back from the broker (redelivered): the worker
     * that had it is gone.  The worker that got it again does not run it
     * but reports it; the scheduler charges the run an attempt if it had
     * started, else publishes it again (DESIGN.md §5) - as a new attempt
     * unless the event says `unstarted`.  Also a job a stopping worker
     * never started (it waited for a slot). */
    SKED_EVENT_RETURNED = 3,
    /* Not an event but an order, to one worker's inbox (worker.h): stop
     * this attempt of this run (its start came too late), or every
     * attempt of it when attempt is 0 (canceled through the API). */
    SKED_EVENT_CANCEL = 4,
} sked_event_type;

typedef struct sked_event {
    sked_event_type type;
    char run_id[SKED_ID_LEN + 1];
    int attempt;
    char worker[SKED_WORKER_MAX + 1];
    sked_walltime at;
    /* returned: the job came in a first delivery (not redelivered) and
     * its attempt did not run on this worker when it was taken, and it
     * never started: published again as the same attempt, if the event is
     * about the dispatch the store holds (dispatched_at below).  Absent
     * (0): the scheduler must assume it may have run. */
    int unstarted;
    /* returned: the dispatched_at of the job message (SKED_TIME_NONE when
     * it had none): an event about an earlier dispatch of the run than
     * the one the store holds is stale, and changes nothing */
    sked_walltime dispatched_at;
    /* finished */
    sked_walltime started_at;  /* when it started (SKED_TIME_NONE: never):
                                  with several schedulers the finished
                                  event may be written before the started */
    int outcome;               /* sked_job_outcome (worker/exec.h)       */
    int32_t exit_code;         /* SKED_NO_CODE when none                 */
    int32_t http_status;       /* 0 when none                            */
    char *error;               /* malloc'ed or NULL                      */
    char *output;              /* malloc'ed or NULL                      */
    /* heartbeat */
    char host[128];
    char *queues;              /* JSON array text, malloc'ed             */
    int slots, busy;
    char (*runs)[SKED_ID_LEN + 1]; /* running run ids, malloc'ed         */
    int *run_attempts;
    size_t nruns;
} sked_event;

char *sked_event_encode(const sked_event *e, size_t *len);
/* Decode; on error SKED_EINVAL and nothing allocated. */
int sked_event_decode(const char *text, size_t len, sked_event *e, sked_err *err);
void sked_event_deinit(sked_event *e);

/* Retry policy of a spec: the due time of attempt `attempt + 1` after
 * attempt `attempt` failed at `now`, or SKED_ENOFIRE when no attempt is
 * left.  backoff * multiplier^(attempt-1), capped at max_backoff, plus up
 * to 10% random jitter. */
int sked_retry_due(const char *spec_text, int attempt, sked_walltime now,
                   sked_walltime *due);

#endif
