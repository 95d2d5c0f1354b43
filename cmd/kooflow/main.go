// Command kooflow is the seller side of a KooGallery SaaS listing: `kooflow api` serves the production interface
// and the console, `kooflow worker` runs the instance and settlement workflows, `kooflow migrate` applies the SQL
// schema, and `kooflow dev` runs all of it on one machine with a Temporal dev server and a private PostgreSQL.
// `kooflow --help` lists the commands a deployment runs apart from the ones for a developer's machine.
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
	if err := newRootCmd().ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "kooflow:", err)
		os.Exit(1)
	}
}

// Command groups of `kooflow --help`. An operator should see at a glance which commands belong in a deployment and
// which ones start local servers, play the marketplace or generate load, and must never be pointed at production.
const (
	groupProduction  = "production"
	groupDevelopment = "development"
)

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "kooflow",
		Short:         "KooGallery seller-side order lifecycle on Temporal",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddGroup(
		&cobra.Group{ID: groupProduction, Title: "Production commands (what a deployment runs):"},
		&cobra.Group{ID: groupDevelopment, Title: "Development commands (local stack, emulator, load and benchmarks; not for production):"},
	)
	add := func(group string, cmds ...*cobra.Command) {
		for _, c := range cmds {
			c.GroupID = group
			root.AddCommand(c)
		}
	}
	add(groupProduction, newAPICmd(), newWorkerCmd(), newMigrateCmd(), newHealthcheckCmd(), newSettleCmd(), newKeysCmd())
	add(groupProduction, newKitCmd())
	add(groupProduction, newReconCmd())
	add(groupProduction, newUsageCmd())
	// The settlement benchmark sits with the other development commands rather than under settle, whose
	// subcommands all act on a deployment; `kooflow settle bench` still runs it.
	add(groupDevelopment, newDevCmd(), newEmulatorCmd(), newLoadCmd(), withLifecycleBench(withUsagePushBench(withUsageBench(newSettleBenchCmd()))))
	return root
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
