package workflows

import (
	"context"
	"fmt"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/kooflow/kooflow/internal/instance"
	"github.com/kooflow/kooflow/internal/settlement"
)

// SettlementStart says how StartSettlementPeriod starts a close.
type SettlementStart struct {
	TaskQueue string
	// Summary is what the Temporal web UI shows for the run (who asked, from where).
	Summary string
	// RefuseIfRunning makes a close of the same period that is already running an error (see
	// temporal.IsWorkflowExecutionAlreadyStartedError) instead of returning that run.
	RefuseIfRunning bool
}

// StartSettlementPeriod starts the settlement workflow of in.Period, from the console, the CLI or the benchmark.
// Its ID is the period's (SettlementWorkflowID), so two closes of one period never run at once; a closed period
// may be closed again, which verifies its bills.
func StartSettlementPeriod(ctx context.Context, c client.Client, in SettlementPeriodInput, o SettlementStart) (client.WorkflowRun, error) {
	p, err := settlement.ParsePeriod(in.Period)
	if err != nil {
		return nil, err
	}
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID:                                       SettlementWorkflowID(p),
		TaskQueue:                                o.TaskQueue,
		WorkflowIDReusePolicy:                    enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
		WorkflowExecutionErrorWhenAlreadyStarted: o.RefuseIfRunning,
		TypedSearchAttributes:                    temporal.NewSearchAttributes(instance.SASettlementPeriod.ValueSet(p.String())),
		StaticSummary:                            o.Summary,
	}, SettlementPeriodWorkflowType, in)
	if err != nil {
		return nil, fmt.Errorf("start the settlement workflow of %s: %w", p, err)
	}
	return run, nil
}
