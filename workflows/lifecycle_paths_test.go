package workflows

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/kooflow/kooflow/internal/instance"
	"github.com/kooflow/kooflow/internal/koogallery"
	"github.com/kooflow/kooflow/internal/lifecycle"
	"github.com/kooflow/kooflow/internal/provisioning"
)

// renewal sends refreshInstance RENEWAL for order id, moving the expiry to exp.
func (h *harness) renewal(id string, exp time.Time) *upd {
	return h.update(instance.UpdateRefreshInstance, instance.RefreshRequest{Scene: instance.SceneRenewal, OrderID: id,
		OrderLineID: id + "-000001", ExpireTime: exp})
}

// TestYearOfMonthlyRenewals renews a monthly instance twelve times. Each renewal ends its run with
// Continue-As-New; the state handed over stays small, every renewal is recorded once with the effective time
// of the expiry it extends, and the expiry search attribute follows.
func TestYearOfMonthlyRenewals(t *testing.T) {
	w := newWorld(t)
	exp := t0.AddDate(0, 1, 0)
	w.market.add("O1", koogallery.OrderTypeNew, productMonthly, "crm-basic-month", 1, "100", &exp)
	in := startInput("O1", false)
	expiries := []time.Time{exp}
	var renewals []*upd
	for i := 1; i <= 12; i++ {
		prev, next := exp.AddDate(0, i-1, 0), exp.AddDate(0, i, 0)
		id := fmt.Sprintf("R%02d", i)
		w.market.add(id, koogallery.OrderTypeRenew, productMonthly, "crm-basic-month", 1, "100", &next)
		at := prev.Add(-5 * 24 * time.Hour).Sub(w.now)
		nextIn := w.run(in, func(h *harness) {
			h.at(at, func() {
				renewals = append(renewals, h.renewal(id, next))
				// The marketplace retries the same renewal with a new delivery: applied once.
				renewals = append(renewals, h.renewal(id, next))
			})
		})
		if nextIn == nil || nextIn.Carry == nil {
			t.Fatalf("renewal %d did not continue as new", i)
		}
		c := nextIn.Carry
		if c.Runs != i || !c.ExpireTime.Equal(next) || len(c.Pending) != 0 || c.Parked != nil {
			t.Fatalf("carry after renewal %d: runs=%d expire=%v pending=%d", i, c.Runs, c.ExpireTime, len(c.Pending))
		}
		if len(c.Ledger) > 1+3+1 || len(c.Applied) > lifecycle.MaxApplied {
			t.Fatalf("carry grows: ledger %d applied %d", len(c.Ledger), len(c.Applied))
		}
		if got := w.sa["ExpireTime"]; got == nil || !got.(time.Time).Equal(next) {
			t.Fatalf("ExpireTime search attribute %v, want %v", got, next)
		}
		expiries = append(expiries, next)
		in = *nextIn
	}
	// Last run: released after the last expiry.
	w.run(in, func(h *harness) {
		h.at(time.Hour, func() { h.update(instance.UpdateRelease, instance.ReleaseRequest{}) })
	})
	for _, u := range renewals {
		u.ok(t)
	}
	rows := w.db.ordersOfType("RENEW")
	if len(rows) != 12 {
		t.Fatalf("%d RENEW rows, want 12", len(rows))
	}
	for i, o := range rows {
		if !o.EffectiveAt.Equal(expiries[i]) || !o.ExpireTime.Equal(expiries[i+1]) || !o.PaidAmount.Equal(dec("100")) {
			t.Fatalf("renewal %d: effective %v expire %v paid %s, want effective %v expire %v", i+1, o.EffectiveAt,
				o.ExpireTime, o.PaidAmount, expiries[i], expiries[i+1])
		}
	}
	if w.runs != 13 {
		t.Fatalf("%d runs, want 13", w.runs)
	}
	// Search attributes are upserted only on change: the purchase run needs a few, each renewal run one
	// (ExpireTime), the release one.
	if w.upserts > 3+12+1 {
		t.Fatalf("%d search-attribute upserts for 13 runs", w.upserts)
	}
	if got := w.prov.kinds(); !slices.Equal(got, []string{"create", "release"}) {
		t.Fatalf("provisioner saw %v", got)
	}
}

// TestTrialToFormal: a trial carries its own expiry and is never billed; trial → formal records the formal order,
// moves the expiry and continues as new; a second conversion is refused.
func TestTrialToFormal(t *testing.T) {
	w := newWorld(t)
	trialExp := t0.AddDate(0, 0, 7)
	formalExp := t0.AddDate(0, 1, 3)
	w.market.add("T1", koogallery.OrderTypeTrial, productMonthly, "crm-pro-month", 1, "", &trialExp)
	w.market.add("F1", koogallery.OrderTypeTrialToFormal, productMonthly, "crm-pro-month", 1, "300", &formalExp)
	in := startInput("T1", false)
	var trial instance.Carry
	var convert *upd
	next := w.run(in, func(h *harness) {
		h.at(time.Hour, func() { trial = h.state() })
		h.at(3*24*time.Hour, func() {
			convert = h.update(instance.UpdateRefreshInstance, instance.RefreshRequest{Scene: instance.SceneTrialToFormal,
				OrderID: "F1", OrderLineID: "F1-000001", ExpireTime: formalExp})
		})
	})
	convert.ok(t)
	if !trial.Trial || !trial.ExpireTime.Equal(trialExp) {
		t.Fatalf("trial state %+v", trial)
	}
	if next == nil || next.Carry.Trial || !next.Carry.ExpireTime.Equal(formalExp) {
		t.Fatalf("after conversion: %+v", next)
	}
	var again, renewalRefund *upd
	w.run(*next, func(h *harness) {
		h.at(time.Hour, func() {
			again = h.update(instance.UpdateRefreshInstance, instance.RefreshRequest{Scene: instance.SceneTrialToFormal,
				OrderID: "F2", OrderLineID: "F2-000001", ExpireTime: formalExp})
			renewalRefund = h.update(instance.UpdateRefreshInstance, instance.RefreshRequest{Scene: instance.SceneUnsubscribeRenewalPeriod,
				OrderID: "U9", ExpireTime: trialExp})
			h.update(instance.UpdateRelease, instance.ReleaseRequest{})
		})
	})
	again.refused(t, lifecycle.CodeInvalid, "already converted")
	renewalRefund.refused(t, lifecycle.CodeInvalid, "no renewal")
	tr, _ := w.db.order("T1")
	if tr.OrderType != "TRIAL" || !tr.PaidAmount.IsZero() || tr.EffectiveAt == nil {
		t.Fatalf("trial row %+v", tr)
	}
	f, _ := w.db.order("F1")
	if f.OrderType != "TRIAL_TO_FORMAL" || !f.PaidAmount.Equal(dec("300")) || !f.EffectiveAt.Equal(t0.Add(3*24*time.Hour)) {
		t.Fatalf("formal row %+v", f)
	}
}

// supervisionStep builds a console supervision request.
func supervisionStep(step, party, note string) instance.SupervisionRequest {
	return instance.SupervisionRequest{Step: step, Actor: instance.Actor{Party: party, Name: party + "-user"}, Note: note}
}

// TestSupervisionWithOneRejection walks a supervised purchase through requirement, rejection, resubmission,
// confirmation, delivery and acceptance; an impossible step is refused with a reason; acceptance makes the
// purchase effective (settleable) and closes the guarantee period.
func TestSupervisionWithOneRejection(t *testing.T) {
	w := newWorld(t)
	w.market.add("S1", koogallery.OrderTypeNew, productSupervised, "onboarding-once", 1, "2000", nil)
	in := startInput("S1", false)
	var start instance.Carry
	var early, wrongParty, refundAfter *upd
	var steps []*upd
	hour := func(n int) time.Duration { return time.Duration(n) * time.Hour }
	actual := t0.Add(20 * time.Hour)
	w.run(in, func(h *harness) {
		h.at(hour(1), func() {
			start = h.state()
			early = h.update(instance.UpdateSupervision, supervisionStep(instance.StepAccept, instance.PartyCustomer, ""))
			wrongParty = h.update(instance.UpdateSupervision, supervisionStep(instance.StepSubmitRequirement, instance.PartySeller, ""))
		})
		for i, r := range []instance.SupervisionRequest{
			supervisionStep(instance.StepSubmitRequirement, instance.PartyCustomer, "10 seats"),
			supervisionStep(instance.StepReject, instance.PartySeller, "name the tenant"),
			supervisionStep(instance.StepSubmitRequirement, instance.PartyCustomer, "10 seats, tenant acme"),
			supervisionStep(instance.StepConfirm, instance.PartySeller, ""),
			{Step: instance.StepDeliver, Actor: instance.Actor{Party: instance.PartySeller, Name: "alice"}, Note: "delivered, voucher #7", ActualStartTime: &actual},
			supervisionStep(instance.StepAccept, instance.PartyCustomer, ""),
		} {
			h.at(hour(2+i*24), func() { steps = append(steps, h.update(instance.UpdateSupervision, r)) })
		}
		h.at(hour(10*24), func() {
			refundAfter = h.update(instance.UpdateRefund, instance.RefundRequest{Action: instance.RefundRequestAction,
				Actor: instance.Actor{Party: instance.PartyCustomer, Name: "bob"}})
			h.update(instance.UpdateRelease, instance.ReleaseRequest{})
		})
	})
	if start.Supervision != instance.SupervisionAwaitingRequirement || !start.Provisioned {
		t.Fatalf("supervised purchase starts in %s (provisioned %v)", start.Supervision, start.Provisioned)
	}
	early.refused(t, lifecycle.CodeConflict, "waits for the customer's requirement")
	wrongParty.refused(t, lifecycle.CodeConflict, "only the customer")
	want := []instance.Supervision{instance.SupervisionAwaitingConfirm, instance.SupervisionAwaitingRequirement,
		instance.SupervisionAwaitingConfirm, instance.SupervisionInService, instance.SupervisionAwaitingAcceptance,
		instance.SupervisionCompleted}
	for i, u := range steps {
		var res instance.SupervisionResult
		u.decode(t, &res)
		if res.Supervision != want[i] {
			t.Fatalf("step %d led to %s, want %s", i+1, res.Supervision, want[i])
		}
	}
	refundAfter.refused(t, lifecycle.CodeConflict, "guarantee period ended")
	acceptedAt := t0.Add(hour(2 + 5*24))
	o, _ := w.db.order("S1")
	if o.EffectiveAt == nil || !o.EffectiveAt.Equal(acceptedAt) {
		t.Fatalf("supervised NEW order effective %v, want the acceptance %v", o.EffectiveAt, acceptedAt)
	}
	if w.db.instance.SupervisionCompletedAt == nil || !w.db.instance.ServiceStartAt.Equal(actual) {
		t.Fatalf("instance row %+v", w.db.instance)
	}
	sup := 0
	for _, e := range w.db.events {
		if e.Kind == "supervision" {
			sup++
			if e.Actor == "" || e.Actor == "system" {
				t.Fatalf("supervision event without its acting party: %+v", e)
			}
		}
	}
	if sup != 6 || w.sa["SupervisionState"] != string(instance.SupervisionCompleted) {
		t.Fatalf("%d supervision events, SA %v", sup, w.sa["SupervisionState"])
	}
}

var (
	customer = instance.Actor{Party: instance.PartyCustomer, Name: "bob"}
	seller   = instance.Actor{Party: instance.PartySeller, Name: "alice"}
)

func refundRequest(order, amount string) instance.RefundRequest {
	r := instance.RefundRequest{Action: instance.RefundRequestAction, OrderID: order, Actor: customer, Reason: "not needed"}
	if amount != "" {
		r.Amount = ptr(dec(amount))
	}
	return r
}

func refundDecision(action, id, amount string) instance.RefundRequest {
	r := instance.RefundRequest{Action: action, RefundID: id, Actor: seller, Reason: "agreed"}
	if amount != "" {
		r.Amount = ptr(dec(amount))
	}
	return r
}

// TestRefundsInTheGuaranteePeriod: approved with a negotiated amount, refused above what was paid, rejected, and
// refused after expiry; the approval writes a negative REFUND order row that settlement nets.
func TestRefundsInTheGuaranteePeriod(t *testing.T) {
	w := newWorld(t)
	exp := t0.AddDate(0, 1, 0)
	w.market.add("O1", koogallery.OrderTypeNew, productMonthly, "crm-basic-month", 1, "100", &exp)
	var req1, tooMuch, approve1, req2, overAsk, reject2, decidedTwice, afterExpiry *upd
	w.run(startInput("O1", false), func(h *harness) {
		h.at(time.Hour, func() { req1 = h.update(instance.UpdateRefund, refundRequest("", "30")) })
		h.at(2*time.Hour, func() {
			tooMuch = h.update(instance.UpdateRefund, refundDecision(instance.RefundApproveAction, "R1", "100.001"))
			approve1 = h.update(instance.UpdateRefund, refundDecision(instance.RefundApproveAction, "R1", "40"))
		})
		h.at(3*time.Hour, func() {
			overAsk = h.update(instance.UpdateRefund, refundRequest("O1", "60.01"))
			req2 = h.update(instance.UpdateRefund, refundRequest("O1", "60"))
		})
		h.at(4*time.Hour, func() {
			reject2 = h.update(instance.UpdateRefund, refundDecision(instance.RefundRejectAction, "R2", ""))
			decidedTwice = h.update(instance.UpdateRefund, refundDecision(instance.RefundApproveAction, "R2", ""))
		})
		h.at(exp.Add(time.Hour).Sub(t0), func() {
			afterExpiry = h.update(instance.UpdateRefund, refundRequest("", "1"))
			h.update(instance.UpdateRelease, instance.ReleaseRequest{})
		})
	})
	var r instance.RefundResult
	req1.decode(t, &r)
	if r.Refund.RefundID != "R1" || r.Refund.Status != instance.RefundPending || !r.Refund.Requested.Equal(dec("30")) {
		t.Fatalf("request: %+v", r.Refund)
	}
	tooMuch.refused(t, lifecycle.CodeConflict, "exceeds what may still be refunded")
	approve1.decode(t, &r)
	if r.Refund.Status != instance.RefundApproved || !r.Refund.Approved.Equal(dec("40")) {
		t.Fatalf("approval: %+v", r.Refund)
	}
	overAsk.refused(t, lifecycle.CodeConflict, "paid 100, refunded 40")
	req2.ok(t)
	reject2.ok(t)
	decidedTwice.refused(t, lifecycle.CodeConflict, "already REJECTED")
	afterExpiry.refused(t, lifecycle.CodeConflict, "expired")
	refunds := w.db.ordersOfType("REFUND")
	if len(refunds) != 1 || !refunds[0].PaidAmount.Equal(dec("-40")) || refunds[0].RefersToOrderID != "O1" || refunds[0].EffectiveAt == nil {
		t.Fatalf("REFUND rows %+v", refunds)
	}
	if w.db.refunds["R1"].Status != "APPROVED" || w.db.refunds["R2"].Status != "REJECTED" || w.db.refunds["R2"].DecidedBy != "seller:alice" {
		t.Fatalf("refund rows %+v", w.db.refunds)
	}
}

// TestRenewalRefunds: a renewal not yet in effect is refunded in full (partial refused); the marketplace's
// UNSUBSCRIBE_RENEWAL_PERIOD that follows moves the expiry back and nets to nothing more; a renewal already in
// effect cannot be refunded.
func TestRenewalRefunds(t *testing.T) {
	w := newWorld(t)
	exp1 := t0.AddDate(0, 1, 0)
	exp2, exp3 := exp1.AddDate(0, 1, 0), exp1.AddDate(0, 2, 0)
	w.market.add("O1", koogallery.OrderTypeNew, productMonthly, "crm-basic-month", 1, "100", &exp1)
	w.market.add("R1", koogallery.OrderTypeRenew, productMonthly, "crm-basic-month", 1, "90", &exp2)
	w.market.add("R2", koogallery.OrderTypeRenew, productMonthly, "crm-basic-month", 1, "80", &exp3)
	w.market.add("U2", koogallery.OrderTypeUnsubscribe, productMonthly, "crm-basic-month", 1, "80", &exp2)
	in := startInput("O1", false)
	next := w.run(in, func(h *harness) { h.at(24*time.Hour, func() { h.renewal("R1", exp2) }) })
	// Run 2: R1 takes effect at exp1. Two days later R2 renews ahead; R1 is in effect, R2 is not.
	var inEffect, partial, full, approve, refundAgain *upd
	next = w.run(*next, func(h *harness) {
		h.at(exp1.Add(48*time.Hour).Sub(w.now), func() { h.renewal("R2", exp3) })
	})
	if next == nil {
		t.Fatal("no continue-as-new after R2")
	}
	var unsub *upd
	w.run(*next, func(h *harness) {
		h.at(time.Hour, func() {
			inEffect = h.update(instance.UpdateRefund, refundRequest("R1", ""))
			partial = h.update(instance.UpdateRefund, refundRequest("R2", "10"))
			full = h.update(instance.UpdateRefund, refundRequest("R2", ""))
		})
		h.at(2*time.Hour, func() {
			approve = h.update(instance.UpdateRefund, refundDecision(instance.RefundApproveAction, "R1", ""))
		})
		h.at(3*time.Hour, func() {
			unsub = h.update(instance.UpdateRefreshInstance, instance.RefreshRequest{Scene: instance.SceneUnsubscribeRenewalPeriod,
				OrderID: "U2", OrderLineID: "U2-000001", ExpireTime: exp2})
		})
		h.at(4*time.Hour, func() {
			refundAgain = h.update(instance.UpdateRefund, refundRequest("R2", ""))
			h.update(instance.UpdateRelease, instance.ReleaseRequest{})
		})
	})
	inEffect.refused(t, lifecycle.CodeConflict, "took effect")
	partial.refused(t, lifecycle.CodeConflict, "in full")
	var r instance.RefundResult
	full.decode(t, &r)
	if !r.Refund.FullOnly || !r.Refund.Requested.Equal(dec("80")) {
		t.Fatalf("full renewal refund request %+v", r.Refund)
	}
	approve.ok(t)
	unsub.ok(t)
	refundAgain.refused(t, lifecycle.CodeConflict, "refunded in full")
	ref := w.db.ordersOfType("REFUND")
	if len(ref) != 1 || !ref[0].PaidAmount.Equal(dec("-80")) || ref[0].RefersToOrderID != "R2" {
		t.Fatalf("REFUND rows %+v", ref)
	}
	u, ok := w.db.order("U2")
	if !ok || u.OrderType != "UNSUBSCRIBE" || !u.PaidAmount.IsZero() || u.RefersToOrderID != "R2" {
		t.Fatalf("UNSUBSCRIBE row after an approved full refund: %+v", u)
	}
	if !w.db.instance.ExpireTime.Equal(exp2) {
		t.Fatalf("expiry %v, want moved back to %v", w.db.instance.ExpireTime, exp2)
	}
}

// TestUnsubscribeRefunds: without a console refund, the marketplace's renewal refund records minus the renewal's
// full amount, and the unsubscribe of the purchase (release with an orderId) minus the refunded amount: the
// seed's example of 1200 bought and refunded nets to zero.
func TestUnsubscribeRefunds(t *testing.T) {
	w := newWorld(t)
	exp1 := t0.AddDate(1, 0, 0)
	exp2 := exp1.AddDate(1, 0, 0)
	w.market.add("O1", koogallery.OrderTypeNew, productMonthly, "crm-basic-month", 1, "1200", &exp1)
	w.market.add("R1", koogallery.OrderTypeRenew, productMonthly, "crm-basic-month", 1, "1100", &exp2)
	w.market.add("U1", koogallery.OrderTypeUnsubscribe, productMonthly, "crm-basic-month", 1, "1100", &exp1)
	w.market.add("U0", koogallery.OrderTypeUnsubscribe, productMonthly, "crm-basic-month", 1, "1200", nil)
	next := w.run(startInput("O1", false), func(h *harness) { h.at(24*time.Hour, func() { h.renewal("R1", exp2) }) })
	var unsub, release *upd
	w.run(*next, func(h *harness) {
		h.at(24*time.Hour, func() {
			unsub = h.update(instance.UpdateRefreshInstance, instance.RefreshRequest{Scene: instance.SceneUnsubscribeRenewalPeriod,
				OrderID: "U1", OrderLineID: "U1-000001", ExpireTime: exp1})
		})
		h.at(48*time.Hour, func() {
			release = h.update(instance.UpdateRelease, instance.ReleaseRequest{OrderID: "U0", OrderLineID: "U0-000001"})
		})
	})
	unsub.ok(t)
	release.ok(t)
	u1, _ := w.db.order("U1")
	u0, _ := w.db.order("U0")
	if !u1.PaidAmount.Equal(dec("-1100")) || u1.RefersToOrderID != "R1" || u1.EffectiveAt == nil {
		t.Fatalf("renewal refund row %+v", u1)
	}
	if !u0.PaidAmount.Equal(dec("-1200")) || u0.RefersToOrderID != "O1" {
		t.Fatalf("unsubscribe row %+v", u0)
	}
	o1, _ := w.db.order("O1")
	if !o1.PaidAmount.Add(u0.PaidAmount).IsZero() {
		t.Fatal("purchase and its unsubscribe do not net to zero")
	}
}

// expiryModes runs test once with the expiry watch's UpdateCheckExpiry as the safety net and once as runs
// started before expiryWatchChange, whose safety net is a timer.
func expiryModes(t *testing.T, test func(t *testing.T, w *world)) {
	for _, timers := range []bool{false, true} {
		name := "expiry watch"
		if timers {
			name = "timer (runs before the expiry watch)"
		}
		t.Run(name, func(t *testing.T) {
			w := newWorld(t)
			w.timers = timers
			test(t, w)
		})
	}
}

// TestExpiryFreezeRelease: with policy "freeze", an instance the marketplace did not freeze within the grace
// period raises an alert and freezes itself (data kept); the marketplace's release later ends it. A watch after
// the freeze changes nothing.
func TestExpiryFreezeRelease(t *testing.T) {
	expiryModes(t, func(t *testing.T, w *world) {
		w.cfg.ExpiryPolicy = lifecycle.PolicyFreeze
		w.cfg.ExpiryGrace = 36 * time.Hour
		exp := t0.AddDate(0, 1, 0)
		w.market.add("O1", koogallery.OrderTypeNew, productMonthly, "crm-basic-month", 1, "100", &exp)
		var before, after instance.Carry
		var freezeAgain *upd
		var due, late *upd
		w.run(startInput("O1", false), func(h *harness) {
			h.at(exp.Add(35*time.Hour).Sub(t0), func() { before = h.state() })
			due = h.watch(exp.Add(36*time.Hour + time.Minute).Sub(t0))
			h.at(exp.Add(37*time.Hour).Sub(t0), func() {
				after = h.state()
				freezeAgain = h.update(instance.UpdateStatus, instance.StatusRequest{Status: instance.StatusFreeze})
			})
			late = h.watch(exp.Add(38 * time.Hour).Sub(t0))
			h.at(exp.Add(15*24*time.Hour).Sub(t0), func() { h.update(instance.UpdateRelease, instance.ReleaseRequest{}) })
		})
		freezeAgain.ok(t)
		if !w.timers {
			for u, want := range map[*upd]string{due: "alert and freeze", late: "nothing"} {
				if got := u.action(t); got != want {
					t.Fatalf("watch answered %q, want %q", got, want)
				}
			}
		}
		if before.Lifecycle != instance.LifecycleActive {
			t.Fatalf("frozen inside the grace period: %s", before.Lifecycle)
		}
		if after.Lifecycle != instance.LifecycleFrozen || after.FrozenBy != instance.FrozenByExpiryPolicy {
			t.Fatalf("after grace: %s by %q", after.Lifecycle, after.FrozenBy)
		}
		if got := w.prov.kinds(); !slices.Equal(got, []string{"create", "freeze", "release"}) {
			t.Fatalf("provisioner saw %v (the marketplace's later FREEZE must not freeze twice)", got)
		}
		if len(w.db.alerts) != 1 {
			t.Fatalf("alerts %v", w.db.alerts)
		}
		for k, a := range w.db.alerts {
			if a.Kind != "expiry" || !w.db.resolved[k] {
				t.Fatalf("alert %+v resolved=%v", a, w.db.resolved[k])
			}
		}
		if kinds := w.db.eventKinds(); !slices.Contains(kinds, "expiry-alert") || !slices.Contains(kinds, "frozen") {
			t.Fatalf("timeline %v", kinds)
		}
	})
}

// TestEarlyExpiryCheckArmsATimer: a check before the run's own deadline (a watch with a shorter grace than the
// run's) changes nothing then, says when the run is due, and makes the run keep its own deadline with a timer,
// since the same check is not answered again.
func TestEarlyExpiryCheckArmsATimer(t *testing.T) {
	w := newWorld(t)
	w.cfg.ExpiryPolicy = lifecycle.PolicyFreeze
	w.cfg.ExpiryGrace = 36 * time.Hour
	exp := t0.AddDate(0, 1, 0)
	w.market.add("O1", koogallery.OrderTypeNew, productMonthly, "crm-basic-month", 1, "100", &exp)
	var c actionCounter
	var early *upd
	var before, after instance.Carry
	w.run(startInput("O1", false), func(h *harness) {
		c.watch(h)
		early = h.watch(exp.Add(12 * time.Hour).Sub(t0))
		h.at(exp.Add(35*time.Hour).Sub(t0), func() { before = h.state() })
		h.at(exp.Add(36*time.Hour+time.Second).Sub(t0), func() { after = h.state() })
		h.at(exp.Add(15*24*time.Hour).Sub(t0), func() { h.update(instance.UpdateRelease, instance.ReleaseRequest{}) })
	})
	early.ok(t)
	var r instance.ExpiryCheckResult
	early.decode(t, &r)
	if due := exp.Add(36 * time.Hour); r.Action != "nothing" || r.DueAt == nil || !r.DueAt.Equal(due) {
		t.Fatalf("early check answered %+v, want nothing, due at %v", r, due)
	}
	if before.Lifecycle != instance.LifecycleActive || after.Lifecycle != instance.LifecycleFrozen || after.FrozenBy != instance.FrozenByExpiryPolicy {
		t.Fatalf("before the run's deadline %s, after it %s by %q", before.Lifecycle, after.Lifecycle, after.FrozenBy)
	}
	if c.timers != 1 || len(w.db.alerts) != 1 {
		t.Fatalf("%d timers, %d alerts; want 1 and 1", c.timers, len(w.db.alerts))
	}
}

// TestExpiryPolicies: with policy "alert" the safety net only alerts, once however often it is watched; when
// the marketplace freezes in time it does nothing at all.
func TestExpiryPolicies(t *testing.T) {
	t.Run("alert only", func(t *testing.T) {
		expiryModes(t, func(t *testing.T, w *world) {
			exp := t0.AddDate(0, 1, 0)
			w.market.add("O1", koogallery.OrderTypeNew, productMonthly, "crm-basic-month", 1, "100", &exp)
			var s instance.Carry
			var first, again *upd
			w.run(startInput("O1", false), func(h *harness) {
				first = h.watch(exp.Add(24*time.Hour + time.Minute).Sub(t0))
				h.at(exp.Add(25*time.Hour).Sub(t0), func() { s = h.state() })
				again = h.watch(exp.Add(26 * time.Hour).Sub(t0))
				h.at(exp.Add(48*time.Hour).Sub(t0), func() { h.update(instance.UpdateRelease, instance.ReleaseRequest{}) })
			})
			if !w.timers {
				if a, b := first.action(t), again.action(t); a != "alert" || b != "nothing" {
					t.Fatalf("watches answered %q then %q, want alert then nothing", a, b)
				}
			}
			if s.Lifecycle != instance.LifecycleActive || len(w.db.alerts) != 1 {
				t.Fatalf("lifecycle %s alerts %d", s.Lifecycle, len(w.db.alerts))
			}
			if got := w.prov.kinds(); !slices.Equal(got, []string{"create", "release"}) {
				t.Fatalf("provisioner saw %v", got)
			}
		})
	})
	t.Run("marketplace froze in time", func(t *testing.T) {
		expiryModes(t, func(t *testing.T, w *world) {
			w.cfg.ExpiryPolicy = lifecycle.PolicyFreeze
			exp := t0.AddDate(0, 1, 0)
			w.market.add("O1", koogallery.OrderTypeNew, productMonthly, "crm-basic-month", 1, "100", &exp)
			var late *upd
			w.run(startInput("O1", false), func(h *harness) {
				h.at(exp.Add(time.Minute).Sub(t0), func() { h.update(instance.UpdateStatus, instance.StatusRequest{Status: instance.StatusFreeze}) })
				late = h.watch(exp.Add(25 * time.Hour).Sub(t0))
				h.at(exp.Add(72*time.Hour).Sub(t0), func() { h.update(instance.UpdateRelease, instance.ReleaseRequest{}) })
			})
			if !w.timers {
				if a := late.action(t); a != "nothing" {
					t.Fatalf("a watch after the marketplace froze answered %q", a)
				}
			}
			if len(w.db.alerts) != 0 {
				t.Fatalf("alerts %v", w.db.alerts)
			}
			if w.db.instance.FrozenBy != "" || w.db.instance.Lifecycle != "RELEASED" {
				t.Fatalf("row %+v", w.db.instance)
			}
		})
	})
}

// TestFreezeRenewalUnfreeze: an expired instance frozen by the marketplace is renewed during the freeze period:
// the renewal unfreezes it (once, whichever of refreshInstance and UNFREEZE comes first) and takes effect now.
func TestFreezeRenewalUnfreeze(t *testing.T) {
	for _, unfreezeFirst := range []bool{false, true} {
		t.Run(fmt.Sprintf("unfreeze first %v", unfreezeFirst), func(t *testing.T) {
			w := newWorld(t)
			exp := t0.AddDate(0, 1, 0)
			renewedAt := exp.Add(72 * time.Hour)
			newExp := exp.AddDate(0, 1, 0)
			w.market.add("O1", koogallery.OrderTypeNew, productMonthly, "crm-basic-month", 1, "100", &exp)
			w.market.add("R1", koogallery.OrderTypeRenew, productMonthly, "crm-basic-month", 1, "100", &newExp)
			var frozen instance.Carry
			var calls []*upd
			next := w.run(startInput("O1", false), func(h *harness) {
				h.at(exp.Add(time.Hour).Sub(t0), func() {
					calls = append(calls, h.update(instance.UpdateStatus, instance.StatusRequest{Status: instance.StatusFreeze}))
				})
				h.at(exp.Add(2*time.Hour).Sub(t0), func() { frozen = h.state() })
				h.at(renewedAt.Sub(t0), func() {
					unfreeze := func() {
						calls = append(calls, h.update(instance.UpdateStatus, instance.StatusRequest{Status: instance.StatusUnfreeze}))
					}
					if unfreezeFirst {
						unfreeze()
					}
					calls = append(calls, h.renewal("R1", newExp))
					if !unfreezeFirst {
						unfreeze()
					}
				})
			})
			for _, u := range calls {
				u.ok(t)
			}
			if frozen.Lifecycle != instance.LifecycleFrozen || frozen.FrozenBy != instance.FrozenByMarketplace {
				t.Fatalf("frozen state %s %q", frozen.Lifecycle, frozen.FrozenBy)
			}
			if next == nil || next.Carry.Lifecycle != instance.LifecycleActive {
				t.Fatalf("after renewal: %+v", next)
			}
			if got := w.prov.kinds(); !slices.Equal(got, []string{"create", "freeze", "unfreeze"}) {
				t.Fatalf("provisioner saw %v", got)
			}
			r, _ := w.db.order("R1")
			if !r.EffectiveAt.Equal(renewedAt) {
				t.Fatalf("a renewal after expiry takes effect when applied: %v, want %v", r.EffectiveAt, renewedAt)
			}
			if w.db.instance.Lifecycle != "ACTIVE" || w.db.instance.FrozenAt != nil {
				t.Fatalf("row %+v", w.db.instance)
			}
		})
	}
}

// TestUpgrade: upgradeInstance queries the CHANGE order and applies the new SKU and quantity through the
// provisioner, once per order.
func TestUpgrade(t *testing.T) {
	w := newWorld(t)
	exp := t0.AddDate(0, 1, 0)
	w.market.add("O1", koogallery.OrderTypeNew, productMonthly, "crm-basic-month", 2, "200", &exp)
	w.market.add("C1", koogallery.OrderTypeChange, productMonthly, "crm-pro-month", 5, "650", &exp)
	var a, b *upd
	var after instance.Carry
	w.run(startInput("O1", false), func(h *harness) {
		h.at(time.Hour, func() {
			a = h.update(instance.UpdateUpgrade, instance.UpgradeRequest{OrderID: "C1", OrderLineID: "C1-000001"})
			b = h.update(instance.UpdateUpgrade, instance.UpgradeRequest{OrderID: "C1", OrderLineID: "C1-000001"})
		})
		h.at(2*time.Hour, func() { after = h.state(); h.update(instance.UpdateRelease, instance.ReleaseRequest{}) })
	})
	a.ok(t)
	b.ok(t)
	if after.Product.SKUCode != "crm-pro-month" || after.Product.Quantity != 5 {
		t.Fatalf("product after upgrade %+v", after.Product)
	}
	if got := w.prov.kinds(); !slices.Equal(got, []string{"create", "upgrade", "release"}) {
		t.Fatalf("provisioner saw %v", got)
	}
	for _, e := range w.prov.events {
		if e.Type == provisioning.Upgrade && (e.SKUCode != "crm-pro-month" || e.Quantity != 5 || e.OrderID != "C1") {
			t.Fatalf("upgrade event %+v", e)
		}
	}
	c, _ := w.db.order("C1")
	if c.OrderType != "CHANGE" || !c.PaidAmount.Equal(dec("650")) || !c.EffectiveAt.Equal(t0.Add(time.Hour)) {
		t.Fatalf("CHANGE row %+v", c)
	}
}

// TestDialTest: a dial test (testFlag) is provisioned by the built-in path only and its orders are marked so
// settlement skips them.
func TestDialTest(t *testing.T) {
	w := newWorld(t)
	exp := t0.AddDate(0, 1, 0)
	w.market.add("D1", koogallery.OrderTypeNew, productMonthly, "crm-basic-month", 1, "100", &exp)
	w.run(startInput("D1", true), func(h *harness) {
		h.at(time.Hour, func() { h.update(instance.UpdateRelease, instance.ReleaseRequest{TestFlag: true}) })
	})
	o, _ := w.db.order("D1")
	if !o.TestFlag || !w.db.instance.TestFlag || w.sa["TestFlag"] != true {
		t.Fatalf("order %+v instance test flag %v SA %v", o, w.db.instance.TestFlag, w.sa["TestFlag"])
	}
	for _, e := range w.prov.events {
		if !e.TestFlag {
			t.Fatalf("a dial-test event without TestFlag reached the provisioner: %+v", e)
		}
	}
}

// TestUnfreezeBeforeRenewalDoesNotRefreeze: the marketplace's UNFREEZE may come well before the renewal's
// refreshInstance (their order is not documented). The expiry the marketplace froze for is handled, so the safety
// net does not freeze the instance again in between, even under policy "freeze".
func TestUnfreezeBeforeRenewalDoesNotRefreeze(t *testing.T) {
	w := newWorld(t)
	w.cfg.ExpiryPolicy = lifecycle.PolicyFreeze
	exp := t0.AddDate(0, 1, 0)
	newExp := exp.AddDate(0, 1, 0)
	w.market.add("O1", koogallery.OrderTypeNew, productMonthly, "crm-basic-month", 1, "100", &exp)
	w.market.add("R1", koogallery.OrderTypeRenew, productMonthly, "crm-basic-month", 1, "100", &newExp)
	var between instance.Carry
	next := w.run(startInput("O1", false), func(h *harness) {
		h.at(exp.Add(time.Hour).Sub(t0), func() { h.update(instance.UpdateStatus, instance.StatusRequest{Status: instance.StatusFreeze}) })
		h.at(exp.Add(72*time.Hour).Sub(t0), func() { h.update(instance.UpdateStatus, instance.StatusRequest{Status: instance.StatusUnfreeze}) })
		h.at(exp.Add(80*time.Hour).Sub(t0), func() { between = h.state() })
		h.at(exp.Add(96*time.Hour).Sub(t0), func() { h.renewal("R1", newExp) })
	})
	if next == nil || between.Lifecycle != instance.LifecycleActive {
		t.Fatalf("between UNFREEZE and the renewal: %s", between.Lifecycle)
	}
	if got := w.prov.kinds(); !slices.Equal(got, []string{"create", "freeze", "unfreeze"}) {
		t.Fatalf("provisioner saw %v", got)
	}
	if len(w.db.alerts) != 0 {
		t.Fatalf("alerts %v", w.db.alerts)
	}
}
