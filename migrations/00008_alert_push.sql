-- +goose Up
-- Alerts are pushed to a person (KOOFLOW_ALERT_WEBHOOK_URL) once when raised and once when resolved. The pusher
-- (internal/alerts, run by the worker process) claims due rows by moving push_next_at ahead (a lease), and on
-- failure backs off through it; pushed_at and resolved_pushed_at record the deliveries.
ALTER TABLE instance_alerts
    ADD COLUMN pushed_at          timestamptz,
    ADD COLUMN resolved_pushed_at timestamptz,
    ADD COLUMN push_next_at       timestamptz,
    ADD COLUMN push_attempts      integer NOT NULL DEFAULT 0,
    ADD COLUMN push_last_error    text NOT NULL DEFAULT '';
-- Alerts raised before pushing existed are not announced now.
UPDATE instance_alerts SET pushed_at = raised_at, resolved_pushed_at = resolved_at;
CREATE INDEX instance_alerts_push_idx ON instance_alerts (raised_at)
    WHERE pushed_at IS NULL OR (resolved_at IS NOT NULL AND resolved_pushed_at IS NULL);

-- +goose Down
DROP INDEX instance_alerts_push_idx;
ALTER TABLE instance_alerts
    DROP COLUMN pushed_at,
    DROP COLUMN resolved_pushed_at,
    DROP COLUMN push_next_at,
    DROP COLUMN push_attempts,
    DROP COLUMN push_last_error;
