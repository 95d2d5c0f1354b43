// Package bench measures a settlement close at scale: it generates synthetic eligible orders, times one plain
// aggregate SQL query over the same rows, then closes the period through the real settlement workflow on a real
// Temporal server and PostgreSQL, and reports both times, the workflow's history size and a cross-check of the
// bill against the rows. `kooflow bench` runs it.
package bench

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/shopspring/decimal"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	sdkworker "go.temporal.io/sdk/worker"

	"github.com/kooflow/kooflow/activities"
	"github.com/kooflow/kooflow/internal/catalog"
	"github.com/kooflow/kooflow/internal/devstack"
	"github.com/kooflow/kooflow/internal/ledger"
	"github.com/kooflow/kooflow/internal/ledger/fixture"
	"github.com/kooflow/kooflow/internal/logging"
	"github.com/kooflow/kooflow/internal/settlement"
	"github.com/kooflow/kooflow/worker"
	"github.com/kooflow/kooflow/workflows"
)

// Options configure a run.
type Options struct {
	Orders      int
	Period      settlement.Period
	Parallelism int
	BatchSize   int
	// DatabaseURL and TemporalAddress point at servers that already run; empty starts private ones.
	DatabaseURL     string
	TemporalAddress string
	BinDir          string // where the Temporal CLI is (built there when missing)
	StateDir        string // private servers' state; empty: a temporary directory, removed afterwards
	Log             *slog.Logger
}

// Report is what a run measured.
type Report struct {
	Orders         int             `json:"orders"`
	Period         string          `json:"period"`
	Generate       time.Duration   `json:"generate"`
	PlainQuery     time.Duration   `json:"plainQuery"` // best of three, after a warm-up
	PlainQueryRuns []time.Duration `json:"plainQueryRuns"`
	Close          time.Duration   `json:"close"` // start of the workflow to its result
	Ratio          float64         `json:"ratio"` // Close / PlainQuery
	// WriteFloor is one INSERT … SELECT of as many ledger-width rows, with the ledger's keys, into an empty
	// table: the cost of writing the lines with nothing else. FloorRatio is Close / WriteFloor.
	WriteFloor     time.Duration        `json:"writeFloor"`
	WriteFloorRows int64                `json:"writeFloorRows"`
	FloorRatio     float64              `json:"floorRatio"`
	HistoryEvents  int                  `json:"historyEvents"`
	Batches        int                  `json:"batches"`
	Rerun          time.Duration        `json:"rerun"`
	RerunSameHash  bool                 `json:"rerunSameHash"`
	Lines          int64                `json:"lines"`
	Bills          []ledger.BillSummary `json:"bills"`
	PlainCount     int64                `json:"plainCount"`
	PlainPaid      string               `json:"plainPaid"`
	CrossCheck     string               `json:"crossCheck"`
	// BatchMillis are the batches\' own durations (ms), in batch order.
	BatchMillis []int64 `json:"batchMillis"`
}

// plainQuery is the comparison: one aggregate over the same eligible rows the close reads, with the same join
// and filters, but computing and writing nothing per line.
const plainQuery = `
SELECT o.product_id, count(*), sum(o.paid_amount)::text
FROM orders o JOIN instances i ON i.instance_id = o.instance_id
WHERE o.effective_at < $1 AND NOT o.test_flag AND NOT i.test_flag
  AND i.supervision IN ('NOT_INVOLVED', 'COMPLETED')
  AND o.order_type IN ('NEW', 'TRIAL_TO_FORMAL', 'RENEW', 'CHANGE')
GROUP BY o.product_id`

// Run performs the benchmark.
func Run(ctx context.Context, o Options) (Report, error) {
	rep := Report{Orders: o.Orders, Period: o.Period.String()}
	log := o.Log
	servers, err := devstack.StartBenchServers(ctx, devstack.BenchServers{TemporalAddress: o.TemporalAddress, DatabaseURL: o.DatabaseURL,
		BinDir: o.BinDir, StateDir: o.StateDir, Name: "settle-bench", Log: log})
	if err != nil {
		return rep, err
	}
	defer servers.Stop()
	o.TemporalAddress, o.DatabaseURL, o.StateDir = servers.TemporalAddress, servers.DatabaseURL, servers.StateDir
	pool := servers.Pool
	var existing int64
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM settlement_bills WHERE period = $1`, o.Period.String()).Scan(&existing); err != nil {
		return rep, err
	}
	if existing > 0 {
		return rep, fmt.Errorf("period %s already has bills in this database; the benchmark needs a fresh one", o.Period)
	}

	cat, err := catalog.Parse(catalog.DevCatalog)
	if err != nil {
		return rep, err
	}
	// One general and one joint-operation product, so both bills are produced.
	products := []string{"OFFI-KOOFLOW-CRM-MONTHLY", "OFFI-KOOFLOW-ANALYTICS"}
	log.Info("generating synthetic eligible orders", "orders", o.Orders, "period", o.Period)
	start := time.Now()
	if err := fixture.Generate(ctx, pool, fixture.Synthetic{Orders: o.Orders, Period: o.Period, Products: products}); err != nil {
		return rep, err
	}
	if _, err := pool.Exec(ctx, "CHECKPOINT"); err != nil {
		return rep, fmt.Errorf("checkpoint: %w", err)
	}
	rep.Generate = time.Since(start)

	// The plain query: once to warm the cache for both contenders, then the best of three.
	for i := 0; i < 4; i++ {
		d, count, paid, err := runPlain(ctx, pool, o.Period.End())
		if err != nil {
			return rep, err
		}
		if i > 0 {
			rep.PlainQueryRuns = append(rep.PlainQueryRuns, d)
		}
		rep.PlainCount, rep.PlainPaid = count, paid
	}
	sorted := append([]time.Duration(nil), rep.PlainQueryRuns...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i] < sorted[j] })
	rep.PlainQuery = sorted[0]

	if rep.WriteFloor, rep.WriteFloorRows, err = writeFloor(ctx, pool, o.Period.End()); err != nil {
		return rep, err
	}

	tc, err := client.DialContext(ctx, client.Options{HostPort: o.TemporalAddress, Namespace: "default",
		Logger: logging.Temporal(slog.New(slog.NewTextHandler(io.Discard, nil)))})
	if err != nil {
		return rep, fmt.Errorf("connect to Temporal at %s: %w", o.TemporalAddress, err)
	}
	defer tc.Close()
	taskQueue := fmt.Sprintf("settle-bench-%d", time.Now().UnixNano())
	w := sdkworker.New(tc, taskQueue, sdkworker.Options{MaxConcurrentActivityExecutionSize: 32})
	worker.RegisterWorkflows(w, workflows.LifecycleConfig{})
	w.RegisterActivity(&activities.Settlement{Store: &ledger.Store{Pool: pool}, Catalog: cat, Log: log,
		Settings: activities.SettlementSettings{Threshold: decimal.NewFromInt(1000), BatchSize: ledger.DefaultBatchSize}})
	if err := w.Start(); err != nil {
		return rep, err
	}
	defer w.Stop()

	in := workflows.SettlementPeriodInput{Period: o.Period.String(), RequestedBy: "bench", Parallelism: o.Parallelism, BatchSize: o.BatchSize}
	res, d, runID, err := runClose(ctx, tc, taskQueue, in)
	if err != nil {
		return rep, err
	}
	rep.Close, rep.Bills, rep.Batches = d, res.Bills, res.Batches
	rep.Ratio = float64(rep.Close) / float64(rep.PlainQuery)
	if rep.WriteFloor > 0 {
		rep.FloorRatio = float64(rep.Close) / float64(rep.WriteFloor)
	}
	if rep.HistoryEvents, err = historyLength(ctx, tc, workflows.SettlementWorkflowID(o.Period), runID); err != nil {
		return rep, err
	}
	for _, b := range res.Bills {
		rep.Lines += b.LineCount
	}
	if rep.CrossCheck, err = crossCheck(ctx, pool, rep); err != nil {
		return rep, err
	}
	rows, err := pool.Query(ctx, `SELECT coalesce(duration_ms, 0) FROM settlement_batches ORDER BY close_id, batch_no`)
	if err != nil {
		return rep, err
	}
	for rows.Next() {
		var ms int64
		if err := rows.Scan(&ms); err != nil {
			rows.Close()
			return rep, err
		}
		rep.BatchMillis = append(rep.BatchMillis, ms)
	}
	rows.Close()

	// Re-run the closed period: it must verify, not recompute, and return the same bills.
	res2, d2, _, err := runClose(ctx, tc, taskQueue, in)
	if err != nil {
		return rep, fmt.Errorf("re-run: %w", err)
	}
	rep.Rerun = d2
	rep.RerunSameHash = len(res2.Bills) == len(res.Bills)
	for i := range res2.Bills {
		rep.RerunSameHash = rep.RerunSameHash && res2.Bills[i].ContentHash == res.Bills[i].ContentHash
	}
	return rep, nil
}

func runPlain(ctx context.Context, pool *pgxpool.Pool, end time.Time) (time.Duration, int64, string, error) {
	start := time.Now()
	rows, err := pool.Query(ctx, plainQuery, end)
	if err != nil {
		return 0, 0, "", fmt.Errorf("plain query: %w", err)
	}
	var count int64
	total := decimal.Zero
	for rows.Next() {
		var pid, paid string
		var n int64
		if err := rows.Scan(&pid, &n, &paid); err != nil {
			rows.Close()
			return 0, 0, "", err
		}
		count += n
		total = total.Add(decimal.RequireFromString(paid))
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, 0, "", fmt.Errorf("plain query: %w", err)
	}
	return time.Since(start), count, total.String(), nil
}

func runClose(ctx context.Context, tc client.Client, taskQueue string, in workflows.SettlementPeriodInput) (workflows.SettlementPeriodResult, time.Duration, string, error) {
	var res workflows.SettlementPeriodResult
	start := time.Now()
	run, err := workflows.StartSettlementPeriod(ctx, tc, in, workflows.SettlementStart{TaskQueue: taskQueue, Summary: "settlement benchmark"})
	if err != nil {
		return res, 0, "", err
	}
	if err := run.Get(ctx, &res); err != nil {
		return res, 0, "", fmt.Errorf("settlement workflow %s: %w", run.GetID(), err)
	}
	return res, time.Since(start), run.GetRunID(), nil
}

func historyLength(ctx context.Context, tc client.Client, id, runID string) (int, error) {
	it := tc.GetWorkflowHistory(ctx, id, runID, false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	n := 0
	for it.HasNext() {
		if _, err := it.Next(); err != nil {
			return n, fmt.Errorf("read history: %w", err)
		}
		n++
	}
	return n, nil
}

// crossCheck compares the bills with the rows: every eligible row is one line, and the revenue total is the sum
// of the rows' paid amounts rounded line by line.
func crossCheck(ctx context.Context, pool *pgxpool.Pool, rep Report) (string, error) {
	var rounded string
	if err := pool.QueryRow(ctx, `SELECT coalesce(sum(settlement_round(paid_amount)), 0)::text FROM orders`).Scan(&rounded); err != nil {
		return "", err
	}
	revenue := decimal.Zero
	for _, b := range rep.Bills {
		revenue = revenue.Add(b.Revenue)
	}
	if rep.Lines != rep.PlainCount || !revenue.Equal(decimal.RequireFromString(rounded)) {
		return "", fmt.Errorf("cross-check failed: %d lines for %d eligible rows; revenue %s, rows rounded per line %s",
			rep.Lines, rep.PlainCount, revenue, rounded)
	}
	return fmt.Sprintf("%d lines = %d eligible rows; revenue %s = Σ round(paid) over the rows %s (Σ paid unrounded %s)",
		rep.Lines, rep.PlainCount, revenue.StringFixed(2), rounded, rep.PlainPaid), nil
}
