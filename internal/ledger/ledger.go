// Package ledger is settlement's PostgreSQL side: it closes a period set-based in bounded batches, finalizes bills
// with a content hash, verifies closed bills, and reads bills, lines, payments, adjustments, estimates and
// explanations for the console. Every rule it applies is settlement's (package settlement); this package only
// says them in SQL and keeps the ledger's promises with constraints: an order line is settled once, a final bill
// never changes.
package ledger

import (
	"context"
	"fmt"
	"math/big"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/shopspring/decimal"

	"github.com/kooflow/kooflow/internal/catalog"
	"github.com/kooflow/kooflow/internal/refusal"
	"github.com/kooflow/kooflow/internal/settlement"
)

// Store reads and writes settlement's tables.
type Store struct {
	Pool *pgxpool.Pool
}

// Bill statuses.
const (
	StatusDraft          = "draft"
	StatusFinal          = "final"
	StatusCarriedForward = "carried_forward"
)

// Refusal codes.
const (
	CodePeriodNotEnded = "PERIOD_NOT_ENDED"
	CodeOutOfOrder     = "PERIOD_OUT_OF_ORDER"
	CodeEarlierOpen    = "EARLIER_PERIOD_OPEN"
	CodeCloseAbandoned = "CLOSE_ABANDONED"
	CodeContentChanged = "BILL_CONTENT_CHANGED"
	CodeNotFound       = refusal.NotFound
	CodeInvalid        = refusal.Invalid
	CodeConflict       = "CONFLICT"
)

// lockKey serialises the steps that decide which bills exist (prepare, finalize) across processes.
const lockKey = `SELECT pg_advisory_xact_lock(hashtext('kooflow.settlement'))`

// BillSummary is a bill without its lines.
type BillSummary struct {
	BillID           int64               `json:"billId"`
	Period           string              `json:"period"`
	ProductType      catalog.ProductType `json:"productType"`
	Status           string              `json:"status"`
	PeriodStart      time.Time           `json:"periodStart"`
	PeriodEnd        time.Time           `json:"periodEnd"`
	Threshold        decimal.Decimal     `json:"threshold"`
	LineCount        int64               `json:"lineCount"`
	Revenue          decimal.Decimal     `json:"revenue"`
	PlatformFee      decimal.Decimal     `json:"platformFee"`
	Settlement       decimal.Decimal     `json:"settlement"`
	AdjustmentCount  int64               `json:"adjustmentCount"`
	AdjustmentTotal  decimal.Decimal     `json:"adjustmentTotal"`
	AmountDue        decimal.Decimal     `json:"amountDue"`
	CarriedLineCount int64               `json:"carriedLineCount"`
	CarriedTotal     decimal.Decimal     `json:"carriedTotal"`
	ContentHash      string              `json:"contentHash,omitempty"`
	CreatedAt        time.Time           `json:"createdAt"`
	FinalizedAt      *time.Time          `json:"finalizedAt,omitempty"`
}

// Closed reports whether the bill is final or carried forward (both are immutable).
func (b BillSummary) Closed() bool {
	return b.Status == StatusFinal || b.Status == StatusCarriedForward
}

const billColumns = `bill_id, period, product_type, status, period_start, period_end, threshold::text, line_count,
	revenue_total::text, fee_total::text, settlement_total::text, adjustment_count, adjustment_total::text,
	amount_due::text, carried_line_count, carried_total::text, coalesce(content_hash, ''), created_at, finalized_at`

func scanBill(row pgx.Row) (BillSummary, error) {
	var b BillSummary
	var pt string
	var thr, rev, fee, set, adj, due, car string
	err := row.Scan(&b.BillID, &b.Period, &pt, &b.Status, &b.PeriodStart, &b.PeriodEnd, &thr, &b.LineCount,
		&rev, &fee, &set, &b.AdjustmentCount, &adj, &due, &b.CarriedLineCount, &car, &b.ContentHash, &b.CreatedAt,
		&b.FinalizedAt)
	if err != nil {
		return b, err
	}
	b.ProductType = catalog.ProductType(pt)
	for _, f := range []struct {
		dst *decimal.Decimal
		s   string
	}{{&b.Threshold, thr}, {&b.Revenue, rev}, {&b.PlatformFee, fee}, {&b.Settlement, set}, {&b.AdjustmentTotal, adj},
		{&b.AmountDue, due}, {&b.CarriedTotal, car}} {
		if *f.dst, err = decimal.NewFromString(f.s); err != nil {
			return b, fmt.Errorf("bill %d: amount %q: %w", b.BillID, f.s, err)
		}
	}
	b.PeriodStart, b.PeriodEnd, b.CreatedAt = b.PeriodStart.UTC(), b.PeriodEnd.UTC(), b.CreatedAt.UTC()
	if b.FinalizedAt != nil {
		t := b.FinalizedAt.UTC()
		b.FinalizedAt = &t
	}
	return b, nil
}

// digest is the order-independent digest of a bill's lines and adjustments (see lineDigestSQL).
type digest struct {
	count      int64
	revenue    decimal.Decimal
	fee        decimal.Decimal
	settlement decimal.Decimal
	lines      uint64
	adjCount   int64
	adjTotal   decimal.Decimal
	adj        uint64
}

var two64 = new(big.Int).Lsh(big.NewInt(1), 64)

// lane reduces a (possibly negative, arbitrarily large) NUMERIC sum of signed 64-bit hashes modulo 2^64.
func lane(s string) (uint64, error) {
	n, ok := new(big.Int).SetString(s, 10)
	if !ok {
		return 0, fmt.Errorf("digest %q is not an integer", s)
	}
	n.Mod(n, two64) // Euclidean: always in [0, 2^64)
	return n.Uint64(), nil
}

func decimals(pairs ...any) error {
	for i := 0; i < len(pairs); i += 2 {
		d, err := decimal.NewFromString(pairs[i+1].(string))
		if err != nil {
			return fmt.Errorf("amount %q: %w", pairs[i+1], err)
		}
		*pairs[i].(*decimal.Decimal) = d
	}
	return nil
}

// readLineDigest recomputes the digest of a bill's stored lines.
func readLineDigest(ctx context.Context, q pgx.Tx, billID int64) (digest, error) {
	var d digest
	var rev, fee, set, h string
	if err := q.QueryRow(ctx, lineDigestSQL, billID).Scan(&d.count, &rev, &fee, &set, &h); err != nil {
		return d, fmt.Errorf("digest lines of bill %d: %w", billID, err)
	}
	if err := decimals(&d.revenue, rev, &d.fee, fee, &d.settlement, set); err != nil {
		return d, err
	}
	var err error
	d.lines, err = lane(h)
	return d, err
}

// readAdjustmentDigest adds the digest of a bill's adjustments to d.
func readAdjustmentDigest(ctx context.Context, q pgx.Tx, billID int64, d *digest) error {
	var total, h string
	if err := q.QueryRow(ctx, adjustmentDigestSQL, billID).Scan(&d.adjCount, &total, &h); err != nil {
		return fmt.Errorf("digest adjustments of bill %d: %w", billID, err)
	}
	if err := decimals(&d.adjTotal, total); err != nil {
		return err
	}
	var err error
	d.adj, err = lane(h)
	return err
}

func parseTypes(ss []string) ([]catalog.ProductType, error) {
	var out []catalog.ProductType
	for _, s := range ss {
		t := catalog.ProductType(strings.TrimSpace(s))
		if t != catalog.General && t != catalog.JointOperation {
			return nil, refusal.New(CodeInvalid, "product type %q must be %q or %q", s, catalog.General, catalog.JointOperation)
		}
		out = append(out, t)
	}
	return out, nil
}

// ParseProductTypes validates product type names; empty input means all types.
func ParseProductTypes(ss []string) ([]catalog.ProductType, error) {
	if len(ss) == 0 {
		return append([]catalog.ProductType(nil), settlement.ProductTypes...), nil
	}
	ts, err := parseTypes(ss)
	if err != nil {
		return nil, err
	}
	// Keep the canonical order and drop duplicates.
	var out []catalog.ProductType
	for _, t := range settlement.ProductTypes {
		for _, u := range ts {
			if t == u {
				out = append(out, t)
				break
			}
		}
	}
	return out, nil
}
