-- +goose Up
-- Pay-per-use purchases (docs/koogallery.md, "Pay-per-use instances"). The marketplace's idempotency key for a
-- pay-per-use newInstance is orderId + productId: one order line may bill several pay-per-use items, each its own
-- instance. The inbox keeps the productId the call named, so the instance's workflow reads that item of the
-- order; instances are no longer unique per order line. The instanceId itself is derived from the key
-- (orderId + productId, or orderId + orderLineId), which is what keeps a retried newInstance to one instance.
ALTER TABLE koogallery_inbox ADD COLUMN product_id text NOT NULL DEFAULT '';
ALTER TABLE instances DROP CONSTRAINT instances_order_id_order_line_id_key;
CREATE INDEX instances_order_line_idx ON instances (order_id, order_line_id);

-- +goose Down
DROP INDEX instances_order_line_idx;
ALTER TABLE instances ADD CONSTRAINT instances_order_id_order_line_id_key UNIQUE (order_id, order_line_id);
ALTER TABLE koogallery_inbox DROP COLUMN product_id;
