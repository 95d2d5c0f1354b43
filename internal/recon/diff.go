package recon

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/shopspring/decimal"

	"github.com/kooflow/kooflow/internal/catalog"
	"github.com/kooflow/kooflow/internal/refusal"
	"github.com/kooflow/kooflow/internal/settlement"
	"github.com/kooflow/kooflow/internal/store"
)

// Difference kinds.
const (
	KindMarketplaceOnly = "MARKETPLACE_ONLY"
	KindKooflowOnly     = "KOOFLOW_ONLY"
	KindAmount          = "AMOUNT"
)

// Reason codes of reconciliation besides settlement's own (settlement.ReasonCode).
const (
	ReasonCarriedForward = "CARRIED_FORWARD"
	ReasonRefundNetted   = "REFUND_NETTED"
	ReasonUnknownOrder   = "UNKNOWN_ORDER"
)

// explainedReasons are the settlement reasons that explain why a line the marketplace billed is not in kooflow's
// bill: kooflow's records say it is not due yet (or never, for a dial test), or it was settled elsewhere.
var explainedReasons = []settlement.ReasonCode{settlement.ReasonSettled, settlement.ReasonTest, settlement.ReasonSupervision,
	settlement.ReasonUnpaid, settlement.ReasonNotEffective, settlement.ReasonEffectiveLater, settlement.ReasonWaitsForOriginal}

// Summary is one diff's result.
type Summary struct {
	DiffID           int64               `json:"diffId"`
	ImportID         int64               `json:"importId"`
	Period           string              `json:"period"`
	ProductType      catalog.ProductType `json:"productType"`
	BillStatus       string              `json:"kooflowBillStatus"`
	BillContentHash  string              `json:"kooflowBillContentHash,omitempty"`
	MatchedCount     int64               `json:"matchedCount"`
	MatchedTotal     decimal.Decimal     `json:"matchedTotal"`
	ExplainedCount   int64               `json:"explainedCount"`
	ExplainedTotal   decimal.Decimal     `json:"explainedTotal"`
	UnexplainedCount int64               `json:"unexplainedCount"`
	UnexplainedTotal decimal.Decimal     `json:"unexplainedTotal"`
	MarketplaceTotal decimal.Decimal     `json:"marketplaceTotal"`
	KooflowTotal     decimal.Decimal     `json:"kooflowTotal"`
	DurationMS       int64               `json:"durationMs"`
	CreatedBy        string              `json:"createdBy"`
	CreatedAt        time.Time           `json:"createdAt"`
}

// DiffLine is one difference.
type DiffLine struct {
	settlement.Key
	Kind                  string           `json:"kind"`
	OrderType             string           `json:"orderType,omitempty"`
	MarketplaceSettlement *decimal.Decimal `json:"marketplaceSettlement,omitempty"`
	KooflowSettlement     *decimal.Decimal `json:"kooflowSettlement,omitempty"`
	MarketplaceRevenue    *decimal.Decimal `json:"marketplaceRevenue,omitempty"`
	KooflowRevenue        *decimal.Decimal `json:"kooflowRevenue,omitempty"`
	MarketplaceFee        *decimal.Decimal `json:"marketplaceFee,omitempty"`
	KooflowFee            *decimal.Decimal `json:"kooflowFee,omitempty"`
	Difference            decimal.Decimal  `json:"difference"`
	Explained             bool             `json:"explained"`
	ReasonCode            string           `json:"reasonCode,omitempty"`
	Reason                string           `json:"reason,omitempty"`
}

// Diff compares an import with kooflow's bill of the same period and product type, as the bill stands now, and
// records the result. Matching is on (order id, order line id) in one set-based statement; only differing lines
// are stored. Each difference is then explained, where kooflow can, by settlement's own rules applied to the
// lines in question (loaded together, never line by line). Unexplained differences raise an alert.
func (s *Store) Diff(ctx context.Context, importID int64, actor string, cat *catalog.Catalog) (Summary, error) {
	started := time.Now()
	im, err := s.GetImport(ctx, importID)
	if err != nil {
		return Summary{}, err
	}
	sum := Summary{ImportID: importID, Period: im.Period, ProductType: im.ProductType, MarketplaceTotal: im.SettlementTotal,
		CreatedBy: actor}
	period, err := settlement.ParsePeriod(im.Period)
	if err != nil {
		return sum, err
	}
	tx, err := s.Pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead})
	if err != nil {
		return sum, fmt.Errorf("begin diff: %w", err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // after Commit this is a no-op
	for _, set := range []string{`SET LOCAL work_mem = '256MB'`, `SET LOCAL jit = off`} {
		if _, err := tx.Exec(ctx, set); err != nil {
			return sum, fmt.Errorf("%s: %w", set, err)
		}
	}
	var billID int64
	var carried, threshold, settled string
	err = tx.QueryRow(ctx, `SELECT bill_id, status, coalesce(content_hash, ''), carried_total::text, threshold::text, settlement_total::text
		FROM settlement_bills WHERE period = $1 AND product_type = $2`, im.Period, string(im.ProductType)).
		Scan(&billID, &sum.BillStatus, &sum.BillContentHash, &carried, &threshold, &settled)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		sum.BillStatus = "missing"
	case err != nil:
		return sum, fmt.Errorf("read kooflow's bill: %w", err)
	}
	lineBill := billID
	if sum.BillStatus != "final" {
		lineBill = 0 // only a final bill has settled lines; a draft's are not kooflow's answer yet
	} else if sum.KooflowTotal, err = decimal.NewFromString(settled); err != nil {
		return sum, err
	}

	err = tx.QueryRow(ctx, `INSERT INTO recon_diffs (import_id, period, product_type, bill_status, bill_content_hash,
			matched_count, matched_total, explained_count, explained_total, unexplained_count, unexplained_total,
			marketplace_total, kooflow_total, duration_ms, created_by)
		VALUES ($1, $2, $3, $4, $5, 0, 0, 0, 0, 0, 0, $6, $7, 0, $8) RETURNING diff_id, created_at`,
		importID, im.Period, string(im.ProductType), sum.BillStatus, sum.BillContentHash, sum.MarketplaceTotal.StringFixed(2),
		sum.KooflowTotal.StringFixed(2), actor).Scan(&sum.DiffID, &sum.CreatedAt)
	if err != nil {
		return sum, fmt.Errorf("record diff: %w", err)
	}
	sum.CreatedAt = sum.CreatedAt.UTC()

	// The marketplace's rows by key (a key listed twice is summed), full-joined with kooflow's lines in one pass:
	// the differing rows are stored, the matching ones counted. The statement reads both sides whole, so a hash
	// join is always right; nested loops are ruled out because a fresh import has no statistics yet.
	if _, err := tx.Exec(ctx, `SET LOCAL enable_nestloop = off`); err != nil {
		return sum, fmt.Errorf("plan diff: %w", err)
	}
	var matchedTotal string
	var differing int64
	if err := tx.QueryRow(ctx, `WITH m AS (
			SELECT order_id, order_line_id, max(order_type) AS order_type, sum(settlement) AS settlement,
				sum(revenue) AS revenue, sum(platform_fee) AS platform_fee
			FROM recon_lines WHERE import_id = $1 GROUP BY order_id, order_line_id),
		k AS (
			SELECT order_id, order_line_id, order_type, settlement, revenue, platform_fee
			FROM settlement_lines WHERE bill_id = $2),
		j AS MATERIALIZED (
			SELECT coalesce(m.order_id, k.order_id) AS order_id, coalesce(m.order_line_id, k.order_line_id) AS order_line_id,
				CASE WHEN k.order_id IS NULL THEN 'MARKETPLACE_ONLY' WHEN m.order_id IS NULL THEN 'KOOFLOW_ONLY' ELSE 'AMOUNT' END AS kind,
				coalesce(k.order_type, m.order_type, '') AS order_type,
				m.settlement AS m_set, k.settlement AS k_set, m.revenue AS m_rev, k.revenue AS k_rev,
				m.platform_fee AS m_fee, k.platform_fee AS k_fee,
				coalesce(m.settlement, 0) - coalesce(k.settlement, 0) AS difference,
				(m.order_id IS NOT NULL AND k.order_id IS NOT NULL AND m.settlement = k.settlement
					AND (m.revenue IS NULL OR m.revenue = k.revenue)
					AND (m.platform_fee IS NULL OR m.platform_fee = k.platform_fee)) AS same
			FROM m FULL JOIN k ON m.order_id = k.order_id AND m.order_line_id = k.order_line_id),
		ins AS (
			INSERT INTO recon_diff_lines (diff_id, order_id, order_line_id, kind, order_type, marketplace_settlement,
				kooflow_settlement, marketplace_revenue, kooflow_revenue, marketplace_fee, kooflow_fee, difference)
			SELECT $3, order_id, order_line_id, kind, order_type, m_set, k_set, m_rev, k_rev, m_fee, k_fee, difference
			FROM j WHERE NOT same
			RETURNING 1)
		SELECT count(*) FILTER (WHERE same), coalesce(sum(k_set) FILTER (WHERE same), 0)::text, (SELECT count(*) FROM ins)
		FROM j`, importID, lineBill, sum.DiffID).Scan(&sum.MatchedCount, &matchedTotal, &differing); err != nil {
		return sum, fmt.Errorf("diff lines: %w", err)
	}
	if _, err := tx.Exec(ctx, `SET LOCAL enable_nestloop = on`); err != nil {
		return sum, fmt.Errorf("plan explanations: %w", err)
	}
	if sum.MatchedTotal, err = decimal.NewFromString(matchedTotal); err != nil {
		return sum, err
	}

	// Explanations. An order and its refund that kooflow both billed and that net to 0, while the marketplace
	// billed neither, are refund netting.
	if _, err := tx.Exec(ctx, `WITH fam AS (
			SELECT d.order_id, d.order_line_id,
				CASE WHEN l.order_type IN ('UNSUBSCRIBE', 'REFUND') AND l.refers_to_order_id IS NOT NULL THEN l.refers_to_order_id
					ELSE l.order_id END AS family
			FROM recon_diff_lines d JOIN settlement_lines l
				ON l.bill_id = $2 AND l.order_id = d.order_id AND l.order_line_id = d.order_line_id
			WHERE d.diff_id = $1 AND d.kind = 'KOOFLOW_ONLY'),
		netted AS (
			SELECT f.family FROM fam f JOIN settlement_lines l
				ON l.bill_id = $2 AND l.order_id = f.order_id AND l.order_line_id = f.order_line_id
			GROUP BY f.family HAVING count(*) >= 2 AND sum(l.settlement) = 0 AND sum(l.revenue) = 0)
		UPDATE recon_diff_lines d SET explained = true, reason_code = 'REFUND_NETTED',
			reason = 'order ' || n.family || ' and its refund are both in kooflow''s bill and net to 0.00; the marketplace left out both'
		FROM fam f JOIN netted n USING (family)
		WHERE d.diff_id = $1 AND d.order_id = f.order_id AND d.order_line_id = f.order_line_id`, sum.DiffID, lineBill); err != nil {
		return sum, fmt.Errorf("explain refund netting: %w", err)
	}
	if err := s.explainMarketplaceOnly(ctx, tx, sum.DiffID, period, im.ProductType, sum.BillStatus, carried, threshold, cat); err != nil {
		return sum, err
	}
	if _, err := tx.Exec(ctx, `UPDATE recon_diff_lines SET reason_code = kind, reason = CASE kind
			WHEN 'KOOFLOW_ONLY' THEN 'in kooflow''s bill (' || kooflow_settlement::text || ' to the seller), not in the marketplace''s'
			ELSE 'the marketplace settles ' || coalesce(marketplace_settlement::text, '-') || ' (revenue ' || coalesce(marketplace_revenue::text, '-') ||
				', fee ' || coalesce(marketplace_fee::text, '-') || '), kooflow ' || coalesce(kooflow_settlement::text, '-') ||
				' (revenue ' || coalesce(kooflow_revenue::text, '-') || ', fee ' || coalesce(kooflow_fee::text, '-') || ')' END
		WHERE diff_id = $1 AND reason = '' AND kind IN ('KOOFLOW_ONLY', 'AMOUNT')`, sum.DiffID); err != nil {
		return sum, fmt.Errorf("describe differences: %w", err)
	}
	var expl, unexpl string
	if err := tx.QueryRow(ctx, `SELECT count(*) FILTER (WHERE explained), coalesce(sum(difference) FILTER (WHERE explained), 0)::text,
			count(*) FILTER (WHERE NOT explained), coalesce(sum(difference) FILTER (WHERE NOT explained), 0)::text
		FROM recon_diff_lines WHERE diff_id = $1`, sum.DiffID).Scan(&sum.ExplainedCount, &expl, &sum.UnexplainedCount, &unexpl); err != nil {
		return sum, fmt.Errorf("summarise diff: %w", err)
	}
	if sum.ExplainedTotal, err = decimal.NewFromString(expl); err != nil {
		return sum, err
	}
	if sum.UnexplainedTotal, err = decimal.NewFromString(unexpl); err != nil {
		return sum, err
	}
	sum.DurationMS = time.Since(started).Milliseconds()
	if _, err := tx.Exec(ctx, `UPDATE recon_diffs SET matched_count = $2, matched_total = $3, explained_count = $4,
			explained_total = $5, unexplained_count = $6, unexplained_total = $7, duration_ms = $8 WHERE diff_id = $1`,
		sum.DiffID, sum.MatchedCount, sum.MatchedTotal.StringFixed(2), sum.ExplainedCount, sum.ExplainedTotal.StringFixed(2),
		sum.UnexplainedCount, sum.UnexplainedTotal.StringFixed(2), sum.DurationMS); err != nil {
		return sum, fmt.Errorf("record diff summary: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return sum, fmt.Errorf("commit diff: %w", err)
	}
	key := "recon/" + sum.Period + "/" + string(sum.ProductType)
	if sum.UnexplainedCount > 0 {
		err = s.alerter().Raise(ctx, Alert{Kind: AlertUnexplained, Key: key, Summary: fmt.Sprintf(
			"the marketplace's %s bill for %s differs from kooflow's by %s yuan in %d unexplained lines (diff %d)",
			sum.ProductType, sum.Period, sum.UnexplainedTotal.StringFixed(2), sum.UnexplainedCount, sum.DiffID)})
	} else {
		err = s.alerter().Resolve(ctx, AlertUnexplained, key)
	}
	if err != nil {
		return sum, fmt.Errorf("alert on diff %d: %w", sum.DiffID, err)
	}
	return sum, nil
}

// explainMarketplaceOnly explains the lines the marketplace billed and kooflow's bill does not have, with
// settlement.Evaluate over kooflow's records of their instances as of the period's end.
func (s *Store) explainMarketplaceOnly(ctx context.Context, tx pgx.Tx, diffID int64, period settlement.Period, t catalog.ProductType,
	billStatus, carried, threshold string, cat *catalog.Catalog) error {
	rows, err := tx.Query(ctx, `SELECT d.order_id, d.order_line_id, o.instance_id FROM recon_diff_lines d
		LEFT JOIN orders o ON o.order_id = d.order_id AND o.order_line_id = d.order_line_id
		WHERE d.diff_id = $1 AND d.kind = 'MARKETPLACE_ONLY'`, diffID)
	if err != nil {
		return fmt.Errorf("read marketplace-only lines: %w", err)
	}
	type target struct {
		key      settlement.Key
		instance *string
	}
	var targets []target
	instSet := map[string]bool{}
	for rows.Next() {
		var tg target
		if err := rows.Scan(&tg.key.OrderID, &tg.key.OrderLineID, &tg.instance); err != nil {
			rows.Close()
			return err
		}
		targets = append(targets, tg)
		if tg.instance != nil {
			instSet[*tg.instance] = true
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read marketplace-only lines: %w", err)
	}
	if len(targets) == 0 {
		return nil
	}
	instIDs := make([]string, 0, len(instSet))
	for id := range instSet {
		instIDs = append(instIDs, id)
	}
	slices.Sort(instIDs)
	orders, err := store.SettlementOrdersOfInstances(ctx, tx, instIDs)
	if err != nil {
		return err
	}
	instances, err := store.SettlementInstances(ctx, tx, instIDs)
	if err != nil {
		return err
	}
	byInstance := map[string][]settlement.OrderRow{}
	var orderIDs []string
	for _, o := range orders {
		byInstance[o.InstanceID] = append(byInstance[o.InstanceID], o)
		orderIDs = append(orderIDs, o.OrderID)
	}
	settled := map[settlement.Key]settlement.SettledLine{}
	srows, err := tx.Query(ctx, `SELECT l.order_id, l.order_line_id, b.period, b.product_type, b.status, l.rate::text
		FROM settlement_lines l JOIN settlement_bills b USING (bill_id) WHERE l.order_id = ANY($1)`, orderIDs)
	if err != nil {
		return fmt.Errorf("read settled lines: %w", err)
	}
	for srows.Next() {
		var k settlement.Key
		var sl settlement.SettledLine
		var pt, rate string
		if err := srows.Scan(&k.OrderID, &k.OrderLineID, &sl.Period, &pt, &sl.Status, &rate); err != nil {
			srows.Close()
			return err
		}
		sl.Type = catalog.ProductType(pt)
		if sl.Rate, err = decimal.NewFromString(rate); err != nil {
			srows.Close()
			return err
		}
		settled[k] = sl
	}
	srows.Close()
	if err := srows.Err(); err != nil {
		return fmt.Errorf("read settled lines: %w", err)
	}
	payments := map[string]settlement.Payment{}
	prows, err := tx.Query(ctx, `SELECT order_id, credit, repaid_at FROM settlement_payments WHERE order_id = ANY($1)`, orderIDs)
	if err != nil {
		return fmt.Errorf("read payments: %w", err)
	}
	for prows.Next() {
		var id string
		var p settlement.Payment
		if err := prows.Scan(&id, &p.Credit, &p.RepaidAt); err != nil {
			prows.Close()
			return err
		}
		payments[id] = p
	}
	prows.Close()
	if err := prows.Err(); err != nil {
		return fmt.Errorf("read payments: %w", err)
	}
	product := func(id string) (settlement.Terms, bool) {
		if cat == nil {
			return settlement.Terms{}, false
		}
		p, ok := cat.Lookup(id)
		return settlement.TermsOf(p), ok
	}
	verdicts := map[settlement.Key]settlement.Verdict{}
	for _, id := range instIDs {
		inst, ok := instances[id]
		if !ok {
			continue
		}
		for _, v := range settlement.Evaluate(settlement.Input{End: period.End(), Types: []catalog.ProductType{t}, Instance: inst,
			Rows: byInstance[id], Settled: settled, Payments: payments, Product: product}) {
			verdicts[v.Row.Key] = v
		}
	}

	var keys []settlement.Key
	var explained []bool
	var codes, reasons []string
	for _, tg := range targets {
		ex, code, reason := false, ReasonUnknownOrder, "kooflow has no record of this order line"
		if v, ok := verdicts[tg.key]; ok {
			ex, code, reason = classify(v, period, billStatus, carried, threshold)
		}
		keys = append(keys, tg.key)
		explained, codes, reasons = append(explained, ex), append(codes, code), append(reasons, reason)
	}
	oids := make([]string, len(keys))
	lids := make([]string, len(keys))
	for i, k := range keys {
		oids[i], lids[i] = k.OrderID, k.OrderLineID
	}
	if _, err := tx.Exec(ctx, `UPDATE recon_diff_lines d SET explained = u.explained, reason_code = u.code, reason = u.reason
		FROM unnest($2::text[], $3::text[], $4::bool[], $5::text[], $6::text[]) AS u(order_id, order_line_id, explained, code, reason)
		WHERE d.diff_id = $1 AND d.order_id = u.order_id AND d.order_line_id = u.order_line_id`,
		diffID, oids, lids, explained, codes, reasons); err != nil {
		return fmt.Errorf("record explanations: %w", err)
	}
	return nil
}

// classify turns settlement's verdict on a line the marketplace billed (and kooflow's bill lacks) into an
// explanation.
func classify(v settlement.Verdict, period settlement.Period, billStatus, carried, threshold string) (bool, string, string) {
	if v.Settled != nil {
		return true, string(settlement.ReasonSettled), "kooflow " + v.Reasons[0].Detail
	}
	if v.Eligible {
		if billStatus == "carried_forward" {
			return true, ReasonCarriedForward, fmt.Sprintf(
				"eligible, but kooflow's bill for %s was carried forward: its total %s is below the threshold %s", period, carried, threshold)
		}
		return false, "ELIGIBLE_NOT_BILLED", fmt.Sprintf(
			"eligible for %s by kooflow's rules today, but not in kooflow's bill (%s); its records changed after the close, or the bill is not closed",
			period, billStatus)
	}
	var details []string
	code := ""
	for _, r := range v.Reasons {
		details = append(details, r.Detail)
		if code == "" && slices.Contains(explainedReasons, r.Code) {
			code = string(r.Code)
		}
	}
	if code != "" {
		return true, code, "not in kooflow's bill: " + strings.Join(details, "; ")
	}
	if len(v.Reasons) > 0 {
		code = string(v.Reasons[0].Code)
	}
	return false, code, "not in kooflow's bill: " + strings.Join(details, "; ")
}

// Latest returns the newest diff of an import, or of the newest import of a period and product type.
func (s *Store) Latest(ctx context.Context, period string, t catalog.ProductType) (Summary, error) {
	sum, err := scanSummary(s.Pool.QueryRow(ctx, `SELECT `+summaryColumns+` FROM recon_diffs
		WHERE period = $1 AND product_type = $2 ORDER BY diff_id DESC LIMIT 1`, period, string(t)))
	if errors.Is(err, pgx.ErrNoRows) {
		return sum, refusal.New(CodeNotFound, "no reconciliation of the %s bill for %s yet; import the marketplace's bill detail first", t, period)
	}
	return sum, err
}

// GetDiff reads one diff's summary.
func (s *Store) GetDiff(ctx context.Context, diffID int64) (Summary, error) {
	sum, err := scanSummary(s.Pool.QueryRow(ctx, `SELECT `+summaryColumns+` FROM recon_diffs WHERE diff_id = $1`, diffID))
	if errors.Is(err, pgx.ErrNoRows) {
		return sum, refusal.New(CodeNotFound, "no diff %d", diffID)
	}
	return sum, err
}

const summaryColumns = `diff_id, import_id, period, product_type, bill_status, bill_content_hash, matched_count, matched_total::text,
	explained_count, explained_total::text, unexplained_count, unexplained_total::text, marketplace_total::text, kooflow_total::text,
	duration_ms, created_by, created_at`

func scanSummary(row pgx.Row) (Summary, error) {
	var s Summary
	var pt, mt, et, ut, mkt, kt string
	if err := row.Scan(&s.DiffID, &s.ImportID, &s.Period, &pt, &s.BillStatus, &s.BillContentHash, &s.MatchedCount, &mt,
		&s.ExplainedCount, &et, &s.UnexplainedCount, &ut, &mkt, &kt, &s.DurationMS, &s.CreatedBy, &s.CreatedAt); err != nil {
		return s, err
	}
	s.ProductType, s.CreatedAt = catalog.ProductType(pt), s.CreatedAt.UTC()
	for _, p := range []struct {
		dst *decimal.Decimal
		src string
	}{{&s.MatchedTotal, mt}, {&s.ExplainedTotal, et}, {&s.UnexplainedTotal, ut}, {&s.MarketplaceTotal, mkt}, {&s.KooflowTotal, kt}} {
		d, err := decimal.NewFromString(p.src)
		if err != nil {
			return s, err
		}
		*p.dst = d
	}
	return s, nil
}

// DiffFilter narrows DiffLines.
type DiffFilter struct {
	Kind string
	// Explained: nil all, else only explained (true) or unexplained (false) lines.
	Explained *bool
	After     settlement.Key
	Limit     int
}

const diffLineColumns = `order_id, order_line_id, kind, order_type, marketplace_settlement::text, kooflow_settlement::text,
	marketplace_revenue::text, kooflow_revenue::text, marketplace_fee::text, kooflow_fee::text, difference::text, explained,
	reason_code, reason`

// DiffLines pages through a diff's differences in key order.
func (s *Store) DiffLines(ctx context.Context, diffID int64, f DiffFilter) ([]DiffLine, error) {
	if f.Limit <= 0 || f.Limit > 1000 {
		f.Limit = 100
	}
	rows, err := s.Pool.Query(ctx, `SELECT `+diffLineColumns+` FROM recon_diff_lines
		WHERE diff_id = $1 AND ($2 = '' OR kind = $2) AND ($3::bool IS NULL OR explained = $3)
			AND (order_id, order_line_id) > ($4, $5)
		ORDER BY order_id, order_line_id LIMIT $6`, diffID, f.Kind, f.Explained, f.After.OrderID, f.After.OrderLineID, f.Limit)
	if err != nil {
		return nil, fmt.Errorf("read diff lines: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (DiffLine, error) { return scanDiffLine(r) })
}

// EachDiffLine calls fn with every difference of a diff, in key order.
func (s *Store) EachDiffLine(ctx context.Context, diffID int64, fn func(DiffLine) error) error {
	rows, err := s.Pool.Query(ctx, `SELECT `+diffLineColumns+` FROM recon_diff_lines WHERE diff_id = $1 ORDER BY order_id, order_line_id`, diffID)
	if err != nil {
		return fmt.Errorf("read diff lines: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		l, err := scanDiffLine(rows)
		if err != nil {
			return err
		}
		if err := fn(l); err != nil {
			return err
		}
	}
	return rows.Err()
}

func scanDiffLine(row pgx.Row) (DiffLine, error) {
	var l DiffLine
	var ms, ks, mr, kr, mf, kf *string
	var diff string
	if err := row.Scan(&l.OrderID, &l.OrderLineID, &l.Kind, &l.OrderType, &ms, &ks, &mr, &kr, &mf, &kf, &diff, &l.Explained,
		&l.ReasonCode, &l.Reason); err != nil {
		return l, fmt.Errorf("read diff line: %w", err)
	}
	var err error
	if l.Difference, err = decimal.NewFromString(diff); err != nil {
		return l, err
	}
	for _, p := range []struct {
		src *string
		dst **decimal.Decimal
	}{{ms, &l.MarketplaceSettlement}, {ks, &l.KooflowSettlement}, {mr, &l.MarketplaceRevenue}, {kr, &l.KooflowRevenue},
		{mf, &l.MarketplaceFee}, {kf, &l.KooflowFee}} {
		if p.src != nil {
			d, err := decimal.NewFromString(*p.src)
			if err != nil {
				return l, err
			}
			*p.dst = &d
		}
	}
	return l, nil
}

// ListDiffs lists the newest diffs (at most limit), newest first.
func (s *Store) ListDiffs(ctx context.Context, limit int) ([]Summary, error) {
	if limit <= 0 || limit > 1000 {
		limit = 100
	}
	rows, err := s.Pool.Query(ctx, `SELECT `+summaryColumns+` FROM recon_diffs ORDER BY diff_id DESC LIMIT $1`, limit)
	if err != nil {
		return nil, fmt.Errorf("list diffs: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Summary, error) { return scanSummary(r) })
	if err != nil {
		return nil, fmt.Errorf("list diffs: %w", err)
	}
	return out, nil
}
