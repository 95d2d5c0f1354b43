package workflows

import (
	"errors"
	"fmt"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/kooflow/kooflow/activities"
	"github.com/kooflow/kooflow/internal/instance"
	"github.com/kooflow/kooflow/internal/lifecycle"
	"github.com/kooflow/kooflow/internal/provisioning"
	"github.com/kooflow/kooflow/internal/store"
)

// Retry schedules. Each is bounded: when it runs out, the step parks for an operator instead of retrying forever.
var (
	// The marketplace's order query: about 4 minutes of retries.
	orderQueryRetry = &temporal.RetryPolicy{InitialInterval: 2 * time.Second, BackoffCoefficient: 2,
		MaximumInterval: time.Minute, MaximumAttempts: 8, NonRetryableErrorTypes: []string{activities.ErrNeedsPerson}}
	// The seller's provisioning: about 25 minutes of retries.
	provisionRetry = &temporal.RetryPolicy{InitialInterval: 5 * time.Second, BackoffCoefficient: 2,
		MaximumInterval: 5 * time.Minute, MaximumAttempts: 10, NonRetryableErrorTypes: []string{activities.ErrNeedsPerson}}
	// PostgreSQL writes: about 2 minutes of retries.
	recordRetry = &temporal.RetryPolicy{InitialInterval: time.Second, BackoffCoefficient: 2,
		MaximumInterval: 30 * time.Second, MaximumAttempts: 8, NonRetryableErrorTypes: []string{activities.ErrNeedsPerson}}
)

// outcome is how a stage that may park ended.
type outcome int

const (
	done      outcome = iota
	skipped           // an operator skipped it
	abandoned         // the instance was released meanwhile; the stage no longer matters
)

// writer applies the outbox in order, one local activity per write. A write that fails after its retries parks
// the instance (stage "record in PostgreSQL") unless a step is already parked, in which case it waits for that
// parking to end and tries again: the operator sees one parked stage at a time.
func (r *run) writer(ctx workflow.Context) {
	for {
		workflow.Await(ctx, func() bool { return len(r.outbox) > 0 && !r.folding })
		w := r.outbox[0]
		lctx := workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{
			StartToCloseTimeout: 15 * time.Second, ScheduleToCloseTimeout: 3 * time.Minute,
			RetryPolicy: recordRetry, Summary: w.Summary,
		})
		err := workflow.ExecuteLocalActivity(lctx, la.Record, w).Get(ctx, nil)
		if err != nil {
			if r.s.Parked != nil {
				workflow.Await(ctx, func() bool { return r.s.Parked == nil })
				continue
			}
			if r.park(ctx, "", "record in PostgreSQL: "+w.Summary, reasonOf(err), false) != skipped {
				continue
			}
		}
		r.outbox = r.outbox[1:]
		r.written++
	}
}

// enqueue queues a write without waiting for it.
func (r *run) enqueue(w store.Write) int {
	r.outbox = append(r.outbox, w)
	r.queued++
	return r.queued
}

// record queues a write and waits until it is applied.
func (r *run) record(ctx workflow.Context, w store.Write) {
	ticket := r.enqueue(w)
	workflow.Await(ctx, func() bool { return r.written >= ticket })
}

// write starts a Write carrying the current projection of the instance.
func (r *run) write(summary string, events ...store.EventRow) store.Write {
	return r.writeOf(&r.s, summary, events...)
}

// writeOf is write for a state the step will reach: the write an activity applies along with its call.
func (r *run) writeOf(s *instance.Carry, summary string, events ...store.EventRow) store.Write {
	return store.Write{Summary: summary, Instance: r.projectionOf(s), Events: events}
}

func (r *run) projectionOf(s *instance.Carry) *store.InstanceRow {
	row := &store.InstanceRow{
		InstanceID: r.in.InstanceID, WorkflowID: instance.WorkflowID(r.in.InstanceID), Version: s.Version,
		OrderID: r.in.OrderID, OrderLineID: r.in.OrderLineID,
		// Before the purchase order is queried nothing is known to be unknown.
		ProductID: s.Product.ProductID, ProductName: s.Product.Name, ProductKnown: s.Product.Known || s.Supervision == "",
		SKUCode: s.Product.SKUCode, Quantity: s.Product.Quantity, CustomerID: s.CustomerID,
		ChargingMode: s.Product.ChargingMode, PeriodType: s.Product.PeriodType,
		Lifecycle: string(s.Lifecycle), Supervision: string(s.Supervision), Trial: s.Trial, TestFlag: r.in.TestFlag,
		ExpireTime: s.ExpireTime, ProvisionedAt: s.ProvisionedAt, FrozenAt: s.FrozenAt, FrozenBy: s.FrozenBy,
		ReleasedAt: s.ReleasedAt, SupervisionCompletedAt: s.SupervisionCompletedAt, ServiceStartAt: s.ServiceStartAt,
	}
	if row.Quantity == 0 {
		row.Quantity = 1
	}
	if row.Supervision == "" {
		// Not known before the purchase order is queried. UNKNOWN (neither NOT_INVOLVED nor COMPLETED) keeps
		// settlement away until it is.
		row.Supervision = "UNKNOWN"
	}
	if p := s.Parked; p != nil {
		since := p.Since
		row.Parked, row.ParkedStep, row.ParkedReason, row.ParkedAt = true, p.Stage, p.Reason, &since
	}
	return row
}

// event builds a timeline entry. detail, if not nil, is stored as JSON.
func (r *run) event(ctx workflow.Context, key, kind string, actor instance.Actor, summary string, detail any) store.EventRow {
	return store.EventRow{Key: key, At: workflow.Now(ctx).UTC(), Kind: kind, Actor: lifecycle.ActorString(actor),
		Summary: summary, Detail: detail}
}

// park makes a stuck stage visible (search attribute Parked, a row, a timeline event) and waits for an
// operator's resume or skip. An abandonable stage also ends when the instance's release is accepted.
func (r *run) park(ctx workflow.Context, stepID, stage, reason string, abandonable bool) outcome {
	// One parked stage at a time: the step and the writer may both fail during one outage.
	workflow.Await(ctx, func() bool { return r.s.Parked == nil })
	now := workflow.Now(ctx).UTC()
	r.s.ParkSeq++
	p := instance.Parking{Key: fmt.Sprintf("p%d", r.s.ParkSeq), StepID: stepID, Stage: stage, Reason: reason, Since: now}
	r.s.Parked = &p
	lifecycle.Touch(&r.s)
	r.syncSearchAttributes(ctx)
	r.log.Warn("instance parked", "instance_id", r.in.InstanceID, "stage", stage, "reason", reason)
	w := r.write("record parked stage: "+stage,
		r.event(ctx, p.Key+":parked", "parked", lifecycle.System, "parked at "+stage+": "+reason, p))
	w.Parkings = []store.ParkingRow{{Key: p.Key, StepID: stepID, Stage: stage, Reason: reason, ParkedAt: now}}
	r.enqueue(w)

	r.operator = nil
	workflow.Await(ctx, func() bool { return r.operator != nil || (abandonable && lifecycle.Ended(&r.s)) })
	resolution, by, note := "abandoned", lifecycle.System, "the instance's release was accepted; this stage no longer matters"
	if a := r.operator; a != nil {
		resolution, by, note = a.Action, a.Actor, a.Note
	}
	r.operator = nil
	r.s.Parked = nil
	lifecycle.Touch(&r.s)
	r.syncSearchAttributes(ctx)
	end := workflow.Now(ctx).UTC()
	summary := resolution + " " + stage
	if note != "" {
		summary += ": " + note
	}
	w = r.write("record "+resolution+" of parked stage: "+stage,
		r.event(ctx, p.Key+":"+resolution, resolution, by, summary, nil))
	w.Parkings = []store.ParkingRow{{Key: p.Key, StepID: stepID, Stage: stage, Reason: reason, ParkedAt: now,
		Resolution: resolution, ResolvedBy: lifecycle.ActorString(by), ResolvedAt: &end, Note: note}}
	r.enqueue(w)
	switch resolution {
	case instance.OperatorSkip:
		return skipped
	case instance.OperatorResume:
		return done // the caller tries the stage again
	}
	return abandoned
}

// attempt runs a stage until it succeeds, parking after each failure. An abandonable stage (a provisioner call
// of any step but the release) is given up once the release is accepted.
func (r *run) attempt(ctx workflow.Context, st *instance.Step, stage string, abandonable bool, fn func(workflow.Context) error) outcome {
	for {
		if abandonable && lifecycle.Ended(&r.s) {
			return abandoned
		}
		err := fn(ctx)
		if err == nil {
			return done
		}
		if out := r.park(ctx, st.ID, stage, reasonOf(err), abandonable); out != done {
			return out
		}
	}
}

// reasonOf extracts what an operator should read from an activity failure.
func reasonOf(err error) string {
	var app *temporal.ApplicationError
	if errors.As(err, &app) {
		return app.Message()
	}
	var to *temporal.TimeoutError
	if errors.As(err, &to) {
		return "timed out (" + to.TimeoutType().String() + ") after retries"
	}
	return err.Error()
}

// queryOrder queries an order, parking on failure. A skip returns nil facts.
func (r *run) queryOrder(ctx workflow.Context, st *instance.Step, what, orderID, lineID string, expect ...string) (*activities.OrderFacts, outcome) {
	return r.queryOrderRecording(ctx, st, what, orderID, lineID, nil, expect...)
}

// queryOrderRecording is queryOrder with the step's write handed to the activity (QueryOrderInput.Record) when no
// earlier write waits in the outbox; the facts say whether it was recorded.
func (r *run) queryOrderRecording(ctx workflow.Context, st *instance.Step, what, orderID, lineID string, rec *activities.OrderRecord, expect ...string) (*activities.OrderFacts, outcome) {
	var f activities.OrderFacts
	out := r.attempt(ctx, st, "query "+what+" order "+orderID, false, func(ctx workflow.Context) error {
		f = activities.OrderFacts{}
		actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
			StartToCloseTimeout: 30 * time.Second, RetryPolicy: orderQueryRetry,
			Summary: fmt.Sprintf("query %s order %s from KooGallery", what, orderID),
		})
		in := activities.QueryOrderInput{
			InstanceID: r.in.InstanceID, OrderID: orderID, OrderLineID: lineID, ProductID: r.in.ProductID, Expect: expect,
		}
		if rec != nil && len(r.outbox) == 0 {
			in.Record = rec
			r.folding = true
			defer func() { r.folding = false }()
		}
		return workflow.ExecuteActivity(actx, la.QueryOrder, in).Get(ctx, &f)
	})
	if out != done {
		return nil, out
	}
	return &f, done
}

// purchaseLocalQuery is the workflow.GetVersion change ID of the purchase step that queries its order as a
// local activity.
const purchaseLocalQuery = "purchase-local-order-query"

// queryOrderLocal is queryOrder with a first attempt as a local activity, for a step no caller waits on: the
// purchase, which the inbox starts with the workflow. The attempt runs inside the workflow task with the
// read-model writes around it (one billed action for all of them) and skips the activity task round trip
// through the server. Only when it fails does the regular activity take over, with its whole bounded retry
// schedule and the same parking, so an outage of the marketplace is handled exactly as before. Steps started
// by an Update keep the regular activity: a local activity would hold the Update's answer until the marketplace
// replied.
func (r *run) queryOrderLocal(ctx workflow.Context, st *instance.Step, what, orderID, lineID string, expect ...string) (*activities.OrderFacts, outcome) {
	var f activities.OrderFacts
	in := activities.QueryOrderInput{InstanceID: r.in.InstanceID, OrderID: orderID, OrderLineID: lineID, Expect: expect}
	summary := fmt.Sprintf("query %s order %s from KooGallery", what, orderID)
	out := r.attempt(ctx, st, "query "+what+" order "+orderID, false, func(ctx workflow.Context) error {
		lctx := workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{
			StartToCloseTimeout: 30 * time.Second, Summary: summary,
			RetryPolicy: &temporal.RetryPolicy{MaximumAttempts: 1},
		})
		err := workflow.ExecuteLocalActivity(lctx, la.QueryOrder, in).Get(ctx, &f)
		var app *temporal.ApplicationError
		if err == nil || (errors.As(err, &app) && (app.NonRetryable() || app.Type() == activities.ErrNeedsPerson)) {
			return err
		}
		actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
			StartToCloseTimeout: 30 * time.Second, RetryPolicy: orderQueryRetry, Summary: summary,
		})
		return workflow.ExecuteActivity(actx, la.QueryOrder, in).Get(ctx, &f)
	})
	if out != done {
		return nil, out
	}
	return &f, done
}

// provision sends one event to the instance's provisioner, parking on failure.
func (r *run) provision(ctx workflow.Context, st *instance.Step, kind provisioning.Kind, p instance.Product, orderID string, testFlag bool) (activities.ProvisionResult, outcome) {
	return r.provisionWith(ctx, st, kind, p, orderID, testFlag, provisionOptions{})
}

// provisionOptions are the ways a provisioning call saves billed actions (fewerActionsChange).
type provisionOptions struct {
	// local makes the first attempt a local activity, for a step no caller waits on (the purchase), like
	// queryOrderLocal: it runs in the workflow task with the read-model writes around it. Only when it fails
	// with a retryable error does the regular activity take over, with the whole retry schedule and parking.
	local bool
	// record is the step's write on success, handed to the activity (ProvisionInput.Record) when no earlier
	// write waits in the outbox, so it cannot overtake one; the writer waits while the activity runs.
	record *store.Write
}

// provisionWith is provision with options.
func (r *run) provisionWith(ctx workflow.Context, st *instance.Step, kind provisioning.Kind, p instance.Product, orderID string, testFlag bool, o provisionOptions) (activities.ProvisionResult, outcome) {
	ev := provisioning.Event{
		EventID: r.in.InstanceID + ":" + st.ID + ":" + string(kind), Type: kind, InstanceID: r.in.InstanceID,
		OrderID: orderID, ProductID: p.ProductID, SKUCode: p.SKUCode, Quantity: p.Quantity, ExpireTime: r.s.ExpireTime,
		CustomerID: r.s.CustomerID, TestFlag: testFlag, OccurredAt: st.AcceptedAt,
	}
	var res activities.ProvisionResult
	summary := fmt.Sprintf("provision %s of instance %s (%s %s ×%d)", kind, r.in.InstanceID, p.ProductID, p.SKUCode, p.Quantity)
	out := r.attempt(ctx, st, "provision "+string(kind), kind != provisioning.Release, func(ctx workflow.Context) error {
		res = activities.ProvisionResult{}
		in := activities.ProvisionInput{Event: ev, Target: p.Provisioning}
		if o.local {
			lctx := workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{
				StartToCloseTimeout: time.Minute, Summary: summary, RetryPolicy: &temporal.RetryPolicy{MaximumAttempts: 1},
			})
			err := workflow.ExecuteLocalActivity(lctx, la.Provision, in).Get(ctx, &res)
			var app *temporal.ApplicationError
			if err == nil || (errors.As(err, &app) && (app.NonRetryable() || app.Type() == activities.ErrNeedsPerson)) {
				return err
			}
		}
		if o.record != nil && len(r.outbox) == 0 {
			in.Record = o.record
			r.folding = true
			defer func() { r.folding = false }()
		}
		actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
			StartToCloseTimeout: time.Minute, RetryPolicy: provisionRetry, Summary: summary,
		})
		return workflow.ExecuteActivity(actx, la.Provision, in).Get(ctx, &res)
	})
	return res, out
}

// syncSearchAttributes upserts the search attributes that differ from the state, in one command: every upsert
// is a billed action, so unchanged values are never sent.
func (r *run) syncSearchAttributes(ctx workflow.Context) {
	cur := workflow.GetTypedSearchAttributes(ctx)
	var upd []temporal.SearchAttributeUpdate
	keyword := func(k temporal.SearchAttributeKeyKeyword, v string) {
		old, ok := cur.GetKeyword(k)
		switch {
		case v == "" && ok:
			upd = append(upd, k.ValueUnset())
		case v != "" && (!ok || old != v):
			upd = append(upd, k.ValueSet(v))
		}
	}
	// An absent flag reads as false in visibility queries (Parked = true finds the parked ones), so false is only
	// written over a true.
	boolean := func(k temporal.SearchAttributeKeyBool, v bool) {
		if old, ok := cur.GetBool(k); (ok && old != v) || (!ok && v) {
			upd = append(upd, k.ValueSet(v))
		}
	}
	keyword(instance.SAOrderID, r.in.OrderID)
	keyword(instance.SAInstanceID, r.in.InstanceID)
	keyword(instance.SAProductID, r.s.Product.ProductID)
	keyword(instance.SALifecycleState, string(r.s.Lifecycle))
	keyword(instance.SASupervisionState, string(r.s.Supervision))
	boolean(instance.SAParked, r.s.Parked != nil)
	boolean(instance.SATestFlag, r.in.TestFlag)
	old, ok := cur.GetTime(instance.SAExpireTime)
	switch e := r.s.ExpireTime; {
	case e == nil && ok:
		upd = append(upd, instance.SAExpireTime.ValueUnset())
	case e != nil && (!ok || !old.Equal(*e)):
		upd = append(upd, instance.SAExpireTime.ValueSet(e.UTC()))
	}
	if len(upd) == 0 {
		return
	}
	if err := workflow.UpsertTypedSearchAttributes(ctx, upd...); err != nil {
		r.log.Error("upsert search attributes", "err", err)
	}
}
