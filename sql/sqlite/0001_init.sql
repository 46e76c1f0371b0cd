-- 0001_init.sql - sked's first SQLite schema.
--
-- Times are INTEGER microseconds since the Unix epoch, UTC; NULL means "no
-- time" (SKED_TIME_NONE in C).  Ids are UUIDv7 text, so ordering by id is
-- ordering by creation.  The store runs this file inside one transaction
-- and records it in schema_version; released migrations are never edited,
-- a change is a new NNNN_*.sql file (see src/store/migrate.h).

-- Tasks.  spec is the canonical JSON of the user's specification; the
-- columns beside it are what the store and the scheduler search on.
--   state: 0 active, 1 paused, 2 completed (sked_task_state).
CREATE TABLE tasks (
    id          TEXT    NOT NULL PRIMARY KEY,
    namespace   TEXT    NOT NULL,
    name        TEXT,
    queue       TEXT    NOT NULL,
    spec        TEXT    NOT NULL,
    state       INTEGER NOT NULL DEFAULT 0 CHECK (state IN (0, 1, 2)),
    next_run_at INTEGER,
    run_count   INTEGER NOT NULL DEFAULT 0,
    version     INTEGER NOT NULL DEFAULT 1,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    UNIQUE (namespace, name)
);
-- The scheduler's only search key; tasks with nothing due stay out of it.
CREATE INDEX tasks_next_run_at ON tasks (next_run_at)
    WHERE next_run_at IS NOT NULL;
-- Listings: one namespace, by id (the cursor).
CREATE INDEX tasks_ns_id ON tasks (namespace, id);

-- Idempotency-Key of a create: the same key and request hash in a
-- namespace give back task_id.  A key goes with its task when the task is
-- deleted (a retry after that creates a new task).
CREATE TABLE idempotency_keys (
    namespace    TEXT    NOT NULL,
    key          TEXT    NOT NULL,
    request_hash TEXT    NOT NULL,
    task_id      TEXT    NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    created_at   INTEGER NOT NULL,
    PRIMARY KEY (namespace, key)
) WITHOUT ROWID;
CREATE INDEX idempotency_keys_task ON idempotency_keys (task_id);

-- API tokens, stored as the hex SHA-256 of the secret.
--   role: 0 read, 1 write, 2 shell, 3 admin (sked_role).
CREATE TABLE tokens (
    id         TEXT    NOT NULL PRIMARY KEY,
    hash       TEXT    NOT NULL UNIQUE,
    namespace  TEXT    NOT NULL,
    role       INTEGER NOT NULL CHECK (role BETWEEN 0 AND 3),
    created_at INTEGER NOT NULL,
    revoked_at INTEGER
);

-- Runs: one row per occurrence of a task, unique on (task_id,
-- scheduled_at).  Runs outlive their task (no foreign key): deleting a task
-- cancels its unfinished runs and keeps the history until retention prunes
-- it, so namespace is kept here too.
--   status: 0 scheduled, 1 dispatched, 2 running, 3 succeeded, 4 failed,
--           5 timed_out, 6 skipped, 7 canceled (sked_run_status).
--   reason: 'overlap' | 'misfire' for skipped runs, else NULL.
--   due_at: when to publish it next: scheduled_at plus jitter, or the
--           retry time after a failed attempt.
--   lease_owner/lease_expires_at: the scheduler (scheduled, dispatched) or
--           worker (running) answerable for it until then.  Both NULL
--           when nobody holds it; a lease is free when lease_expires_at
--           is NULL or past (the store never writes an expiry without an
--           owner).
--   lag_us: started_at - scheduled_at of the first attempt.
CREATE TABLE runs (
    id               TEXT    NOT NULL PRIMARY KEY,
    task_id          TEXT    NOT NULL,
    namespace        TEXT    NOT NULL,
    scheduled_at     INTEGER NOT NULL,
    due_at           INTEGER NOT NULL,
    status           INTEGER NOT NULL DEFAULT 0 CHECK (status BETWEEN 0 AND 7),
    reason           TEXT,
    attempt          INTEGER NOT NULL DEFAULT 1,
    queue            TEXT    NOT NULL,
    worker           TEXT,
    lease_owner      TEXT,
    lease_expires_at INTEGER,
    dispatched_at    INTEGER,
    started_at       INTEGER,
    finished_at      INTEGER,
    lag_us           INTEGER,
    exit_code        INTEGER,
    http_status      INTEGER,
    error            TEXT,
    output           TEXT,
    UNIQUE (task_id, scheduled_at)
);
-- Claims: a scheduler's own scheduled runs by due time (what it hands to
-- its timer).  Partial indexes hold only the rows in the states named, so
-- they stay as small as the scheduler's window; a query uses one only when
-- it repeats the index's WHERE term word for word.
CREATE INDEX runs_owner_due ON runs (lease_owner, due_at) WHERE status = 0;
-- Claims (scheduled runs whose lease is free: lease_expires_at NULL or
-- past) and sweeps (dispatched or running runs whose lease expired).
CREATE INDEX runs_lease ON runs (status, lease_expires_at);
-- Unfinished runs of a task: counted by every claim (overlap policy) and
-- canceled when the task is deleted, without walking the task's history.
CREATE INDEX runs_unfinished ON runs (task_id) WHERE status < 3;
-- Runs of a task and of a namespace, newest first, paged by id.
CREATE INDEX runs_task_newest ON runs (task_id, id DESC);
CREATE INDEX runs_ns_newest ON runs (namespace, id DESC);

-- Workers, as their heartbeats describe them (part 2).  queues is a JSON
-- array of queue names.
CREATE TABLE workers (
    id             TEXT    NOT NULL PRIMARY KEY,
    host           TEXT    NOT NULL,
    queues         TEXT    NOT NULL,
    slots          INTEGER NOT NULL,
    busy           INTEGER NOT NULL DEFAULT 0,
    last_heartbeat INTEGER NOT NULL,
    version        TEXT    NOT NULL
);
