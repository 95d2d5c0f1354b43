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
	"github.com/kooflow/kooflow/config"
	"github.com/kooflow/kooflow/instance"
	"github.com/kooflow/kooflow/koogallery"
	"github.com/kooflow/kooflow/lifecycle"
	"github.com/kooflow/kooflow/provisioning"
	"github.com/kooflow/kooflow/testenv"
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
	if len(d.Alerts) != 1 || d.Alerts[0].Kind != "unknown-product" || d.ProductKnown {
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
	var page console.InstancePage
	s.do(http.MethodGet, "/instances?parked=false&productId=OFFI-NOT-IN-CATALOG", nil, &page)
	if len(page.Items) != 1 {
		t.Fatalf("filter parked=false: %+v", page)
	}
	if code, p := s.do(http.MethodGet, "/instances?parked=maybe&lifecycle=SLEEPING", nil, nil); code != http.StatusBadRequest || len(p.Errors) != 2 {
		t.Fatalf("bad filters: %d %+v", code, p)
	}
	h := history(t, s, instance.WorkflowID(id), "")
	replay(t, h)
	record(t, h, "parking-resume-by-update-and-signal.json")
}

// TestExpirySafetyNetAndRenewalThroughTheAPI: with policy "freeze" and a one-second grace, an instance whose expiry
// passes without the marketplace freezing it raises an alert and freezes itself; a renewal during the freeze
// period unfreezes it.
func TestExpirySafetyNetAndRenewalThroughTheAPI(t *testing.T) {
	s := newStack(t, func(c *config.Config) {
		c.ExpiryGrace, c.ExpiryPolicy = time.Second, string(lifecycle.PolicyFreeze)
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
	h := history(t, s, instance.WorkflowID(id), first.WorkflowExecutionInfo.Execution.RunId)
	replay(t, h)
	record(t, h, "expiry-policy-freeze-then-renewal.json")
}
