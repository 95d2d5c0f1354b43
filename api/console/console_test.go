package console_test

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"
	historypb "go.temporal.io/api/history/v1"
	sdkworker "go.temporal.io/sdk/worker"

	"github.com/kooflow/kooflow/api/console"
	"github.com/kooflow/kooflow/api/httpx"
	"github.com/kooflow/kooflow/internal/config"
	"github.com/kooflow/kooflow/internal/instance"
	"github.com/kooflow/kooflow/internal/koogallery"
	"github.com/kooflow/kooflow/internal/store"
	"github.com/kooflow/kooflow/internal/testenv"
	"github.com/kooflow/kooflow/worker"
	"github.com/kooflow/kooflow/workflows"
)

const monthly = "OFFI-KOOFLOW-CRM-MONTHLY"

// TestStandardPathThroughTheAPI drives the standard path through the production interface: a new purchase (not
// supervised), one renewal, a freeze and the release, checking what the console shows at each stage. Time passes
// as in production, only shorter: the purchase's period ends a few seconds after it (in production, a month),
// the renewal arrives before that, the purchase's expiry and grace pass (the workers' expiry watch reads the
// renewed expiry and sends nothing; the workflow has no timer), and then the marketplace freezes and releases
// the instance. The run's
// history is replayed against the current code, and written to $KOOFLOW_RECORD_HISTORIES when set (that is how
// workflows/testdata is recorded; workflows.TestBillableActionsOfTheStandardPath counts its billed actions).
func TestStandardPathThroughTheAPI(t *testing.T) {
	const grace, watch = time.Second, 200 * time.Millisecond
	s := newStack(t, func(c *config.Config) { c.ExpiryGrace, c.ExpiryWatchInterval = grace, watch })
	orderID := testenv.Unique("STD")
	exp := time.Now().UTC().Truncate(time.Second).Add(12 * time.Second)
	line := s.order(orderID, "NEW", monthly, "crm-basic-month", 2, "200.00", exp)
	id := s.newInstance(orderID, line)
	wfID := instance.WorkflowID(id)

	d := s.waitFor(id, "provisioning", func(d console.InstanceDetail) bool { return d.Lifecycle == "ACTIVE" })
	if d.Supervision != "NOT_INVOLVED" || d.ProductID != monthly || d.Quantity != 2 || d.AppInfo == nil ||
		d.AppInfo.FrontEndURL == "" || !d.AppInfo.PasswordSet || d.ExpireTime == nil || !d.ExpireTime.Equal(exp) {
		t.Fatalf("instance after provisioning: %+v (appInfo %+v)", d.Instance, d.AppInfo)
	}
	if n := ordersOfType(d, "NEW"); len(n) != 1 || n[0].PaidAmount != "200.000" || n[0].EffectiveAt == nil {
		t.Fatalf("NEW order %+v", d.Orders)
	}
	if k := kinds(d); !slices.Equal(k, []string{"accepted", "order", "provisioned"}) {
		t.Fatalf("timeline %v", k)
	}
	firstRun, err := s.tc.DescribeWorkflowExecution(context.Background(), wfID, "")
	if err != nil {
		t.Fatal(err)
	}
	// The marketplace reads the access data with queryInstance (answered from the read model).
	q := s.mp(map[string]any{"activity": "queryInstance", "instanceId": id})
	if q.ResultCode != "000000" || len(q.Info) != 1 || q.Info[0].AppInfo == nil || q.Info[0].AppInfo.FrontEndURL != d.AppInfo.FrontEndURL {
		t.Fatalf("queryInstance %+v", q)
	}

	// One renewal: the expiry moves to the marketplace's time, the renewal takes effect at the old expiry.
	renewalID := testenv.Unique("RNW")
	exp2 := exp.AddDate(0, 1, 0)
	rline := s.order(renewalID, "RENEW", monthly, "crm-basic-month", 2, "180.00", exp2)
	if r := s.mp(map[string]any{"activity": "refreshInstance", "instanceId": id, "orderId": renewalID, "orderLineId": rline,
		"scene": "RENEWAL", "expireTime": koogallery.FormatTime(exp2)}); r.ResultCode != "000000" {
		t.Fatalf("refreshInstance %+v", r)
	}
	d = s.waitFor(id, "the renewal", func(d console.InstanceDetail) bool { return len(ordersOfType(d, "RENEW")) == 1 })
	r := ordersOfType(d, "RENEW")[0]
	if r.PaidAmount != "180.000" || !r.EffectiveAt.Equal(exp) || !r.ExpireTime.Equal(exp2) || !d.ExpireTime.Equal(exp2) {
		t.Fatalf("renewal %+v, instance expiry %v", r, d.ExpireTime)
	}

	// The purchase's period ends and its grace passes, and the expiry watch looks several times: nothing happens.
	time.Sleep(time.Until(exp.Add(grace)) + 5*watch)
	if n := s.timersStarted(wfID); n != 0 {
		t.Fatalf("%s started %d timers, want none", wfID, n)
	}
	if d := s.instance(id); len(d.Alerts) != 0 {
		t.Fatalf("alerts after a renewal in time: %+v", d.Alerts)
	}

	// Freeze, then release.
	if r := s.mp(map[string]any{"activity": "updateInstanceStatus", "instanceId": id, "status": "FREEZE"}); r.ResultCode != "000000" {
		t.Fatalf("FREEZE %+v", r)
	}
	s.waitFor(id, "the freeze", func(d console.InstanceDetail) bool {
		return d.Lifecycle == "FROZEN" && slices.Contains(kinds(d), "frozen")
	})
	time.Sleep(time.Second)
	if r := s.mp(map[string]any{"activity": "releaseInstance", "instanceId": id}); r.ResultCode != "000000" {
		t.Fatalf("releaseInstance %+v", r)
	}
	d = s.waitFor(id, "the release", func(d console.InstanceDetail) bool { return d.Lifecycle == "RELEASED" })
	if d.AppInfo != nil || d.ReleasedAt == nil {
		t.Fatalf("released instance keeps access data: %+v", d.Instance)
	}
	if k := kinds(d); !slices.Equal(k, []string{"accepted", "order", "provisioned", "renewed", "frozen", "released"}) {
		t.Fatalf("timeline %v", k)
	}
	var page store.InstancePage
	s.do(http.MethodGet, "/instances?lifecycle=RELEASED&orderId="+orderID, nil, &page)
	if len(page.Items) != 1 || page.Items[0].InstanceID != id {
		t.Fatalf("filtered list %+v", page)
	}
	s.do(http.MethodGet, "/instances?lifecycle=ACTIVE&orderId="+orderID, nil, &page)
	if len(page.Items) != 0 {
		t.Fatalf("filter lifecycle=ACTIVE returned %+v", page)
	}
	// Search attributes carry the state for the Temporal UI (no personal data).
	if n := s.countWorkflows("InstanceId = '"+id+"' AND LifecycleState = 'RELEASED' AND ProductId = '"+monthly+"'", 1); n != 1 {
		t.Fatalf("visibility query found %d executions", n)
	}

	// One run: a renewal continues as new only after KOOFLOW_RENEWALS_PER_RUN of them. Replay it against the
	// current code.
	if run := s.runID(wfID); run != firstRun.WorkflowExecutionInfo.Execution.RunId {
		t.Fatalf("the renewal continued as new (run %s after %s)", run, firstRun.WorkflowExecutionInfo.Execution.RunId)
	}
	keepHistory(t, s, wfID, "", "standard-path.json")
}

// timersStarted counts the timers the workflow's current run has started.
func (s *stack) timersStarted(wfID string) int {
	s.t.Helper()
	started := 0
	for _, e := range testenv.History(s.t, s.tc, wfID, "").Events {
		if e.GetTimerStartedEventAttributes() != nil {
			started++
		}
	}
	return started
}

// replay runs a history through the current workflow code: a change that breaks running workflows fails here.
// It replays a copy (testenv.ReplayCopy), so h stays as the server returned it.
func replay(t *testing.T, h *historypb.History) {
	t.Helper()
	r := sdkworker.NewWorkflowReplayer()
	worker.RegisterWorkflows(r, workflows.LifecycleConfig{})
	if err := r.ReplayWorkflowHistory(nil, testenv.ReplayCopy(t, h)); err != nil {
		t.Fatalf("replay: %v", err)
	}
}

// keepHistory fetches one run's history (the latest run for an empty runID), replays it through the current
// workflow code and, when KOOFLOW_RECORD_HISTORIES is set, records it as name for the replay tests of workflows/.
func keepHistory(t *testing.T, s *stack, wfID, runID, name string) {
	t.Helper()
	h := testenv.History(t, s.tc, wfID, runID)
	testenv.RecordHistory(t, h, name)
	replay(t, h)
}

// TestSupervisionAndRefundsThroughTheConsole takes a supervised purchase through the console: refused steps
// answer 409 with the reason, a refund is requested and approved with a negotiated amount, supervision goes
// through a rejection to acceptance, after which refunds are refused.
func TestSupervisionAndRefundsThroughTheConsole(t *testing.T) {
	s := newStack(t, nil)
	orderID := testenv.Unique("SUP")
	line := s.order(orderID, "NEW", "OFFI-KOOFLOW-ONBOARDING", "onboarding-once", 1, "2000", time.Time{})
	id := s.newInstance(orderID, line)
	d := s.waitFor(id, "provisioning", func(d console.InstanceDetail) bool { return d.Lifecycle == "ACTIVE" })
	if d.Supervision != "AWAITING_REQUIREMENT" || ordersOfType(d, "NEW")[0].EffectiveAt != nil {
		t.Fatalf("supervised purchase: supervision %s, NEW effective %v", d.Supervision, ordersOfType(d, "NEW")[0].EffectiveAt)
	}
	path := "/instances/" + id

	refused := func(code int, p string, body any, want string) {
		t.Helper()
		got, prob := s.do(http.MethodPost, path+p, body, nil)
		if got != code || !strings.Contains(prob.Detail+fieldText(prob), want) {
			t.Fatalf("POST %s %v: %d %q, want %d containing %q", p, body, got, prob.Detail+fieldText(prob), code, want)
		}
	}
	step := func(step, note string, want instance.Supervision) {
		t.Helper()
		var res instance.SupervisionResult
		if code, p := s.do(http.MethodPost, path+"/supervision", console.SupervisionBody{Step: step, Note: note}, &res); code != http.StatusOK || res.Supervision != want {
			t.Fatalf("%s: %d %s → %s", step, code, p.Detail, res.Supervision)
		}
	}

	refused(http.StatusConflict, "/supervision", console.SupervisionBody{Step: instance.StepAccept}, "waits for the customer's requirement")
	refused(http.StatusBadRequest, "/supervision", console.SupervisionBody{Step: "dance"}, "must be one of")
	refused(http.StatusBadRequest, "/supervision", `{"step":"accept","colour":"red"}`, "unknown field")
	refused(http.StatusBadRequest, "/refunds", `{"amount":"-1"}`, "positive")
	refused(http.StatusBadRequest, "/refunds", `{"amount":"1.0001"}`, "3 decimal places")

	// A refund during the guarantee period: requested, then approved with a negotiated amount up to what was paid.
	var rf store.Refund
	var rfAgain store.Refund
	if code, p := s.do(http.MethodPost, path+"/refunds", map[string]any{"amount": "500", "reason": "only half the seats"}, &rf, "Idempotency-Key", "req-1"); code != http.StatusCreated {
		t.Fatalf("refund request: %d %s", code, p.Detail)
	}
	if code, _ := s.do(http.MethodPost, path+"/refunds", map[string]any{"amount": "500", "reason": "only half the seats"}, &rfAgain, "Idempotency-Key", "req-1"); code != http.StatusCreated || rfAgain.RefundID != rf.RefundID {
		t.Fatalf("the same request with the same Idempotency-Key made %q, want %q", rfAgain.RefundID, rf.RefundID)
	}
	refused(http.StatusConflict, "/refunds", map[string]any{"amount": "1"}, "still pending")
	refused(http.StatusBadRequest, "/supervision", console.SupervisionBody{Step: instance.StepSubmitRequirement, Party: "seller"}, "must be customer")
	// Four eyes: the token that requested the refund cannot approve it; the customer's token lacks finance.
	refused(http.StatusForbidden, "/refunds/"+rf.RefundID+"/decision", console.DecisionBody{Decision: "approve", Amount: ptr("450")}, `requested with the console token "ops"`)
	decide := func(token string, body console.DecisionBody, out any) (int, httpx.Problem) {
		t.Helper()
		return s.doAs(token, http.MethodPost, path+"/refunds/"+rf.RefundID+"/decision", body, out)
	}
	if code, p := decide(buyerToken, console.DecisionBody{Decision: "approve"}, nil); code != http.StatusForbidden || !strings.Contains(p.Detail, `"finance"`) {
		t.Fatalf("the customer's token approving: %d %q", code, p.Detail)
	}
	if code, p := decide(financeToken, console.DecisionBody{Decision: "approve", Amount: ptr("2000.01")}, nil); code != http.StatusConflict || !strings.Contains(p.Detail, "exceeds what may still be refunded") {
		t.Fatalf("over-approval: %d %q", code, p.Detail)
	}
	var approved store.Refund
	if code, p := decide(financeToken, console.DecisionBody{Decision: "approve", Amount: ptr("450"), Note: "agreed by phone"}, &approved); code != http.StatusOK {
		t.Fatalf("approve: %d %s", code, p.Detail)
	}
	// The finance token may not take supervision steps; the customer's token may not take the seller's. The
	// party in a body never changes who acted.
	if code, p := s.doAs(financeToken, http.MethodPost, path+"/supervision", console.SupervisionBody{Step: instance.StepSubmitRequirement}, nil); code != http.StatusForbidden || !strings.Contains(p.Detail, `"customer"`) {
		t.Fatalf("finance token submitting the requirement: %d %q", code, p.Detail)
	}
	if code, p := s.doAs(buyerToken, http.MethodPost, path+"/supervision", console.SupervisionBody{Step: instance.StepConfirm, Party: "operator"}, nil); code != http.StatusForbidden || !strings.Contains(p.Detail, `"operate"`) {
		t.Fatalf("customer token confirming: %d %q", code, p.Detail)
	}
	var sub instance.SupervisionResult
	if code, p := s.doAs(buyerToken, http.MethodPost, path+"/supervision", console.SupervisionBody{Step: instance.StepSubmitRequirement, Note: "10 seats"}, &sub); code != http.StatusOK || sub.Supervision != instance.SupervisionAwaitingConfirm {
		t.Fatalf("customer token submitting: %d %q %s", code, p.Detail, sub.Supervision)
	}

	refused(http.StatusConflict, "/supervision", console.SupervisionBody{Step: instance.StepReject}, "say why")
	step(instance.StepReject, "name the tenant", instance.SupervisionAwaitingRequirement)
	step(instance.StepSubmitRequirement, "10 seats, tenant acme", instance.SupervisionAwaitingConfirm)
	step(instance.StepConfirm, "", instance.SupervisionInService)
	started := time.Now().UTC().Add(-time.Hour).Truncate(time.Second)
	var res instance.SupervisionResult
	if code, p := s.do(http.MethodPost, path+"/supervision", console.SupervisionBody{Step: instance.StepDeliver, Note: "voucher #7", ActualStartTime: &started}, &res); code != http.StatusOK {
		t.Fatalf("deliver: %d %s", code, p.Detail)
	}
	step(instance.StepAccept, "", instance.SupervisionCompleted)
	refused(http.StatusConflict, "/refunds", map[string]any{"amount": "1"}, "guarantee period ended")

	d = s.instance(id)
	newOrder := ordersOfType(d, "NEW")[0]
	if newOrder.EffectiveAt == nil || d.SupervisionCompletedAt == nil || !newOrder.EffectiveAt.Equal(*d.SupervisionCompletedAt) {
		t.Fatalf("the purchase takes effect at acceptance: NEW %v, completed %v", newOrder.EffectiveAt, d.SupervisionCompletedAt)
	}
	if refund := ordersOfType(d, "REFUND"); len(refund) != 1 || refund[0].PaidAmount != "-450.000" || refund[0].RefersToOrderID == nil || *refund[0].RefersToOrderID != orderID {
		t.Fatalf("REFUND rows %+v", refund)
	}
	if len(d.Refunds) != 1 || d.Refunds[0].Status != "APPROVED" || *d.Refunds[0].ApprovedAmount != "450.000" || *d.Refunds[0].DecidedBy != "seller:money" {
		t.Fatalf("refunds %+v", d.Refunds)
	}
	var actors []string
	for _, e := range d.Timeline {
		if e.Kind == "supervision" {
			actors = append(actors, e.Actor)
		}
	}
	if !slices.Equal(actors, []string{"customer:buyer", "seller:ops", "customer:ops", "seller:ops", "seller:ops", "customer:ops"}) {
		t.Fatalf("acting parties %v", actors)
	}

	// After release the console refuses actions; unknown instances are 404; a missing token is 401.
	s.mp(map[string]any{"activity": "releaseInstance", "instanceId": id})
	s.waitFor(id, "the release", func(d console.InstanceDetail) bool { return d.Lifecycle == "RELEASED" })
	refused(http.StatusConflict, "/operator", console.OperatorBody{Action: "resume"}, "released")
	if code, _ := s.do(http.MethodPost, "/instances/no-such-instance/refunds", map[string]any{}, nil); code != http.StatusNotFound {
		t.Fatalf("unknown instance: %d", code)
	}
	req, _ := http.NewRequest(http.MethodGet, s.url+"/console/v1/instances", nil)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("without a token: %v %v", resp.StatusCode, err)
	}
	keepHistory(t, s, instance.WorkflowID(id), "", "supervision-refund-release.json")
}

func fieldText(p httpx.Problem) string {
	var b strings.Builder
	for _, e := range p.Errors {
		b.WriteString(" " + e.Field + ": " + e.Detail)
	}
	return b.String()
}

func ptr(s string) *decimal.Decimal { v := decimal.RequireFromString(s); return &v }
