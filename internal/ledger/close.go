package ledger

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/shopspring/decimal"

	"github.com/kooflow/kooflow/internal/catalog"
	"github.com/kooflow/kooflow/internal/refusal"
	"github.com/kooflow/kooflow/internal/settlement"
	"github.com/kooflow/kooflow/internal/store"
)

// DefaultBatchSize is how many instances one batch covers: large enough that per-statement overhead is small,
// small enough that a batch commits in about a second and a retry repeats little work.
const DefaultBatchSize = 100_000

// CloseRequest asks to close a period for some product types.
type CloseRequest struct {
	Period      settlement.Period
	Types       []catalog.ProductType // empty: all
	WorkflowID  string
	RunID       string
	RequestedBy string
	Threshold   decimal.Decimal
	BatchSize   int
	// Terms are the catalog's settlement terms by product id; products not listed are held (unknown product).
	Terms map[string]settlement.Terms
	Now   time.Time
}

// Plan is what Prepare decided.
type Plan struct {
	CloseID int64                 `json:"closeId"` // 0 when nothing is to be computed
	Period  string                `json:"period"`
	Compute []catalog.ProductType `json:"compute,omitempty"`
	Verify  []catalog.ProductType `json:"verify,omitempty"`
	Batches int                   `json:"batches"`
}

type termJSON struct {
	ProductID string              `json:"productId"`
	Type      catalog.ProductType `json:"type"`
	Rate      string              `json:"rate"`
	// UnitPrice is the usage unit price of a pay-per-use product; absent for the others (and in closes written
	// before usage was settled).
	UnitPrice string `json:"unitPrice,omitempty"`
}

type billRef struct {
	BillID      int64               `json:"billId"`
	ProductType catalog.ProductType `json:"productType"`
}

// Prepare opens a close: it checks the period may be closed, creates (or resets) the draft bills of the
// requested product types that are not closed yet, snapshots the catalog terms, and plans the batches. Bills
// already closed are listed for verification. Calling it again from the same workflow run returns the same plan.
func (s *Store) Prepare(ctx context.Context, req CloseRequest) (Plan, error) {
	plan := Plan{Period: req.Period.String()}
	if req.Now.IsZero() {
		req.Now = time.Now()
	}
	if req.BatchSize <= 0 {
		req.BatchSize = DefaultBatchSize
	}
	if req.Threshold.IsNegative() {
		return plan, refusal.New(CodeInvalid, "threshold %s must not be negative", req.Threshold)
	}
	end := req.Period.End()
	if req.Now.Before(end) {
		return plan, refusal.New(CodePeriodNotEnded, "period %s has not ended yet (it ends %s Beijing time); ask for an estimate instead",
			req.Period, end.In(settlement.Beijing).Format("2006-01-02 15:04"))
	}
	types := req.Types
	if len(types) == 0 {
		types = settlement.ProductTypes
	}
	tx, err := s.Pool.Begin(ctx)
	if err != nil {
		return plan, fmt.Errorf("begin prepare: %w", err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // after Commit this is a no-op
	if _, err := tx.Exec(ctx, lockKey); err != nil {
		return plan, fmt.Errorf("lock settlement: %w", err)
	}

	// The same workflow run asking again (a retried activity) gets its plan back.
	var existing int64
	err = tx.QueryRow(ctx, `SELECT close_id FROM settlement_closes WHERE run_id = $1 AND period = $2`,
		req.RunID, plan.Period).Scan(&existing)
	if err == nil {
		return s.existingPlan(ctx, tx, existing, plan, types)
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return plan, fmt.Errorf("look up close: %w", err)
	}

	var bills []billRef
	for _, t := range types {
		var id int64
		var status string
		var closeID *int64
		err := tx.QueryRow(ctx, `SELECT bill_id, status, close_id FROM settlement_bills WHERE period = $1 AND product_type = $2 FOR UPDATE`,
			plan.Period, string(t)).Scan(&id, &status, &closeID)
		switch {
		case err == nil && status != StatusDraft:
			plan.Verify = append(plan.Verify, t)
			continue
		case err != nil && !errors.Is(err, pgx.ErrNoRows):
			return plan, fmt.Errorf("read bill %s/%s: %w", plan.Period, t, err)
		}
		var later string
		err = tx.QueryRow(ctx, `SELECT period FROM settlement_bills WHERE product_type = $1 AND period > $2 AND status <> 'draft'
			ORDER BY period LIMIT 1`, string(t), plan.Period).Scan(&later)
		if err == nil {
			return plan, refusal.New(CodeOutOfOrder, "the %s bill for %s is already closed; %s can no longer be closed (its orders were settled there or later)",
				t, later, plan.Period)
		} else if !errors.Is(err, pgx.ErrNoRows) {
			return plan, fmt.Errorf("check later bills: %w", err)
		}
		var earlier string
		err = tx.QueryRow(ctx, `SELECT period FROM settlement_bills WHERE product_type = $1 AND period < $2 AND status = 'draft'
			ORDER BY period LIMIT 1`, string(t), plan.Period).Scan(&earlier)
		if err == nil {
			return plan, refusal.New(CodeEarlierOpen, "the %s bill for %s is still a draft; close %s first", t, earlier, earlier)
		} else if !errors.Is(err, pgx.ErrNoRows) {
			return plan, fmt.Errorf("check earlier bills: %w", err)
		}
		if id != 0 {
			// A draft from an earlier run that did not finish: abandon that run's close and start over.
			if closeID != nil {
				if _, err := tx.Exec(ctx, `UPDATE settlement_closes SET status = 'abandoned', finished_at = now()
					WHERE close_id = $1 AND status = 'computing'`, *closeID); err != nil {
					return plan, fmt.Errorf("abandon close %d: %w", *closeID, err)
				}
			}
			if _, err := tx.Exec(ctx, `DELETE FROM settlement_lines WHERE bill_id = $1`, id); err != nil {
				return plan, fmt.Errorf("reset draft bill %s/%s: %w", plan.Period, t, err)
			}
		} else {
			err := tx.QueryRow(ctx, `INSERT INTO settlement_bills (period, product_type, status, period_start, period_end, threshold)
				VALUES ($1, $2, 'draft', $3, $4, $5) RETURNING bill_id`,
				plan.Period, string(t), req.Period.Start(), end, req.Threshold.StringFixed(2)).Scan(&id)
			if err != nil {
				return plan, fmt.Errorf("create bill %s/%s: %w", plan.Period, t, err)
			}
		}
		if _, err := tx.Exec(ctx, `UPDATE settlement_bills SET threshold = $2 WHERE bill_id = $1`, id, req.Threshold.StringFixed(2)); err != nil {
			return plan, fmt.Errorf("set threshold: %w", err)
		}
		bills = append(bills, billRef{BillID: id, ProductType: t})
		plan.Compute = append(plan.Compute, t)
	}
	if len(bills) == 0 {
		return plan, tx.Commit(ctx)
	}

	var terms []termJSON
	for id, t := range req.Terms {
		for _, b := range bills {
			if b.ProductType == t.Type {
				tj := termJSON{ProductID: id, Type: t.Type, Rate: t.Rate.String()}
				if t.UnitPrice.IsPositive() {
					tj.UnitPrice = t.UnitPrice.String()
				}
				terms = append(terms, tj)
			}
		}
	}
	sort.Slice(terms, func(i, j int) bool { return terms[i].ProductID < terms[j].ProductID })
	termsJSON, _ := json.Marshal(terms)
	billsJSON, _ := json.Marshal(bills)
	typeNames := make([]string, len(plan.Compute))
	for i, t := range plan.Compute {
		typeNames[i] = string(t)
	}
	err = tx.QueryRow(ctx, `INSERT INTO settlement_closes (period, product_types, status, workflow_id, run_id, period_end,
			terms, bills, batch_size, requested_by)
		VALUES ($1, $2, 'computing', $3, $4, $5, $6, $7, $8, $9) RETURNING close_id`,
		plan.Period, typeNames, req.WorkflowID, req.RunID, end, termsJSON, billsJSON, req.BatchSize, req.RequestedBy).
		Scan(&plan.CloseID)
	if err != nil {
		return plan, fmt.Errorf("create close: %w", err)
	}
	ids := make([]int64, len(bills))
	for i, b := range bills {
		ids[i] = b.BillID
	}
	if _, err := tx.Exec(ctx, `UPDATE settlement_bills SET close_id = $1 WHERE bill_id = ANY($2)`, plan.CloseID, ids); err != nil {
		return plan, fmt.Errorf("attach bills: %w", err)
	}
	if plan.Batches, err = planBatches(ctx, tx, plan.CloseID, req.BatchSize); err != nil {
		return plan, err
	}
	if err := tx.Commit(ctx); err != nil {
		return plan, fmt.Errorf("commit prepare: %w", err)
	}
	return plan, nil
}

func (s *Store) existingPlan(ctx context.Context, tx pgx.Tx, closeID int64, plan Plan, types []catalog.ProductType) (Plan, error) {
	var status string
	var computeNames []string
	if err := tx.QueryRow(ctx, `SELECT status, product_types, (SELECT count(*) FROM settlement_batches WHERE close_id = $1)
		FROM settlement_closes WHERE close_id = $1`, closeID).Scan(&status, &computeNames, &plan.Batches); err != nil {
		return plan, fmt.Errorf("read close %d: %w", closeID, err)
	}
	if status == "abandoned" {
		return plan, refusal.New(CodeCloseAbandoned, "close %d of %s was abandoned by a newer run", closeID, plan.Period)
	}
	compute, err := parseTypes(computeNames)
	if err != nil {
		return plan, err
	}
	plan.CloseID, plan.Compute = closeID, compute
	for _, t := range types {
		found := false
		for _, c := range compute {
			found = found || c == t
		}
		if !found {
			plan.Verify = append(plan.Verify, t)
		}
	}
	return plan, tx.Commit(ctx)
}

// planBatches cuts the instances into slices of batchSize by walking the primary key, and records them.
func planBatches(ctx context.Context, tx pgx.Tx, closeID int64, batchSize int) (int, error) {
	lo := ""
	n := 0
	for {
		hi, more, err := store.InstanceIDAfter(ctx, tx, lo, batchSize)
		if err != nil {
			return 0, fmt.Errorf("plan batches: %w", err)
		}
		last := !more
		var hiArg *string
		if !last {
			hiArg = &hi
		}
		if _, err := tx.Exec(ctx, `INSERT INTO settlement_batches (close_id, batch_no, lo, hi) VALUES ($1, $2, $3, $4)`,
			closeID, n, lo, hiArg); err != nil {
			return 0, fmt.Errorf("record batch %d: %w", n, err)
		}
		n++
		if last {
			return n, nil
		}
		lo = hi
	}
}

// BatchResult reports one applied batch.
type BatchResult struct {
	BatchNo   int   `json:"batchNo"`
	Lines     int64 `json:"lines"`
	Remaining int   `json:"remaining"`
	// Done is true when no batch was left to claim (BatchNo and Lines are then zero).
	Done bool `json:"done"`
}

// closeState is a close as its batches need it.
type closeState struct {
	status    string
	periodEnd time.Time
	terms     []termJSON
	bills     []billRef
}

func readClose(ctx context.Context, tx pgx.Tx, closeID int64, lock string) (closeState, error) {
	var c closeState
	var terms, bills []byte
	err := tx.QueryRow(ctx, `SELECT status, period_end, terms, bills FROM settlement_closes WHERE close_id = $1 `+lock, closeID).
		Scan(&c.status, &c.periodEnd, &terms, &bills)
	if errors.Is(err, pgx.ErrNoRows) {
		return c, refusal.New(CodeNotFound, "no settlement close %d", closeID)
	}
	if err != nil {
		return c, fmt.Errorf("read close %d: %w", closeID, err)
	}
	if err := json.Unmarshal(terms, &c.terms); err != nil {
		return c, fmt.Errorf("close %d terms: %w", closeID, err)
	}
	if err := json.Unmarshal(bills, &c.bills); err != nil {
		return c, fmt.Errorf("close %d bills: %w", closeID, err)
	}
	return c, nil
}

func (c closeState) termArgs() (ids, types, rates []string) {
	for _, t := range c.terms {
		ids = append(ids, t.ProductID)
		types = append(types, string(t.Type))
		rates = append(rates, t.Rate)
	}
	return ids, types, rates
}

// usageTermArgs are the terms of the pay-per-use products among them (the ones with a unit price).
func (c closeState) usageTermArgs() (ids, types, rates, prices []string) {
	for _, t := range c.terms {
		if t.UnitPrice == "" {
			continue
		}
		ids = append(ids, t.ProductID)
		types = append(types, string(t.Type))
		rates = append(rates, t.Rate)
		prices = append(prices, t.UnitPrice)
	}
	return ids, types, rates, prices
}

// ApplyNextBatch claims one pending batch of the close (skipping batches other workers hold), writes its lines
// and totals and marks it done, all in one transaction: a crash leaves the batch pending, never half-written.
func (s *Store) ApplyNextBatch(ctx context.Context, closeID int64) (BatchResult, error) {
	var res BatchResult
	tx, err := s.Pool.Begin(ctx)
	if err != nil {
		return res, fmt.Errorf("begin batch: %w", err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // after Commit this is a no-op
	c, err := readClose(ctx, tx, closeID, "FOR SHARE")
	if err != nil {
		return res, err
	}
	switch c.status {
	case "done":
		res.Done = true
		return res, tx.Commit(ctx)
	case "abandoned":
		return res, refusal.New(CodeCloseAbandoned, "close %d was abandoned by a newer run of its period", closeID)
	}
	var lo string
	var hi *string
	err = tx.QueryRow(ctx, `SELECT batch_no, lo, hi FROM settlement_batches WHERE close_id = $1 AND done_at IS NULL
		ORDER BY batch_no LIMIT 1 FOR UPDATE SKIP LOCKED`, closeID).Scan(&res.BatchNo, &lo, &hi)
	if errors.Is(err, pgx.ErrNoRows) {
		res.Done = true
		return res, tx.Commit(ctx)
	}
	if err != nil {
		return res, fmt.Errorf("claim batch: %w", err)
	}
	// The CTEs of one batch hold ~100k rows: give them memory instead of temporary files, and keep the planner
	// from nested loops over them (it cannot estimate a CTE's rows, and a loop over 100k rows each way would be
	// quadratic). The ledger probe stays a loop (a LATERAL can only be one) and must use the primary key: were the
	// ledger small or its statistics stale, the planner would scan it instead, and each of the batch's 100k scans
	// would re-read the pages this very statement is filling (measured: 132 s instead of 1 s), hence no seq scans.
	// Each batch is planned for its own bounds (a cached generic plan cannot see that a batch is a small range).
	// JIT is off: compiling this statement's expressions costs about two seconds, more than a batch runs.
	// The commit does not wait for its WAL flush: the batch's lines and its done mark are one transaction, so a
	// crash loses both and the batch is redone, and Finalize commits synchronously, which flushes every batch
	// before it.
	for _, set := range []string{`SET LOCAL work_mem = '128MB'`, `SET LOCAL enable_nestloop = off`,
		`SET LOCAL enable_seqscan = off`, `SET LOCAL plan_cache_mode = force_custom_plan`, `SET LOCAL jit = off`,
		`SET LOCAL synchronous_commit = off`} {
		if _, err := tx.Exec(ctx, set); err != nil {
			return res, fmt.Errorf("%s: %w", set, err)
		}
	}
	ids, types, rates := c.termArgs()
	billTypes := make([]string, len(c.bills))
	billIDs := make([]int64, len(c.bills))
	for i, b := range c.bills {
		billTypes[i], billIDs[i] = string(b.ProductType), b.BillID
	}
	horizon, err := ledgerHorizon(ctx, tx, closeID)
	if err != nil {
		return res, err
	}
	start := time.Now()
	rows, err := tx.Query(ctx, applyBatchSQL, lo, hi, c.periodEnd, ids, types, rates, horizon, billTypes, billIDs, closeID, res.BatchNo)
	if err != nil {
		return res, fmt.Errorf("apply batch %d of close %d: %w", res.BatchNo, closeID, err)
	}
	for rows.Next() {
		var pt, rev, fee, set string
		var n int64
		if err := rows.Scan(&pt, &n, &rev, &fee, &set); err != nil {
			rows.Close()
			return res, fmt.Errorf("read batch totals: %w", err)
		}
		res.Lines += n
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return res, fmt.Errorf("apply batch %d of close %d: %w", res.BatchNo, closeID, err)
	}
	// The batch's pay-per-use usage, in the same transaction: a batch's order lines and usage lines are written
	// or redone together.
	uids, utypes, urates, uprices := c.usageTermArgs()
	if len(uids) > 0 {
		var n int64
		if err := tx.QueryRow(ctx, applyUsageSQL, lo, hi, c.periodEnd, uids, utypes, urates, uprices, billTypes, billIDs,
			closeID, res.BatchNo).Scan(&n); err != nil {
			return res, fmt.Errorf("apply usage of batch %d of close %d: %w", res.BatchNo, closeID, err)
		}
		res.Lines += n
	}
	if _, err := tx.Exec(ctx, `UPDATE settlement_batches SET done_at = now(), duration_ms = $3 WHERE close_id = $1 AND batch_no = $2`,
		closeID, res.BatchNo, time.Since(start).Milliseconds()); err != nil {
		return res, fmt.Errorf("mark batch done: %w", err)
	}
	if err := tx.QueryRow(ctx, `SELECT count(*) FROM settlement_batches WHERE close_id = $1 AND done_at IS NULL AND batch_no <> $2`,
		closeID, res.BatchNo).Scan(&res.Remaining); err != nil {
		return res, fmt.Errorf("count batches: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return res, fmt.Errorf("commit batch %d: %w", res.BatchNo, err)
	}
	return res, nil
}

// ledgerHorizon is the latest period end of the bills not attached to close closeID (closeID 0: of every bill;
// -infinity when there is none): the lines of
// those bills are the only ones the ledger can hold besides the close's own, so a charge effective at or after
// it, without refunds, needs no ledger probe (see chargeProbe). It is read in the batch's transaction, and it
// counts every other bill, carried forward or draft, so it can only be later than needed, never earlier.
func ledgerHorizon(ctx context.Context, tx pgx.Tx, closeID int64) (pgtype.Timestamptz, error) {
	var h pgtype.Timestamptz
	if err := tx.QueryRow(ctx, `SELECT coalesce(max(period_end), '-infinity') FROM settlement_bills
		WHERE close_id IS DISTINCT FROM $1`, closeID).Scan(&h); err != nil {
		return h, fmt.Errorf("read the ledger horizon: %w", err)
	}
	return h, nil
}

// Finalize decides each bill of a close once all batches are done: a product type whose total (its lines plus
// pending adjustments) reaches the threshold becomes a final bill that includes those adjustments; one below it
// is carried forward (its lines are removed, so they stay eligible for the next period). Each bill gets its
// content hash. Finalizing a finished close returns its bills again.
func (s *Store) Finalize(ctx context.Context, closeID int64) ([]BillSummary, error) {
	tx, err := s.Pool.Begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("begin finalize: %w", err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // after Commit this is a no-op
	if _, err := tx.Exec(ctx, lockKey); err != nil {
		return nil, fmt.Errorf("lock settlement: %w", err)
	}
	c, err := readClose(ctx, tx, closeID, "FOR UPDATE")
	if err != nil {
		return nil, err
	}
	if c.status == "abandoned" {
		return nil, refusal.New(CodeCloseAbandoned, "close %d was abandoned by a newer run of its period", closeID)
	}
	if c.status == "computing" {
		var pending int
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM settlement_batches WHERE close_id = $1 AND done_at IS NULL`, closeID).
			Scan(&pending); err != nil {
			return nil, fmt.Errorf("count pending batches: %w", err)
		}
		if pending > 0 {
			return nil, fmt.Errorf("close %d still has %d pending batches", closeID, pending)
		}
		if _, err := tx.Exec(ctx, `SET LOCAL jit = off`); err != nil {
			return nil, fmt.Errorf("set jit: %w", err)
		}
		for _, b := range c.bills {
			if err := finalizeBill(ctx, tx, closeID, b); err != nil {
				return nil, err
			}
		}
		if _, err := tx.Exec(ctx, `UPDATE settlement_closes SET status = 'done', finished_at = now() WHERE close_id = $1`, closeID); err != nil {
			return nil, fmt.Errorf("finish close: %w", err)
		}
	}
	var out []BillSummary
	for _, b := range c.bills {
		bs, err := scanBill(tx.QueryRow(ctx, `SELECT `+billColumns+` FROM settlement_bills WHERE bill_id = $1`, b.BillID))
		if err != nil {
			return nil, fmt.Errorf("read bill %d: %w", b.BillID, err)
		}
		out = append(out, bs)
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, fmt.Errorf("commit finalize: %w", err)
	}
	return out, nil
}

func finalizeBill(ctx context.Context, tx pgx.Tx, closeID int64, ref billRef) error {
	b, err := scanBill(tx.QueryRow(ctx, `SELECT `+billColumns+` FROM settlement_bills WHERE bill_id = $1 FOR UPDATE`, ref.BillID))
	if err != nil {
		return fmt.Errorf("read bill %d: %w", ref.BillID, err)
	}
	if b.Status != StatusDraft {
		return nil
	}
	// The batches recorded their lines' count, amounts and digest in the same transactions that wrote them, so
	// the bill's digest is their sum; a re-run recomputes it from the stored lines (Verify).
	var d digest
	var rev, fee, set, h string
	if err := tx.QueryRow(ctx, `SELECT coalesce(sum(line_count), 0), coalesce(sum(revenue), 0)::text,
			coalesce(sum(platform_fee), 0)::text, coalesce(sum(settlement), 0)::text, coalesce(sum(digest), 0)::text
		FROM settlement_batch_totals WHERE close_id = $1 AND product_type = $2`, closeID, string(ref.ProductType)).
		Scan(&d.count, &rev, &fee, &set, &h); err != nil {
		return fmt.Errorf("sum batch totals: %w", err)
	}
	if err := decimals(&d.revenue, rev, &d.fee, fee, &d.settlement, set); err != nil {
		return err
	}
	if d.lines, err = lane(h); err != nil {
		return err
	}
	var adjCount int64
	var adjTotal string
	if err := tx.QueryRow(ctx, `SELECT count(*), coalesce(sum(amount), 0)::text FROM settlement_adjustments
		WHERE product_type = $1 AND bill_id IS NULL AND created_at < $2`, string(b.ProductType), b.PeriodEnd).
		Scan(&adjCount, &adjTotal); err != nil {
		return fmt.Errorf("sum pending adjustments: %w", err)
	}
	adj, _ := decimal.NewFromString(adjTotal)
	total := d.settlement.Add(adj)
	if settlement.MeetsThreshold(total, b.Threshold) {
		if _, err := tx.Exec(ctx, `UPDATE settlement_adjustments SET bill_id = $1
			WHERE product_type = $2 AND bill_id IS NULL AND created_at < $3`, b.BillID, string(b.ProductType), b.PeriodEnd); err != nil {
			return fmt.Errorf("attach adjustments: %w", err)
		}
		if err := readAdjustmentDigest(ctx, tx, b.BillID, &d); err != nil {
			return err
		}
		b.Status = StatusFinal
		b.LineCount, b.Revenue, b.PlatformFee, b.Settlement = d.count, d.revenue, d.fee, d.settlement
		b.AdjustmentCount, b.AdjustmentTotal = d.adjCount, d.adjTotal
		b.AmountDue = d.settlement.Add(d.adjTotal)
	} else {
		if _, err := tx.Exec(ctx, `DELETE FROM settlement_lines WHERE bill_id = $1`, b.BillID); err != nil {
			return fmt.Errorf("carry forward bill %d: %w", b.BillID, err)
		}
		b.Status = StatusCarriedForward
		b.CarriedLineCount, b.CarriedTotal = d.count, total
		d = digest{}
	}
	b.ContentHash = contentHash(b, d)
	_, err = tx.Exec(ctx, `UPDATE settlement_bills SET status = $2, line_count = $3, revenue_total = $4, fee_total = $5,
			settlement_total = $6, adjustment_count = $7, adjustment_total = $8, amount_due = $9, carried_line_count = $10,
			carried_total = $11, content_hash = $12, finalized_at = now()
		WHERE bill_id = $1`,
		b.BillID, b.Status, b.LineCount, b.Revenue.StringFixed(2), b.PlatformFee.StringFixed(2), b.Settlement.StringFixed(2),
		b.AdjustmentCount, b.AdjustmentTotal.StringFixed(2), b.AmountDue.StringFixed(2), b.CarriedLineCount,
		b.CarriedTotal.StringFixed(2), b.ContentHash)
	if err != nil {
		return fmt.Errorf("finalize bill %d: %w", b.BillID, err)
	}
	return nil
}

// contentHash is a bill's content hash: SHA-256 over a canonical text of the bill's header, totals and the
// digests of its lines and adjustments. Any change to any stored figure of any line changes it; it is the same
// for the same bill content however the close was batched. It is a fingerprint for detecting change, not a
// signature.
func contentHash(b BillSummary, d digest) string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "kooflow settlement bill v1\n")
	fmt.Fprintf(&sb, "period %s\nproduct-type %s\nstatus %s\nperiod-start %s\nperiod-end %s\nthreshold %s\n",
		b.Period, b.ProductType, b.Status, b.PeriodStart.UTC().Format(time.RFC3339), b.PeriodEnd.UTC().Format(time.RFC3339),
		b.Threshold.StringFixed(2))
	fmt.Fprintf(&sb, "lines %d\nrevenue %s\nplatform-fee %s\nsettlement %s\nline-digest %016x\n",
		d.count, d.revenue.StringFixed(2), d.fee.StringFixed(2), d.settlement.StringFixed(2), d.lines)
	fmt.Fprintf(&sb, "adjustments %d\nadjustment-total %s\nadjustment-digest %016x\n",
		d.adjCount, d.adjTotal.StringFixed(2), d.adj)
	fmt.Fprintf(&sb, "amount-due %s\ncarried-lines %d\ncarried-total %s\n",
		b.AmountDue.StringFixed(2), b.CarriedLineCount, b.CarriedTotal.StringFixed(2))
	sum := sha256.Sum256([]byte(sb.String()))
	return hex.EncodeToString(sum[:])
}

// Verify recomputes the content hash of the closed bills of a period from their stored lines and adjustments
// and compares it with the hash recorded when they were finalized. A re-run of a closed period calls it: the
// bill it returns is byte for byte the one produced the first time, or the re-run fails loudly.
func (s *Store) Verify(ctx context.Context, period settlement.Period, types []catalog.ProductType) ([]BillSummary, error) {
	tx, err := s.Pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, fmt.Errorf("begin verify: %w", err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // read-only
	if _, err := tx.Exec(ctx, `SET LOCAL jit = off`); err != nil {
		return nil, fmt.Errorf("set jit: %w", err)
	}
	var out []BillSummary
	for _, t := range types {
		b, err := scanBill(tx.QueryRow(ctx, `SELECT `+billColumns+` FROM settlement_bills WHERE period = $1 AND product_type = $2`,
			period.String(), string(t)))
		if errors.Is(err, pgx.ErrNoRows) {
			return nil, refusal.New(CodeNotFound, "no %s bill for %s", t, period)
		}
		if err != nil {
			return nil, fmt.Errorf("read bill %s/%s: %w", period, t, err)
		}
		if !b.Closed() {
			return nil, refusal.New(CodeInvalid, "the %s bill for %s is still a draft", t, period)
		}
		d, err := readLineDigest(ctx, tx, b.BillID)
		if err != nil {
			return nil, err
		}
		if err := readAdjustmentDigest(ctx, tx, b.BillID, &d); err != nil {
			return nil, err
		}
		if got := contentHash(b, d); got != b.ContentHash {
			return nil, refusal.New(CodeContentChanged, "the %s bill for %s no longer matches its content hash (recorded %s, recomputed %s): its lines were changed outside settlement",
				t, period, b.ContentHash, got)
		}
		out = append(out, b)
	}
	return out, nil
}

// Bill reads one bill.
func (s *Store) Bill(ctx context.Context, period string, t catalog.ProductType) (BillSummary, error) {
	b, err := scanBill(s.Pool.QueryRow(ctx, `SELECT `+billColumns+` FROM settlement_bills WHERE period = $1 AND product_type = $2`,
		period, string(t)))
	if errors.Is(err, pgx.ErrNoRows) {
		return b, refusal.New(CodeNotFound, "no %s bill for %s", t, period)
	}
	if err != nil {
		return b, fmt.Errorf("read bill %s/%s: %w", period, t, err)
	}
	return b, nil
}
