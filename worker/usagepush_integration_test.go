package worker

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	sdkworker "go.temporal.io/sdk/worker"

	"github.com/kooflow/kooflow/activities"
	"github.com/kooflow/kooflow/emulator/market"
	"github.com/kooflow/kooflow/internal/config"
	"github.com/kooflow/kooflow/internal/koogallery/usagedata"
	"github.com/kooflow/kooflow/internal/testenv"
	"github.com/kooflow/kooflow/internal/usagepush"
	"github.com/kooflow/kooflow/workflows"
)

// TestUsagePushScheduleBackfillsAndPushesThroughFailures runs the hourly usage push the way production does: the
// worker's Schedule starts the workflow, which plans three missed hours of 40 instances and pushes them in batches
// of 1,000 to the emulated marketplace while it fails the first two pushes. What the marketplace charged then
// equals what was ingested, and the workflow's history stays small.
func TestUsagePushScheduleBackfillsAndPushesThroughFailures(t *testing.T) {
	ctx := context.Background()
	pool := testenv.Pool(t)
	tc := testenv.TemporalClient(t)
	tq := testenv.TaskQueue(t)
	const key = "usage-push-worker-test-key"
	m, srv, err := market.Serve(market.Options{AK: "ak", SK: "sk", SellerKey: key, Seed: 3}, "127.0.0.1:0", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	c, err := usagedata.NewClient(usagedata.Options{Endpoint: srv.URL, SellerKey: config.Secret(key), CAFile: srv.CAFile})
	if err != nil {
		t.Fatal(err)
	}
	st := &usagepush.Store{Pool: pool}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	w := sdkworker.New(tc, tq, sdkworker.Options{})
	RegisterWorkflows(w, workflows.LifecycleConfig{})
	RegisterActivities(w, Activities{UsagePush: &activities.UsagePush{Store: st, Log: log,
		Pusher: &usagepush.Pusher{Store: st, Client: c, Log: log, Worker: "test"}}})
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Stop)

	hour := time.Now().UTC().Truncate(time.Hour)
	var ids []string
	for i := range 40 {
		id := fmt.Sprintf("ppu-w-%02d", i)
		ids = append(ids, id)
		if _, err := pool.Exec(ctx, `INSERT INTO instances (instance_id, workflow_id, order_id, order_line_id, charging_mode, lifecycle)
			VALUES ($1, 'instance/' || $1, 'O-' || $1, 'L-' || $1, 'ON_DEMAND', 'ACTIVE')`, id); err != nil {
			t.Fatal(err)
		}
		m.PutInstance(market.Instance{InstanceID: id, ChargingMode: market.ChargingOnDemand, Status: "NORMAL"})
		// Three closed hours nobody pushed, and the running hour, which waits.
		for h := -3; h <= 0; h++ {
			for k := range 10 {
				if _, err := pool.Exec(ctx, `INSERT INTO usage_records (record_id, instance_id, value, usage_hour) VALUES ($1, $2, $3, $4)`,
					fmt.Sprintf("%s/%d/%d", id, h, k), id, fmt.Sprintf("0.%04d", 1+k+i), hour.Add(time.Duration(h)*time.Hour)); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	m.SetUsageFaults(market.UsageFaults{FailNext: 2})

	h := tc.ScheduleClient().GetHandle(ctx, UsagePushScheduleID)
	t.Cleanup(func() { _ = h.Delete(context.Background()) })
	if err := EnsureUsagePushSchedule(ctx, tc, tq, 5); err != nil {
		t.Fatal(err)
	}
	if err := EnsureUsagePushSchedule(ctx, tc, tq, 7); err != nil {
		t.Fatalf("ensuring an existing schedule: %v", err)
	}
	d, err := h.Describe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, next := range d.Info.NextActionTimes {
		if next.UTC().Minute() != 7 || next.Second() != 0 {
			t.Errorf("next run at %s, want :07 past an hour", next.UTC())
		}
	}
	if err := h.Trigger(ctx, client.ScheduleTriggerOptions{Overlap: enumspb.SCHEDULE_OVERLAP_POLICY_ALLOW_ALL}); err != nil {
		t.Fatal(err)
	}
	var run *client.ScheduleActionResult
	deadline := time.Now().Add(2 * time.Minute)
	for run == nil {
		if time.Now().After(deadline) {
			t.Fatal("the triggered schedule started no workflow")
		}
		time.Sleep(200 * time.Millisecond)
		if d, err = h.Describe(ctx); err == nil && len(d.Info.RecentActions) > 0 {
			run = &d.Info.RecentActions[0]
		}
	}
	wctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	var res workflows.UsagePushResult
	if err := tc.GetWorkflow(wctx, run.StartWorkflowResult.WorkflowID, run.StartWorkflowResult.FirstExecutionRunID).Get(wctx, &res); err != nil {
		t.Fatal(err)
	}
	if res.Planned.Records != 120 || res.Drained.Accepted != 120 {
		t.Fatalf("the run planned %+v and pushed %+v, want 120 windows (40 instances × 3 hours)", res.Planned, res.Drained)
	}
	for _, id := range ids {
		tot, err := st.InstanceTotals(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		var open string
		if err := pool.QueryRow(ctx, `SELECT sum(value)::text FROM usage_records WHERE instance_id = $1 AND usage_hour = $2`, id, hour).Scan(&open); err != nil {
			t.Fatal(err)
		}
		closed := tot.Ingested.Sub(amount(open))
		if charged := m.Charged(id).Value; !charged.Equal(closed) || !tot.Pushed.Equal(closed) {
			t.Fatalf("%s: closed windows hold %s, pushed %s, charged %s", id, closed, tot.Pushed, charged)
		}
	}
	it := tc.GetWorkflowHistory(ctx, run.StartWorkflowResult.WorkflowID, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	events := 0
	for it.HasNext() {
		if _, err := it.Next(); err != nil {
			t.Fatal(err)
		}
		events++
	}
	if events >= 200 || events == 0 {
		t.Fatalf("the usage push's history has %d events", events)
	}
	var failed int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM koogallery_outbound WHERE api = 'usage-data' AND failed`).Scan(&failed); err != nil || failed != 2 {
		t.Fatalf("outbound log holds %d failed pushes (%v), want the 2 injected", failed, err)
	}
}

// TestUsagePushContinuesAsNew pushes 60 windows in batches of 5 with one batch per drain and two drains per run,
// so the workflow continues as new five times; the last run finds nothing left and every window is charged once.
func TestUsagePushContinuesAsNew(t *testing.T) {
	ctx := context.Background()
	pool := testenv.Pool(t)
	tc := testenv.TemporalClient(t)
	tq := testenv.TaskQueue(t)
	const key = "usage-push-can-test-key"
	m, srv, err := market.Serve(market.Options{AK: "ak", SK: "sk", SellerKey: key, Seed: 5}, "127.0.0.1:0", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	c, err := usagedata.NewClient(usagedata.Options{Endpoint: srv.URL, SellerKey: config.Secret(key), CAFile: srv.CAFile})
	if err != nil {
		t.Fatal(err)
	}
	st := &usagepush.Store{Pool: pool}
	w := sdkworker.New(tc, tq, sdkworker.Options{})
	RegisterWorkflows(w, workflows.LifecycleConfig{})
	RegisterActivities(w, Activities{UsagePush: &activities.UsagePush{Store: st,
		Pusher: &usagepush.Pusher{Store: st, Client: c, BatchSize: 5, Worker: "test"}}})
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Stop)
	hour := time.Now().UTC().Truncate(time.Hour)
	for i := range 20 {
		id := fmt.Sprintf("ppu-can-%02d", i)
		if _, err := pool.Exec(ctx, `INSERT INTO instances (instance_id, workflow_id, order_id, order_line_id, charging_mode, lifecycle)
			VALUES ($1, 'instance/' || $1, 'O-' || $1, 'L-' || $1, 'ON_DEMAND', 'ACTIVE')`, id); err != nil {
			t.Fatal(err)
		}
		m.PutInstance(market.Instance{InstanceID: id, ChargingMode: market.ChargingOnDemand, Status: "NORMAL"})
		for h := 1; h <= 3; h++ {
			if _, err := pool.Exec(ctx, `INSERT INTO usage_records (record_id, instance_id, value, usage_hour) VALUES ($1, $2, 1.5, $3)`,
				fmt.Sprintf("%s/%d", id, h), id, hour.Add(-time.Duration(h)*time.Hour)); err != nil {
				t.Fatal(err)
			}
		}
	}
	run, err := tc.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "usage-push-can", TaskQueue: tq}, workflows.UsagePushWorkflowType,
		workflows.UsagePushInput{BatchesPerDrain: 1, DrainsPerRun: 2})
	if err != nil {
		t.Fatal(err)
	}
	firstRun := run.GetRunID()
	wctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	var res workflows.UsagePushResult
	if err := run.Get(wctx, &res); err != nil {
		t.Fatal(err)
	}
	d, err := tc.DescribeWorkflowExecution(ctx, "usage-push-can", "")
	if err != nil {
		t.Fatal(err)
	}
	if d.WorkflowExecutionInfo.Execution.RunId == firstRun || res.Drained.Accepted == 60 {
		t.Fatal("the push did not continue as new")
	}
	if got := m.UsageLedger().Sum(); got.Records != 60 || !got.Value.Equal(amount("90")) {
		t.Fatalf("charged %d records worth %s, want 60 worth 90", got.Records, got.Value)
	}
	if n, err := st.PendingCount(ctx, ""); err != nil || n != 0 {
		t.Fatalf("%d records pending (%v)", n, err)
	}
}
