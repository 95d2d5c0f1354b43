package ledger

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"
	"unicode"

	"github.com/jackc/pgx/v5"
	"github.com/kooflow/kooflow/internal/refusal"
	"github.com/kooflow/kooflow/internal/store"
)

// Payment sources.
const (
	SourceConsole = "console"
	SourceImport  = "import"
)

// PaymentState is settlement's record of how an order was paid. An order without one was paid at purchase.
type PaymentState struct {
	OrderID   string         `json:"orderId"`
	Recorded  bool           `json:"recorded"` // false: no record, paid at purchase
	Credit    bool           `json:"credit"`
	RepaidAt  *time.Time     `json:"repaidAt,omitempty"`
	Source    string         `json:"source,omitempty"`
	UpdatedBy string         `json:"updatedBy,omitempty"`
	UpdatedAt *time.Time     `json:"updatedAt,omitempty"`
	History   []PaymentEvent `json:"history,omitempty"`
}

// Paid reports whether the payment counts as received before end.
func (p PaymentState) Paid(end time.Time) bool {
	return !p.Credit || (p.RepaidAt != nil && p.RepaidAt.Before(end))
}

// PaymentEvent is one recorded change.
type PaymentEvent struct {
	Credit   bool       `json:"credit"`
	RepaidAt *time.Time `json:"repaidAt,omitempty"`
	Source   string     `json:"source"`
	Actor    string     `json:"actor"`
	ImportID *int64     `json:"importId,omitempty"`
	At       time.Time  `json:"at"`
}

// ValidOrderID checks an order id from the console or a file.
func ValidOrderID(id string) error {
	if id == "" || len(id) > 64 {
		return fmt.Errorf("order id must be 1 to 64 characters")
	}
	for _, r := range id {
		if unicode.IsControl(r) || unicode.IsSpace(r) {
			return fmt.Errorf("order id %q contains spaces or control characters", id)
		}
	}
	return nil
}

// Payment reads an order's payment state with its history.
func (s *Store) Payment(ctx context.Context, orderID string) (PaymentState, error) {
	p := PaymentState{OrderID: orderID}
	var updated time.Time
	err := s.Pool.QueryRow(ctx, `SELECT credit, repaid_at, source, updated_by, updated_at FROM settlement_payments WHERE order_id = $1`,
		orderID).Scan(&p.Credit, &p.RepaidAt, &p.Source, &p.UpdatedBy, &updated)
	switch {
	case err == nil:
		p.Recorded = true
		u := updated.UTC()
		p.UpdatedAt = &u
		p.RepaidAt = utcPtr(p.RepaidAt)
	case !errors.Is(err, pgx.ErrNoRows):
		return p, fmt.Errorf("read payment of %s: %w", orderID, err)
	}
	rows, err := s.Pool.Query(ctx, `SELECT credit, repaid_at, source, actor, import_id, at FROM settlement_payment_events
		WHERE order_id = $1 ORDER BY id`, orderID)
	if err != nil {
		return p, fmt.Errorf("read payment history of %s: %w", orderID, err)
	}
	defer rows.Close()
	for rows.Next() {
		var e PaymentEvent
		if err := rows.Scan(&e.Credit, &e.RepaidAt, &e.Source, &e.Actor, &e.ImportID, &e.At); err != nil {
			return p, err
		}
		e.RepaidAt, e.At = utcPtr(e.RepaidAt), e.At.UTC()
		p.History = append(p.History, e)
	}
	return p, rows.Err()
}

func utcPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

// SetPayment records an order's payment state from the console: credit-paid or not, and when it was repaid.
// It reports whether anything changed; the same state twice changes nothing and records no event.
func (s *Store) SetPayment(ctx context.Context, orderID string, credit bool, repaidAt *time.Time, actor string, now time.Time) (PaymentState, bool, error) {
	if err := ValidOrderID(orderID); err != nil {
		return PaymentState{}, false, refusal.New(CodeInvalid, "%v", err)
	}
	if repaidAt != nil && !credit {
		return PaymentState{}, false, refusal.New(CodeInvalid, "a repayment (回款) time only applies to a credit-paid (信用支付) order")
	}
	if repaidAt != nil && repaidAt.After(now.Add(5*time.Minute)) {
		return PaymentState{}, false, refusal.New(CodeInvalid, "repaidAt %s is in the future", repaidAt.UTC().Format(time.RFC3339))
	}
	tx, err := s.Pool.Begin(ctx)
	if err != nil {
		return PaymentState{}, false, fmt.Errorf("begin payment: %w", err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // after Commit this is a no-op
	changed, err := setPayment(ctx, tx, orderID, credit, repaidAt, SourceConsole, actor, nil)
	if err != nil {
		return PaymentState{}, false, err
	}
	if err := tx.Commit(ctx); err != nil {
		return PaymentState{}, false, fmt.Errorf("commit payment: %w", err)
	}
	p, err := s.Payment(ctx, orderID)
	return p, changed, err
}

// setPayment writes one order's state and its event when it differs from what is recorded.
func setPayment(ctx context.Context, tx pgx.Tx, orderID string, credit bool, repaidAt *time.Time, source, actor string, importID *int64) (bool, error) {
	var curCredit bool
	var curRepaid *time.Time
	err := tx.QueryRow(ctx, `SELECT credit, repaid_at FROM settlement_payments WHERE order_id = $1 FOR UPDATE`, orderID).
		Scan(&curCredit, &curRepaid)
	exists := err == nil
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return false, fmt.Errorf("read payment of %s: %w", orderID, err)
	}
	if !exists && !credit {
		return false, nil // paid at purchase, as without a record
	}
	if exists && curCredit == credit && sameTime(curRepaid, repaidAt) {
		return false, nil
	}
	if _, err := tx.Exec(ctx, `INSERT INTO settlement_payments (order_id, credit, repaid_at, source, updated_by)
		VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (order_id) DO UPDATE SET credit = EXCLUDED.credit, repaid_at = EXCLUDED.repaid_at,
			source = EXCLUDED.source, updated_by = EXCLUDED.updated_by, updated_at = now()`,
		orderID, credit, repaidAt, source, actor); err != nil {
		return false, fmt.Errorf("record payment of %s: %w", orderID, err)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO settlement_payment_events (order_id, credit, repaid_at, source, actor, import_id)
		VALUES ($1, $2, $3, $4, $5, $6)`, orderID, credit, repaidAt, source, actor, importID); err != nil {
		return false, fmt.Errorf("record payment event of %s: %w", orderID, err)
	}
	return true, nil
}

func sameTime(a, b *time.Time) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return a.Equal(*b)
}

// ImportResult summarises an import of the marketplace's transaction-detail export.
type ImportResult struct {
	ImportID        int64     `json:"importId"`
	Filename        string    `json:"filename,omitempty"`
	SHA256          string    `json:"sha256"`
	Rows            int       `json:"rows"`
	Orders          int       `json:"orders"`
	CreditOrders    int       `json:"creditOrders"`
	RepaidOrders    int       `json:"repaidOrders"`
	Changed         int       `json:"changed"`
	UnknownOrders   int       `json:"unknownOrders"` // order ids kooflow has no orders row for (yet); recorded anyway
	AlreadyImported bool      `json:"alreadyImported"`
	ImportedAt      time.Time `json:"importedAt"`
}

// ImportTransactions applies a transaction-detail export (交易明细) to the payment state, all or nothing: a file
// that does not parse changes nothing, and the same file (by SHA-256) is applied once.
//
// Per order (rows of one order are merged): a repayment status of 未回款 marks it credit-paid and not repaid; 已回款
// records the repayment time on a credit-paid order (one the file or an earlier record says is 信用支付); a
// payment method other than 信用支付 clears a credit mark recorded earlier. Orders the file says nothing about
// keep their state.
func (s *Store) ImportTransactions(ctx context.Context, data []byte, filename, actor string) (ImportResult, error) {
	sum := sha256.Sum256(data)
	res := ImportResult{Filename: filename, SHA256: hex.EncodeToString(sum[:])}
	rows, err := ParseTransactions(data)
	if err != nil {
		return res, err
	}
	res.Rows = len(rows)
	orders := mergeTransactions(rows)

	tx, err := s.Pool.Begin(ctx)
	if err != nil {
		return res, fmt.Errorf("begin import: %w", err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // after Commit this is a no-op
	err = tx.QueryRow(ctx, `SELECT import_id, filename, row_count, credit_count, repaid_count, changed, imported_at
		FROM settlement_imports WHERE sha256 = $1`, res.SHA256).
		Scan(&res.ImportID, &res.Filename, &res.Rows, &res.CreditOrders, &res.RepaidOrders, &res.Changed, &res.ImportedAt)
	if err == nil {
		res.AlreadyImported, res.Orders, res.ImportedAt = true, len(orders), res.ImportedAt.UTC()
		return res, tx.Commit(ctx)
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return res, fmt.Errorf("look up import: %w", err)
	}
	if err := tx.QueryRow(ctx, `INSERT INTO settlement_imports (sha256, filename, row_count, credit_count, repaid_count, changed, imported_by)
		VALUES ($1, $2, $3, 0, 0, 0, $4) RETURNING import_id, imported_at`, res.SHA256, filename, res.Rows, actor).
		Scan(&res.ImportID, &res.ImportedAt); err != nil {
		return res, fmt.Errorf("record import: %w", err)
	}
	ids := make([]string, 0, len(orders))
	for id := range orders {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	res.Orders = len(ids)
	for _, id := range ids {
		t := orders[id]
		var curCredit bool
		var curRepaid *time.Time
		err := tx.QueryRow(ctx, `SELECT credit, repaid_at FROM settlement_payments WHERE order_id = $1`, id).Scan(&curCredit, &curRepaid)
		exists := err == nil
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return res, fmt.Errorf("read payment of %s: %w", id, err)
		}
		credit, repaid := curCredit, curRepaid
		switch {
		case t.repaid != nil && !*t.repaid:
			credit, repaid = true, nil
		case t.repaid != nil && *t.repaid:
			if t.credit != nil {
				credit = *t.credit
			}
			if credit {
				repaid = t.repaidAt
			} else {
				repaid = nil
			}
		case t.credit != nil:
			credit = *t.credit
			if !credit {
				repaid = nil
			}
		}
		if !exists && !credit {
			continue
		}
		changed, err := setPayment(ctx, tx, id, credit, repaid, SourceImport, actor, &res.ImportID)
		if err != nil {
			return res, err
		}
		if changed {
			res.Changed++
		}
		if credit {
			res.CreditOrders++
			if repaid != nil {
				res.RepaidOrders++
			}
		}
	}
	if res.UnknownOrders, err = store.CountUnknownOrders(ctx, tx, ids); err != nil {
		return res, err
	}
	if _, err := tx.Exec(ctx, `UPDATE settlement_imports SET credit_count = $2, repaid_count = $3, changed = $4 WHERE import_id = $1`,
		res.ImportID, res.CreditOrders, res.RepaidOrders, res.Changed); err != nil {
		return res, fmt.Errorf("finish import: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return res, fmt.Errorf("commit import: %w", err)
	}
	res.ImportedAt = res.ImportedAt.UTC()
	return res, nil
}

type txOrder struct {
	credit   *bool
	repaid   *bool
	repaidAt *time.Time
}

// mergeTransactions folds the rows of each order: credit if any row says so, repaid only if every row that
// states it says so, at the latest repayment time.
func mergeTransactions(rows []TxRow) map[string]txOrder {
	out := map[string]txOrder{}
	for _, r := range rows {
		t := out[r.OrderID]
		if r.Credit != nil {
			v := *r.Credit || (t.credit != nil && *t.credit)
			t.credit = &v
		}
		if r.Repaid != nil {
			v := *r.Repaid && (t.repaid == nil || *t.repaid)
			t.repaid = &v
		}
		if r.RepaidAt != nil && (t.repaidAt == nil || r.RepaidAt.After(*t.repaidAt)) {
			at := *r.RepaidAt
			t.repaidAt = &at
		}
		out[r.OrderID] = t
	}
	return out
}

// importErrorLimit caps how many row errors a refused import lists.
const importErrorLimit = 20

func joinErrors(errs []string) string {
	if len(errs) > importErrorLimit {
		errs = append(errs[:importErrorLimit], fmt.Sprintf("… and %d more", len(errs)-importErrorLimit))
	}
	return strings.Join(errs, "; ")
}
