-- 0002_schedulers.sql - schedulers' heartbeats.
--
-- One row per scheduler process (its lease-owner id), written about once a
-- second.  published_to is its watermark: every run it recorded
-- DISPATCHED with a dispatched_at before that time has been published or
-- given back.  When a scheduler's beats stop, the others give back (to be
-- claimed and published again) only its DISPATCHED runs from published_to
-- on: those may be in no queue.  Rows not beaten for 5 minutes are deleted
-- (by then a dead scheduler's dispatch leases have run out).
-- The runs are found through runs_lease (status 1): only a dead
-- scheduler's takeover reads them.
CREATE TABLE schedulers (
    id           text COLLATE "C" NOT NULL PRIMARY KEY,
    beats        bigint NOT NULL,
    beat_at      bigint NOT NULL,
    published_to bigint NOT NULL
);
