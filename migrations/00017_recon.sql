-- +goose Up
-- Reconciliation with the marketplace's bill (docs/settlement.md, "Reconciliation with the marketplace's bill"):
-- imported bill-detail exports and their rows, and the diffs computed between an import and kooflow's bill of the
-- same period and product type. Nothing here refers to or changes kooflow's bills: an import is evidence of what
-- the marketplace billed, kept as it was read.

-- One imported bill-detail file; the same file (by SHA-256) is imported once.
CREATE TABLE recon_imports (
    import_id    bigserial PRIMARY KEY,
    sha256       text NOT NULL UNIQUE,
    filename     text NOT NULL DEFAULT '',
    format       text NOT NULL CHECK (format IN ('csv', 'xlsx')),
    period       text NOT NULL CHECK (period ~ '^[0-9]{4}-[0-9]{2}$'),
    product_type text NOT NULL CHECK (product_type IN ('general', 'joint-operation')),
    row_count    bigint NOT NULL,
    revenue_total    numeric(18, 2),
    fee_total        numeric(18, 2),
    settlement_total numeric(18, 2) NOT NULL,
    -- The bill status the export carried (the marketplace's own words), if any.
    bill_status  text NOT NULL DEFAULT '',
    mapping      jsonb NOT NULL,
    imported_by  text NOT NULL,
    imported_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX recon_imports_bill_idx ON recon_imports (period, product_type, import_id);

-- The rows of an import, as read. row_no is the file's row number (header = 1), for error messages and audits.
-- Amounts the export does not carry are NULL. No foreign key to recon_imports: only an import writes here, in the
-- transaction that creates its header, and a million per-row reference checks would double the import's time.
CREATE TABLE recon_lines (
    import_id     bigint NOT NULL,
    row_no        bigint NOT NULL,
    order_id      text NOT NULL,
    order_line_id text NOT NULL,
    order_type    text NOT NULL DEFAULT '',
    revenue       numeric(18, 2),
    platform_fee  numeric(18, 2),
    settlement    numeric(18, 2) NOT NULL
);
-- An import's rows are written together by one COPY and read together by a diff (one hash join), so a block-range
-- index finds them for almost no write cost; a b-tree per row would make a million-row import pay for lookups
-- nothing makes.
CREATE INDEX recon_lines_import_idx ON recon_lines USING brin (import_id) WITH (pages_per_range = 16);

-- One comparison of an import with kooflow's bill as it stood then.
CREATE TABLE recon_diffs (
    diff_id            bigserial PRIMARY KEY,
    import_id          bigint NOT NULL REFERENCES recon_imports (import_id) ON DELETE CASCADE,
    period             text NOT NULL,
    product_type       text NOT NULL,
    bill_status        text NOT NULL,            -- kooflow's bill: final, carried_forward, draft or missing
    bill_content_hash  text NOT NULL DEFAULT '',
    matched_count      bigint NOT NULL,
    matched_total      numeric(18, 2) NOT NULL,
    explained_count    bigint NOT NULL,
    explained_total    numeric(18, 2) NOT NULL,  -- marketplace minus kooflow, over explained lines
    unexplained_count  bigint NOT NULL,
    unexplained_total  numeric(18, 2) NOT NULL,
    marketplace_total  numeric(18, 2) NOT NULL,
    kooflow_total      numeric(18, 2) NOT NULL,
    duration_ms        bigint NOT NULL,
    created_by         text NOT NULL,
    created_at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX recon_diffs_import_idx ON recon_diffs (import_id, diff_id);

-- The differing lines of a diff (matched lines are only counted). kind: MARKETPLACE_ONLY, KOOFLOW_ONLY, AMOUNT.
CREATE TABLE recon_diff_lines (
    diff_id                bigint NOT NULL REFERENCES recon_diffs (diff_id) ON DELETE CASCADE,
    order_id               text NOT NULL,
    order_line_id          text NOT NULL,
    kind                   text NOT NULL CHECK (kind IN ('MARKETPLACE_ONLY', 'KOOFLOW_ONLY', 'AMOUNT')),
    order_type             text NOT NULL DEFAULT '',
    marketplace_settlement numeric(18, 2),
    kooflow_settlement     numeric(18, 2),
    marketplace_revenue    numeric(18, 2),
    kooflow_revenue        numeric(18, 2),
    marketplace_fee        numeric(18, 2),
    kooflow_fee            numeric(18, 2),
    difference             numeric(18, 2) NOT NULL, -- marketplace minus kooflow settlement
    explained              boolean NOT NULL DEFAULT false,
    reason_code            text NOT NULL DEFAULT '',
    reason                 text NOT NULL DEFAULT '',
    PRIMARY KEY (diff_id, order_id, order_line_id)
);

-- +goose Down
DROP TABLE recon_diff_lines;
DROP TABLE recon_diffs;
DROP TABLE recon_lines;
DROP TABLE recon_imports;
