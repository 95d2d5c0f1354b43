-- +goose Up
-- The message log becomes range-partitioned by month of received_at (UTC), so retention drops whole months
-- (KOOFLOW_MESSAGE_RETENTION, docs/security.md, "Message log retention") while every row stays append-only:
-- the trigger still refuses UPDATE and DELETE of a row. Existing rows are copied into their months' partitions.
-- The primary key becomes (id, received_at), as a partitioned table's key must hold the partition column; ids
-- still come from the one sequence, so id alone stays unique in practice and the console still reads by id.

-- koogallery_messages_ensure_partition creates the partition holding month (any day of it) unless it exists,
-- and returns its name. It serialises on an advisory lock, so API and worker processes may all call it.
-- +goose StatementBegin
CREATE FUNCTION koogallery_messages_ensure_partition(month date) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    first date := date_trunc('month', month)::date;
    name text := 'koogallery_messages_' || to_char(first, 'YYYY_MM');
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('koogallery_messages partitions'));
    IF to_regclass(name) IS NULL THEN
        EXECUTE format('CREATE TABLE %I PARTITION OF koogallery_messages FOR VALUES FROM (%L) TO (%L)', name,
            first::timestamp AT TIME ZONE 'UTC', (first + interval '1 month')::timestamp AT TIME ZONE 'UTC');
    END IF;
    RETURN name;
END;
$$;
-- +goose StatementEnd

-- koogallery_messages_drop_partitions drops the monthly partitions whose every row was received more than
-- keep_months months before now, and returns their names. Dropping a partition is not a DELETE: the
-- append-only trigger allows it, and nothing else can remove a row.
-- +goose StatementBegin
CREATE FUNCTION koogallery_messages_drop_partitions(keep_months integer, now timestamptz) RETURNS SETOF text
LANGUAGE plpgsql AS $$
DECLARE
    part text;
    first date;
BEGIN
    IF keep_months < 1 THEN
        RAISE EXCEPTION 'keep_months must be at least 1, not %', keep_months;
    END IF;
    PERFORM pg_advisory_xact_lock(hashtext('koogallery_messages partitions'));
    FOR part IN
        SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent = 'koogallery_messages'::regclass AND c.relname ~ '^koogallery_messages_[0-9]{4}_[0-9]{2}$'
        ORDER BY c.relname
    LOOP
        first := to_date(right(part, 7), 'YYYY_MM');
        IF (first + interval '1 month')::timestamp AT TIME ZONE 'UTC' <= now - make_interval(months => keep_months) THEN
            EXECUTE format('ALTER TABLE koogallery_messages DETACH PARTITION %I', part);
            EXECUTE format('DROP TABLE %I', part);
            RETURN NEXT part;
        END IF;
    END LOOP;
END;
$$;
-- +goose StatementEnd

-- +goose StatementBegin
DO $$
DECLARE
    idx text[];
    def text;
    cols text;
    month date;
BEGIN
    -- The indexes as they are (whatever earlier migrations added), to be built again on the partitioned table.
    SELECT coalesce(array_agg(pg_get_indexdef(indexrelid)), '{}') INTO idx FROM pg_index
    WHERE indrelid = 'koogallery_messages'::regclass AND NOT indisprimary;
    ALTER TABLE koogallery_messages RENAME TO koogallery_messages_unpartitioned;
    CREATE TABLE koogallery_messages (LIKE koogallery_messages_unpartitioned
        INCLUDING DEFAULTS INCLUDING GENERATED INCLUDING CONSTRAINTS INCLUDING STORAGE INCLUDING COMMENTS)
        PARTITION BY RANGE (received_at);
    ALTER TABLE koogallery_messages ADD PRIMARY KEY (id, received_at);
    ALTER SEQUENCE koogallery_messages_id_seq OWNED BY koogallery_messages.id;
    FOR month IN
        SELECT DISTINCT date_trunc('month', received_at AT TIME ZONE 'UTC')::date FROM koogallery_messages_unpartitioned
        UNION SELECT (date_trunc('month', now() AT TIME ZONE 'UTC') + make_interval(months => n))::date FROM generate_series(0, 2) n
    LOOP
        PERFORM koogallery_messages_ensure_partition(month);
    END LOOP;
    SELECT string_agg(quote_ident(column_name), ', ' ORDER BY ordinal_position) INTO cols
    FROM information_schema.columns
    WHERE table_schema = current_schema() AND table_name = 'koogallery_messages_unpartitioned' AND is_generated = 'NEVER';
    EXECUTE format('INSERT INTO koogallery_messages (%s) SELECT %s FROM koogallery_messages_unpartitioned', cols, cols);
    DROP TABLE koogallery_messages_unpartitioned;
    FOREACH def IN ARRAY idx LOOP
        EXECUTE def;
    END LOOP;
END;
$$;
-- +goose StatementEnd
CREATE TRIGGER koogallery_messages_append_only BEFORE UPDATE OR DELETE ON koogallery_messages
    FOR EACH ROW EXECUTE FUNCTION koogallery_messages_append_only();

-- +goose Down
-- +goose StatementBegin
DO $$
DECLARE
    idx text[];
    def text;
    cols text;
BEGIN
    SELECT coalesce(array_agg(pg_get_indexdef(i.indexrelid)), '{}') INTO idx FROM pg_index i
    WHERE i.indrelid = 'koogallery_messages'::regclass AND NOT i.indisprimary;
    ALTER TABLE koogallery_messages RENAME TO koogallery_messages_partitioned;
    CREATE TABLE koogallery_messages (LIKE koogallery_messages_partitioned
        INCLUDING DEFAULTS INCLUDING GENERATED INCLUDING CONSTRAINTS INCLUDING STORAGE INCLUDING COMMENTS);
    ALTER TABLE koogallery_messages ADD PRIMARY KEY (id);
    ALTER SEQUENCE koogallery_messages_id_seq OWNED BY koogallery_messages.id;
    SELECT string_agg(quote_ident(column_name), ', ' ORDER BY ordinal_position) INTO cols
    FROM information_schema.columns
    WHERE table_schema = current_schema() AND table_name = 'koogallery_messages_partitioned' AND is_generated = 'NEVER';
    EXECUTE format('INSERT INTO koogallery_messages (%s) SELECT %s FROM koogallery_messages_partitioned', cols, cols);
    DROP TABLE koogallery_messages_partitioned;
    FOREACH def IN ARRAY idx LOOP
        EXECUTE def;
    END LOOP;
END;
$$;
-- +goose StatementEnd
CREATE TRIGGER koogallery_messages_append_only BEFORE UPDATE OR DELETE ON koogallery_messages
    FOR EACH ROW EXECUTE FUNCTION koogallery_messages_append_only();
DROP FUNCTION koogallery_messages_drop_partitions(integer, timestamptz);
DROP FUNCTION koogallery_messages_ensure_partition(date);
