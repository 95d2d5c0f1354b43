package main

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/kooflow/kooflow/activities"
	"github.com/kooflow/kooflow/internal/app"
	"github.com/kooflow/kooflow/internal/bench"
	"github.com/kooflow/kooflow/internal/config"
	"github.com/kooflow/kooflow/internal/ledger"
	"github.com/kooflow/kooflow/internal/settlement"
	"github.com/kooflow/kooflow/worker"
	"github.com/kooflow/kooflow/workflows"
)

// newSettleCmd groups the settlement operator commands. The benchmark is `kooflow bench`, a development command;
// it stays reachable here, hidden, as `kooflow settle bench`.
func newSettleCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "settle",
		Short: "Monthly settlement: close a period, estimate the running month, keep the schedule",
		Long: `settle closes, estimates and schedules the monthly settlement of a deployment. The settlement benchmark,
which starts its own servers and generates synthetic orders, is the development command "kooflow bench".`,
	}
	cmd.AddGroup(&cobra.Group{ID: groupProduction, Title: "Production commands (against the deployment's Temporal and PostgreSQL):"})
	for _, c := range []*cobra.Command{newSettleCloseCmd(), newSettleEstimateCmd(), newSettleScheduleCmd()} {
		c.GroupID = groupProduction
		cmd.AddCommand(c)
	}
	bench := newSettleBenchCmd()
	bench.Hidden = true
	cmd.AddCommand(bench)
	return cmd
}

func newSettleCloseCmd() *cobra.Command {
	var period string
	var types []string
	var wait bool
	cmd := &cobra.Command{
		Use:   "close",
		Short: "Start (or re-run) the settlement workflow of a period and print its bills",
		Long: `close starts the workflow settlement/<period> on the worker's task queue. A period whose bills are closed
is verified against their content hashes and returns the same bills; otherwise its bills are computed.`,
		RunE: withDeps(nil, func(cmd *cobra.Command, d app.Deps) error {
			p, err := settlement.ParsePeriod(period)
			if err != nil {
				return err
			}
			ts, err := ledger.ParseProductTypes(types)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			run, err := workflows.StartSettlementPeriod(ctx, d.Temporal,
				workflows.SettlementPeriodInput{Period: p.String(), ProductTypes: ts, RequestedBy: "cli " + os.Getenv("USER")},
				workflows.SettlementStart{TaskQueue: d.Config.TaskQueue, Summary: "close " + p.String() + " (kooflow settle close)"})
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "started %s (run %s)\n", run.GetID(), run.GetRunID())
			if !wait {
				return nil
			}
			var res workflows.SettlementPeriodResult
			if err := run.Get(ctx, &res); err != nil {
				return fmt.Errorf("settlement workflow %s: %w", run.GetID(), err)
			}
			return printJSON(cmd, res)
		}),
	}
	cmd.Flags().StringVar(&period, "period", settlement.PeriodOf(time.Now()).Prev().String(), "period to close, YYYY-MM")
	cmd.Flags().StringSliceVar(&types, "product-type", nil, "product types to close (general, joint-operation); default all")
	cmd.Flags().BoolVar(&wait, "wait", true, "wait for the bills and print them")
	return cmd
}

func newSettleEstimateCmd() *cobra.Command {
	var period string
	cmd := &cobra.Command{
		Use:   "estimate",
		Short: "Print the estimate (预估) of a period's bills as of now, writing nothing",
		RunE: withDeps(nil, func(cmd *cobra.Command, d app.Deps) error {
			p, err := settlement.ParsePeriod(period)
			if err != nil {
				return err
			}
			est, err := (&ledger.Store{Pool: d.Pool}).Estimate(cmd.Context(), ledger.EstimateRequest{Period: p, AsOf: time.Now(),
				Terms: activities.SettlementTerms(d.Catalog), Threshold: d.Config.SettlementThreshold})
			if err != nil {
				return err
			}
			return printJSON(cmd, est)
		}),
	}
	cmd.Flags().StringVar(&period, "period", settlement.PeriodOf(time.Now()).String(), "period, YYYY-MM (default the running month)")
	return cmd
}

func newSettleScheduleCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "schedule",
		Short: "Create or update the settlement Temporal Schedule (the worker also does this at start)",
		RunE: withDeps(nil, func(cmd *cobra.Command, d app.Deps) error {
			ctx := cmd.Context()
			sc := worker.SettlementScheduleFrom(d.Config)
			if err := worker.EnsureSettlementSchedule(ctx, d.Temporal, sc); err != nil {
				return err
			}
			desc, err := d.Temporal.ScheduleClient().GetHandle(ctx, worker.SettlementScheduleID).Describe(ctx)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "schedule %s: paused=%v, next runs (Asia/Shanghai):\n", worker.SettlementScheduleID, desc.Schedule.State.Paused)
			for _, t := range desc.Info.NextActionTimes {
				fmt.Fprintf(cmd.OutOrStdout(), "  %s\n", t.In(settlement.Beijing).Format("2006-01-02 15:04 Mon"))
			}
			return nil
		}),
	}
}

func newSettleBenchCmd() *cobra.Command {
	var o bench.Options
	var period string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Settlement benchmark: close a period of synthetic orders through the real workflow, timed against SQL",
		Long: `bench starts a private Temporal dev server and PostgreSQL (unless TEMPORAL_ADDRESS / DATABASE_URL are set:
then it uses those, and the database must not hold bills for the period), generates --orders eligible orders,
times one plain aggregate SQL query over the same rows (best of three after a warm-up), closes the period through
the settlement workflow, and prints both times, their ratio, the workflow's history length, a cross-check of the
bills against the rows, and the time of a re-run (which verifies the closed bills instead of recomputing them).`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var err error
			if o.Log, o.Period, o.DatabaseURL, err = benchPrelude(period); err != nil {
				return err
			}
			o.TemporalAddress = os.Getenv(config.EnvTemporalAddress)
			rep, err := bench.Run(cmd.Context(), o)
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(cmd, rep)
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "settlement benchmark: %d synthetic eligible orders, period %s\n", rep.Orders, rep.Period)
			fmt.Fprintf(w, "  generate rows            %s\n", rep.Generate.Round(time.Millisecond))
			runs := make([]string, len(rep.PlainQueryRuns))
			for i, r := range rep.PlainQueryRuns {
				runs[i] = r.Round(time.Millisecond).String()
			}
			fmt.Fprintf(w, "  plain aggregate query    %s (best of %s)\n", rep.PlainQuery.Round(time.Millisecond), strings.Join(runs, ", "))
			fmt.Fprintf(w, "  close via workflow       %s (%d batches)  = %.2f× the plain query\n", rep.Close.Round(time.Millisecond), rep.Batches, rep.Ratio)
			fmt.Fprintf(w, "  write floor              %s (%d ledger-width rows, one INSERT … SELECT into an empty table)\n", rep.WriteFloor.Round(time.Millisecond), rep.WriteFloorRows)
			fmt.Fprintf(w, "  close / write floor      %.2f×\n", rep.FloorRatio)
			fmt.Fprintf(w, "  batches (ms each)        %v\n", rep.BatchMillis)
			fmt.Fprintf(w, "  workflow history         %d events\n", rep.HistoryEvents)
			fmt.Fprintf(w, "  re-run (verify)          %s, same content hash: %v\n", rep.Rerun.Round(time.Millisecond), rep.RerunSameHash)
			fmt.Fprintf(w, "  cross-check              %s\n", rep.CrossCheck)
			for _, b := range rep.Bills {
				fmt.Fprintf(w, "  bill %s/%-15s %-15s lines %-8d revenue %s fee %s due %s hash %s\n", b.Period, b.ProductType, b.Status,
					b.LineCount, b.Revenue.StringFixed(2), b.PlatformFee.StringFixed(2), b.AmountDue.StringFixed(2), b.ContentHash[:16])
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.IntVar(&o.Orders, "orders", 1_000_000, "synthetic eligible orders to generate")
	f.StringVar(&period, "period", settlement.PeriodOf(time.Now()).Prev().String(), "period the orders fall in (must have ended)")
	f.IntVar(&o.Parallelism, "parallelism", workflows.DefaultSettlementParallelism, "batch activities run at once")
	f.IntVar(&o.BatchSize, "batch-size", ledger.DefaultBatchSize, "instances per batch")
	f.StringVar(&o.BinDir, "bin-dir", "bin", "directory of the Temporal CLI (built there when missing)")
	f.StringVar(&o.StateDir, "state-dir", "", "directory for the private servers (default: a temporary one, removed afterwards)")
	f.BoolVar(&asJSON, "json", false, "print the report as JSON")
	return cmd
}

// benchPrelude is how the settlement and reconciliation benchmarks begin: the configured logger, --period, and
// the database to use instead of a private one (DATABASE_URL; empty starts a private one).
func benchPrelude(period string) (*slog.Logger, settlement.Period, string, error) {
	_, log, err := setup()
	if err != nil {
		return nil, settlement.Period{}, "", err
	}
	p, err := settlement.ParsePeriod(period)
	if err != nil {
		return nil, settlement.Period{}, "", err
	}
	return log, p, os.Getenv(config.EnvDatabaseURL), nil
}

func printJSON(cmd *cobra.Command, v any) error {
	enc := json.NewEncoder(cmd.OutOrStdout())
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
