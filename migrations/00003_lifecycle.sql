-- +goose Up
-- What the instance lifecycle adds to the read model: the projection's version (so a late write never overwrites
-- a newer one), supervision and freeze details, refund requests and their decisions, operator alerts, and the
-- history of parked steps. Only an instance's own workflow writes these rows, through its activities.

ALTER TABLE instances
    ADD COLUMN state_version            bigint NOT NULL DEFAULT 0,
    ADD COLUMN product_name             text NOT NULL DEFAULT '',
    ADD COLUMN product_known            boolean NOT NULL DEFAULT true,
    ADD COLUMN period_type              text NOT NULL DEFAULT '',
    ADD COLUMN frozen_by                text NOT NULL DEFAULT '',
    ADD COLUMN supervision_completed_at timestamptz,
    ADD COLUMN service_start_at         timestamptz,
    ADD COLUMN parked_at                timestamptz;
CREATE INDEX instances_product_idx ON instances (product_id);
CREATE INDEX instances_expire_idx ON instances (expire_time) WHERE lifecycle <> 'RELEASED';

-- Refund requests inside the guarantee period and the seller's decision. An approval also writes a REFUND row in
-- orders (refund_order_id), which settlement nets.
CREATE TABLE refunds (
    instance_id       text NOT NULL REFERENCES instances (instance_id),
    refund_id         text NOT NULL,   -- R1, R2, … per instance
    order_id          text NOT NULL,   -- the order refunded
    order_line_id     text NOT NULL,
    status            text NOT NULL CHECK (status IN ('PENDING', 'APPROVED', 'REJECTED', 'CANCELLED')),
    requested_amount  numeric(18, 3) NOT NULL CHECK (requested_amount > 0),
    approved_amount   numeric(18, 3) CHECK (approved_amount > 0),
    full_only         boolean NOT NULL DEFAULT false,
    reason            text NOT NULL DEFAULT '',
    decision_note     text NOT NULL DEFAULT '',
    requested_by      text NOT NULL,
    requested_at      timestamptz NOT NULL,
    decided_by        text,
    decided_at        timestamptz,
    refund_order_id   text,
    PRIMARY KEY (instance_id, refund_id)
);
CREATE INDEX refunds_pending_idx ON refunds (requested_at) WHERE status = 'PENDING';

-- Conditions an operator should look at: an expired instance the marketplace did not freeze, an unknown product.
CREATE TABLE instance_alerts (
    instance_id  text NOT NULL REFERENCES instances (instance_id),
    alert_key    text NOT NULL,
    kind         text NOT NULL,
    raised_at    timestamptz NOT NULL,
    message      text NOT NULL,
    detail       jsonb,
    resolved_at  timestamptz,
    PRIMARY KEY (instance_id, alert_key)
);
CREATE INDEX instance_alerts_open_idx ON instance_alerts (raised_at DESC) WHERE resolved_at IS NULL;

-- Every time a step parked, and how an operator resolved it (resume, skip) or why it was given up (abandoned).
CREATE TABLE instance_parkings (
    instance_id  text NOT NULL REFERENCES instances (instance_id),
    parking_key  text NOT NULL,
    step_id      text NOT NULL,
    stage        text NOT NULL,
    reason       text NOT NULL,
    parked_at    timestamptz NOT NULL,
    resolution   text CHECK (resolution IN ('resume', 'skip', 'abandoned')),
    resolved_by  text,
    resolved_at  timestamptz,
    note         text NOT NULL DEFAULT '',
    PRIMARY KEY (instance_id, parking_key)
);
CREATE INDEX instance_parkings_open_idx ON instance_parkings (parked_at DESC) WHERE resolved_at IS NULL;

-- +goose Down
DROP TABLE instance_parkings;
DROP TABLE instance_alerts;
DROP TABLE refunds;
DROP INDEX instances_expire_idx;
DROP INDEX instances_product_idx;
ALTER TABLE instances
    DROP COLUMN parked_at,
    DROP COLUMN service_start_at,
    DROP COLUMN supervision_completed_at,
    DROP COLUMN frozen_by,
    DROP COLUMN period_type,
    DROP COLUMN product_known,
    DROP COLUMN product_name,
    DROP COLUMN state_version;
