package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.temporal.io/api/serviceerror"

	"github.com/kooflow/kooflow/internal/instance"
	"github.com/kooflow/kooflow/internal/koogallery"
	"github.com/kooflow/kooflow/internal/refusal"
	"github.com/kooflow/kooflow/internal/store"
)

// TemporalBackend dispatches activities to the instance workflows (docs/architecture.md,
// "Marketplace calls become Updates") and reads queryInstance from the PostgreSQL read model.
//
// Update IDs come from each call's business key (instance.UpdateID), never from businessId, nonce or timestamp,
// so a marketplace retry of the same step is deduplicated by Temporal and returns the first answer. The one
// exception is updateInstanceStatus: FREEZE → UNFREEZE → FREEZE are three real steps in one run, and a key of
// (instance, status) would turn the second FREEZE into a replay of the first. Its Update ID is therefore unique
// per delivery (the nonce, itself accepted once); a retried FREEZE becomes a second Update, which is harmless
// because the workflow is idempotent by state (freezing a frozen instance succeeds without doing anything).
type TemporalBackend struct {
	Instances instance.Client
	Store     *store.Store
	// Inbox records newInstance calls and starts their workflows.
	Inbox *Inbox
	// Now is the clock of usageInfo's statisticalTime for an instance without usage; nil means time.Now.
	Now func() time.Time
}

// startSummary is what the Temporal web UI shows for an instance's workflow; it carries no personal data.
func startSummary(c NewInstanceCall) string {
	s := "KooGallery order " + c.OrderID + " line " + c.OrderLineID
	if c.ProductID != "" {
		s += " product " + c.ProductID
	}
	if c.TestFlag {
		s += " (dial test)"
	}
	return s
}

// NewInstance records the order in the inbox and answers at once (see Inbox for why the answer does not wait for
// Temporal): 000004 with the instanceId for a new order, whose workflow the inbox starts right after; for a retry
// of an order whose workflow was already started, 000000 once the read model shows provisioning finished and
// 000004 until then. The workflow proceeds from its StartInput, so it needs no newInstance Update.
func (b *TemporalBackend) NewInstance(ctx context.Context, c NewInstanceCall) (NewInstanceOutcome, error) {
	id := c.InstanceID()
	retry, dispatched, err := b.Inbox.Accept(ctx, id, c)
	if err != nil {
		return NewInstanceOutcome{}, err
	}
	switch {
	case !retry:
		b.Inbox.KickNew(id, c)
	case !dispatched:
		b.Inbox.Kick(id)
	}
	if !retry {
		return NewInstanceOutcome{Result: instance.NewInstanceResult{InstanceID: id},
			Note: "recorded in the inbox; the workflow start is dispatched asynchronously"}, nil
	}
	return b.answered(ctx, id, instance.NewInstanceResult{InstanceID: id}, "retry of an accepted order"), nil
}

// ensureStarted is called when a call finds no workflow for its instance: if newInstance accepted the instance
// (the marketplace may send the next call before the inbox dispatched the start), its start is made sure of now
// and ok is true, so the caller retries once. A released instance whose run closed stays closed (the start is
// rejected as a duplicate), so the retry finds it gone again.
func (b *TemporalBackend) ensureStarted(ctx context.Context, id string) (ok bool, err error) {
	// Accepted, not pending: the dispatcher may have started the workflow between the failed call and this look.
	accepted, err := b.Inbox.Accepted(ctx, []string{id})
	if err != nil || !accepted[id] {
		return false, err
	}
	if err := b.Inbox.Dispatch(ctx, id); err != nil {
		return false, err
	}
	return true, nil
}

// answered completes the answer to a retried newInstance. The inbox only knows that the order was accepted
// ("in progress"), however long ago that was; the read model says whether provisioning finished since.
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
	default:
		code, msg, refused, err := b.Store.Refusal(ctx, id)
		switch {
		case err != nil:
			out.Note = strings.TrimPrefix(out.Note+"; could not read a refusal: "+err.Error(), "; ")
		case refused:
			out.Refusal = &Refusal{Code: code, Message: msg}
			out.Note = strings.TrimPrefix(out.Note+"; the seller's provisioning refused the purchase ("+code+")", "; ")
		}
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
	return b.Store.Provisioned(ctx, id)
}

// update sends one Update to an existing instance workflow and waits for its result.
func (b *TemporalBackend) update(ctx context.Context, instanceID, name, updateID string, arg any) error {
	send := func() error { return b.Instances.Update(ctx, instanceID, name, updateID, arg, nil) }
	err := send()
	if errors.Is(err, instance.ErrNoWorkflow) {
		if started, serr := b.ensureStarted(ctx, instanceID); serr != nil {
			return fmt.Errorf("%s on instance %s, whose start is pending in the inbox: %w", name, instanceID, serr)
		} else if started {
			err = send()
		}
	}
	return err
}

// Refresh moves the instance's expiry (renewal, trial to formal, renewal refund, renewal with change); its
// Update ID is the scene and the order, so a retry of the same renewal is one step.
func (b *TemporalBackend) Refresh(ctx context.Context, instanceID string, r instance.RefreshRequest) error {
	err := b.update(ctx, instanceID, instance.UpdateRefreshInstance, instance.UpdateID("refresh", r.Scene, r.OrderID, r.OrderLineID), r)
	return b.dialTestRerun(ctx, instanceID, r.TestFlag, err)
}

// dialTestRerun acknowledges a dial-test call (testFlag "1") that reaches a released dial-test instance.
//
// The marketplace runs its debug cases twice a day, with the order ids of its mock orders, and each round ends
// with releaseInstance. The next round's newInstance finds the same order, hence the same instance, already
// released; its refresh, status and upgrade calls would be answered 000003 and the round would fail, although
// the interface works. A dial-test instance owns no resources and enters no settlement, so such a call is
// answered as done from the read model, and the message log records why. Calls without testFlag, and calls on
// instances that are not dial-test instances, are never affected.
func (b *TemporalBackend) dialTestRerun(ctx context.Context, instanceID string, testFlag bool, err error) error {
	if err == nil || !testFlag {
		return err
	}
	ref, refused := refusal.As(err)
	if !errors.Is(err, ErrUnknownInstance) && !(refused && ref.Code == koogallery.ResultNotFound) {
		return err
	}
	if ok, qerr := b.releasedTestInstance(ctx, instanceID); qerr != nil || !ok {
		return err
	}
	return nil
}

// releasedTestInstance reports whether the read model holds instanceID as a released dial-test instance.
func (b *TemporalBackend) releasedTestInstance(ctx context.Context, instanceID string) (bool, error) {
	return b.Store.ReleasedTestInstance(ctx, instanceID)
}

// UpdateStatus freezes or unfreezes; see the type's comment for why its Update ID is per delivery.
func (b *TemporalBackend) UpdateStatus(ctx context.Context, instanceID, deliveryID string, r instance.StatusRequest) error {
	err := b.update(ctx, instanceID, instance.UpdateStatus, instance.UpdateID("status", r.Status, deliveryID), r)
	return b.dialTestRerun(ctx, instanceID, r.TestFlag, err)
}

// Release ends the instance; an instance is released once, so its Update ID is constant.
func (b *TemporalBackend) Release(ctx context.Context, instanceID string, r instance.ReleaseRequest) error {
	return b.update(ctx, instanceID, instance.UpdateRelease, instance.UpdateID("release"), r)
}

// Upgrade applies an upgrade order; its Update ID is the order.
func (b *TemporalBackend) Upgrade(ctx context.Context, instanceID string, r instance.UpgradeRequest) error {
	err := b.update(ctx, instanceID, instance.UpdateUpgrade, instance.UpdateID("upgrade", r.OrderID, r.OrderLineID), r)
	return b.dialTestRerun(ctx, instanceID, r.TestFlag, err)
}

// ChangeCheck asks the workflow, by Query, whether a renewal with this target spec is acceptable. A Query
// changes nothing, so it needs no deduplication.
func (b *TemporalBackend) ChangeCheck(ctx context.Context, instanceID string, r instance.ChangeCheckRequest) (instance.ChangeCheckResult, error) {
	var res instance.ChangeCheckResult
	query := func() error { return b.Instances.Query(ctx, instanceID, instance.QueryChangeCheck, &res, r) }
	err := query()
	if errors.Is(err, instance.ErrNoWorkflow) {
		if started, serr := b.ensureStarted(ctx, instanceID); serr != nil {
			return res, fmt.Errorf("changeInstanceCheck on instance %s, whose start is pending in the inbox: %w", instanceID, serr)
		} else if started {
			err = query()
		}
	}
	return res, err
}

// QueryInstances reads the instances and their access details from the read model, which the lifecycle
// workflow writes once provisioning produced them.
func (b *TemporalBackend) QueryInstances(ctx context.Context, ids []string) ([]InstanceView, error) {
	rows, err := b.Store.InstancesAccess(ctx, ids)
	if err != nil {
		return nil, err
	}
	out := make([]InstanceView, 0, len(rows))
	for _, r := range rows {
		v := InstanceView{InstanceID: r.InstanceID, Lifecycle: instance.Lifecycle(r.Lifecycle), TestFlag: r.TestFlag,
			chargingMode: r.ChargingMode}
		if r.RefusalCode != "" {
			v.Refusal = &Refusal{Code: r.RefusalCode, Message: r.RefusalMsg}
		}
		if len(r.AppInfo) > 0 {
			var ai koogallery.AppInfo
			if err := json.Unmarshal(r.AppInfo, &ai); err != nil {
				return nil, fmt.Errorf("instance %s has unreadable app_info: %w", v.InstanceID, err)
			}
			v.AppInfo = &ai
		}
		out = append(out, v)
	}
	if err := b.addUsage(ctx, out); err != nil {
		return nil, err
	}
	// An instance newInstance accepted whose workflow has not written its row yet is being provisioned, not
	// unknown: the marketplace polls queryInstance right after newInstance's 000004.
	if len(out) < len(ids) {
		seen := make(map[string]bool, len(out))
		for _, v := range out {
			seen[v.InstanceID] = true
		}
		var missing []string
		for _, id := range ids {
			if !seen[id] {
				missing = append(missing, id)
			}
		}
		accepted, err := b.Inbox.Accepted(ctx, missing)
		if err != nil {
			return nil, err
		}
		for _, id := range missing {
			if accepted[id] {
				out = append(out, InstanceView{InstanceID: id, Lifecycle: instance.LifecycleProvisioning})
			}
		}
	}
	return out, nil
}
