package workflows

import (
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/kooflow/kooflow/activities"
)

// SelfCheckWorkflowType is the registered name of SelfCheck.
const SelfCheckWorkflowType = "SelfCheck"

// SelfCheck proves the wiring an operator depends on: the API started it through Temporal, a worker ran it, and
// its activity wrote a row to PostgreSQL. `POST /console/v1/selfcheck` runs it and waits for the result.
func SelfCheck(ctx workflow.Context, in activities.SelfCheckInput) (activities.SelfCheckResult, error) {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 10 * time.Second,
		Summary:             "record the self-check row in PostgreSQL",
		RetryPolicy:         &temporal.RetryPolicy{MaximumAttempts: 5},
	})
	var out activities.SelfCheckResult
	var a *activities.SelfCheck
	err := workflow.ExecuteActivity(ctx, a.RecordSelfCheck, in).Get(ctx, &out)
	return out, err
}
