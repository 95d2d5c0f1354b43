-- +goose Up
-- The production interface's replay cache and message log.

-- Nonces of authenticated requests. The primary key makes "accept once" a single insert that every API process
-- shares; rows older than twice the signature window can no longer be replayed (their timestamp would be
-- refused) and are purged.
CREATE TABLE koogallery_nonces (
    nonce    text PRIMARY KEY,
    seen_at  timestamptz NOT NULL
);
CREATE INDEX koogallery_nonces_seen_idx ON koogallery_nonces (seen_at);

-- Every inbound production-interface call, as received and as answered (docs/architecture.md,
-- "Every message is kept"): the seller's evidence in a dispute and the operator's view of failed calls, like the
-- marketplace's 生产接口消息 page.
-- A row is written before the response is sent, and never changed afterwards.
CREATE TABLE koogallery_messages (
    id                bigserial PRIMARY KEY,
    received_at       timestamptz NOT NULL,
    request_id        text NOT NULL DEFAULT '',
    remote_addr       text NOT NULL DEFAULT '',
    forwarded_for     text NOT NULL DEFAULT '',
    method            text NOT NULL,
    path              text NOT NULL,
    raw_query         text NOT NULL DEFAULT '',
    headers           jsonb NOT NULL DEFAULT '{}',
    raw_body          bytea NOT NULL,
    -- ok, not_checked, missing_credentials, malformed_credentials, bad_signature, stale_timestamp,
    -- replayed_nonce, replay_check_unavailable
    verification      text NOT NULL,
    activity          text NOT NULL DEFAULT '',
    order_id          text NOT NULL DEFAULT '',
    order_line_id     text NOT NULL DEFAULT '',
    business_id       text NOT NULL DEFAULT '',
    -- The instance(s) concerned: the request's instanceId list, or the instanceId newInstance answered with.
    instance_ids      text[] NOT NULL DEFAULT '{}',
    scene             text NOT NULL DEFAULT '',
    status            text NOT NULL DEFAULT '',
    test_flag         boolean NOT NULL DEFAULT false,
    result_code       text NOT NULL,
    result_msg        text NOT NULL DEFAULT '',
    -- What went wrong, for the operator; never sent to the marketplace.
    error_detail      text NOT NULL DEFAULT '',
    failed            boolean GENERATED ALWAYS AS (result_code NOT IN ('000000', '000004')) STORED,
    http_status       integer NOT NULL,
    response_body     bytea NOT NULL,
    body_sign         text NOT NULL DEFAULT '',
    latency_us        bigint NOT NULL
);
-- The console lists failed calls first, newest first, with keyset pagination on (failed, received_at, id).
CREATE INDEX koogallery_messages_list_idx ON koogallery_messages (failed, received_at, id);
CREATE INDEX koogallery_messages_instance_idx ON koogallery_messages USING gin (instance_ids);
CREATE INDEX koogallery_messages_order_idx ON koogallery_messages (order_id, received_at) WHERE order_id <> '';
CREATE INDEX koogallery_messages_activity_idx ON koogallery_messages (activity, received_at);

-- +goose StatementBegin
CREATE FUNCTION koogallery_messages_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'koogallery_messages is append-only: % is not allowed', TG_OP;
END;
$$;
-- +goose StatementEnd
CREATE TRIGGER koogallery_messages_append_only BEFORE UPDATE OR DELETE ON koogallery_messages
    FOR EACH ROW EXECUTE FUNCTION koogallery_messages_append_only();

-- +goose Down
DROP TABLE koogallery_messages;
DROP FUNCTION koogallery_messages_append_only();
DROP TABLE koogallery_nonces;
