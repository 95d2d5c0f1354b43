package webconsole_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	cdpbrowser "github.com/chromedp/cdproto/browser"
	"github.com/chromedp/chromedp"
	"github.com/shopspring/decimal"
	"github.com/xuri/excelize/v2"

	emuconsole "github.com/kooflow/kooflow/emulator/console"
	"github.com/kooflow/kooflow/emulator/market"
	"github.com/kooflow/kooflow/internal/config"
	"github.com/kooflow/kooflow/internal/instance"
	"github.com/kooflow/kooflow/internal/koogallery"
	"github.com/kooflow/kooflow/internal/ledger/fixture"
	"github.com/kooflow/kooflow/internal/provisioning"
	"github.com/kooflow/kooflow/internal/settlement"
	"github.com/kooflow/kooflow/internal/store"
	"github.com/kooflow/kooflow/internal/testenv"
	"github.com/kooflow/kooflow/internal/teststack"
)

func TestMain(m *testing.M) { testenv.Main(m) }

const (
	bAccessKey   = "web-browser-access-key-0123456"
	bMarketAK    = "WEBBROWSERAK000000001"
	bMarketSK    = "web-browser-market-sk-0123456789"
	bOpsToken    = "web-browser-ops-token-0123456789"
	bBuyerToken  = "web-browser-buyer-token-012345678"
	bFinToken    = "web-browser-finance-token-0123456"
	hookSecret   = "web-browser-webhook-secret-01234"
	onboarding   = "OFFI-KOOFLOW-ONBOARDING"
	crmMonthly   = "OFFI-KOOFLOW-CRM-MONTHLY"
	browserWidth = 1280
)

// browserStack is kooflow (API with the web console, and a worker) on real PostgreSQL and Temporal, wired to the
// emulator's marketplace and a seller webhook that refuses to provision one product until told otherwise.
type browserStack struct {
	t      *testing.T
	st     *teststack.Stack
	market *market.Market
	cfg    config.Config
	fixed  *atomic.Bool
	emu    *emuconsole.Client
}

func startBrowserStack(t *testing.T) *browserStack {
	t.Helper()
	var fixed atomic.Bool
	recv := provisioning.NewReceiver(hookSecret, time.Minute, func(ctx context.Context, e provisioning.Event) (provisioning.Result, error) {
		if e.ProductID == "OFFI-NOT-IN-CATALOG" && !fixed.Load() {
			return provisioning.Result{}, &provisioning.Error{Retryable: false, Reason: "tenant quota exceeded"}
		}
		return provisioning.Result{AppInfo: &provisioning.AppInfo{FrontEndURL: "https://seller.example/" + e.InstanceID}}, nil
	})
	hook := httptest.NewServer(recv)
	t.Cleanup(hook.Close)
	cfg, m, _ := teststack.WithMarket(t, teststack.Keys{AccessKey: bAccessKey, MarketAK: bMarketAK, MarketSK: bMarketSK},
		market.Options{}, map[string]string{
			config.EnvConsoleTokens: "ops:" + bOpsToken + ",buyer:" + bBuyerToken + ":customer+read,fin:" + bFinToken + ":read+finance",
			config.EnvTaskQueue:     testenv.TaskQueue(t),
			config.EnvTemporalUIURL: "http://127.0.0.1:8233",
		})
	cfg.ProvisionerURL, cfg.ProvisionerSecret = hook.URL, config.Secret(hookSecret)
	st := teststack.Start(t, cfg, teststack.Options{})
	return &browserStack{t: t, st: st, market: m, cfg: st.Config, fixed: &fixed,
		emu: emuconsole.New(st.URL+"/console/v1", bOpsToken, bBuyerToken, nil)}
}

// buy places an order in the emulated marketplace and sends its newInstance call, signed, as the marketplace does.
func (s *browserStack) buy(product, sku, paid string, expire time.Time) (orderID, instanceID string) {
	s.t.Helper()
	orderID = testenv.Unique("WEB")
	line := orderID + "-000001"
	phone := "13900000000"
	l := market.Line{OrderLineID: line, ChargingMode: market.ChargingPeriod, PeriodType: "month", PeriodNumber: 1,
		ExpireTime: expire, ProductID: product, SKUCode: sku, LinearValue: 1, ProductName: "web console product",
		ListAmount: decimal.RequireFromString(paid), PaidAmount: decimal.RequireFromString(paid)}
	if expire.IsZero() {
		l.ChargingMode, l.PeriodType, l.PeriodNumber = market.ChargingOneTime, "", 0
	}
	if err := s.market.PutOrder(market.Order{OrderID: orderID, OrderType: "NEW", CreateTime: time.Now().UTC(), Lines: []market.Line{l},
		Buyer: &market.Buyer{CustomerID: "cust-" + orderID, CustomerName: "Wang Wu", MobilePhone: &phone}}); err != nil {
		s.t.Fatal(err)
	}
	r := s.call(map[string]any{"activity": "newInstance", "orderId": orderID, "orderLineId": line, "businessId": "biz-" + orderID}, true)
	if r.InstanceID != instance.ID(orderID, line) {
		s.t.Fatalf("newInstance answered %+v", r)
	}
	return orderID, r.InstanceID
}

// call posts to the production interface, signed or with a forged signature.
func (s *browserStack) call(body map[string]any, signed bool) koogallery.Response {
	s.t.Helper()
	raw, _ := json.Marshal(body)
	key := bAccessKey
	if !signed {
		key = "a-key-the-marketplace-does-not-have"
	}
	q, err := koogallery.SignQuery(key, raw, time.Now(), koogallery.NewNonce())
	if err != nil {
		s.t.Fatal(err)
	}
	resp, err := http.Post(s.st.URL+s.cfg.ProductionPath+"?"+q.Encode(), "application/json", bytes.NewReader(raw))
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var r koogallery.Response
	if err := json.Unmarshal(b, &r); err != nil {
		s.t.Fatalf("production interface answered %d %s", resp.StatusCode, b)
	}
	return r
}

// waitFor polls the read model until ok holds for the instance.
func (s *browserStack) waitFor(id, what string, ok func(store.Instance) bool) store.Instance {
	s.t.Helper()
	st := &store.Store{Pool: s.st.Pool}
	deadline := time.Now().Add(90 * time.Second)
	for {
		inst, err := st.Instance(context.Background(), id)
		if err == nil && ok(inst) {
			return inst
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("instance %s: no %s within 90 s (last %+v, %v)", id, what, inst, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// closedBill writes a September order (as the lifecycle would) and closes September through the JSON console
// API, so a final bill exists to download.
func (s *browserStack) closedBill() {
	s.t.Helper()
	ctx := context.Background()
	if err := fixture.Instance(ctx, s.st.Pool, settlement.InstanceState{ID: "i-web-bill"}, crmMonthly); err != nil {
		s.t.Fatal(err)
	}
	if err := fixture.Order(ctx, s.st.Pool, settlement.OrderRow{Key: settlement.Key{OrderID: "O-WEB-BILL", OrderLineID: "O-WEB-BILL-1"},
		InstanceID: "i-web-bill", OrderType: "NEW", ProductID: crmMonthly, SKUCode: "crm-basic-month", PeriodType: "month", PeriodNum: 12,
		Quantity: 1, PaidAmount: fixture.Amount("1500"), ListAmount: fixture.Amount("1500"), EffectiveAt: fixture.Beijing("2026-09-10 10:00")}); err != nil {
		s.t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodPost, s.st.URL+"/console/v1/bills/close", strings.NewReader(`{"period":"2026-09"}`))
	req.Header.Set("Authorization", "Bearer "+bOpsToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	var started struct{ WorkflowID, RunID string }
	if err := json.NewDecoder(resp.Body).Decode(&started); err != nil || resp.StatusCode != http.StatusAccepted {
		s.t.Fatalf("close September: %d %v", resp.StatusCode, err)
	}
	if err := s.st.Temporal.GetWorkflow(ctx, started.WorkflowID, started.RunID).Get(ctx, nil); err != nil {
		s.t.Fatal(err)
	}
}

// artifacts is where screenshots go: KOOFLOW_ARTIFACTS, or the test's temporary directory.
func artifacts(t *testing.T) string {
	dir := os.Getenv("KOOFLOW_ARTIFACTS")
	if dir == "" {
		return t.TempDir()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

func chrome(t *testing.T) (context.Context, context.CancelFunc) {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{chromedp.ExecPath(testenv.Chromium(t)), chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck,
		chromedp.WindowSize(browserWidth, 900)}
	for _, f := range testenv.ChromiumFlags() {
		name, value, hasValue := strings.Cut(strings.TrimPrefix(f, "--"), "=")
		if hasValue {
			opts = append(opts, chromedp.Flag(name, value))
		} else {
			opts = append(opts, chromedp.Flag(name, true))
		}
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(actx)
	return ctx, func() { cancelCtx(); cancelAlloc() }
}

// TestConsoleInABrowser drives the web console in headless Chromium through the real API, worker and emulator:
// sign in, find an instance by order id, confirm a customer's requirement, approve a customer's refund as a second
// user, resume a parked purchase, open a failed call in the message log, download a bill's XLSX and switch the
// language. Each page is saved as a screenshot (zh-CN).
func TestConsoleInABrowser(t *testing.T) {
	s := startBrowserStack(t)
	dir := artifacts(t)
	ctx, cancel := chrome(t)
	defer cancel()
	base := s.st.URL + "/console"
	bg := context.Background()

	// What the customers did in the marketplace: a supervised purchase with its requirement submitted, a refund
	// requested; a purchase the seller's system refused (parked); a forged call; and September's closed bill.
	supOrder, supID := s.buy(onboarding, "onboarding-once", "2000", time.Time{})
	s.waitFor(supID, "provisioning", func(i store.Instance) bool { return i.Lifecycle == "ACTIVE" && i.Supervision == "AWAITING_REQUIREMENT" })
	if err := s.emu.Supervise(bg, supID, instance.StepSubmitRequirement, instance.PartyCustomer, "we need SSO"); err != nil {
		t.Fatal(err)
	}
	s.waitFor(supID, "the requirement", func(i store.Instance) bool { return i.Supervision == "AWAITING_CONFIRMATION" })
	_, parkedID := s.buy("OFFI-NOT-IN-CATALOG", "x-1", "10", time.Now().UTC().AddDate(0, 1, 0))
	s.waitFor(parkedID, "the parking", func(i store.Instance) bool { return i.Parked })
	if r := s.call(map[string]any{"activity": "queryInstance", "instanceId": supID}, false); r.ResultCode != "000001" {
		t.Fatalf("a forged call answered %+v", r)
	}
	s.closedBill()

	var shots []string
	shot := func(name string) chromedp.Action[chromedp.Void] {
		return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			png, err := chromedp.FullScreenshot(100)(ctx, tg)
			if err != nil {
				return err
			}
			p := filepath.Join(dir, name+".png")
			shots = append(shots, p)
			return os.WriteFile(p, png, 0o644)
		})
	}
	// The browser starts with the first run, on ctx itself; each step then has a minute.
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatal(err)
	}
	run := func(what string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		rctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		if err := chromedp.Do(rctx, actions...); err != nil {
			hctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			html, _ := chromedp.Run(hctx, chromedp.OuterHTML(chromedp.CSS("main")))
			t.Fatalf("%s: %v\npage: %s", what, err, html)
		}
	}
	signIn := func(token string) {
		run("sign in", chromedp.Navigate(base+"/"), chromedp.WaitVisible(chromedp.ID("#token")),
			chromedp.SendKeys(chromedp.ID("#token"), token), chromedp.Click(chromedp.ID("#signin")),
			chromedp.WaitVisible(chromedp.CSS(`nav[aria-label]`)))
	}
	signOut := func() {
		run("sign out", chromedp.Click(chromedp.CSS(`form[action="/console/signout"] button`)), chromedp.WaitVisible(chromedp.ID("#token")))
	}

	// Sign in.
	run("open the console", chromedp.Navigate(base+"/"), chromedp.WaitVisible(chromedp.ID("#token")), shot("01-signin"))
	signIn(bOpsToken)

	// Find the supervised instance by its order id.
	var found string
	run("find by order id", chromedp.WaitVisible(chromedp.ID("#q-order")), shot("02-instances"),
		chromedp.SendKeys(chromedp.ID("#q-order"), supOrder), chromedp.Click(chromedp.ID("#search")),
		// The search reloads the page: wait for the page whose filter carries the order id, not the list before it.
		chromedp.WaitVisible(chromedp.CSS(`#q-order[value="`+supOrder+`"]`)),
		chromedp.WaitVisible(chromedp.CSS(`a[href="/console/instances/`+supID+`"]`)),
		into(&found, chromedp.Text(chromedp.CSS("main tbody"))))
	if !strings.Contains(found, supOrder) || strings.Contains(found, parkedID) {
		t.Fatalf("the search for order %s shows: %s", supOrder, found)
	}
	run("open the instance", chromedp.Click(chromedp.CSS(`a[href="/console/instances/`+supID+`"]`)),
		chromedp.WaitVisible(chromedp.ID("#supervision")), shot("03-instance"))

	// Confirm the requirement from the supervision queue (服务监管).
	run("confirm the requirement", chromedp.Navigate(base+"/supervision"), chromedp.WaitVisible(chromedp.CSS(`button.confirm[data-instance="`+supID+`"]`)),
		shot("04-supervision"), chromedp.Click(chromedp.CSS(`button.confirm[data-instance="`+supID+`"]`)),
		chromedp.WaitVisible(chromedp.CSS("p.ok")))
	s.waitFor(supID, "the confirmation", func(i store.Instance) bool { return i.Supervision == "IN_SERVICE" })

	// The customer asks for a refund; another user, with the finance scope, approves it (four eyes).
	refundID, err := s.emu.RequestRefund(bg, supID, nil)
	if err != nil {
		t.Fatal(err)
	}
	signOut()
	signIn(bFinToken)
	run("approve the refund", chromedp.Navigate(base+"/refunds"), chromedp.WaitVisible(chromedp.CSS(`button.approve[data-refund="`+refundID+`"]`)),
		shot("05-refunds"), chromedp.Click(chromedp.CSS(`button.approve[data-refund="`+refundID+`"]`)),
		chromedp.WaitVisible(chromedp.CSS("p.ok")))
	refunds, err := (&store.Store{Pool: s.st.Pool}).Refunds(bg, supID)
	if err != nil || len(refunds) != 1 || refunds[0].Status != instance.RefundApproved || refunds[0].DecidedBy == nil || *refunds[0].DecidedBy != "seller:fin" {
		t.Fatalf("after approval the refunds are %+v (%v)", refunds, err)
	}
	// The finance user may not resume a parked step: the page says which scope is missing.
	var parkedPage string
	run("parked page as finance", chromedp.Navigate(base+"/parked"), chromedp.WaitVisible(chromedp.CSS("main table")),
		into(&parkedPage, chromedp.Text(chromedp.CSS("main"))))
	if !strings.Contains(parkedPage, "无操作权限") {
		t.Fatalf("the finance user is offered the operator's actions: %s", parkedPage)
	}
	signOut()
	signIn(bOpsToken)

	// Resume the parked purchase once the seller's system is fixed.
	s.fixed.Store(true)
	run("resume the parked purchase", chromedp.Navigate(base+"/parked"), chromedp.WaitVisible(chromedp.CSS(`button.resume[data-instance="`+parkedID+`"]`)),
		shot("06-parked"), chromedp.Click(chromedp.CSS(`button.resume[data-instance="`+parkedID+`"]`)),
		chromedp.WaitVisible(chromedp.CSS("p.ok")))
	s.waitFor(parkedID, "the resumed purchase", func(i store.Instance) bool { return !i.Parked && i.Lifecycle == "ACTIVE" })

	// Open the failed call in the message log (生产接口消息): failed calls come first.
	var errDetail, bodySign string
	run("open the failed call", chromedp.Navigate(base+"/messages"), chromedp.WaitVisible(chromedp.CSS("a.msg.failed")), shot("07-messages"),
		chromedp.Click(chromedp.CSS("a.msg.failed")), chromedp.WaitVisible(chromedp.ID("#body-sign")),
		into(&errDetail, chromedp.Text(chromedp.ID("#error-detail"))), into(&bodySign, chromedp.Text(chromedp.ID("#body-sign"))), shot("08-message"))
	if errDetail == "" {
		t.Fatal("the failed call's page shows no error detail")
	}

	// Alerts, settings and the explanation of an order.
	run("alerts", chromedp.Navigate(base+"/alerts?state=all"), chromedp.WaitVisible(chromedp.CSS("main table")), shot("09-alerts"))
	run("settings", chromedp.Navigate(base+"/settings"), chromedp.WaitVisible(chromedp.CSS("main table")), shot("10-settings"))
	run("explain", chromedp.Navigate(base+"/explain?orderId=O-WEB-BILL"), chromedp.WaitVisible(chromedp.CSS("p.summary")), shot("11-explain"))

	// Download September's bill as XLSX.
	downloads := t.TempDir()
	dctx, dcancel := context.WithTimeout(ctx, time.Minute)
	defer dcancel()
	progress := chromedp.Events(dctx, cdpbrowser.DownloadProgress)
	run("bills", chromedp.Navigate(base+"/bills"), chromedp.WaitVisible(chromedp.CSS(`a[href="/console/bills/2026-09/general"]`)), shot("12-bills"),
		chromedp.Click(chromedp.CSS(`a[href="/console/bills/2026-09/general"]`)), chromedp.WaitVisible(chromedp.ID("#xlsx")), shot("13-bill"),
		chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
			events := true
			_, err := chromedp.Call(ctx, cdpbrowser.SetDownloadBehavior, cdpbrowser.SetDownloadBehaviorParams{
				Behavior: cdpbrowser.SetDownloadBehaviorBehaviorAllowAndName, DownloadPath: downloads, EventsEnabled: &events})
			return err
		}),
		chromedp.Click(chromedp.ID("#xlsx")))
	var guid string
	for ev, err := range progress {
		if err != nil {
			t.Fatalf("the XLSX download did not complete: %v", err)
		}
		if ev.State == cdpbrowser.DownloadProgressStateCompleted {
			guid = ev.GUID
			break
		}
	}
	f, err := excelize.OpenFile(filepath.Join(downloads, guid))
	if err != nil {
		t.Fatalf("the download is not an XLSX workbook: %v", err)
	}
	var cells []string
	for _, sheet := range f.GetSheetList() {
		rows, err := f.GetRows(sheet)
		if err != nil {
			t.Fatal(err)
		}
		cells = append(cells, fmt.Sprint(rows))
	}
	_ = f.Close()
	if all := strings.Join(cells, " "); !strings.Contains(all, "O-WEB-BILL") || !strings.Contains(all, "1,425.00") {
		t.Fatalf("the workbook %v lacks the order or the amount due", all)
	}

	// The instance page on a phone's screen.
	run("phone", chromedp.EmulateViewport(390, 844), chromedp.Navigate(base+"/instances/"+supID),
		chromedp.WaitVisible(chromedp.ID("supervision")), shot("14-instance-phone"))

	// Switch to English.
	var nav string
	var langAttr chromedp.AttributeResult
	run("switch language", chromedp.Navigate(base+"/instances"), chromedp.WaitVisible(chromedp.ID("#lang")),
		chromedp.SetValue(chromedp.ID("#lang"), "en"), chromedp.Click(chromedp.ID("#lang-switch")),
		chromedp.WaitVisible(chromedp.CSS(`html[lang="en"]`)), into(&langAttr, chromedp.AttributeValue(chromedp.CSS("html"), "lang")),
		into(&nav, chromedp.Text(chromedp.CSS("nav"))), shot("15-instances-en"))
	if langAttr.Value != "en" || !strings.Contains(nav, "Bills") || strings.Contains(nav, "实例") {
		t.Fatalf("after switching the language the navigation reads %q (lang %q)", nav, langAttr.Value)
	}

	t.Logf("screenshots in %s:", dir)
	for _, p := range shots {
		t.Logf("  %s", filepath.Base(p))
	}
}

// into runs a that returns a value as a step, keeping the value in dst.
func into[T any](dst *T, a chromedp.Action[T]) chromedp.Action[chromedp.Void] {
	return func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
		v, err := a(ctx, t)
		*dst = v
		return chromedp.Void{}, err
	}
}
