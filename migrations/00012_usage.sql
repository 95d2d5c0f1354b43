-- +goose Up
-- Usage of pay-per-use instances as the seller's systems report it (POST /usage/v1/records): one row per record,
-- keyed by the seller's record id, so a repeated record is acknowledged and never counted twice. usage_hour is the
-- hourly window (UTC, on the hour) the record counts in; the hourly usage push aggregates closed windows per
-- instance from here. Values are exact: the marketplace takes at most 4 decimals (usage_value Double(12,4)).
CREATE TABLE usage_records (
    record_id           text PRIMARY KEY,
    instance_id         text NOT NULL REFERENCES instances (instance_id),
    value               numeric(16,4) NOT NULL CHECK (value >= 0),
    usage_hour          timestamptz NOT NULL CHECK (date_trunc('hour', usage_hour, 'UTC') = usage_hour),
    begin_at            timestamptz,
    end_at              timestamptz,
    -- For a pay-per-use package that stops when used up (用完即停): the package instance the usage is deducted
    -- from, pushed as relate_pkg_instance.
    package_instance_id text,
    received_at         timestamptz NOT NULL DEFAULT now(),
    CHECK (end_at IS NULL OR begin_at IS NULL OR begin_at <= end_at)
);
CREATE INDEX usage_records_window_idx ON usage_records (instance_id, usage_hour);

-- +goose Down
DROP TABLE usage_records;
