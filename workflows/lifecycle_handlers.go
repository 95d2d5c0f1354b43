package workflows

import (
	"fmt"

	"go.temporal.io/sdk/workflow"

	"github.com/kooflow/kooflow/internal/instance"
	"github.com/kooflow/kooflow/internal/koogallery"
	"github.com/kooflow/kooflow/internal/lifecycle"
	"github.com/kooflow/kooflow/internal/refusal"
	"github.com/kooflow/kooflow/internal/store"
)

// refused turns a rule's refusal into the error a validator returns.
func refused(r *refusal.Error) error {
	if r == nil {
		return nil
	}
	return r.Temporal()
}

func (r *run) register(ctx workflow.Context) error {
	type update struct {
		name      string
		handler   any
		validator any
	}
	for _, u := range []update{
		{instance.UpdateNewInstance, r.newInstance, r.validateNewInstance},
		{instance.UpdateRefreshInstance, r.refresh, r.validateRefresh},
		{instance.UpdateStatus, r.status, r.validateStatus},
		{instance.UpdateRelease, r.release, r.validateRelease},
		{instance.UpdateUpgrade, r.upgrade, r.validateUpgrade},
		{instance.UpdateSupervision, r.supervision, r.validateSupervision},
		{instance.UpdateRefund, r.refund, r.validateRefund},
		{instance.UpdateOperator, r.operatorUpdate, r.validateOperator},
		{instance.UpdateKitChange, r.kitChange, r.validateKitChange},
		{instance.UpdateCheckExpiry, r.checkExpiry, nil},
	} {
		if err := workflow.SetUpdateHandlerWithOptions(ctx, u.name, u.handler,
			workflow.UpdateHandlerOptions{Validator: u.validator}); err != nil {
			return fmt.Errorf("register update %s: %w", u.name, err)
		}
	}
	if err := workflow.SetQueryHandler(ctx, instance.QueryState, func() (instance.Carry, error) {
		return r.s, nil
	}); err != nil {
		return fmt.Errorf("register query %s: %w", instance.QueryState, err)
	}
	if err := workflow.SetQueryHandler(ctx, instance.QueryChangeCheck, func(req instance.ChangeCheckRequest) (instance.ChangeCheckResult, error) {
		return lifecycle.CheckChange(&r.s, req), nil
	}); err != nil {
		return fmt.Errorf("register query %s: %w", instance.QueryChangeCheck, err)
	}
	return nil
}

// Marketplace calls: validate, apply to the state, queue the work, answer at once.

func (r *run) validateNewInstance(ctx workflow.Context, req instance.NewInstanceRequest) error {
	return refused(lifecycle.CheckNewInstance(r.in, req))
}

// newInstance answers at once: the purchase step started with the workflow, and the gateway must never wait for
// provisioning (Provisioned false means 000004, "in progress"). The gateway no longer sends this Update (its
// inbox starts the workflow); the handler stays so that histories of workflows started with Update-With-Start
// still replay.
func (r *run) newInstance(ctx workflow.Context, req instance.NewInstanceRequest) (instance.NewInstanceResult, error) {
	return instance.NewInstanceResult{InstanceID: r.in.InstanceID, Provisioned: r.s.Provisioned}, nil
}

func (r *run) validateRefresh(ctx workflow.Context, req instance.RefreshRequest) error {
	return refused(lifecycle.CheckRefresh(&r.s, req, workflow.Now(ctx)))
}

func (r *run) refresh(ctx workflow.Context, req instance.RefreshRequest) error {
	now := workflow.Now(ctx)
	if err := refused(lifecycle.CheckRefresh(&r.s, req, now)); err != nil {
		return err
	}
	lifecycle.ApplyRefresh(&r.s, req, now)
	return nil
}

func (r *run) validateStatus(ctx workflow.Context, req instance.StatusRequest) error {
	return refused(lifecycle.CheckStatus(&r.s, req))
}

func (r *run) status(ctx workflow.Context, req instance.StatusRequest) error {
	if err := refused(lifecycle.CheckStatus(&r.s, req)); err != nil {
		return err
	}
	now := workflow.Now(ctx)
	if req.Status == instance.StatusFreeze && lifecycle.StaleFreeze(&r.s, now) &&
		workflow.GetVersion(ctx, staleFreezeChange, workflow.DefaultVersion, 1) == 1 {
		r.alertStaleFreeze(ctx, now)
		return nil
	}
	lifecycle.ApplyStatus(&r.s, req, now, lifecycle.Marketplace)
	return nil
}

func (r *run) validateRelease(ctx workflow.Context, req instance.ReleaseRequest) error { return nil }

func (r *run) release(ctx workflow.Context, req instance.ReleaseRequest) error {
	lifecycle.ApplyRelease(&r.s, req, workflow.Now(ctx))
	return nil
}

func (r *run) validateKitChange(ctx workflow.Context, c instance.KitChange) error {
	return refused(lifecycle.CheckKitChange(&r.s))
}

func (r *run) kitChange(ctx workflow.Context, c instance.KitChange) error {
	if err := refused(lifecycle.CheckKitChange(&r.s)); err != nil {
		return err
	}
	lifecycle.ApplyKitChange(&r.s, c, workflow.Now(ctx))
	return nil
}

func (r *run) validateUpgrade(ctx workflow.Context, req instance.UpgradeRequest) error {
	return refused(lifecycle.CheckUpgrade(&r.s, req))
}

func (r *run) upgrade(ctx workflow.Context, req instance.UpgradeRequest) error {
	if err := refused(lifecycle.CheckUpgrade(&r.s, req)); err != nil {
		return err
	}
	lifecycle.ApplyUpgrade(&r.s, req, workflow.Now(ctx))
	return nil
}

// Console actions: validate, apply, record, answer with the new state.

func (r *run) validateSupervision(ctx workflow.Context, req instance.SupervisionRequest) error {
	return refused(lifecycle.CheckSupervision(&r.s, req, workflow.Now(ctx)))
}

func (r *run) supervision(ctx workflow.Context, req instance.SupervisionRequest) (instance.SupervisionResult, error) {
	now := workflow.Now(ctx)
	if err := refused(lifecycle.CheckSupervision(&r.s, req, now)); err != nil {
		return instance.SupervisionResult{}, err
	}
	took := lifecycle.ApplySupervision(&r.s, req, now)
	summary := fmt.Sprintf("%s: %s → supervision %s", lifecycle.ActorString(req.Actor), req.Step, r.s.Supervision)
	if req.Note != "" {
		summary += " (" + req.Note + ")"
	}
	w := r.write("record supervision step "+req.Step,
		r.event(ctx, fmt.Sprintf("v%d:supervision", r.s.Version), "supervision", req.Actor, summary, req))
	if took != nil {
		w.Effective = []store.OrderEffective{{OrderID: took.OrderID, OrderLineID: took.OrderLineID, At: now}}
	}
	r.syncSearchAttributes(ctx)
	r.record(ctx, w)
	return instance.SupervisionResult{Supervision: r.s.Supervision, Step: req.Step, At: now}, nil
}

func (r *run) validateRefund(ctx workflow.Context, req instance.RefundRequest) error {
	return refused(lifecycle.CheckRefund(&r.s, req, workflow.Now(ctx)))
}

func (r *run) refund(ctx workflow.Context, req instance.RefundRequest) (instance.RefundResult, error) {
	now := workflow.Now(ctx)
	if err := refused(lifecycle.CheckRefund(&r.s, req, now)); err != nil {
		return instance.RefundResult{}, err
	}
	rf, changed := lifecycle.ApplyRefund(&r.s, r.in.InstanceID, req, now)
	if !changed {
		return instance.RefundResult{Refund: rf}, nil
	}
	var summary string
	switch rf.Status {
	case instance.RefundPending:
		summary = fmt.Sprintf("refund %s of %s requested on order %s", rf.RefundID, rf.Requested, rf.OrderID)
	case instance.RefundApproved:
		summary = fmt.Sprintf("refund %s approved: %s of order %s", rf.RefundID, rf.Approved, rf.OrderID)
	default:
		summary = fmt.Sprintf("refund %s rejected", rf.RefundID)
	}
	if req.Reason != "" {
		summary += " (" + req.Reason + ")"
	}
	w := r.write("record refund "+rf.RefundID+" "+rf.Status,
		r.event(ctx, fmt.Sprintf("v%d:refund", r.s.Version), "refund-"+req.Action, req.Actor, summary, rf))
	w.Refunds = []store.RefundRow{refundRow(rf)}
	if rf.Status == instance.RefundApproved {
		w.Orders = []store.OrderRow{{
			OrderID: rf.RefundOrderID, OrderLineID: rf.OrderLineID, InstanceID: r.in.InstanceID, OrderType: koogallery.OrderTypeRefund,
			ProductID: r.s.Product.ProductID, SKUCode: r.s.Product.SKUCode, ChargingMode: r.s.Product.ChargingMode,
			PeriodType: r.s.Product.PeriodType, Quantity: r.s.Product.Quantity, PaidAmount: rf.Approved.Neg(),
			RefersToOrderID: rf.OrderID, EffectiveAt: &now, TestFlag: r.in.TestFlag,
		}}
	}
	r.record(ctx, w)
	return instance.RefundResult{Refund: rf}, nil
}

func refundRow(rf instance.Refund) store.RefundRow {
	row := store.RefundRow{
		RefundID: rf.RefundID, OrderID: rf.OrderID, OrderLineID: rf.OrderLineID, Status: rf.Status,
		RequestedAmount: rf.Requested, FullOnly: rf.FullOnly, Reason: rf.Reason, DecisionNote: rf.Note,
		RequestedBy: lifecycle.ActorString(rf.RequestedBy), RequestedAt: rf.RequestedAt, DecidedAt: rf.DecidedAt,
		RefundOrderID: rf.RefundOrderID,
	}
	if rf.DecidedBy != nil {
		row.DecidedBy = lifecycle.ActorString(*rf.DecidedBy)
	}
	if rf.Status == instance.RefundApproved {
		a := rf.Approved
		row.ApprovedAmount = &a
	}
	return row
}

// Operator actions on a parked step: by Update from the console, or by Signal from the Temporal web UI.

func (r *run) validateOperator(ctx workflow.Context, a instance.OperatorAction) error {
	return refused(lifecycle.CheckOperator(&r.s, a))
}

func (r *run) operatorUpdate(ctx workflow.Context, a instance.OperatorAction) (instance.OperatorResult, error) {
	if err := refused(lifecycle.CheckOperator(&r.s, a)); err != nil {
		return instance.OperatorResult{}, err
	}
	r.operator = &a
	return instance.OperatorResult{Action: a.Action, StepID: r.s.Parked.StepID, Stage: r.s.Parked.Stage}, nil
}

// operatorSignals takes OperatorAction signals, which carry no validation: one that does not apply is logged
// and dropped.
func (r *run) operatorSignals(ctx workflow.Context) {
	ch := workflow.GetSignalChannel(ctx, instance.SignalOperator)
	for {
		var a instance.OperatorAction
		ch.Receive(ctx, &a)
		// A signal carries no authenticated identity (whoever can signal in Temporal sent it), so a name in
		// the payload is not believed: the actor is always the Temporal UI.
		a.Actor = instance.Actor{Party: instance.PartyOperator, Name: "temporal-ui"}
		if ref := lifecycle.CheckOperator(&r.s, a); ref != nil {
			r.log.Warn("operator signal ignored", "action", a.Action, "reason", ref.Reason)
			continue
		}
		r.operator = &a
	}
}

// checkExpiry is the expiry watch's call: when the expiry and its grace have passed and the instance is still
// usable, the main loop raises the alert (and freezes it under the freeze policy) as the timer of earlier runs
// did. A check before the run's own deadline (the watch's grace is shorter than the run's) makes the run arm a
// timer for that deadline instead, since the same check is not answered twice. Any other time it changes
// nothing; the answer says which.
func (r *run) checkExpiry(ctx workflow.Context, _ instance.ExpiryCheck) (instance.ExpiryCheckResult, error) {
	now := workflow.Now(ctx)
	a := lifecycle.DecideExpiry(&r.s, now, r.cfg.ExpiryGrace, r.cfg.ExpiryPolicy)
	res := instance.ExpiryCheckResult{Action: a.String()}
	if a != lifecycle.ExpiryNothing {
		r.expiryDue = true
	} else if at, ok := lifecycle.ExpiryDeadline(&r.s, r.cfg.ExpiryGrace); ok && now.Before(at) {
		r.early, res.DueAt = true, &at
	}
	return res, nil
}
