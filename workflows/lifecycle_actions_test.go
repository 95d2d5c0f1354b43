package workflows

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/converter"

	"github.com/kooflow/kooflow/internal/instance"
	"github.com/kooflow/kooflow/internal/koogallery"
	"github.com/kooflow/kooflow/internal/store"
)

// actionCounter counts, through the test environment's listeners, what a run bills besides its Updates and
// upserts: timers started and cancelled, local activities (by type) and regular activities.
type actionCounter struct {
	timers, cancelled int
	local             map[string]int
	activities        map[string]int
}

func (c *actionCounter) watch(h *harness) {
	c.local, c.activities = map[string]int{}, map[string]int{}
	h.env.SetOnTimerScheduledListener(func(string, time.Duration) { c.timers++ })
	h.env.SetOnTimerCanceledListener(func(string) { c.cancelled++ })
	h.env.SetOnLocalActivityStartedListener(func(info *activity.Info, _ context.Context, _ []any) {
		c.local[info.ActivityType.Name]++
	})
	h.env.SetOnActivityStartedListener(func(info *activity.Info, _ context.Context, _ converter.EncodedValues) {
		c.activities[info.ActivityType.Name]++
	})
}

// TestStandardPathWithFewerActions follows a monthly instance through three renewals, each a few days before its
// expiry, a freeze and the release, with KOOFLOW_RENEWALS_PER_RUN=3: the renewals stay in one run until the
// third continues as new; the expiry safety net is the expiry watch (no timer), or, in runs from before it, keeps
// its timer across a renewal and re-arms it once per period when it fires (never cancelled, never an alert); the purchase provisions in a local activity; the renewal, the
// freeze and the release are recorded by their activity, with no local activity after it. The read model ends up
// as it does when every write goes through the writer.
func TestStandardPathWithFewerActions(t *testing.T) {
	expiryModes(t, func(t *testing.T, w *world) {
		w.cfg.RenewalsPerRun = 3
		exp := t0.AddDate(0, 1, 0)
		w.market.add("O1", koogallery.OrderTypeNew, productMonthly, "crm-basic-month", 1, "100", &exp)
		in := startInput("O1", false)
		var first actionCounter
		var renewals []*upd
		next := w.run(in, func(h *harness) {
			first.watch(h)
			for i := 1; i <= 3; i++ {
				prev, to := exp.AddDate(0, i-1, 0), exp.AddDate(0, i, 0)
				id := fmt.Sprintf("R%d", i)
				w.market.add(id, koogallery.OrderTypeRenew, productMonthly, "crm-basic-month", 1, "90", &to)
				h.at(prev.Add(-5*24*time.Hour).Sub(t0), func() { renewals = append(renewals, h.renewal(id, to)) })
			}
		})
		for _, u := range renewals {
			u.ok(t)
		}
		if next == nil || next.Carry == nil || w.runs != 1 || next.Carry.Runs != 1 {
			t.Fatalf("three renewals in %d runs, continued as new: %v", w.runs, next != nil)
		}
		// With the expiry watch, no timer. Before it: one timer at the purchase, re-armed when the first and the
		// second period's deadlines pass.
		wantTimers := 0
		if w.timers {
			wantTimers = 3
		}
		if first.timers != wantTimers || first.cancelled != 0 {
			t.Fatalf("%d timers started, %d cancelled; want %d and 0", first.timers, first.cancelled, wantTimers)
		}
		if first.activities["Provision"] != 0 || first.local["Provision"] != 1 {
			t.Fatalf("purchase provisioning: %d activities, %d local activities; want 0 and 1", first.activities["Provision"], first.local["Provision"])
		}
		if first.activities["QueryOrder"] != 3 || first.local["QueryOrder"] != 1 {
			t.Fatalf("order queries: %d activities, %d local; want 3 renewals and the purchase's", first.activities["QueryOrder"], first.local["QueryOrder"])
		}
		// accepted, order and provisioned: the renewals are recorded by their order queries.
		if first.local["Record"] != 3 {
			t.Fatalf("%d local Record activities, want the purchase's 3", first.local["Record"])
		}
		if len(w.db.alerts) != 0 {
			t.Fatalf("expiry alerts %+v", w.db.alerts)
		}
		rows := w.db.ordersOfType("RENEW")
		if len(rows) != 3 {
			t.Fatalf("%d RENEW rows, want 3", len(rows))
		}
		for i, o := range rows {
			if !o.EffectiveAt.Equal(exp.AddDate(0, i, 0)) || !o.ExpireTime.Equal(exp.AddDate(0, i+1, 0)) || !o.PaidAmount.Equal(dec("90")) {
				t.Fatalf("renewal %d: effective %v expire %v paid %s", i+1, o.EffectiveAt, o.ExpireTime, o.PaidAmount)
			}
		}
		for _, e := range w.db.events {
			if e.Kind == "renewed" && !strings.HasSuffix(e.Summary, ", paid 90") {
				t.Fatalf("renewal event %q", e.Summary)
			}
		}
		if got, want := w.db.instance.ExpireTime, exp.AddDate(0, 3, 0); got == nil || !got.Equal(want) || w.db.instance.Version != next.Carry.Version {
			t.Fatalf("instance row expires %v version %d, want %v version %d", got, w.db.instance.Version, want, next.Carry.Version)
		}

		var second actionCounter
		end := exp.AddDate(0, 3, 0)
		var calls []*upd
		w.run(*next, func(h *harness) {
			second.watch(h)
			h.at(end.Sub(w.now), func() {
				calls = append(calls, h.update(instance.UpdateStatus, instance.StatusRequest{Status: instance.StatusFreeze}))
			})
			h.at(end.Add(10*24*time.Hour).Sub(w.now), func() { calls = append(calls, h.update(instance.UpdateRelease, instance.ReleaseRequest{})) })
		})
		for _, u := range calls {
			u.ok(t)
		}
		if n := second.local["Record"]; n != 0 {
			t.Fatalf("%d local Record activities after the freeze and the release, want 0", n)
		}
		if got := w.prov.kinds(); !slices.Equal(got, []string{"create", "freeze", "release"}) {
			t.Fatalf("provisioner saw %v", got)
		}
		if k := w.db.eventKinds(); !slices.Equal(k, []string{"accepted", "order", "provisioned", "renewed", "renewed", "renewed", "frozen", "released"}) {
			t.Fatalf("timeline %v", k)
		}
		if r := w.db.instance; r.Lifecycle != string(instance.LifecycleReleased) || r.ReleasedAt == nil || !w.db.cleared {
			t.Fatalf("instance row after the release: %+v cleared=%v", r, w.db.cleared)
		}
		if w.sa["LifecycleState"] != string(instance.LifecycleReleased) {
			t.Fatalf("LifecycleState search attribute %v", w.sa["LifecycleState"])
		}
	})
}

// TestWriteHandedToAnActivityFallsBackToTheWriter: when the provisioning activity cannot apply the freeze's
// write it hands along (PostgreSQL down for a moment), the freeze is not provisioned again: the activity reports
// the write as not recorded and the workflow's writer applies it, as for any other write.
func TestWriteHandedToAnActivityFallsBackToTheWriter(t *testing.T) {
	w := newWorld(t)
	exp := t0.AddDate(0, 1, 0)
	w.market.add("O1", koogallery.OrderTypeNew, productMonthly, "crm-basic-month", 1, "100", &exp)
	failed := 0
	w.db.fail = func(wr store.Write) error {
		if wr.Summary == "record instance frozen" && failed == 0 {
			failed++
			return errors.New("connection refused")
		}
		return nil
	}
	var c actionCounter
	var calls []*upd
	w.run(startInput("O1", false), func(h *harness) {
		c.watch(h)
		h.at(time.Hour, func() {
			calls = append(calls, h.update(instance.UpdateStatus, instance.StatusRequest{Status: instance.StatusFreeze}))
		})
		h.at(2*time.Hour, func() { calls = append(calls, h.update(instance.UpdateRelease, instance.ReleaseRequest{})) })
	})
	for _, u := range calls {
		u.ok(t)
	}
	if failed != 1 {
		t.Fatalf("the freeze's write failed %d times, want once", failed)
	}
	if got := w.prov.kinds(); !slices.Equal(got, []string{"create", "freeze", "release"}) {
		t.Fatalf("provisioner saw %v", got)
	}
	// The purchase's three, and the freeze's write applied by the writer after the activity could not.
	if c.local["Record"] != 4 {
		t.Fatalf("%d local Record activities, want 4", c.local["Record"])
	}
	if k := w.db.eventKinds(); !slices.Equal(k, []string{"accepted", "order", "provisioned", "frozen", "released"}) {
		t.Fatalf("timeline %v", k)
	}
	if r := w.db.instance; r.Lifecycle != string(instance.LifecycleReleased) {
		t.Fatalf("instance row %+v", r)
	}
}
