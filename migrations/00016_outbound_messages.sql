-- +goose Up
-- The outbound message log: every call kooflow makes to the marketplace's open APIs as sent and as answered (the
-- inbound production-interface calls are in koogallery_messages). The usage push keeps each push here with its
-- records and the per-record answers. Append-only, like the inbound log.
CREATE TABLE koogallery_outbound (
    id             bigserial PRIMARY KEY,
    sent_at        timestamptz NOT NULL,
    api            text NOT NULL,
    method         text NOT NULL,
    url            text NOT NULL,
    -- ts and nonce; never the signature or a credential.
    headers        jsonb NOT NULL DEFAULT '{}',
    request_body   bytea NOT NULL,
    record_count   integer NOT NULL DEFAULT 0,
    instance_ids   text[] NOT NULL DEFAULT '{}',
    http_status    integer NOT NULL DEFAULT 0,
    response_body  bytea NOT NULL DEFAULT '',
    result_code    text NOT NULL DEFAULT '',
    result_msg     text NOT NULL DEFAULT '',
    -- The per-record answers: [{meteringSn, instanceId, code, message}] for every refused record.
    refusals       jsonb NOT NULL DEFAULT '[]',
    -- What went wrong (no answer, an unreadable answer, a refused request); empty when the call was answered.
    error_detail   text NOT NULL DEFAULT '',
    failed         boolean NOT NULL,
    latency_us     bigint NOT NULL DEFAULT 0,
    worker         text NOT NULL DEFAULT ''
);
CREATE INDEX koogallery_outbound_api_idx ON koogallery_outbound (api, sent_at);
CREATE INDEX koogallery_outbound_instance_idx ON koogallery_outbound USING gin (instance_ids);

-- +goose StatementBegin
CREATE FUNCTION koogallery_outbound_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'koogallery_outbound is append-only: % is not allowed', TG_OP;
END;
$$;
-- +goose StatementEnd
CREATE TRIGGER koogallery_outbound_append_only BEFORE UPDATE OR DELETE ON koogallery_outbound
    FOR EACH ROW EXECUTE FUNCTION koogallery_outbound_append_only();

-- +goose Down
DROP TABLE koogallery_outbound;
DROP FUNCTION koogallery_outbound_append_only();
