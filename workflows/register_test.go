package workflows

import (
	"go.temporal.io/sdk/workflow"

	"github.com/kooflow/kooflow/internal/instance"
)

// workflowRegistry is the part of a worker or test environment that registers workflows.
type workflowRegistry interface {
	RegisterWorkflowWithOptions(w interface{}, options workflow.RegisterOptions)
}

// registerForTest registers the workflows of this package under their registered names, as worker.RegisterWorkflows
// does (which this package's tests cannot import).
func registerForTest(r workflowRegistry, cfg LifecycleConfig) {
	r.RegisterWorkflowWithOptions(SelfCheck, workflow.RegisterOptions{Name: SelfCheckWorkflowType})
	r.RegisterWorkflowWithOptions((&Lifecycle{Config: cfg}).Run, workflow.RegisterOptions{Name: instance.WorkflowType})
	r.RegisterWorkflowWithOptions(SettlementPeriod, workflow.RegisterOptions{Name: SettlementPeriodWorkflowType})
	r.RegisterWorkflowWithOptions(SettlementTick, workflow.RegisterOptions{Name: SettlementTickWorkflowType})
}
