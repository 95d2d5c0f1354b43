package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
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
	// UpdateWait and StartPoll pace newInstance (see NewInstance); the defaults apply if zero.
	UpdateWait, StartPoll time.Duration
}

// startSummary is what the Temporal web UI shows for an instance's workflow; it carries no personal data.
func startSummary(c NewInstanceCall) string {
	s := "KooGallery order " + c.OrderID + " line " + c.OrderLineID
	if c.TestFlag {
		s += " (dial test)"
	}
	return s
}

// DefaultUpdateWait is how long newInstance waits for the workflow to answer its Update before it starts asking
// Temporal whether the start has become durable, and DefaultStartPoll how long it waits before asking again (the
// interval grows by half each time, up to 100 ms).
//
// The Update's answer adds nothing the marketplace needs at first: provisioning always runs after it, so the
// answer is "in progress" either way. Waiting for it would tie the gateway's latency to the worker's backlog
// (under load a worker may take seconds to reach a new workflow's first task), while the durable start is all
// the marketplace's answer depends on: the workflow proceeds from its StartInput whether or not the Update is
// ever applied.
const (
	DefaultUpdateWait = 25 * time.Millisecond
	DefaultStartPoll  = 20 * time.Millisecond
	maxStartPoll      = 100 * time.Millisecond
)

// NewInstance is Update-With-Start: the workflow is started if it does not exist (its StartInput names the
// order, so it proceeds even if the Update is never applied) and the newInstance Update is sent to it in the
// same call.
//
// Timing: the Update-With-Start runs while the gateway waits. If it answers within UpdateWait, its answer is
// used. After that DescribeWorkflowExecution is asked, at growing intervals from StartPoll: as soon as the workflow is running, the
// answer is 000004 with the instanceId (000000 if the read model shows provisioning finished); if it is closed,
// the read model answers. If neither the Update nor the start has landed when the caller's deadline is near, the
// answer is 000005 and the marketplace retries.
func (b *TemporalBackend) NewInstance(ctx context.Context, c NewInstanceCall) (NewInstanceOutcome, error) {
	id := instance.ID(c.OrderID, c.OrderLineID)
	wfID := instance.WorkflowID(id)
	wait, poll := b.UpdateWait, b.StartPoll
	if wait <= 0 {
		wait = DefaultUpdateWait
	}
	if poll <= 0 {
		poll = DefaultStartPoll
	}
	// Keep part of the caller's budget for a last look after the Update-With-Start gives up.
	last := time.Now().Add(time.Hour)
	if dl, ok := ctx.Deadline(); ok {
		last = dl.Add(-min(time.Until(dl)/4, 750*time.Millisecond))
	}
	uctx, cancel := context.WithDeadline(ctx, last)
	defer cancel() // once answered, the Update-With-Start call is abandoned; the start and the Update stay in Temporal

	type result struct {
		res instance.NewInstanceResult
		err error
	}
	done := make(chan result, 1)
	began := time.Now()
	go func() {
		res, err := b.updateWithStart(uctx, c, id)
		done <- result{res, err}
	}()

	fromResult := func(r result) (NewInstanceOutcome, error) {
		switch {
		case r.err == nil:
			return b.answered(ctx, id, r.res, ""), nil
		case isAlreadyStarted(r.err):
			// The workflow ran and closed (the instance was released, or the run ended otherwise): the order
			// still has its instance, so answer from the read model with the same instanceId.
			return b.closedInstance(ctx, id, r.err)
		case uctx.Err() == nil:
			return NewInstanceOutcome{}, fmt.Errorf("newInstance Update-With-Start on %s: %w", wfID, r.err)
		}
		// The Update-With-Start gave up at the deadline: one last look.
		if running, closed, derr := b.describe(ctx, wfID); running {
			return b.answered(ctx, id, instance.NewInstanceResult{InstanceID: id},
				"the newInstance Update did not complete before the deadline; the workflow runs, so 000004"), nil
		} else if closed {
			return b.closedInstance(ctx, id, r.err)
		} else {
			return NewInstanceOutcome{}, fmt.Errorf("newInstance did not land before the deadline (%v): %w", derr, r.err)
		}
	}

	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		select {
		case r := <-done:
			return fromResult(r)
		case <-timer.C:
		}
		running, closed, _ := b.describe(ctx, wfID)
		switch {
		case running:
			return b.answered(ctx, id, instance.NewInstanceResult{InstanceID: id},
				fmt.Sprintf("answered once the start was durable (%s); the newInstance Update is left to the workflow",
					time.Since(began).Round(time.Millisecond))), nil
		case closed:
			return b.closedInstance(ctx, id, errors.New("the workflow is closed"))
		}
		timer.Reset(poll)
		// Back off: every Describe is work for the server that is busy making the start durable.
		poll = min(poll*3/2, maxStartPoll)
	}
}

// describe reports whether the instance's workflow exists and runs, or exists and is closed.
func (b *TemporalBackend) describe(ctx context.Context, wfID string) (running, closed bool, err error) {
	d, err := b.Client.DescribeWorkflowExecution(ctx, wfID, "")
	if err != nil {
		return false, false, err
	}
	if d.WorkflowExecutionInfo.GetStatus() == enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
		return true, false, nil
	}
	return false, true, nil
}

func (b *TemporalBackend) updateWithStart(ctx context.Context, c NewInstanceCall, id string) (instance.NewInstanceResult, error) {
	start := b.Client.NewWithStartWorkflowOperation(client.StartWorkflowOptions{
		ID:                       instance.WorkflowID(id),
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
	var res instance.NewInstanceResult
	handle, err := b.Client.UpdateWithStartWorkflow(ctx, client.UpdateWithStartWorkflowOptions{
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
		err = handle.Get(ctx, &res)
	}
	return res, err
}

// answered completes a newInstance the workflow answered. Temporal answers a retried Update with its first
// result, "in progress", however long ago that was; the read model says whether provisioning finished since.
func (b *TemporalBackend) answered(ctx context.Context, id string, res instance.NewInstanceResult, note string) NewInstanceOutcome {
	if res.InstanceID == "" {
		res.InstanceID = id
	}
	out := NewInstanceOutcome{Result: res, Note: note}
	if res.Provisioned {
		return out
	}
	done, lifecycle, err := b.provisioned(ctx, id)
	switch {
	case err != nil:
		out.Note = strings.TrimPrefix(out.Note+"; could not consult the read model: "+err.Error(), "; ")
	case done:
		out.Result.Provisioned = true
		out.Note = strings.TrimPrefix(out.Note+"; provisioning has finished (read model: "+lifecycle+")", "; ")
	}
	return out
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
