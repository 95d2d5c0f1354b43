package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/kooflow/kooflow/internal/app"
	"github.com/kooflow/kooflow/internal/bench"
	"github.com/kooflow/kooflow/internal/config"
	"github.com/kooflow/kooflow/internal/store"
	"github.com/kooflow/kooflow/internal/usagepush"
	"github.com/kooflow/kooflow/worker"
)

// ensureUsagePushSchedule keeps the hourly usage push schedule unless KOOFLOW_USAGE_PUSH_SCHEDULE is off.
func ensureUsagePushSchedule(ctx context.Context, d app.Deps) error {
	if !d.Config.UsagePush.Schedule {
		return nil
	}
	if err := worker.EnsureUsagePushSchedule(ctx, d.Temporal, d.Config.TaskQueue, d.Config.UsagePush.Minute); err != nil {
		return err
	}
	d.Log.Info("usage push schedule ensured", "schedule_id", worker.UsagePushScheduleID, "minute", d.Config.UsagePush.Minute)
	return nil
}

// withUsagePushBench adds `bench usage-push` under the benchmark command.
func withUsagePushBench(bench *cobra.Command) *cobra.Command {
	bench.AddCommand(newUsagePushBenchCmd())
	return bench
}

func newUsagePushBenchCmd() *cobra.Command {
	var o bench.UsagePushOptions
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "usage-push",
		Short: "Usage push benchmark: one hour's usage of many pay-per-use instances pushed to the emulator",
		Long: `usage-push starts a private Temporal dev server and PostgreSQL (unless TEMPORAL_ADDRESS / DATABASE_URL are
set), the emulated marketplace's usage API over TLS, generates --instances pay-per-use instances with --records usage
records each in the hour that just closed, runs the UsagePush workflow once and prints its time, the number of
pushes, its history length, and whether what the marketplace charged equals what was ingested.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, log, err := setup()
			if err != nil {
				return err
			}
			o.Log = log
			o.DatabaseURL = os.Getenv(config.EnvDatabaseURL)
			o.TemporalAddress = os.Getenv(config.EnvTemporalAddress)
			rep, err := bench.RunUsagePush(cmd.Context(), o)
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(cmd, rep)
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "usage push benchmark: %d pay-per-use instances, %d usage records in one hour\n", rep.Instances, rep.Ingested)
			fmt.Fprintf(w, "  generate rows            %s\n", rep.Generate.Round(time.Millisecond))
			fmt.Fprintf(w, "  push via workflow        %s (%d windows planned, %d pushes, %d records accepted)\n",
				rep.Push.Round(time.Millisecond), rep.Planned, rep.Pushes, rep.Accepted)
			fmt.Fprintf(w, "  workflow history         %d events\n", rep.HistoryEvents)
			fmt.Fprintf(w, "  ingested / charged       %s / %s, equal: %v\n", rep.IngestedValue, rep.ChargedValue, rep.ChargedEqual)
			if !rep.ChargedEqual {
				return fmt.Errorf("the marketplace charged %s for %s ingested", rep.ChargedValue, rep.IngestedValue)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.IntVar(&o.Instances, "instances", 10_000, "pay-per-use instances")
	f.IntVar(&o.Records, "records", 3, "usage records per instance in the hour")
	f.StringVar(&o.BinDir, "bin-dir", "bin", "directory of the Temporal CLI (built there when missing)")
	f.StringVar(&o.StateDir, "state-dir", "", "directory for the private servers (default: a temporary one, removed afterwards)")
	f.BoolVar(&asJSON, "json", false, "print the report as JSON")
	return cmd
}

// newUsageCmd holds the operator's usage push commands.
func newUsageCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "usage",
		Short: "Pay-per-use usage push: resume a parked instance's push, show an instance's usage totals",
	}
	resume := &cobra.Command{
		Use:   "resume <instanceId>",
		Short: "Resume the usage push of an instance the marketplace refused (after fixing the cause with it)",
		Long: "The marketplace answered 001, 006, 009, 012 or 013 for a record of the instance, so its usage push was parked\n" +
			"with the alert usage-push-parked. This resumes it: its pending records go with the next hourly push, and the\n" +
			"alert is resolved.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withUsageStore(cmd, func(st *usagepush.Store) error {
				was, err := st.Resume(cmd.Context(), args[0])
				if err != nil {
					return err
				}
				if !was {
					return fmt.Errorf("the usage push of instance %s is not parked", args[0])
				}
				fmt.Fprintf(cmd.OutOrStdout(), "usage push of %s resumed: its pending records go with the next push\n", args[0])
				return nil
			})
		},
	}
	show := &cobra.Command{
		Use:   "show <instanceId>",
		Short: "Show an instance's usage: ingested, pushed and charged, refused, pending, parked and why, the latest windows",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withUsageStore(cmd, func(st *usagepush.Store) error {
				t, err := st.InstanceUsage(cmd.Context(), args[0], 24)
				if err != nil {
					return err
				}
				return printJSON(cmd, t)
			})
		},
	}
	cmd.AddCommand(resume, show)
	return cmd
}

func withUsageStore(cmd *cobra.Command, f func(*usagepush.Store) error) error {
	cfg, _, err := setup()
	if err != nil {
		return err
	}
	if err := cfg.Require(config.EnvDatabaseURL); err != nil {
		return err
	}
	pool, err := store.Open(cmd.Context(), cfg.DatabaseURL.Reveal())
	if err != nil {
		return err
	}
	defer pool.Close()
	return f(&usagepush.Store{Pool: pool})
}
