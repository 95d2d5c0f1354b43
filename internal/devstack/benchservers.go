package devstack

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/kooflow/kooflow/internal/store"
)

// BenchServers says where a benchmark runs: servers that already run (a Temporal address, a DATABASE_URL), or
// private ones StartBenchServers starts for the run, so every `kooflow bench …` command measures the same way.
type BenchServers struct {
	TemporalAddress string // empty: start a private Temporal dev server, unless NoTemporal
	DatabaseURL     string // empty: start a private PostgreSQL (fsync on, as in kooflow dev)
	NoTemporal      bool   // the benchmark needs only PostgreSQL
	BinDir          string // where the Temporal CLI is (built there when missing)
	StateDir        string // private servers' state; empty: a temporary directory named after Name, removed by Stop
	Name            string // names the temporary directory, e.g. "settle-bench"
	Log             *slog.Logger
}

// RunningBench is what StartBenchServers started or was given: the servers' addresses, a migrated database and a
// pool on it. Stop closes the pool and stops what was started, in reverse order.
type RunningBench struct {
	TemporalAddress string
	DatabaseURL     string
	StateDir        string
	Pool            *pgxpool.Pool
	stops           []func()
}

// Stop releases everything StartBenchServers acquired; safe to call once, also after a failed start.
func (r *RunningBench) Stop() {
	for i := len(r.stops) - 1; i >= 0; i-- {
		r.stops[i]()
	}
	r.stops = nil
}

// StartBenchServers starts what b does not point at, migrates the database and opens a pool on it.
func StartBenchServers(ctx context.Context, b BenchServers) (*RunningBench, error) {
	r := &RunningBench{TemporalAddress: b.TemporalAddress, DatabaseURL: b.DatabaseURL, StateDir: b.StateDir}
	log := b.Log
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	fail := func(err error) (*RunningBench, error) {
		r.Stop()
		return nil, err
	}
	if r.StateDir == "" {
		dir, err := os.MkdirTemp("", "kooflow-"+b.Name+"-")
		if err != nil {
			return fail(fmt.Errorf("benchmark state directory: %w", err))
		}
		r.stops = append(r.stops, func() { _ = os.RemoveAll(dir) })
		r.StateDir = dir
	}
	if r.TemporalAddress == "" && !b.NoTemporal {
		cli, err := EnsureTemporalCLI(ctx, b.BinDir, log)
		if err != nil {
			return fail(err)
		}
		port, err := FreePort()
		if err != nil {
			return fail(err)
		}
		log.Info("starting a Temporal dev server", "port", port)
		t, err := StartTemporal(ctx, TemporalOptions{CLIPath: cli, Port: port, Namespace: "default", Output: io.Discard})
		if err != nil {
			return fail(err)
		}
		r.stops = append(r.stops, func() { _ = t.Stop() })
		r.TemporalAddress = t.Address
	}
	if r.DatabaseURL == "" {
		port, err := FreePort()
		if err != nil {
			return fail(err)
		}
		log.Info("starting a private PostgreSQL (fsync on, as in kooflow dev)", "port", port)
		pg, err := StartPostgres(ctx, PostgresOptions{Dir: filepath.Join(r.StateDir, "pg"), Port: port,
			Database: "kooflow", Output: io.Discard, Fsync: true})
		if err != nil {
			return fail(err)
		}
		r.stops = append(r.stops, func() { _ = pg.Stop() })
		r.DatabaseURL = pg.URL("")
	}
	if _, err := store.Migrate(ctx, r.DatabaseURL, slog.New(slog.NewTextHandler(io.Discard, nil))); err != nil {
		return fail(err)
	}
	pool, err := store.Open(ctx, r.DatabaseURL)
	if err != nil {
		return fail(err)
	}
	r.stops = append(r.stops, pool.Close)
	r.Pool = pool
	return r, nil
}
