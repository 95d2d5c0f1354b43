package scenario

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/shopspring/decimal"

	"github.com/kooflow/kooflow/emulator/deliver"
	"github.com/kooflow/kooflow/emulator/ledger"
	"github.com/kooflow/kooflow/emulator/market"
	"github.com/kooflow/kooflow/usageclient"
)

// UsageConfig shapes a pay-per-use run: customers buy a pay-per-use product, their metering systems report usage
// through kooflow's usage intake (some records twice, some late), the marketplace misbehaves as Faults say, and
// every instance is released; then the marketplace's ledger must hold exactly what kooflow took.
type UsageConfig struct {
	Customers int
	// Hours of usage before the running one (each within the intake's late window), RecordsPerHour each.
	Hours, RecordsPerHour int
	// DuplicateRate is the share of records sent a second time.
	DuplicateRate float64
	ProductID     string // a pay-per-use product of the seller's catalog
	SKUCode       string
	Faults        market.UsageFaults
	// Settle bounds how long after a release the charges may take to match; 2 minutes if zero.
	Settle time.Duration
	Seed   uint64
}

// UsageDeps are what a pay-per-use run talks to.
type UsageDeps struct {
	Client *deliver.Client     // kooflow's production interface
	Market market.Places       // the marketplace's orders and instances
	Usage  market.UsageControl // the marketplace's usage API: faults, what was pushed and charged
	Intake *usageclient.Client // kooflow's usage intake, with a token of scope usage
	Log    *slog.Logger
	// Ledger, when set, records each purchase for the marketplace's bill (its usage is billed from the charges);
	// the market gets it at the end when it keeps another ledger.
	Ledger *ledger.Ledger
}

// UsageInstance compares one instance's usage: what kooflow's intake accepted, what kooflow pushed (every
// distinct record the marketplace received) and what the marketplace charged.
type UsageInstance struct {
	InstanceID string          `json:"instanceId"`
	Ingested   decimal.Decimal `json:"ingested"`
	Pushed     decimal.Decimal `json:"pushed"`
	Charged    decimal.Decimal `json:"charged"`
	Records    int             `json:"records"`
	Duplicates int             `json:"duplicates"`
}

// UsageReport is a pay-per-use run's outcome. Any difference between ingested, pushed and charged, to 4 decimals,
// is a mismatch.
type UsageReport struct {
	Instances  []UsageInstance `json:"instances"`
	Mismatches []Mismatch      `json:"mismatches"`
}

// Failed reports whether anything did not match.
func (r UsageReport) Failed() bool { return len(r.Mismatches) > 0 }

// Print writes the report for a person.
func (r UsageReport) Print(w io.Writer) {
	fmt.Fprintf(w, "pay-per-use: %d instances\n", len(r.Instances))
	for _, in := range r.Instances {
		fmt.Fprintf(w, "  %s  records %d (+%d sent twice)  ingested %s  pushed %s  charged %s\n", in.InstanceID, in.Records,
			in.Duplicates, in.Ingested.StringFixed(4), in.Pushed.StringFixed(4), in.Charged.StringFixed(4))
	}
	for _, m := range r.Mismatches {
		fmt.Fprintf(w, "  MISMATCH %s\n", m)
	}
}

// RunUsage runs the pay-per-use customers one after another.
func RunUsage(ctx context.Context, cfg UsageConfig, d UsageDeps) (UsageReport, error) {
	var rep UsageReport
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Settle <= 0 {
		cfg.Settle = 2 * time.Minute
	}
	rng := rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x5851f42d4c957f2d))
	if err := d.Usage.SetUsageFaults(ctx, cfg.Faults); err != nil {
		return rep, err
	}
	defer func() { _ = d.Usage.SetUsageFaults(context.WithoutCancel(ctx), market.UsageFaults{}) }()
	defer func() {
		if b, ok := d.Market.(market.Bills); ok && d.Ledger != nil {
			if l, local := b.(market.Local); !local || l.M.Ledger() != d.Ledger {
				if err := b.PutLedger(context.WithoutCancel(ctx), d.Ledger.Entries()); err != nil {
					d.Log.Warn("the market did not take the run's ledger", "err", err)
				}
			}
		}
	}()
	for c := range cfg.Customers {
		in, err := runUsageCustomer(ctx, cfg, d, rng, c)
		if err != nil {
			return rep, err
		}
		rep.Instances = append(rep.Instances, in)
		if in.Pushed.StringFixed(4) != in.Ingested.StringFixed(4) || in.Charged.StringFixed(4) != in.Ingested.StringFixed(4) {
			rep.Mismatches = append(rep.Mismatches, Mismatch{Customer: c, Path: "pay-per-use", InstanceID: in.InstanceID,
				Field:  "usage (ingested by the seller / pushed, charged by the marketplace)",
				Market: in.Pushed.StringFixed(4) + " / " + in.Charged.StringFixed(4), Seller: in.Ingested.StringFixed(4)})
		}
	}
	return rep, nil
}

func runUsageCustomer(ctx context.Context, cfg UsageConfig, d UsageDeps, rng *rand.Rand, n int) (UsageInstance, error) {
	var out UsageInstance
	now := time.Now().UTC()
	orderID := fmt.Sprintf("PPU%d%03d", now.UnixNano()%1e12, n)
	line := orderID + "-000001"
	if err := d.Market.PutOrder(ctx, market.Order{OrderID: orderID, OrderType: market.TypeNew, CreateTime: now.Truncate(time.Second),
		Lines: []market.Line{{OrderLineID: line, ChargingMode: market.ChargingOnDemand, ProductID: cfg.ProductID, SKUCode: cfg.SKUCode, LinearValue: 1}},
		Buyer: &market.Buyer{CustomerID: fmt.Sprintf("ppu-customer-%032d", n), CustomerName: "pay-per-use customer"}}); err != nil {
		return out, err
	}
	buy := deliver.Message{Activity: deliver.NewInstance, OrderID: orderID, Fields: []deliver.Field{{Name: "orderId", Value: orderID},
		{Name: "orderLineId", Value: line}, {Name: "productId", Value: cfg.ProductID}, {Name: "businessId", Value: ""}}}
	a, err := until(ctx, func() (deliver.Attempt, bool) {
		a := d.Client.Send(ctx, buy, 0)
		return a, a.Answered() && a.InstanceID != "" && (a.ResultCode == deliver.CodeSuccess || a.ResultCode == deliver.CodeInProgress)
	})
	if err != nil {
		return out, fmt.Errorf("newInstance of %s: %w", orderID, err)
	}
	out.InstanceID = a.InstanceID
	if d.Ledger != nil {
		eff := time.Now().UTC()
		if err := d.Ledger.Add(ledger.Entry{OrderID: orderID, OrderLineID: line, OrderType: market.TypeNew, InstanceID: out.InstanceID,
			CustomerID: fmt.Sprintf("ppu-customer-%032d", n), ProductID: cfg.ProductID, SKUCode: cfg.SKUCode, Quantity: 1,
			ListAmount: decimal.Zero, Amount: decimal.Zero, PlacedAt: now.Truncate(time.Second), Payment: ledger.Paid,
			Delivery: ledger.Delivered, Supervision: SupNotInvolved, EffectiveAt: &eff}); err != nil {
			return out, err
		}
	}
	if err := d.Market.PutInstance(ctx, market.Instance{InstanceID: out.InstanceID, OrderID: orderID, ChargingMode: market.ChargingOnDemand,
		Status: "NORMAL"}); err != nil {
		return out, err
	}

	// Usage: Hours closed hours and the running one, oldest first; then some records again; then one late record
	// for the oldest hour.
	cur := now.Truncate(time.Hour)
	var recs []usageclient.Record
	for h := -cfg.Hours; h <= 0; h++ {
		for k := range cfg.RecordsPerHour {
			at := cur.Add(time.Duration(h) * time.Hour).Add(time.Duration(rng.IntN(3600)) * time.Second)
			if at.After(now) {
				at = now
			}
			v := decimal.New(rng.Int64N(1_000_000)+1, -4)
			recs = append(recs, usageclient.Record{ID: fmt.Sprintf("%s/%d/%d", out.InstanceID, h, k), InstanceID: out.InstanceID, Value: v, Time: &at})
		}
	}
	late := cur.Add(-time.Duration(cfg.Hours)*time.Hour + 30*time.Minute)
	var again []usageclient.Record
	for _, r := range recs {
		if rng.Float64() < cfg.DuplicateRate {
			again = append(again, r)
		}
	}
	lateRec := usageclient.Record{ID: out.InstanceID + "/late", InstanceID: out.InstanceID, Value: decimal.RequireFromString("0.0001"), Time: &late}
	for _, batch := range [][]usageclient.Record{recs, again, {lateRec}} {
		if len(batch) == 0 {
			continue
		}
		res, err := sendUsage(ctx, d.Intake, batch)
		if err != nil {
			return out, err
		}
		for i, r := range res.Results {
			switch r.Status {
			case usageclient.Accepted:
				out.Ingested = out.Ingested.Add(batch[i].Value)
				out.Records++
			case usageclient.Duplicate:
				out.Duplicates++
			default:
				return out, fmt.Errorf("usage record %s refused: %s", r.ID, r.Reason)
			}
		}
	}

	rel := deliver.Message{Activity: deliver.ReleaseInstance, InstanceID: out.InstanceID, Fields: []deliver.Field{{Name: "instanceId", Value: out.InstanceID}}}
	if _, err := until(ctx, func() (deliver.Attempt, bool) {
		a := d.Client.Send(ctx, rel, 0)
		return a, a.Answered() && a.ResultCode == deliver.CodeSuccess
	}); err != nil {
		return out, fmt.Errorf("releaseInstance of %s: %w", out.InstanceID, err)
	}
	// The release completes after its final usage push; read the marketplace's side until it matches or the
	// budget runs out.
	deadline := time.Now().Add(cfg.Settle)
	for {
		p, err := d.Usage.Pushed(ctx, out.InstanceID)
		if err != nil {
			return out, err
		}
		c, err := d.Usage.Charged(ctx, out.InstanceID)
		if err != nil {
			return out, err
		}
		out.Pushed, out.Charged = p.Value, c.Value
		if out.Charged.Equal(out.Ingested) && out.Pushed.Equal(out.Ingested) || time.Now().After(deadline) {
			return out, nil
		}
		select {
		case <-ctx.Done():
			return out, ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// sendUsage sends one batch to the intake, again while the intake refuses the instance as unknown (its purchase
// is still being recorded) or answers a retryable problem.
func sendUsage(ctx context.Context, c *usageclient.Client, batch []usageclient.Record) (*usageclient.Response, error) {
	deadline := time.Now().Add(time.Minute)
	for {
		res, err := c.Send(ctx, batch)
		retry := err != nil
		if err == nil && res.Refused > 0 {
			retry = true
		}
		if !retry {
			return res, nil
		}
		if time.Now().After(deadline) {
			if err != nil {
				return nil, err
			}
			return res, nil
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// until repeats a delivery until it succeeds, for up to a minute.
func until(ctx context.Context, f func() (deliver.Attempt, bool)) (deliver.Attempt, error) {
	deadline := time.Now().Add(time.Minute)
	for {
		a, ok := f()
		if ok {
			return a, nil
		}
		if time.Now().After(deadline) {
			return a, fmt.Errorf("no success within a minute (last: %s %v)", a.ResultCode, a.Err)
		}
		select {
		case <-ctx.Done():
			return a, ctx.Err()
		case <-time.After(300 * time.Millisecond):
		}
	}
}
