package worker

import (
	"context"
	"slices"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/client"
	sdkworker "go.temporal.io/sdk/worker"

	"github.com/kooflow/kooflow/internal/catalog"
	"github.com/kooflow/kooflow/internal/ledger"
	"github.com/kooflow/kooflow/internal/ledger/fixture"
	"github.com/kooflow/kooflow/internal/settlement"
	"github.com/kooflow/kooflow/internal/testenv"
	"github.com/kooflow/kooflow/workflows"
)

// keep replays a run's history through the workflows this package registers and, when KOOFLOW_RECORD_HISTORIES
// is set, records it as name for the replay tests of workflows/.
func keep(t *testing.T, h *historypb.History, name string) {
	t.Helper()
	testenv.RecordHistory(t, h, name)
	r := sdkworker.NewWorkflowReplayer()
	RegisterWorkflows(r, workflows.LifecycleConfig{})
	if err := r.ReplayWorkflowHistory(nil, testenv.ReplayCopy(t, h)); err != nil {
		t.Fatalf("replay of the run recorded as %s: %v", name, err)
	}
}

// TestSettlementHistoriesThroughTheWorker closes May 2026 as an operator does (the console and the CLI start the
// period's workflow), re-runs the close (the bills are verified, not recomputed), then lets the schedule's tick
// for 9 July 2026 (a backfill, as an operator catches up a missed day) find June due and close it in a child
// workflow. The runs are replayed, and their histories recorded when KOOFLOW_RECORD_HISTORIES is set.
func TestSettlementHistoriesThroughTheWorker(t *testing.T) {
	r := startRig(t)
	ctx := context.Background()
	// May: two general orders on two instances and a joint-operation one, whose 350 stays under the threshold
	// of 1000 and is carried forward; June: one of each.
	r.order(t, "i-may-1", "O-MAY-1", "NEW", crm, "1200", fixture.Beijing("2026-05-06 10:00"))
	r.order(t, "i-may-2", "O-MAY-2", "RENEW", crm, "300", fixture.Beijing("2026-05-20 00:00"))
	r.order(t, "i-may-j", "O-MAY-J", "NEW", analytics, "500", fixture.Beijing("2026-05-11 09:00"))
	r.order(t, "i-jun-1", "O-JUN-1", "NEW", crm, "2000", fixture.Beijing("2026-06-15 14:00"))
	r.order(t, "i-jun-j", "O-JUN-J", "NEW", analytics, "1000", fixture.Beijing("2026-06-02 00:00"))

	may, h := r.close(t, "2026-05")
	gen := bill(t, may, catalog.General)
	if !slices.Equal(may.Computed, []catalog.ProductType{catalog.General, catalog.JointOperation}) || len(may.Verified) != 0 || may.Batches < 2 {
		t.Fatalf("May's close: computed %v, verified %v, %d batches", may.Computed, may.Verified, may.Batches)
	}
	if gen.Status != ledger.StatusFinal || gen.LineCount != 2 || !gen.AmountDue.Equal(amount("1425")) {
		t.Fatalf("general May: %+v", gen)
	}
	if j := bill(t, may, catalog.JointOperation); j.Status != ledger.StatusCarriedForward || !j.CarriedTotal.Equal(amount("350")) {
		t.Fatalf("joint May should be carried forward (350 < 1000): %+v", j)
	}
	keep(t, h, "settlement-period-close.json")

	again, h := r.close(t, "2026-05")
	if len(again.Computed) != 0 || len(again.Verified) != 2 || bill(t, again, catalog.General).ContentHash != gen.ContentHash {
		t.Fatalf("a re-run must verify the same bills: %+v", again)
	}
	keep(t, h, "settlement-period-rerun-verify.json")

	// The schedule, paused so that only the backfilled tick runs; a backfill is taken even while paused.
	sh := r.tc.ScheduleClient().GetHandle(ctx, SettlementScheduleID)
	t.Cleanup(func() { _ = sh.Delete(context.Background()) })
	if err := EnsureSettlementSchedule(ctx, r.tc, SettlementScheduleConfig{TaskQueue: r.taskQueue, Hour: 10, Days: []int{3, 7}}); err != nil {
		t.Fatal(err)
	}
	if err := sh.Pause(ctx, client.SchedulePauseOptions{Note: "test: only the backfilled tick runs"}); err != nil {
		t.Fatal(err)
	}
	at := *fixture.Beijing("2026-07-09 10:00") // a Thursday after both bill dates of June (3 and 7 July, working days)
	if err := sh.Backfill(ctx, client.ScheduleBackfillOptions{Backfill: []client.ScheduleBackfill{{
		Start: at.Add(-time.Minute), End: at.Add(time.Minute), Overlap: enumspb.SCHEDULE_OVERLAP_POLICY_ALLOW_ALL}}}); err != nil {
		t.Fatal(err)
	}
	var tick *client.ScheduleWorkflowExecution
	deadline := time.Now().Add(30 * time.Second)
	for tick == nil {
		d, err := sh.Describe(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range d.Info.RecentActions {
			if a.ScheduleTime.Equal(at) && a.StartWorkflowResult != nil {
				tick = a.StartWorkflowResult
			}
		}
		if tick == nil && time.Now().After(deadline) {
			t.Fatalf("the backfill started no tick for %s; recent actions %+v", at, d.Info.RecentActions)
		}
		time.Sleep(200 * time.Millisecond)
	}
	wctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	var res workflows.SettlementTickResult
	if err := r.tc.GetWorkflow(wctx, tick.WorkflowID, tick.FirstExecutionRunID).Get(wctx, &res); err != nil {
		t.Fatalf("tick %s: %v", tick.WorkflowID, err)
	}
	june := workflows.SettlementWorkflowID(settlement.MustPeriod("2026-06"))
	if res.Date != "2026-07-09" || len(res.Due) != 1 || res.Due[0].Period != "2026-06" ||
		!slices.Equal(res.Due[0].ProductTypes, []catalog.ProductType{catalog.General, catalog.JointOperation}) ||
		!slices.Equal(res.Closed, []string{june}) || len(res.Skipped) != 0 || len(res.Results) != 1 {
		t.Fatalf("the tick of 9 July: %+v", res)
	}
	if g := bill(t, res.Results[0], catalog.General); g.Status != ledger.StatusFinal || g.LineCount != 1 || !g.AmountDue.Equal(amount("1900")) {
		t.Fatalf("general June: %+v", g)
	}
	if j := bill(t, res.Results[0], catalog.JointOperation); j.Status != ledger.StatusFinal || !j.AmountDue.Equal(amount("1050")) {
		t.Fatalf("joint June (carried 350 + 700): %+v", j)
	}
	if b, err := r.store.Bill(ctx, "2026-06", catalog.General); err != nil || !b.Closed() {
		t.Fatalf("June's general bill in the database: %+v %v", b, err)
	}

	th := testenv.History(t, r.tc, tick.WorkflowID, tick.FirstExecutionRunID)
	keep(t, th, "settlement-tick.json")
	var childRun string
	for _, e := range th.Events {
		if a := e.GetChildWorkflowExecutionCompletedEventAttributes(); a != nil && a.GetWorkflowExecution().GetWorkflowId() == june {
			childRun = a.GetWorkflowExecution().GetRunId()
		}
	}
	if childRun == "" {
		t.Fatalf("the tick's history shows no completed close of %s", june)
	}
	keep(t, testenv.History(t, r.tc, june, childRun), "settlement-tick-period-close.json")
}
