-- +goose NO TRANSACTION
-- +goose Up
-- The console lists instances newest change first, keyset-paged on (updated_at, instance_id). Without an index in
-- that order PostgreSQL sorts the whole table for every page: 2 s a page with 1,000,000 instances. Built
-- concurrently, so a deployment with a large table keeps taking writes while it is built.
CREATE INDEX CONCURRENTLY IF NOT EXISTS instances_updated_idx ON instances (updated_at DESC, instance_id DESC);

-- +goose Down
DROP INDEX CONCURRENTLY IF EXISTS instances_updated_idx;
