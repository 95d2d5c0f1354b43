package worker

import (
	sdkworker "go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/kooflow/kooflow/activities"
	"github.com/kooflow/kooflow/internal/instance"
	"github.com/kooflow/kooflow/workflows"
)

// RegisterWorkflows registers every kooflow workflow under its stable registered name. The names are part of
// the contract with histories already in Temporal: renaming one breaks every running workflow of that type.
func RegisterWorkflows(r sdkworker.WorkflowRegistry, lc workflows.LifecycleConfig) {
	r.RegisterWorkflowWithOptions(workflows.SelfCheck, workflow.RegisterOptions{Name: workflows.SelfCheckWorkflowType})
	r.RegisterWorkflowWithOptions((&workflows.Lifecycle{Config: lc}).Run, workflow.RegisterOptions{Name: instance.WorkflowType})
	r.RegisterWorkflowWithOptions(workflows.SettlementPeriod, workflow.RegisterOptions{Name: workflows.SettlementPeriodWorkflowType})
	r.RegisterWorkflowWithOptions(workflows.SettlementTick, workflow.RegisterOptions{Name: workflows.SettlementTickWorkflowType})
	r.RegisterWorkflowWithOptions(workflows.UsagePush, workflow.RegisterOptions{Name: workflows.UsagePushWorkflowType})
}

// Activities are every activity receiver a worker registers. Activities are registered by method name, so each
// receiver's method names are unique across all of them (settlement's carry the Settlement prefix).
type Activities struct {
	SelfCheck  *activities.SelfCheck
	Lifecycle  *activities.Lifecycle
	Settlement *activities.Settlement
	UsagePush  *activities.UsagePush
}

// RegisterActivities registers the receivers that are set.
func RegisterActivities(r sdkworker.ActivityRegistry, a Activities) {
	if a.SelfCheck != nil {
		r.RegisterActivity(a.SelfCheck)
	}
	if a.Lifecycle != nil {
		r.RegisterActivity(a.Lifecycle)
	}
	if a.Settlement != nil {
		r.RegisterActivity(a.Settlement)
	}
	if a.UsagePush != nil {
		r.RegisterActivity(a.UsagePush)
	}
}
