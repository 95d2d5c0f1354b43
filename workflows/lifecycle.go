package workflows

import (
	"fmt"
	"time"

	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/workflow"

	"github.com/kooflow/kooflow/activities"
	"github.com/kooflow/kooflow/internal/instance"
	"github.com/kooflow/kooflow/internal/lifecycle"
	"github.com/kooflow/kooflow/internal/store"
)

// LifecycleConfig configures the instance lifecycle workflow from the worker's configuration
// (KOOFLOW_EXPIRY_GRACE, KOOFLOW_EXPIRY_POLICY). Each run records the values it uses in its history, so a
// changed configuration applies from the next run and never breaks the replay of a running one.
type LifecycleConfig struct {
	ExpiryGrace  time.Duration          `json:"expiryGrace"`
	ExpiryPolicy lifecycle.ExpiryPolicy `json:"expiryPolicy"`
	// RenewalsPerRun is how many renewals a run takes before it continues as new (KOOFLOW_RENEWALS_PER_RUN);
	// 0, as in runs recorded before the setting existed, means the default.
	RenewalsPerRun int `json:"renewalsPerRun,omitempty"`
}

// defaultRenewalsPerRun bounds a run to a year of monthly renewals: one Continue-As-New (a billed action) a year
// instead of one a month, with a history of a few hundred events, which replays in milliseconds.
const defaultRenewalsPerRun = 12

// fewerActionsChange is the workflow.GetVersion change ID of the lifecycle that takes fewer billed actions: the
// purchase's first provisioning attempt is a local activity of the first workflow task; the activity of a step
// started by an Update records the step's outcome itself; a renewal continues as new only after
// RenewalsPerRun renewals; the expiry safety net keeps one timer when a renewal moves the deadline and re-arms
// it for the remainder when it fires. Runs started before it keep the old behaviour until they continue as new.
const fewerActionsChange = "lifecycle-fewer-actions"

// expiryWatchChange is the workflow.GetVersion change ID of the lifecycle whose expiry safety net is the
// workers' expiry watch (worker.ExpiryWatch) instead of a timer per deadline. Each timer is a billed action, and
// a renewal moved the deadline past the running timer, so the standard path (a renewal, then the freeze) took
// two; the watch reads the read model and sends UpdateCheckExpiry only to an instance past its expiry and grace
// that is still not frozen, which the marketplace's own freeze makes rare. Runs started before it keep their
// timers until they continue as new.
const expiryWatchChange = "lifecycle-expiry-watch"

// Lifecycle is the instance lifecycle workflow: one per KooGallery instance, from the paid order to release.
//
// newInstance starts it (from the gateway's inbox); the other marketplace calls arrive as Updates. Their
// validators refuse impossible transitions before they reach history; their handlers apply the change to the
// state at once and queue a step, so the gateway gets its answer without waiting for the order query or the
// provisioner. The main loop runs the queued steps in order: it queries the order, calls the provisioner and
// records the read model, retrying with backoff, and parks the instance for an operator when a step fails in a
// way retries cannot fix. Console actions (supervision, refunds, operator resume/skip) are Updates that return
// once recorded. Every RenewalsPerRun-th renewal ends the run with Continue-As-New, so the history of an
// instance renewed monthly for years stays small.
type Lifecycle struct {
	Config LifecycleConfig
}

// la is the activities receiver; methods are resolved by name on the worker.
var la *activities.Lifecycle

// run is one run of the workflow: the carried state plus what lives only while it runs.
type run struct {
	in  instance.StartInput
	s   instance.Carry
	cfg LifecycleConfig
	log log.Logger

	// operator is the pending operator action for the parked step.
	operator *instance.OperatorAction
	// wantCAN is set by a renewal: continue as new once the queue is empty and handlers are done.
	wantCAN bool
	// fewer is true in runs with fewerActionsChange; renewals counts this run's renewals under it.
	fewer    bool
	renewals int
	// watched is true in runs with expiryWatchChange: no expiry timer; expiryDue is set by UpdateCheckExpiry.
	// early is set by a check that came before the run's deadline: the run then falls back to a timer until it
	// fires.
	watched, expiryDue, early bool

	// outbox holds read-model writes in order; one coroutine applies them. queued and written number them so
	// a caller can wait for its own write.
	outbox          []store.Write
	queued, written int
	// folding is true while an activity applies a step's write itself (recordAlong): the writer waits, so no
	// later write overtakes it.
	folding bool

	// The expiry safety net's timer.
	timer     workflow.Future
	timerAt   time.Time
	stopTimer workflow.CancelFunc
}

// Run is the workflow function.
func (l *Lifecycle) Run(ctx workflow.Context, in instance.StartInput) error {
	r := &run{in: in, log: workflow.GetLogger(ctx)}
	if err := workflow.SideEffect(ctx, func(workflow.Context) any { return l.Config }).Get(&r.cfg); err != nil {
		return fmt.Errorf("read lifecycle configuration: %w", err)
	}
	r.fewer = workflow.GetVersion(ctx, fewerActionsChange, workflow.DefaultVersion, 1) == 1
	r.watched = workflow.GetVersion(ctx, expiryWatchChange, workflow.DefaultVersion, 1) == 1
	if in.Carry != nil {
		r.s = *in.Carry
		r.in.Carry = nil
	} else {
		// The purchase path starts from StartInput alone: the inbox starts the workflow and sends no newInstance
		// Update.
		r.s = instance.Carry{Lifecycle: instance.LifecycleProvisioning}
		lifecycle.NewStep(&r.s, instance.StepPurchase, workflow.Now(ctx), lifecycle.Marketplace)
	}
	if err := r.register(ctx); err != nil {
		return err
	}
	workflow.Go(ctx, r.writer)
	workflow.Go(ctx, r.operatorSignals)
	return r.loop(ctx)
}

// loop runs queued steps in order; when idle it watches the expiry and continues as new when due.
func (r *run) loop(ctx workflow.Context) error {
	for {
		if len(r.s.Pending) > 0 {
			st := r.s.Pending[0]
			r.runStep(ctx, &st)
			r.s.Pending = append([]instance.Step(nil), r.s.Pending[1:]...)
			if r.s.Lifecycle == instance.LifecycleReleased {
				return r.finish(ctx)
			}
			continue
		}
		if r.wantCAN || workflow.GetInfo(ctx).GetContinueAsNewSuggested() {
			// Drain: let in-flight handlers finish and the read model catch up, so nothing is lost.
			workflow.Await(ctx, func() bool { return workflow.AllHandlersFinished(ctx) && len(r.outbox) == 0 })
			if len(r.s.Pending) > 0 || r.s.Parked != nil {
				continue
			}
			return r.continueAsNew(ctx)
		}
		r.idle(ctx)
	}
}

func (r *run) runStep(ctx workflow.Context, st *instance.Step) {
	switch st.Kind {
	case instance.StepPurchase:
		r.purchase(ctx, st)
	case instance.StepRefresh:
		r.refreshStep(ctx, st)
	case instance.StepStatus:
		r.statusStep(ctx, st)
	case instance.StepUpgrade:
		r.upgradeStep(ctx, st)
	case instance.StepRelease:
		r.releaseStep(ctx, st)
	case instance.StepKit:
		r.kitStep(ctx, st)
	default:
		r.log.Error("unknown step kind; dropped", "step", st.ID, "kind", st.Kind)
	}
}

// finish ends the workflow after release, once handlers and writes are done.
func (r *run) finish(ctx workflow.Context) error {
	workflow.Await(ctx, func() bool { return workflow.AllHandlersFinished(ctx) && len(r.outbox) == 0 })
	r.log.Info("instance released; workflow ends", "instance_id", r.in.InstanceID)
	return nil
}

func (r *run) continueAsNew(ctx workflow.Context) error {
	next := r.s
	next.Runs++
	next.Pending = nil
	lifecycle.PruneLedger(&next, workflow.Now(ctx))
	in := r.in
	in.Carry = &next
	r.log.Info("continuing as new", "instance_id", r.in.InstanceID, "runs", next.Runs)
	return workflow.NewContinueAsNewError(ctx, instance.WorkflowType, in)
}

// idle waits for a step, the expiry deadline or a Continue-As-New suggestion. The expiry timer is created only
// when the deadline changes, since every timer is a billed action; runs with expiryWatchChange create none and
// wait for the expiry watch's UpdateCheckExpiry instead.
func (r *run) idle(ctx workflow.Context) {
	deadline, watch := lifecycle.ExpiryDeadline(&r.s, r.cfg.ExpiryGrace)
	if r.watched && !r.early {
		if watch && !workflow.Now(ctx).Before(deadline) {
			r.onExpiry(ctx)
			return
		}
		watch = false
	} else if r.fewer {
		// One timer: a later deadline (a renewal) or nothing to watch (a freeze) keeps the running timer, which
		// re-arms for the remainder or ends when it fires; only an earlier deadline (a renewal refunded) replaces it.
		if r.timer != nil && watch && deadline.Before(r.timerAt) {
			r.stopTimer()
			r.timer = nil
		}
	} else if r.timer != nil && (!watch || !deadline.Equal(r.timerAt)) {
		r.stopTimer()
		r.timer = nil
	}
	if watch && r.timer == nil {
		d := deadline.Sub(workflow.Now(ctx))
		if d <= 0 {
			r.onExpiry(ctx)
			return
		}
		tctx, cancel := workflow.WithCancel(ctx)
		r.timer = workflow.NewTimerWithOptions(tctx, d, workflow.TimerOptions{
			Summary: "expiry safety net: expireTime " + deadline.Add(-r.cfg.ExpiryGrace).Format(time.RFC3339) + " + grace " + r.cfg.ExpiryGrace.String(),
		})
		r.timerAt, r.stopTimer = deadline, cancel
	}
	workflow.Await(ctx, func() bool {
		return len(r.s.Pending) > 0 || r.wantCAN || workflow.GetInfo(ctx).GetContinueAsNewSuggested() ||
			(r.timer != nil && r.timer.IsReady()) || r.expiryDue || (r.early && r.timer == nil)
	})
	if r.expiryDue {
		r.expiryDue = false
		if lifecycle.DecideExpiry(&r.s, workflow.Now(ctx), r.cfg.ExpiryGrace, r.cfg.ExpiryPolicy) != lifecycle.ExpiryNothing {
			r.onExpiry(ctx)
		}
		return
	}
	if r.timer != nil && r.timer.IsReady() {
		err := r.timer.Get(ctx, nil)
		r.timer = nil
		r.early = false
		if err == nil && r.fewer {
			// The timer was set for an earlier deadline: renewed (the next idle re-arms it) or frozen, released.
			if at, ok := lifecycle.ExpiryDeadline(&r.s, r.cfg.ExpiryGrace); !ok || workflow.Now(ctx).Before(at) {
				return
			}
		}
		if err == nil {
			r.onExpiry(ctx)
		}
	}
}

// onExpiry is the safety net: the marketplace should have frozen the instance by now.
func (r *run) onExpiry(ctx workflow.Context) {
	now := workflow.Now(ctx)
	action := lifecycle.DecideExpiry(&r.s, now, r.cfg.ExpiryGrace, r.cfg.ExpiryPolicy)
	expired := *r.s.ExpireTime
	lifecycle.ExpiryHandled(&r.s)
	if action == lifecycle.ExpiryNothing {
		return
	}
	msg := fmt.Sprintf("the instance expired at %s and the marketplace has not frozen it within the grace period of %s",
		expired.Format(time.RFC3339), r.cfg.ExpiryGrace)
	if action == lifecycle.ExpiryAlertAndFreeze {
		msg += "; the expiry policy freezes it"
		lifecycle.ApplyStatus(&r.s, instance.StatusRequest{Status: instance.StatusFreeze, ReceivedAt: now}, now, lifecycle.System)
	} else {
		msg += "; check the marketplace (policy: alert only)"
	}
	key := "expiry:" + expired.Format(time.RFC3339)
	w := r.write("raise expiry alert", r.event(ctx, key, "expiry-alert", lifecycle.System, msg, nil))
	w.Alerts = []store.AlertRow{{Key: key, Kind: "expiry", At: now, Message: msg}}
	r.record(ctx, w)
}
