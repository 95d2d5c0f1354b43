package ledger

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/shopspring/decimal"

	"github.com/kooflow/kooflow/internal/catalog"
	"github.com/kooflow/kooflow/internal/settlement"
)

// EstimateRequest asks what a period's bills would hold if it closed now.
type EstimateRequest struct {
	Period    settlement.Period
	AsOf      time.Time // lines attributed before min(AsOf, period end) count
	Terms     map[string]settlement.Terms
	Threshold decimal.Decimal
}

// Estimate is a 预估: the bills a close would produce, computed on demand and written nowhere.
type Estimate struct {
	Period string         `json:"period"`
	AsOf   time.Time      `json:"asOf"`
	Types  []TypeEstimate `json:"productTypes"`
}

// TypeEstimate is one product type's estimated bill.
type TypeEstimate struct {
	ProductType catalog.ProductType `json:"productType"`
	Lines       int64               `json:"lines"`
	// UsageLines and UsageQuantity are the pay-per-use part of Lines: usage accepted by the marketplace and not
	// settled yet, up to AsOf (the running month's usage included).
	UsageLines         int64           `json:"usageLines"`
	UsageQuantity      decimal.Decimal `json:"usageQuantity"`
	Revenue            decimal.Decimal `json:"revenue"`
	PlatformFee        decimal.Decimal `json:"platformFee"`
	Settlement         decimal.Decimal `json:"settlement"`
	PendingAdjustments int64           `json:"pendingAdjustments"`
	AdjustmentTotal    decimal.Decimal `json:"adjustmentTotal"`
	Total              decimal.Decimal `json:"total"`
	Threshold          decimal.Decimal `json:"threshold"`
	WouldBill          bool            `json:"wouldBill"`
}

// Estimate runs the close's selection over every instance in one read-only snapshot and aggregates it.
func (s *Store) Estimate(ctx context.Context, req EstimateRequest) (Estimate, error) {
	end := req.Period.End()
	if !req.AsOf.IsZero() && req.AsOf.Before(end) {
		end = req.AsOf
	}
	est := Estimate{Period: req.Period.String(), AsOf: end.UTC()}
	tx, err := s.Pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return est, fmt.Errorf("begin estimate: %w", err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // read-only
	// As in a close's batches: memory, no nested loops over CTEs, ledger probes by key, no JIT compile.
	for _, set := range []string{`SET LOCAL work_mem = '256MB'`, `SET LOCAL enable_nestloop = off`,
		`SET LOCAL enable_seqscan = off`, `SET LOCAL jit = off`} {
		if _, err := tx.Exec(ctx, set); err != nil {
			return est, fmt.Errorf("%s: %w", set, err)
		}
	}
	var ids, types, rates []string
	for id, t := range req.Terms {
		ids, types, rates = append(ids, id), append(types, string(t.Type)), append(rates, t.Rate.String())
	}
	got := map[catalog.ProductType]TypeEstimate{}
	horizon, err := ledgerHorizon(ctx, tx, 0)
	if err != nil {
		return est, err
	}
	rows, err := tx.Query(ctx, estimateSQL, "", nil, end, ids, types, rates, horizon)
	if err != nil {
		return est, fmt.Errorf("estimate %s: %w", req.Period, err)
	}
	for rows.Next() {
		var e TypeEstimate
		var pt, rev, fee, set string
		if err := rows.Scan(&pt, &e.Lines, &rev, &fee, &set); err != nil {
			rows.Close()
			return est, fmt.Errorf("read estimate: %w", err)
		}
		e.ProductType = catalog.ProductType(pt)
		e.Revenue, e.PlatformFee, e.Settlement = decimal.RequireFromString(rev), decimal.RequireFromString(fee), decimal.RequireFromString(set)
		got[e.ProductType] = e
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return est, fmt.Errorf("estimate %s: %w", req.Period, err)
	}
	if err := estimateUsage(ctx, tx, end, req.Terms, got); err != nil {
		return est, fmt.Errorf("estimate usage of %s: %w", req.Period, err)
	}
	for _, t := range settlement.ProductTypes {
		e := got[t]
		e.ProductType, e.Threshold = t, req.Threshold
		var adj string
		if err := tx.QueryRow(ctx, `SELECT count(*), coalesce(sum(amount), 0)::text FROM settlement_adjustments
			WHERE product_type = $1 AND bill_id IS NULL AND created_at < $2`, string(t), end).Scan(&e.PendingAdjustments, &adj); err != nil {
			return est, fmt.Errorf("sum pending adjustments: %w", err)
		}
		e.AdjustmentTotal = decimal.RequireFromString(adj)
		e.Total = e.Settlement.Add(e.AdjustmentTotal)
		e.WouldBill = settlement.MeetsThreshold(e.Total, req.Threshold)
		est.Types = append(est.Types, e)
	}
	return est, nil
}

// estimateUsage adds the pay-per-use usage a close ending at end would bill to the estimates by product type.
func estimateUsage(ctx context.Context, tx pgx.Tx, end time.Time, terms map[string]settlement.Terms, got map[catalog.ProductType]TypeEstimate) error {
	var ids, types, rates, prices []string
	for id, t := range terms {
		if t.UnitPrice.IsPositive() {
			ids, types, rates, prices = append(ids, id), append(types, string(t.Type)), append(rates, t.Rate.String()), append(prices, t.UnitPrice.String())
		}
	}
	if len(ids) == 0 {
		return nil
	}
	rows, err := tx.Query(ctx, estimateUsageSQL, "", nil, end, ids, types, rates, prices)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var pt, qty, rev, fee, set string
		var n int64
		if err := rows.Scan(&pt, &n, &qty, &rev, &fee, &set); err != nil {
			return err
		}
		var q, r, f, st decimal.Decimal
		if err := decimals(&q, qty, &r, rev, &f, fee, &st, set); err != nil {
			return err
		}
		e := got[catalog.ProductType(pt)]
		e.Lines += n
		e.UsageLines += n
		e.UsageQuantity = e.UsageQuantity.Add(q)
		e.Revenue, e.PlatformFee, e.Settlement = e.Revenue.Add(r), e.PlatformFee.Add(f), e.Settlement.Add(st)
		got[catalog.ProductType(pt)] = e
	}
	return rows.Err()
}
