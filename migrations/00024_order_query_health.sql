-- +goose Up
-- The health of the marketplace's order query as the workers see it, one row: when the current run of failures
-- began (NULL while it works), how many calls failed since, and the last failure. Every worker's QueryOrder
-- activity updates it; the alert watcher raises order-query-failing when failures have lasted long enough and
-- resolves it once a query succeeds. A working query writes at most once a minute (last_ok_at), so the row is not
-- a hot spot under load.
CREATE TABLE order_query_health (
    id              boolean PRIMARY KEY DEFAULT true CHECK (id),
    failing_since   timestamptz,
    failures        bigint NOT NULL DEFAULT 0,
    last_failure_at timestamptz,
    last_error      text NOT NULL DEFAULT '',
    last_ok_at      timestamptz
);
INSERT INTO order_query_health DEFAULT VALUES;

-- +goose Down
DROP TABLE order_query_health;
