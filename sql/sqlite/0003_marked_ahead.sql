-- 0003_marked_ahead.sql - runs recorded dispatched well before their time
-- (as sql/postgres/0003).  marked_at: for a DISPATCHED run, when the
-- write that recorded it so began (NULL otherwise).  An embedded server
-- recovers every dispatched run at start and never reads it; it is here
-- so that both stores hold the same runs.
ALTER TABLE runs ADD COLUMN marked_at INTEGER;

-- The active one-time tasks by due time, which a claim takes further
-- ahead than the others (the predicate as the claim's query says it).
CREATE INDEX tasks_due_once ON tasks (next_run_at)
    WHERE state = 0 AND next_run_at IS NOT NULL
      AND instr(spec, '"schedule":{"at":') > 0;
