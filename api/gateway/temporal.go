package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/kooflow/kooflow/instance"
	"github.com/kooflow/kooflow/koogallery"
)

// TemporalBackend dispatches activities to the instance workflows (design decision 2) and reads queryInstance
// from the PostgreSQL read model.
//
// Update IDs come from each call's business key (instance.UpdateID), never from businessId, nonce or timestamp,
// so a marketplace retry of the same step is deduplicated by Temporal and returns the first answer. The one
// exception is updateInstanceStatus: FREEZE → UNFREEZE → FREEZE are three real steps in one run, and a key of
// (instance, status) would turn the second FREEZE into a replay of the first. Its Update ID is therefore unique
// per delivery (the nonce, itself accepted once); a retried FREEZE becomes a second Update, which is harmless
// because the workflow is idempotent by state (freezing a frozen instance succeeds without doing anything).
type TemporalBackend struct {
	Client    client.Client
	TaskQueue string
	Pool      *pgxpool.Pool
}

// startSummary is what the Temporal web UI shows for an instance's workflow; it carries no personal data.
func startSummary(c NewInstanceCall) string {
	s := "KooGallery order " + c.OrderID + " line " + c.OrderLineID
	if c.TestFlag {
		s += " (dial test)"
	}
	return s
}

// NewInstance is Update-With-Start: the workflow is started if it does not exist (its StartInput names the
// order, so it proceeds even if the Update is lost) and the newInstance Update is sent to it in the same call.
func (b *TemporalBackend) NewInstance(ctx context.Context, c NewInstanceCall) (NewInstanceOutcome, error) {
	id := instance.ID(c.OrderID, c.OrderLineID)
	wfID := instance.WorkflowID(id)
	start := b.Client.NewWithStartWorkflowOperation(client.StartWorkflowOptions{
		ID:                       wfID,
		TaskQueue:                b.TaskQueue,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
		// A released instance's workflow is closed and must never run again for the same order.
		WorkflowIDReusePolicy: enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE,
		TypedSearchAttributes: temporal.NewSearchAttributes(
			instance.SAOrderID.ValueSet(c.OrderID),
			instance.SAInstanceID.ValueSet(id),
			instance.SALifecycleState.ValueSet(string(instance.LifecycleProvisioning)),
			instance.SATestFlag.ValueSet(c.TestFlag),
		),
		StaticSummary: startSummary(c),
	}, instance.WorkflowType, instance.StartInput{
		InstanceID: id, OrderID: c.OrderID, OrderLineID: c.OrderLineID, BusinessID: c.BusinessID,
		TestFlag: c.TestFlag, ReceivedAt: c.ReceivedAt,
	})

	// Leave part of the budget for finding out whether the start landed if the Update does not return in time.
	updCtx := ctx
	if dl, ok := ctx.Deadline(); ok {
		remaining := time.Until(dl)
		var cancel context.CancelFunc
		updCtx, cancel = context.WithDeadline(ctx, dl.Add(-min(remaining/4, 750*time.Millisecond)))
		defer cancel()
	}
	var res instance.NewInstanceResult
	handle, err := b.Client.UpdateWithStartWorkflow(updCtx, client.UpdateWithStartWorkflowOptions{
		StartWorkflowOperation: start,
		UpdateOptions: client.UpdateWorkflowOptions{
			UpdateName:   instance.UpdateNewInstance,
			UpdateID:     instance.UpdateID("newInstance", c.OrderID, c.OrderLineID),
			WaitForStage: client.WorkflowUpdateStageCompleted,
			Args: []any{instance.NewInstanceRequest{
				OrderID: c.OrderID, OrderLineID: c.OrderLineID, BusinessID: c.BusinessID,
				TestFlag: c.TestFlag, ReceivedAt: c.ReceivedAt,
			}},
		},
	})
	if err == nil {
		err = handle.Get(updCtx, &res)
	}
	switch {
	case err == nil:
		if res.InstanceID == "" {
			res.InstanceID = id
		}
		out := NewInstanceOutcome{Result: res}
		if !res.Provisioned {
			// Temporal answers a retried Update with its first result, "in progress", however long ago that
			// was; the read model says whether provisioning has finished since.
			done, lifecycle, rerr := b.provisioned(ctx, id)
			switch {
			case rerr != nil:
				out.Note = "could not consult the read model: " + rerr.Error()
			case done:
				out.Result.Provisioned = true
				out.Note = "provisioning finished since the first answer (read model: " + lifecycle + ")"
			}
		}
		return out, nil
	case isAlreadyStarted(err):
		// The workflow ran and closed (the instance was released, or the run ended otherwise): the order still
		// has its instance, so answer from the read model with the same instanceId.
		return b.closedInstance(ctx, id, err)
	case updCtx.Err() != nil:
		// The Update did not come back in time. If the start is durable, the workflow proceeds from its
		// StartInput and the marketplace gets the instanceId now; otherwise it must retry.
		if _, derr := b.Client.DescribeWorkflowExecution(ctx, wfID, ""); derr != nil {
			return NewInstanceOutcome{}, fmt.Errorf("newInstance Update did not return in time and the workflow cannot be confirmed (%v): %w", derr, err)
		}
		return NewInstanceOutcome{
			Result: instance.NewInstanceResult{InstanceID: id},
			Note:   "the newInstance Update did not return before the deadline; the workflow exists, so 000004 (" + err.Error() + ")",
		}, nil
	}
	return NewInstanceOutcome{}, fmt.Errorf("newInstance Update-With-Start on %s: %w", wfID, err)
}

func isAlreadyStarted(err error) bool {
	var started *serviceerror.WorkflowExecutionAlreadyStarted
	return errors.As(err, &started)
}

// provisioned reports from the read model whether the instance's provisioning has finished (or the instance has
// moved on, e.g. released); found is false when the workflow has not written its row yet.
func (b *TemporalBackend) provisioned(ctx context.Context, id string) (done bool, lifecycle string, err error) {
	err = b.Pool.QueryRow(ctx, `SELECT lifecycle, provisioned_at IS NOT NULL OR lifecycle <> 'PROVISIONING'
		FROM instances WHERE instance_id = $1`, id).Scan(&lifecycle, &done)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, "", nil
	}
	if err != nil {
		return false, "", fmt.Errorf("read instance %s: %w", id, err)
	}
	return done, lifecycle, nil
}

// closedInstance answers a newInstance whose workflow is closed from the instances table.
func (b *TemporalBackend) closedInstance(ctx context.Context, id string, cause error) (NewInstanceOutcome, error) {
	done, lifecycle, err := b.provisioned(ctx, id)
	if err != nil {
		return NewInstanceOutcome{}, err
	}
	if lifecycle == "" {
		return NewInstanceOutcome{}, fmt.Errorf("the workflow of instance %s is closed and the read model has no row for it: %w", id, cause)
	}
	if !done {
		return NewInstanceOutcome{}, fmt.Errorf("the workflow of instance %s closed before provisioning finished: %w", id, cause)
	}
	return NewInstanceOutcome{
		Result: instance.NewInstanceResult{InstanceID: id, Provisioned: true},
		Note:   "the workflow is closed (lifecycle " + lifecycle + "); answered from the read model",
	}, nil
}

// update sends one Update to an existing instance workflow and waits for its result.
func (b *TemporalBackend) update(ctx context.Context, instanceID, name, updateID string, arg any) error {
	handle, err := b.Client.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{
		WorkflowID:   instance.WorkflowID(instanceID),
		UpdateName:   name,
		UpdateID:     updateID,
		WaitForStage: client.WorkflowUpdateStageCompleted,
		Args:         []any{arg},
	})
	if err == nil {
		err = handle.Get(ctx, nil)
	}
	if err == nil {
		return nil
	}
	if isNotFound(err) {
		return fmt.Errorf("%w: %s (%v)", ErrUnknownInstance, instanceID, err)
	}
	if _, ok := instance.AsRefusal(err); ok {
		return err
	}
	return fmt.Errorf("%s Update on instance %s: %w", name, instanceID, err)
}

// isNotFound reports a workflow that does not exist or whose run has closed (an Update cannot reach it).
func isNotFound(err error) bool {
	var nf *serviceerror.NotFound
	return errors.As(err, &nf)
}

// Refresh moves the instance's expiry (renewal, trial to formal, renewal refund, renewal with change); its
// Update ID is the scene and the order, so a retry of the same renewal is one step.
func (b *TemporalBackend) Refresh(ctx context.Context, instanceID string, r instance.RefreshRequest) error {
	return b.update(ctx, instanceID, instance.UpdateRefreshInstance, instance.UpdateID("refresh", r.Scene, r.OrderID, r.OrderLineID), r)
}

// UpdateStatus freezes or unfreezes; see the type's comment for why its Update ID is per delivery.
func (b *TemporalBackend) UpdateStatus(ctx context.Context, instanceID, deliveryID string, r instance.StatusRequest) error {
	return b.update(ctx, instanceID, instance.UpdateStatus, instance.UpdateID("status", r.Status, deliveryID), r)
}

// Release ends the instance; an instance is released once, so its Update ID is constant.
func (b *TemporalBackend) Release(ctx context.Context, instanceID string, r instance.ReleaseRequest) error {
	return b.update(ctx, instanceID, instance.UpdateRelease, instance.UpdateID("release"), r)
}

// Upgrade applies an upgrade order; its Update ID is the order.
func (b *TemporalBackend) Upgrade(ctx context.Context, instanceID string, r instance.UpgradeRequest) error {
	return b.update(ctx, instanceID, instance.UpdateUpgrade, instance.UpdateID("upgrade", r.OrderID, r.OrderLineID), r)
}

// ChangeCheck asks the workflow, by Query, whether a renewal with this target spec is acceptable. A Query
// changes nothing, so it needs no deduplication.
func (b *TemporalBackend) ChangeCheck(ctx context.Context, instanceID string, r instance.ChangeCheckRequest) (instance.ChangeCheckResult, error) {
	var res instance.ChangeCheckResult
	v, err := b.Client.QueryWorkflow(ctx, instance.WorkflowID(instanceID), "", instance.QueryChangeCheck, r)
	if err == nil {
		err = v.Get(&res)
	}
	switch {
	case err == nil:
		return res, nil
	case isNotFound(err):
		return res, fmt.Errorf("%w: %s (%v)", ErrUnknownInstance, instanceID, err)
	}
	if _, ok := instance.AsRefusal(err); ok {
		return res, err
	}
	return res, fmt.Errorf("changeInstanceCheck Query on instance %s: %w", instanceID, err)
}

// QueryInstances reads the instances and their access details from the read model, which the lifecycle
// workflow writes once provisioning produced them.
func (b *TemporalBackend) QueryInstances(ctx context.Context, ids []string) ([]InstanceView, error) {
	rows, err := b.Pool.Query(ctx, `SELECT instance_id, lifecycle, app_info FROM instances WHERE instance_id = ANY($1)`, ids)
	if err != nil {
		return nil, fmt.Errorf("query instances: %w", err)
	}
	defer rows.Close()
	var out []InstanceView
	for rows.Next() {
		var v InstanceView
		var lifecycle string
		var app []byte
		if err := rows.Scan(&v.InstanceID, &lifecycle, &app); err != nil {
			return nil, fmt.Errorf("query instances: %w", err)
		}
		v.Lifecycle = instance.Lifecycle(lifecycle)
		if len(app) > 0 && string(app) != "null" {
			var ai koogallery.AppInfo
			if err := json.Unmarshal(app, &ai); err != nil {
				return nil, fmt.Errorf("instance %s has unreadable app_info: %w", v.InstanceID, err)
			}
			v.AppInfo = &ai
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("query instances: %w", err)
	}
	return out, nil
}
