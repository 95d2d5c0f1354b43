package activities

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/kooflow/kooflow/internal/metrics"

	"github.com/shopspring/decimal"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/kooflow/kooflow/internal/catalog"
	"github.com/kooflow/kooflow/internal/ledger"
	"github.com/kooflow/kooflow/internal/refusal"
	"github.com/kooflow/kooflow/internal/settlement"
)

// ErrSettlementRefused is the ApplicationError type of a business refusal of settlement (period not ended, out of
// order, a closed bill whose content changed): not retried, shown as is.
const ErrSettlementRefused = "kooflow.SettlementRefused"

// SettlementSettings are the configuration a close and the tick read.
type SettlementSettings struct {
	Threshold decimal.Decimal
	// Days are the bill days of the month by product type (joint-operation: 3, general: 7 by default).
	Days map[catalog.ProductType]int
	// CalendarFile is the holiday calendar; it is read on every tick, so an edit needs no restart.
	CalendarFile string
	BatchSize    int
}

// Settlement are settlement's activities. Method names carry the Settlement prefix because activities are
// registered by name on a worker shared with other areas.
type Settlement struct {
	Store    *ledger.Store
	Catalog  *catalog.Catalog
	Settings SettlementSettings
	Log      *slog.Logger
	// Metrics counts finished closes (kooflow_settlement_runs_total); nil counts nothing.
	Metrics *metrics.Worker
	// Now is the clock a close checks the period's end against; time.Now if nil. Tests move it to close the
	// month their orders went through.
	Now func() time.Time
}

// SettlementTerms is the catalog's settlement terms by product id.
func SettlementTerms(c *catalog.Catalog) map[string]settlement.Terms {
	out := map[string]settlement.Terms{}
	for _, p := range c.Products() {
		out[p.ProductID] = settlement.TermsOf(p)
	}
	return out
}

// settlementError turns a ledger refusal into a non-retryable failure and leaves everything else retryable.
func settlementError(err error) error {
	if r, ok := refusal.As(err); ok {
		return temporal.NewNonRetryableApplicationError(r.Reason, ErrSettlementRefused, err, r.Code)
	}
	return err
}

func (a *Settlement) now() time.Time {
	if a.Now != nil {
		return a.Now()
	}
	return time.Now()
}

// SettlementPrepareInput is the argument of SettlementPrepare.
type SettlementPrepareInput struct {
	Period       string                `json:"period"`
	ProductTypes []catalog.ProductType `json:"productTypes,omitempty"`
	WorkflowID   string                `json:"workflowId"`
	RunID        string                `json:"runId"`
	RequestedBy  string                `json:"requestedBy,omitempty"`
	BatchSize    int                   `json:"batchSize,omitempty"`
}

// SettlementPrepare opens the close of a period (see ledger.Store.Prepare).
func (a *Settlement) SettlementPrepare(ctx context.Context, in SettlementPrepareInput) (ledger.Plan, error) {
	p, err := settlement.ParsePeriod(in.Period)
	if err != nil {
		return ledger.Plan{}, temporal.NewNonRetryableApplicationError(err.Error(), ErrSettlementRefused, err)
	}
	bs := in.BatchSize
	if bs <= 0 {
		bs = a.Settings.BatchSize
	}
	plan, err := a.Store.Prepare(ctx, ledger.CloseRequest{
		Period: p, Types: in.ProductTypes, WorkflowID: in.WorkflowID, RunID: in.RunID, RequestedBy: in.RequestedBy,
		Threshold: a.Settings.Threshold, BatchSize: bs, Terms: SettlementTerms(a.Catalog), Now: a.now(),
	})
	if err != nil {
		if _, refused := refusal.As(err); refused {
			a.Metrics.ObserveSettlementRun("refused")
		}
		return plan, settlementError(err)
	}
	a.Log.InfoContext(ctx, "settlement close prepared", "period", plan.Period, "close_id", plan.CloseID,
		"compute", plan.Compute, "verify", plan.Verify, "batches", plan.Batches)
	return plan, nil
}

// SettlementApplyBatches works through the close's pending batches until none is left, heartbeating while it
// runs. Several run at once; each batch is claimed by one of them (SKIP LOCKED) and committed on its own, so a
// retried activity simply continues with what is still pending.
func (a *Settlement) SettlementApplyBatches(ctx context.Context, closeID int64) (int64, error) {
	var mu sync.Mutex
	progress := ledger.BatchResult{}
	var lines int64
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		t := time.NewTicker(10 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				mu.Lock()
				p := progress
				mu.Unlock()
				activity.RecordHeartbeat(ctx, p)
			}
		}
	}()
	for {
		if err := ctx.Err(); err != nil {
			return lines, err
		}
		r, err := a.Store.ApplyNextBatch(ctx, closeID)
		if err != nil {
			return lines, settlementError(err)
		}
		if r.Done {
			return lines, nil
		}
		lines += r.Lines
		mu.Lock()
		progress = r
		mu.Unlock()
		activity.RecordHeartbeat(ctx, r)
		a.Log.DebugContext(ctx, "settlement batch applied", "close_id", closeID, "batch", r.BatchNo, "lines", r.Lines,
			"remaining", r.Remaining)
	}
}

// SettlementFinalize decides the bills of a close (see ledger.Store.Finalize). Batches commit without waiting for
// their WAL flush, so a database crash after the batch activities returned can leave a batch pending again; it is
// applied here before the bills are decided.
func (a *Settlement) SettlementFinalize(ctx context.Context, closeID int64) ([]ledger.BillSummary, error) {
	for {
		r, err := a.Store.ApplyNextBatch(ctx, closeID)
		if err != nil {
			return nil, settlementError(err)
		}
		if r.Done {
			break
		}
		a.Log.WarnContext(ctx, "settlement batch was pending at finalize; applied it", "close_id", closeID, "batch", r.BatchNo)
		activity.RecordHeartbeat(ctx, r)
	}
	bills, err := a.Store.Finalize(ctx, closeID)
	if err != nil {
		if _, refused := refusal.As(err); refused {
			a.Metrics.ObserveSettlementRun("refused")
		}
		return nil, settlementError(err)
	}
	a.Metrics.ObserveSettlementRun("closed")
	for _, b := range bills {
		a.Metrics.ObserveSettlementBill(string(b.ProductType), b.LineCount)
		a.Log.InfoContext(ctx, "settlement bill closed", "period", b.Period, "product_type", b.ProductType, "status", b.Status,
			"lines", b.LineCount, "amount_due", b.AmountDue.StringFixed(2), "carried_total", b.CarriedTotal.StringFixed(2),
			"content_hash", b.ContentHash)
	}
	return bills, nil
}

// SettlementVerifyInput is the argument of SettlementVerify.
type SettlementVerifyInput struct {
	Period       string                `json:"period"`
	ProductTypes []catalog.ProductType `json:"productTypes"`
}

// SettlementVerify checks closed bills against their content hash (see ledger.Store.Verify).
func (a *Settlement) SettlementVerify(ctx context.Context, in SettlementVerifyInput) ([]ledger.BillSummary, error) {
	p, err := settlement.ParsePeriod(in.Period)
	if err != nil {
		return nil, temporal.NewNonRetryableApplicationError(err.Error(), ErrSettlementRefused, err)
	}
	bills, err := a.Store.Verify(ctx, p, in.ProductTypes)
	if err != nil {
		return nil, settlementError(err)
	}
	return bills, nil
}

// DuePeriod is a period with the product types whose bill is due.
type DuePeriod struct {
	Period       string                `json:"period"`
	ProductTypes []catalog.ProductType `json:"productTypes"`
	BillDates    []string              `json:"billDates"`
}

// SettlementDue answers, for the Beijing date of at, which bills are due: those of the two latest ended periods
// whose bill date (holiday calendar) is on or before that date and that are not closed yet.
func (a *Settlement) SettlementDue(ctx context.Context, at time.Time) ([]DuePeriod, error) {
	cal, err := settlement.LoadCalendar(a.Settings.CalendarFile)
	if err != nil {
		return nil, temporal.NewNonRetryableApplicationError(err.Error(), ErrSettlementRefused, err)
	}
	today := settlement.DateOf(at)
	last := settlement.PeriodOf(at).Prev()
	var out []DuePeriod
	for _, p := range []settlement.Period{last.Prev(), last} {
		d := DuePeriod{Period: p.String()}
		for _, t := range settlement.ProductTypes {
			day, ok := a.Settings.Days[t]
			if !ok {
				continue
			}
			billDate, err := cal.BillDate(p, day)
			if err != nil {
				return nil, temporal.NewNonRetryableApplicationError(err.Error(), ErrSettlementRefused, err)
			}
			if today.Before(billDate) {
				continue
			}
			b, err := a.Store.Bill(ctx, p.String(), t)
			if err == nil && b.Closed() {
				continue
			}
			if _, notFound := refusal.As(err); err != nil && !notFound {
				return nil, err
			}
			d.ProductTypes = append(d.ProductTypes, t)
			d.BillDates = append(d.BillDates, billDate.String())
		}
		if len(d.ProductTypes) > 0 {
			out = append(out, d)
		}
	}
	a.Log.InfoContext(ctx, "settlement tick", "date", today.String(), "due", fmt.Sprint(out), "calendar_dates", cal.Len())
	return out, nil
}
