package gateway_test

import (
	"context"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/kooflow/kooflow/emulator/market"
	"github.com/kooflow/kooflow/internal/instance"
	"github.com/kooflow/kooflow/internal/koogallery"
	"github.com/kooflow/kooflow/internal/testenv"
	"github.com/kooflow/kooflow/internal/teststack"
)

// These tests drive the real lifecycle workflow through the real worker registration (worker.New) and the real
// router, on the shared Temporal dev server and a fresh PostgreSQL database, with the emulator's marketplace
// answering the workflow's order queries over TLS. Only the marketplace's side is played by the test.

const (
	marketAK = "GATEWAYLIFECYCLEAK0001"
	marketSK = "gateway-lifecycle-secret-key"
)

type stack struct {
	*env
	market *market.Market
}

func newStack(t *testing.T) *stack {
	t.Helper()
	cfg, m, _ := teststack.WithMarket(t, teststack.Keys{AccessKey: accessKey, MarketAK: marketAK, MarketSK: marketSK,
		ConsoleToken: consoleToken}, market.Options{}, nil)
	st := teststack.Start(t, cfg, teststack.Options{})
	return &stack{env: &env{t: t, url: st.URL, pool: st.Pool, tc: st.Temporal, cfg: st.Config, st: st}, market: m}
}

// place puts an order for the dev catalog's monthly CRM plan in the emulated marketplace.
func (s *stack) place(orderID, orderType string, expire time.Time, sku string, qty int64) {
	s.t.Helper()
	err := s.market.PutOrder(market.Order{
		OrderID: orderID, OrderType: orderType, CreateTime: time.Now().UTC().Add(-time.Minute),
		Lines: []market.Line{{
			OrderLineID: orderID + "-000001", ChargingMode: market.ChargingPeriod, PeriodType: "month", PeriodNumber: 1,
			ExpireTime: expire, ProductID: "OFFI-KOOFLOW-CRM-MONTHLY", SKUCode: sku, LinearValue: qty,
			ProductName: "Kooflow CRM (monthly)", ListAmount: decimal.RequireFromString("100.00"),
			PaidAmount: decimal.RequireFromString("100.00"),
		}},
		Buyer: &market.Buyer{CustomerID: "cust-" + orderID, CustomerName: "acme"},
	})
	if err != nil {
		s.t.Fatal(err)
	}
}

// eventually polls cond until it holds or 30 s pass.
func (s *stack) eventually(what string, cond func() bool) {
	s.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			s.t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

type row struct {
	lifecycle string
	expire    *time.Time
	hasApp    bool
	sku       string
	qty       int64
}

func (s *stack) row(id string) (row, bool) {
	s.t.Helper()
	var r row
	err := s.pool.QueryRow(context.Background(),
		`SELECT lifecycle, expire_time, app_info IS NOT NULL, sku_code, quantity FROM instances WHERE instance_id = $1`, id).
		Scan(&r.lifecycle, &r.expire, &r.hasApp, &r.sku, &r.qty)
	if err != nil {
		return r, false
	}
	return r, true
}

func (s *stack) count(query string, args ...any) int {
	s.t.Helper()
	var n int
	if err := s.pool.QueryRow(context.Background(), query, args...).Scan(&n); err != nil {
		s.t.Fatalf("%s: %v", query, err)
	}
	return n
}

// historyLength is the length of the instance's history once the workflow has settled: no activity and no
// workflow task pending. An activity that records its step's rows makes them visible before the workflow has
// taken its completion, so a test that compares lengths around a call waits for the workflow to catch up.
func (s *stack) historyLength(id string) int64 {
	s.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		d, err := s.tc.DescribeWorkflowExecution(context.Background(), instance.WorkflowID(id), "")
		if err != nil {
			s.t.Fatal(err)
		}
		if (len(d.PendingActivities) == 0 && d.PendingWorkflowTask == nil) || time.Now().After(deadline) {
			return d.WorkflowExecutionInfo.HistoryLength
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestLifecycleThroughTheGateway(t *testing.T) {
	s := newStack(t)
	month := time.Now().UTC().Truncate(time.Second).AddDate(0, 1, 0)
	order := testenv.Unique("CS")
	line := order + "-000001"
	s.place(order, market.TypeNew, month, "crm-basic-month", 5)
	id := instance.ID(order, line)

	// newInstance, delivered three times with a new businessId, nonce and timestamp each time: one workflow,
	// one instance, the same instanceId, never blocked on provisioning.
	for i := 0; i < 3; i++ {
		r := s.call(newInstanceBody(order, line))
		if r.resp.InstanceID != id || (r.resp.ResultCode != koogallery.ResultInProgress && r.resp.ResultCode != koogallery.ResultSuccess) {
			t.Fatalf("delivery %d: %s", i+1, r.raw)
		}
	}
	s.eventually("provisioning stored the appInfo", func() bool { r, ok := s.row(id); return ok && r.hasApp && r.lifecycle == "ACTIVE" })
	if n := s.runs(id); n != 1 {
		t.Fatalf("%d runs after three newInstance deliveries", n)
	}
	if n := s.count(`SELECT count(*) FROM instances WHERE order_id = $1`, order); n != 1 {
		t.Fatalf("%d instances for the order", n)
	}
	// A retry after provisioning finished says so.
	r := s.call(newInstanceBody(order, line)).want(t, koogallery.ResultSuccess)
	if r.resp.InstanceID != id {
		t.Fatalf("instanceId %s", r.resp.InstanceID)
	}
	q := s.call(`{"activity":"queryInstance","instanceId":"`+id+`"}`).want(t, koogallery.ResultSuccess)
	if len(q.resp.Info) != 1 || q.resp.Info[0].AppInfo == nil || q.resp.Info[0].AppInfo.FrontEndURL == "" {
		t.Fatalf("queryInstance: %s", q.raw)
	}

	// Forged, stale and replayed calls change nothing: not the history, not the read model.
	before, beforeRow := s.historyLength(id), mustRow(t, s, id)
	freeze := `{"activity":"updateInstanceStatus","instanceId":"` + id + `","status":"FREEZE"}`
	stale, _ := koogallery.SignQuery(accessKey, []byte(freeze), time.Now().Add(-90*time.Second), koogallery.NewNonce())
	s.send(stale.Encode(), freeze).want(t, koogallery.ResultAuthFailed)
	forged, _ := koogallery.SignQuery(accessKey, []byte(freeze), time.Now(), koogallery.NewNonce())
	sig, _ := hex.DecodeString(forged.Get("signature"))
	sig[17] ^= 0x20
	forged.Set("signature", hex.EncodeToString(sig))
	s.send(forged.Encode(), freeze).want(t, koogallery.ResultAuthFailed)
	if after := s.historyLength(id); after != before {
		t.Fatalf("history grew from %d to %d events on refused calls", before, after)
	}
	if afterRow := mustRow(t, s, id); afterRow.lifecycle != beforeRow.lifecycle {
		t.Fatalf("read model changed: %+v → %+v", beforeRow, afterRow)
	}

	// Renewal, three deliveries: the expiry moves once and one order row is recorded.
	renewed := month.AddDate(0, 1, 0)
	renewal := testenv.Unique("RN")
	s.place(renewal, market.TypeRenew, renewed, "crm-basic-month", 5)
	body := `{"activity":"refreshInstance","scene":"RENEWAL","orderId":"` + renewal + `","orderLineId":"` + renewal + `-000001","instanceId":"` + id +
		`","expireTime":"` + koogallery.FormatTime(renewed) + `"}`
	for i := 0; i < 3; i++ {
		s.call(body).want(t, koogallery.ResultSuccess)
	}
	s.eventually("the renewal reached the read model", func() bool {
		r, _ := s.row(id)
		return r.expire != nil && r.expire.Equal(renewed) && s.count(`SELECT count(*) FROM orders WHERE order_id = $1`, renewal) == 1
	})

	// Freeze three times, then unfreeze twice: frozen once, active again.
	firstFreeze, _ := koogallery.SignQuery(accessKey, []byte(freeze), time.Now(), koogallery.NewNonce())
	s.send(firstFreeze.Encode(), freeze).want(t, koogallery.ResultSuccess)
	for i := 0; i < 2; i++ {
		s.call(freeze).want(t, koogallery.ResultSuccess)
	}
	s.eventually("frozen", func() bool { r, _ := s.row(id); return r.lifecycle == "FROZEN" })
	for i := 0; i < 2; i++ {
		s.call(`{"activity":"updateInstanceStatus","instanceId":"`+id+`","status":"UNFREEZE"}`).want(t, koogallery.ResultSuccess)
	}
	s.eventually("active again", func() bool { r, _ := s.row(id); return r.lifecycle == "ACTIVE" })
	// Replaying the first FREEZE delivery byte for byte (same nonce, signature, timestamp) is refused and would
	// otherwise have frozen the instance again.
	before = s.historyLength(id)
	s.send(firstFreeze.Encode(), freeze).want(t, koogallery.ResultAuthFailed)
	if after := s.historyLength(id); after != before {
		t.Fatalf("a replayed FREEZE reached the workflow (history %d → %d)", before, after)
	}
	if r, _ := s.row(id); r.lifecycle != "ACTIVE" {
		t.Fatalf("a replayed FREEZE changed the instance to %s", r.lifecycle)
	}

	// Upgrade three times: applied once.
	change := testenv.Unique("CH")
	s.place(change, market.TypeChange, renewed, "crm-pro-month", 20)
	for i := 0; i < 3; i++ {
		s.call(`{"activity":"upgradeInstance","instanceId":"`+id+`","orderId":"`+change+`","orderLineId":"`+change+`-000001"}`).
			want(t, koogallery.ResultSuccess)
	}
	s.eventually("the upgrade reached the read model", func() bool {
		r, _ := s.row(id)
		return r.sku == "crm-pro-month" && r.qty == 20 && s.count(`SELECT count(*) FROM orders WHERE order_id = $1`, change) == 1
	})

	s.call(`{"activity":"changeInstanceCheck","instanceId":"`+id+`","productInfo":{"skuCode":"crm-basic-month","linearValue":5}}`).
		want(t, koogallery.ResultSuccess)
	s.call(`{"activity":"changeInstanceCheck","instanceId":"`+id+`","productInfo":{"skuCode":"crm-basic-month","linearValue":-5}}`).
		want(t, koogallery.ResultInvalidParams)

	// Release three times: success each time; the instance ends released and its workflow completes.
	for i := 0; i < 3; i++ {
		s.call(`{"activity":"releaseInstance","instanceId":"`+id+`"}`).want(t, koogallery.ResultSuccess)
	}
	s.eventually("released", func() bool { r, _ := s.row(id); return r.lifecycle == "RELEASED" })
	s.eventually("the workflow completed", func() bool {
		d, err := s.tc.DescribeWorkflowExecution(context.Background(), instance.WorkflowID(id), "")
		return err == nil && d.WorkflowExecutionInfo.Status.String() == "Completed"
	})
	s.call(`{"activity":"releaseInstance","instanceId":"`+id+`"}`).want(t, koogallery.ResultSuccess)
	s.call(freeze).want(t, koogallery.ResultNotFound)
	// A very late newInstance retry still gets the same instanceId and no new workflow.
	r = s.call(newInstanceBody(order, line)).want(t, koogallery.ResultSuccess)
	if r.resp.InstanceID != id {
		t.Fatalf("instanceId %s after release", r.resp.InstanceID)
	}
	if n := s.count(`SELECT count(*) FROM instances WHERE order_id = $1`, order); n != 1 {
		t.Fatalf("%d instances for the order after release", n)
	}

	// Every call is in the message log; the failed ones are exactly the refused calls above.
	var failedCodes []string
	rows, err := s.pool.Query(context.Background(), `SELECT result_code FROM koogallery_messages WHERE failed ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var c string
		_ = rows.Scan(&c)
		failedCodes = append(failedCodes, c)
	}
	rows.Close()
	if got := strings.Join(failedCodes, ","); got != "000001,000001,000001,000002,000003" {
		t.Fatalf("failed calls in the log: %s", got)
	}
}

func mustRow(t *testing.T, s *stack, id string) row {
	t.Helper()
	r, ok := s.row(id)
	if !ok {
		t.Fatalf("no instance row for %s", id)
	}
	return r
}

func TestDialTestThroughTheGateway(t *testing.T) {
	// Dial tests carry testFlag "1": answered like any call, provisioned by the built-in path only, and marked
	// as tests in the read model. (A fresh order id per run, as the emulator's dial test does, so the test also
	// passes against a Temporal server that keeps earlier runs.)
	s := newStack(t)
	order := testenv.Unique("DIAL")
	line := order + "-000001"
	s.place(order, market.TypeNew, time.Now().UTC().Truncate(time.Second).AddDate(0, 1, 0), "crm-basic-month", 1)
	id := instance.ID(order, line)
	body := string(koogallery.NewInstanceBody(order, line, koogallery.NewNonce()[:32], true))
	r := s.call(body)
	if r.resp.InstanceID != id || !koogallery.Succeeded(r.resp.ResultCode) {
		t.Fatalf("dial test newInstance: %s", r.raw)
	}
	s.eventually("the dial-test instance is provisioned", func() bool { r, ok := s.row(id); return ok && r.hasApp })
	var test bool
	if err := s.pool.QueryRow(context.Background(), `SELECT test_flag FROM instances WHERE instance_id = $1`, id).Scan(&test); err != nil || !test {
		t.Fatalf("test_flag %v (%v)", test, err)
	}
	s.call(`{"activity":"queryInstance","instanceId":"`+id+`","testFlag":"1"}`).want(t, koogallery.ResultSuccess)
	s.call(`{"activity":"releaseInstance","instanceId":"`+id+`","testFlag":"1"}`).want(t, koogallery.ResultSuccess)
	var logged int
	if err := s.pool.QueryRow(context.Background(), `SELECT count(*) FROM koogallery_messages WHERE test_flag`).Scan(&logged); err != nil || logged != 3 {
		t.Fatalf("%d dial-test calls in the message log (%v)", logged, err)
	}
}

// TestDialTestRoundsReuseTheirMockOrder: the marketplace's debug cases run twice a day with the same mock order,
// each round ending in releaseInstance. The second round's calls must succeed on the released dial-test instance,
// while a call without testFlag on it is still refused as for any released instance.
func TestDialTestRoundsReuseTheirMockOrder(t *testing.T) {
	s := newStack(t)
	order := testenv.Unique("MOCKMONTYRENEW")
	line := order + "-000001"
	s.place(order, market.TypeNew, time.Now().UTC().Truncate(time.Second).AddDate(0, 1, 0), "crm-basic-month", 1)
	s.place(order+"R", market.TypeRenew, time.Date(2030, 12, 31, 15, 59, 59, 0, time.UTC), "crm-basic-month", 1)
	id := instance.ID(order, line)
	round := func(n int) {
		r := s.call(string(koogallery.NewInstanceBody(order, line, koogallery.NewNonce()[:32], true)))
		if r.resp.InstanceID != id || !koogallery.Succeeded(r.resp.ResultCode) {
			t.Fatalf("round %d newInstance: %s", n, r.raw)
		}
		if n == 1 {
			s.eventually("the dial-test instance is provisioned", func() bool { r, ok := s.row(id); return ok && r.hasApp })
		}
		s.call(`{"activity":"queryInstance","instanceId":"`+id+`","testFlag":"1"}`).want(t, koogallery.ResultSuccess)
		s.call(`{"activity":"refreshInstance","scene":"RENEWAL","orderId":"`+order+`R","orderLineId":"`+order+`R-000001","instanceId":"`+id+`","expireTime":"20301231155959","testFlag":"1"}`).
			want(t, koogallery.ResultSuccess)
		s.call(`{"activity":"updateInstanceStatus","instanceId":"`+id+`","status":"FREEZE","testFlag":"1"}`).want(t, koogallery.ResultSuccess)
		s.call(`{"activity":"updateInstanceStatus","instanceId":"`+id+`","status":"UNFREEZE","testFlag":"1"}`).want(t, koogallery.ResultSuccess)
		s.call(`{"activity":"releaseInstance","instanceId":"`+id+`","testFlag":"1"}`).want(t, koogallery.ResultSuccess)
		s.eventually("the dial-test instance is released", func() bool { r, _ := s.row(id); return r.lifecycle == "RELEASED" })
	}
	round(1)
	// The renewal may have continued the workflow as new before the release, so round 1 leaves one or two runs,
	// all closed. Nothing after the release may add one.
	released := s.runs(id)
	round(2)
	// Not a dial test: the released instance is gone.
	s.call(`{"activity":"updateInstanceStatus","instanceId":"`+id+`","status":"FREEZE"}`).want(t, koogallery.ResultNotFound)
	s.call(`{"activity":"queryInstance","instanceId":"`+id+`"}`).want(t, koogallery.ResultNotFound)
	if n := s.runs(id); n != released || n < 1 {
		t.Fatalf("%d runs after the second round, %d after the first; a released instance's workflow must never run again", n, released)
	}
}
