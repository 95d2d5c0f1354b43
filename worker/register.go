package worker

import (
	"context"

	sdkworker "go.temporal.io/sdk/worker"

	"github.com/kooflow/kooflow/activities"
	settlementflow "github.com/kooflow/kooflow/settlement/flow"
	"github.com/kooflow/kooflow/workflows"
)

// register wires every workflow and activity with its dependencies. Each area adds its lines here.
func register(ctx context.Context, w sdkworker.Worker, d Deps) error {
	workflows.Register(w)
	w.RegisterActivity(&activities.SelfCheck{Pool: d.Pool, Worker: Identity()})
	lc, lcfg, err := lifecycleDeps(d)
	if err != nil {
		return err
	}
	workflows.RegisterLifecycle(w, lcfg)
	w.RegisterActivity(lc)
	if err := settlementflow.Register(ctx, w, settlementflow.Deps{Config: d.Config, Log: d.Log, Pool: d.Pool, Temporal: d.Temporal}); err != nil {
		return err
	}
	return nil
}
