package recon

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/shopspring/decimal"

	"github.com/kooflow/kooflow/internal/catalog"
	"github.com/kooflow/kooflow/internal/refusal"
	"github.com/kooflow/kooflow/internal/settlement"
)

// PaymentWorkingDays is how long after a valid invoice the marketplace pays (seed 001: "6个工作日 发票无误后启动付款环节").
const PaymentWorkingDays = 6

// Sources of a state change.
const (
	SourceConsole = "console"
	SourceImport  = "import"
)

// BillRef names a bill of the marketplace.
type BillRef struct {
	Period      settlement.Period
	ProductType catalog.ProductType
}

func (b BillRef) valid() error {
	if b.Period.IsZero() {
		return refusal.New(CodeInvalid, "period is required")
	}
	if b.ProductType != catalog.General && b.ProductType != catalog.JointOperation {
		return refusal.New(CodeInvalid, "product type %q must be %q or %q", b.ProductType, catalog.General, catalog.JointOperation)
	}
	return nil
}

// SetState moves a bill to a new state, if the marketplace's process allows the move; an operator's record.
func (s *Store) SetState(ctx context.Context, b BillRef, to BillState, actor, note string) error {
	if err := b.valid(); err != nil {
		return err
	}
	tx, err := s.Pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("begin state change: %w", err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // after Commit this is a no-op
	from, err := currentState(ctx, tx, b.Period.String(), b.ProductType)
	if err != nil {
		return err
	}
	if err := CheckTransition(from, to); err != nil {
		return refusal.New(CodeConflict, "%v", err)
	}
	if err := writeState(ctx, tx, b.Period.String(), b.ProductType, from, to, SourceConsole, nil, actor, note); err != nil {
		return err
	}
	return tx.Commit(ctx)
}

// followImportedState moves a bill to the state an imported export carried, when the process allows it; an export
// that shows an older state than kooflow already knows (an old file imported late) changes nothing.
func (s *Store) followImportedState(ctx context.Context, tx pgx.Tx, period string, t catalog.ProductType, to BillState, importID int64, actor string) error {
	from, err := currentState(ctx, tx, period, t)
	if err != nil {
		return err
	}
	if from == to || CheckTransition(from, to) != nil {
		return nil
	}
	return writeState(ctx, tx, period, t, from, to, SourceImport, &importID, actor, "")
}

func currentState(ctx context.Context, tx pgx.Tx, period string, t catalog.ProductType) (BillState, error) {
	var st string
	err := tx.QueryRow(ctx, `SELECT state FROM recon_bills WHERE period = $1 AND product_type = $2 FOR UPDATE`, period, string(t)).Scan(&st)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read bill state: %w", err)
	}
	return BillState(st), nil
}

func writeState(ctx context.Context, tx pgx.Tx, period string, t catalog.ProductType, from, to BillState, source string, importID *int64, actor, note string) error {
	if from == to {
		return nil
	}
	if _, err := tx.Exec(ctx, `INSERT INTO recon_bills (period, product_type, state, updated_by) VALUES ($1, $2, $3, $4)
		ON CONFLICT (period, product_type) DO UPDATE SET state = EXCLUDED.state, updated_by = EXCLUDED.updated_by, updated_at = now()`,
		period, string(t), string(to), actor); err != nil {
		return fmt.Errorf("record bill state: %w", err)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO recon_bill_events (period, product_type, from_state, to_state, source, import_id, actor, note)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`, period, string(t), string(from), string(to), source, importID, actor, note); err != nil {
		return fmt.Errorf("record bill state change: %w", err)
	}
	return nil
}

// Invoice is the seller's invoice for a bill.
type Invoice struct {
	Number   string          `json:"number"`
	IssuedOn string          `json:"issuedOn"`
	Amount   decimal.Decimal `json:"amount"`
}

// RecordInvoice records the invoice issued for a bill. The same number again with the same figures is accepted
// and changes nothing; with other figures it is refused.
func (s *Store) RecordInvoice(ctx context.Context, b BillRef, inv Invoice, actor string) error {
	if err := b.valid(); err != nil {
		return err
	}
	d, err := settlement.ParseDate(inv.IssuedOn)
	if err != nil {
		return refusal.New(CodeInvalid, "issuedOn: %v", err)
	}
	if err := validAmount(inv.Amount); err != nil {
		return err
	}
	if inv.Number == "" || len(inv.Number) > 64 {
		return refusal.New(CodeInvalid, "the invoice number must be 1 to 64 characters")
	}
	tag, err := s.Pool.Exec(ctx, `INSERT INTO recon_invoices (period, product_type, number, issued_on, amount, created_by)
		VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (number) DO NOTHING`,
		b.Period.String(), string(b.ProductType), inv.Number, d.String(), inv.Amount.StringFixed(2), actor)
	if err != nil {
		return fmt.Errorf("record invoice: %w", err)
	}
	if tag.RowsAffected() == 1 {
		return nil
	}
	var p, t, on, amount string
	if err := s.Pool.QueryRow(ctx, `SELECT period, product_type, issued_on::text, amount::text FROM recon_invoices WHERE number = $1`,
		inv.Number).Scan(&p, &t, &on, &amount); err != nil {
		return fmt.Errorf("read invoice: %w", err)
	}
	if p != b.Period.String() || t != string(b.ProductType) || on != d.String() || amount != inv.Amount.StringFixed(2) {
		return refusal.New(CodeConflict, "invoice %s is already recorded for the %s bill for %s (%s, %s)", inv.Number, t, p, on, amount)
	}
	return nil
}

// Receipt is money received for a bill.
type Receipt struct {
	ReceivedOn string          `json:"receivedOn"`
	Amount     decimal.Decimal `json:"amount"`
	Reference  string          `json:"reference"`
}

// RecordReceipt records a payment received for a bill; a reference already recorded with the same figures changes
// nothing. Short and overdue payments are checked by CheckPayments.
func (s *Store) RecordReceipt(ctx context.Context, b BillRef, r Receipt, actor string) error {
	if err := b.valid(); err != nil {
		return err
	}
	d, err := settlement.ParseDate(r.ReceivedOn)
	if err != nil {
		return refusal.New(CodeInvalid, "receivedOn: %v", err)
	}
	if err := validAmount(r.Amount); err != nil {
		return err
	}
	if r.Reference == "" || len(r.Reference) > 128 {
		return refusal.New(CodeInvalid, "the payment reference must be 1 to 128 characters")
	}
	tag, err := s.Pool.Exec(ctx, `INSERT INTO recon_receipts (period, product_type, received_on, amount, reference, created_by)
		VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (reference) DO NOTHING`,
		b.Period.String(), string(b.ProductType), d.String(), r.Amount.StringFixed(2), r.Reference, actor)
	if err != nil {
		return fmt.Errorf("record receipt: %w", err)
	}
	if tag.RowsAffected() == 1 {
		return nil
	}
	var p, t, on, amount string
	if err := s.Pool.QueryRow(ctx, `SELECT period, product_type, received_on::text, amount::text FROM recon_receipts WHERE reference = $1`,
		r.Reference).Scan(&p, &t, &on, &amount); err != nil {
		return fmt.Errorf("read receipt: %w", err)
	}
	if p != b.Period.String() || t != string(b.ProductType) || on != d.String() || amount != r.Amount.StringFixed(2) {
		return refusal.New(CodeConflict, "payment %s is already recorded for the %s bill for %s (%s, %s)", r.Reference, t, p, on, amount)
	}
	return nil
}

func validAmount(a decimal.Decimal) error {
	if !a.IsPositive() || !a.Equal(a.Round(2)) {
		return refusal.New(CodeInvalid, "amount must be positive, in yuan with at most two decimals, like 1234.50")
	}
	return nil
}

// Receivable is what the marketplace owes for one bill, and since when.
type Receivable struct {
	Period      string              `json:"period"`
	ProductType catalog.ProductType `json:"productType"`
	State       string              `json:"state"`
	Stage       string              `json:"stage,omitempty"`
	// Billed is the marketplace's bill total (its latest imported bill detail), or kooflow's amount due when no
	// bill detail was imported; BilledFrom says which.
	Billed            decimal.Decimal `json:"billed"`
	BilledFrom        string          `json:"billedFrom"`
	KooflowAmountDue  decimal.Decimal `json:"kooflowAmountDue"`
	BillDate          string          `json:"billDate"` // expected (or actual) bill date: since when it is owed
	Invoice           *Invoice        `json:"invoice,omitempty"`
	ExpectedPaymentOn string          `json:"expectedPaymentOn,omitempty"`
	Received          decimal.Decimal `json:"received"`
	LastReceivedOn    string          `json:"lastReceivedOn,omitempty"`
	Outstanding       decimal.Decimal `json:"outstanding"`
	DaysOutstanding   int             `json:"daysOutstanding"`
	Overdue           bool            `json:"overdue"`
	Short             bool            `json:"short"`
}

// billDay is the marketplace's bill day of a product type.
func (s *Store) billDay(t catalog.ProductType) int {
	if d, ok := s.BillDay[t]; ok && d > 0 {
		return d
	}
	if t == catalog.JointOperation {
		return 3
	}
	return 7
}

func (s *Store) calendar() *settlement.Calendar {
	if s.Calendar == nil {
		return settlement.WeekendsOnly()
	}
	return s.Calendar
}

// AddWorkingDays is the n-th working day after d.
func AddWorkingDays(c *settlement.Calendar, d settlement.Date, n int) settlement.Date {
	for n > 0 {
		d = d.AddDays(1)
		if c.IsWorkingDay(d) {
			n--
		}
	}
	return d
}

// Receivables lists every bill the marketplace owes money for or has a state for, oldest first: kooflow's final
// bills with an amount due, bills with an imported bill detail, and bills with a recorded state. With
// outstandingOnly, fully paid bills are left out.
func (s *Store) Receivables(ctx context.Context, now time.Time, outstandingOnly bool) ([]Receivable, error) {
	rows, err := s.Pool.Query(ctx, `WITH bills AS (
			SELECT period, product_type FROM settlement_bills WHERE status = 'final' AND amount_due > 0
			UNION SELECT period, product_type FROM recon_imports
			UNION SELECT period, product_type FROM recon_bills)
		SELECT b.period, b.product_type, coalesce(rb.state, ''),
			coalesce(sb.amount_due, 0)::text,
			(SELECT settlement_total::text FROM recon_imports i WHERE i.period = b.period AND i.product_type = b.product_type
				ORDER BY import_id DESC LIMIT 1),
			(SELECT number FROM recon_invoices v WHERE v.period = b.period AND v.product_type = b.product_type ORDER BY issued_on DESC, invoice_id DESC LIMIT 1),
			(SELECT issued_on::text FROM recon_invoices v WHERE v.period = b.period AND v.product_type = b.product_type ORDER BY issued_on DESC, invoice_id DESC LIMIT 1),
			(SELECT amount::text FROM recon_invoices v WHERE v.period = b.period AND v.product_type = b.product_type ORDER BY issued_on DESC, invoice_id DESC LIMIT 1),
			coalesce((SELECT sum(amount) FROM recon_receipts r WHERE r.period = b.period AND r.product_type = b.product_type), 0)::text,
			coalesce((SELECT max(received_on)::text FROM recon_receipts r WHERE r.period = b.period AND r.product_type = b.product_type), '')
		FROM bills b
		LEFT JOIN recon_bills rb USING (period, product_type)
		LEFT JOIN settlement_bills sb ON sb.period = b.period AND sb.product_type = b.product_type AND sb.status = 'final'
		ORDER BY b.period, b.product_type`)
	if err != nil {
		return nil, fmt.Errorf("read receivables: %w", err)
	}
	defer rows.Close()
	today := settlement.DateOf(now)
	cal := s.calendar()
	out := []Receivable{}
	for rows.Next() {
		var r Receivable
		var pt, due, received string
		var imported, invNo, invOn, invAmount *string
		if err := rows.Scan(&r.Period, &pt, &r.State, &due, &imported, &invNo, &invOn, &invAmount, &received, &r.LastReceivedOn); err != nil {
			return nil, fmt.Errorf("read receivable: %w", err)
		}
		r.ProductType = catalog.ProductType(pt)
		r.Stage = BillState(r.State).Stage()
		if r.KooflowAmountDue, err = decimal.NewFromString(due); err != nil {
			return nil, err
		}
		if r.Received, err = decimal.NewFromString(received); err != nil {
			return nil, err
		}
		r.Billed, r.BilledFrom = r.KooflowAmountDue, "kooflow"
		if imported != nil {
			if r.Billed, err = decimal.NewFromString(*imported); err != nil {
				return nil, err
			}
			r.BilledFrom = "marketplace"
		}
		p, err := settlement.ParsePeriod(r.Period)
		if err != nil {
			return nil, err
		}
		bd, err := cal.BillDate(p, s.billDay(r.ProductType))
		if err != nil {
			return nil, err
		}
		r.BillDate = bd.String()
		if invNo != nil {
			r.Invoice = &Invoice{Number: *invNo, IssuedOn: *invOn}
			if r.Invoice.Amount, err = decimal.NewFromString(*invAmount); err != nil {
				return nil, err
			}
			on, err := settlement.ParseDate(*invOn)
			if err != nil {
				return nil, err
			}
			r.ExpectedPaymentOn = AddWorkingDays(cal, on, PaymentWorkingDays).String()
		}
		r.Outstanding = r.Billed.Sub(r.Received)
		if r.Outstanding.IsPositive() && !today.Before(bd) {
			r.DaysOutstanding = daysBetween(bd, today)
		}
		if r.Outstanding.IsPositive() && r.ExpectedPaymentOn != "" {
			exp, _ := settlement.ParseDate(r.ExpectedPaymentOn)
			r.Overdue = exp.Before(today)
		}
		r.Short = r.Outstanding.IsPositive() && r.Received.IsPositive()
		if outstandingOnly && !r.Outstanding.IsPositive() {
			continue
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].BillDate < out[j].BillDate })
	return out, nil
}

func daysBetween(a, b settlement.Date) int {
	return int(b.Time(12).Sub(a.Time(12)).Hours() / 24)
}

// CheckPayments raises an alert for every bill whose payment is overdue (its expected payment date passed with
// money outstanding) or short (money received, but less than billed, once the bill is paid or its payment is
// due), and resolves the alerts of bills that are settled. It returns the bills it alerted on.
func (s *Store) CheckPayments(ctx context.Context, now time.Time) ([]Receivable, error) {
	all, err := s.Receivables(ctx, now, false)
	if err != nil {
		return nil, err
	}
	a := s.alerter()
	var alerted []Receivable
	for _, r := range all {
		b := "recon/" + r.Period + "/" + string(r.ProductType)
		overdue := r.Overdue
		short := r.Short && (r.State == string(StatePaid) || r.Overdue)
		if overdue {
			if err := a.Raise(ctx, Alert{Kind: AlertOverdue, Key: b, Summary: fmt.Sprintf(
				"the marketplace has not paid the %s bill for %s: %s of %s yuan outstanding, payment was expected on %s (invoice %s of %s)",
				r.ProductType, r.Period, r.Outstanding.StringFixed(2), r.Billed.StringFixed(2), r.ExpectedPaymentOn, r.Invoice.Number,
				r.Invoice.IssuedOn)}); err != nil {
				return alerted, err
			}
		} else if err := a.Resolve(ctx, AlertOverdue, b); err != nil {
			return alerted, err
		}
		if short {
			if err := a.Raise(ctx, Alert{Kind: AlertShort, Key: b, Summary: fmt.Sprintf(
				"the marketplace paid %s of %s yuan for the %s bill for %s: %s short",
				r.Received.StringFixed(2), r.Billed.StringFixed(2), r.ProductType, r.Period, r.Outstanding.StringFixed(2))}); err != nil {
				return alerted, err
			}
		} else if err := a.Resolve(ctx, AlertShort, b); err != nil {
			return alerted, err
		}
		if overdue || short {
			alerted = append(alerted, r)
		}
	}
	return alerted, nil
}

// StateEvent is one recorded state change of a bill.
type StateEvent struct {
	From     string    `json:"from,omitempty"`
	To       string    `json:"to"`
	Source   string    `json:"source"`
	ImportID *int64    `json:"importId,omitempty"`
	Actor    string    `json:"actor"`
	Note     string    `json:"note,omitempty"`
	At       time.Time `json:"at"`
}

// History lists a bill's state changes, oldest first.
func (s *Store) History(ctx context.Context, b BillRef) ([]StateEvent, error) {
	rows, err := s.Pool.Query(ctx, `SELECT from_state, to_state, source, import_id, actor, note, at FROM recon_bill_events
		WHERE period = $1 AND product_type = $2 ORDER BY id`, b.Period.String(), string(b.ProductType))
	if err != nil {
		return nil, fmt.Errorf("read bill history: %w", err)
	}
	defer rows.Close()
	out := []StateEvent{}
	for rows.Next() {
		var e StateEvent
		if err := rows.Scan(&e.From, &e.To, &e.Source, &e.ImportID, &e.Actor, &e.Note, &e.At); err != nil {
			return nil, err
		}
		e.At = e.At.UTC()
		out = append(out, e)
	}
	return out, rows.Err()
}

// RecordedReceipt is a payment received, as recorded.
type RecordedReceipt struct {
	Receipt
	CreatedBy string    `json:"createdBy"`
	CreatedAt time.Time `json:"createdAt"`
}

// Payments lists a bill's invoices (newest first) and the payments received for it (oldest first).
func (s *Store) Payments(ctx context.Context, b BillRef) ([]Invoice, []RecordedReceipt, error) {
	rows, err := s.Pool.Query(ctx, `SELECT number, issued_on::text, amount::text FROM recon_invoices
		WHERE period = $1 AND product_type = $2 ORDER BY issued_on DESC, invoice_id DESC`, b.Period.String(), string(b.ProductType))
	if err != nil {
		return nil, nil, fmt.Errorf("read invoices: %w", err)
	}
	invs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Invoice, error) {
		var inv Invoice
		var amount string
		if err := r.Scan(&inv.Number, &inv.IssuedOn, &amount); err != nil {
			return inv, err
		}
		inv.Amount, err = decimal.NewFromString(amount)
		return inv, err
	})
	if err != nil {
		return nil, nil, fmt.Errorf("read invoices: %w", err)
	}
	rows, err = s.Pool.Query(ctx, `SELECT received_on::text, amount::text, reference, created_by, created_at FROM recon_receipts
		WHERE period = $1 AND product_type = $2 ORDER BY received_on, reference`, b.Period.String(), string(b.ProductType))
	if err != nil {
		return nil, nil, fmt.Errorf("read payments received: %w", err)
	}
	recs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (RecordedReceipt, error) {
		var rc RecordedReceipt
		var amount string
		if err := r.Scan(&rc.ReceivedOn, &amount, &rc.Reference, &rc.CreatedBy, &rc.CreatedAt); err != nil {
			return rc, err
		}
		rc.CreatedAt = rc.CreatedAt.UTC()
		rc.Amount, err = decimal.NewFromString(amount)
		return rc, err
	})
	if err != nil {
		return nil, nil, fmt.Errorf("read payments received: %w", err)
	}
	return invs, recs, nil
}

// State reads a bill's current state ("" when none is recorded).
func (s *Store) State(ctx context.Context, b BillRef) (BillState, error) {
	var st string
	err := s.Pool.QueryRow(ctx, `SELECT state FROM recon_bills WHERE period = $1 AND product_type = $2`, b.Period.String(), string(b.ProductType)).Scan(&st)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read bill state: %w", err)
	}
	return BillState(st), nil
}
