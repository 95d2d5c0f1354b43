package workflows

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shopspring/decimal"
	"github.com/stretchr/testify/mock"
	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/kooflow/kooflow/activities"
	"github.com/kooflow/kooflow/internal/catalog"
	"github.com/kooflow/kooflow/internal/instance"
	"github.com/kooflow/kooflow/internal/koogallery"
	"github.com/kooflow/kooflow/internal/koogallery/orderquery"
	"github.com/kooflow/kooflow/internal/lifecycle"
	"github.com/kooflow/kooflow/internal/logging"
	"github.com/kooflow/kooflow/internal/provisioning"
	"github.com/kooflow/kooflow/internal/refusal"
	"github.com/kooflow/kooflow/internal/store"
)

// This file holds the unit-test doubles of the lifecycle workflow's dependencies: a marketplace that answers
// order queries from a map (behind the real QueryOrder activity, so order mapping and the catalog are exercised),
// a provisioner that records events and fails on demand, and an in-memory read model with the same keyed,
// versioned semantics as the SQL one (which has its own tests against PostgreSQL).

const (
	productMonthly    = "OFFI-KOOFLOW-CRM-MONTHLY"
	productSupervised = "OFFI-KOOFLOW-ONBOARDING"
)

var t0 = time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)

type fakeMarket struct {
	mu     sync.Mutex
	orders map[string]orderquery.OrderInfo
	fail   map[string][]error // per order id, consumed one per query
	calls  map[string]int
}

func newFakeMarket() *fakeMarket {
	return &fakeMarket{orders: map[string]orderquery.OrderInfo{}, fail: map[string][]error{}, calls: map[string]int{}}
}

func (m *fakeMarket) QueryOrder(ctx context.Context, orderID, lineID string) (*orderquery.OrderInfo, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.calls[orderID]++
	if errs := m.fail[orderID]; len(errs) > 0 {
		m.fail[orderID] = errs[1:]
		return nil, errs[0]
	}
	o, ok := m.orders[orderID]
	if !ok {
		return nil, &orderquery.Error{HTTPStatus: 400, Code: "MKT.0101", Message: "order not found", Retryable: false}
	}
	return &o, nil
}

// add registers an order with one line <id>-000001.
func (m *fakeMarket) add(id, typ, product, sku string, qty int64, paid string, expire *time.Time) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	line := orderquery.OrderLine{OrderLineID: id + "-000001", ChargingMode: koogallery.ChargingPeriod, PeriodType: "month",
		PeriodNumber: 1, ProductInfo: []orderquery.ProductInfo{{ProductID: product, SKUCode: sku, LinearValue: qty, ProductName: "p"}},
		Currency: paid, CurrencyAfterDiscount: paid}
	if expire != nil {
		line.ExpireTime = expire.UTC().Format(orderquery.TimeLayout)
	}
	phone := "13800000000"
	m.orders[id] = orderquery.OrderInfo{OrderID: id, OrderType: typ, CreateTime: t0.Format(orderquery.TimeLayout),
		OrderLine: []orderquery.OrderLine{line}, BuyerInfo: &orderquery.BuyerInfo{CustomerID: "cust-1", MobilePhone: &phone, CustomerName: "Zhang San"}}
	return line.OrderLineID
}

func (m *fakeMarket) failNext(orderID string, errs ...error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.fail[orderID] = append(m.fail[orderID], errs...)
}

type fakeProvisioner struct {
	mu       sync.Mutex
	events   []provisioning.Event
	attempts map[string]int
	// db, when set, applies the writes handed along with a call (activities.ProvisionInput.Record).
	db *memDB
	// fail decides the outcome of one attempt (1-based) of an event.
	fail func(e provisioning.Event, attempt int) error
}

func (p *fakeProvisioner) Provision(ctx context.Context, in activities.ProvisionInput) (activities.ProvisionResult, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.attempts == nil {
		p.attempts = map[string]int{}
	}
	p.attempts[in.Event.EventID]++
	if p.fail != nil {
		if err := p.fail(in.Event, p.attempts[in.Event.EventID]); err != nil {
			return activities.ProvisionResult{}, err
		}
	}
	p.events = append(p.events, in.Event)
	res := activities.ProvisionResult{Provisioner: "fake"}
	if in.Record != nil && p.db != nil {
		// As the real activity: the write handed along is applied once the provisioner has acted.
		res.Recorded = p.db.Record(ctx, *in.Record) == nil
	}
	if in.Event.Type == provisioning.Create {
		res.AppInfoStored, res.FrontEndURL = true, "https://app.example/"+in.Event.InstanceID
	}
	return res, nil
}

func (p *fakeProvisioner) kinds() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []string
	for _, e := range p.events {
		out = append(out, string(e.Type))
	}
	return out
}

func needsPersonErr(msg string) error {
	return temporal.NewNonRetryableApplicationError(msg, activities.ErrNeedsPerson, nil)
}

// memDB is the read model in memory, with the SQL writer's semantics.
type memDB struct {
	mu        sync.Mutex
	instance  store.InstanceRow
	orders    map[string]store.OrderRow
	events    []store.EventRow
	eventKeys map[string]bool
	refunds   map[string]store.RefundRow
	alerts    map[string]store.AlertRow
	resolved  map[string]bool
	parkings  map[string]store.ParkingRow
	cleared   bool
	writes    int
	fail      func(w store.Write) error
}

func newMemDB() *memDB {
	return &memDB{orders: map[string]store.OrderRow{}, eventKeys: map[string]bool{}, refunds: map[string]store.RefundRow{},
		alerts: map[string]store.AlertRow{}, resolved: map[string]bool{}, parkings: map[string]store.ParkingRow{}}
}

// Apply lets the real activities record into the in-memory read model (activities.Lifecycle.Writes).
func (d *memDB) Apply(ctx context.Context, w store.Write) error { return d.Record(ctx, w) }

func (d *memDB) Record(ctx context.Context, w store.Write) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.fail != nil {
		if err := d.fail(w); err != nil {
			return err
		}
	}
	d.writes++
	if w.Instance != nil && w.Instance.Version > d.instance.Version || d.instance.InstanceID == "" && w.Instance != nil {
		d.instance = *w.Instance
	}
	for _, o := range w.Orders {
		k := o.OrderID + "|" + o.OrderLineID
		if old, ok := d.orders[k]; ok {
			if old.InstanceID != o.InstanceID || old.OrderType != o.OrderType {
				return needsPersonErr("order recorded twice with different types")
			}
			continue
		}
		d.orders[k] = o
	}
	for _, e := range w.Effective {
		k := e.OrderID + "|" + e.OrderLineID
		if o, ok := d.orders[k]; ok && o.EffectiveAt == nil {
			at := e.At
			o.EffectiveAt = &at
			d.orders[k] = o
		}
	}
	for _, e := range w.Events {
		if !d.eventKeys[e.Key] {
			d.eventKeys[e.Key] = true
			d.events = append(d.events, e)
		}
	}
	for _, r := range w.Refunds {
		d.refunds[r.RefundID] = r
	}
	for _, a := range w.Alerts {
		if _, ok := d.alerts[a.Key]; !ok {
			d.alerts[a.Key] = a
		}
	}
	for _, kind := range w.ResolveAlerts {
		for k, a := range d.alerts {
			if a.Kind == kind {
				d.resolved[k] = true
			}
		}
	}
	for _, p := range w.Parkings {
		if old, ok := d.parkings[p.Key]; ok && p.Resolution == "" {
			p = old
		}
		d.parkings[p.Key] = p
	}
	if w.ClearAppInfo {
		d.cleared = true
	}
	return nil
}

func (d *memDB) ordersOfType(typ string) []store.OrderRow {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []store.OrderRow
	for _, o := range d.orders {
		if o.OrderType == typ {
			out = append(out, o)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].OrderID < out[j].OrderID })
	return out
}

func (d *memDB) order(id string) (store.OrderRow, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, o := range d.orders {
		if o.OrderID == id {
			return o, true
		}
	}
	return store.OrderRow{}, false
}

func (d *memDB) eventKinds() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []string
	for _, e := range d.events {
		out = append(out, e.Kind)
	}
	return out
}

// world is one instance's surroundings, kept across the runs of its workflow (Continue-As-New).
type world struct {
	t       *testing.T
	cfg     LifecycleConfig
	market  *fakeMarket
	prov    *fakeProvisioner
	db      *memDB
	now     time.Time
	sa      map[string]any // search attributes as the server holds them
	upserts int            // UpsertSearchAttributes commands (billed actions)
	runs    int
	// timers runs the lifecycle as runs started before expiryWatchChange do: the expiry safety net is a timer.
	timers bool
}

func newWorld(t *testing.T) *world {
	db := newMemDB()
	// One renewal per run, as before KOOFLOW_RENEWALS_PER_RUN: the path tests follow each renewal into its next run.
	return &world{t: t, cfg: LifecycleConfig{ExpiryGrace: 24 * time.Hour, ExpiryPolicy: lifecycle.PolicyAlert, RenewalsPerRun: 1},
		market: newFakeMarket(), prov: &fakeProvisioner{db: db}, db: db, now: t0, sa: map[string]any{}}
}

// startInput is what the gateway passes for a newInstance of order id (line <id>-000001).
func startInput(orderID string, testFlag bool) instance.StartInput {
	line := orderID + "-000001"
	return instance.StartInput{InstanceID: instance.ID(orderID, line), OrderID: orderID, OrderLineID: line,
		BusinessID: "biz-1", TestFlag: testFlag, ReceivedAt: t0}
}

// harness is one run's test environment.
type harness struct {
	w   *world
	env *testsuite.TestWorkflowEnvironment
	seq int
}

// run executes one run of the workflow with script's timed callbacks, and returns the next run's input if the
// run continued as new.
func (w *world) run(in instance.StartInput, script func(h *harness)) *instance.StartInput {
	w.t.Helper()
	var suite testsuite.WorkflowTestSuite
	suite.SetLogger(logging.Temporal(slog.New(slog.NewTextHandler(tLogWriter{w.t}, &slog.HandlerOptions{Level: slog.LevelWarn}))))
	env := suite.NewTestWorkflowEnvironment()
	env.SetStartTime(w.now)
	env.SetTestTimeout(time.Minute)
	env.SetStartWorkflowOptions(startOptions(in))
	l := &Lifecycle{Config: w.cfg}
	env.RegisterWorkflowWithOptions(l.Run, workflow.RegisterOptions{Name: instance.WorkflowType})
	cat, err := catalog.Parse(catalog.DevCatalog)
	if err != nil {
		w.t.Fatal(err)
	}
	real := &activities.Lifecycle{Orders: w.market, Catalog: cat, Writes: w.db}
	env.RegisterActivityWithOptions(real.QueryOrder, activity.RegisterOptions{Name: "QueryOrder"})
	env.RegisterActivityWithOptions(w.prov.Provision, activity.RegisterOptions{Name: "Provision"})
	env.RegisterActivityWithOptions(w.db.Record, activity.RegisterOptions{Name: "Record"})
	if err := env.SetTypedSearchAttributesOnStart(w.startSearchAttributes()); err != nil {
		w.t.Fatal(err)
	}
	env.OnUpsertTypedSearchAttributes(mock.Anything).Return(nil).Run(func(args mock.Arguments) {
		w.upserts++
		w.mergeSearchAttributes(args.Get(0).(temporal.SearchAttributes))
	})
	if w.timers {
		env.OnGetVersion(expiryWatchChange, workflow.DefaultVersion, 1).Return(workflow.DefaultVersion)
	}
	h := &harness{w: w, env: env}
	if script != nil {
		script(h)
	}
	env.ExecuteWorkflow(instance.WorkflowType, in)
	w.runs++
	w.now = env.Now()
	if !env.IsWorkflowCompleted() {
		w.t.Fatal("workflow did not complete")
	}
	err = env.GetWorkflowError()
	var can *workflow.ContinueAsNewError
	if errors.As(err, &can) {
		var next instance.StartInput
		if err := converter.GetDefaultDataConverter().FromPayloads(can.Input, &next); err != nil {
			w.t.Fatal(err)
		}
		return &next
	}
	if err != nil {
		w.t.Fatalf("workflow failed: %v", err)
	}
	return nil
}

func startOptions(in instance.StartInput) client.StartWorkflowOptions {
	return client.StartWorkflowOptions{ID: instance.WorkflowID(in.InstanceID)}
}

func (w *world) mergeSearchAttributes(sa temporal.SearchAttributes) {
	for k, v := range sa.GetUntypedValues() {
		if v == nil {
			delete(w.sa, k.GetName())
			continue
		}
		w.sa[k.GetName()] = v
	}
}

func (w *world) startSearchAttributes() temporal.SearchAttributes {
	var upd []temporal.SearchAttributeUpdate
	for name, v := range w.sa {
		switch x := v.(type) {
		case string:
			upd = append(upd, temporal.NewSearchAttributeKeyKeyword(name).ValueSet(x))
		case bool:
			upd = append(upd, temporal.NewSearchAttributeKeyBool(name).ValueSet(x))
		case time.Time:
			upd = append(upd, temporal.NewSearchAttributeKeyTime(name).ValueSet(x))
		}
	}
	return temporal.NewSearchAttributes(upd...)
}

// at runs fn d after the run's start (simulated time).
func (h *harness) at(d time.Duration, fn func()) { h.env.RegisterDelayedCallback(fn, d) }

// watch sends, d after the run's start, the UpdateCheckExpiry the workers' expiry watch sends to an instance
// the read model shows unfrozen past its expiry and grace. Runs with the timer (world.timers) get none: their
// timer is the safety net. It returns the Update's outcome, nil for those runs.
func (h *harness) watch(d time.Duration) *upd {
	if h.w.timers {
		return nil
	}
	u := &upd{name: instance.UpdateCheckExpiry}
	h.at(d, func() { h.send(u, instance.ExpiryCheck{}) })
	return u
}

// action is the safety net's answer to a watch: "alert", "alert and freeze" or "nothing".
func (u *upd) action(t *testing.T) string {
	t.Helper()
	u.ok(t)
	var r instance.ExpiryCheckResult
	u.decode(t, &r)
	return r.Action
}

// upd is the outcome of one Update.
type upd struct {
	name      string
	accepted  bool
	rejected  error
	completed bool
	err       error
	value     any
}

// update sends an Update with a fresh id (the marketplace's retries and the console get unique ids per delivery).
func (h *harness) update(name string, arg any) *upd {
	u := &upd{name: name}
	h.send(u, arg)
	return u
}

// send sends the Update u names, recording its outcome in u.
func (h *harness) send(u *upd, arg any) {
	h.seq++
	h.env.UpdateWorkflow(u.name, fmt.Sprintf("%s-%d-%d", u.name, h.w.runs, h.seq), &testsuite.TestUpdateCallback{
		OnAccept:   func() { u.accepted = true },
		OnReject:   func(err error) { u.rejected = err },
		OnComplete: func(v any, err error) { u.completed, u.value, u.err = true, v, err },
	}, arg)
}

// decode reads an Update's result into out.
func (u *upd) decode(t *testing.T, out any) {
	t.Helper()
	if !u.completed || u.err != nil {
		t.Fatalf("%s did not complete: rejected=%v err=%v", u.name, u.rejected, u.err)
	}
	switch v := u.value.(type) {
	case *commonpb.Payloads:
		if err := converter.GetDefaultDataConverter().FromPayloads(v, out); err != nil {
			t.Fatal(err)
		}
	case converter.EncodedValue:
		if err := v.Get(out); err != nil {
			t.Fatal(err)
		}
	default:
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatal(err)
		}
	}
}

// ok fails the test unless the Update was accepted and completed without error.
func (u *upd) ok(t *testing.T) {
	t.Helper()
	if u.rejected != nil || !u.accepted || !u.completed || u.err != nil {
		t.Fatalf("%s: accepted=%v rejected=%v completed=%v err=%v", u.name, u.accepted, u.rejected, u.completed, u.err)
	}
}

// refused fails the test unless the Update was rejected by its validator with this code and a reason containing
// want.
func (u *upd) refused(t *testing.T, code, want string) {
	t.Helper()
	if u.rejected == nil {
		t.Fatalf("%s was not refused (accepted=%v err=%v)", u.name, u.accepted, u.err)
	}
	r, ok := refusal.As(u.rejected)
	if !ok || r.Code != code || !strings.Contains(r.Reason, want) {
		t.Fatalf("%s refused with %v, want code %s containing %q", u.name, u.rejected, code, want)
	}
}

// state queries the workflow's state.
func (h *harness) state() instance.Carry {
	h.w.t.Helper()
	v, err := h.env.QueryWorkflow(instance.QueryState)
	if err != nil {
		h.w.t.Fatal(err)
	}
	var s instance.Carry
	if err := v.Get(&s); err != nil {
		h.w.t.Fatal(err)
	}
	return s
}

type tLogWriter struct{ t *testing.T }

func (w tLogWriter) Write(b []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimRight(string(b), "\n"))
	return len(b), nil
}

func dec(s string) decimal.Decimal { return decimal.RequireFromString(s) }

func ptr[T any](v T) *T { return &v }
