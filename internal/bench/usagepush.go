package bench

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/shopspring/decimal"
	"go.temporal.io/sdk/client"
	sdkworker "go.temporal.io/sdk/worker"

	"github.com/kooflow/kooflow/activities"
	"github.com/kooflow/kooflow/emulator/market"
	"github.com/kooflow/kooflow/internal/config"
	"github.com/kooflow/kooflow/internal/devstack"
	"github.com/kooflow/kooflow/internal/koogallery/usagedata"
	"github.com/kooflow/kooflow/internal/logging"
	"github.com/kooflow/kooflow/internal/usagepush"
	"github.com/kooflow/kooflow/worker"
	"github.com/kooflow/kooflow/workflows"
)

// UsagePushOptions configure the usage push benchmark.
type UsagePushOptions struct {
	Instances int // pay-per-use instances, each with usage in the hour that just closed
	Records   int // usage records per instance in that hour
	// DatabaseURL and TemporalAddress point at servers that already run; empty starts private ones.
	DatabaseURL     string
	TemporalAddress string
	BinDir          string
	StateDir        string
	Log             *slog.Logger
}

// UsagePushReport is what the usage push benchmark measured.
type UsagePushReport struct {
	Instances     int           `json:"instances"`
	Ingested      int           `json:"ingested"` // usage records
	Generate      time.Duration `json:"generate"`
	Push          time.Duration `json:"push"` // start of the UsagePush workflow to its result
	Planned       int           `json:"planned"`
	Pushes        int           `json:"pushes"`
	Accepted      int           `json:"accepted"`
	HistoryEvents int           `json:"historyEvents"`
	IngestedValue string        `json:"ingestedValue"`
	ChargedValue  string        `json:"chargedValue"`
	ChargedEqual  bool          `json:"chargedEqual"`
}

// RunUsagePush measures one hour's usage push: it ingests Records usage records for each of Instances pay-per-use
// instances in the hour that just closed, then runs the UsagePush workflow on a real Temporal server against the
// emulated marketplace (over TLS, signature verified, records de-duplicated and charged) and reports the time,
// the history size, and whether what was charged equals what was ingested.
func RunUsagePush(ctx context.Context, o UsagePushOptions) (UsagePushReport, error) {
	rep := UsagePushReport{Instances: o.Instances, Ingested: o.Instances * o.Records}
	log := o.Log
	servers, err := devstack.StartBenchServers(ctx, devstack.BenchServers{TemporalAddress: o.TemporalAddress, DatabaseURL: o.DatabaseURL,
		BinDir: o.BinDir, StateDir: o.StateDir, Name: "usage-push-bench", Log: log})
	if err != nil {
		return rep, err
	}
	defer servers.Stop()
	o.TemporalAddress, o.DatabaseURL, o.StateDir = servers.TemporalAddress, servers.DatabaseURL, servers.StateDir
	pool := servers.Pool

	const key = "usage-push-bench-seller-key"
	m, srv, err := market.Serve(market.Options{AK: "bench-ak", SK: "bench-sk", SellerKey: key}, "127.0.0.1:0", filepath.Join(o.StateDir, "tls"))
	if err != nil {
		return rep, err
	}
	defer srv.Close() //nolint:errcheck // best effort at exit

	prefix := fmt.Sprintf("ub%d-", time.Now().UnixNano())
	hour := time.Now().UTC().Truncate(time.Hour).Add(-time.Hour)
	log.Info("generating pay-per-use instances and usage", "instances", o.Instances, "records_per_instance", o.Records, "hour", hour)
	start := time.Now()
	if _, err := pool.Exec(ctx, `
		INSERT INTO instances (instance_id, workflow_id, order_id, order_line_id, charging_mode, lifecycle)
		SELECT $1 || i, 'instance/' || $1 || i, 'O' || $1 || i, 'O' || $1 || i || '-000001', 'ON_DEMAND', 'ACTIVE'
		FROM generate_series(1, $2) i`, prefix, o.Instances); err != nil {
		return rep, fmt.Errorf("generate instances: %w", err)
	}
	if _, err := pool.Exec(ctx, `
		INSERT INTO usage_records (record_id, instance_id, value, usage_hour, received_at)
		SELECT $1 || i || '/' || k, $1 || i, ((i * 7 + k * 13) % 10000 + 1) / 10000.0, $3::timestamptz, $3::timestamptz + interval '30 minutes'
		FROM generate_series(1, $2) i, generate_series(1, $4) k`, prefix, o.Instances, hour, o.Records); err != nil {
		return rep, fmt.Errorf("generate usage: %w", err)
	}
	var ingested decimal.Decimal
	if err := pool.QueryRow(ctx, `SELECT coalesce(sum(value), 0) FROM usage_records WHERE instance_id LIKE $1 || '%'`, prefix).Scan(&ingested); err != nil {
		return rep, err
	}
	rep.IngestedValue = ingested.StringFixed(4)
	for i := 1; i <= o.Instances; i++ {
		m.PutInstance(market.Instance{InstanceID: fmt.Sprint(prefix, i), ChargingMode: market.ChargingOnDemand, Status: "NORMAL"})
	}
	if _, err := pool.Exec(ctx, "CHECKPOINT"); err != nil {
		return rep, fmt.Errorf("checkpoint: %w", err)
	}
	rep.Generate = time.Since(start)

	tc, err := client.DialContext(ctx, client.Options{HostPort: o.TemporalAddress, Namespace: "default",
		Logger: logging.Temporal(slog.New(slog.NewTextHandler(io.Discard, nil)))})
	if err != nil {
		return rep, fmt.Errorf("connect to Temporal at %s: %w", o.TemporalAddress, err)
	}
	defer tc.Close()
	c, err := usagedata.NewClient(usagedata.Options{Endpoint: srv.URL, SellerKey: config.Secret(key), CAFile: srv.CAFile})
	if err != nil {
		return rep, err
	}
	st := &usagepush.Store{Pool: pool}
	taskQueue := fmt.Sprintf("usage-bench-%d", time.Now().UnixNano())
	w := sdkworker.New(tc, taskQueue, sdkworker.Options{})
	worker.RegisterWorkflows(w, workflows.LifecycleConfig{})
	worker.RegisterActivities(w, worker.Activities{UsagePush: &activities.UsagePush{Store: st, Log: log,
		Pusher: &usagepush.Pusher{Store: st, Client: c, Log: log, Worker: "bench"}}})
	if err := w.Start(); err != nil {
		return rep, err
	}
	defer w.Stop()

	id := "usage-push-bench-" + prefix
	start = time.Now()
	run, err := tc.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id, TaskQueue: taskQueue}, workflows.UsagePushWorkflowType,
		workflows.UsagePushInput{})
	if err != nil {
		return rep, err
	}
	var res workflows.UsagePushResult
	if err := run.Get(ctx, &res); err != nil {
		return rep, fmt.Errorf("usage push: %w", err)
	}
	rep.Push = time.Since(start)
	rep.Planned, rep.Pushes, rep.Accepted = res.Planned.Records, res.Drained.Batches, res.Drained.Accepted
	if rep.HistoryEvents, err = historyLength(ctx, tc, id, run.GetRunID()); err != nil {
		return rep, err
	}
	charged := m.UsageLedger().Sum().Value
	rep.ChargedValue = charged.StringFixed(4)
	rep.ChargedEqual = charged.Equal(ingested)
	return rep, nil
}
