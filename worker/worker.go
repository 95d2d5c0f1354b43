// Package worker runs kooflow's Temporal worker: it builds every activity's dependencies from the configuration,
// registers every workflow and activity on the task queue, and polls until its context ends, then stops
// gracefully (in-flight activities get time to finish). It also owns the settlement Schedule, which cmd creates
// or updates explicitly at worker start (EnsureSettlementSchedule).
package worker

import (
	"context"
	"fmt"
	"os"
	"time"

	sdkworker "go.temporal.io/sdk/worker"

	"github.com/kooflow/kooflow/activities"
	"github.com/kooflow/kooflow/internal/app"
	"github.com/kooflow/kooflow/internal/store"
)

// Identity names this worker process in Temporal's history and in the rows its activities write.
func Identity() string {
	host, _ := os.Hostname()
	return fmt.Sprintf("kooflow-worker@%s/%d", host, os.Getpid())
}

// New builds a worker with everything registered, without starting it.
func New(d app.Deps) (sdkworker.Worker, error) {
	lc, lcfg, err := lifecycleActivities(d)
	if err != nil {
		return nil, err
	}
	st, err := settlementActivities(d)
	if err != nil {
		return nil, err
	}
	up, err := usagePushActivities(d)
	if err != nil {
		return nil, err
	}
	w := sdkworker.New(d.Temporal, d.Config.TaskQueue, sdkworker.Options{
		Identity:                           Identity(),
		WorkerStopTimeout:                  20 * time.Second,
		EnableSessionWorker:                false,
		MaxConcurrentActivityExecutionSize: 200,
	})
	RegisterWorkflows(w, lcfg)
	RegisterActivities(w, Activities{
		SelfCheck:  &activities.SelfCheck{Store: &store.Store{Pool: d.Pool}, Worker: Identity()},
		Lifecycle:  lc,
		Settlement: st,
		UsagePush:  up,
	})
	return w, nil
}

// Run starts the worker and blocks until ctx ends. The sticky workflow cache is the SDK's, shared by every
// worker of the process and sized before the first one starts, so it is set here, once per process, from
// KOOFLOW_STICKY_CACHE_SIZE: it bounds how many idle instance workflows the worker holds in memory.
func Run(ctx context.Context, d app.Deps) error {
	if d.Config.StickyCacheSize > 0 {
		sdkworker.SetStickyWorkflowCacheSize(d.Config.StickyCacheSize)
	}
	w, err := New(d)
	if err != nil {
		return err
	}
	if err := w.Start(); err != nil {
		return fmt.Errorf("start worker on task queue %s: %w", d.Config.TaskQueue, err)
	}
	wctx, stopWatch := context.WithCancel(ctx)
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		NewExpiryWatch(d).Run(wctx)
	}()
	d.Log.Info("worker polling", "task_queue", d.Config.TaskQueue, "namespace", d.Config.TemporalNamespace, "identity", Identity(),
		"sticky_cache_size", d.Config.StickyCacheSize)
	<-ctx.Done()
	d.Log.Info("worker stopping: finishing in-flight tasks")
	stopWatch()
	<-watched
	w.Stop()
	return nil
}
