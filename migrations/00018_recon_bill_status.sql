-- +goose Up
-- The marketplace's bill of each period and product type as it moves through its own process (出账 → 会签 → 申付 →
-- 支付; docs/settlement.md, "The marketplace's bill states and payment"), the invoices the seller issued for it and
-- the payments received. Operators record these (finance scope), and imports whose export carries the bill status
-- move the state. kooflow's own bills (settlement_bills) are not touched.

CREATE TABLE recon_bills (
    period       text NOT NULL CHECK (period ~ '^[0-9]{4}-[0-9]{2}$'),
    product_type text NOT NULL CHECK (product_type IN ('general', 'joint-operation')),
    state        text NOT NULL CHECK (state IN ('BILLED', 'COUNTERSIGN_PENDING', 'COUNTERSIGNING', 'COUNTERSIGN_REJECTED',
                     'PAYMENT_APPLICATION_PENDING', 'PAYMENT_APPLICATION_FAILED', 'PAYMENT_APPLICATION_REVIEW',
                     'PAYMENT_PROCESSING', 'PAID')),
    updated_by   text NOT NULL,
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (period, product_type)
);

-- Every state change, append-only.
CREATE TABLE recon_bill_events (
    id           bigserial PRIMARY KEY,
    period       text NOT NULL,
    product_type text NOT NULL,
    from_state   text NOT NULL DEFAULT '',
    to_state     text NOT NULL,
    source       text NOT NULL CHECK (source IN ('console', 'import')),
    import_id    bigint,
    actor        text NOT NULL,
    note         text NOT NULL DEFAULT '',
    at           timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX recon_bill_events_bill_idx ON recon_bill_events (period, product_type, id);

-- The VAT invoice the seller issued to Huawei for a bill (one per bill; a replaced invoice is a new number).
CREATE TABLE recon_invoices (
    invoice_id   bigserial PRIMARY KEY,
    period       text NOT NULL,
    product_type text NOT NULL,
    number       text NOT NULL UNIQUE CHECK (number <> ''),
    issued_on    date NOT NULL,
    amount       numeric(18, 2) NOT NULL CHECK (amount > 0),
    created_by   text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX recon_invoices_bill_idx ON recon_invoices (period, product_type, issued_on);

-- Money received for a bill; the reference (the bank transfer's) identifies a receipt, so recording it twice is
-- recording it once.
CREATE TABLE recon_receipts (
    receipt_id   bigserial PRIMARY KEY,
    period       text NOT NULL,
    product_type text NOT NULL,
    received_on  date NOT NULL,
    amount       numeric(18, 2) NOT NULL CHECK (amount > 0),
    reference    text NOT NULL UNIQUE CHECK (reference <> ''),
    created_by   text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX recon_receipts_bill_idx ON recon_receipts (period, product_type);

-- +goose Down
DROP TABLE recon_receipts;
DROP TABLE recon_invoices;
DROP TABLE recon_bill_events;
DROP TABLE recon_bills;
