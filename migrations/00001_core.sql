-- +goose Up
-- The read model of instances and their orders, the per-instance timeline, and the self-check path.
-- Only an instance's own workflow writes its rows (through activities); every write is idempotent by a key so an
-- activity retried after a crash leaves one row.

CREATE TABLE instances (
    instance_id       text PRIMARY KEY,
    workflow_id       text NOT NULL,
    order_id          text NOT NULL,
    order_line_id     text NOT NULL,
    product_id        text NOT NULL DEFAULT '',
    sku_code          text NOT NULL DEFAULT '',
    quantity          bigint NOT NULL DEFAULT 1,
    customer_id       text NOT NULL DEFAULT '',
    charging_mode     text NOT NULL DEFAULT '',
    lifecycle         text NOT NULL,
    supervision       text NOT NULL DEFAULT 'NOT_INVOLVED',
    trial             boolean NOT NULL DEFAULT false,
    test_flag         boolean NOT NULL DEFAULT false,
    expire_time       timestamptz,
    parked            boolean NOT NULL DEFAULT false,
    parked_step       text NOT NULL DEFAULT '',
    parked_reason     text NOT NULL DEFAULT '',
    app_info          jsonb,
    provisioned_at    timestamptz,
    frozen_at         timestamptz,
    released_at       timestamptz,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    UNIQUE (order_id, order_line_id)
);
CREATE INDEX instances_lifecycle_idx ON instances (lifecycle, updated_at DESC);
CREATE INDEX instances_parked_idx ON instances (updated_at DESC) WHERE parked;

-- Every marketplace order that touched an instance: the purchase, renewals, upgrades, and refunds (negative
-- amounts). Amounts are exact NUMERIC in yuan; times are UTC.
CREATE TABLE orders (
    order_id            text NOT NULL,
    order_line_id       text NOT NULL,
    instance_id         text NOT NULL REFERENCES instances (instance_id),
    order_type          text NOT NULL,  -- NEW, TRIAL, TRIAL_TO_FORMAL, RENEW, CHANGE, UNSUBSCRIBE, REFUND
    product_id          text NOT NULL DEFAULT '',
    sku_code            text NOT NULL DEFAULT '',
    charging_mode       text NOT NULL DEFAULT '',
    period_type         text NOT NULL DEFAULT '',
    period_number       integer NOT NULL DEFAULT 0,
    quantity            bigint NOT NULL DEFAULT 1,
    list_amount         numeric(18, 3) NOT NULL DEFAULT 0,
    paid_amount         numeric(18, 3) NOT NULL DEFAULT 0,
    refers_to_order_id  text,            -- refunds: the order they refund
    placed_at           timestamptz,     -- the marketplace's createTime
    -- The time the order counts from for settlement (docs/architecture.md, "The orders contract"), NULL while not
    -- yet effective: a new order's provisioning success (supervised products: supervision completion), a renewal's
    -- effective time (the expiry it extends), an upgrade's application, a refund's approval or the
    -- unsubscribe/renewal-refund call.
    effective_at        timestamptz,
    expire_time         timestamptz,
    test_flag           boolean NOT NULL DEFAULT false,
    raw                 jsonb,
    recorded_at         timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (order_id, order_line_id)
);
CREATE INDEX orders_instance_idx ON orders (instance_id);
CREATE INDEX orders_effective_idx ON orders (effective_at);

-- The per-instance timeline. event_key makes an activity's retry write the same event once.
CREATE TABLE instance_events (
    id           bigserial PRIMARY KEY,
    instance_id  text NOT NULL,
    event_key    text NOT NULL,
    at           timestamptz NOT NULL,
    kind         text NOT NULL,
    actor        text NOT NULL DEFAULT 'system',
    summary      text NOT NULL DEFAULT '',
    detail       jsonb,
    UNIQUE (instance_id, event_key)
);
CREATE INDEX instance_events_instance_idx ON instance_events (instance_id, at, id);

-- The self-check path: the console starts a workflow whose activity writes one row here, proving that API,
-- Temporal, worker and PostgreSQL are wired together.
CREATE TABLE selfcheck_runs (
    run_id        text PRIMARY KEY,
    requested_by  text NOT NULL,
    requested_at  timestamptz NOT NULL,
    written_at    timestamptz NOT NULL DEFAULT now(),
    worker        text NOT NULL
);

-- +goose Down
DROP TABLE selfcheck_runs;
DROP TABLE instance_events;
DROP TABLE orders;
DROP TABLE instances;
