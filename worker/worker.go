// Package worker runs kooflow's Temporal worker: it registers every workflow and activity on the task queue and
// polls until its context ends, then stops gracefully (in-flight activities get time to finish).
package worker

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"go.temporal.io/sdk/client"
	sdkworker "go.temporal.io/sdk/worker"

	"github.com/kooflow/kooflow/config"
)

// Deps are the worker's long-lived dependencies.
type Deps struct {
	Config   config.Config
	Log      *slog.Logger
	Pool     *pgxpool.Pool
	Temporal client.Client
}

// Identity names this worker process in Temporal's history and in the rows its activities write.
func Identity() string {
	host, _ := os.Hostname()
	return fmt.Sprintf("kooflow-worker@%s/%d", host, os.Getpid())
}

// New builds a worker with everything registered, without starting it.
func New(ctx context.Context, d Deps) (sdkworker.Worker, error) {
	w := sdkworker.New(d.Temporal, d.Config.TaskQueue, sdkworker.Options{
		Identity:                           Identity(),
		WorkerStopTimeout:                  20 * time.Second,
		EnableSessionWorker:                false,
		MaxConcurrentActivityExecutionSize: 200,
	})
	if err := register(ctx, w, d); err != nil {
		return nil, err
	}
	return w, nil
}

// Run starts the worker and blocks until ctx ends.
func Run(ctx context.Context, d Deps) error {
	w, err := New(ctx, d)
	if err != nil {
		return err
	}
	if err := w.Start(); err != nil {
		return fmt.Errorf("start worker on task queue %s: %w", d.Config.TaskQueue, err)
	}
	d.Log.Info("worker polling", "task_queue", d.Config.TaskQueue, "namespace", d.Config.TemporalNamespace, "identity", Identity())
	<-ctx.Done()
	d.Log.Info("worker stopping: finishing in-flight tasks")
	w.Stop()
	return nil
}
