package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/shopspring/decimal"
	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/client"
	sdkworker "go.temporal.io/sdk/worker"

	"github.com/kooflow/kooflow/emulator/deliver"
	"github.com/kooflow/kooflow/emulator/market"
	"github.com/kooflow/kooflow/emulator/scenario"
	"github.com/kooflow/kooflow/internal/config"
	"github.com/kooflow/kooflow/internal/logging"
	"github.com/kooflow/kooflow/internal/testenv"
	"github.com/kooflow/kooflow/internal/teststack"
	"github.com/kooflow/kooflow/internal/usagepush"
	"github.com/kooflow/kooflow/usageclient"
	"github.com/kooflow/kooflow/worker"
	"github.com/kooflow/kooflow/workflows"
)

// ppuProduct is the development catalog's pay-per-use product.
const ppuProduct = "OFFI-KOOFLOW-API-PPU"

// usageStack is a kooflow wired to the emulator, with the handles the usage test reads.
type usageStack struct {
	*stack
	pool *pgxpool.Pool
	tc   client.Client
}

func startUsageStack(t *testing.T) *usageStack {
	t.Helper()
	lvl, out := "error", io.Discard
	if v := os.Getenv("E2E_LOG"); v != "" {
		lvl, out = v, io.Writer(os.Stderr)
	}
	log, err := logging.New(out, "text", lvl)
	if err != nil {
		t.Fatal(err)
	}
	cfg, m, msrv := teststack.WithMarket(t, teststack.Keys{AccessKey: accessKey, MarketAK: marketAK, MarketSK: marketSK},
		market.Options{Log: log}, map[string]string{
			config.EnvTaskQueue:         testenv.TaskQueue(t),
			config.EnvConsoleTokens:     "e2e:" + consoleToken + ",buyer:" + customerToken + ":customer+read,meter:" + meterToken + ":usage",
			config.EnvProvisionerSecret: "e2e-provisioner-secret",
			config.EnvLogLevel:          lvl,
		})
	st := teststack.Start(t, cfg, teststack.Options{Log: log})
	return &usageStack{stack: &stack{cfg: cfg, market: m, marketSrv: msrv, apiURL: st.URL, sellerURL: st.URL + cfg.ProductionPath,
		consoleURL: st.URL + "/console/v1", log: log}, pool: st.Pool, tc: st.Temporal}
}

// meterToken is the seller's metering system's token: scope usage and nothing else.
const meterToken = "e2e-meter-token-0123456789abcdef"

// usageRecord is one record the seller's systems report.
type usageRecord struct {
	id    string
	hour  time.Time
	value string
}

// TestPayPerUseUsageEndToEnd takes a pay-per-use purchase through kooflow and the emulated marketplace: usage is
// ingested with duplicates and a late record, hourly pushes run from the worker's Schedule while the marketplace
// fails whole pushes and refuses the instance for a while, and the release waits for the final push of the
// running hour. In the end what was ingested, pushed and charged are equal to 4 decimals, and the release's
// history is kept for the replay tests.
func TestPayPerUseUsageEndToEnd(t *testing.T) {
	// The test counts on the running hour staying the same from the first record to the release.
	if left := time.Until(time.Now().Truncate(time.Hour).Add(time.Hour)); left < 2*time.Minute {
		time.Sleep(left + 5*time.Second)
	} else if into := time.Since(time.Now().Truncate(time.Hour)); into < 5*time.Second {
		time.Sleep(5*time.Second - into)
	}
	s := startUsageStack(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	client := deliver.NewClient(s.sellerURL, accessKey)

	// Purchase.
	orderID := "PPUE2E" + fmt.Sprint(time.Now().UnixNano()%1e9)
	if err := s.market.PutOrder(market.Order{OrderID: orderID, OrderType: market.TypeNew, CreateTime: time.Now().UTC().Truncate(time.Second),
		Lines: []market.Line{{OrderLineID: orderID + "-000001", ChargingMode: market.ChargingOnDemand,
			ProductID: ppuProduct, SKUCode: "api-ppu", LinearValue: 1}},
		Buyer: &market.Buyer{CustomerID: "ppu-e2e-customer-00000000000000", CustomerName: "ppu"}}); err != nil {
		t.Fatal(err)
	}
	a := client.Send(ctx, deliver.Message{Activity: deliver.NewInstance, OrderID: orderID,
		Fields: []deliver.Field{{Name: "orderId", Value: orderID}, {Name: "orderLineId", Value: orderID + "-000001"},
			{Name: "productId", Value: ppuProduct}, {Name: "businessId", Value: ""}}}, 0)
	if !a.Answered() || a.InstanceID == "" || (a.ResultCode != deliver.CodeSuccess && a.ResultCode != deliver.CodeInProgress) {
		t.Fatalf("newInstance: %+v", a)
	}
	inst := a.InstanceID
	s.waitLifecycle(t, ctx, inst, "ACTIVE")
	var mode string
	if err := s.pool.QueryRow(ctx, `SELECT charging_mode FROM instances WHERE instance_id = $1`, inst).Scan(&mode); err != nil || mode != "ON_DEMAND" {
		t.Fatalf("instance %s has charging mode %q (%v), want ON_DEMAND", inst, mode, err)
	}
	s.market.PutInstance(market.Instance{InstanceID: inst, OrderID: orderID, ChargingMode: market.ChargingOnDemand, Status: "NORMAL"})

	// Usage of three closed hours and the running one, each record sent twice.
	now := time.Now().UTC()
	cur := now.Truncate(time.Hour)

	var recs []usageRecord
	for h := -3; h <= 0; h++ {
		for k := range 5 {
			recs = append(recs, usageRecord{id: fmt.Sprintf("%s/%d/%d", inst, h, k), hour: cur.Add(time.Duration(h) * time.Hour),
				value: fmt.Sprintf("%d.%04d", k, 37*(k+1)+h+3)})
		}
	}
	s.ingest(t, ctx, inst, recs, len(recs), 0)
	s.ingest(t, ctx, inst, recs[:7], 0, 7) // sent again: acknowledged as duplicates, not counted
	ingestedClosed := decimal.Zero
	for _, r := range recs {
		if r.hour.Before(cur) {
			ingestedClosed = ingestedClosed.Add(decimal.RequireFromString(r.value))
		}
	}

	// The hourly push, from the worker's Schedule, while the marketplace fails the first two pushes.
	h := s.tc.ScheduleClient().GetHandle(ctx, worker.UsagePushScheduleID)
	t.Cleanup(func() { _ = h.Delete(context.Background()) })
	if err := worker.EnsureUsagePushSchedule(ctx, s.tc, s.cfg.TaskQueue, 5); err != nil {
		t.Fatal(err)
	}
	s.market.SetUsageFaults(market.UsageFaults{FailNext: 2})
	res := s.triggerPush(t, ctx, h)
	if res.Planned.Records != 3 || res.Drained.Accepted != 3 {
		t.Fatalf("first push: planned %+v, pushed %+v; want the 3 closed hours", res.Planned, res.Drained)
	}
	if got := s.market.Charged(inst).Value; !got.Equal(ingestedClosed) {
		t.Fatalf("charged %s after the first push, want the closed hours' %s", got, ingestedClosed)
	}

	// A late record for the oldest window, while the marketplace refuses the instance (013): the push parks with
	// an alert; once the marketplace takes the instance again an operator resumes it, and the late usage goes as the
	// window's second revision.
	late := usageRecord{id: inst + "/late", hour: cur.Add(-3 * time.Hour), value: "0.0042"}
	s.ingest(t, ctx, inst, []usageRecord{late}, 1, 0)
	s.market.SetUsageFaults(market.UsageFaults{RecordCodes: map[string]string{inst: "013"}})
	res = s.triggerPush(t, ctx, h)
	if res.Planned.Records != 1 || res.Drained.Parked != 1 {
		t.Fatalf("second push: planned %+v, pushed %+v; want the late record parked", res.Planned, res.Drained)
	}
	var alerts int
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM instance_alerts WHERE instance_id = $1 AND kind = $2 AND resolved_at IS NULL`,
		inst, usagepush.AlertParked).Scan(&alerts); err != nil || alerts != 1 {
		t.Fatalf("open parked alerts: %d (%v)", alerts, err)
	}
	s.market.SetUsageFaults(market.UsageFaults{})
	if _, err := (&usagepush.Store{Pool: s.pool}).Resume(ctx, inst); err != nil {
		t.Fatal(err)
	}
	res = s.triggerPush(t, ctx, h)
	if res.Drained.Accepted != 1 {
		t.Fatalf("after resuming: %+v", res.Drained)
	}
	var revs int
	if err := s.pool.QueryRow(ctx, `SELECT max(revision) FROM usage_pushes WHERE instance_id = $1 AND usage_hour = $2`,
		inst, late.hour).Scan(&revs); err != nil || revs != 2 {
		t.Fatalf("the late record's window has revision %d (%v), want 2", revs, err)
	}

	// queryInstance reports the cumulative usage kooflow took, as of now.
	if v, at := s.usageInfo(t, ctx, inst); v.StringFixed(4) != sumOf(append(recs, late)).StringFixed(4) || len(at) != 17 {
		t.Fatalf("queryInstance usageInfo: usageValue %s at %q, want %s at a yyyyMMddHHmmssSSS time", v, at, sumOf(append(recs, late)))
	}

	// Release: the lifecycle pushes the running hour up to the release before it completes.
	rel := client.Send(ctx, deliver.Message{Activity: deliver.ReleaseInstance, InstanceID: inst,
		Fields: []deliver.Field{{Name: "instanceId", Value: inst}}}, 0)
	if !rel.Answered() || rel.ResultCode != deliver.CodeSuccess {
		t.Fatalf("releaseInstance: %+v", rel)
	}
	s.waitLifecycle(t, ctx, inst, "RELEASED")
	tot, err := (&usagepush.Store{Pool: s.pool}).InstanceTotals(ctx, inst)
	if err != nil {
		t.Fatal(err)
	}
	charged := s.market.Charged(inst).Value
	var ingested decimal.Decimal
	for _, r := range append(recs, late) {
		ingested = ingested.Add(decimal.RequireFromString(r.value))
	}
	if tot.Ingested.StringFixed(4) != ingested.StringFixed(4) || tot.Pushed.StringFixed(4) != ingested.StringFixed(4) ||
		charged.StringFixed(4) != ingested.StringFixed(4) || tot.Pending != 0 {
		t.Fatalf("sent %s; kooflow ingested %s, pushed %s (%d pending); the marketplace charged %s",
			ingested.StringFixed(4), tot.Ingested.StringFixed(4), tot.Pushed.StringFixed(4), tot.Pending, charged.StringFixed(4))
	}
	t.Logf("ingested = pushed = charged = %s over %d records", ingested.StringFixed(4), s.market.Charged(inst).Records)

	// The release's history: the final flush ran inside it. Replayed against the current code and, when recording,
	// kept for the replay tests of workflows/.
	hist := testenv.History(t, s.tc, "instance/"+inst, "")
	if !hasActivity(hist, "UsagePushFlush") {
		t.Fatal("the release ran no UsagePushFlush activity")
	}
	testenv.RecordHistory(t, hist, "usage-release-final-flush.json")
	r := sdkworker.NewWorkflowReplayer()
	worker.RegisterWorkflows(r, workflows.LifecycleConfig{})
	if err := r.ReplayWorkflowHistory(nil, testenv.ReplayCopy(t, hist)); err != nil {
		t.Fatalf("replay: %v", err)
	}
	var outbound int
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM koogallery_outbound WHERE $1 = ANY (instance_ids)`, inst).Scan(&outbound); err != nil || outbound < 6 {
		t.Fatalf("outbound log holds %d pushes of %s (%v), want every push, the failed ones included", outbound, inst, err)
	}
}

func sumOf(recs []usageRecord) decimal.Decimal {
	var t decimal.Decimal
	for _, r := range recs {
		t = t.Add(decimal.RequireFromString(r.value))
	}
	return t
}

func hasActivity(h *historypb.History, name string) bool {
	for _, e := range h.Events {
		if a := e.GetActivityTaskScheduledEventAttributes(); a != nil && a.GetActivityType().GetName() == name {
			return true
		}
	}
	return false
}

// waitLifecycle polls the read model until the instance reaches the lifecycle state.
func (s *usageStack) waitLifecycle(t *testing.T, ctx context.Context, inst, want string) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for {
		var got string
		err := s.pool.QueryRow(ctx, `SELECT lifecycle FROM instances WHERE instance_id = $1`, inst).Scan(&got)
		if err == nil && got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("instance %s is %q (%v), want %s", inst, got, err, want)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// triggerPush starts the hourly push now, as its Schedule does, and waits for the run's result.
func (s *usageStack) triggerPush(t *testing.T, ctx context.Context, h client.ScheduleHandle) workflows.UsagePushResult {
	t.Helper()
	before := 0
	if d, err := h.Describe(ctx); err == nil {
		before = len(d.Info.RecentActions)
	}
	if err := h.Trigger(ctx, client.ScheduleTriggerOptions{Overlap: enumspb.SCHEDULE_OVERLAP_POLICY_ALLOW_ALL}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(time.Minute)
	for {
		d, err := h.Describe(ctx)
		if err == nil && len(d.Info.RecentActions) > before {
			run := d.Info.RecentActions[len(d.Info.RecentActions)-1].StartWorkflowResult
			var res workflows.UsagePushResult
			wctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
			defer cancel()
			if err := s.tc.GetWorkflow(wctx, run.WorkflowID, run.FirstExecutionRunID).Get(wctx, &res); err != nil {
				t.Fatalf("usage push run: %v", err)
			}
			return res
		}
		if time.Now().After(deadline) {
			t.Fatal("the triggered schedule started no usage push")
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// ingest reports usage records through kooflow's usage intake (POST /usage/v1/records) as the seller's metering
// system does, and checks how many were accepted and how many were known already.
func (s *usageStack) ingest(t *testing.T, ctx context.Context, inst string, recs []usageRecord, accepted, duplicate int) {
	t.Helper()
	c := &usageclient.Client{BaseURL: s.apiURL, Token: meterToken}
	batch := make([]usageclient.Record, len(recs))
	for i, r := range recs {
		at := r.hour.Add(time.Duration(i%50) * time.Minute)
		if now := time.Now().UTC().Add(-time.Second); at.After(now) { // the running hour: never a record from the future
			at = now
		}
		batch[i] = usageclient.Record{ID: r.id, InstanceID: inst, Value: decimal.RequireFromString(r.value), Time: &at}
	}
	res, err := c.Send(ctx, batch)
	if err != nil {
		t.Fatal(err)
	}
	if res.Accepted != accepted || res.Duplicate != duplicate || res.Refused != 0 {
		t.Fatalf("usage intake answered %+v, want %d accepted and %d duplicates", res, accepted, duplicate)
	}
}

// TestPayPerUseScenario runs the emulator's pay-per-use scenario against kooflow: customers buy, their metering
// systems report usage through the usage intake with repeats and a late record, the marketplace fails a share of
// the pushes, and each instance is released; every instance's ingested, pushed and charged usage must be equal.
func TestPayPerUseScenario(t *testing.T) {
	s := startUsageStack(t)
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	rep, err := scenario.RunUsage(ctx, scenario.UsageConfig{Customers: 3, Hours: 2, RecordsPerHour: 25, DuplicateRate: 0.3,
		ProductID: ppuProduct, SKUCode: "api-ppu", Faults: market.UsageFaults{FailNext: 2, ErrorRate: 0.3}, Seed: 11},
		scenario.UsageDeps{Client: deliver.NewClient(s.sellerURL, accessKey), Market: market.Local{M: s.market},
			Usage: market.LocalUsage{M: s.market}, Intake: &usageclient.Client{BaseURL: s.apiURL, Token: meterToken}, Log: s.log})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	rep.Print(&out)
	t.Log("\n" + out.String())
	if len(rep.Instances) != 3 {
		t.Fatalf("%d instances, want 3", len(rep.Instances))
	}
	for _, in := range rep.Instances {
		if in.Duplicates == 0 || in.Records < 75 {
			t.Errorf("instance %s: %d records, %d repeats; the run did not exercise repeats", in.InstanceID, in.Records, in.Duplicates)
		}
	}
	if rep.Failed() {
		t.Fatalf("%d mismatches between what kooflow ingested and what the marketplace was pushed and charged", len(rep.Mismatches))
	}
}

// usageInfo asks kooflow's queryInstance for an instance's usageInfo, as the marketplace does, and returns the
// cumulative usageValue and its statisticalTime.
func (s *usageStack) usageInfo(t *testing.T, ctx context.Context, inst string) (decimal.Decimal, string) {
	t.Helper()
	a := deliver.NewClient(s.sellerURL, accessKey).Send(ctx, deliver.Message{Activity: deliver.QueryInstance,
		Fields: []deliver.Field{{Name: "instanceId", Value: inst}}}, 0)
	if !a.Answered() || a.ResultCode != deliver.CodeSuccess {
		t.Fatalf("queryInstance: %+v", a)
	}
	var body struct {
		Info []struct {
			InstanceID string `json:"instanceId"`
			UsageInfo  []struct {
				UsageValue      json.Number `json:"usageValue"`
				StatisticalTime string      `json:"statisticalTime"`
			} `json:"usageInfo"`
		} `json:"info"`
	}
	dec := json.NewDecoder(bytes.NewReader(a.Body))
	dec.UseNumber()
	if err := dec.Decode(&body); err != nil {
		t.Fatalf("queryInstance answer %s: %v", a.Body, err)
	}
	for _, in := range body.Info {
		if in.InstanceID == inst && len(in.UsageInfo) == 1 {
			v, err := decimal.NewFromString(in.UsageInfo[0].UsageValue.String())
			if err != nil {
				t.Fatalf("usageValue %q: %v", in.UsageInfo[0].UsageValue, err)
			}
			return v, in.UsageInfo[0].StatisticalTime
		}
	}
	t.Fatalf("queryInstance reports no usageInfo for %s: %s", inst, a.Body)
	return decimal.Zero, ""
}
