-- +goose Up
-- The trace id of the call's span (OpenTelemetry, when tracing is on), so an operator goes from a message in the
-- log to the call's trace through the gateway, Temporal and the workflow. Empty when tracing is off. Adding a
-- column with a constant default rewrites no row, so the append-only trigger is not involved.
ALTER TABLE koogallery_messages ADD COLUMN trace_id text NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE koogallery_messages DROP COLUMN trace_id;
