package workflows

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kooflow/kooflow/internal/instance"
	"github.com/kooflow/kooflow/internal/koogallery"
	"github.com/kooflow/kooflow/internal/lifecycle"
	"github.com/kooflow/kooflow/internal/provisioning"
)

// TestPurchaseProvisionRelease is the plain path: newInstance answers at once, the order is queried and recorded,
// the instance is provisioned (the purchase takes effect then) and a release ends the workflow.
func TestPurchaseProvisionRelease(t *testing.T) {
	w := newWorld(t)
	exp := t0.AddDate(0, 1, 0)
	w.market.add("O1", koogallery.OrderTypeNew, productMonthly, "crm-basic-month", 5, "100.50", &exp)
	in := startInput("O1", false)
	var first, later, wrong, release *upd
	var mid instance.Carry
	next := w.run(in, func(h *harness) {
		h.at(0, func() {
			first = h.update(instance.UpdateNewInstance, instance.NewInstanceRequest{OrderID: "O1", OrderLineID: "O1-000001", BusinessID: "b1"})
		})
		h.at(time.Hour, func() {
			later = h.update(instance.UpdateNewInstance, instance.NewInstanceRequest{OrderID: "O1", OrderLineID: "O1-000001", BusinessID: "b2"})
			mid = h.state()
		})
		h.at(2*time.Hour, func() {
			wrong = h.update(instance.UpdateNewInstance, instance.NewInstanceRequest{OrderID: "O2", OrderLineID: "O2-000001"})
			release = h.update(instance.UpdateRelease, instance.ReleaseRequest{})
		})
	})
	if next != nil {
		t.Fatal("continued as new without a renewal")
	}
	wrong.refused(t, lifecycle.CodeInvalid, "belongs to order O1")
	release.ok(t)
	var r1, r2 instance.NewInstanceResult
	first.decode(t, &r1)
	later.decode(t, &r2)
	if r1.InstanceID != in.InstanceID || r1.Provisioned {
		t.Fatalf("first newInstance answered %+v, want the instance id and not yet provisioned", r1)
	}
	if !r2.Provisioned || r2.InstanceID != in.InstanceID {
		t.Fatalf("a retry after provisioning answered %+v", r2)
	}
	if mid.Lifecycle != instance.LifecycleActive || mid.Supervision != instance.SupervisionNotInvolved || !mid.Product.Known ||
		mid.Product.Quantity != 5 || mid.ExpireTime == nil || !mid.ExpireTime.Equal(exp) {
		t.Fatalf("state after provisioning: %+v", mid)
	}
	o, ok := w.db.order("O1")
	if !ok || o.OrderType != "NEW" || !o.PaidAmount.Equal(dec("100.50")) || o.EffectiveAt == nil || o.TestFlag || o.Quantity != 5 {
		t.Fatalf("NEW order row: %+v", o)
	}
	if strings.Contains(string(o.Raw), "13800000000") || strings.Contains(string(o.Raw), "Zhang") {
		t.Fatalf("personal data in orders.raw: %s", o.Raw)
	}
	if got := w.prov.kinds(); !slices.Equal(got, []string{"create", "release"}) {
		t.Fatalf("provisioner saw %v", got)
	}
	if w.db.instance.Lifecycle != "RELEASED" || w.db.instance.ReleasedAt == nil || !w.db.cleared {
		t.Fatalf("final row %+v cleared=%v", w.db.instance, w.db.cleared)
	}
	if got := w.db.eventKinds(); !slices.Equal(got, []string{"accepted", "order", "provisioned", "released"}) {
		t.Fatalf("timeline %v", got)
	}
	if w.sa["LifecycleState"] != "RELEASED" || w.sa["ProductId"] != productMonthly || w.sa["Parked"] == true {
		t.Fatalf("search attributes %v", w.sa)
	}
	// Each upsert is a billed action: one when the purchase is done, one at release.
	if w.upserts != 2 {
		t.Fatalf("%d search-attribute upserts, want 2", w.upserts)
	}
}

// TestParkingThenResume: a provisioning failure that needs a person parks the instance (search attribute and
// row), the marketplace can still call meanwhile, and an operator's resume retries the step.
func TestParkingThenResume(t *testing.T) {
	w := newWorld(t)
	exp := t0.AddDate(0, 1, 0)
	w.market.add("O1", koogallery.OrderTypeNew, productMonthly, "crm-basic-month", 1, "100", &exp)
	broken := true
	w.prov.fail = func(e provisioning.Event, attempt int) error {
		if e.Type == "create" && broken {
			return needsPersonErr("provisioning endpoint refused the create event with 422: tenant name taken")
		}
		return nil
	}
	in := startInput("O1", false)
	var parked, resumed instance.Carry
	var parkedSA any
	var reboot, freeze, resume, again, release *upd
	w.run(in, func(h *harness) {
		h.at(time.Hour, func() {
			parked = h.state()
			parkedSA = w.sa["Parked"]
			// A wrong action is refused; a freeze is accepted and queued behind the parked step.
			reboot = h.update(instance.UpdateOperator, instance.OperatorAction{Action: "reboot"})
			freeze = h.update(instance.UpdateStatus, instance.StatusRequest{Status: instance.StatusFreeze})
		})
		h.at(90*time.Minute, func() {
			broken = false
			resume = h.update(instance.UpdateOperator, instance.OperatorAction{Action: instance.OperatorResume,
				Actor: instance.Actor{Party: instance.PartyOperator, Name: "ops"}, Note: "tenant renamed"})
		})
		h.at(2*time.Hour, func() {
			resumed = h.state()
			again = h.update(instance.UpdateOperator, instance.OperatorAction{Action: instance.OperatorResume})
			release = h.update(instance.UpdateRelease, instance.ReleaseRequest{})
		})
	})
	reboot.refused(t, lifecycle.CodeInvalid, "resume or skip")
	freeze.ok(t)
	var res instance.OperatorResult
	resume.decode(t, &res)
	if res.Stage != "provision create" {
		t.Errorf("resumed stage %q", res.Stage)
	}
	again.refused(t, lifecycle.CodeConflict, "not parked")
	release.ok(t)
	if resumed.Parked != nil || !resumed.Provisioned || resumed.Lifecycle != instance.LifecycleFrozen {
		t.Errorf("after resume: parked=%v provisioned=%v lifecycle=%s", resumed.Parked, resumed.Provisioned, resumed.Lifecycle)
	}
	if parked.Parked == nil || parked.Parked.Stage != "provision create" || !strings.Contains(parked.Parked.Reason, "tenant name taken") {
		t.Fatalf("parked state %+v", parked.Parked)
	}
	if parkedSA != true {
		t.Fatalf("Parked search attribute while parked: %v", parkedSA)
	}
	if len(w.db.parkings) != 1 {
		t.Fatalf("parkings %v", w.db.parkings)
	}
	for _, p := range w.db.parkings {
		if p.Resolution != "resume" || p.ResolvedBy != "operator:ops" || p.Note != "tenant renamed" {
			t.Fatalf("parking row %+v", p)
		}
	}
	if got := w.prov.kinds(); !slices.Equal(got, []string{"create", "freeze", "release"}) {
		t.Fatalf("provisioner saw %v", got)
	}
	if kinds := w.db.eventKinds(); !slices.Contains(kinds, "parked") || !slices.Contains(kinds, "resume") {
		t.Fatalf("timeline %v", kinds)
	}
}
