package ledger

// candidatesSQL selects, for the instances in one batch, every order line that a close ending at $3 settles:
// the rules of settlement.Evaluate written set-based (a test runs both on the same rows and compares them).
//
// Parameters:
//
//	$1 text       batch lower bound, exclusive (instance_id > $1)
//	$2 text       batch upper bound, inclusive (instance_id <= $2); NULL for no bound
//	$3 timestamp  the period's end (exclusive)
//	$4 text[]     product ids of the products this close settles  ┐ the catalog snapshot
//	$5 text[]     their product types                             │ (settlement.Terms)
//	$6 numeric[]  their rates (fee rate or revenue share)          ┘
//
// All order lines of an instance are in one batch, so a refund is always decided with the line it refunds.
// The result is the CTE "lines" with the line's figures computed by the one rounding rule (settlement_round).
const candidatesSQL = `
WITH prod AS (
    SELECT * FROM unnest($4::text[], $5::text[], $6::numeric[]) AS p(product_id, product_type, rate)
), rows AS MATERIALIZED (
    SELECT o.order_id, o.order_line_id, o.instance_id, o.order_type, o.product_id, o.sku_code,
           o.paid_amount, o.list_amount, o.refers_to_order_id, o.effective_at,
           (o.test_flag OR i.test_flag) AS test, i.supervision,
           s.order_id IS NOT NULL AS settled, s.product_type AS settled_type, s.rate AS settled_rate
    FROM instances i
    JOIN orders o ON o.instance_id = i.instance_id
    -- A probe of the ledger's primary key per order line (OFFSET 0 keeps the planner from turning it into a
    -- scan of every line ever settled).
    LEFT JOIN LATERAL (SELECT s.order_id, s.product_type, s.rate FROM settlement_lines s
                       WHERE s.order_id = o.order_id AND s.order_line_id = o.order_line_id OFFSET 0) s ON true
    WHERE i.instance_id > $1 AND ($2::text IS NULL OR i.instance_id <= $2::text)
      -- the same bounds on orders, so its instance index reads only this batch's rows
      AND o.instance_id > $1 AND ($2::text IS NULL OR o.instance_id <= $2::text)
), refunded AS (
    -- effective refunds per refunded order, for the full-refund attribution rule
    SELECT instance_id, refers_to_order_id AS order_id, sum(paid_amount) AS total, max(effective_at) AS last_at
    FROM rows
    WHERE order_type IN ('UNSUBSCRIBE', 'REFUND') AND NOT test AND effective_at < $3
    GROUP BY instance_id, refers_to_order_id
), charges AS MATERIALIZED (
    SELECT r.order_id, r.order_line_id, r.instance_id, r.order_type, r.product_id, r.sku_code,
           r.paid_amount, r.list_amount, r.refers_to_order_id, p.product_type, p.rate,
           LEAST(r.effective_at,
                 CASE WHEN r.paid_amount > 0 AND r.paid_amount + f.total <= 0 THEN f.last_at END) AS attributed_at
    FROM rows r
    JOIN prod p ON p.product_id = r.product_id
    LEFT JOIN refunded f ON f.instance_id = r.instance_id AND f.order_id = r.order_id
    LEFT JOIN settlement_payments pay ON pay.order_id = r.order_id
    WHERE r.order_type IN ('NEW', 'TRIAL_TO_FORMAL', 'RENEW', 'CHANGE')
      AND NOT r.test AND NOT r.settled
      AND r.supervision IN ('NOT_INVOLVED', 'COMPLETED')
      AND (pay.order_id IS NULL OR NOT pay.credit OR pay.repaid_at < $3)
), origin AS (
    -- the line a refund refunds: the refunded order's (lowest) charge line on the same instance
    SELECT DISTINCT ON (o.instance_id, o.order_id)
           o.instance_id, o.order_id, o.order_line_id, o.product_id, o.sku_code, o.settled, o.settled_type, o.settled_rate
    FROM rows o
    WHERE o.order_type IN ('NEW', 'TRIAL_TO_FORMAL', 'RENEW', 'CHANGE')
      AND (o.instance_id, o.order_id) IN (SELECT instance_id, refers_to_order_id FROM rows
                                          WHERE order_type IN ('UNSUBSCRIBE', 'REFUND'))
    ORDER BY o.instance_id, o.order_id, o.order_line_id
), eligible AS (
    SELECT order_id, order_line_id, instance_id, order_type, product_id, sku_code, refers_to_order_id,
           attributed_at, paid_amount, list_amount, product_type, rate
    FROM charges
    WHERE attributed_at < $3
    UNION ALL
    SELECT r.order_id, r.order_line_id, r.instance_id, r.order_type,
           coalesce(nullif(r.product_id, ''), o.product_id), coalesce(nullif(r.sku_code, ''), o.sku_code),
           r.refers_to_order_id, r.effective_at, r.paid_amount, r.list_amount,
           CASE WHEN o.settled THEN o.settled_type ELSE c.product_type END,
           CASE WHEN o.settled THEN o.settled_rate ELSE c.rate END
    FROM rows r
    JOIN origin o ON o.instance_id = r.instance_id AND o.order_id = r.refers_to_order_id
    LEFT JOIN charges c ON c.order_id = o.order_id AND c.order_line_id = o.order_line_id AND c.attributed_at < $3
    WHERE r.order_type IN ('UNSUBSCRIBE', 'REFUND') AND NOT r.test AND NOT r.settled AND r.effective_at < $3
      AND ((o.settled AND o.settled_type IN (SELECT product_type FROM prod)) OR c.order_id IS NOT NULL)
), lines AS (
    SELECT e.*, a.revenue, a.revenue - a.settlement AS platform_fee, a.settlement
    FROM eligible e
    CROSS JOIN LATERAL (SELECT settlement_round(e.paid_amount) AS revenue) rv
    CROSS JOIN LATERAL (
        SELECT rv.revenue,
               CASE WHEN e.product_type = 'joint-operation' THEN settlement_round(rv.revenue * e.rate)
                    ELSE rv.revenue - settlement_round(rv.revenue * e.rate) END AS settlement
    ) a
)`

// applyBatchSQL writes one batch's lines into their bills and records the batch's totals, in one statement.
// Extra parameters: $7 text[] bill product types, $8 bigint[] their bill ids, $9 close id, $10 batch number.
// A line another close settled meanwhile makes the insert fail on the primary key, and the retried batch then
// sees it as settled: an order line is never settled twice.
const applyBatchSQL = candidatesSQL + `, ins AS (
    INSERT INTO settlement_lines (order_id, order_line_id, bill_id, instance_id, order_type, product_id, sku_code,
                                  refers_to_order_id, attributed_at, paid_amount, list_amount, product_type, rate,
                                  revenue, platform_fee, settlement)
    SELECT l.order_id, l.order_line_id, ($8::bigint[])[array_position($7::text[], l.product_type)], l.instance_id,
           l.order_type, l.product_id, l.sku_code, l.refers_to_order_id, l.attributed_at, l.paid_amount, l.list_amount,
           l.product_type, l.rate, l.revenue, l.platform_fee, l.settlement
    FROM lines l
    WHERE array_position($7::text[], l.product_type) IS NOT NULL
    RETURNING product_type, revenue, platform_fee, settlement, ` + lineHashExpr + ` AS h
), totals AS (
    INSERT INTO settlement_batch_totals (close_id, batch_no, product_type, line_count, revenue, platform_fee, settlement, digest)
    SELECT $9, $10, product_type, count(*), sum(revenue), sum(platform_fee), sum(settlement), sum(h)
    FROM ins GROUP BY product_type
    RETURNING product_type, line_count, revenue, platform_fee, settlement
)
SELECT product_type, line_count, revenue::text, platform_fee::text, settlement::text FROM totals`

// estimateSQL aggregates what a close would settle now, without writing anything.
const estimateSQL = candidatesSQL + `
SELECT product_type, count(*), coalesce(sum(revenue), 0)::text, coalesce(sum(platform_fee), 0)::text,
       coalesce(sum(settlement), 0)::text
FROM lines GROUP BY product_type`

// lineHashExpr is the 64-bit hash of one line over every stored column, written so the same expression reads
// the columns of a row being inserted (RETURNING) and of a stored row. It chains PostgreSQL's extended hash
// functions (the ones hash partitioning relies on) instead of formatting numbers as text, which is several times
// cheaper at a million lines; times are hashed as UTC wall time, independent of the session's time zone.
const lineHashExpr = `hash_numeric_extended(settlement, hash_numeric_extended(platform_fee, hash_numeric_extended(revenue,
	hash_numeric_extended(rate, hash_numeric_extended(list_amount, hash_numeric_extended(paid_amount,
	timestamp_hash_extended(attributed_at AT TIME ZONE 'UTC',
	hashtextextended(concat_ws('|', order_id, order_line_id, instance_id, order_type, product_id, sku_code,
	                           coalesce(refers_to_order_id, ''), product_type), 0))))))))`

// lineDigestSQL is the order-independent digest of a bill's lines: their count, the sums of their amounts, and
// the sum of their line hashes (taken modulo 2^64 in Go). A sum does not depend on the order lines were written
// in, so batches can run in parallel and in any order and still yield the same digest; each batch records its
// share (settlement_batch_totals.digest) and a re-run recomputes it from the stored lines to verify the bill.
const lineDigestSQL = `
SELECT count(*), coalesce(sum(revenue), 0)::text, coalesce(sum(platform_fee), 0)::text,
       coalesce(sum(settlement), 0)::text, coalesce(sum(` + lineHashExpr + `), 0)::text
FROM settlement_lines WHERE bill_id = $1`

// adjustmentDigestSQL is the same digest over the adjustments a bill includes.
const adjustmentDigestSQL = `
SELECT count(*), coalesce(sum(amount), 0)::text,
       coalesce(sum(hash_numeric_extended(amount, timestamp_hash_extended(created_at AT TIME ZONE 'UTC',
           hashtextextended(concat_ws('|', adjustment_id, product_type, reason, coalesce(order_id, ''),
                                      coalesce(corrects_period, ''), created_by), 0)))), 0)::text
FROM settlement_adjustments WHERE bill_id = $1`
