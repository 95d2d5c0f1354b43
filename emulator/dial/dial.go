// Package dial is the marketplace's dial test (拨测): the debugging cases, every one with testFlag "1", that
// KooGallery runs against a SaaS seller's production interface twice a day, and whose persistent failure gets a
// product delisted. Each activity is called as the documents require it to behave — including twice, since
// debugging calls must be repeatable and idempotent — plus the refusals a seller must give (a forged signature,
// a stale timestamp, a replayed nonce, an unknown activity, an unknown instance). Every answer's Body-Sign is
// verified.
package dial

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/shopspring/decimal"

	"github.com/kooflow/kooflow/emulator/deliver"
	"github.com/kooflow/kooflow/emulator/kit"
	"github.com/kooflow/kooflow/emulator/market"
	"github.com/kooflow/kooflow/emulator/sign"
)

// Case is one checked call.
type Case struct {
	Name     string
	Activity string
	Pass     bool
	Detail   string
	Latency  time.Duration
}

// Report is one dial-test run.
type Report struct {
	At    time.Time
	Wall  time.Duration
	Cases []Case
}

// Passed reports whether every case passed.
func (r Report) Passed() bool {
	for _, c := range r.Cases {
		if !c.Pass {
			return false
		}
	}
	return len(r.Cases) > 0
}

// Print writes the report.
func (r Report) Print(w io.Writer) {
	failed := 0
	for _, c := range r.Cases {
		mark := "PASS"
		if !c.Pass {
			mark = "FAIL"
			failed++
		}
		fmt.Fprintf(w, "  %s  %-22s %-58s %8s  %s\n", mark, c.Activity, c.Name, c.Latency.Round(time.Millisecond), c.Detail)
	}
	verdict := "PASS"
	if !r.Passed() {
		verdict = "FAIL"
	}
	fmt.Fprintf(w, "dial test %s: %d cases, %d failed, %s (at %s)\n", verdict, len(r.Cases), failed,
		r.Wall.Round(time.Millisecond), r.At.UTC().Format(time.RFC3339))
}

// Runner runs dial tests against one seller.
type Runner struct {
	Client *deliver.Client
	Market market.Places
	// AppInfoWait bounds how long queryInstance is polled for the debug instance's access details.
	AppInfoWait time.Duration
	// Kit, when set, adds the joint-operation cases: the Kit sync calls (testFlag 1) for the debug instance, each
	// added, repeated, modified and deleted twice, a delete for an unknown instance and a forged x-sign.
	Kit *kit.Syncer
}

type run struct {
	r      *Runner
	ctx    context.Context
	report *Report
	prefix string
	seq    int
}

// Run performs every case once. It never stops early: a failed case is reported and the next one runs.
func (r *Runner) Run(ctx context.Context) Report {
	start := time.Now()
	rep := &Report{At: start}
	x := &run{r: r, ctx: ctx, report: rep, prefix: "DIAL" + start.UTC().Format("060102150405") + strings.ToUpper(uuid.NewString()[:4])}
	x.all()
	rep.Wall = time.Since(start)
	return *rep
}

func (x *run) orderID() string {
	x.seq++
	return fmt.Sprintf("%s%02d", x.prefix, x.seq)
}

func (x *run) record(c Case) {
	x.report.Cases = append(x.report.Cases, c)
}

// call sends one debugging message and checks its answer.
func (x *run) call(name string, m deliver.Message, want ...string) deliver.Attempt {
	m.TestFlag = true
	a := x.r.Client.Send(x.ctx, m, 0)
	x.check(name, m.Activity, a, want...)
	return a
}

func (x *run) check(name, activity string, a deliver.Attempt, want ...string) bool {
	c := Case{Name: name, Activity: activity, Latency: a.Latency}
	switch {
	case a.BadBodySign:
		c.Detail = "Body-Sign does not verify: " + a.Err.Error()
	case a.Err != nil && a.ResultCode == "":
		c.Detail = a.Err.Error()
	case a.HTTPStatus != 200:
		c.Detail = fmt.Sprintf("HTTP %d (the interface answers 200 with a resultCode)", a.HTTPStatus)
	case !contains(want, a.ResultCode):
		c.Detail = fmt.Sprintf("resultCode %s %q, want %s", a.ResultCode, a.ResultMsg, strings.Join(want, " or "))
	default:
		c.Pass = true
		c.Detail = "resultCode " + a.ResultCode
	}
	x.record(c)
	return c.Pass
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func (x *run) place(typ string, line market.Line) (string, string, error) {
	id := x.orderID()
	line.OrderLineID = id + "-000001"
	if line.ProductID == "" {
		line.ProductID, line.SKUCode, line.LinearValue = "OFFI-KOOFLOW-CRM-MONTHLY", "crm-basic-month", 1
	}
	if line.ChargingMode == "" {
		line.ChargingMode = market.ChargingPeriod
	}
	o := market.Order{OrderID: id, OrderType: typ, CreateTime: time.Now().UTC().Truncate(time.Second), Lines: []market.Line{line},
		Buyer: &market.Buyer{CustomerID: "dialtest0000000000000000000000000", CustomerName: "dial test"}}
	if err := x.r.Market.PutOrder(x.ctx, o); err != nil {
		x.record(Case{Name: "place the debug " + typ + " order", Detail: err.Error()})
		return "", "", err
	}
	return id, line.OrderLineID, nil
}

func fields(kv ...string) []deliver.Field {
	var out []deliver.Field
	for i := 0; i+1 < len(kv); i += 2 {
		out = append(out, deliver.Field{Name: kv[i], Value: kv[i+1]})
	}
	return out
}

func monthly(expire time.Time, amount string) market.Line {
	a := decimal.RequireFromString(amount)
	return market.Line{PeriodType: "month", PeriodNumber: 1, ExpireTime: expire, ListAmount: a, PaidAmount: a}
}

func fmtExpire(t time.Time) string { return t.UTC().Format("20060102150405") }

func (x *run) all() {
	now := time.Now().UTC().Truncate(time.Second)
	exp1 := now.AddDate(0, 1, 0)
	exp2 := exp1.AddDate(0, 1, 0)

	// newInstance, twice: the same instanceId.
	orderID, lineID, err := x.place(market.TypeNew, monthly(exp1, "100"))
	if err != nil {
		return
	}
	newMsg := deliver.Message{Activity: deliver.NewInstance, Fields: fields("orderId", orderID, "orderLineId", lineID, "businessId", "")}
	a := x.call("newInstance", newMsg, deliver.CodeSuccess, deliver.CodeInProgress)
	inst := a.InstanceID
	if inst == "" {
		x.record(Case{Name: "newInstance returns an instanceId", Activity: deliver.NewInstance, Detail: "no instanceId in " + string(a.Body)})
		return
	}
	b := x.call("newInstance again (idempotent)", newMsg, deliver.CodeSuccess, deliver.CodeInProgress)
	if b.InstanceID != inst {
		x.record(Case{Name: "newInstance again returns the same instanceId", Activity: deliver.NewInstance,
			Detail: fmt.Sprintf("%q then %q", inst, b.InstanceID)})
	}

	// queryInstance until the access details are there.
	x.pollQuery(inst)
	x.kit(inst, orderID)

	// refreshInstance RENEWAL, twice.
	renewID, renewLine, err := x.place(market.TypeRenew, monthly(exp2, "100"))
	if err == nil {
		m := deliver.Message{Activity: deliver.RefreshInstance, Fields: fields("scene", "RENEWAL", "orderId", renewID,
			"orderLineId", renewLine, "instanceId", inst, "expireTime", fmtExpire(exp2))}
		x.call("refreshInstance RENEWAL", m, deliver.CodeSuccess)
		x.call("refreshInstance RENEWAL again (idempotent)", m, deliver.CodeSuccess)
	}

	// changeInstanceCheck.
	x.call("changeInstanceCheck", deliver.Message{Activity: deliver.ChangeInstanceCheck, Fields: []deliver.Field{
		{Name: "instanceId", Value: inst},
		{Name: "productInfo", Value: map[string]any{"productId": "OFFI-KOOFLOW-CRM-MONTHLY", "skuCode": "crm-pro-month", "linearValue": 1}},
	}}, deliver.CodeSuccess)

	// upgradeInstance, twice.
	up := monthly(exp2, "200")
	up.SKUCode, up.ProductID, up.LinearValue = "crm-pro-month", "OFFI-KOOFLOW-CRM-MONTHLY", 1
	upID, upLine, err := x.place(market.TypeChange, up)
	if err == nil {
		m := deliver.Message{Activity: deliver.UpgradeInstance, Fields: fields("instanceId", inst, "orderId", upID, "orderLineId", upLine)}
		x.call("upgradeInstance", m, deliver.CodeSuccess)
		x.call("upgradeInstance again (idempotent)", m, deliver.CodeSuccess)
	}

	// updateInstanceStatus: freeze twice, unfreeze.
	freeze := deliver.Message{Activity: deliver.UpdateInstanceStatus, Fields: fields("instanceId", inst, "status", "FREEZE")}
	x.call("updateInstanceStatus FREEZE", freeze, deliver.CodeSuccess)
	x.call("updateInstanceStatus FREEZE again (idempotent)", freeze, deliver.CodeSuccess)
	x.call("updateInstanceStatus UNFREEZE", deliver.Message{Activity: deliver.UpdateInstanceStatus,
		Fields: fields("instanceId", inst, "status", "UNFREEZE")}, deliver.CodeSuccess)

	// refreshInstance UNSUBSCRIBE_RENEWAL_PERIOD: the renewal refunded before it takes effect.
	if renewID != "" {
		unsubID, unsubLine, err := x.place(market.TypeUnsubscribe, monthly(exp1, "100"))
		if err == nil {
			x.call("refreshInstance UNSUBSCRIBE_RENEWAL_PERIOD", deliver.Message{Activity: deliver.RefreshInstance,
				Fields: fields("scene", "UNSUBSCRIBE_RENEWAL_PERIOD", "orderId", unsubID, "orderLineId", unsubLine,
					"instanceId", inst, "expireTime", fmtExpire(exp1))}, deliver.CodeSuccess)
		}
	}

	// A trial, converted.
	trialExp := now.AddDate(0, 0, 7)
	tl := market.Line{PeriodType: "day", PeriodNumber: 7, ExpireTime: trialExp, ListAmount: decimal.Zero, PaidAmount: decimal.Zero}
	trialID, trialLine, err := x.place(market.TypeTrial, tl)
	var trialInst string
	if err == nil {
		a := x.call("newInstance (trial)", deliver.Message{Activity: deliver.NewInstance,
			Fields: fields("orderId", trialID, "orderLineId", trialLine, "businessId", "")}, deliver.CodeSuccess, deliver.CodeInProgress)
		trialInst = a.InstanceID
	}
	if trialInst != "" {
		formalID, formalLine, err := x.place(market.TypeTrialToFormal, monthly(exp1, "100"))
		if err == nil {
			x.call("refreshInstance TRIAL_TO_FORMAL", deliver.Message{Activity: deliver.RefreshInstance,
				Fields: fields("scene", "TRIAL_TO_FORMAL", "orderId", formalID, "orderLineId", formalLine,
					"instanceId", trialInst, "expireTime", fmtExpire(exp1))}, deliver.CodeSuccess)
		}
		unsubID, unsubLine, err := x.place(market.TypeUnsubscribe, monthly(exp1, "100"))
		if err == nil {
			x.call("releaseInstance after unsubscribe", deliver.Message{Activity: deliver.ReleaseInstance,
				Fields: fields("instanceId", trialInst, "orderId", unsubID, "orderLineId", unsubLine)}, deliver.CodeSuccess)
		}
	}

	// releaseInstance, twice.
	rel := deliver.Message{Activity: deliver.ReleaseInstance, Fields: fields("instanceId", inst)}
	x.call("releaseInstance", rel, deliver.CodeSuccess)
	x.call("releaseInstance again (idempotent)", rel, deliver.CodeSuccess)

	// What a seller must refuse.
	x.call("refreshInstance of an unknown instance", deliver.Message{Activity: deliver.RefreshInstance,
		Fields: fields("scene", "RENEWAL", "orderId", x.orderID(), "orderLineId", "x-000001", "instanceId", uuid.NewString(),
			"expireTime", fmtExpire(exp1))}, deliver.CodeNoInstance)
	x.call("unknown activity", deliver.Message{Activity: "suspendInstance", Fields: fields("instanceId", inst)}, deliver.CodeParams)
	x.forged(inst)
}

// pollQuery asks queryInstance until it reports the instance with its access details.
func (x *run) pollQuery(inst string) {
	wait := x.r.AppInfoWait
	if wait == 0 {
		wait = 30 * time.Second
	}
	deadline := time.Now().Add(wait)
	m := deliver.Message{Activity: deliver.QueryInstance, TestFlag: true, Fields: fields("instanceId", inst)}
	for {
		a := x.r.Client.Send(x.ctx, m, 0)
		ok := a.Answered() && a.HTTPStatus == 200 && a.ResultCode == deliver.CodeSuccess
		var info *deliver.AppInfo
		for _, in := range a.Info {
			if in.InstanceID == inst {
				info = in.AppInfo
			}
		}
		if ok && info != nil && info.FrontEndURL != "" || a.BadBodySign || time.Now().After(deadline) || x.ctx.Err() != nil {
			if x.check("queryInstance", deliver.QueryInstance, a, deliver.CodeSuccess) && (info == nil || info.FrontEndURL == "") {
				x.report.Cases[len(x.report.Cases)-1].Pass = false
				x.report.Cases[len(x.report.Cases)-1].Detail = "no appInfo.frontEndUrl for " + inst
			}
			return
		}
		select {
		case <-x.ctx.Done():
		case <-time.After(300 * time.Millisecond):
		}
	}
}

// forged sends deliveries a seller must refuse with 000001: a wrong signature, a stale timestamp, a replay.
func (x *run) forged(inst string) {
	m := deliver.Message{Activity: deliver.QueryInstance, TestFlag: true, Fields: fields("instanceId", inst)}
	body := m.Body()
	nonce, _ := sign.Nonce()
	ts := sign.Timestamp(time.Now())
	sig, _ := sign.RequestSignature(x.r.Client.AccessKey+"-wrong", body, nonce, ts)
	a := x.r.Client.Post(x.ctx, m.Activity, body, "signature="+sig+"&timestamp="+ts+"&nonce="+nonce, deliver.Attempt{})
	x.check("forged signature is refused", m.Activity, a, deliver.CodeAuth)

	a = x.r.Client.Send(x.ctx, m, 10*time.Minute)
	x.check("timestamp 10 minutes old is refused", m.Activity, a, deliver.CodeAuth)

	q, _ := sign.SignedQuery(x.r.Client.AccessKey, body, time.Now())
	first := x.r.Client.Post(x.ctx, m.Activity, body, q, deliver.Attempt{})
	x.check("a fresh delivery is answered", m.Activity, first, deliver.CodeSuccess, deliver.CodeNoInstance)
	second := x.r.Client.Post(x.ctx, m.Activity, body, q, deliver.Attempt{})
	x.check("the same nonce replayed is refused", m.Activity, second, deliver.CodeAuth)
}

// kit runs the Kit cases for the debug instance, as debugging calls.
func (x *run) kit(inst, orderID string) {
	if x.r.Kit == nil {
		return
	}
	sc := &kit.Scenario{Syncer: x.r.Kit, InstanceID: inst, OrderID: orderID, Tenant: "dial-tenant-" + strings.ToLower(x.prefix),
		DomainName: "https://auth.dial.invalid", AppID: "dial-app", ClientID: "dial-client", ClientSecret: "dial-client-secret",
		Users: 5, TestFlag: true}
	for _, s := range sc.Run(x.ctx) {
		x.record(Case{Name: s.Name, Activity: s.Call, Pass: s.Pass, Detail: s.Detail, Latency: s.Latency})
	}
}
