-- +goose Up
-- The customer's access data is sealed at rest (docs/security.md, "Secrets at rest"): app_info_sealed is the
-- whole appInfo, AES-256-GCM under the data key app_info_key; app_info keeps it without the password for the
-- console. Rows written before this migration have only app_info (with the password) until
-- `kooflow keys rotate` seals them.
ALTER TABLE instances
    ADD COLUMN app_info_sealed bytea,
    ADD COLUMN app_info_key    text;

-- The message log keeps answers with credentials redacted; response_sha256 is the SHA-256 of the exact bytes
-- sent, which the stored Body-Sign also covers.
ALTER TABLE koogallery_messages ADD COLUMN response_sha256 bytea;

-- +goose Down
ALTER TABLE koogallery_messages DROP COLUMN response_sha256;
ALTER TABLE instances DROP COLUMN app_info_sealed, DROP COLUMN app_info_key;
