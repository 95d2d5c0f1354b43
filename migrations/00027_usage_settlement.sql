-- +goose Up
-- Pay-per-use lines in the monthly settlement (docs/settlement.md, "Pay-per-use usage"). A usage line bills the
-- usage of one instance in one consumption month (Beijing time) that the marketplace accepted, at the catalog's
-- unit price. Its key in settlement_lines is (the instance's order id, 'usage:<instance>:<consumption month>:<bill
-- period>'), so a re-run of a close rewrites the same keys and usage accepted after its month was settled is billed
-- once, as the difference, by a later bill. The quantity and unit price are kept on the line, exactly, because
-- the difference is computed from what earlier lines settled and because the amount is their product.
ALTER TABLE settlement_lines
    ADD COLUMN usage_month    text CHECK (usage_month ~ '^[0-9]{4}-[0-9]{2}$'),
    ADD COLUMN usage_quantity numeric(20, 4),
    ADD COLUMN unit_price     numeric(18, 6),
    ADD CONSTRAINT settlement_lines_usage_check
        CHECK ((usage_month IS NULL) = (usage_quantity IS NULL) AND (usage_month IS NULL) = (unit_price IS NULL));
-- What usage of an instance and month earlier bills settled; only usage lines are indexed.
CREATE INDEX settlement_lines_usage_idx ON settlement_lines (instance_id, usage_month) WHERE usage_month IS NOT NULL;

-- +goose Down
DROP INDEX settlement_lines_usage_idx;
ALTER TABLE settlement_lines DROP CONSTRAINT settlement_lines_usage_check,
    DROP COLUMN unit_price, DROP COLUMN usage_quantity, DROP COLUMN usage_month;
