package ledger

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/shopspring/decimal"

	"github.com/kooflow/kooflow/internal/catalog"
	"github.com/kooflow/kooflow/internal/refusal"
	"github.com/kooflow/kooflow/internal/settlement"
)

// BillFilter narrows ListBills; empty fields match everything.
type BillFilter struct {
	Period      string
	ProductType catalog.ProductType
	Status      string
	Limit       int
}

// ListBills lists bills, newest period first.
func (s *Store) ListBills(ctx context.Context, f BillFilter) ([]BillSummary, error) {
	if f.Limit <= 0 || f.Limit > 500 {
		f.Limit = 100
	}
	rows, err := s.Pool.Query(ctx, `SELECT `+billColumns+` FROM settlement_bills
		WHERE ($1 = '' OR period = $1) AND ($2 = '' OR product_type = $2) AND ($3 = '' OR status = $3)
		ORDER BY period DESC, product_type LIMIT $4`, f.Period, string(f.ProductType), f.Status, f.Limit)
	if err != nil {
		return nil, fmt.Errorf("list bills: %w", err)
	}
	defer rows.Close()
	out := []BillSummary{}
	for rows.Next() {
		b, err := scanBill(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	return out, rows.Err()
}

// Line is one settled order line of a bill.
type Line struct {
	settlement.Key
	InstanceID   string              `json:"instanceId"`
	OrderType    string              `json:"orderType"`
	ProductID    string              `json:"productId"`
	SKUCode      string              `json:"skuCode"`
	RefersTo     string              `json:"refersToOrderId,omitempty"`
	AttributedAt time.Time           `json:"attributedAt"`
	PaidAmount   decimal.Decimal     `json:"paidAmount"`
	ListAmount   decimal.Decimal     `json:"listAmount"`
	ProductType  catalog.ProductType `json:"productType"`
	Rate         decimal.Decimal     `json:"rate"`
	Revenue      decimal.Decimal     `json:"revenue"`
	PlatformFee  decimal.Decimal     `json:"platformFee"`
	Settlement   decimal.Decimal     `json:"settlement"`
	// Usage is set on a pay-per-use line (order type USAGE): what it bills, revenue = Round(quantity × unit price).
	Usage *LineUsage `json:"usage,omitempty"`
}

// LineUsage is what a pay-per-use line bills: usage of its instance in one consumption month (Beijing time).
type LineUsage struct {
	Month     string          `json:"month"`
	Quantity  decimal.Decimal `json:"quantity"`
	UnitPrice decimal.Decimal `json:"unitPrice"`
}

const lineColumns = `order_id, order_line_id, instance_id, order_type, product_id, sku_code, coalesce(refers_to_order_id, ''),
	attributed_at, paid_amount::text, list_amount::text, product_type, rate::text, revenue::text, platform_fee::text,
	settlement::text, usage_month, usage_quantity::text, unit_price::text`

func scanLine(row pgx.Row) (Line, error) {
	var l Line
	var pt, paid, list, rate, rev, fee, set string
	var month, qty, price *string
	if err := row.Scan(&l.OrderID, &l.OrderLineID, &l.InstanceID, &l.OrderType, &l.ProductID, &l.SKUCode, &l.RefersTo,
		&l.AttributedAt, &paid, &list, &pt, &rate, &rev, &fee, &set, &month, &qty, &price); err != nil {
		return l, err
	}
	if month != nil && qty != nil && price != nil {
		l.Usage = &LineUsage{Month: *month}
		if err := decimals(&l.Usage.Quantity, *qty, &l.Usage.UnitPrice, *price); err != nil {
			return l, err
		}
	}
	l.ProductType = catalog.ProductType(pt)
	l.AttributedAt = l.AttributedAt.UTC()
	return l, decimals(&l.PaidAmount, paid, &l.ListAmount, list, &l.Rate, rate, &l.Revenue, rev, &l.PlatformFee, fee,
		&l.Settlement, set)
}

// Lines returns up to limit lines of a bill after the key `after` (exclusive), in key order.
func (s *Store) Lines(ctx context.Context, billID int64, after settlement.Key, limit int) ([]Line, error) {
	if limit <= 0 || limit > 1000 {
		limit = 100
	}
	rows, err := s.Pool.Query(ctx, `SELECT `+lineColumns+` FROM settlement_lines
		WHERE bill_id = $1 AND (order_id, order_line_id) > ($2, $3) ORDER BY order_id, order_line_id LIMIT $4`,
		billID, after.OrderID, after.OrderLineID, limit)
	if err != nil {
		return nil, fmt.Errorf("read lines of bill %d: %w", billID, err)
	}
	defer rows.Close()
	out := []Line{}
	for rows.Next() {
		l, err := scanLine(rows)
		if err != nil {
			return nil, fmt.Errorf("read line: %w", err)
		}
		out = append(out, l)
	}
	return out, rows.Err()
}

// EachLine calls fn for every line of a bill in key order, from one snapshot; it is what exports stream.
func (s *Store) EachLine(ctx context.Context, billID int64, fn func(Line) error) error {
	tx, err := s.Pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return fmt.Errorf("begin export: %w", err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // read-only
	for _, set := range []string{`SET LOCAL work_mem = '256MB'`, `SET LOCAL jit = off`} {
		if _, err := tx.Exec(ctx, set); err != nil {
			return fmt.Errorf("%s: %w", set, err)
		}
	}
	rows, err := tx.Query(ctx, `SELECT `+lineColumns+` FROM settlement_lines WHERE bill_id = $1 ORDER BY order_id, order_line_id`, billID)
	if err != nil {
		return fmt.Errorf("read lines of bill %d: %w", billID, err)
	}
	defer rows.Close()
	for rows.Next() {
		l, err := scanLine(rows)
		if err != nil {
			return fmt.Errorf("read line: %w", err)
		}
		if err := fn(l); err != nil {
			return err
		}
	}
	return rows.Err()
}

// Adjustment is a correction a bill includes (or will include, while BillID is nil).
type Adjustment struct {
	ID             int64               `json:"adjustmentId"`
	ProductType    catalog.ProductType `json:"productType"`
	Amount         decimal.Decimal     `json:"amount"`
	Reason         string              `json:"reason"`
	OrderID        string              `json:"orderId,omitempty"`
	CorrectsPeriod string              `json:"correctsPeriod,omitempty"`
	CreatedBy      string              `json:"createdBy"`
	CreatedAt      time.Time           `json:"createdAt"`
	BillID         *int64              `json:"billId,omitempty"`
}

const adjustmentColumns = `adjustment_id, product_type, amount::text, reason, coalesce(order_id, ''), coalesce(corrects_period, ''),
	created_by, created_at, bill_id`

func scanAdjustment(row pgx.Row) (Adjustment, error) {
	var a Adjustment
	var pt, amount string
	if err := row.Scan(&a.ID, &pt, &amount, &a.Reason, &a.OrderID, &a.CorrectsPeriod, &a.CreatedBy, &a.CreatedAt, &a.BillID); err != nil {
		return a, err
	}
	a.ProductType, a.CreatedAt = catalog.ProductType(pt), a.CreatedAt.UTC()
	return a, decimals(&a.Amount, amount)
}

// Adjustments lists the adjustments a bill includes, or, for billID 0, those still pending.
func (s *Store) Adjustments(ctx context.Context, billID int64) ([]Adjustment, error) {
	rows, err := s.Pool.Query(ctx, `SELECT `+adjustmentColumns+` FROM settlement_adjustments
		WHERE ($1 = 0 AND bill_id IS NULL) OR bill_id = $1 ORDER BY adjustment_id`, billID)
	if err != nil {
		return nil, fmt.Errorf("read adjustments: %w", err)
	}
	defer rows.Close()
	out := []Adjustment{}
	for rows.Next() {
		a, err := scanAdjustment(rows)
		if err != nil {
			return nil, fmt.Errorf("read adjustment: %w", err)
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

// NewAdjustment is a correction to record.
type NewAdjustment struct {
	ProductType    catalog.ProductType
	Amount         decimal.Decimal
	Reason         string
	OrderID        string
	CorrectsPeriod string
	CreatedBy      string
	IdempotencyKey string
}

// AddAdjustment records a correction for the next bill of its product type. A repeated idempotency key returns
// the adjustment recorded the first time (created false), or a refusal when the request differs.
func (s *Store) AddAdjustment(ctx context.Context, n NewAdjustment) (a Adjustment, created bool, err error) {
	if n.ProductType != catalog.General && n.ProductType != catalog.JointOperation {
		return a, false, refusal.New(CodeInvalid, "productType must be %q or %q", catalog.General, catalog.JointOperation)
	}
	if n.Amount.IsZero() || n.Amount.Exponent() < -2 {
		return a, false, refusal.New(CodeInvalid, "amount must be a non-zero amount in yuan with at most two decimals, like -12.50")
	}
	var key *string
	if n.IdempotencyKey != "" {
		key = &n.IdempotencyKey
	}
	var orderID, corrects *string
	if n.OrderID != "" {
		orderID = &n.OrderID
	}
	if n.CorrectsPeriod != "" {
		corrects = &n.CorrectsPeriod
	}
	row := s.Pool.QueryRow(ctx, `INSERT INTO settlement_adjustments (product_type, amount, reason, order_id, corrects_period,
			created_by, idempotency_key)
		VALUES ($1, $2, $3, $4, $5, $6, $7)
		ON CONFLICT (idempotency_key) DO NOTHING
		RETURNING `+adjustmentColumns,
		string(n.ProductType), n.Amount.StringFixed(2), n.Reason, orderID, corrects, n.CreatedBy, key)
	a, err = scanAdjustment(row)
	if err == nil {
		return a, true, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return a, false, fmt.Errorf("record adjustment: %w", err)
	}
	a, err = scanAdjustment(s.Pool.QueryRow(ctx, `SELECT `+adjustmentColumns+` FROM settlement_adjustments WHERE idempotency_key = $1`, key))
	if err != nil {
		return a, false, fmt.Errorf("read adjustment: %w", err)
	}
	if a.ProductType != n.ProductType || !a.Amount.Equal(n.Amount) || a.Reason != n.Reason || a.OrderID != n.OrderID {
		return a, false, refusal.New(CodeConflict, "idempotency key %q was used for a different adjustment (%d)", n.IdempotencyKey, a.ID)
	}
	return a, false, nil
}
