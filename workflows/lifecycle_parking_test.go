package workflows

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kooflow/kooflow/internal/instance"
	"github.com/kooflow/kooflow/internal/koogallery"
	"github.com/kooflow/kooflow/internal/koogallery/orderquery"
	"github.com/kooflow/kooflow/internal/lifecycle"
	"github.com/kooflow/kooflow/internal/provisioning"
	"github.com/kooflow/kooflow/internal/store"
)

// TestOrderQueryParksAndSkip: the marketplace refuses the order query (terminal), the instance parks at that
// stage; an operator skips it, so the instance is provisioned with the safe defaults and no order row exists.
func TestOrderQueryParksAndSkip(t *testing.T) {
	w := newWorld(t)
	in := startInput("GONE", false) // the fake marketplace does not know this order: MKT.0101, terminal
	var parked instance.Carry
	var parkedRow store.InstanceRow
	var skip *upd
	w.run(in, func(h *harness) {
		h.at(time.Hour, func() {
			parked = h.state()
			w.db.mu.Lock()
			parkedRow = w.db.instance
			w.db.mu.Unlock()
			skip = h.update(instance.UpdateOperator, instance.OperatorAction{Action: instance.OperatorSkip,
				Actor: instance.Actor{Party: instance.PartyOperator, Name: "ops"}, Note: "order cancelled upstream"})
		})
		h.at(2*time.Hour, func() { h.update(instance.UpdateRelease, instance.ReleaseRequest{}) })
	})
	skip.ok(t)
	if parked.Parked == nil || !strings.Contains(parked.Parked.Stage, "query purchase order GONE") ||
		!strings.Contains(parked.Parked.Reason, "MKT.0101") {
		t.Fatalf("parked %+v", parked.Parked)
	}
	if !parkedRow.Parked || parkedRow.Supervision != "UNKNOWN" || !parkedRow.ProductKnown || parkedRow.Lifecycle != "PROVISIONING" {
		t.Fatalf("row while the order query is parked: %+v", parkedRow)
	}
	if w.db.instance.ProductKnown || w.db.instance.Supervision != "AWAITING_REQUIREMENT" {
		t.Fatalf("row after skipping the order query: %+v", w.db.instance)
	}
	if w.market.calls["GONE"] != 1 {
		t.Fatalf("a terminal marketplace answer was retried: %d calls", w.market.calls["GONE"])
	}
	if len(w.db.orders) != 0 {
		t.Fatalf("order rows after a skipped query: %v", w.db.orders)
	}
	if got := w.prov.kinds(); !slices.Equal(got, []string{"create", "release"}) {
		t.Fatalf("provisioner saw %v", got)
	}
	for _, p := range w.db.parkings {
		if p.Resolution != "skip" {
			t.Fatalf("parking %+v", p)
		}
	}
}

// TestRetriesAreBoundedThenParkAndResumeBySignal: transient failures are retried with backoff; once the retry
// schedule is spent the instance parks instead of retrying forever, and the Temporal UI's signal resumes it.
func TestRetriesAreBoundedThenParkAndResumeBySignal(t *testing.T) {
	w := newWorld(t)
	exp := t0.AddDate(0, 1, 0)
	w.market.add("O1", koogallery.OrderTypeNew, productMonthly, "crm-basic-month", 1, "100", &exp)
	// Two transient failures of the order query are absorbed by retries.
	w.market.failNext("O1", errors.New("connection reset"), &orderquery.Error{HTTPStatus: 500, Code: "MKT.0999", Retryable: true})
	down := true
	w.prov.fail = func(e provisioning.Event, attempt int) error {
		if down {
			return errors.New("503 service unavailable")
		}
		return nil
	}
	var parked instance.Carry
	var attemptsWhenParked int
	w.run(startInput("O1", false), func(h *harness) {
		h.at(3*time.Hour, func() {
			parked = h.state()
			w.prov.mu.Lock()
			for _, n := range w.prov.attempts {
				attemptsWhenParked = n
			}
			w.prov.mu.Unlock()
			down = false
			// The payload claims a name; a signal is not authenticated, so the recorded actor is the UI.
			h.env.SignalWorkflow(instance.SignalOperator, instance.OperatorAction{Action: instance.OperatorResume, Actor: instance.Actor{Party: instance.PartySeller, Name: "alice"}})
		})
		h.at(4*time.Hour, func() { h.update(instance.UpdateRelease, instance.ReleaseRequest{}) })
	})
	if w.market.calls["O1"] != 3 {
		t.Fatalf("order query called %d times, want 2 failures + 1 success", w.market.calls["O1"])
	}
	if parked.Parked == nil || parked.Parked.Stage != "provision create" {
		t.Fatalf("not parked after the retry schedule: %+v", parked.Parked)
	}
	// The purchase's first attempt is a local activity; the activity's whole retry schedule follows it.
	if want := 1 + int(provisionRetry.MaximumAttempts); attemptsWhenParked != want {
		t.Fatalf("%d provisioning attempts before parking, want %d (one local, then the activity's schedule)", attemptsWhenParked, want)
	}
	if got := w.prov.kinds(); !slices.Equal(got, []string{"create", "release"}) {
		t.Fatalf("provisioner saw %v", got)
	}
	for _, p := range w.db.parkings {
		if p.Resolution != "resume" || p.ResolvedBy != "operator:temporal-ui" {
			t.Fatalf("parking %+v", p)
		}
	}
}

// TestReleaseWhileParkedAbandonsProvisioning: the marketplace gives up (refund, release) while creation is
// parked; the parked stage is abandoned, nothing is deprovisioned, and calls after the release are refused with
// 000003.
func TestReleaseWhileParkedAbandonsProvisioning(t *testing.T) {
	w := newWorld(t)
	exp := t0.AddDate(0, 1, 0)
	w.market.add("O1", koogallery.OrderTypeNew, productMonthly, "crm-basic-month", 1, "100", &exp)
	w.prov.fail = func(e provisioning.Event, attempt int) error { return needsPersonErr("quota exceeded") }
	var release, late, freeze, refund *upd
	w.run(startInput("O1", false), func(h *harness) {
		h.at(time.Hour, func() {
			release = h.update(instance.UpdateRelease, instance.ReleaseRequest{})
			late = h.update(instance.UpdateRefreshInstance, instance.RefreshRequest{Scene: instance.SceneRenewal, OrderID: "R1", ExpireTime: exp.AddDate(0, 1, 0)})
			freeze = h.update(instance.UpdateStatus, instance.StatusRequest{Status: instance.StatusFreeze})
			refund = h.update(instance.UpdateRefund, refundRequest("", ""))
		})
	})
	release.ok(t)
	late.refused(t, lifecycle.CodeReleased, "being released")
	freeze.refused(t, lifecycle.CodeReleased, "being released")
	refund.refused(t, lifecycle.CodeConflict, "being released")
	if len(w.prov.events) != 0 {
		t.Fatalf("provisioner saw %v", w.prov.kinds())
	}
	for _, p := range w.db.parkings {
		if p.Resolution != "abandoned" {
			t.Fatalf("parking %+v", p)
		}
	}
	if w.db.instance.Lifecycle != "RELEASED" || w.db.instance.Parked {
		t.Fatalf("row %+v", w.db.instance)
	}
	if o, ok := w.db.order("O1"); !ok || o.EffectiveAt != nil {
		t.Fatalf("the order is recorded but never took effect: %+v", o)
	}
}

// TestReadModelOutageParks: PostgreSQL failing past the write retries parks the instance (the search attribute
// shows it even though no row can be written); once it is back an operator resumes and nothing is lost.
func TestReadModelOutageParks(t *testing.T) {
	w := newWorld(t)
	exp := t0.AddDate(0, 1, 0)
	w.market.add("O1", koogallery.OrderTypeNew, productMonthly, "crm-basic-month", 1, "100", &exp)
	dbDown := false
	w.db.fail = func(wr store.Write) error {
		if dbDown {
			return errors.New("connection refused")
		}
		return nil
	}
	var parked instance.Carry
	var parkedSA any
	var supervision *upd
	w.run(startInput("O1", false), func(h *harness) {
		h.at(time.Hour, func() {
			dbDown = true
			h.update(instance.UpdateStatus, instance.StatusRequest{Status: instance.StatusFreeze})
		})
		h.at(3*time.Hour, func() {
			parked, parkedSA = h.state(), w.sa["Parked"]
			dbDown = false
			h.update(instance.UpdateOperator, instance.OperatorAction{Action: instance.OperatorResume})
		})
		h.at(4*time.Hour, func() {
			supervision = h.update(instance.UpdateSupervision, supervisionStep(instance.StepConfirm, instance.PartySeller, ""))
			h.update(instance.UpdateRelease, instance.ReleaseRequest{})
		})
	})
	if parked.Parked == nil || !strings.HasPrefix(parked.Parked.Stage, "record in PostgreSQL") || parkedSA != true {
		t.Fatalf("parked %+v SA %v", parked.Parked, parkedSA)
	}
	supervision.refused(t, lifecycle.CodeConflict, "not under service supervision")
	if kinds := w.db.eventKinds(); !slices.Contains(kinds, "frozen") || !slices.Contains(kinds, "parked") || !slices.Contains(kinds, "released") {
		t.Fatalf("timeline lost writes: %v", kinds)
	}
	if w.db.instance.Lifecycle != "RELEASED" || w.db.instance.Parked {
		t.Fatalf("row %+v", w.db.instance)
	}
}

// TestUnknownProduct: a product missing from the catalog gets the safe default (supervised) and a visible
// warning: an alert row and a timeline event.
func TestUnknownProduct(t *testing.T) {
	w := newWorld(t)
	w.market.add("X1", koogallery.OrderTypeNew, "OFFI-NOT-IN-CATALOG", "sku-x", 1, "10", nil)
	var s instance.Carry
	var check instance.ChangeCheckResult
	w.run(startInput("X1", false), func(h *harness) {
		h.at(time.Hour, func() {
			s = h.state()
			v, err := h.env.QueryWorkflow(instance.QueryChangeCheck, instance.ChangeCheckRequest{SKUCode: "sku-y", LinearValue: 3})
			if err == nil {
				_ = v.Get(&check)
			}
			h.update(instance.UpdateRelease, instance.ReleaseRequest{})
		})
	})
	if s.Product.Known || !s.Product.Supervised || s.Supervision != instance.SupervisionAwaitingRequirement {
		t.Fatalf("unknown product state %+v supervision %s", s.Product, s.Supervision)
	}
	if !check.Allowed {
		t.Fatalf("change check %+v", check)
	}
	a, ok := w.db.alerts["unknown-product:OFFI-NOT-IN-CATALOG"]
	if !ok || !strings.Contains(a.Message, "not in the catalog") {
		t.Fatalf("alerts %v", w.db.alerts)
	}
	if !slices.Contains(w.db.eventKinds(), "unknown-product") {
		t.Fatalf("timeline %v", w.db.eventKinds())
	}
	o, _ := w.db.order("X1")
	if o.EffectiveAt != nil {
		t.Fatal("an unknown (so supervised) product's purchase took effect without acceptance")
	}
}

// TestMarketplaceRetriesAreIdempotentByState: deliveries of the same call with new Update IDs change nothing the
// second time: freeze twice is one freeze, the same renewal order is recorded once.
func TestMarketplaceRetriesAreIdempotentByState(t *testing.T) {
	w := newWorld(t)
	exp := t0.AddDate(0, 1, 0)
	w.market.add("O1", koogallery.OrderTypeNew, productMonthly, "crm-basic-month", 1, "100", &exp)
	var calls []*upd
	w.run(startInput("O1", false), func(h *harness) {
		h.at(time.Hour, func() {
			for range 3 {
				calls = append(calls, h.update(instance.UpdateStatus, instance.StatusRequest{Status: instance.StatusFreeze}))
			}
		})
		h.at(2*time.Hour, func() {
			calls = append(calls, h.update(instance.UpdateStatus, instance.StatusRequest{Status: instance.StatusUnfreeze}),
				h.update(instance.UpdateStatus, instance.StatusRequest{Status: instance.StatusUnfreeze}))
			h.update(instance.UpdateRelease, instance.ReleaseRequest{})
			calls = append(calls, h.update(instance.UpdateRelease, instance.ReleaseRequest{}))
		})
	})
	for _, u := range calls {
		u.ok(t)
	}
	if got := w.prov.kinds(); !slices.Equal(got, []string{"create", "freeze", "unfreeze", "release"}) {
		t.Fatalf("provisioner saw %v", got)
	}
}
