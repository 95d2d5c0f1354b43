-- +goose Up
-- Alerts about kooflow as a whole rather than one instance: a settlement period that could not close, the
-- marketplace's order query failing, a bill. They follow instance_alerts' rules (one row per dedupe key, raised
-- once, resolved when the cause is gone, pushed once raised and once resolved by the same pusher); subject names
-- what the alert is about ("settlement period 2026-10", "order query") where instance_alerts has an instance.
CREATE TABLE system_alerts (
    alert_key          text PRIMARY KEY,
    kind               text NOT NULL,
    subject            text NOT NULL CHECK (subject <> ''),
    raised_at          timestamptz NOT NULL,
    message            text NOT NULL,
    detail             jsonb,
    resolved_at        timestamptz,
    pushed_at          timestamptz,
    resolved_pushed_at timestamptz,
    push_next_at       timestamptz,
    push_attempts      integer NOT NULL DEFAULT 0,
    push_last_error    text NOT NULL DEFAULT ''
);
CREATE INDEX system_alerts_open_idx ON system_alerts (raised_at DESC) WHERE resolved_at IS NULL;
CREATE INDEX system_alerts_push_idx ON system_alerts (raised_at)
    WHERE pushed_at IS NULL OR (resolved_at IS NOT NULL AND resolved_pushed_at IS NULL);

-- +goose Down
DROP TABLE system_alerts;
