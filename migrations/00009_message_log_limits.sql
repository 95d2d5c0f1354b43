-- +goose Up
-- A call that fails verification is kept as metadata only (docs/security.md, "The production interface under
-- flood"): its first 1 KiB, its size and SHA-256, and no headers, so unsigned traffic cannot fill the disk. A
-- verified call is kept whole, as before; for it body_size and body_sha256 describe raw_body itself.
ALTER TABLE koogallery_messages
    ADD COLUMN body_size      integer NOT NULL DEFAULT 0,
    ADD COLUMN body_sha256    bytea,
    ADD COLUMN body_truncated boolean NOT NULL DEFAULT false,
    ADD COLUMN headers_size   integer NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE koogallery_messages
    DROP COLUMN body_size,
    DROP COLUMN body_sha256,
    DROP COLUMN body_truncated,
    DROP COLUMN headers_size;
