-- 0003_marked_ahead.sql - runs recorded dispatched well before their time
-- (as sql/postgres/0003).  marked_at: for a DISPATCHED run, when the
-- write that recorded it so began (NULL otherwise).  An embedded server
-- recovers every dispatched run at start and never reads it; it is here
-- so that both stores hold the same runs.  The claim finds one-time
-- tasks through tasks_next_run_at with a filter: one process, no
-- contention worth a second index.
ALTER TABLE runs ADD COLUMN marked_at INTEGER;
