package main

import (
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/kooflow/kooflow/internal/config"
	"github.com/kooflow/kooflow/internal/usagebench"
)

// withUsageBench adds `usage` under the bench command: `kooflow bench usage`.
func withUsageBench(bench *cobra.Command) *cobra.Command {
	bench.AddCommand(newUsageBenchCmd())
	return bench
}

func newUsageBenchCmd() *cobra.Command {
	var o usagebench.Options
	var asJSON bool
	var minRate float64
	cmd := &cobra.Command{
		Use:   "usage",
		Short: "Usage intake benchmark: N clients post 1,000-record batches through the real API; prints records/s",
		Long: `usage starts a private PostgreSQL (unless DATABASE_URL names a scratch database), creates pay-per-use
instances, serves the real router on loopback, and has -c clients post batches of usage records to
POST /usage/v1/records over HTTP for --duration after a warm-up. It prints accepted records per second, the batch
latency, and checks that every accepted record was stored exactly once.

  kooflow bench usage -c 16 --duration 20s`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, log, err := setup()
			if err != nil {
				return err
			}
			o.Log = log
			o.DatabaseURL = os.Getenv(config.EnvDatabaseURL)
			rep, err := usagebench.Run(cmd.Context(), o)
			if err != nil {
				return err
			}
			if asJSON {
				if err := printJSON(cmd, rep); err != nil {
					return err
				}
			} else {
				w := cmd.OutOrStdout()
				fmt.Fprintf(w, "usage intake: %d clients, %d records per call, %s measured\n", rep.Clients, rep.Batch, rep.Duration.Round(time.Millisecond))
				fmt.Fprintf(w, "  accepted        %d records in %d calls\n", rep.Records, rep.Calls)
				fmt.Fprintf(w, "  throughput      %.0f records/s\n", rep.RecordsPerSec)
				fmt.Fprintf(w, "  call latency    p50 %s  p99 %s  max %s\n", rep.P50.Round(time.Millisecond), rep.P99.Round(time.Millisecond), rep.Max.Round(time.Millisecond))
				fmt.Fprintf(w, "  stored          %d rows = %d accepted (warm-up included)\n", rep.Stored, rep.Sent)
			}
			if minRate > 0 && rep.RecordsPerSec < minRate {
				return fmt.Errorf("%.0f records/s is below --min-rate %.0f", rep.RecordsPerSec, minRate)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.IntVarP(&o.Clients, "concurrency", "c", 16, "concurrent clients")
	f.DurationVar(&o.Duration, "duration", 20*time.Second, "measured time")
	f.DurationVar(&o.Warmup, "warmup", 3*time.Second, "time sent first and left out of the figures")
	f.IntVar(&o.Batch, "batch", 1000, "records per call (at most 1000)")
	f.IntVar(&o.Instances, "instances", 1000, "pay-per-use instances the records spread over")
	f.BoolVar(&asJSON, "json", false, "print the report as JSON")
	f.Float64Var(&minRate, "min-rate", 0, "exit with an error below this many records/s (0: report only)")
	return cmd
}
