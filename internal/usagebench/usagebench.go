// Package usagebench measures the usage intake: concurrent clients send 1,000-record batches through the real
// router over real HTTP (loopback) into PostgreSQL, and the run reports records per second, the batch latency, and
// a cross-check that every accepted record is stored once. `kooflow bench usage` runs it.
package usagebench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shopspring/decimal"

	"github.com/kooflow/kooflow/api"
	"github.com/kooflow/kooflow/api/gateway"
	"github.com/kooflow/kooflow/internal/app"
	"github.com/kooflow/kooflow/internal/config"
	"github.com/kooflow/kooflow/internal/devstack"
	"github.com/kooflow/kooflow/usageclient"
)

// Options configure a run.
type Options struct {
	Clients   int           // concurrent clients (16)
	Duration  time.Duration // measured time (20 s)
	Warmup    time.Duration // sent first and left out of the figures (3 s)
	Batch     int           // records per call (1,000)
	Instances int           // pay-per-use instances the records spread over (1,000)
	// DatabaseURL points at a PostgreSQL that already runs (a scratch database: the run adds instances and
	// usage rows); empty starts a private one.
	DatabaseURL string
	Log         *slog.Logger
}

// Report is what a run measured.
type Report struct {
	Clients       int           `json:"clients"`
	Batch         int           `json:"batch"`
	Duration      time.Duration `json:"duration"`
	Records       int64         `json:"records"` // accepted in the measured time
	Calls         int64         `json:"calls"`
	RecordsPerSec float64       `json:"recordsPerSec"`
	P50, P99, Max time.Duration `json:"-"`
	P50ms         float64       `json:"p50Ms"`
	P99ms         float64       `json:"p99Ms"`
	Stored        int64         `json:"stored"` // rows in usage_records afterwards, warm-up included
	Sent          int64         `json:"sent"`   // records accepted, warm-up included
}

const token = "usage-bench-token-0123456789abcdef"

// Run performs the benchmark.
func Run(ctx context.Context, o Options) (Report, error) {
	if o.Clients <= 0 {
		o.Clients = 16
	}
	if o.Duration <= 0 {
		o.Duration = 20 * time.Second
	}
	if o.Batch <= 0 || o.Batch > usageclient.MaxBatch {
		o.Batch = usageclient.MaxBatch
	}
	if o.Instances <= 0 {
		o.Instances = 1000
	}
	if o.Log == nil {
		o.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	rep := Report{Clients: o.Clients, Batch: o.Batch}
	servers, err := devstack.StartBenchServers(ctx, devstack.BenchServers{DatabaseURL: o.DatabaseURL, NoTemporal: true,
		Name: "usage-bench", Log: o.Log})
	if err != nil {
		return rep, err
	}
	defer servers.Stop()
	pool := servers.Pool
	run := fmt.Sprintf("UB%d", time.Now().UnixNano())
	if _, err := pool.Exec(ctx, `INSERT INTO instances (instance_id, workflow_id, order_id, order_line_id, lifecycle, charging_mode, product_id)
		SELECT $1 || '-' || g, 'instance/' || $1 || '-' || g, $1 || '-' || g, $1 || '-' || g || '-000001', 'ACTIVE', 'ON_DEMAND', 'OFFI-KOOFLOW-API-PPU'
		FROM generate_series(1, $2) g`, run, o.Instances); err != nil {
		return rep, fmt.Errorf("create the benchmark's pay-per-use instances: %w", err)
	}

	d := app.Deps{Config: config.Config{ProductionPath: config.DefaultProductionPath, ConsoleTokens: config.Secret("meter:" + token + ":usage"),
		UsageIntake: config.UsageIntakeConfig{LateWindow: config.DefaultUsageLateWindow}}, Pool: pool, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	router, err := api.New(d, gateway.NewInbox(d))
	if err != nil {
		return rep, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return rep, err
	}
	srv := &http.Server{Handler: router, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln) //nolint:errcheck // closed below
	defer srv.Close()
	tr := &http.Transport{MaxIdleConnsPerHost: o.Clients, MaxConnsPerHost: o.Clients}
	client := &usageclient.Client{BaseURL: "http://" + ln.Addr().String(), Token: token, HTTPClient: &http.Client{Transport: tr, Timeout: time.Minute}}

	var seq atomic.Int64
	var measuring atomic.Bool
	var records, calls, sent atomic.Int64
	var mu sync.Mutex
	var latencies []time.Duration
	var firstErr error
	stop := make(chan struct{})
	var wg sync.WaitGroup
	base := time.Now().UTC().Add(-30 * time.Minute)
	for c := range o.Clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			recs := make([]usageclient.Record, o.Batch)
			for {
				select {
				case <-stop:
					return
				default:
				}
				for i := range recs {
					n := seq.Add(1)
					at := base.Add(time.Duration(n%1800) * time.Second)
					recs[i] = usageclient.Record{ID: fmt.Sprintf("%s-%d-%d", run, c, n),
						InstanceID: fmt.Sprintf("%s-%d", run, 1+n%int64(o.Instances)), Value: decimal.New(n%10000+1, -3), Time: &at}
				}
				start := time.Now()
				resp, err := client.Send(ctx, recs)
				took := time.Since(start)
				if err == nil && resp.Accepted != len(recs) {
					err = fmt.Errorf("%d of %d records accepted; first result %+v", resp.Accepted, len(recs), resp.Results[0])
				}
				if err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
					return
				}
				sent.Add(int64(resp.Accepted))
				if measuring.Load() {
					records.Add(int64(resp.Accepted))
					calls.Add(1)
					mu.Lock()
					latencies = append(latencies, took)
					mu.Unlock()
				}
			}
		}()
	}
	o.Log.Info("warming up", "for", o.Warmup)
	time.Sleep(o.Warmup)
	measuring.Store(true)
	began := time.Now()
	time.Sleep(o.Duration)
	measuring.Store(false)
	rep.Duration = time.Since(began)
	close(stop)
	wg.Wait()
	if firstErr != nil {
		return rep, firstErr
	}
	rep.Records, rep.Calls, rep.Sent = records.Load(), calls.Load(), sent.Load()
	rep.RecordsPerSec = float64(rep.Records) / rep.Duration.Seconds()
	if len(latencies) == 0 {
		return rep, errors.New("no call completed in the measured time")
	}
	slices.Sort(latencies)
	rep.P50, rep.P99, rep.Max = latencies[len(latencies)/2], latencies[len(latencies)*99/100], latencies[len(latencies)-1]
	rep.P50ms, rep.P99ms = float64(rep.P50.Microseconds())/1000, float64(rep.P99.Microseconds())/1000
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM usage_records WHERE record_id LIKE $1 || '-%'`, run).Scan(&rep.Stored); err != nil {
		return rep, err
	}
	if rep.Stored != rep.Sent {
		return rep, fmt.Errorf("%d records accepted but %d stored", rep.Sent, rep.Stored)
	}
	return rep, nil
}
