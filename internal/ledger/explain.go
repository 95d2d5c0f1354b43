package ledger

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/shopspring/decimal"

	"github.com/kooflow/kooflow/internal/catalog"
	"github.com/kooflow/kooflow/internal/refusal"
	"github.com/kooflow/kooflow/internal/settlement"
	"github.com/kooflow/kooflow/internal/store"
)

// Explanation says, for one order line, whether and where it is settled, or why it is not in a bill yet: the
// settlement rules (settlement.Evaluate) applied to today's data for the last closed period of its product type,
// the next period to close, and the running month.
type Explanation struct {
	Order       settlement.OrderRow      `json:"order"`
	Instance    settlement.InstanceState `json:"instance"`
	Payment     PaymentState             `json:"payment"`
	Product     ProductView              `json:"product"`
	RevenueBase string                   `json:"revenueBase"`
	Settled     *SettledView             `json:"settled,omitempty"`
	// Usage are the pay-per-use lines billed for the order's instance (usage has no order line of its own: it is
	// billed per instance and consumption month), oldest first.
	Usage   []SettledView   `json:"usage,omitempty"`
	Periods []PeriodVerdict `json:"periods"`
	Summary string          `json:"summary"`
}

// ProductView is the catalog's view of the order's product.
type ProductView struct {
	ProductID string              `json:"productId"`
	Name      string              `json:"name"`
	Known     bool                `json:"known"`
	Type      catalog.ProductType `json:"productType"`
	Rate      decimal.Decimal     `json:"rate"`
	RateMeans string              `json:"rateMeans"`
	// ListRevenue is the catalog's unit price × duration × quantity, shown beside the paid amount.
	ListRevenue *string `json:"listRevenue,omitempty"`
}

// SettledView is the bill line an order line was settled in.
type SettledView struct {
	Period      string `json:"period"`
	BillStatus  string `json:"billStatus"`
	ContentHash string `json:"contentHash,omitempty"`
	Line        Line   `json:"line"`
}

// PeriodVerdict is the rules' answer for one period.
type PeriodVerdict struct {
	Period       string              `json:"period"`
	Role         string              `json:"role"`
	End          time.Time           `json:"end"`
	Bill         string              `json:"bill"` // the product type's bill for the period: its status, or "not produced"
	Eligible     bool                `json:"eligible"`
	AttributedAt *time.Time          `json:"attributedAt,omitempty"`
	Amounts      *settlement.Amounts `json:"amounts,omitempty"`
	Reasons      []settlement.Reason `json:"reasons,omitempty"`
	Carried      *CarriedView        `json:"carriedForward,omitempty"`
}

// CarriedView says a product type's bill was below the threshold.
type CarriedView struct {
	Total     decimal.Decimal `json:"total"`
	Threshold decimal.Decimal `json:"threshold"`
}

// Explain explains every line of an order (or one line when orderLineID is set) as of now.
func (s *Store) Explain(ctx context.Context, orderID, orderLineID string, now time.Time, cat *catalog.Catalog) ([]Explanation, error) {
	if err := ValidOrderID(orderID); err != nil {
		return nil, refusal.New(CodeInvalid, "%v", err)
	}
	tx, err := s.Pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, fmt.Errorf("begin explain: %w", err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // read-only
	if strings.HasPrefix(orderLineID, usageLinePrefix) {
		e, err := explainUsageLine(ctx, tx, orderID, orderLineID, cat)
		if err != nil {
			return nil, err
		}
		return []Explanation{e}, nil
	}
	targets, err := store.SettlementOrders(ctx, tx, orderID, orderLineID)
	if err != nil {
		return nil, err
	}
	if len(targets) == 0 {
		what := "order " + orderID
		if orderLineID != "" {
			what += " line " + orderLineID
		}
		return nil, refusal.New(CodeNotFound, "no %s in the orders kooflow has recorded", what)
	}
	var out []Explanation
	for _, target := range targets {
		e, err := explainOne(ctx, tx, target, now, cat)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, nil
}

func explainOne(ctx context.Context, tx pgx.Tx, target settlement.OrderRow, now time.Time, cat *catalog.Catalog) (Explanation, error) {
	e := Explanation{Order: target, RevenueBase: settlement.RevenueBase}
	inst, err := store.SettlementInstance(ctx, tx, target.InstanceID)
	if err != nil {
		return e, err
	}
	e.Instance = inst
	if e.Usage, err = usageLinesOf(ctx, tx, target.InstanceID); err != nil {
		return e, err
	}
	rows, err := store.SettlementOrdersOf(ctx, tx, target.InstanceID)
	if err != nil {
		return e, err
	}

	// What is settled already, and where.
	settled := map[settlement.Key]settlement.SettledLine{}
	ids := make([]string, 0, len(rows))
	for _, r := range rows {
		ids = append(ids, r.OrderID)
	}
	srows, err := tx.Query(ctx, `SELECT l.order_id, l.order_line_id, b.period, b.product_type, b.status, l.rate::text
		FROM settlement_lines l JOIN settlement_bills b USING (bill_id) WHERE l.order_id = ANY($1)`, ids)
	if err != nil {
		return e, fmt.Errorf("read settled lines: %w", err)
	}
	for srows.Next() {
		var k settlement.Key
		var sl settlement.SettledLine
		var pt, rate string
		if err := srows.Scan(&k.OrderID, &k.OrderLineID, &sl.Period, &pt, &sl.Status, &rate); err != nil {
			srows.Close()
			return e, err
		}
		sl.Type = catalog.ProductType(pt)
		if err := decimals(&sl.Rate, rate); err != nil {
			srows.Close()
			return e, err
		}
		settled[k] = sl
	}
	srows.Close()
	if err := srows.Err(); err != nil {
		return e, err
	}

	payments := map[string]settlement.Payment{}
	prows, err := tx.Query(ctx, `SELECT order_id, credit, repaid_at FROM settlement_payments WHERE order_id = ANY($1)`, ids)
	if err != nil {
		return e, fmt.Errorf("read payments: %w", err)
	}
	for prows.Next() {
		var id string
		var p settlement.Payment
		if err := prows.Scan(&id, &p.Credit, &p.RepaidAt); err != nil {
			prows.Close()
			return e, err
		}
		p.RepaidAt = utcPtr(p.RepaidAt)
		payments[id] = p
	}
	prows.Close()
	if err := prows.Err(); err != nil {
		return e, err
	}
	e.Payment = PaymentState{OrderID: target.OrderID}
	if p, ok := payments[target.OrderID]; ok {
		e.Payment.Recorded, e.Payment.Credit, e.Payment.RepaidAt = true, p.Credit, p.RepaidAt
	}

	// The product: for a refund, the product of the line it refunds.
	productID := target.ProductID
	if settlement.IsRefund(target.OrderType) {
		for _, r := range rows {
			if r.OrderID == target.RefersTo && settlement.IsCharge(r.OrderType) {
				productID = r.ProductID
				break
			}
		}
	}
	p, known := cat.Lookup(productID)
	terms := settlement.TermsOf(p)
	e.Product = ProductView{ProductID: productID, Name: p.Name, Known: known, Type: terms.Type, Rate: terms.Rate,
		RateMeans: map[catalog.ProductType]string{catalog.General: "platform fee rate (平台费)", catalog.JointOperation: "seller's revenue share (分成比例)"}[terms.Type]}
	if sku, ok := p.SKU(target.SKUCode); ok && known {
		if lr, ok := settlement.ListRevenue(sku, target.PeriodType, target.PeriodNum, target.Quantity); ok {
			s := fmt.Sprintf("%s × %d %s × %d = %s (catalog unit price × duration × quantity; the order's list amount is %s, it paid %s)",
				sku.UnitPrice.StringFixed(2), target.PeriodNum, target.PeriodType, max(target.Quantity, 1), lr.StringFixed(2),
				target.ListAmount.StringFixed(2), target.PaidAmount.StringFixed(2))
			e.Product.ListRevenue = &s
		}
	}
	product := func(id string) (settlement.Terms, bool) {
		pp, ok := cat.Lookup(id)
		return settlement.TermsOf(pp), ok
	}

	if sl, ok := settled[target.Key]; ok {
		line, err := scanLine(tx.QueryRow(ctx, `SELECT `+lineColumns+` FROM settlement_lines WHERE order_id = $1 AND order_line_id = $2`,
			target.OrderID, target.OrderLineID))
		if err != nil {
			return e, fmt.Errorf("read settled line: %w", err)
		}
		var hash string
		_ = tx.QueryRow(ctx, `SELECT coalesce(content_hash, '') FROM settlement_bills WHERE period = $1 AND product_type = $2`,
			sl.Period, string(sl.Type)).Scan(&hash)
		e.Settled = &SettledView{Period: sl.Period, BillStatus: sl.Status, ContentHash: hash, Line: line}
		e.Summary = fmt.Sprintf("settled in the %s bill for %s (%s): revenue %s, platform fee %s, %s to the seller",
			sl.Type, sl.Period, sl.Status, line.Revenue.StringFixed(2), line.PlatformFee.StringFixed(2), line.Settlement.StringFixed(2))
		return e, nil
	}

	// Which periods to explain: the last closed one of the product type, the next to close, the running month.
	type periodRole struct {
		p    settlement.Period
		role string
	}
	var periods []periodRole
	running := settlement.PeriodOf(now)
	var last string
	err = tx.QueryRow(ctx, `SELECT period FROM settlement_bills WHERE product_type = $1 AND status <> 'draft' ORDER BY period DESC LIMIT 1`,
		string(terms.Type)).Scan(&last)
	next := running.Prev()
	switch {
	case err == nil:
		lp, perr := settlement.ParsePeriod(last)
		if perr != nil {
			return e, perr
		}
		periods = append(periods, periodRole{lp, "last closed period"})
		next = lp.Next()
	case !errors.Is(err, pgx.ErrNoRows):
		return e, fmt.Errorf("read bills: %w", err)
	}
	if next.Before(running) {
		periods = append(periods, periodRole{next, "next period to close"})
	}
	periods = append(periods, periodRole{running, "running month (estimate as of now)"})

	for _, pr := range periods {
		v := findVerdict(settlement.Evaluate(settlement.Input{End: pr.p.End(), Types: []catalog.ProductType{terms.Type},
			Instance: inst, Rows: rows, Settled: settled, Payments: payments, Product: product}), target.Key)
		pv := PeriodVerdict{Period: pr.p.String(), Role: pr.role, End: pr.p.End(), Bill: "not produced", Eligible: v.Eligible,
			AttributedAt: v.AttributedAt, Reasons: v.Reasons}
		if v.Eligible {
			a := v.Amounts
			pv.Amounts = &a
		}
		var status, carried, threshold string
		err := tx.QueryRow(ctx, `SELECT status, carried_total::text, threshold::text FROM settlement_bills WHERE period = $1 AND product_type = $2`,
			pr.p.String(), string(terms.Type)).Scan(&status, &carried, &threshold)
		if err == nil {
			pv.Bill = status
			if status == StatusCarriedForward && v.Eligible {
				pv.Carried = &CarriedView{}
				if err := decimals(&pv.Carried.Total, carried, &pv.Carried.Threshold, threshold); err != nil {
					return e, err
				}
			}
		} else if !errors.Is(err, pgx.ErrNoRows) {
			return e, fmt.Errorf("read bill: %w", err)
		}
		e.Periods = append(e.Periods, pv)
	}
	e.Summary = summarize(e)
	return e, nil
}

func findVerdict(vs []settlement.Verdict, k settlement.Key) settlement.Verdict {
	for _, v := range vs {
		if v.Row.Key == k {
			return v
		}
	}
	return settlement.Verdict{}
}

func summarize(e Explanation) string {
	for _, pv := range e.Periods {
		if pv.Eligible && pv.Carried != nil {
			return fmt.Sprintf("eligible for %s, but the %s bill for %s was carried forward (total %s below the threshold %s); it stays eligible for the next period",
				pv.Period, e.Product.Type, pv.Period, pv.Carried.Total.StringFixed(2), pv.Carried.Threshold.StringFixed(2))
		}
	}
	for _, pv := range e.Periods {
		if pv.Eligible && pv.Bill == "not produced" {
			return fmt.Sprintf("not settled yet: eligible for the %s bill for %s (%s), %s to the seller if the product type's total reaches the threshold",
				e.Product.Type, pv.Period, pv.Role, pv.Amounts.Settlement.StringFixed(2))
		}
	}
	last := e.Periods[len(e.Periods)-1]
	var why []string
	for _, r := range last.Reasons {
		why = append(why, r.Detail)
	}
	return "not in a bill: " + strings.Join(why, "; ")
}

// usageLinePrefix starts the order line id of every pay-per-use line (see usageCandidatesSQL).
const usageLinePrefix = "usage:"

// usageLinesOf reads the pay-per-use lines billed for an instance, with their bills.
func usageLinesOf(ctx context.Context, tx pgx.Tx, instanceID string) ([]SettledView, error) {
	rows, err := tx.Query(ctx, `SELECT order_id, order_line_id FROM settlement_lines
		WHERE instance_id = $1 AND usage_month IS NOT NULL ORDER BY usage_month, order_line_id`, instanceID)
	if err != nil {
		return nil, fmt.Errorf("read usage lines of %s: %w", instanceID, err)
	}
	var keys []settlement.Key
	for rows.Next() {
		var k settlement.Key
		if err := rows.Scan(&k.OrderID, &k.OrderLineID); err != nil {
			rows.Close()
			return nil, fmt.Errorf("read usage lines of %s: %w", instanceID, err)
		}
		keys = append(keys, k)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read usage lines of %s: %w", instanceID, err)
	}
	out := make([]SettledView, 0, len(keys))
	for _, k := range keys {
		v, err := settledView(ctx, tx, k)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

// settledView reads one settled line and its bill.
func settledView(ctx context.Context, tx pgx.Tx, k settlement.Key) (SettledView, error) {
	var v SettledView
	line, err := scanLine(tx.QueryRow(ctx, `SELECT `+lineColumns+` FROM settlement_lines WHERE order_id = $1 AND order_line_id = $2`,
		k.OrderID, k.OrderLineID))
	if err != nil {
		return v, fmt.Errorf("read line %s/%s: %w", k.OrderID, k.OrderLineID, err)
	}
	v.Line = line
	if err := tx.QueryRow(ctx, `SELECT b.period, b.status, coalesce(b.content_hash, '') FROM settlement_bills b
		JOIN settlement_lines l USING (bill_id) WHERE l.order_id = $1 AND l.order_line_id = $2`, k.OrderID, k.OrderLineID).
		Scan(&v.Period, &v.BillStatus, &v.ContentHash); err != nil {
		return v, fmt.Errorf("read the bill of line %s/%s: %w", k.OrderID, k.OrderLineID, err)
	}
	return v, nil
}

// explainUsageLine explains a pay-per-use line by its key: what it bills and where. Usage not billed yet has no
// line; the instance's order explanation lists the usage lines billed so far and the estimate shows what is due.
func explainUsageLine(ctx context.Context, tx pgx.Tx, orderID, orderLineID string, cat *catalog.Catalog) (Explanation, error) {
	var e Explanation
	v, err := settledView(ctx, tx, settlement.Key{OrderID: orderID, OrderLineID: orderLineID})
	if errors.Is(err, pgx.ErrNoRows) {
		return e, refusal.New(CodeNotFound, "no pay-per-use line %s of order %s has been billed", orderLineID, orderID)
	}
	if err != nil {
		return e, err
	}
	l := v.Line
	if l.Usage == nil {
		return e, refusal.New(CodeNotFound, "line %s of order %s is not a pay-per-use line", orderLineID, orderID)
	}
	e.Order = settlement.OrderRow{Key: settlement.Key{OrderID: l.OrderID, OrderLineID: l.OrderLineID}, InstanceID: l.InstanceID,
		OrderType: l.OrderType, ProductID: l.ProductID, SKUCode: l.SKUCode, PaidAmount: l.PaidAmount, ListAmount: l.ListAmount}
	if e.Instance, err = store.SettlementInstance(ctx, tx, l.InstanceID); err != nil {
		return e, err
	}
	p, known := cat.Lookup(l.ProductID)
	e.Product = ProductView{ProductID: l.ProductID, Name: p.Name, Known: known, Type: l.ProductType, Rate: l.Rate,
		RateMeans: map[catalog.ProductType]string{catalog.General: "platform fee rate (平台费)", catalog.JointOperation: "seller's revenue share (分成比例)"}[l.ProductType]}
	e.RevenueBase = "the usage the marketplace accepted for the instance in the consumption month × the catalog's unit price, rounded once"
	e.Settled = &v
	e.Summary = fmt.Sprintf("usage of %s billed in the %s bill for %s (%s): %s units × %s yuan = revenue %s, platform fee %s, %s to the seller",
		l.Usage.Month, l.ProductType, v.Period, v.BillStatus, l.Usage.Quantity.StringFixed(4), l.Usage.UnitPrice, l.Revenue.StringFixed(2),
		l.PlatformFee.StringFixed(2), l.Settlement.StringFixed(2))
	return e, nil
}
