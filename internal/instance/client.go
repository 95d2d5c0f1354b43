package instance

import (
	"context"
	"errors"
	"fmt"

	"github.com/kooflow/kooflow/internal/refusal"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
)

// ErrNoWorkflow means the instance has no running workflow: it was never started, or its run has closed
// (released). Errors from Client wrap it so callers can tell it apart with errors.Is.
var ErrNoWorkflow = errors.New("no running workflow for the instance")

// Client sends Updates and Queries to instance workflows and gives their failures the contract's meaning: a
// step the workflow refused comes back as a refusal (refusal.As), a missing or closed workflow wraps
// ErrNoWorkflow, anything else (Temporal unreachable, a deadline) is wrapped with the step and instance. The
// gateway and the console both go through it, so a refusal reads the same wherever it surfaces.
type Client struct {
	Temporal client.Client
}

// Update sends one Update to the instance's workflow and waits until it completes, decoding its result into
// out (which may be nil). updateID deduplicates: a retry with the same ID returns the first result.
func (c Client) Update(ctx context.Context, instanceID, name, updateID string, arg, out any) error {
	handle, err := c.Temporal.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{
		WorkflowID:   WorkflowID(instanceID),
		UpdateName:   name,
		UpdateID:     updateID,
		WaitForStage: client.WorkflowUpdateStageCompleted,
		Args:         []any{arg},
	})
	if err == nil {
		err = handle.Get(ctx, out)
	}
	return c.wrap(err, name, instanceID)
}

// Query runs a Query on the instance's workflow and decodes its answer into out.
func (c Client) Query(ctx context.Context, instanceID, name string, out any, args ...any) error {
	v, err := c.Temporal.QueryWorkflow(ctx, WorkflowID(instanceID), "", name, args...)
	if err == nil {
		err = v.Get(out)
	}
	return c.wrap(err, name, instanceID)
}

func (c Client) wrap(err error, name, instanceID string) error {
	if err == nil {
		return nil
	}
	if _, ok := refusal.As(err); ok {
		return err
	}
	var nf *serviceerror.NotFound
	if errors.As(err, &nf) {
		return fmt.Errorf("%s on instance %s: %w (%v)", name, instanceID, ErrNoWorkflow, err)
	}
	return fmt.Errorf("%s on instance %s: %w", name, instanceID, err)
}
