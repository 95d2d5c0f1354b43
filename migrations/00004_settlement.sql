-- +goose Up
-- Monthly settlement (docs/koogallery.md, "Settlement rules"; docs/architecture.md,
-- "The flow of one settlement"): bills per (period, product type), their lines, the closes that compute them in
-- bounded batches, settlement's own payment state (credit-paid orders and their repayments), and adjustments.
-- Settlement reads instances and orders and never writes them.
--
-- The ledger's promises are constraints, not conventions: an order line is settled at most once (the primary key
-- of settlement_lines), a bill exists once per period and product type, and a final bill, its lines and the
-- adjustments it includes cannot be changed or deleted (triggers below); a correction is a new adjustment that a
-- later bill includes.

-- The one rounding rule for money (settlement.Round in Go): half to even at 0.01 yuan. PostgreSQL's round()
-- rounds halves away from zero; when that landed on an odd cent from an exact half (|round(x,2) − x| = 0.005),
-- step back one cent towards zero, which is the even neighbour. The function is not STRICT so the planner can
-- inline it (a CASE body cannot be proven strict); amounts stay far below the bigint range of cents.
-- +goose StatementBegin
CREATE FUNCTION settlement_round(x numeric) RETURNS numeric
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT CASE WHEN abs(round(x, 2) - x) = 0.005 AND (round(x, 2) * 100)::bigint % 2 <> 0
                THEN round(x, 2) - sign(x) * 0.01
                ELSE round(x, 2) END
$$;
-- +goose StatementEnd

CREATE TABLE settlement_bills (
    bill_id            bigserial PRIMARY KEY,
    period             text NOT NULL CHECK (period ~ '^[0-9]{4}-[0-9]{2}$'),
    product_type       text NOT NULL CHECK (product_type IN ('general', 'joint-operation')),
    -- draft while a close computes it; final (lines settled) or carried_forward (below the threshold: nothing
    -- settled, every line stays eligible for the next period).
    status             text NOT NULL CHECK (status IN ('draft', 'final', 'carried_forward')),
    period_start       timestamptz NOT NULL,
    period_end         timestamptz NOT NULL,
    threshold          numeric(18, 2) NOT NULL,
    close_id           bigint,
    line_count         bigint NOT NULL DEFAULT 0,
    revenue_total      numeric(18, 2) NOT NULL DEFAULT 0,
    fee_total          numeric(18, 2) NOT NULL DEFAULT 0,
    settlement_total   numeric(18, 2) NOT NULL DEFAULT 0,
    adjustment_count   bigint NOT NULL DEFAULT 0,
    adjustment_total   numeric(18, 2) NOT NULL DEFAULT 0,
    -- What the seller is owed for the bill: settlement_total + adjustment_total (0 when carried forward).
    amount_due         numeric(18, 2) NOT NULL DEFAULT 0,
    -- For a carried-forward bill: what would have been billed.
    carried_line_count bigint NOT NULL DEFAULT 0,
    carried_total      numeric(18, 2) NOT NULL DEFAULT 0,
    -- SHA-256 over the bill's header and a digest of its lines and adjustments (ledger.ContentHash).
    content_hash       text,
    created_at         timestamptz NOT NULL DEFAULT now(),
    finalized_at       timestamptz,
    UNIQUE (period, product_type)
);

-- One attempt of a settlement workflow run to close a period for some product types. Batches belong to it, so a
-- retried activity resumes where the last committed batch ended, and a new run abandons an unfinished one.
CREATE TABLE settlement_closes (
    close_id      bigserial PRIMARY KEY,
    period        text NOT NULL,
    product_types text[] NOT NULL,
    status        text NOT NULL CHECK (status IN ('computing', 'done', 'abandoned')),
    workflow_id   text NOT NULL,
    run_id        text NOT NULL,
    period_end    timestamptz NOT NULL,
    -- The products and rates this close applies (a snapshot of the catalog), so every batch uses the same terms.
    terms         jsonb NOT NULL,
    bills         jsonb NOT NULL,
    batch_size    integer NOT NULL,
    requested_by  text NOT NULL DEFAULT '',
    created_at    timestamptz NOT NULL DEFAULT now(),
    finished_at   timestamptz,
    UNIQUE (run_id, period)
);

-- A bounded slice of instances (instance_id > lo AND instance_id <= hi); all order lines of an instance are in
-- the same batch, so an order and its refund are always decided together.
CREATE TABLE settlement_batches (
    close_id    bigint NOT NULL REFERENCES settlement_closes (close_id) ON DELETE CASCADE,
    batch_no    integer NOT NULL,
    lo          text NOT NULL,
    hi          text,
    done_at     timestamptz,
    duration_ms bigint,
    PRIMARY KEY (close_id, batch_no)
);

CREATE TABLE settlement_batch_totals (
    close_id     bigint NOT NULL,
    batch_no     integer NOT NULL,
    product_type text NOT NULL,
    line_count   bigint NOT NULL,
    revenue      numeric(18, 2) NOT NULL,
    platform_fee numeric(18, 2) NOT NULL,
    settlement   numeric(18, 2) NOT NULL,
    digest       numeric NOT NULL,   -- sum of the batch's line hashes (see the ledger's lineDigestSQL)
    PRIMARY KEY (close_id, batch_no, product_type),
    FOREIGN KEY (close_id, batch_no) REFERENCES settlement_batches (close_id, batch_no) ON DELETE CASCADE
);

-- The ledger: one row per settled order line. The primary key is the "settled once" guarantee. Lines carry
-- every figure of the bill so a bill never changes when other tables do. No foreign key to the bill: a close
-- writes a million lines in seconds, and only the close (which creates the bill first) writes here.
CREATE TABLE settlement_lines (
    order_id           text NOT NULL,
    order_line_id      text NOT NULL,
    bill_id            bigint NOT NULL,
    instance_id        text NOT NULL,
    order_type         text NOT NULL,
    product_id         text NOT NULL,
    sku_code           text NOT NULL,
    refers_to_order_id text,
    attributed_at      timestamptz NOT NULL,
    paid_amount        numeric(18, 3) NOT NULL,
    list_amount        numeric(18, 3) NOT NULL,
    product_type       text NOT NULL,
    rate               numeric NOT NULL,
    revenue            numeric(18, 2) NOT NULL,
    platform_fee       numeric(18, 2) NOT NULL,
    settlement         numeric(18, 2) NOT NULL,
    PRIMARY KEY (order_id, order_line_id)
);
-- A close appends its lines together, so a block-range index finds a bill's lines for almost no write cost.
CREATE INDEX settlement_lines_bill_idx ON settlement_lines USING brin (bill_id) WITH (pages_per_range = 16);

-- Settlement's payment state. An order without a row was paid at purchase. credit = paid with 信用支付; it counts
-- as paid once repaid_at (回款) is set. Written by the console and by imports of the transaction-detail export.
CREATE TABLE settlement_payments (
    order_id   text PRIMARY KEY,
    credit     boolean NOT NULL,
    repaid_at  timestamptz,
    source     text NOT NULL CHECK (source IN ('console', 'import')),
    updated_by text NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    CHECK (credit OR repaid_at IS NULL)
);

-- Every change to a payment, append-only: who said what, when, from which file.
CREATE TABLE settlement_payment_events (
    id         bigserial PRIMARY KEY,
    order_id   text NOT NULL,
    credit     boolean NOT NULL,
    repaid_at  timestamptz,
    source     text NOT NULL,
    actor      text NOT NULL,
    import_id  bigint,
    at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX settlement_payment_events_order_idx ON settlement_payment_events (order_id, id);

-- Imported transaction-detail files; the same file (by SHA-256) is imported once.
CREATE TABLE settlement_imports (
    import_id    bigserial PRIMARY KEY,
    sha256       text NOT NULL UNIQUE,
    filename     text NOT NULL DEFAULT '',
    row_count    integer NOT NULL,
    credit_count integer NOT NULL,
    repaid_count integer NOT NULL,
    changed      integer NOT NULL,
    imported_by  text NOT NULL,
    imported_at  timestamptz NOT NULL DEFAULT now()
);

-- Corrections: an amount (to the seller, positive or negative) a later bill of the product type includes.
CREATE TABLE settlement_adjustments (
    adjustment_id   bigserial PRIMARY KEY,
    product_type    text NOT NULL CHECK (product_type IN ('general', 'joint-operation')),
    amount          numeric(18, 2) NOT NULL CHECK (amount <> 0),
    reason          text NOT NULL CHECK (reason <> ''),
    order_id        text,
    corrects_period text,
    created_by      text NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    idempotency_key text UNIQUE,
    bill_id         bigint REFERENCES settlement_bills (bill_id)
);
CREATE INDEX settlement_adjustments_pending_idx ON settlement_adjustments (product_type) WHERE bill_id IS NULL;

-- +goose StatementBegin
CREATE FUNCTION settlement_guard_bill() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.status <> 'draft' THEN
        RAISE EXCEPTION 'settlement bill %/% is %: it cannot be changed; record an adjustment instead',
            OLD.period, OLD.product_type, OLD.status USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    IF TG_OP = 'DELETE' THEN
        RETURN OLD;
    END IF;
    RETURN NEW;
END
$$;
-- +goose StatementEnd
CREATE TRIGGER settlement_bills_immutable BEFORE UPDATE OR DELETE ON settlement_bills
    FOR EACH ROW EXECUTE FUNCTION settlement_guard_bill();

-- +goose StatementBegin
CREATE FUNCTION settlement_guard_line() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    st text;
BEGIN
    SELECT status INTO st FROM settlement_bills WHERE bill_id = OLD.bill_id;
    IF st IS DISTINCT FROM 'draft' THEN
        RAISE EXCEPTION 'order line %/% is settled in a % bill: it cannot be changed; record an adjustment instead',
            OLD.order_id, OLD.order_line_id, coalesce(st, 'missing') USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    IF TG_OP = 'DELETE' THEN
        RETURN OLD;
    END IF;
    RETURN NEW;
END
$$;
-- +goose StatementEnd
CREATE TRIGGER settlement_lines_immutable BEFORE UPDATE OR DELETE ON settlement_lines
    FOR EACH ROW EXECUTE FUNCTION settlement_guard_line();

-- +goose StatementBegin
CREATE FUNCTION settlement_guard_adjustment() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.bill_id IS NOT NULL OR TG_OP = 'DELETE'
        OR NEW.amount IS DISTINCT FROM OLD.amount OR NEW.product_type IS DISTINCT FROM OLD.product_type
        OR NEW.reason IS DISTINCT FROM OLD.reason THEN
        RAISE EXCEPTION 'adjustment % cannot be changed or deleted; record another adjustment instead',
            OLD.adjustment_id USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NEW;
END
$$;
-- +goose StatementEnd
CREATE TRIGGER settlement_adjustments_append_only BEFORE UPDATE OR DELETE ON settlement_adjustments
    FOR EACH ROW EXECUTE FUNCTION settlement_guard_adjustment();

-- +goose Down
DROP TABLE settlement_adjustments;
DROP TABLE settlement_imports;
DROP TABLE settlement_payment_events;
DROP TABLE settlement_payments;
DROP TABLE settlement_lines;
DROP TABLE settlement_batch_totals;
DROP TABLE settlement_batches;
DROP TABLE settlement_closes;
DROP TABLE settlement_bills;
DROP FUNCTION settlement_guard_adjustment();
DROP FUNCTION settlement_guard_line();
DROP FUNCTION settlement_guard_bill();
DROP FUNCTION settlement_round(numeric);
