package worker

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/shopspring/decimal"
	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	sdkworker "go.temporal.io/sdk/worker"

	"github.com/kooflow/kooflow/activities"
	"github.com/kooflow/kooflow/internal/catalog"
	"github.com/kooflow/kooflow/internal/instance"
	"github.com/kooflow/kooflow/internal/ledger"
	"github.com/kooflow/kooflow/internal/ledger/fixture"
	"github.com/kooflow/kooflow/internal/settlement"
	"github.com/kooflow/kooflow/internal/testenv"
	"github.com/kooflow/kooflow/workflows"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// Products of the embedded development catalog.
const (
	crm        = "OFFI-KOOFLOW-CRM-MONTHLY" // general, platform fee 5 %
	analytics  = "OFFI-KOOFLOW-ANALYTICS"   // joint operation, seller's share 70 %
	onboarding = "OFFI-KOOFLOW-ONBOARDING"  // general, supervised
)

type rig struct {
	pool      *pgxpool.Pool
	store     *ledger.Store
	tc        client.Client
	taskQueue string
}

// startRig runs a real worker with the settlement workflows and activities on the shared dev server, against a
// fresh database; batches are tiny so that even a few orders are spread over several of them.
func startRig(t *testing.T) rig {
	t.Helper()
	r := rig{pool: testenv.Pool(t), tc: testenv.TemporalClient(t), taskQueue: testenv.TaskQueue(t)}
	r.store = &ledger.Store{Pool: r.pool}
	cat, err := catalog.Parse(catalog.DevCatalog)
	if err != nil {
		t.Fatal(err)
	}
	w := sdkworker.New(r.tc, r.taskQueue, sdkworker.Options{})
	RegisterWorkflows(w, workflows.LifecycleConfig{})
	w.RegisterActivity(&activities.Settlement{Store: r.store, Catalog: cat, Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Settings: activities.SettlementSettings{Threshold: decimal.NewFromInt(1000), BatchSize: 2,
			Days: map[catalog.ProductType]int{catalog.JointOperation: 3, catalog.General: 7}}})
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Stop)
	// Settlement workflow ids are one per period for the whole namespace (settlement/2026-10), and the tests share
	// one dev server: a close a test leaves running (a tick the Schedule started as the test ended) would have a
	// later test's start of the same period attach to it, on a task queue nobody polls any more.
	t.Cleanup(func() { terminateRunning(t, r.tc, r.taskQueue) })
	return r
}

// terminateRunning ends every workflow still running on the task queue of a test that is over.
func terminateRunning(t *testing.T, tc client.Client, taskQueue string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := tc.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
		Query: fmt.Sprintf("TaskQueue = '%s' AND ExecutionStatus = 'Running'", taskQueue)})
	if err != nil {
		t.Logf("list the workflows left running on %s: %v", taskQueue, err)
		return
	}
	for _, e := range resp.GetExecutions() {
		if err := tc.TerminateWorkflow(ctx, e.GetExecution().GetWorkflowId(), e.GetExecution().GetRunId(), "test over"); err != nil {
			t.Logf("terminate %s: %v", e.GetExecution().GetWorkflowId(), err)
		}
	}
}

func (r rig) order(t *testing.T, inst, id, typ, product, paid string, eff *time.Time, opts ...func(*settlement.OrderRow, *settlement.InstanceState)) {
	t.Helper()
	ctx := context.Background()
	row := settlement.OrderRow{Key: settlement.Key{OrderID: id, OrderLineID: id + "-000001"}, InstanceID: inst, OrderType: typ,
		ProductID: product, SKUCode: "sku", PeriodType: "month", PeriodNum: 1, Quantity: 1,
		PaidAmount: fixture.Amount(paid), ListAmount: fixture.Amount(paid).Abs(), EffectiveAt: eff}
	st := settlement.InstanceState{ID: inst, Supervision: settlement.SupervisionNotInvolved}
	for _, o := range opts {
		o(&row, &st)
	}
	var exists bool
	if err := r.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM instances WHERE instance_id = $1)`, inst).Scan(&exists); err != nil {
		t.Fatal(err)
	}
	if !exists {
		if err := fixture.Instance(ctx, r.pool, st, product); err != nil {
			t.Fatal(err)
		}
	}
	if err := fixture.Order(ctx, r.pool, row); err != nil {
		t.Fatal(err)
	}
}

func refunds(orderID string) func(*settlement.OrderRow, *settlement.InstanceState) {
	return func(r *settlement.OrderRow, _ *settlement.InstanceState) {
		r.RefersTo, r.Key.OrderLineID, r.ProductID = orderID, orderID+"-000001", ""
	}
}

func supervision(state string) func(*settlement.OrderRow, *settlement.InstanceState) {
	return func(_ *settlement.OrderRow, s *settlement.InstanceState) { s.Supervision = state }
}

func testOrder(r *settlement.OrderRow, _ *settlement.InstanceState) { r.TestFlag = true }

// close runs the period's workflow through Temporal, as the console and the CLI start it, and returns its result
// and its history.
func (r rig) close(t *testing.T, period string) (workflows.SettlementPeriodResult, *historypb.History) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	p := settlement.MustPeriod(period)
	run, err := r.tc.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: workflows.SettlementWorkflowID(p), TaskQueue: r.taskQueue,
		WorkflowIDReusePolicy: enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
		TypedSearchAttributes: temporal.NewSearchAttributes(instance.SASettlementPeriod.ValueSet(p.String()))},
		workflows.SettlementPeriodWorkflowType, workflows.SettlementPeriodInput{Period: period, RequestedBy: "test"})
	if err != nil {
		t.Fatal(err)
	}
	var res workflows.SettlementPeriodResult
	if err := run.Get(ctx, &res); err != nil {
		t.Fatalf("close %s: %v", period, err)
	}
	return res, testenv.History(t, r.tc, run.GetID(), run.GetRunID())
}

func bill(t *testing.T, res workflows.SettlementPeriodResult, typ catalog.ProductType) ledger.BillSummary {
	t.Helper()
	for _, b := range res.Bills {
		if b.ProductType == typ {
			return b
		}
	}
	t.Fatalf("no %s bill in %+v", typ, res)
	return ledger.BillSummary{}
}

func (r rig) csv(t *testing.T, b ledger.BillSummary) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := r.store.WriteCSV(context.Background(), &buf, b); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func (r rig) lineKeys(t *testing.T, b ledger.BillSummary) map[string]ledger.Line {
	t.Helper()
	out := map[string]ledger.Line{}
	if err := r.store.EachLine(context.Background(), b.BillID, func(l ledger.Line) error {
		out[l.OrderID] = l
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

func amount(s string) decimal.Decimal { return decimal.RequireFromString(s) }

// TestCloseRerunAndLateEligibleOrders closes September through the real workflow, re-runs it (the same bill, byte
// for byte), then makes orders eligible late (a repayment recorded in October, a supervision completed in October)
// and checks they land in October's bill while September's stays as it was.
func TestCloseRerunAndLateEligibleOrders(t *testing.T) {
	r := startRig(t)
	ctx := context.Background()
	// September 2026.
	r.order(t, "i-seed", "O-SEED", "NEW", crm, "1200", fixture.Beijing("2026-09-05 10:00"))                             // the seed's example …
	r.order(t, "i-seed", "U-SEED", "UNSUBSCRIBE", crm, "-1200", fixture.Beijing("2026-09-07 09:30"), refunds("O-SEED")) // … refunded two days later
	r.order(t, "i-a", "O-A", "NEW", crm, "1500", fixture.Beijing("2026-09-10 12:00"))
	r.order(t, "i-b", "O-B", "RENEW", crm, "300.125", fixture.Beijing("2026-09-12 00:00"))
	r.order(t, "i-credit", "O-CREDIT", "NEW", crm, "800", fixture.Beijing("2026-09-15 08:00"))
	r.order(t, "i-sup", "O-SUP", "NEW", onboarding, "2000", nil, supervision("IN_SERVICE"))
	r.order(t, "i-test", "O-TEST", "NEW", crm, "999", fixture.Beijing("2026-09-03 00:00"), testOrder)
	r.order(t, "i-joint", "O-J", "NEW", analytics, "500", fixture.Beijing("2026-09-20 00:00"))
	r.order(t, "i-future", "R-FUT", "RENEW", crm, "600", fixture.Beijing("2026-12-01 00:00")) // a renewal effective later
	if _, _, err := r.store.SetPayment(ctx, "O-CREDIT", true, nil, "test", time.Now()); err != nil {
		t.Fatal(err)
	}

	sep, h := r.close(t, "2026-09")
	if events := len(h.Events); events >= 200 {
		t.Errorf("September's close took %d history events", events)
	}
	gen := bill(t, sep, catalog.General)
	lines := r.lineKeys(t, gen)
	if gen.Status != ledger.StatusFinal || len(lines) != 4 {
		t.Fatalf("general September: %+v lines %v", gen, lines)
	}
	for _, want := range []struct{ id, rev, fee, set string }{
		{"O-SEED", "1200.00", "60.00", "1140.00"}, {"U-SEED", "-1200.00", "-60.00", "-1140.00"},
		{"O-A", "1500.00", "75.00", "1425.00"}, {"O-B", "300.12", "15.01", "285.11"},
	} {
		l := lines[want.id]
		if !l.Revenue.Equal(amount(want.rev)) || !l.PlatformFee.Equal(amount(want.fee)) || !l.Settlement.Equal(amount(want.set)) {
			t.Errorf("%s: %s %s %s, want %s %s %s", want.id, l.Revenue, l.PlatformFee, l.Settlement, want.rev, want.fee, want.set)
		}
	}
	if !gen.AmountDue.Equal(amount("1710.11")) || !gen.Revenue.Equal(amount("1800.12")) {
		t.Errorf("general September totals: due %s revenue %s", gen.AmountDue, gen.Revenue)
	}
	joint := bill(t, sep, catalog.JointOperation)
	if joint.Status != ledger.StatusCarriedForward || !joint.CarriedTotal.Equal(amount("350")) || joint.LineCount != 0 {
		t.Fatalf("joint September should be carried forward (350 < 1000): %+v", joint)
	}
	firstCSV := r.csv(t, gen)

	// Re-run: the same bill, byte for byte.
	again, h := r.close(t, "2026-09")
	if events := len(h.Events); events >= 200 {
		t.Errorf("re-run took %d history events", events)
	}
	if g := bill(t, again, catalog.General); g.ContentHash != gen.ContentHash || !bytes.Equal(r.csv(t, g), firstCSV) {
		t.Fatalf("re-run changed the bill: hash %s → %s", gen.ContentHash, g.ContentHash)
	}
	if len(again.Computed) != 0 || len(again.Verified) != 2 {
		t.Fatalf("a re-run must verify, not recompute: %+v", again)
	}

	// October: the credit-paid order is repaid, supervision completes, a settled order is partly refunded, and
	// a new joint-operation order lifts the carried-forward total over the threshold.
	if _, _, err := r.store.SetPayment(ctx, "O-CREDIT", true, fixture.Beijing("2026-10-08 11:00"), "test", time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := fixture.SetSupervision(ctx, r.pool, "i-sup", settlement.SupervisionCompleted); err != nil {
		t.Fatal(err)
	}
	if err := fixture.SetEffective(ctx, r.pool, settlement.Key{OrderID: "O-SUP", OrderLineID: "O-SUP-000001"}, *fixture.Beijing("2026-10-12 16:00")); err != nil {
		t.Fatal(err)
	}
	r.order(t, "i-a", "F-A", "REFUND", crm, "-500", fixture.Beijing("2026-10-20 10:00"), refunds("O-A"))
	r.order(t, "i-joint2", "O-J2", "NEW", analytics, "1000", fixture.Beijing("2026-10-02 00:00"))

	oct, _ := r.close(t, "2026-10")
	gen10 := bill(t, oct, catalog.General)
	lines10 := r.lineKeys(t, gen10)
	if gen10.Status != ledger.StatusFinal || len(lines10) != 3 || !gen10.AmountDue.Equal(amount("2185")) {
		t.Fatalf("general October: %+v %v", gen10, lines10)
	}
	if l := lines10["F-A"]; !l.Settlement.Equal(amount("-475")) || l.RefersTo != "O-A" {
		t.Errorf("the refund of a settled order is a negative line: %+v", l)
	}
	if _, ok := lines10["O-CREDIT"]; !ok {
		t.Error("the order repaid in October is not in October's bill")
	}
	if _, ok := lines10["O-SUP"]; !ok {
		t.Error("the order whose supervision completed in October is not in October's bill")
	}
	joint10 := bill(t, oct, catalog.JointOperation)
	if joint10.Status != ledger.StatusFinal || joint10.LineCount != 2 || !joint10.AmountDue.Equal(amount("1050")) {
		t.Fatalf("joint October (carried 350 + 700): %+v", joint10)
	}

	// September did not move.
	sep2, _ := r.close(t, "2026-09")
	if g := bill(t, sep2, catalog.General); g.ContentHash != gen.ContentHash || !bytes.Equal(r.csv(t, g), firstCSV) {
		t.Fatal("September's bill changed after October's close")
	}
	var n int
	if err := r.pool.QueryRow(ctx, `SELECT count(*) FROM settlement_lines WHERE order_id IN ('O-TEST', 'R-FUT')`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("a dial test or a future renewal was settled: %d %v", n, err)
	}
}

// TestScheduleIsEnsuredIdempotentlyAndClosesWhatIsDue creates the schedule, updates it, checks an operator's pause
// survives a worker restart, then triggers it as an operator would: the tick closes the last ended period.
func TestScheduleIsEnsuredIdempotentlyAndClosesWhatIsDue(t *testing.T) {
	r := startRig(t)
	ctx := context.Background()
	h := r.tc.ScheduleClient().GetHandle(ctx, SettlementScheduleID)
	t.Cleanup(func() { _ = h.Delete(context.Background()) })

	cfg := SettlementScheduleConfig{TaskQueue: r.taskQueue, Hour: 10, Days: []int{3, 7}}
	if err := EnsureSettlementSchedule(ctx, r.tc, cfg); err != nil {
		t.Fatal(err)
	}
	cfg.Hour = 9
	if err := EnsureSettlementSchedule(ctx, r.tc, cfg); err != nil {
		t.Fatalf("ensuring an existing schedule: %v", err)
	}
	d, err := h.Describe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if d.Schedule.Spec.TimeZoneName != "Asia/Shanghai" || d.Schedule.Spec.Calendars[0].Hour[0].Start != 9 {
		t.Fatalf("spec not updated: %+v", d.Schedule.Spec)
	}
	for _, next := range d.Info.NextActionTimes {
		b := next.In(settlement.Beijing)
		if b.Hour() != 9 || b.Day() < 3 || b.Day() > 21 {
			t.Errorf("next run %s is not a candidate bill day at 09:00 Beijing time", b)
		}
	}
	if err := h.Pause(ctx, client.SchedulePauseOptions{Note: "month-end freeze"}); err != nil {
		t.Fatal(err)
	}
	if err := EnsureSettlementSchedule(ctx, r.tc, cfg); err != nil {
		t.Fatal(err)
	}
	if d, err = h.Describe(ctx); err != nil || !d.Schedule.State.Paused {
		t.Fatalf("a worker restart unpaused the schedule: %+v %v", d.Schedule.State, err)
	}
	if err := h.Unpause(ctx, client.ScheduleUnpauseOptions{}); err != nil {
		t.Fatal(err)
	}

	// Last month's order; triggering the schedule now is a tick for today, on which last month's bills are due.
	now := time.Now()
	last := settlement.PeriodOf(now).Prev()
	eff := last.Start().Add(48 * time.Hour)
	r.order(t, "i-sched", "O-SCHED", "NEW", crm, "2000", &eff)
	if err := h.Trigger(ctx, client.ScheduleTriggerOptions{Overlap: enumspb.SCHEDULE_OVERLAP_POLICY_ALLOW_ALL}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(90 * time.Second)
	for {
		b, err := r.store.Bill(ctx, last.String(), catalog.General)
		if err == nil && b.Closed() {
			if b.Status != ledger.StatusFinal || b.LineCount != 1 || !b.AmountDue.Equal(amount("1900")) {
				t.Fatalf("the scheduled close produced %+v", b)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the triggered schedule did not close %s in time (last error %v)", last, err)
		}
		time.Sleep(300 * time.Millisecond)
	}
}

func TestDueFollowsTheHolidayCalendarAndCatchesUp(t *testing.T) {
	pool := testenv.Pool(t)
	ctx := context.Background()
	cal := t.TempDir() + "/holidays.txt"
	if err := os.WriteFile(cal, []byte("# National Day 2026\n2026-10-01\n2026-10-02\n2026-10-05\n2026-10-06\n2026-10-07\n2026-10-08\n2026-10-10 workday\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	a := &activities.Settlement{Store: &ledger.Store{Pool: pool}, Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Settings: activities.SettlementSettings{Days: map[catalog.ProductType]int{catalog.JointOperation: 3, catalog.General: 7}, CalendarFile: cal}}
	closed := func(period string) {
		t.Helper()
		for _, pt := range []string{"general", "joint-operation"} {
			p := settlement.MustPeriod(period)
			if _, err := pool.Exec(ctx, `INSERT INTO settlement_bills (period, product_type, status, period_start, period_end, threshold)
				VALUES ($1, $2, 'final', $3, $4, 1000)`, period, pt, p.Start(), p.End()); err != nil {
				t.Fatal(err)
			}
		}
	}
	due := func(at string) string {
		t.Helper()
		ds, err := a.SettlementDue(ctx, *fixture.Beijing(at))
		if err != nil {
			t.Fatal(err)
		}
		var parts []string
		for _, d := range ds {
			parts = append(parts, fmt.Sprintf("%s%v", d.Period, d.ProductTypes))
		}
		return strings.Join(parts, " ")
	}
	closed("2026-08")
	for _, c := range []struct{ at, want string }{
		{"2026-10-05 10:00", ""},                                 // the 3rd and the 7th fall in the holiday
		{"2026-10-09 10:00", "2026-09[general joint-operation]"}, // first working day after it
		{"2026-10-12 10:00", "2026-09[general joint-operation]"}, // still due until closed: a missed day is caught up
	} {
		if got := due(c.at); got != c.want {
			t.Errorf("due on %s: %q, want %q", c.at, got, c.want)
		}
	}
	closed("2026-09")
	for _, c := range []struct{ at, want string }{
		{"2026-10-12 10:00", ""},
		{"2026-11-03 10:00", "2026-10[joint-operation]"},         // Tuesday the 3rd: joint operation only
		{"2026-11-07 10:00", "2026-10[joint-operation]"},         // Saturday the 7th: general waits
		{"2026-11-09 10:00", "2026-10[general joint-operation]"}, // Monday
	} {
		if got := due(c.at); got != c.want {
			t.Errorf("due on %s: %q, want %q", c.at, got, c.want)
		}
	}
}

// TestFinalizeAppliesBatchesLeftPending covers a database crash after the batch activities returned: batches
// commit without waiting for their WAL flush, so one may be pending again when the bills are decided.
func TestFinalizeAppliesBatchesLeftPending(t *testing.T) {
	pool := testenv.Pool(t)
	ctx := context.Background()
	store := &ledger.Store{Pool: pool}
	cat, err := catalog.Parse(catalog.DevCatalog)
	if err != nil {
		t.Fatal(err)
	}
	r := rig{pool: pool, store: store}
	r.order(t, "i-1", "O-1", "NEW", crm, "1500", fixture.Beijing("2026-09-02 00:00"))
	r.order(t, "i-2", "O-2", "NEW", crm, "500", fixture.Beijing("2026-09-03 00:00"))
	plan, err := store.Prepare(ctx, ledger.CloseRequest{Period: settlement.MustPeriod("2026-09"), WorkflowID: "w", RunID: "r",
		Threshold: decimal.NewFromInt(1000), BatchSize: 1, Terms: activities.SettlementTerms(cat)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.ApplyNextBatch(ctx, plan.CloseID); err != nil { // one batch done, the others still pending
		t.Fatal(err)
	}
	var s testsuite.WorkflowTestSuite
	env := s.NewTestActivityEnvironment()
	a := &activities.Settlement{Store: store, Catalog: cat, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	env.RegisterActivity(a)
	val, err := env.ExecuteActivity(a.SettlementFinalize, plan.CloseID)
	if err != nil {
		t.Fatal(err)
	}
	var bills []ledger.BillSummary
	if err := val.Get(&bills); err != nil {
		t.Fatal(err)
	}
	if g := bills[0]; g.ProductType != catalog.General || g.Status != ledger.StatusFinal || g.LineCount != 2 || !g.AmountDue.Equal(amount("1900")) {
		t.Fatalf("bills %+v", bills)
	}
}
