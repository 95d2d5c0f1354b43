// Package reconbench measures reconciliation at scale: it closes a period of synthetic orders into a kooflow bill
// of the requested size, writes the marketplace's bill detail for the same lines as a CSV export (with a few
// dropped, changed and added lines, so the diff has something to find), then times importing that file and
// diffing it with kooflow's bill. `kooflow recon bench` runs it.
package reconbench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/shopspring/decimal"

	"github.com/kooflow/kooflow/internal/catalog"
	"github.com/kooflow/kooflow/internal/devstack"
	"github.com/kooflow/kooflow/internal/ledger"
	"github.com/kooflow/kooflow/internal/ledger/fixture"
	"github.com/kooflow/kooflow/internal/recon"
	"github.com/kooflow/kooflow/internal/settlement"
)

// Options configure a run.
type Options struct {
	Lines  int
	Period settlement.Period
	// DatabaseURL points at a PostgreSQL that runs already (its database must not hold bills for the period);
	// empty starts a private one.
	DatabaseURL string
	StateDir    string
	Log         *slog.Logger
}

// Every faultEvery-th line is dropped from the marketplace's file, every faultEvery-th (offset by a third) has
// its settlement changed by one fen, and the file gets added lines, one per faultEvery lines.
const faultEvery = 100_000

// Report is what a run measured.
type Report struct {
	Lines      int           `json:"lines"`
	Period     string        `json:"period"`
	Setup      time.Duration `json:"setup"` // generating orders and closing the period (not measured work)
	FileBytes  int           `json:"fileBytes"`
	FileRows   int64         `json:"fileRows"`
	Import     time.Duration `json:"import"` // parse + COPY of the file
	Diff       time.Duration `json:"diff"`
	Total      time.Duration `json:"total"`
	Summary    recon.Summary `json:"summary"`
	WantDrops  int           `json:"wantDropped"`
	WantChange int           `json:"wantChanged"`
	WantAdds   int           `json:"wantAdded"`
}

// Run performs the benchmark.
func Run(ctx context.Context, o Options) (Report, error) {
	rep := Report{Lines: o.Lines, Period: o.Period.String()}
	log := o.Log
	servers, err := devstack.StartBenchServers(ctx, devstack.BenchServers{DatabaseURL: o.DatabaseURL,
		NoTemporal: true, StateDir: o.StateDir, Name: "recon-bench", Log: log})
	if err != nil {
		return rep, err
	}
	defer servers.Stop()
	o.DatabaseURL, o.StateDir = servers.DatabaseURL, servers.StateDir
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
	const product = "OFFI-KOOFLOW-CRM-MONTHLY" // general: every line lands in one bill
	p, _ := cat.Lookup(product)
	terms := map[string]settlement.Terms{product: settlement.TermsOf(p)}

	log.Info("generating orders and closing the period", "lines", o.Lines, "period", o.Period)
	start := time.Now()
	if err := fixture.Generate(ctx, pool, fixture.Synthetic{Orders: o.Lines, Period: o.Period, Products: []string{product}}); err != nil {
		return rep, err
	}
	ls := &ledger.Store{Pool: pool}
	plan, err := ls.Prepare(ctx, ledger.CloseRequest{Period: o.Period, Types: []catalog.ProductType{catalog.General},
		WorkflowID: "recon-bench", RunID: fmt.Sprintf("recon-bench-%d", time.Now().UnixNano()), RequestedBy: "recon bench",
		Threshold: decimal.NewFromInt(1000), Terms: terms})
	if err != nil {
		return rep, err
	}
	for {
		r, err := ls.ApplyNextBatch(ctx, plan.CloseID)
		if err != nil {
			return rep, err
		}
		if r.Done {
			break
		}
	}
	bills, err := ls.Finalize(ctx, plan.CloseID)
	if err != nil {
		return rep, err
	}
	if len(bills) != 1 || bills[0].Status != ledger.StatusFinal {
		return rep, fmt.Errorf("the close produced %+v, want one final general bill", bills)
	}

	// The marketplace's file: kooflow's lines in the export's columns, with the faults.
	var file bytes.Buffer
	file.WriteString("\ufeff")
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return rep, err
	}
	period := o.Period.String()[:4] + o.Period.String()[5:]
	_, err = conn.Conn().PgConn().CopyTo(ctx, &file, fmt.Sprintf(`COPY (
		SELECT '%s' AS "账期", order_id AS "订单号", order_line_id AS "订单行号", order_type AS "订单类型",
			revenue AS "产品销售收入",
			CASE WHEN n %% %[2]d = %[2]d / 3 THEN platform_fee - 0.01 ELSE platform_fee END AS "平台费",
			CASE WHEN n %% %[2]d = %[2]d / 3 THEN settlement + 0.01 ELSE settlement END AS "伙伴结算金额(含税)",
			'待会签' AS "账单状态"
		FROM (SELECT l.*, row_number() OVER (ORDER BY order_id, order_line_id) AS n FROM settlement_lines l WHERE bill_id = %[3]d) x
		WHERE n %% %[2]d <> 0
		UNION ALL
		SELECT '%[1]s', 'EXTRA' || lpad(g::text, 9, '0'), 'EXTRA' || lpad(g::text, 9, '0') || '-1', 'NEW', 10.00, 0.50, 9.50, '待会签'
		FROM generate_series(1, greatest(%[4]d / %[2]d, 1)) g
	) TO STDOUT WITH (FORMAT csv, HEADER true)`, period, faultEvery, bills[0].BillID, o.Lines))
	conn.Release()
	if err != nil {
		return rep, fmt.Errorf("write the marketplace's file: %w", err)
	}
	rep.WantDrops = o.Lines / faultEvery
	rep.WantChange = (o.Lines + faultEvery - faultEvery/3) / faultEvery
	rep.WantAdds = max(o.Lines/faultEvery, 1)
	if _, err := pool.Exec(ctx, "CHECKPOINT"); err != nil {
		return rep, fmt.Errorf("checkpoint: %w", err)
	}
	rep.Setup = time.Since(start)
	rep.FileBytes = file.Len()

	rs := &recon.Store{Pool: pool, Alerts: recon.LogAlerter{Log: slog.New(slog.NewTextHandler(io.Discard, nil))}}
	log.Info("importing and diffing", "bytes", file.Len())
	t0 := time.Now()
	im, err := rs.Import(ctx, recon.ImportRequest{Data: file.Bytes(), Filename: "bench.csv", Period: o.Period,
		ProductType: catalog.General, Mapping: recon.DefaultMapping(), Actor: "recon bench"})
	if err != nil {
		return rep, err
	}
	rep.Import = time.Since(t0)
	rep.FileRows = im.Rows
	t1 := time.Now()
	if rep.Summary, err = rs.Diff(ctx, im.ImportID, "recon bench", cat); err != nil {
		return rep, err
	}
	rep.Diff = time.Since(t1)
	rep.Total = time.Since(t0)
	if got, want := rep.Summary.UnexplainedCount, int64(rep.WantDrops+rep.WantChange+rep.WantAdds); got != want {
		return rep, fmt.Errorf("the diff found %d unexplained differences, the file has %d", got, want)
	}
	return rep, nil
}
