// Package teststack starts kooflow itself for integration tests: a real worker (every workflow and activity
// registered as in production) and the real HTTP router, in-process, on testenv's Temporal dev server and a
// PostgreSQL database, and, when a test needs the marketplace, the emulator's order-query API over TLS. Tests of
// different areas thereby run the product the same way, and everything stops when the test ends.
package teststack

import (
	"context"
	"log/slog"
	"net/http/httptest"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"go.temporal.io/sdk/client"

	"github.com/kooflow/kooflow/api"
	"github.com/kooflow/kooflow/config"
	"github.com/kooflow/kooflow/emulator/market"
	"github.com/kooflow/kooflow/testenv"
	"github.com/kooflow/kooflow/worker"
)

// Stack is a running kooflow: URL serves the production interface and the console.
type Stack struct {
	URL      string
	Config   config.Config
	Pool     *pgxpool.Pool
	Temporal client.Client
	Log      *slog.Logger
}

// Options choose what Start does not default.
type Options struct {
	// Pool is the database; nil gives a fresh migrated one (testenv.Pool).
	Pool *pgxpool.Pool
	// Log receives the stack's logs; nil logs through t.
	Log *slog.Logger
	// NoWorker leaves the task queue without a worker (to test what happens when no worker runs).
	NoWorker bool
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
	if !o.NoWorker {
		w, err := worker.New(ctx, worker.Deps{Config: cfg, Log: o.Log, Pool: o.Pool, Temporal: tc})
		if err != nil {
			t.Fatal(err)
		}
		if err := w.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(w.Stop)
	}
	h, err := api.New(api.Deps{Config: cfg, Log: o.Log, Pool: o.Pool, Temporal: tc, Background: ctx})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return &Stack{URL: srv.URL, Config: cfg, Pool: o.Pool, Temporal: tc, Log: o.Log}
}

// SecondAPI serves another router on the same database and Temporal, as a second API process would.
func (s *Stack) SecondAPI(t testing.TB) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	h, err := api.New(api.Deps{Config: s.Config, Log: s.Log, Pool: s.Pool, Temporal: s.Temporal, Background: ctx})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}

// Market starts the emulator's marketplace APIs over TLS on loopback; its URL and CA file go into
// KOOGALLERY_API_ENDPOINT and KOOGALLERY_API_CA_FILE.
func Market(t testing.TB, o market.Options) (*market.Market, *market.Server) {
	t.Helper()
	m, err := market.New(o)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := m.StartTLS("127.0.0.1:0", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	return m, srv
}

// Config builds a configuration from the given environment, as the processes read theirs.
func Config(t testing.TB, env map[string]string) config.Config {
	t.Helper()
	cfg, err := config.FromEnv(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}
