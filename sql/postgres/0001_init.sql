-- 0001_init.sql - sked's first PostgreSQL schema.
--
-- The same tables, columns and meanings as sql/sqlite/0001_init.sql; where
-- the two differ, PostgreSQL's reason is written beside it.  Times are
-- BIGINT microseconds since the Unix epoch, UTC; NULL means "no time"
-- (SKED_TIME_NONE in C).  Ids are UUIDv7 text, so ordering by id is
-- ordering by creation.  Identifiers compare byte by byte (COLLATE "C"),
-- as in SQLite, whatever the database's default collation: cursors,
-- ordering and uniqueness do not depend on how the database was created.
--
-- The store runs this file inside one transaction, under
-- pg_advisory_xact_lock, and records it in schema_version; released
-- migrations are never edited, a change is a new NNNN_*.sql file (see
-- src/store/migrate.h).  Names are unqualified: the tables go to the first
-- schema of the connection's search_path.

-- Tasks.  spec is the canonical JSON of the user's specification, kept as
-- text so it reads back byte for byte; the columns beside it are what the
-- store and the scheduler search on.
--   state: 0 active, 1 paused, 2 completed (sked_task_state).
CREATE TABLE tasks (
    id          text COLLATE "C" NOT NULL,
    namespace   text COLLATE "C" NOT NULL,
    name        text COLLATE "C",
    queue       text     NOT NULL,
    spec        text     NOT NULL,
    state       smallint NOT NULL DEFAULT 0 CHECK (state IN (0, 1, 2)),
    next_run_at bigint,
    run_count   bigint   NOT NULL DEFAULT 0,
    version     bigint   NOT NULL DEFAULT 1,
    created_at  bigint   NOT NULL,
    updated_at  bigint   NOT NULL,
    CONSTRAINT tasks_pkey PRIMARY KEY (id),
    CONSTRAINT tasks_name_key UNIQUE (namespace, name)
);
-- The scheduler's only search key.  Only active tasks with something due
-- are in it: paused and completed tasks cost the claim nothing.
CREATE INDEX tasks_due ON tasks (next_run_at)
    WHERE state = 0 AND next_run_at IS NOT NULL;
-- Listings: one namespace, by id (the cursor).
CREATE INDEX tasks_ns_id ON tasks (namespace, id);

-- Idempotency-Key of a create: the same key and request hash in a
-- namespace give back task_id.  A key goes with its task when the task is
-- deleted (a retry after that creates a new task).  The key is written
-- first in its transaction, before the tasks it names (a concurrent retry
-- then waits on the key instead of colliding on the task's name), hence
-- the deferred check of the reference.
CREATE TABLE idempotency_keys (
    namespace    text COLLATE "C" NOT NULL,
    key          text COLLATE "C" NOT NULL,
    request_hash text   NOT NULL,
    task_id      text COLLATE "C" NOT NULL
                 REFERENCES tasks (id) ON DELETE CASCADE
                 DEFERRABLE INITIALLY DEFERRED,
    created_at   bigint NOT NULL,
    CONSTRAINT idempotency_keys_pkey PRIMARY KEY (namespace, key)
);
CREATE INDEX idempotency_keys_task ON idempotency_keys (task_id);

-- API tokens, stored as the hex SHA-256 of the secret.
--   role: 0 read, 1 write, 2 shell, 3 admin (sked_role).
CREATE TABLE tokens (
    id         text COLLATE "C" NOT NULL,
    hash       text COLLATE "C" NOT NULL,
    namespace  text COLLATE "C" NOT NULL,
    role       smallint NOT NULL CHECK (role BETWEEN 0 AND 3),
    created_at bigint   NOT NULL,
    revoked_at bigint,
    CONSTRAINT tokens_pkey PRIMARY KEY (id),
    CONSTRAINT tokens_hash_key UNIQUE (hash)
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
    id               text COLLATE "C" NOT NULL,
    task_id          text COLLATE "C" NOT NULL,
    namespace        text COLLATE "C" NOT NULL,
    scheduled_at     bigint   NOT NULL,
    due_at           bigint   NOT NULL,
    status           smallint NOT NULL DEFAULT 0
                     CHECK (status BETWEEN 0 AND 7),
    reason           text,
    attempt          integer  NOT NULL DEFAULT 1,
    queue            text     NOT NULL,
    worker           text,
    lease_owner      text COLLATE "C",
    lease_expires_at bigint,
    dispatched_at    bigint,
    started_at       bigint,
    finished_at      bigint,
    lag_us           bigint,
    exit_code        integer,
    http_status      integer,
    error            text,
    output           text,
    CONSTRAINT runs_pkey PRIMARY KEY (id),
    CONSTRAINT runs_task_scheduled_key UNIQUE (task_id, scheduled_at)
);
-- Claims: a scheduler's own scheduled runs by due time (what it hands to
-- its timer).  Partial indexes hold only the rows in the states named, so
-- they stay as small as the schedulers' windows.
CREATE INDEX runs_owner_due ON runs (lease_owner, due_at) WHERE status = 0;
-- Claims (scheduled runs whose lease is free: lease_expires_at NULL, by
-- due_at; or past) and sweeps (dispatched or running runs whose lease
-- expired, oldest first).  Finished runs are not in it.  The predicate is
-- written IN (0, 1, 2), not < 3, on purpose: a query on `status < 3`
-- (counting a task's unfinished runs) then cannot use this index, which
-- has no task_id, and always goes to runs_unfinished below - even with a
-- plan made while the statistics said there were no unfinished runs.
CREATE INDEX runs_lease ON runs (status, lease_expires_at, due_at)
    WHERE status IN (0, 1, 2);
-- Unfinished runs of a task: counted by every claim (overlap policy) and
-- canceled when the task is deleted or paused.
CREATE INDEX runs_unfinished ON runs (task_id) WHERE status < 3;
-- Runs of a task and of a namespace, newest first, paged by id (read
-- backwards).  The unique (task_id, scheduled_at) index serves retention's
-- walk, task by task, newest occurrence first.
CREATE INDEX runs_task_id ON runs (task_id, id);
CREATE INDEX runs_ns_id ON runs (namespace, id);
-- Retention by age: finished runs, oldest first, found without a walk.
CREATE INDEX runs_finished ON runs (finished_at) WHERE status >= 3;

-- Workers, as their heartbeats describe them.  queues is a JSON array of
-- queue names (text: read back as written).
CREATE TABLE workers (
    id             text COLLATE "C" NOT NULL,
    host           text    NOT NULL,
    queues         text    NOT NULL,
    slots          integer NOT NULL,
    busy           integer NOT NULL DEFAULT 0,
    last_heartbeat bigint  NOT NULL,
    version        text    NOT NULL,
    CONSTRAINT workers_pkey PRIMARY KEY (id)
);
