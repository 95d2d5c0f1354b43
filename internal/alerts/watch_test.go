package alerts_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/kooflow/kooflow/internal/alerts"
	"github.com/kooflow/kooflow/internal/store"
	"github.com/kooflow/kooflow/internal/testenv"
)

// TestOrderQueryFailing: order-query-failing is raised once the order query has failed for After and at least
// MinFailures calls with no success, with the waiting purchases' first refund in its message; watching again
// changes nothing; the first success resolves it.
func TestOrderQueryFailing(t *testing.T) {
	ctx := context.Background()
	st := &store.Store{Pool: testenv.Pool(t)}
	w := &alerts.OrderQueryWatch{Store: st, After: 15 * time.Minute, MinFailures: 3}
	open := func() *store.Alert {
		t.Helper()
		a, err := st.OpenSystemAlert(ctx, alerts.KindOrderQueryFailing)
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	watch := func(at time.Time) {
		t.Helper()
		if err := w.Watch(ctx, at); err != nil {
			t.Fatal(err)
		}
	}
	// One purchase waits, ordered at t0: the marketplace refunds it at t0+3h.
	if _, _, err := st.AcceptInbox(ctx, store.InboxRow{InstanceID: "q1", OrderID: "CS-q1", OrderLineID: "CS-q1-1",
		BusinessID: "b", ReceivedAt: t0}, time.Second); err != nil {
		t.Fatal(err)
	}
	if err := st.Apply(ctx, store.Write{Summary: "accepted", Instance: instance("q1", 1, "PROVISIONING")}); err != nil {
		t.Fatal(err)
	}
	watch(t0)
	if open() != nil {
		t.Fatal("raised while the query works")
	}
	for i, at := range []time.Time{t0.Add(time.Minute), t0.Add(6 * time.Minute)} {
		if err := st.RecordOrderQueryFailure(ctx, at, "order query: CBC.0154 illegal token"); err != nil {
			t.Fatal(err)
		}
		watch(at.Add(20 * time.Minute))
		if open() != nil {
			t.Fatalf("raised after %d failure(s)", i+1)
		}
	}
	if err := st.RecordOrderQueryFailure(ctx, t0.Add(11*time.Minute), "order query: MKT.0999 internal error"); err != nil {
		t.Fatal(err)
	}
	watch(t0.Add(14 * time.Minute)) // three failures, but only 13 minutes of them
	if open() != nil {
		t.Fatal("raised before the failures lasted 15 minutes")
	}
	raisedAt := t0.Add(16 * time.Minute)
	watch(raisedAt)
	a := open()
	if a == nil || a.Subject != "marketplace order query" || !strings.Contains(a.Message, "failed 3 time(s) since 2026-11-02 08:01") ||
		!strings.Contains(a.Message, "MKT.0999 internal error") || !strings.Contains(a.Message, "1 purchase(s) wait") ||
		!strings.Contains(a.Message, "first at 2026-11-02 11:00 UTC (2h44m0s left)") {
		t.Fatalf("alert %+v", a)
	}
	for range 3 {
		watch(raisedAt.Add(time.Hour))
	}
	if a := open(); a == nil || !a.RaisedAt.Equal(raisedAt) {
		t.Fatalf("raised again: %+v", a)
	}
	if err := st.RecordOrderQueryOK(ctx, t0.Add(90*time.Minute)); err != nil {
		t.Fatal(err)
	}
	watch(t0.Add(91 * time.Minute))
	if a := open(); a != nil {
		t.Fatalf("still open after a success: %+v", a)
	}
	all, err := st.Alerts(ctx, store.AlertFilter{Kind: alerts.KindOrderQueryFailing})
	if err != nil || len(all) != 1 || all[0].ResolvedAt == nil {
		t.Fatalf("alerts %+v %v", all, err)
	}
}

// periodInput is what the test's stand-ins for the settlement workflows take: whether to fail, and how.
type periodInput struct {
	Period string `json:"period"`
	Fail   string `json:"fail,omitempty"`
}

// TestSettlementFailed runs settlement workflows on a real Temporal server (stand-ins registered under the
// worker's names SettlementPeriod and SettlementTick) and watches them: a period whose close failed raises
// settlement-failed once with the failure's own words, and a later completed close of the period resolves it; a
// tick that failed because its period's close failed raises only the period's alert, a tick that failed by itself
// raises the schedule's alert, which the next completed tick resolves.
func TestSettlementFailed(t *testing.T) {
	ctx := context.Background()
	st := &store.Store{Pool: testenv.Pool(t)}
	c := testenv.TemporalClient(t)
	tq := testenv.TaskQueue(t)
	period := func(ctx workflow.Context, in periodInput) error {
		if in.Fail != "" {
			return temporal.NewNonRetryableApplicationError(in.Fail, "kooflow.SettlementRefused", nil)
		}
		return nil
	}
	tick := func(ctx workflow.Context, in periodInput) error {
		if in.Period != "" {
			cctx := workflow.WithChildOptions(ctx, workflow.ChildWorkflowOptions{WorkflowID: "settlement/" + in.Period})
			return workflow.ExecuteChildWorkflow(cctx, "SettlementPeriod", periodInput{Period: in.Period, Fail: "child: " + in.Fail}).Get(ctx, nil)
		}
		if in.Fail != "" {
			return temporal.NewNonRetryableApplicationError(in.Fail, "kooflow.SettlementRefused", nil)
		}
		return nil
	}
	wk := worker.New(c, tq, worker.Options{})
	wk.RegisterWorkflowWithOptions(period, workflow.RegisterOptions{Name: "SettlementPeriod"})
	wk.RegisterWorkflowWithOptions(tick, workflow.RegisterOptions{Name: "SettlementTick"})
	if err := wk.Start(); err != nil {
		t.Fatal(err)
	}
	defer wk.Stop()
	run := func(typ, id string, in periodInput) error {
		t.Helper()
		r, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id, TaskQueue: tq}, typ, in)
		if err != nil {
			t.Fatal(err)
		}
		return r.Get(ctx, nil)
	}
	w := &alerts.SettlementWatch{Store: st, Temporal: c}
	// until watches until cond holds: Temporal's visibility lists a closed run a moment after it closed.
	until := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for {
			if err := w.Watch(ctx, time.Now()); err != nil {
				t.Fatal(err)
			}
			if cond() {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: not within 20 s", what)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	openAlert := func(key string) *store.Alert {
		t.Helper()
		a, err := st.OpenSystemAlert(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		return a
	}

	if err := run("SettlementPeriod", "settlement/2031-01", periodInput{Period: "2031-01", Fail: "the bill of 2031-01 is refused: 91390001"}); err == nil {
		t.Fatal("the failing close completed")
	}
	until("period alert raised", func() bool { return openAlert("settlement-failed:2031-01") != nil })
	a := openAlert("settlement-failed:2031-01")
	if a.Subject != "settlement period 2031-01" || !strings.Contains(a.Message, "91390001") ||
		!strings.Contains(a.Message, "kooflow settle close --period 2031-01") || !strings.Contains(a.Message, "failed at") {
		t.Fatalf("alert %+v", a)
	}
	for range 3 {
		if err := w.Watch(ctx, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	if b := openAlert("settlement-failed:2031-01"); b == nil || !b.RaisedAt.Equal(a.RaisedAt) {
		t.Fatalf("raised again: %+v", b)
	}
	if err := run("SettlementPeriod", "settlement/2031-01", periodInput{Period: "2031-01"}); err != nil {
		t.Fatal(err)
	}
	until("period alert resolved", func() bool { return openAlert("settlement-failed:2031-01") == nil })

	// A tick whose period's close failed: the period's alert only.
	err := run("SettlementTick", testenv.Unique("settlement-tick-"), periodInput{Period: "2031-02", Fail: "no bill day"})
	var wfErr *temporal.ChildWorkflowExecutionError
	if !errors.As(err, &wfErr) {
		t.Fatalf("tick with a failing child: %v", err)
	}
	until("the child's period alert", func() bool { return openAlert("settlement-failed:2031-02") != nil })
	if b := openAlert("settlement-failed:tick"); b != nil {
		t.Fatalf("a tick failing with its child raised the schedule's alert too: %+v", b)
	}
	// A tick failing by itself: the schedule's alert, resolved by the next completed tick.
	if err := run("SettlementTick", testenv.Unique("settlement-tick-"), periodInput{Fail: "read the holiday calendar: no such file"}); err == nil {
		t.Fatal("the failing tick completed")
	}
	until("tick alert raised", func() bool { return openAlert("settlement-failed:tick") != nil })
	if b := openAlert("settlement-failed:tick"); b.Subject != "settlement schedule" || !strings.Contains(b.Message, "no such file") {
		t.Fatalf("tick alert %+v", b)
	}
	if err := run("SettlementTick", testenv.Unique("settlement-tick-"), periodInput{}); err != nil {
		t.Fatal(err)
	}
	until("tick alert resolved", func() bool { return openAlert("settlement-failed:tick") == nil })
	if b := openAlert("settlement-failed:2031-02"); b == nil {
		t.Fatal("a completed tick resolved a period's alert")
	}
	counts, err := st.CountOpenAlerts(ctx)
	if err != nil || counts["settlement-failed"] != 1 {
		t.Fatalf("open counts %v %v", counts, err)
	}
}
