-- 0002_schedulers.sql - schedulers' heartbeats (as sql/postgres/0002).
--
-- One row per scheduler (its lease-owner id), written about once a second.
-- published_to is its watermark: every run it recorded DISPATCHED with a
-- dispatched_at before that time has been published or given back.  An
-- embedded server does not beat (it recovers every dispatched run at
-- start); the table is here so that both stores answer the same methods.
CREATE TABLE schedulers (
    id           TEXT    NOT NULL PRIMARY KEY,
    beats        INTEGER NOT NULL,
    beat_at      INTEGER NOT NULL,
    published_to INTEGER NOT NULL
);
