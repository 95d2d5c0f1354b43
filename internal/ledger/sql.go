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
//	$7 timestamp  the ledger horizon: the latest period end of the bills other closes wrote (-infinity when
//	              none); see chargeProbe
//
// All order lines of an instance are in one batch, so a refund is always decided with the line it refunds.
// Refunds are rare, so the statement reads the batch's refund rows first (a small set), and the charges in one
// streaming pass that looks up their refunds by hash; each refund then looks up its original line by key. The
// original's eligibility is the same expression as a charge's (chargeAtExpr). The result is the CTE "lines",
// with the line's figures computed by the one rounding rule (settlement_round).
const candidatesSQL = `
WITH prod AS (
    SELECT * FROM unnest($4::text[], $5::text[], $6::numeric[]) AS p(product_id, product_type, rate)
), refund_rows AS (
    SELECT o.order_id, o.order_line_id, o.instance_id, o.order_type, o.product_id, o.sku_code, o.paid_amount,
           o.list_amount, o.refers_to_order_id, o.effective_at, o.test_flag OR i.test_flag AS test,
           s.order_id IS NOT NULL AS settled
    FROM instances i
    JOIN orders o ON o.instance_id = i.instance_id
    ` + ledgerProbe + `
    WHERE ` + batchBounds + ` AND o.order_type IN ('UNSUBSCRIBE', 'REFUND')
), refunded AS (
    -- effective refunds of each refunded order, for the full-refund attribution rule
    SELECT instance_id, refers_to_order_id AS order_id, sum(paid_amount) AS total, max(effective_at) AS last_at
    FROM refund_rows
    WHERE NOT test AND effective_at < $3
    GROUP BY instance_id, refers_to_order_id
), charge_lines AS (
    -- (OFFSET 0: decide each charge once, not once for the filter and again for the column)
    SELECT * FROM (
        SELECT o.order_id, o.order_line_id, o.instance_id, o.order_type, o.product_id, o.sku_code, o.refers_to_order_id,
               c.charge_at AS attributed_at, o.paid_amount, o.list_amount, p.product_type, p.rate
        FROM instances i
        JOIN orders o ON o.instance_id = i.instance_id
        ` + chargeJoins + `
        WHERE ` + batchBounds + `
        OFFSET 0) c
    WHERE attributed_at < $3
), refund_lines AS (
    -- a refund is settled with its original line (the refunded order's lowest charge line on the instance) when
    -- that line is eligible now, or on its own, at the original's type and rate, when the original is settled
    SELECT r.order_id, r.order_line_id, r.instance_id, r.order_type,
           coalesce(nullif(r.product_id, ''), o.product_id), coalesce(nullif(r.sku_code, ''), o.sku_code),
           r.refers_to_order_id, r.effective_at, r.paid_amount, r.list_amount,
           CASE WHEN s.order_id IS NOT NULL THEN s.product_type ELSE p.product_type END,
           CASE WHEN s.order_id IS NOT NULL THEN s.rate ELSE p.rate END
    FROM refund_rows r
    JOIN LATERAL (SELECT o.* FROM orders o
                  WHERE o.order_id = r.refers_to_order_id AND o.instance_id = r.instance_id
                    AND o.order_type IN ('NEW', 'TRIAL_TO_FORMAL', 'RENEW', 'CHANGE')
                  ORDER BY o.order_line_id LIMIT 1) o ON true
    JOIN LATERAL (SELECT i.* FROM instances i WHERE i.instance_id = o.instance_id OFFSET 0) i ON true
    ` + chargeJoins + `
    WHERE NOT r.test AND NOT r.settled AND r.effective_at < $3
      AND ((s.order_id IS NOT NULL AND s.product_type = ANY ($5::text[])) OR c.charge_at < $3)
), lines AS (
    -- the amounts, by the one rounding rule; OFFSET 0 keeps each stage a separate step so that the planner
    -- does not substitute revenue into every expression that uses it and round it five times per line
    SELECT a.*, a.revenue - a.settlement AS platform_fee
    FROM (SELECT r.*, CASE WHEN r.product_type = 'joint-operation' THEN settlement_round(r.revenue * r.rate)
                           ELSE r.revenue - settlement_round(r.revenue * r.rate) END AS settlement
          FROM (SELECT e.*, settlement_round(e.paid_amount) AS revenue
                FROM (SELECT * FROM charge_lines UNION ALL SELECT * FROM refund_lines) e OFFSET 0) r
          OFFSET 0) a
)`

// batchBounds restricts instances i and orders o to the batch (the bound on orders lets its instance index read
// only the batch's rows).
const batchBounds = `i.instance_id > $1 AND ($2::text IS NULL OR i.instance_id <= $2::text)
      AND o.instance_id > $1 AND ($2::text IS NULL OR o.instance_id <= $2::text)`

// ledgerProbe looks an order line up in the ledger by its primary key (s.order_id is NULL when it is not
// settled). OFFSET 0 keeps the planner from turning the probe into a scan of every line ever settled.
const ledgerProbe = `LEFT JOIN LATERAL (SELECT s.order_id, s.product_type, s.rate FROM settlement_lines s
                       WHERE s.order_id = o.order_id AND s.order_line_id = o.order_line_id OFFSET 0) s ON true`

// chargeProbe is ledgerProbe for a charge line o, skipped where the ledger cannot hold the line: every line in the
// ledger was written by a close whose period ended after the line's attributed time, a charge is attributed at
// its effective time or, when refunded, possibly earlier, so a charge effective at or after $7 (the latest end of
// a period any other close wrote lines for) and without effective refunds (f) is not settled. In a monthly close
// that is nearly every charge of the month, and each skipped probe is a B-tree descent saved per line; the
// condition reads only the outer row, so PostgreSQL evaluates it before the index is touched. Should the
// reasoning ever be wrong, the primary key still refuses the second insert of a line: a skipped probe can fail a
// close, never settle a line twice.
const chargeProbe = `LEFT JOIN LATERAL (SELECT s.order_id, s.product_type, s.rate FROM settlement_lines s
                       WHERE s.order_id = o.order_id AND s.order_line_id = o.order_line_id
                         AND (o.effective_at < $7 OR f.order_id IS NOT NULL) OFFSET 0) s ON true`

// chargeJoins brings what decides a charge line o of instance i: the product's terms in this close (p), the
// payment (pay), its effective refunds (f), the ledger (s), and computes c.charge_at, the time the charge counts
// when it is eligible for every reason but time (NULL otherwise): a charge order type, not a dial test, not
// settled, a product this close settles, supervision NOT_INVOLVED or COMPLETED, paid (credit-paid: repaid
// before the period end), attributed at its effective time or, when fully refunded, at its last refund if that
// is earlier. Each join finds at most one row per charge, so their order changes nothing but that the ledger
// probe can see f.
const chargeJoins = `LEFT JOIN prod p ON p.product_id = o.product_id
    LEFT JOIN settlement_payments pay ON pay.order_id = o.order_id
    LEFT JOIN refunded f ON f.instance_id = o.instance_id AND f.order_id = o.order_id
    ` + chargeProbe + `
    CROSS JOIN LATERAL (SELECT CASE
        WHEN o.order_type IN ('NEW', 'TRIAL_TO_FORMAL', 'RENEW', 'CHANGE') AND NOT (o.test_flag OR i.test_flag)
             AND s.order_id IS NULL AND p.product_type IS NOT NULL AND i.supervision IN ('NOT_INVOLVED', 'COMPLETED')
             AND (pay.order_id IS NULL OR NOT pay.credit OR pay.repaid_at < $3)
        THEN LEAST(o.effective_at, CASE WHEN o.paid_amount > 0 AND o.paid_amount + f.total <= 0 THEN f.last_at END)
    END AS charge_at) c`

// applyBatchSQL writes one batch's lines into their bills and records the batch's totals, in one statement.
// Extra parameters: $8 text[] bill product types, $9 bigint[] their bill ids, $10 close id, $11 batch number.
// A line another close settled meanwhile makes the insert fail on the primary key, and the retried batch then
// sees it as settled: an order line is never settled twice.
const applyBatchSQL = candidatesSQL + `, ins AS (
    INSERT INTO settlement_lines (order_id, order_line_id, bill_id, instance_id, order_type, product_id, sku_code,
                                  refers_to_order_id, attributed_at, paid_amount, list_amount, product_type, rate,
                                  revenue, platform_fee, settlement)
    SELECT l.order_id, l.order_line_id, ($9::bigint[])[array_position($8::text[], l.product_type)], l.instance_id,
           l.order_type, l.product_id, l.sku_code, l.refers_to_order_id, l.attributed_at, l.paid_amount, l.list_amount,
           l.product_type, l.rate, l.revenue, l.platform_fee, l.settlement
    FROM lines l
    WHERE array_position($8::text[], l.product_type) IS NOT NULL
    RETURNING product_type, revenue, platform_fee, settlement, ` + lineHashExpr + ` AS h
), totals AS (
    INSERT INTO settlement_batch_totals (close_id, batch_no, product_type, line_count, revenue, platform_fee, settlement, digest)
    SELECT $10, $11, product_type, count(*), sum(revenue), sum(platform_fee), sum(settlement), sum(h)
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
// cheaper at a million lines; times are hashed as UTC wall time, independent of the session's time zone. A usage
// line also hashes its month, quantity and unit price; an order line's hash is what it always was, so bills closed
// before usage was settled still verify.
const lineHashExpr = `CASE WHEN usage_month IS NULL THEN hash_numeric_extended(settlement, hash_numeric_extended(platform_fee, hash_numeric_extended(revenue,
	hash_numeric_extended(rate, hash_numeric_extended(list_amount, hash_numeric_extended(paid_amount,
	timestamp_hash_extended(attributed_at AT TIME ZONE 'UTC',
	hashtextextended(concat_ws('|', order_id, order_line_id, instance_id, order_type, product_id, sku_code,
	                           coalesce(refers_to_order_id, ''), product_type), 0))))))))
	ELSE hash_numeric_extended(unit_price, hash_numeric_extended(usage_quantity, hashtextextended(usage_month, hash_numeric_extended(settlement, hash_numeric_extended(platform_fee, hash_numeric_extended(revenue,
	hash_numeric_extended(rate, hash_numeric_extended(list_amount, hash_numeric_extended(paid_amount,
	timestamp_hash_extended(attributed_at AT TIME ZONE 'UTC',
	hashtextextended(concat_ws('|', order_id, order_line_id, instance_id, order_type, product_id, sku_code,
	                           coalesce(refers_to_order_id, ''), product_type), 0)))))))))))
	END`

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

// usageCandidatesSQL selects, for the instances in one batch, the pay-per-use usage a close ending at $3 bills:
// per instance and consumption month (the Beijing-time month its hourly window starts in), the usage the
// marketplace accepted (usage_pushes, status accepted) minus what earlier bills settled of that instance and
// month. Usage deducted from a package (用完即停, package_instance_id set) was paid with the package and is not
// billed again. A dial test (testFlag on the instance or any of its orders) is never billed, and supervision must
// be NOT_INVOLVED or COMPLETED, as for order lines. The amount is the exact quantity × unit price, rounded once
// by the one rounding rule; fee and settlement follow as for every other line.
//
// Parameters:
//
//	$1 text       batch lower bound, exclusive   ┐ as candidatesSQL
//	$2 text       batch upper bound, inclusive   │
//	$3 timestamp  the period's end (exclusive)   ┘
//	$4 text[]     product ids of the pay-per-use products this close settles
//	$5 text[]     their product types
//	$6 numeric[]  their rates
//	$7 numeric[]  their usage unit prices
//
// The line key is (the instance's order id, 'usage:<instance>:<consumption month>:<bill period>'): a re-run of a
// close writes the same keys, and usage accepted after its month was billed becomes one more line of a later bill.
const usageCandidatesSQL = `
WITH prod AS (
    SELECT * FROM unnest($4::text[], $5::text[], $6::numeric[], $7::numeric[]) AS p(product_id, product_type, rate, unit_price)
), accepted AS (
    SELECT u.instance_id, to_char(u.usage_hour AT TIME ZONE 'Asia/Shanghai', 'YYYY-MM') AS usage_month,
           sum(u.value) AS quantity, max(u.usage_hour) + interval '1 hour' AS last_end
    FROM usage_pushes u
    WHERE u.instance_id > $1 AND ($2::text IS NULL OR u.instance_id <= $2::text)
      AND u.status = 'accepted' AND u.package_instance_id = '' AND u.usage_hour < $3
    GROUP BY 1, 2
), settled AS (
    SELECT s.instance_id, s.usage_month, sum(s.usage_quantity) AS quantity
    FROM settlement_lines s
    WHERE s.usage_month IS NOT NULL AND s.instance_id > $1 AND ($2::text IS NULL OR s.instance_id <= $2::text)
    GROUP BY 1, 2
), test_instances AS (
    SELECT DISTINCT o.instance_id FROM orders o
    WHERE o.test_flag AND o.instance_id > $1 AND ($2::text IS NULL OR o.instance_id <= $2::text)
), usage_lines AS (
    SELECT i.order_id,
           'usage:' || i.instance_id || ':' || a.usage_month || ':'
               || to_char(($3::timestamptz - interval '1 microsecond') AT TIME ZONE 'Asia/Shanghai', 'YYYY-MM') AS order_line_id,
           i.instance_id, i.product_id, i.sku_code, least(a.last_end, $3::timestamptz) AS attributed_at,
           p.product_type, p.rate, a.usage_month, a.quantity - coalesce(s.quantity, 0) AS usage_quantity, p.unit_price
    FROM accepted a
    JOIN instances i ON i.instance_id = a.instance_id
    JOIN prod p ON p.product_id = i.product_id
    LEFT JOIN settled s ON s.instance_id = a.instance_id AND s.usage_month = a.usage_month
    LEFT JOIN test_instances t ON t.instance_id = a.instance_id
    WHERE i.instance_id > $1 AND ($2::text IS NULL OR i.instance_id <= $2::text)
      AND NOT i.test_flag AND t.instance_id IS NULL AND i.supervision IN ('NOT_INVOLVED', 'COMPLETED')
      AND a.quantity <> coalesce(s.quantity, 0)
), usage_amounts AS (
    SELECT a.*, a.revenue - a.settlement AS platform_fee
    FROM (SELECT r.*, CASE WHEN r.product_type = 'joint-operation' THEN settlement_round(r.revenue * r.rate)
                           ELSE r.revenue - settlement_round(r.revenue * r.rate) END AS settlement
          FROM (SELECT l.*, settlement_round(l.usage_quantity * l.unit_price) AS revenue FROM usage_lines l OFFSET 0) r
          OFFSET 0) a
)`

// applyUsageSQL writes one batch's usage lines and adds them to the batch's totals (the order lines of the batch
// may have written a row for the product type already). Extra parameters: $8 text[] bill product types, $9
// bigint[] their bill ids, $10 close id, $11 batch number. It returns how many lines it wrote.
const applyUsageSQL = usageCandidatesSQL + `, ins AS (
    INSERT INTO settlement_lines (order_id, order_line_id, bill_id, instance_id, order_type, product_id, sku_code,
                                  refers_to_order_id, attributed_at, paid_amount, list_amount, product_type, rate,
                                  revenue, platform_fee, settlement, usage_month, usage_quantity, unit_price)
    SELECT l.order_id, l.order_line_id, ($9::bigint[])[array_position($8::text[], l.product_type)], l.instance_id,
           'USAGE', l.product_id, l.sku_code, NULL, l.attributed_at, l.revenue, l.revenue, l.product_type, l.rate,
           l.revenue, l.platform_fee, l.settlement, l.usage_month, l.usage_quantity, l.unit_price
    FROM usage_amounts l
    WHERE array_position($8::text[], l.product_type) IS NOT NULL
    RETURNING product_type, revenue, platform_fee, settlement, ` + lineHashExpr + ` AS h
), totals AS (
    INSERT INTO settlement_batch_totals AS t (close_id, batch_no, product_type, line_count, revenue, platform_fee, settlement, digest)
    SELECT $10, $11, product_type, count(*), sum(revenue), sum(platform_fee), sum(settlement), sum(h)
    FROM ins GROUP BY product_type
    ON CONFLICT (close_id, batch_no, product_type) DO UPDATE
        SET line_count = t.line_count + excluded.line_count, revenue = t.revenue + excluded.revenue,
            platform_fee = t.platform_fee + excluded.platform_fee, settlement = t.settlement + excluded.settlement,
            digest = t.digest + excluded.digest
    RETURNING 1
)
SELECT count(*) FROM ins`

// estimateUsageSQL aggregates the usage a close would bill now, without writing anything.
const estimateUsageSQL = usageCandidatesSQL + `
SELECT product_type, count(*), coalesce(sum(usage_quantity), 0)::text, coalesce(sum(revenue), 0)::text,
       coalesce(sum(platform_fee), 0)::text, coalesce(sum(settlement), 0)::text
FROM usage_amounts GROUP BY product_type`
