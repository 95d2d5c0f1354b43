// Package teststack starts kooflow itself for integration tests: a real worker (every workflow and activity
// registered as in production) and the real HTTP router, in-process, on testenv's Temporal dev server and a
// PostgreSQL database, and, when a test needs the marketplace, the emulator's order-query API over TLS. Tests of
// different areas thereby run the product the same way, and everything stops when the test ends.
package teststack

import (
	"context"
	"log/slog"
	"maps"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"go.temporal.io/sdk/client"

	"github.com/kooflow/kooflow/api"
	"github.com/kooflow/kooflow/api/gateway"
	"github.com/kooflow/kooflow/emulator/market"
	"github.com/kooflow/kooflow/internal/app"
	"github.com/kooflow/kooflow/internal/catalog"
	"github.com/kooflow/kooflow/internal/config"
	"github.com/kooflow/kooflow/internal/metrics"
	"github.com/kooflow/kooflow/internal/secrets"
	"github.com/kooflow/kooflow/internal/store"
	"github.com/kooflow/kooflow/internal/temporalconn"
	"github.com/kooflow/kooflow/internal/testenv"
	"github.com/kooflow/kooflow/internal/tracing"
	"github.com/kooflow/kooflow/worker"
	"go.opentelemetry.io/otel/trace"
	"go.temporal.io/sdk/interceptor"
)

// Stack is a running kooflow: URL serves the production interface and the console.
type Stack struct {
	URL      string
	Config   config.Config
	Pool     *pgxpool.Pool
	Temporal client.Client
	Log      *slog.Logger
	// WorkerMetricsURL serves the worker's /metrics when Options.WorkerMetrics is set.
	WorkerMetricsURL string
	deps             app.Deps
}

// Options choose what Start does not default.
type Options struct {
	// Pool is the database; nil gives a fresh migrated one (testenv.Pool).
	Pool *pgxpool.Pool
	// Log receives the stack's logs; nil logs through t.
	Log *slog.Logger
	// NoWorker leaves the task queue without a worker (to test what happens when no worker runs).
	NoWorker bool
	// WorkerMetrics measures the worker as `kooflow worker` does (its registry, the Temporal SDK's metrics, the
	// gauges read from PostgreSQL) and serves them at Stack.WorkerMetricsURL + "/metrics".
	WorkerMetrics bool
	// Tracer traces the stack as OTEL_EXPORTER_OTLP_ENDPOINT does in production: the gateway's spans and the
	// Temporal client's tracing interceptor (for the router and the worker) report to it.
	Tracer trace.TracerProvider
	// EncryptPayloads seals the worker's and router's Temporal payloads under the data keys, as every production
	// process does (internal/payloadcodec). Off by default, so tests may read histories with testenv's client.
	EncryptPayloads bool
	// Now is the stack's clock (app.Deps.Now): the console's and the worker's settlement close read it, so a test
	// can close the month its orders went through once they are in. nil is time.Now.
	Now func() time.Time
}

// Start runs a worker and the router for cfg. An empty cfg.TaskQueue gets one unique to the test.
func Start(t testing.TB, cfg config.Config, o Options) *Stack {
	t.Helper()
	if cfg.TaskQueue == "" || cfg.TaskQueue == config.DefaultTaskQueue {
		cfg.TaskQueue = testenv.TaskQueue(t)
	}
	if o.Log == nil {
		o.Log = testenv.Logger(t)
	}
	if o.Pool == nil {
		o.Pool = testenv.Pool(t)
	}
	tc := testenv.TemporalClient(t)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel) // stops the router's background work (the gateway's inbox dispatch) with the test
	d := Deps(t, cfg, o.Log, o.Pool, tc)
	d.Now = o.Now
	if o.EncryptPayloads {
		opts := client.Options{Namespace: cfg.TemporalNamespace}
		temporalconn.Encrypt(&opts, d.Keys)
		etc, err := client.NewClientFromExistingWithContext(ctx, tc, opts)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(etc.Close)
		d.Temporal = etc
	}
	var metricsURL string
	if o.WorkerMetrics || o.Tracer != nil {
		metricsURL = instrument(t, ctx, &d, o)
	}
	if !o.NoWorker {
		w, err := worker.New(d)
		if err != nil {
			t.Fatal(err)
		}
		if err := w.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(w.Stop)
		wctx, stopWatch := context.WithCancel(ctx)
		watched := make(chan struct{})
		go func() {
			defer close(watched)
			worker.NewExpiryWatch(d).Run(wctx)
		}()
		t.Cleanup(func() { stopWatch(); <-watched })
	}
	s := &Stack{Config: cfg, Pool: o.Pool, Temporal: tc, Log: o.Log, deps: d, WorkerMetricsURL: metricsURL}
	s.URL = s.serve(t, ctx)
	return s
}

// instrument gives d the worker's metrics (Options.WorkerMetrics, served at the returned URL) and the tracer
// (Options.Tracer), with a Temporal client reporting to them.
func instrument(t testing.TB, ctx context.Context, d *app.Deps, o Options) (metricsURL string) {
	t.Helper()
	opts := client.Options{Namespace: d.Config.TemporalNamespace}
	if o.WorkerMetrics {
		st := &store.Store{Pool: d.Pool}
		m, err := metrics.NewWorker(d.Log, &metrics.Counts{InstancesByLifecycle: st.CountInstancesByLifecycle,
			ParkedBySteps: st.CountParkedBySteps, OpenAlerts: st.CountOpenAlerts})
		if err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(m.Handler())
		t.Cleanup(func() { srv.Close(); _ = m.Close() })
		opts.MetricsHandler, d.WorkerMetrics, metricsURL = m.TemporalHandler(), m, srv.URL
	}
	if o.Tracer != nil {
		ti, err := tracing.Interceptor(o.Tracer)
		if err != nil {
			t.Fatal(err)
		}
		opts.Interceptors, d.Tracer = []interceptor.ClientInterceptor{ti}, o.Tracer
	}
	if o.EncryptPayloads {
		temporalconn.Encrypt(&opts, d.Keys)
	}
	tc, err := client.NewClientFromExistingWithContext(ctx, d.Temporal, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tc.Close)
	d.Temporal = tc
	return metricsURL
}

// SecondAPI serves another router on the same database and Temporal, as a second API process would.
func (s *Stack) SecondAPI(t testing.TB) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	return s.serve(t, ctx)
}

// serve runs one API process's router and inbox dispatcher until ctx ends; it returns the router's URL.
func (s *Stack) serve(t testing.TB, ctx context.Context) string {
	t.Helper()
	inbox := gateway.NewInbox(s.deps)
	h, err := api.New(s.deps, inbox)
	if err != nil {
		t.Fatal(err)
	}
	go inbox.Run(ctx, time.Second)
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}

// Deps builds the dependencies a process would (the catalog from cfg.CatalogFile, else the development one).
func Deps(t testing.TB, cfg config.Config, log *slog.Logger, pool *pgxpool.Pool, tc client.Client) app.Deps {
	t.Helper()
	cat, source, err := catalog.Open(cfg.CatalogFile)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := cfg.Keyring()
	if err != nil {
		t.Fatal(err)
	}
	return app.Deps{Config: cfg, Log: log, Pool: pool, Temporal: tc, Keys: keys, Catalog: cat, CatalogSource: source}
}

// Market starts the emulator's marketplace APIs over TLS on loopback; its URL and CA file go into
// KOOGALLERY_API_ENDPOINT and KOOGALLERY_API_CA_FILE.
func Market(t testing.TB, o market.Options) (*market.Market, *market.Server) {
	t.Helper()
	m, srv, err := market.Serve(o, "127.0.0.1:0", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	return m, srv
}

// Config builds a configuration from the given environment, as the processes read theirs.
func Config(t testing.TB, env map[string]string) config.Config {
	t.Helper()
	if _, set := env[config.EnvProvisioner]; !set {
		// Tests deliver made-up access data as kooflow dev does, unless a test says otherwise.
		env = maps.Clone(env)
		if env == nil {
			env = map[string]string{}
		}
		env[config.EnvProvisioner] = "builtin"
	}
	if env[config.EnvDataKeys] == "" && env[config.EnvDataKeysFile] == "" {
		// A fresh data key per test, as kooflow dev generates one.
		spec, err := secrets.NewKeySpec("test")
		if err != nil {
			t.Fatal(err)
		}
		env = maps.Clone(env)
		if env == nil {
			env = map[string]string{}
		}
		env[config.EnvDataKeys] = spec
	}
	cfg, err := config.FromEnv(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// Keys are the secrets a test kooflow shares with its emulated marketplace and its console clients.
type Keys struct {
	AccessKey    string // KOOGALLERY_ACCESS_KEY: the production interface's signatures
	MarketAK     string // the order query's AK/SK
	MarketSK     string
	ConsoleToken string // one console token, named "ops"
}

// WithMarket starts the emulator's marketplace for k (o adds to its options, e.g. a logger or faults) and
// returns the configuration of a kooflow wired to it: access key, order-query endpoint, CA and AK/SK, and the
// console token. env adds variables or overrides these.
func WithMarket(t testing.TB, k Keys, o market.Options, env map[string]string) (config.Config, *market.Market, *market.Server) {
	t.Helper()
	o.AK, o.SK, o.SellerKey = k.MarketAK, k.MarketSK, k.AccessKey
	m, srv := Market(t, o)
	vars := map[string]string{
		config.EnvConsoleTokens:  "ops:" + k.ConsoleToken,
		config.EnvAccessKey:      k.AccessKey,
		config.EnvMarketAK:       k.MarketAK,
		config.EnvMarketSK:       k.MarketSK,
		config.EnvMarketEndpoint: srv.URL,
		config.EnvMarketCAFile:   srv.CAFile,
	}
	maps.Copy(vars, env)
	return Config(t, vars), m, srv
}
