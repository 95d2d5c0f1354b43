// Package workflows holds kooflow's Temporal workflows. Workflow code is deterministic orchestration only (checked
// by workflowcheck in CI); business rules live in plain Go packages and I/O in activities.
package workflows

import (
	"go.temporal.io/sdk/workflow"
)

// Registry is the part of a Temporal worker that registers workflows.
type Registry interface {
	RegisterWorkflowWithOptions(w interface{}, options workflow.RegisterOptions)
}

// Register registers every workflow of this package under its stable name.
func Register(r Registry) {
	r.RegisterWorkflowWithOptions(SelfCheck, workflow.RegisterOptions{Name: SelfCheckWorkflowType})
}
