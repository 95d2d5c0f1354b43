-- +goose Up
-- The usage push (docs/koogallery.md, "Usage push"): what kooflow pushes to the marketplace out of usage_records.
-- One row per pushed record: the usage of one instance (and package, for 用完即停) in one UTC hour window, at
-- one revision. Revision 1 carries the window's usage as it stood when the window was first pushed; a record that
-- arrives later for the same window adds revision 2 with the difference, and so on. metering_sn is derived from
-- (instance, window, package, revision) alone, so a push that is retried or planned again sends the same
-- metering_sn, which the marketplace charges once. The sum of a window's rows is what was planned for it, whatever
-- their status, so the difference to usage_records is never planned twice.
CREATE TABLE usage_pushes (
    metering_sn         text PRIMARY KEY,
    instance_id         text NOT NULL REFERENCES instances (instance_id),
    usage_hour          timestamptz NOT NULL,
    package_instance_id text NOT NULL DEFAULT '',
    revision            integer NOT NULL CHECK (revision >= 1),
    value               numeric(16,4) NOT NULL CHECK (value > 0),
    begin_at            timestamptz NOT NULL,
    end_at              timestamptz NOT NULL,
    record_time         timestamptz NOT NULL,
    planned_at          timestamptz NOT NULL DEFAULT now(),
    -- pending: not yet answered (or parked); accepted: charged, or answered 005 (already charged); refused: the
    -- marketplace will never take it (007 too old, or a malformed record), an alert says so.
    status              text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'accepted', 'refused')),
    code                text NOT NULL DEFAULT '',
    message             text NOT NULL DEFAULT '',
    attempts            integer NOT NULL DEFAULT 0,
    lease_until         timestamptz,
    pushed_at           timestamptz,
    UNIQUE (instance_id, usage_hour, package_instance_id, revision)
);
CREATE INDEX usage_pushes_pending_idx ON usage_pushes (usage_hour, instance_id, revision) WHERE status = 'pending';

-- Instances whose push is parked: the marketplace answered that it does not know the instance, that it is not the
-- seller's, not pay-per-use, or not in a state to be charged. Their records stay pending until an operator resumes
-- the push (the row is deleted).
CREATE TABLE usage_push_parked (
    instance_id text PRIMARY KEY REFERENCES instances (instance_id),
    code        text NOT NULL,
    message     text NOT NULL,
    metering_sn text NOT NULL,
    parked_at   timestamptz NOT NULL DEFAULT now()
);

-- How far the hourly planning has read usage_records: windows closed up to closed_through, and records received up
-- to received_through (re-read with a margin, for transactions that committed late). One row.
CREATE TABLE usage_push_cursor (
    id               boolean PRIMARY KEY DEFAULT true CHECK (id),
    closed_through   timestamptz NOT NULL,
    received_through timestamptz NOT NULL
);

-- The planning reads the windows that new records touched and the windows that closed since the last run.
CREATE INDEX usage_records_received_idx ON usage_records (received_at);
CREATE INDEX usage_records_hour_idx ON usage_records (usage_hour);

-- +goose Down
DROP INDEX usage_records_hour_idx;
DROP INDEX usage_records_received_idx;
DROP TABLE usage_push_cursor;
DROP TABLE usage_push_parked;
DROP TABLE usage_pushes;
