package console_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kooflow/kooflow/api/console"
	"github.com/kooflow/kooflow/internal/config"
	"github.com/kooflow/kooflow/internal/instance"
	"github.com/kooflow/kooflow/internal/koogallery"
	"github.com/kooflow/kooflow/internal/lifecycle"
	"github.com/kooflow/kooflow/internal/provisioning"
	"github.com/kooflow/kooflow/internal/store"
	"github.com/kooflow/kooflow/internal/testenv"
)

// TestParkingThroughTheConsole: the seller's provisioning endpoint refuses a create; the instance parks (row,
// search attribute), an operator's resume from the console retries (and parks again while it still fails), and
// the Temporal UI's signal resumes it once fixed. The unknown product raises a warning in the catalog view.
func TestParkingThroughTheConsole(t *testing.T) {
	const secret = "console-webhook-secret-0123456"
	var broken atomic.Bool
	broken.Store(true)
	recv := provisioning.NewReceiver(secret, time.Minute, func(ctx context.Context, e provisioning.Event) (provisioning.Result, error) {
		if broken.Load() {
			return provisioning.Result{}, &provisioning.Error{Retryable: false, Reason: "tenant quota exceeded"}
		}
		return provisioning.Result{AppInfo: &provisioning.AppInfo{FrontEndURL: "https://seller.example/" + e.InstanceID}}, nil
	})
	hook := httptest.NewServer(recv)
	t.Cleanup(hook.Close)
	s := newStack(t, func(c *config.Config) {
		c.ProvisionerURL, c.ProvisionerSecret = hook.URL, config.Secret(secret)
	})
	orderID := testenv.Unique("PRK")
	line := s.order(orderID, "NEW", "OFFI-NOT-IN-CATALOG", "x-1", 1, "10", time.Now().UTC().AddDate(0, 1, 0))
	id := s.newInstance(orderID, line)
	path := "/instances/" + id

	d := s.waitFor(id, "the parking", func(d console.InstanceDetail) bool { return d.Parked })
	if d.ParkedStep != "provision create" || !strings.Contains(d.ParkedReason, "tenant quota exceeded") || len(d.Parkings) != 1 {
		t.Fatalf("parked instance %+v parkings %+v", d.Instance, d.Parkings)
	}
	if n := s.countWorkflows("Parked = true AND InstanceId = '"+id+"'", 1); n != 1 {
		t.Fatalf("Parked search attribute: %d executions", n)
	}
	// The refusal is reported (docs/koogallery.md, "Refused purchases"): 000104, as it named no code.
	if len(d.Alerts) != 2 || !slices.Equal(alertKinds(d), []string{"purchase-refused", "unknown-product"}) || d.ProductKnown {
		t.Fatalf("alerts %+v", d.Alerts)
	}
	var cat console.CatalogView
	s.do(http.MethodGet, "/catalog", nil, &cat)
	if len(cat.Products) == 0 || !slices.ContainsFunc(cat.Warnings, func(w console.CatalogWarning) bool {
		return w.ProductID == "OFFI-NOT-IN-CATALOG" && w.Instances == 1
	}) {
		t.Fatalf("catalog view %+v", cat)
	}
	var live console.InstanceDetail
	s.do(http.MethodGet, path+"?live=true", nil, &live)
	if live.Live == nil || live.Live.Parked == nil || len(live.Live.Pending) != 1 || live.Live.Pending[0].Kind != instance.StepPurchase {
		t.Fatalf("live state %+v (%s)", live.Live, live.LiveError)
	}

	// Resume while still broken: retried, and parked again.
	var res instance.OperatorResult
	if code, p := s.do(http.MethodPost, path+"/operator", console.OperatorBody{Action: "resume", Note: "try again"}, &res); code != http.StatusOK || res.Stage != "provision create" {
		t.Fatalf("resume: %d %s %+v", code, p.Detail, res)
	}
	d = s.waitFor(id, "the second parking", func(d console.InstanceDetail) bool { return d.Parked && len(d.Parkings) == 2 })
	// Fixed: the Temporal UI's signal resumes it.
	broken.Store(false)
	if err := s.tc.SignalWorkflow(context.Background(), instance.WorkflowID(id), "", instance.SignalOperator,
		instance.OperatorAction{Action: instance.OperatorResume, Note: "quota raised"}); err != nil {
		t.Fatal(err)
	}
	d = s.waitFor(id, "provisioning after resume", func(d console.InstanceDetail) bool { return d.Lifecycle == "ACTIVE" && !d.Parked })
	if d.AppInfo == nil || d.AppInfo.FrontEndURL != "https://seller.example/"+id {
		t.Fatalf("appInfo from the webhook %+v", d.AppInfo)
	}
	for i, p := range d.Parkings {
		want := []string{"operator:ops", "operator:temporal-ui"}[i]
		if p.Resolution == nil || *p.Resolution != "resume" || p.ResolvedBy == nil || *p.ResolvedBy != want {
			t.Fatalf("parking %d: %+v", i, p)
		}
	}
	if code, p := s.do(http.MethodPost, path+"/operator", console.OperatorBody{Action: "skip"}, nil); code != http.StatusConflict || !strings.Contains(p.Detail, "not parked") {
		t.Fatalf("operator on a running instance: %d %s", code, p.Detail)
	}
	var page store.InstancePage
	s.do(http.MethodGet, "/instances?parked=false&productId=OFFI-NOT-IN-CATALOG", nil, &page)
	if len(page.Items) != 1 {
		t.Fatalf("filter parked=false: %+v", page)
	}
	if code, p := s.do(http.MethodGet, "/instances?parked=maybe&lifecycle=SLEEPING", nil, nil); code != http.StatusBadRequest || len(p.Errors) != 2 {
		t.Fatalf("bad filters: %d %+v", code, p)
	}
	keepHistory(t, s, instance.WorkflowID(id), "", "parking-resume-by-update-and-signal.json")
}

// alertKinds lists the instance's alert kinds, sorted.
func alertKinds(d console.InstanceDetail) []string {
	var k []string
	for _, a := range d.Alerts {
		k = append(k, a.Kind)
	}
	slices.Sort(k)
	return k
}

// TestExpirySafetyNetAndRenewalThroughTheAPI: with policy "freeze" and a one-second grace, an instance whose expiry
// passes without the marketplace freezing it raises an alert and freezes itself (the workers' expiry watch sends
// the check); a renewal during the freeze period unfreezes it.
func TestExpirySafetyNetAndRenewalThroughTheAPI(t *testing.T) {
	s := newStack(t, func(c *config.Config) {
		c.ExpiryGrace, c.ExpiryPolicy = time.Second, string(lifecycle.PolicyFreeze)
		c.ExpiryWatchInterval = 200 * time.Millisecond
		c.RenewalsPerRun = 1 // the recorded run ends with the renewal's Continue-As-New
	})
	orderID := testenv.Unique("EXP")
	exp := time.Now().UTC().Truncate(time.Second).Add(3 * time.Second)
	line := s.order(orderID, "NEW", monthly, "crm-basic-month", 1, "100", exp)
	id := s.newInstance(orderID, line)
	d := s.waitFor(id, "the expiry policy's freeze", func(d console.InstanceDetail) bool { return d.Lifecycle == "FROZEN" })
	if d.FrozenBy != instance.FrozenByExpiryPolicy || len(d.Alerts) != 1 || d.Alerts[0].Kind != "expiry" {
		t.Fatalf("frozen by %q, alerts %+v", d.FrozenBy, d.Alerts)
	}
	first, err := s.tc.DescribeWorkflowExecution(context.Background(), instance.WorkflowID(id), "")
	if err != nil {
		t.Fatal(err)
	}
	renewalID := testenv.Unique("RNW")
	exp2 := time.Now().UTC().Truncate(time.Second).AddDate(0, 1, 0)
	rline := s.order(renewalID, "RENEW", monthly, "crm-basic-month", 1, "100", exp2)
	if r := s.mp(map[string]any{"activity": "refreshInstance", "instanceId": id, "orderId": renewalID, "orderLineId": rline,
		"scene": "RENEWAL", "expireTime": koogallery.FormatTime(exp2)}); r.ResultCode != "000000" {
		t.Fatalf("refreshInstance %+v", r)
	}
	d = s.waitFor(id, "the unfreeze", func(d console.InstanceDetail) bool {
		return d.Lifecycle == "ACTIVE" && len(ordersOfType(d, "RENEW")) == 1
	})
	if d.Alerts[0].ResolvedAt == nil || !slices.Contains(kinds(d), "unfrozen") {
		t.Fatalf("alert %+v timeline %v", d.Alerts[0], kinds(d))
	}
	// A renewal of an expired instance takes effect when applied, not at the old expiry.
	if r := ordersOfType(d, "RENEW")[0]; !r.EffectiveAt.After(exp) {
		t.Fatalf("renewal effective %v, expiry was %v", r.EffectiveAt, exp)
	}
	// The unfreeze the marketplace sends too is a no-op success.
	if r := s.mp(map[string]any{"activity": "updateInstanceStatus", "instanceId": id, "status": "UNFREEZE"}); r.ResultCode != "000000" {
		t.Fatalf("UNFREEZE %+v", r)
	}
	keepHistory(t, s, instance.WorkflowID(id), first.WorkflowExecutionInfo.Execution.RunId, "expiry-watch-freeze-then-renewal.json")
}

// TestTrialUpgradeUnsubscribeAndDialTestThroughTheAPI: a trial converted to a formal order, upgraded, renewed,
// the renewal refunded by the marketplace and the purchase unsubscribed (release with the unsubscribe order);
// and a dial test, which reaches neither the seller's webhook nor settlement. The conversion and the renewal
// each continue as new; the test waits for that before the next call, so the three runs hold the conversion,
// the upgrade with the renewal, and the renewal refund with the release, and records each.
func TestTrialUpgradeUnsubscribeAndDialTestThroughTheAPI(t *testing.T) {
	var webhookCalls atomic.Int32
	const secret = "console-webhook-secret-0123456"
	hook := httptest.NewServer(provisioning.NewReceiver(secret, time.Minute, func(ctx context.Context, e provisioning.Event) (provisioning.Result, error) {
		webhookCalls.Add(1)
		return provisioning.Result{}, nil
	}))
	t.Cleanup(hook.Close)
	s := newStack(t, func(c *config.Config) {
		c.ProvisionerURL, c.ProvisionerSecret = hook.URL, config.Secret(secret)
		c.RenewalsPerRun = 1 // each renewal continues as new, so each run holds one stage
	})
	now := time.Now().UTC().Truncate(time.Second)

	trialID := testenv.Unique("TRL")
	line := s.order(trialID, "TRIAL", monthly, "crm-basic-month", 1, "0", now.AddDate(0, 0, 7))
	id := s.newInstance(trialID, line)
	wfID := instance.WorkflowID(id)
	d := s.waitFor(id, "the trial", func(d console.InstanceDetail) bool { return d.Lifecycle == "ACTIVE" })
	if !d.Trial || ordersOfType(d, "TRIAL")[0].PaidAmount != "0.000" {
		t.Fatalf("trial %+v orders %+v", d.Instance, d.Orders)
	}
	run1 := s.runID(wfID)
	call := func(body map[string]any) {
		t.Helper()
		body["instanceId"] = id
		if r := s.mp(body); r.ResultCode != "000000" {
			t.Fatalf("%v answered %+v", body["activity"], r)
		}
	}
	formalID := testenv.Unique("FRM")
	exp1 := now.AddDate(0, 1, 0)
	fline := s.order(formalID, "TRIAL_TO_FORMAL", monthly, "crm-basic-month", 1, "100", exp1)
	call(map[string]any{"activity": "refreshInstance", "orderId": formalID, "orderLineId": fline, "scene": "TRIAL_TO_FORMAL", "expireTime": koogallery.FormatTime(exp1)})
	d = s.waitFor(id, "the conversion", func(d console.InstanceDetail) bool { return !d.Trial && len(ordersOfType(d, "TRIAL_TO_FORMAL")) == 1 })
	if f := ordersOfType(d, "TRIAL_TO_FORMAL")[0]; f.PaidAmount != "100.000" || f.EffectiveAt == nil || !d.ExpireTime.Equal(exp1) ||
		d.Lifecycle != "ACTIVE" || !slices.Contains(kinds(d), "trial-converted") {
		t.Fatalf("after the conversion: order %+v, instance %+v, timeline %v", f, d.Instance, kinds(d))
	}
	run2 := s.waitForNewRun(wfID, run1, "the conversion")

	changeID := testenv.Unique("CHG")
	cline := s.order(changeID, "CHANGE", monthly, "crm-pro-month", 4, "600", exp1)
	call(map[string]any{"activity": "upgradeInstance", "orderId": changeID, "orderLineId": cline})
	d = s.waitFor(id, "the upgrade", func(d console.InstanceDetail) bool { return d.SKUCode == "crm-pro-month" })
	if d.Quantity != 4 || ordersOfType(d, "CHANGE")[0].PaidAmount != "600.000" {
		t.Fatalf("after upgrade %+v", d.Instance)
	}

	renewalID := testenv.Unique("RNW")
	exp2 := exp1.AddDate(0, 1, 0)
	rline := s.order(renewalID, "RENEW", monthly, "crm-pro-month", 4, "550", exp2)
	call(map[string]any{"activity": "refreshInstance", "orderId": renewalID, "orderLineId": rline, "scene": "RENEWAL", "expireTime": koogallery.FormatTime(exp2)})
	d = s.waitFor(id, "the renewal", func(d console.InstanceDetail) bool { return len(ordersOfType(d, "RENEW")) == 1 })
	if r := ordersOfType(d, "RENEW")[0]; r.PaidAmount != "550.000" || !r.EffectiveAt.Equal(exp1) || !d.ExpireTime.Equal(exp2) {
		t.Fatalf("renewal %+v, expiry %v", r, d.ExpireTime)
	}
	run3 := s.waitForNewRun(wfID, run2, "the renewal")
	unsubRenewal := testenv.Unique("URN")
	uline := s.order(unsubRenewal, "UNSUBSCRIBE", monthly, "crm-pro-month", 4, "550", exp1)
	call(map[string]any{"activity": "refreshInstance", "orderId": unsubRenewal, "orderLineId": uline, "scene": "UNSUBSCRIBE_RENEWAL_PERIOD", "expireTime": koogallery.FormatTime(exp1)})
	d = s.waitFor(id, "the renewal refund", func(d console.InstanceDetail) bool { return len(ordersOfType(d, "UNSUBSCRIBE")) == 1 })
	if u := ordersOfType(d, "UNSUBSCRIBE")[0]; u.PaidAmount != "-550.000" || *u.RefersToOrderID != renewalID || !d.ExpireTime.Equal(exp1) {
		t.Fatalf("renewal refund %+v, expiry %v", u, d.ExpireTime)
	}
	unsub := testenv.Unique("UNS")
	usline := s.order(unsub, "UNSUBSCRIBE", monthly, "crm-pro-month", 4, "100", time.Time{})
	call(map[string]any{"activity": "releaseInstance", "orderId": unsub, "orderLineId": usline})
	d = s.waitFor(id, "the release", func(d console.InstanceDetail) bool { return d.Lifecycle == "RELEASED" })
	var unsubRow *store.Order
	for _, o := range ordersOfType(d, "UNSUBSCRIBE") {
		if o.OrderID == unsub {
			unsubRow = &o
		}
	}
	if unsubRow == nil || unsubRow.PaidAmount != "-100.000" || *unsubRow.RefersToOrderID != formalID {
		t.Fatalf("unsubscribe of the purchase %+v", unsubRow)
	}
	if k := kinds(d); !slices.Equal(k, []string{"accepted", "order", "provisioned", "trial-converted", "upgraded", "renewed", "renewal-refunded", "released"}) {
		t.Fatalf("timeline %v", k)
	}
	if last := s.runID(wfID); last != run3 {
		t.Fatalf("the renewal refund or the release continued as new (run %s, want %s)", last, run3)
	}
	keepHistory(t, s, wfID, run1, "trial-run1-purchase-conversion.json")
	keepHistory(t, s, wfID, run2, "trial-run2-upgrade-renewal.json")
	keepHistory(t, s, wfID, run3, "trial-run3-renewal-refund-unsubscribe-release.json")
	// Every product here is "builtin" in the catalog, so the configured webhook was never called.
	if n := webhookCalls.Load(); n != 0 {
		t.Fatalf("webhook called %d times for built-in products", n)
	}

	// A dial test of an unknown product would go to the webhook if it were real; as a dial test it takes the
	// built-in path, and its order is marked so settlement skips it.
	dialID := testenv.Unique("DIAL")
	dline := s.order(dialID, "NEW", "OFFI-NOT-IN-CATALOG", "x", 1, "10", now.AddDate(0, 1, 0))
	r := s.mp(map[string]any{"activity": "newInstance", "orderId": dialID, "orderLineId": dline, "businessId": "b-" + dialID, "testFlag": "1"})
	if r.ResultCode != "000004" && r.ResultCode != "000000" {
		t.Fatalf("dial test newInstance %+v", r)
	}
	dd := s.waitFor(r.InstanceID, "the dial test", func(d console.InstanceDetail) bool { return d.Lifecycle == "ACTIVE" })
	if !dd.TestFlag || !dd.Orders[0].TestFlag || dd.AppInfo == nil {
		t.Fatalf("dial test instance %+v orders %+v", dd.Instance, dd.Orders)
	}
	if n := webhookCalls.Load(); n != 0 {
		t.Fatalf("a dial test reached the webhook (%d calls)", n)
	}
	var page store.InstancePage
	s.do(http.MethodGet, "/instances?testFlag=true", nil, &page)
	if len(page.Items) != 1 || page.Items[0].InstanceID != r.InstanceID {
		t.Fatalf("testFlag filter %+v", page)
	}
}

// TestProductWithoutProvisioningParks: outside development (KOOFLOW_PROVISIONER unset, no webhook) an order for a
// product that names no provisioning — here one the catalog does not know — is not delivered with made-up access
// data: it parks with a reason that says what to configure, and queryInstance keeps answering "in progress".
func TestProductWithoutProvisioningParks(t *testing.T) {
	s := newStack(t, func(c *config.Config) { c.Provisioner = "" })
	orderID := testenv.Unique("NOP")
	line := s.order(orderID, "NEW", "OFFI-NOT-IN-CATALOG", "x-month", 1, "100", time.Now().UTC().AddDate(0, 1, 0))
	id := s.newInstance(orderID, line)
	d := s.waitFor(id, "the parking", func(d console.InstanceDetail) bool { return d.Parked })
	if d.ParkedStep != "provision create" || !strings.Contains(d.ParkedReason, "names no provisioning") ||
		!strings.Contains(d.ParkedReason, config.EnvProvisionerURL) || d.AppInfo != nil || d.Lifecycle != "PROVISIONING" {
		t.Fatalf("parked %q %q, appInfo %+v, lifecycle %s", d.ParkedStep, d.ParkedReason, d.AppInfo, d.Lifecycle)
	}
	if q := s.mp(map[string]any{"activity": "queryInstance", "instanceId": id}); q.ResultCode != koogallery.ResultInProgress {
		t.Fatalf("queryInstance while parked: %+v", q)
	}
}
