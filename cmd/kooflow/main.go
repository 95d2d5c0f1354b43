// Command kooflow is the seller side of a KooGallery SaaS listing: `kooflow api` serves the production interface
// and the console, `kooflow worker` runs the instance and settlement workflows, `kooflow migrate` applies the SQL
// schema, and `kooflow dev` runs all of it on one machine with a Temporal dev server and a private PostgreSQL.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/kooflow/kooflow/internal/config"
	"github.com/kooflow/kooflow/internal/logging"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	root := &cobra.Command{
		Use:           "kooflow",
		Short:         "KooGallery seller-side order lifecycle on Temporal",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newAPICmd(), newWorkerCmd(), newMigrateCmd(), newDevCmd(), newHealthcheckCmd())
	root.AddCommand(newLoadCmd())
	root.AddCommand(newEmulatorCmd())
	root.AddCommand(newSettleCmd())
	if err := root.ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "kooflow:", err)
		os.Exit(1)
	}
}

// setup reads the configuration and builds the process logger.
func setup() (config.Config, *slog.Logger, error) {
	cfg, err := config.FromEnv(config.OSLookup)
	if err != nil {
		return cfg, nil, err
	}
	log, err := logging.New(os.Stderr, cfg.LogFormat, cfg.LogLevel)
	if err != nil {
		return cfg, nil, err
	}
	slog.SetDefault(log)
	return cfg, log, nil
}
