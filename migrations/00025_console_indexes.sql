-- +goose Up
-- Indexes for the console's instance list (most recently changed first, keyset-paged on (updated_at,
-- instance_id)) and its filters and queues, so each page reads one index range instead of sorting every
-- instance: the unfiltered list, by customer, by product, and by supervision state (服务监管's queue).
-- Filtering by lifecycle uses instances_lifecycle_idx, by parked instances_parked_idx, and by order id the
-- (order_id, order_line_id) key.
CREATE INDEX instances_recent_idx ON instances (updated_at DESC, instance_id DESC);
CREATE INDEX instances_customer_recent_idx ON instances (customer_id, updated_at DESC, instance_id DESC);
CREATE INDEX instances_product_recent_idx ON instances (product_id, updated_at DESC, instance_id DESC);
CREATE INDEX instances_supervision_recent_idx ON instances (supervision, updated_at DESC, instance_id DESC);

-- +goose Down
DROP INDEX instances_supervision_recent_idx;
DROP INDEX instances_product_recent_idx;
DROP INDEX instances_customer_recent_idx;
DROP INDEX instances_recent_idx;
