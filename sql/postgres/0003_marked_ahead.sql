-- 0003_marked_ahead.sql - runs recorded dispatched well before their time.
--
-- A one-time task is claimed up to 30 s before it is due and its run is
-- recorded DISPATCHED by that claim (its due time as dispatched_at); the
-- scheduler publishes it when it comes due.  So that a run stays one
-- write however far ahead it is claimed.
--
-- marked_at: for a DISPATCHED run, when the write that recorded it so
-- began, on its scheduler's clock (NULL otherwise, and for rows from
-- before this migration: dispatched_at stands in).  A dead scheduler's
-- takeover tells its last life's runs from a later life's by it, since
-- dispatched_at (the due time of a run marked ahead) can lie far after
-- the mark.
ALTER TABLE runs ADD COLUMN marked_at bigint;

-- The active one-time tasks by due time: a claim takes them up to its
-- one-time look-ahead, further than the recurring tasks' (tasks_due).
-- The predicate is the canonical spec's own mark of an `at` schedule (a
-- quote inside a JSON string is escaped, so the text appears nowhere
-- else).
CREATE INDEX tasks_due_once ON tasks (next_run_at)
    WHERE state = 0 AND next_run_at IS NOT NULL
      AND strpos(spec, '"schedule":{"at":') > 0;
