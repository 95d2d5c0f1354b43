-- +goose Up
-- A purchase the seller's provisioning refused permanently (docs/koogallery.md, "Refused purchases"). While the
-- instance is still provisioning, queryInstance and newInstance retries answer refusal_code (a KooGallery
-- newInstance code, 000100–000107) with refusal_msg instead of 000004. The provisioning activity sets these
-- columns when the endpoint refuses and clears them when provisioning is tried again.
ALTER TABLE instances
    ADD COLUMN refusal_code text,
    ADD COLUMN refusal_msg  text,
    ADD COLUMN refused_at   timestamptz,
    ADD CONSTRAINT instances_refusal_code_check CHECK (refusal_code IS NULL OR refusal_code BETWEEN '000100' AND '000107');

-- +goose Down
ALTER TABLE instances
    DROP CONSTRAINT instances_refusal_code_check,
    DROP COLUMN refusal_code,
    DROP COLUMN refusal_msg,
    DROP COLUMN refused_at;
