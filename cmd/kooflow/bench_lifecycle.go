package main

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/spf13/cobra"
	"go.temporal.io/sdk/client"

	"github.com/kooflow/kooflow/internal/config"
	"github.com/kooflow/kooflow/internal/lifecyclebench"
	"github.com/kooflow/kooflow/internal/logging"
	"github.com/kooflow/kooflow/internal/store"
)

// withLifecycleBench adds `bench lifecycle` under the benchmark command.
func withLifecycleBench(bench *cobra.Command) *cobra.Command {
	bench.AddCommand(newLifecycleBenchCmd(), newReadsBenchCmd(), newOpenBenchCmd())
	return bench
}

func newLifecycleBenchCmd() *cobra.Command {
	var o loadOptions
	var n, c int
	var poll, timeout time.Duration
	var skipBare bool
	cmd := &cobra.Command{
		Use:   "lifecycle",
		Short: "Lifecycle benchmark: N instances through the real API against a running stack, rated against bare workflows",
		Long: `lifecycle drives N instances through a running kooflow (kooflow dev, or API and worker processes) the way the
marketplace does: newInstance, queryInstance until provisioned, releaseInstance, and waits until each workflow
has closed; -c at a time. Each order is first placed in the emulated marketplace (--market-url/--market-ca, as
for kooflow load --place-orders). Then, in the same run and on the same Temporal server (TEMPORAL_ADDRESS,
TEMPORAL_NAMESPACE), it runs N bare workflows of three no-op activities with a worker inside this process.

It prints both rates and their ratio, p50/p99 time from newInstance to provisioned and the latency of every
gateway call made meanwhile.

  kooflow bench lifecycle -n 1000 -c 20`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := config.FromEnv(config.OSLookup)
			if err != nil {
				return err
			}
			o.target(cfg)
			o.concurrency = c
			place, err := marketPlacer(cfg, o)
			if err != nil {
				return err
			}
			log, err := logging.New(cmd.ErrOrStderr(), cfg.LogFormat, "warn")
			if err != nil {
				return err
			}
			tc, err := client.DialContext(cmd.Context(), client.Options{HostPort: cfg.TemporalAddress,
				Namespace: cfg.TemporalNamespace, Logger: logging.Temporal(log.With(slog.String("component", "bench")))})
			if err != nil {
				return fmt.Errorf("connect to Temporal at %s: %w", cfg.TemporalAddress, err)
			}
			defer tc.Close()
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "target %s, Temporal %s (namespace %s)\n", o.url, cfg.TemporalAddress, cfg.TemporalNamespace)
			rep, err := lifecyclebench.Run(cmd.Context(), lifecyclebench.Options{
				URL: o.url, AccessKey: o.accessKey, Temporal: tc, N: n, C: c, Place: place, Poll: poll,
				Timeout: timeout, SkipBare: skipBare,
			})
			if err != nil {
				return err
			}
			rep.Write(out)
			if rep.LifecycleFailures == n {
				return fmt.Errorf("every lifecycle failed: %s", rep.FirstFailure)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.url, "url", "", "production interface URL (default http://$KOOFLOW_HTTP_ADDR$KOOGALLERY_PRODUCTION_PATH)")
	f.StringVar(&o.accessKey, "access-key", "", "access key that signs the calls (default $"+config.EnvAccessKey+", else kooflow dev's)")
	f.IntVarP(&n, "n", "n", 200, "lifecycles, and bare workflows")
	f.IntVarP(&c, "concurrency", "c", 20, "lifecycles (and bare workflows) in flight at a time")
	f.DurationVar(&poll, "poll", 50*time.Millisecond, "queryInstance interval while waiting for provisioning")
	f.DurationVar(&timeout, "timeout", 2*time.Minute, "bound of one lifecycle")
	f.BoolVar(&skipBare, "skip-bare", false, "leave out the bare workflows (no ratio)")
	f.StringVar(&o.marketURL, "market-url", "", "emulated marketplace URL (default $"+config.EnvMarketEndpoint+")")
	f.StringVar(&o.marketCA, "market-ca", "", "CA file of the emulated marketplace (default $"+config.EnvMarketCAFile+", else .kooflow/emulator/emulator-ca.pem)")
	return cmd
}

func newReadsBenchCmd() *cobra.Command {
	var o lifecyclebench.ReadsOptions
	cmd := &cobra.Command{
		Use:   "reads",
		Short: "Read benchmark: queryInstance of many ids and the console's instance list over a large read model",
		Long: `reads fills the read model of a running kooflow (DATABASE_URL) up to --rows instance rows with synthetic
active instances (orders BENCHROWS…, no workflows: they stand for a large fleet in reads only, so use a
benchmark database), then times --calls queryInstance calls of --ids random ids through the production
interface and --calls pages of the console's instance list, and prints p50/p99/max of each.

  kooflow bench reads --rows 1000000 --ids 100 --calls 500`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := config.FromEnv(config.OSLookup)
			if err != nil {
				return err
			}
			if err := cfg.Require(config.EnvDatabaseURL); err != nil {
				return err
			}
			if o.URL == "" {
				o.URL = "http://" + cfg.HTTPAddr + cfg.ProductionPath
			}
			if o.ConsoleURL == "" {
				o.ConsoleURL = "http://" + cfg.HTTPAddr + "/console/v1"
			}
			if o.AccessKey == "" {
				o.AccessKey = cfg.AccessKey.Reveal()
			}
			if o.AccessKey == "" {
				o.AccessKey = devAccessKey
			}
			pool, err := store.Open(cmd.Context(), cfg.DatabaseURL.Reveal())
			if err != nil {
				return err
			}
			defer pool.Close()
			o.Pool = pool
			rep, err := lifecyclebench.RunReads(cmd.Context(), o)
			if err != nil {
				return err
			}
			rep.Write(cmd.OutOrStdout())
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.URL, "url", "", "production interface URL (default http://$KOOFLOW_HTTP_ADDR$KOOGALLERY_PRODUCTION_PATH)")
	f.StringVar(&o.ConsoleURL, "console-url", "", "console API URL (default http://$KOOFLOW_HTTP_ADDR/console/v1)")
	f.StringVar(&o.ConsoleToken, "console-token", "kooflow-dev-console-token", "console bearer token with the read scope")
	f.StringVar(&o.AccessKey, "access-key", "", "access key that signs the calls (default $"+config.EnvAccessKey+", else kooflow dev's)")
	f.IntVar(&o.Rows, "rows", 1_000_000, "instance rows the read model must hold")
	f.IntVar(&o.IDs, "ids", 100, "instance ids per queryInstance (at most 100)")
	f.IntVar(&o.Calls, "calls", 500, "measured calls of each kind")
	return cmd
}

func newOpenBenchCmd() *cobra.Command {
	var o loadOptions
	var oo lifecyclebench.OpenOptions
	cmd := &cobra.Command{
		Use:   "open",
		Short: "Open-instances benchmark: N instances created through the real API and left open; the worker's memory with them",
		Long: `open creates N instances through a running kooflow (kooflow dev, or API and worker processes) the way the
marketplace does — each order placed in the emulated marketplace, newInstance, queryInstance until provisioned —
and leaves them open: every one is a running workflow waiting for its next marketplace call or its expiry. It
reads the worker's resident memory, Go heap and sticky cache size from the worker's metrics
(KOOFLOW_WORKER_METRICS_ADDR) before and after, and prints them with the memory per cached open instance, which
sizes KOOFLOW_STICKY_CACHE_SIZE (docs/operations.md, "Sticky cache").

  kooflow bench open -n 2000 -c 20`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := config.FromEnv(config.OSLookup)
			if err != nil {
				return err
			}
			o.target(cfg)
			if oo.MetricsURL == "" {
				oo.MetricsURL = "http://" + cfg.WorkerMetricsAddr + "/metrics"
			}
			o.concurrency = oo.C
			place, err := marketPlacer(cfg, o)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			oo.URL, oo.AccessKey, oo.Place = o.url, o.accessKey, place
			oo.Progress = func(done, failed int, elapsed time.Duration) {
				fmt.Fprintf(cmd.ErrOrStderr(), "%d instances open (%d failed) after %s\n", done-failed, failed, elapsed.Round(time.Second))
			}
			fmt.Fprintf(out, "target %s, worker metrics %s\n", o.url, oo.MetricsURL)
			rep, err := lifecyclebench.RunOpen(cmd.Context(), oo)
			if err != nil {
				return err
			}
			rep.Write(out)
			if rep.Failures == oo.N {
				return fmt.Errorf("every instance failed: %s", rep.FirstFailure)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.url, "url", "", "production interface URL (default http://$KOOFLOW_HTTP_ADDR$KOOGALLERY_PRODUCTION_PATH)")
	f.StringVar(&o.accessKey, "access-key", "", "access key that signs the calls (default $"+config.EnvAccessKey+", else kooflow dev's)")
	f.IntVarP(&oo.N, "n", "n", 2000, "instances to create and leave open")
	f.IntVarP(&oo.C, "concurrency", "c", 20, "instances being created at a time")
	f.DurationVar(&oo.Poll, "poll", 200*time.Millisecond, "queryInstance interval while waiting for provisioning")
	f.DurationVar(&oo.Timeout, "timeout", 5*time.Minute, "bound of one instance's provisioning")
	f.DurationVar(&oo.Settle, "settle", 10*time.Second, "wait after the last instance before reading the worker's memory again")
	f.StringVar(&oo.MetricsURL, "worker-metrics", "", "the worker's metrics URL (default http://$"+config.EnvWorkerMetricsAddr+"/metrics)")
	f.StringVar(&o.marketURL, "market-url", "", "emulated marketplace URL (default $"+config.EnvMarketEndpoint+")")
	f.StringVar(&o.marketCA, "market-ca", "", "CA file of the emulated marketplace (default $"+config.EnvMarketCAFile+", else .kooflow/emulator/emulator-ca.pem)")
	return cmd
}
