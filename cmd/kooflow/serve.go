package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/spf13/cobra"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/interceptor"

	"github.com/kooflow/kooflow/api"
	"github.com/kooflow/kooflow/api/gateway"
	"github.com/kooflow/kooflow/internal/alerts"
	"github.com/kooflow/kooflow/internal/app"
	"github.com/kooflow/kooflow/internal/catalog"
	"github.com/kooflow/kooflow/internal/config"
	"github.com/kooflow/kooflow/internal/logging"
	"github.com/kooflow/kooflow/internal/metrics"
	"github.com/kooflow/kooflow/internal/store"
	"github.com/kooflow/kooflow/internal/temporalconn"
	"github.com/kooflow/kooflow/internal/tracing"
	"github.com/kooflow/kooflow/worker"
)

// connect opens PostgreSQL and Temporal for a serving process.
func connect(ctx context.Context, cfg config.Config, log *slog.Logger) (*pgxpool.Pool, client.Client, error) {
	if err := cfg.Require(config.EnvDatabaseURL); err != nil {
		return nil, nil, err
	}
	db := cfg.Safety.DB
	pool, err := store.OpenWith(ctx, cfg.DatabaseURL.Reveal(), store.PoolOptions{MaxConns: db.MaxConns,
		AcquireTimeout: db.AcquireTimeout, StatementTimeout: db.StatementTimeout, IdleInTransactionTimeout: db.IdleInTransactionTimeout})
	if err != nil {
		return nil, nil, err
	}
	opts, err := temporalOptions(cfg)
	if err != nil {
		pool.Close()
		return nil, nil, err
	}
	opts.Logger = logging.Temporal(log)
	tc, err := client.DialContext(ctx, opts)
	if err != nil {
		pool.Close()
		return nil, nil, fmt.Errorf("connect to Temporal at %s (namespace %s): %w", cfg.TemporalAddress, cfg.TemporalNamespace, err)
	}
	return pool, tc, nil
}

// withDeps is the RunE of a command that works against the deployment: it reads the configuration, lets
// prepare adjust or check it (flags that override the environment; nil for none), opens PostgreSQL, Temporal
// and the catalog, runs run, and closes them.
func withDeps(prepare func(*config.Config) error, run func(cmd *cobra.Command, d app.Deps) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, _ []string) error {
		cfg, log, err := setup()
		if err != nil {
			return err
		}
		if prepare != nil {
			if err := prepare(&cfg); err != nil {
				return err
			}
		}
		d, closeDeps, err := open(cmd.Context(), cfg, log)
		if err != nil {
			return err
		}
		defer closeDeps()
		return run(cmd, d)
	}
}

// open builds a serving process's dependencies: PostgreSQL, Temporal and the product catalog, each opened once
// here and handed to the parts. close releases them.
func open(ctx context.Context, cfg config.Config, log *slog.Logger) (d app.Deps, close func(), err error) {
	cat, source, err := catalog.Open(cfg.CatalogFile)
	if err != nil {
		return d, nil, fmt.Errorf("%s: %w", config.EnvCatalogFile, err)
	}
	if cfg.CatalogFile == "" {
		log.Warn("no product catalog configured: using the development catalog", "set", config.EnvCatalogFile)
	}
	keys, err := cfg.Keyring()
	if err != nil {
		return d, nil, err
	}
	pool, tc, err := connect(ctx, cfg, log)
	if err != nil {
		return d, nil, err
	}
	d = app.Deps{Config: cfg, Log: log, Pool: pool, Temporal: tc, Keys: keys, Catalog: cat, CatalogSource: source}
	stopTracing, err := traced(ctx, &d)
	if err != nil {
		tc.Close()
		pool.Close()
		return d, nil, err
	}
	return d, func() { stopTracing(); tc.Close(); pool.Close() }, nil
}

func newAPICmd() *cobra.Command {
	var addr string
	cmd := &cobra.Command{
		Use:   "api",
		Short: "Serve the KooGallery production interface and the console API",
		RunE: withDeps(func(cfg *config.Config) error {
			if addr != "" {
				cfg.HTTPAddr = addr
			}
			return cfg.Require(config.EnvAccessKey, config.EnvDataKeys)
		}, func(cmd *cobra.Command, d app.Deps) error {
			ctx := cmd.Context()
			if err := startProfiler(ctx, d.Config.PprofAddr, d.Log); err != nil {
				return err
			}
			inbox := gateway.NewInbox(d)
			h, err := api.New(d, inbox)
			if err != nil {
				return err
			}
			// The inbox dispatcher starts accepted purchases' workflows (and re-drives any a crashed process left);
			// it runs as long as the process serves.
			go inbox.Run(ctx, time.Second)
			if d.Config.ConsoleAddr == "" {
				return api.Serve(ctx, d.Config.HTTPAddr, h, d.Log, nil)
			}
			// The marketplace's listener and the console's (which need not face the internet) serve their own
			// routes; when either stops, both do.
			market, console := api.Split(h, d.Config.ProductionPath)
			ctx, cancel := context.WithCancel(ctx)
			defer cancel()
			errc := make(chan error, 2)
			go func() { errc <- api.Serve(ctx, d.Config.ConsoleAddr, console, d.Log.With("listener", "console"), nil) }()
			go func() { errc <- api.Serve(ctx, d.Config.HTTPAddr, market, d.Log.With("listener", "marketplace"), nil) }()
			err = <-errc
			cancel()
			if err2 := <-errc; err == nil {
				err = err2
			}
			return err
		}),
	}
	cmd.Flags().StringVar(&addr, "addr", "", "listen address (overrides "+config.EnvHTTPAddr+")")
	return cmd
}

func newWorkerCmd() *cobra.Command {
	var taskQueue string
	cmd := &cobra.Command{
		Use:   "worker",
		Short: "Run the Temporal worker (instance lifecycle and settlement workflows)",
		RunE: withDeps(func(cfg *config.Config) error {
			if taskQueue != "" {
				cfg.TaskQueue = taskQueue
			}
			return cfg.Require(config.EnvDataKeys)
		}, func(cmd *cobra.Command, d app.Deps) error {
			ctx := cmd.Context()
			if err := startProfiler(ctx, d.Config.PprofAddr, d.Log); err != nil {
				return err
			}
			stopMetrics, err := workerMetrics(ctx, &d)
			if err != nil {
				return err
			}
			defer stopMetrics()
			if err := startAlerts(ctx, d); err != nil {
				return err
			}
			startRetention(ctx, d)
			if d.Config.SettlementSchedule {
				sc := worker.SettlementScheduleFrom(d.Config)
				if err := worker.EnsureSettlementSchedule(ctx, d.Temporal, sc); err != nil {
					return err
				}
				d.Log.Info("settlement schedule ensured", "schedule_id", worker.SettlementScheduleID, "hour", sc.Hour,
					"days", sc.Days, "time_zone", "Asia/Shanghai")
			}
			if err := ensureUsagePushSchedule(ctx, d); err != nil {
				return err
			}
			return worker.Run(ctx, d)
		}),
	}
	cmd.Flags().StringVar(&taskQueue, "task-queue", "", "task queue (overrides "+config.EnvTaskQueue+")")
	return cmd
}

// workerMetrics builds the worker's metrics registry (the gauges read PostgreSQL), re-dials Temporal for the
// worker with the SDK's metrics reported into it, and serves it at KOOFLOW_WORKER_METRICS_ADDR until ctx ends
// ("off" serves nothing). d gets the metrics and the measured client; stop closes them.
func workerMetrics(ctx context.Context, d *app.Deps) (stop func(), err error) {
	if d.Config.WorkerMetricsAddr == "off" {
		return func() {}, nil
	}
	st := &store.Store{Pool: d.Pool}
	m, err := metrics.NewWorker(d.Log, &metrics.Counts{InstancesByLifecycle: st.CountInstancesByLifecycle,
		ParkedBySteps: st.CountParkedBySteps, OpenAlerts: st.CountOpenAlerts})
	if err != nil {
		return nil, err
	}
	opts := client.Options{Namespace: d.Config.TemporalNamespace, Logger: logging.Temporal(d.Log), MetricsHandler: m.TemporalHandler()}
	temporalconn.Encrypt(&opts, d.Keys)
	if d.Tracer != nil { // options are not inherited from the client this one shares a connection with
		ti, err := tracing.Interceptor(d.Tracer)
		if err != nil {
			_ = m.Close()
			return nil, err
		}
		opts.Interceptors = []interceptor.ClientInterceptor{ti}
	}
	tc, err := client.NewClientFromExistingWithContext(ctx, d.Temporal, opts)
	if err != nil {
		_ = m.Close()
		return nil, fmt.Errorf("measured Temporal client: %w", err)
	}
	d.Temporal, d.WorkerMetrics = tc, m
	lctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := metrics.ListenAndServe(lctx, d.Config.WorkerMetricsAddr, m.Handler(), d.Log, nil); err != nil {
			d.Log.Error("worker metrics listener stopped", "err", err)
		}
	}()
	return func() { cancel(); <-done; tc.Close(); _ = m.Close() }, nil
}

// startAlerts runs the alert watcher and pusher (internal/alerts) until ctx ends: purchase-failing and parked
// alerts are raised from the read model, and every alert is pushed to KOOFLOW_ALERT_WEBHOOK_URL when one is set.
func startAlerts(ctx context.Context, d app.Deps) error {
	f, err := alerts.ParseFormat(d.Config.AlertWebhookFormat)
	if err != nil {
		return fmt.Errorf("%s: %w", config.EnvAlertWebhookFormat, err)
	}
	p := &alerts.Pusher{Store: &store.Store{Pool: d.Pool}, URL: d.Config.AlertWebhookURL.Reveal(), Format: f,
		Log: d.Log, PurchaseAfter: d.Config.PurchaseAlertAfter}
	p.Watchers = systemWatchers(d, p.Store)
	if p.URL == "" {
		d.Log.Warn("alerts are not pushed to anyone", "set", config.EnvAlertWebhookURL)
	}
	go p.Run(ctx)
	return nil
}

func newMigrateCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "migrate",
		Short: "Apply the embedded SQL migrations to DATABASE_URL",
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, log, err := setup()
			if err != nil {
				return err
			}
			if err := cfg.Require(config.EnvDatabaseURL); err != nil {
				return err
			}
			v, err := store.Migrate(cmd.Context(), cfg.DatabaseURL.Reveal(), log)
			if err != nil {
				return err
			}
			log.Info("schema up to date", "version", v)
			return nil
		},
	}
}
