/*
 * exec.h - the executor: runs shell commands and HTTP requests, hundreds
 * at once, on one thread of its own, without a thread per run.
 *
 * Shell: /bin/sh -c COMMAND via posix_spawn, in its own process group, with
 * the job's environment (the worker's, plus SKED_TASK_ID, SKED_RUN_ID,
 * SKED_SCHEDULED_AT (RFC 3339), SKED_ATTEMPT, plus the task's env), working
 * directory, stdin from /dev/null, stdout+stderr captured together into a
 * bounded tail (the last max_output bytes).  Timeout: SIGTERM to the group,
 * then SIGKILL after the grace.  Exit 0 = succeeded.  Runs start in idle
 * shells spawned ahead of time when the pool has one (shell_pool), so a
 * burst does not wait for one posix_spawn after another.
 * HTTP: libcurl multi; method, URL, headers, body, X-Sked-Run-Id header,
 * timeout; status within [expect_lo, expect_hi] = succeeded; response body
 * tail captured.  SSRF guard: the resolved address is checked at connect
 * time against deny/allow networks (default deny: 169.254.0.0/16,
 * fe80::/10, and the metadata addresses 169.254.169.254, fd00:ec2::254).
 *
 * Callbacks run on the executor's thread: they must be quick and must not
 * call back into the executor except sked_exec_submit/cancel.
 */
#ifndef SKED_EXEC_H
#define SKED_EXEC_H

#include <stddef.h>
#include <stdint.h>

#include "core/clock.h"
#include "core/err.h"

typedef enum sked_job_kind { SKED_JOB_SHELL = 0, SKED_JOB_HTTP = 1 } sked_job_kind;

typedef enum sked_job_outcome {
    SKED_JOB_SUCCEEDED = 0,
    SKED_JOB_FAILED = 1,       /* non-zero exit, signal, unexpected HTTP status, spawn/connect error */
    SKED_JOB_TIMED_OUT = 2,
    SKED_JOB_CANCELED = 3,     /* sked_exec_cancel or sked_exec_free */
} sked_job_outcome;

/* One execution.  Strings and arrays are owned by the job (freed by
 * sked_job_free).  The executor owns a submitted job until its done
 * callback returns; the callback may keep it (and free it later). */
typedef struct sked_job {
    char run_id[40], task_id[40];
    int attempt;
    sked_walltime scheduled_at;
    sked_walltime dispatched_at; /* its dispatch (SKED_TIME_NONE: unsaid) */
    sked_job_kind kind;
    int64_t timeout_us;
    /* shell */
    char *command;
    char **env;                /* NULL-terminated "K=V" list, or NULL   */
    char *cwd;                 /* or NULL                               */
    /* http */
    char *url, *method, *body; /* body may be NULL                      */
    char **headers;            /* NULL-terminated "Name: value", or NULL */
    int expect_lo, expect_hi;
    void *user;                /* the caller's                          */
} sked_job;

typedef struct sked_job_result {
    sked_job_outcome outcome;
    sked_walltime started_at;  /* process spawned / request sent        */
    sked_walltime finished_at;
    int exit_code;             /* shell: exit status, or -1             */
    int term_signal;           /* shell: the signal that ended it, or 0 */
    int http_status;           /* http: status, or 0                    */
    char error[256];           /* "" on success                         */
    char *output;              /* tail of output, malloc'ed, NUL-terminated; freed after done() */
    size_t output_len;
} sked_job_result;

typedef struct sked_exec_config {
    size_t max_output;         /* bytes of output tail kept; 0: 64 KiB   */
    int64_t kill_grace_us;     /* SIGTERM -> SIGKILL; 0: 5 s             */
    const char *const *http_deny;   /* CIDRs; NULL: the default deny list */
    const char *const *http_allow;  /* CIDRs; NULL: everything else allowed */
    /* Idle shells kept spawned for shell runs: n > 0 keeps n, 0 keeps
     * min(slots, 128), < 0 turns the pool off (each run is spawned when
     * it starts).  Off as well when /dev/fd is missing. */
    int shell_pool;
    int slots;                 /* runs the caller has at once at most (the
                                  worker's slots), to size the pool; 0: 100 */
    /* Called when a job starts (process spawned or request being sent). */
    void (*started)(void *ctx, sked_job *job, sked_walltime at);
    /* Called once per job when it ends, whatever the outcome. */
    void (*done)(void *ctx, sked_job *job, const sked_job_result *res);
    void *ctx;
} sked_exec_config;

typedef struct sked_exec sked_exec;

/* Start the executor thread.  On error nothing runs. */
int sked_exec_new(const sked_exec_config *cfg, sked_exec **out, sked_err *err);

/* Hand a job over (thread-safe).  It starts at once.  Returns 0, or an
 * error (the job stays the caller's). */
int sked_exec_submit(sked_exec *ex, sked_job *job, sked_err *err);

/* The same, but the job waits until the next sked_exec_submit or
 * sked_exec_kick: jobs that arrived together are then started together,
 * in one pass of the executor, before any of their shells competes for
 * the CPU with the hand-over of the others. */
int sked_exec_submit_held(sked_exec *ex, sked_job *job, sked_err *err);
void sked_exec_kick(sked_exec *ex);

/* Cancel attempt `attempt` of run_id if it is running, or every attempt
 * of it that is when attempt is 0 (thread-safe): the process group gets
 * SIGTERM, then SIGKILL after the grace; an HTTP request is aborted.  Its
 * done() reports SKED_JOB_CANCELED.  SKED_ENOENT if none. */
int sked_exec_cancel(sked_exec *ex, const char *run_id, int attempt);

/* Jobs running now. */
int sked_exec_running(sked_exec *ex);

typedef struct sked_shell_pool_stats {
    int size;                  /* idle shells the pool keeps; 0: pool off */
    int idle;                  /* idle shells now                         */
    uint64_t spawned;          /* pool shells spawned so far              */
    uint64_t used;             /* shell runs started in a pool shell      */
    uint64_t direct;           /* shell runs spawned directly although the
                                  pool is on: it was empty, the script was
                                  over 32 KiB, or a pool shell had died   */
} sked_shell_pool_stats;

/* The shell pool's state now (thread-safe); all zero when it is off. */
void sked_exec_pool_stats(sked_exec *ex, sked_shell_pool_stats *out);

/* Cancel everything, wait for the done() calls, stop the thread, free. */
void sked_exec_free(sked_exec *ex);

/* Free a job and everything it owns. */
void sked_job_free(sked_job *job);

#endif
