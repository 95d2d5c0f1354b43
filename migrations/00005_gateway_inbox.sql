-- +goose Up
-- The production interface's inbox for newInstance (docs/architecture.md, "newInstance"). A newInstance
-- is answered once its order is durable here; the instance's workflow is then started from this row, at once by
-- the API process that took the call and, should that process die first, by any API process's re-driver. The
-- primary key is the instanceId derived from orderId + orderLineId, so marketplace retries find one row.
CREATE TABLE koogallery_inbox (
    instance_id      text PRIMARY KEY,
    order_id         text NOT NULL,
    order_line_id    text NOT NULL,
    business_id      text NOT NULL,
    test_flag        boolean NOT NULL,
    received_at      timestamptz NOT NULL,
    -- When Temporal confirmed the workflow's start (or reported that the instance's workflow already ran).
    dispatched_at    timestamptz,
    attempts         integer NOT NULL DEFAULT 0,
    last_error       text NOT NULL DEFAULT '',
    -- The re-driver's next look; the API process that took the call dispatches at once, so this starts a few
    -- seconds ahead and doubles as a lease while a dispatch is in flight.
    next_attempt_at  timestamptz NOT NULL
);
CREATE INDEX koogallery_inbox_pending_idx ON koogallery_inbox (next_attempt_at) WHERE dispatched_at IS NULL;

-- +goose Down
DROP TABLE koogallery_inbox;
