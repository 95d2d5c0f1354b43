package lifecyclebench

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	sdkworker "go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
)

// BareWorkflowType is the registered name of the yardstick workflow.
const BareWorkflowType = "BenchThreeSteps"

// BareThreeSteps is the yardstick: three regular activities that do nothing, one after another. It is what the
// server and one worker can do per second with no work of kooflow's own.
func BareThreeSteps(ctx workflow.Context, id string) (string, error) {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{StartToCloseTimeout: 30 * time.Second})
	out := id
	for _, step := range []string{"reserve", "charge", "notify"} {
		if err := workflow.ExecuteActivity(ctx, "BenchStep", out, step).Get(ctx, &out); err != nil {
			return "", err
		}
	}
	return out, nil
}

// benchStep is the no-op activity.
func benchStep(_ context.Context, in, step string) (string, error) { return in + "|" + step, nil }

// runBare runs n bare workflows, c at a time, with a worker for them inside this process.
func runBare(ctx context.Context, c client.Client, taskQueue string, n, conc int) (time.Duration, int, error) {
	if taskQueue == "" {
		taskQueue = "kooflow-bench-bare"
	}
	w := sdkworker.New(c, taskQueue, sdkworker.Options{})
	w.RegisterWorkflowWithOptions(BareThreeSteps, workflow.RegisterOptions{Name: BareWorkflowType})
	w.RegisterActivityWithOptions(benchStep, activity.RegisterOptions{Name: "BenchStep"})
	if err := w.Start(); err != nil {
		return 0, 0, fmt.Errorf("start the bare workflows' worker: %w", err)
	}
	defer w.Stop()
	prefix := fmt.Sprintf("bench-bare-%d-", time.Now().UnixNano())
	var failed atomic.Int64
	var first sync.Once
	var firstErr error
	start := time.Now()
	each(n, conc, func(i int) {
		id := fmt.Sprintf("%s%d", prefix, i)
		run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id, TaskQueue: taskQueue}, BareWorkflowType, id)
		if err == nil {
			err = run.Get(ctx, nil)
		}
		if err != nil {
			failed.Add(1)
			first.Do(func() { firstErr = err })
		}
	})
	d := time.Since(start)
	if err := ctx.Err(); err != nil {
		return 0, 0, err
	}
	if int(failed.Load()) == n {
		return 0, 0, fmt.Errorf("every bare workflow failed: %w", firstErr)
	}
	return d, int(failed.Load()), nil
}
