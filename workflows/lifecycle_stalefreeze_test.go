package workflows

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kooflow/kooflow/internal/instance"
	"github.com/kooflow/kooflow/internal/koogallery"
	"github.com/kooflow/kooflow/internal/store"
)

// TestFreezeRetryAfterRenewalRaisesAlert: the marketplace freezes an expired instance, the customer renews (which
// unfreezes it), and then a retry of the FREEZE arrives. The instance stays active, the provisioner is not told
// to freeze again, and an alert asks a person to check; the marketplace's call is answered success.
func TestFreezeRetryAfterRenewalRaisesAlert(t *testing.T) {
	w := newWorld(t)
	exp := t0.AddDate(0, 1, 0)
	renewedAt := exp.Add(48 * time.Hour)
	newExp := exp.AddDate(0, 1, 0)
	w.market.add("O1", koogallery.OrderTypeNew, productMonthly, "crm-basic-month", 1, "100", &exp)
	w.market.add("R1", koogallery.OrderTypeRenew, productMonthly, "crm-basic-month", 1, "100", &newExp)
	var calls []*upd
	next := w.run(startInput("O1", false), func(h *harness) {
		h.at(exp.Add(time.Hour).Sub(t0), func() {
			calls = append(calls, h.update(instance.UpdateStatus, instance.StatusRequest{Status: instance.StatusFreeze}))
		})
		h.at(renewedAt.Sub(t0), func() {
			calls = append(calls, h.renewal("R1", newExp))
			calls = append(calls, h.update(instance.UpdateStatus, instance.StatusRequest{Status: instance.StatusFreeze}))
		})
	})
	for _, u := range calls {
		u.ok(t)
	}
	if next == nil || next.Carry.Lifecycle != instance.LifecycleActive {
		t.Fatalf("after the renewal and the late FREEZE: %+v", next)
	}
	if got := w.prov.kinds(); !slices.Equal(got, []string{"create", "freeze", "unfreeze"}) {
		t.Fatalf("provisioner saw %v", got)
	}
	a, ok := w.db.alerts["stale-freeze:"+newExp.UTC().Format(time.RFC3339)]
	if !ok || a.Kind != store.AlertFreezeAfterRenewal || !strings.Contains(a.Message, "not frozen") {
		t.Fatalf("alerts %v", w.db.alerts)
	}
}
