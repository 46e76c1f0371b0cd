/*
 * store.h - where sked keeps tasks, runs, tokens and workers.
 *
 * A store backend is a versioned table of function pointers, after SQLite's
 * sqlite3_vfs: `version` and `name` come first, methods are only ever
 * appended, and the core calls the thin sked_store_* wrappers below, never
 * the table.  Backends are found by URL scheme: "sqlite:PATH" (embedded,
 * default) and "postgres://..." (distributed).  The wrappers check what
 * every backend relies on in its arguments (non-empty ids and names within
 * their lengths, known states and roles, claim limits, run records) and
 * reject it with SKED_EINVAL naming the field: backends do not check it
 * again.
 *
 * Contract for every method:
 *   - returns 0 or a negative SKED_E* code, with detail in err;
 *   - a failed method changed nothing (each write is one transaction);
 *   - a method that returned 0 for a write has made it durable (SQLite
 *     synchronous=FULL in WAL, PostgreSQL COMMIT), except the changes the
 *     caller said it may lose (sked_run_change.may_lose,
 *     sked_claim.may_lose; SQLite's pruning and heartbeats), which survive
 *     a crash of the process and are synced within moments;
 *   - methods are safe to call from many threads at once on one sked_store;
 *   - strings handed in are borrowed for the call; records handed out are
 *     owned by the caller and released with the matching *_deinit function.
 *
 * Change procedure: to add a method, append it to sked_store_ops, bump
 * SKED_STORE_OPS_VERSION, add a wrapper that returns SKED_ENOTSUP when
 * ops->version is older, and add its cases to tests/backend/test_store.c,
 * which every backend runs.
 */
#ifndef SKED_STORE_H
#define SKED_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "core/clock.h"
#include "core/err.h"

#define SKED_STORE_OPS_VERSION 3

/* "No time" in a sked_walltime column (next_run_at of a paused task...). */
#define SKED_TIME_NONE INT64_MIN

#define SKED_ID_LEN 36   /* UUID text, without the NUL */
#define SKED_NS_MAX 63   /* namespace and queue names  */
#define SKED_NAME_MAX 200

typedef enum sked_task_state {
    SKED_TASK_ACTIVE = 0,
    SKED_TASK_PAUSED = 1,
    SKED_TASK_COMPLETED = 2,
} sked_task_state;

/* A task as the store keeps it.  The user's specification travels as JSON
 * text (`spec`, canonical: validated, defaults filled, see model/task.h);
 * the store reads from it only what it filters on. */
typedef struct sked_task_rec {
    char id[SKED_ID_LEN + 1];
    char ns[SKED_NS_MAX + 1];
    char *name;                /* NULL: no name                         */
    char queue[SKED_NS_MAX + 1];
    char *spec;                /* canonical spec JSON, NUL-terminated    */
    sked_task_state state;
    sked_walltime next_run_at; /* SKED_TIME_NONE when nothing is due     */
    int64_t run_count;
    int64_t version;           /* 1 on create, +1 on every change        */
    sked_walltime created_at, updated_at;
} sked_task_rec;

/* Release what a record owns (name, spec); the struct itself is the
 * caller's. */
void sked_task_rec_deinit(sked_task_rec *r);

/* Filters of a task listing.  NULL / empty fields do not filter. */
typedef struct sked_task_filter {
    const char *ns;            /* required */
    int state;                 /* -1: any */
    const char *queue;
    const char *label_key;     /* with label_value: spec.labels[key] == value */
    const char *label_value;
    const char *name_prefix;
    const char *after_id;      /* cursor: ids strictly greater */
    int limit;                 /* 1..1000 */
} sked_task_filter;

typedef struct sked_task_page {
    sked_task_rec *recs;       /* n records, ordered by id ascending     */
    size_t n;
    int more;                  /* more records follow the last one       */
} sked_task_page;

void sked_task_page_deinit(sked_task_page *p);

/* An API token.  Only its SHA-256 (hex) is stored. */
typedef enum sked_role {
    SKED_ROLE_READ = 0,
    SKED_ROLE_WRITE = 1,
    SKED_ROLE_SHELL = 2,
    SKED_ROLE_ADMIN = 3,
} sked_role;

typedef struct sked_token_rec {
    char id[SKED_ID_LEN + 1];
    char hash[65];
    char ns[SKED_NS_MAX + 1];
    sked_role role;
    sked_walltime created_at;
    sked_walltime revoked_at;  /* SKED_TIME_NONE while valid */
} sked_token_rec;

/* A remembered Idempotency-Key: the same key and request hash within a
 * namespace give back the task created the first time. */
typedef struct sked_idem {
    const char *key;           /* NULL: no idempotency */
    const char *request_hash;  /* hex SHA-256 of the request body */
} sked_idem;

/* A run: one occurrence of a task (DESIGN.md §5). */
typedef enum sked_run_status {
    SKED_RUN_SCHEDULED = 0,
    SKED_RUN_DISPATCHED = 1,
    SKED_RUN_RUNNING = 2,
    SKED_RUN_SUCCEEDED = 3,
    SKED_RUN_FAILED = 4,
    SKED_RUN_TIMED_OUT = 5,
    SKED_RUN_SKIPPED = 6,
    SKED_RUN_CANCELED = 7,
} sked_run_status;

/* Bit of a status in a status mask: SKED_RUN_BIT(SKED_RUN_RUNNING). */
#define SKED_RUN_BIT(s) (1u << (s))
#define SKED_RUN_UNFINISHED \
    (SKED_RUN_BIT(SKED_RUN_SCHEDULED) | SKED_RUN_BIT(SKED_RUN_DISPATCHED) | \
     SKED_RUN_BIT(SKED_RUN_RUNNING))

#define SKED_NO_CODE INT32_MIN /* exit_code absent */
#define SKED_WORKER_MAX 127
#define SKED_OWNER_MAX 63

typedef struct sked_run_rec {
    char id[SKED_ID_LEN + 1];
    char task_id[SKED_ID_LEN + 1];
    char ns[SKED_NS_MAX + 1];
    sked_walltime scheduled_at;
    sked_walltime due_at;           /* next publish: scheduled + jitter, or retry time */
    sked_run_status status;
    char reason[16];                /* "", "overlap", "misfire"            */
    int attempt;                    /* 1 for the first                     */
    char queue[SKED_NS_MAX + 1];
    char worker[SKED_WORKER_MAX + 1];
    char lease_owner[SKED_OWNER_MAX + 1];  /* "" when none                */
    sked_walltime lease_expires_at; /* SKED_TIME_NONE when none; stored as
                                       none whenever lease_owner is ""    */
    sked_walltime dispatched_at, started_at, finished_at; /* or NONE       */
    /* DISPATCHED: when the write that recorded it so began, on its
     * scheduler's clock (a run marked ahead has its due time as
     * dispatched_at, which may lie well after); stored only with that
     * status, NONE otherwise and for runs recorded before the store kept
     * it.  Not part of the API's run. */
    sked_walltime marked_at;
    int64_t lag_us;                 /* SKED_TIME_NONE until started        */
    int32_t exit_code;              /* SKED_NO_CODE when none              */
    int32_t http_status;            /* 0 when none                         */
    char *error;                    /* malloc'ed or NULL                   */
    char *output;                   /* malloc'ed or NULL (bounded tail)    */
} sked_run_rec;

/* Free error and output. */
void sked_run_rec_deinit(sked_run_rec *r);
/* What a store keeps as r's marked_at: r->marked_at when r is DISPATCHED,
 * else SKED_TIME_NONE. */
sked_walltime sked_run_marked_at(const sked_run_rec *r);

/* The claim (sked_store_claim_due).  For each active task whose
 * next_run_at <= horizon, the store calls advance() inside its transaction;
 * advance fills the occurrences to record and the task's new
 * next_run_at/state (the policies live in the caller, src/sched/policy.c).
 * `unfinished` is how many runs of the task are scheduled, dispatched or
 * running right now (for the overlap policy).  *out arrives with nocc 0,
 * next_run_at SKED_TIME_NONE and state ACTIVE.  advance must only compute:
 * it may be called again for the same task when the store retries its
 * transaction.  When it returns < 0 (or hands back an impossible result)
 * the task is left as it is, so it stays due: a policy should rather
 * complete a task it can never advance. */
#define SKED_CLAIM_MAX_OCC 64

typedef struct sked_occurrence {
    sked_walltime scheduled_at;
    sked_walltime due_at;           /* scheduled_at + jitter               */
    int skipped;                    /* record as skipped, with reason      */
    const char *reason;             /* static: "overlap", "misfire"        */
    /* Record it DISPATCHED, leased to the owner for dispatch_lease_us
     * from the later of now and its due time (its dispatched_at), and
     * hand it back in `dispatched` to be published then: for a run due by
     * the claim's now, or within the scheduler's premark lead, whose task
     * has nothing unfinished (no overlap can arise), one write instead of
     * a claim and a mark.  Ignored when skipped or when the claim's
     * dispatch_lease_us is 0. */
    int dispatch;
} sked_occurrence;

typedef struct sked_advance {
    sked_occurrence occ[SKED_CLAIM_MAX_OCC];
    int nocc;
    sked_walltime next_run_at;      /* SKED_TIME_NONE: nothing more        */
    sked_task_state state;          /* ACTIVE, or COMPLETED                */
} sked_advance;

typedef int (*sked_advance_fn)(void *ctx, const sked_task_rec *task,
                               int unfinished, sked_advance *out);

typedef struct sked_claim {
    /* in */
    const char *owner;              /* lease owner: this scheduler's id    */
    sked_walltime now;
    sked_walltime horizon;          /* claim what is due up to here        */
    /* ... and one-time tasks (an `at` schedule: one occurrence, so
     * nothing is recorded ahead but that) up to here, when later than
     * horizon: their runs can be recorded well before they are due. */
    sked_walltime once_horizon;
    int limit;                      /* at most this many tasks, free runs
                                       and returned runs (1..10000)       */
    int64_t lease_us;               /* lease = max(due_at, now) + lease_us:
                                       a run found late is not born with
                                       an expired lease                   */
    sked_advance_fn advance;
    void *ctx;
    /* Runs the owner is dispatching right now, whose marks it may not have
     * written yet: left out of the answer (and of its limit), so a claim
     * made during a dispatch brings the runs after them.  May be empty. */
    const char *const *exclude;
    size_t nexclude;
    int64_t dispatch_lease_us;      /* lease of a run recorded dispatched;
                                       0: none is (sked_occurrence)       */
    int may_lose;                   /* the caller recovers this claim if
                                       it is lost (sked_run_change)       */
    /* out: every run now SCHEDULED and leased to owner with due_at <=
     * horizon: new occurrences, retries that came due, runs whose lease
     * expired, triggered runs, and the runs earlier claims of this owner
     * leased that are still scheduled (so each claim returns the owner's
     * whole due set again, but for `exclude`: replace, don't add).  Earliest due_at first
     * (then id), at most limit.  specs[i] is the canonical spec of
     * runs[i]'s task (malloc'ed), NULL when the task no longer exists.
     * Free with sked_claim_deinit (on error too).  On error the out
     * fields are empty but `dispatched` (below). */
    sked_run_rec *runs;
    char **specs;
    size_t nruns;
    int more;                       /* a limit was reached: claim again
                                       (once these are published)         */
    /* out: the occurrences recorded DISPATCHED (sked_occurrence.dispatch)
     * that were new, as stored, with their tasks' specs: publish them at
     * their dispatched_at.
     * Never also in runs.  On an error that leaves the outcome unknown
     * (SKED_EUNAVAIL from PostgreSQL when the connection broke during the
     * COMMIT) they are here too, as the claim would have recorded them:
     * the caller reads them back and publishes those the store has so.
     * SQLite's failures are never in doubt. */
    sked_run_rec *dispatched;
    char **dispatched_specs;
    size_t ndispatched;
} sked_claim;

void sked_claim_deinit(sked_claim *c);

/* For the backends' claims.  1 when claim c records occurrence o of task
 * t dispatched (o->dispatch, not skipped, a dispatch lease given), with
 * *out the run as it is then stored (id run_id); else 0. */
int sked_claim_dispatched_rec(const sked_claim *c, const sked_task_rec *t,
                              const char *run_id, const sked_occurrence *o,
                              sked_run_rec *out);
/* Append r (its error and output taken over) and a copy of spec to the
 * list (*runs, *specs, *n); SKED_ENOMEM. */
int sked_claim_list_add(sked_run_rec **runs, char ***specs, size_t *n,
                        const sked_run_rec *r, const char *spec, sked_err *err);
/* Free such a list and empty it. */
void sked_claim_list_free(sked_run_rec **runs, char ***specs, size_t *n);

/* One transition of a run, applied only if the stored run still has
 * `attempt` and a status in `from` (fencing: a late event of an attempt
 * that is no longer current changes nothing).  The stored row becomes
 * *rec (every column but id, task_id, ns, scheduled_at, queue); the run is
 * found by rec->id alone. */
typedef struct sked_run_change {
    const sked_run_rec *rec;
    int attempt;
    unsigned from;                  /* mask of SKED_RUN_BIT(status)        */
    /* The caller recovers this change if it is lost: it may be written
     * without waiting for the disk (SQLite: a commit of only such changes
     * runs with synchronous=OFF, so it survives a crash of the process
     * but maybe not of the machine).  Backends may ignore it (PostgreSQL
     * does: a standby must have every change before a failover). */
    int may_lose;
    /* Non-NULL: fenced on the stored lease_owner too (a give-back must not
     * undo another scheduler's mark of the same attempt). */
    const char *owner;
    /* Non-zero: fenced on the stored dispatched_at too (a worker's
     * `returned` about one dispatch must not undo the next dispatch of
     * the same attempt).  A run's dispatched_at is never 0. */
    sked_walltime dispatched_fence;
    int result;                     /* out: 0 applied, SKED_EPRECOND fenced,
                                       SKED_ENOENT no such run            */
} sked_run_change;

typedef struct sked_run_filter {
    const char *ns;                 /* required                            */
    const char *task_id;            /* NULL: all tasks                     */
    unsigned status_mask;           /* 0: any                              */
    sked_walltime since, until;     /* scheduled_at >= since and < until;
                                       SKED_TIME_NONE: open               */
    const char *before_id;          /* cursor: ids strictly smaller (runs
                                       added later have larger ids, so a
                                       walk sees every older run once)    */
    int limit;                      /* 1..1000                             */
} sked_run_filter;

typedef struct sked_run_page {
    sked_run_rec *recs;             /* newest first (id descending)        */
    size_t n;
    int more;
} sked_run_page;

void sked_run_page_deinit(sked_run_page *p);

typedef struct sked_worker_rec {
    char id[SKED_WORKER_MAX + 1];
    char host[128];
    char *queues;                   /* JSON array text, malloc'ed          */
    int slots, busy;
    sked_walltime last_heartbeat;
    char version[32];
} sked_worker_rec;

/* A scheduler's heartbeat row.  published_to is its watermark: every run
 * it recorded DISPATCHED with a dispatched_at before that time has been
 * published or given back.  So when its beats stop, only its DISPATCHED
 * runs from published_to on may be in no queue (sched_beat.c). */
typedef struct sked_sched_rec {
    char id[SKED_OWNER_MAX + 1];
    int64_t beats;                  /* counts up while it lives            */
    sked_walltime beat_at;          /* its clock at the beat               */
    sked_walltime published_to;
    /* In, to sched_beat: keep the stored published_to where it is the
     * smaller (a new life whose previous one's runs are not taken over
     * yet must not raise its watermark).  Read back as 0. */
    int keep_older;
} sked_sched_rec;

typedef struct sked_store sked_store;

typedef struct sked_store_ops {
    int version;               /* SKED_STORE_OPS_VERSION of the backend */
    const char *name;          /* "sqlite", "postgres" */
    const char *scheme;        /* URL scheme it serves, without ':' */

    /* Open the store at url, creating and migrating it as needed.  On
     * error nothing is left open. */
    int (*open)(const char *url, sked_store **out, sked_err *err);
    void (*close)(sked_store *st);
    /* Cheap round trip: 0 when the store answers (for /readyz). */
    int (*ping)(sked_store *st, sked_err *err);

    /* Insert n tasks, all or nothing.  Errors: SKED_ECONFLICT with
     * err->field "name" (and the index in err->column, 1-based) when a
     * name is taken in the namespace or repeated in the batch.
     * Idempotency (idem->key not NULL): when the key was seen in recs[0].ns
     * with the same request_hash, nothing is inserted, SKED_EEXIST is
     * returned and recs[0].id is overwritten with the first task's id;
     * with another hash, SKED_ECONFLICT with err->field "Idempotency-Key".
     * Otherwise the key is remembered with recs[0].id in the same
     * transaction. */
    int (*task_insert)(sked_store *st, sked_task_rec *recs, size_t n,
                       const sked_idem *idem, sked_err *err);
    /* The task of namespace ns whose id, or else name, is key.
     * SKED_ENOENT when there is none. */
    int (*task_get)(sked_store *st, const char *ns, const char *key,
                    sked_task_rec *out, sked_err *err);
    /* A page of tasks, by id ascending. */
    int (*task_list)(sked_store *st, const sked_task_filter *f,
                     sked_task_page *out, sked_err *err);
    /* Write rec over the stored task rec->id of rec->ns (name, queue, spec,
     * state, next_run_at, run_count), setting version = old version + 1 and
     * updated_at = rec->updated_at; on success rec->version holds the new
     * version.  expect_version > 0: SKED_EPRECOND when the stored version
     * differs.  SKED_ENOENT, SKED_ECONFLICT (name taken) as above. */
    int (*task_update)(sked_store *st, sked_task_rec *rec,
                       int64_t expect_version, sked_err *err);
    /* Delete task id of namespace ns and, in the same transaction, set
     * its unfinished runs to CANCELED (finished_at = now, error "task
     * deleted"); the run history stays.  SKED_ENOENT when there is none. */
    int (*task_delete)(sked_store *st, const char *ns, const char *id,
                       sked_err *err);

    /* Tokens.  token_find: by hash, SKED_ENOENT when unknown or revoked. */
    int (*token_insert)(sked_store *st, const sked_token_rec *t, sked_err *err);
    int (*token_find)(sked_store *st, const char *hash, sked_token_rec *out,
                      sked_err *err);
    /* All tokens (ns NULL) or those of one namespace, oldest first; *out is
     * malloc'ed, free() it. */
    int (*token_list)(sked_store *st, const char *ns, sked_token_rec **out,
                      size_t *n, sked_err *err);
    /* Revoke token id (of namespace ns unless ns is NULL).  SKED_ENOENT. */
    int (*token_revoke)(sked_store *st, const char *ns, const char *id,
                        sked_walltime at, sked_err *err);

    /* Scheduling.  claim_due: see sked_claim; one transaction. */
    int (*claim_due)(sked_store *st, sked_claim *c, sked_err *err);
    /* Apply n changes in one transaction; each gets its own result (a
     * fenced change is not an error of the call).  Errors of the call
     * itself (I/O): nothing applied. */
    int (*run_update)(sked_store *st, sked_run_change *changes, size_t n,
                      sked_err *err);
    /* Runs DISPATCHED or RUNNING whose lease expired before now (their
     * scheduler or worker is gone), oldest lease first, at most limit
     * (1..100000; out->more when there are more); with their task's spec as in
     * sked_claim (only the out fields are used).  Reads only: the caller
     * decides and writes through run_update. */
    int (*sweep_expired)(sked_store *st, sked_walltime now, int limit,
                         sked_claim *out, sked_err *err);
    /* Insert one run (a trigger), counted in its task's run_count:
     * SKED_ECONFLICT when (task_id, scheduled_at) exists (err->field
     * "scheduled_at") or the id does ("id"); SKED_ENOENT when the task
     * does not exist in r->ns. */
    int (*run_insert)(sked_store *st, const sked_run_rec *r, sked_err *err);
    /* Run id of namespace ns (of any namespace when ns is NULL: the
     * scheduler's lookups by id); SKED_ENOENT.  Release with
     * sked_run_rec_deinit. */
    int (*run_get)(sked_store *st, const char *ns, const char *id,
                   sked_run_rec *out, sked_err *err);
    /* A page of runs, newest (largest id) first; see sked_run_filter. */
    int (*run_list)(sked_store *st, const sked_run_filter *f,
                    sked_run_page *out, sked_err *err);
    /* Retention: delete finished runs (status SUCCEEDED..CANCELED) whose
     * finished_at is before older_than (SKED_TIME_NONE: no age rule), and
     * those beyond the newest (by scheduled_at) keep_per_task finished
     * runs of their task (<= 0: no count rule); at most limit
     * (1..100000) rows per call.  *deleted receives the count.  A backend may work through a
     * large table a slice per call, resuming where the previous call
     * stopped, so one call never holds the store for long: call it
     * periodically, and again at once while *deleted == limit. */
    int (*run_prune)(sked_store *st, sked_walltime older_than,
                     int keep_per_task, int limit, int64_t *deleted,
                     sked_err *err);
    /* Workers: upsert by id on each heartbeat (queues NULL is stored as
     * "[]"); list those whose last heartbeat is after `since`, by id
     * (malloc'ed array; free each queues and the array). */
    int (*worker_upsert)(sked_store *st, const sked_worker_rec *w,
                         sked_err *err);
    int (*worker_list)(sked_store *st, sked_walltime since,
                       sked_worker_rec **out, size_t *n, sked_err *err);

    /* Version 2: what schedulers need to know of each other. */
    /* counts[i] = runs of task_ids[i] dispatched or running now, whichever
     * process dispatched them (the overlap policy across schedulers). */
    int (*tasks_active)(sked_store *st, const char *const *task_ids,
                        size_t n, int *counts, sked_err *err);
    /* Wait up to timeout_us for another process's write that makes
     * something due soon (a task created, changed, resumed or triggered;
     * a retry).  0 when woken, SKED_EAGAIN when the time ran out,
     * SKED_EUNAVAIL when the store cannot be reached (after waiting).
     * NULL in a backend that only one process uses (SQLite): the wrapper
     * answers SKED_ENOTSUP, and the process wakes its scheduler itself.
     * One thread at a time per store. */
    int (*wait_wake)(sked_store *st, int64_t timeout_us, sked_err *err);
    /* Runs by id in any namespace, in one round trip: found[i] says
     * whether out[i] was filled (deinit those).  With specs (else NULL),
     * specs[i] is then the canonical spec its task has now (malloc'ed;
     * NULL once the task is deleted).  The wrapper calls run_get for each
     * id when a backend lacks it (SKED_ENOTSUP then with specs). */
    int (*run_get_many)(sked_store *st, const char *const *ids, size_t n,
                        sked_run_rec *out, int *found, char **specs, sked_err *err);

    /* Version 3: schedulers' heartbeats, and the runs a dead one may have
     * left unpublished. */
    /* In one transaction: read every scheduler's row as it was before,
     * write row *me (insert or replace) and delete the rows of other
     * schedulers whose beat_at is before prune_before.  *out (malloc'ed,
     * free() it) holds the rows read, by id; me's own old row among them
     * when it had one (a previous life of the same id). */
    int (*sched_beat)(sked_store *st, const sked_sched_rec *me,
                      sked_walltime prune_before, sked_sched_rec **out,
                      size_t *n, sked_err *err);
    /* Runs DISPATCHED, leased to owner, with dispatched_at >= since and
     * marked before marked_before (marked_at; dispatched_at for a run
     * without one): earliest dispatched_at first (then id), at most limit
     * (out->more when there are more), with their task's spec as in
     * sked_claim (only the out fields are used).  Reads only. */
    int (*runs_in_doubt)(sked_store *st, const char *owner,
                         sked_walltime since, sked_walltime marked_before,
                         int limit, sked_claim *out, sked_err *err);
} sked_store_ops;

/* Every store instance begins with a pointer to its ops. */
struct sked_store {
    const sked_store_ops *ops;
};

/* Open the backend whose scheme starts url ("sqlite:/var/lib/sked/db").
 * SKED_EINVAL for an unknown scheme. */
int sked_store_open(const char *url, sked_store **out, sked_err *err);
void sked_store_close(sked_store *st);
int sked_store_ping(sked_store *st, sked_err *err);
int sked_store_task_insert(sked_store *st, sked_task_rec *recs, size_t n,
                           const sked_idem *idem, sked_err *err);
int sked_store_task_get(sked_store *st, const char *ns, const char *key,
                        sked_task_rec *out, sked_err *err);
int sked_store_task_list(sked_store *st, const sked_task_filter *f,
                         sked_task_page *out, sked_err *err);
int sked_store_task_update(sked_store *st, sked_task_rec *rec,
                           int64_t expect_version, sked_err *err);
int sked_store_task_delete(sked_store *st, const char *ns, const char *id,
                           sked_err *err);
int sked_store_token_insert(sked_store *st, const sked_token_rec *t,
                            sked_err *err);
int sked_store_token_find(sked_store *st, const char *hash,
                          sked_token_rec *out, sked_err *err);
int sked_store_token_list(sked_store *st, const char *ns,
                          sked_token_rec **out, size_t *n, sked_err *err);
int sked_store_token_revoke(sked_store *st, const char *ns, const char *id,
                            sked_walltime at, sked_err *err);

int sked_store_claim_due(sked_store *st, sked_claim *c, sked_err *err);
int sked_store_run_update(sked_store *st, sked_run_change *changes, size_t n,
                          sked_err *err);
int sked_store_sweep_expired(sked_store *st, sked_walltime now, int limit,
                             sked_claim *out, sked_err *err);
int sked_store_run_insert(sked_store *st, const sked_run_rec *r, sked_err *err);
int sked_store_run_get(sked_store *st, const char *ns, const char *id,
                       sked_run_rec *out, sked_err *err);
int sked_store_run_list(sked_store *st, const sked_run_filter *f,
                        sked_run_page *out, sked_err *err);
int sked_store_run_prune(sked_store *st, sked_walltime older_than,
                         int keep_per_task, int limit, int64_t *deleted,
                         sked_err *err);
int sked_store_worker_upsert(sked_store *st, const sked_worker_rec *w,
                             sked_err *err);
int sked_store_worker_list(sked_store *st, sked_walltime since,
                           sked_worker_rec **out, size_t *n, sked_err *err);
int sked_store_tasks_active(sked_store *st, const char *const *task_ids,
                            size_t n, int *counts, sked_err *err);
int sked_store_wait_wake(sked_store *st, int64_t timeout_us, sked_err *err);
int sked_store_run_get_many(sked_store *st, const char *const *ids, size_t n,
                            sked_run_rec *out, int *found, char **specs, sked_err *err);
int sked_store_sched_beat(sked_store *st, const sked_sched_rec *me,
                          sked_walltime prune_before, sked_sched_rec **out,
                          size_t *n, sked_err *err);
int sked_store_runs_in_doubt(sked_store *st, const char *owner, sked_walltime since,
                             sked_walltime marked_before, int limit, sked_claim *out,
                             sked_err *err);

/* The SQLite backend's ops (store_sqlite.c). */
extern const sked_store_ops sked_store_sqlite_ops;
/* The PostgreSQL backend's ops (store_pg*.c), for "postgres://..." and
 * "postgresql://..." URLs (handed to libpq as they are).  A write that
 * makes something due within 5 s (a task inserted, updated or resumed; a
 * run inserted) also sends NOTIFY sked_wake, '<due_at in us>' with its
 * COMMIT, which wait_wake (LISTEN sked_wake) hears. */
extern const sked_store_ops sked_store_pg_ops;

#endif
