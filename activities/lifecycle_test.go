package activities

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"net/http"
	"net/http/httptest"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/shopspring/decimal"

	"github.com/kooflow/kooflow/emulator/market"
	"github.com/kooflow/kooflow/internal/catalog"
	"github.com/kooflow/kooflow/internal/config"
	"github.com/kooflow/kooflow/internal/koogallery/orderquery"
	"github.com/kooflow/kooflow/internal/provisioning"
	"github.com/kooflow/kooflow/internal/secrets"
	"github.com/kooflow/kooflow/internal/store"
	"github.com/kooflow/kooflow/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

var t0 = time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)

func devCatalog(t *testing.T) *catalog.Catalog {
	t.Helper()
	c, err := catalog.Parse(catalog.DevCatalog)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func instanceRow(id string, version int64, lifecycle string) *store.InstanceRow {
	return &store.InstanceRow{InstanceID: id, WorkflowID: "instance/" + id, Version: version, OrderID: "O-" + id,
		OrderLineID: "O-" + id + "-1", ProductID: "P", Quantity: 1, Lifecycle: lifecycle, Supervision: "NOT_INVOLVED"}
}

func count(t *testing.T, pool *pgxpool.Pool, sql string, args ...any) int {
	t.Helper()
	var n int
	if err := pool.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestRecordIsIdempotentAndVersioned applies writes to real PostgreSQL: a retried write leaves one row of each
// kind, an older projection never overwrites a newer one, effective times are set once, alerts resolve, and a
// parking gets its resolution.
func TestRecordIsIdempotentAndVersioned(t *testing.T) {
	pool := testenv.Pool(t)
	a := &Lifecycle{Store: &store.Store{Pool: pool, Keys: testKeys(t)}}
	ctx := context.Background()
	eff := t0.Add(time.Hour)
	first := store.Write{
		Summary:  "purchase",
		Instance: instanceRow("i1", 2, "PROVISIONING"),
		Orders: []store.OrderRow{{OrderID: "O-i1", OrderLineID: "O-i1-1", InstanceID: "i1", OrderType: "NEW", ProductID: "P",
			Quantity: 3, ListAmount: decimal.RequireFromString("120"), PaidAmount: decimal.RequireFromString("99.995"),
			Raw: json.RawMessage(`{"orderId":"O-i1"}`)}},
		Events:   []store.EventRow{{Key: "s1:accepted", At: t0, Kind: "accepted", Actor: "marketplace", Summary: "accepted", Detail: map[string]any{"a": 1}}},
		Alerts:   []store.AlertRow{{Key: "unknown-product:P", Kind: "unknown-product", At: t0, Message: "unknown"}},
		Parkings: []store.ParkingRow{{Key: "p1", StepID: "s1", Stage: "provision create", Reason: "422", ParkedAt: t0}},
		Refunds: []store.RefundRow{{RefundID: "R1", OrderID: "O-i1", OrderLineID: "O-i1-1", Status: "PENDING",
			RequestedAmount: decimal.RequireFromString("10"), RequestedBy: "customer:bob", RequestedAt: t0}},
	}
	for range 3 { // a local activity retried after a crash applies the same write again
		if err := a.Record(ctx, first); err != nil {
			t.Fatal(err)
		}
	}
	for table, want := range map[string]int{"instances": 1, "orders": 1, "instance_events": 1, "instance_alerts": 1,
		"instance_parkings": 1, "refunds": 1} {
		if n := count(t, pool, "SELECT count(*) FROM "+table); n != want {
			t.Errorf("%s has %d rows, want %d", table, n, want)
		}
	}
	var paid string
	if err := pool.QueryRow(ctx, `SELECT paid_amount::text FROM orders WHERE order_id = 'O-i1'`).Scan(&paid); err != nil || paid != "99.995" {
		t.Fatalf("paid_amount %q (%v): amounts must be exact", paid, err)
	}

	approved := decimal.RequireFromString("10")
	decided := t0.Add(2 * time.Hour)
	later := store.Write{Summary: "provisioned", Instance: instanceRow("i1", 5, "ACTIVE"),
		Effective:     []store.OrderEffective{{OrderID: "O-i1", OrderLineID: "O-i1-1", At: eff}},
		ResolveAlerts: []string{"unknown-product"},
		Parkings: []store.ParkingRow{{Key: "p1", StepID: "s1", Stage: "provision create", Reason: "422", ParkedAt: t0,
			Resolution: "resume", ResolvedBy: "operator:ops", ResolvedAt: &decided, Note: "fixed"}},
		Refunds: []store.RefundRow{{RefundID: "R1", OrderID: "O-i1", OrderLineID: "O-i1-1", Status: "APPROVED",
			RequestedAmount: decimal.RequireFromString("10"), ApprovedAmount: &approved, RequestedBy: "customer:bob",
			RequestedAt: t0, DecidedBy: "seller:alice", DecidedAt: &decided, RefundOrderID: "REFUND-i1-R1"}},
	}
	if err := a.Record(ctx, later); err != nil {
		t.Fatal(err)
	}
	// A late write of an older version changes nothing in the projection; its effective time is ignored too.
	stale := store.Write{Summary: "stale", Instance: instanceRow("i1", 3, "PROVISIONING"),
		Effective: []store.OrderEffective{{OrderID: "O-i1", OrderLineID: "O-i1-1", At: t0.Add(99 * time.Hour)}}}
	if err := a.Record(ctx, stale); err != nil {
		t.Fatal(err)
	}
	var lifecycle string
	var version int64
	var effective time.Time
	if err := pool.QueryRow(ctx, `SELECT i.lifecycle, i.state_version, o.effective_at FROM instances i JOIN orders o USING (instance_id)`).
		Scan(&lifecycle, &version, &effective); err != nil {
		t.Fatal(err)
	}
	if lifecycle != "ACTIVE" || version != 5 || !effective.Equal(eff) {
		t.Fatalf("after a stale write: lifecycle %s version %d effective %v", lifecycle, version, effective)
	}
	if n := count(t, pool, `SELECT count(*) FROM instance_alerts WHERE resolved_at IS NULL`); n != 0 {
		t.Fatalf("%d open alerts after resolving", n)
	}
	if n := count(t, pool, `SELECT count(*) FROM instance_parkings WHERE resolution = 'resume' AND note = 'fixed'`); n != 1 {
		t.Fatal("parking resolution not recorded")
	}
	if n := count(t, pool, `SELECT count(*) FROM refunds WHERE status = 'APPROVED' AND approved_amount = 10 AND decided_by = 'seller:alice'`); n != 1 {
		t.Fatal("refund decision not recorded")
	}
	if n := count(t, pool, `SELECT count(*) FROM instance_events WHERE detail->>'a' = '1'`); n != 1 {
		t.Fatal("event detail not stored as JSON")
	}
}

// TestRecordRefusesAnOrderOfAnotherInstance: an order already recorded for one instance cannot be recorded for
// another; that needs a person, so it is not retried.
func TestRecordRefusesAnOrderOfAnotherInstance(t *testing.T) {
	pool := testenv.Pool(t)
	a := &Lifecycle{Store: &store.Store{Pool: pool, Keys: testKeys(t)}}
	ctx := context.Background()
	order := store.OrderRow{OrderID: "R9", OrderLineID: "R9-1", OrderType: "RENEW", PaidAmount: decimal.NewFromInt(5)}
	for _, id := range []string{"i1", "i2"} {
		if err := a.Record(ctx, store.Write{Summary: "instance", Instance: instanceRow(id, 1, "ACTIVE")}); err != nil {
			t.Fatal(err)
		}
	}
	o := order
	o.InstanceID = "i1"
	if err := a.Record(ctx, store.Write{Summary: "renewal", Instance: instanceRow("i1", 2, "ACTIVE"), Orders: []store.OrderRow{o}}); err != nil {
		t.Fatal(err)
	}
	o.InstanceID = "i2"
	err := a.Record(ctx, store.Write{Summary: "renewal", Instance: instanceRow("i2", 2, "ACTIVE"), Orders: []store.OrderRow{o}})
	if !IsNeedsPerson(err) || !strings.Contains(err.Error(), "already recorded") {
		t.Fatalf("err = %v", err)
	}
	// Nothing of the refused write was applied.
	if n := count(t, pool, `SELECT state_version FROM instances WHERE instance_id = 'i2'`); n != 1 {
		t.Fatalf("the refused write was partly applied (version %d)", n)
	}
}

// TestProvisionStoresAppInfoOnce: the built-in provisioner's appInfo is stored on the instance row and a retry
// keeps the first one (the password the customer may already have seen); a dial test never reaches the webhook.
func TestProvisionStoresAppInfoOnce(t *testing.T) {
	pool := testenv.Pool(t)
	ctx := context.Background()
	a := &Lifecycle{Store: &store.Store{Pool: pool, Keys: testKeys(t)}, Builtin: provisioning.NewBuiltin("")}
	if err := a.Record(ctx, store.Write{Summary: "accepted", Instance: instanceRow("i1", 1, "PROVISIONING")}); err != nil {
		t.Fatal(err)
	}
	ev := provisioning.Event{EventID: "i1:s1:create", Type: provisioning.Create, InstanceID: "i1", OccurredAt: t0}
	var first string
	for i := range 2 {
		res, err := a.Provision(ctx, ProvisionInput{Event: ev, Target: "builtin"})
		if err != nil {
			t.Fatal(err)
		}
		if !res.AppInfoStored || res.FrontEndURL == "" {
			t.Fatalf("result %+v", res)
		}
		pw := storedPassword(t, a.Store, "i1")
		if i == 0 {
			first = pw
		} else if pw != first || pw == "" {
			t.Fatalf("the retry replaced the stored password (%q → %q)", first, pw)
		}
	}
	// A webhook product without a configured webhook needs a person; its dial test takes the built-in path.
	ev.EventID, ev.Type = "i1:s2:freeze", provisioning.Freeze
	if _, err := a.Provision(ctx, ProvisionInput{Event: ev, Target: "webhook"}); !IsNeedsPerson(err) {
		t.Fatalf("webhook without URL: %v", err)
	}
	ev.TestFlag = true
	if _, err := a.Provision(ctx, ProvisionInput{Event: ev, Target: "webhook"}); err != nil {
		t.Fatalf("dial test: %v", err)
	}
	// Release clears the access data.
	if err := a.Record(ctx, store.Write{Summary: "released", Instance: instanceRow("i1", 9, "RELEASED"), ClearAppInfo: true}); err != nil {
		t.Fatal(err)
	}
	if n := count(t, pool, `SELECT count(*) FROM instances WHERE app_info IS NULL AND app_info_sealed IS NULL AND app_info_key IS NULL`); n != 1 {
		t.Fatal("appInfo kept after release")
	}
}

func storedPassword(t *testing.T, st *store.Store, id string) string {
	t.Helper()
	rows, err := st.InstancesAccess(context.Background(), []string{id})
	if err != nil || len(rows) != 1 {
		t.Fatalf("read access of %s: %v %v", id, rows, err)
	}
	var ai provisioning.AppInfo
	if err := json.Unmarshal(rows[0].AppInfo, &ai); err != nil {
		t.Fatal(err)
	}
	return ai.Password
}

// TestAppInfoSealedAndRotated: the stored appInfo is sealed under the first data key and the plain column keeps
// no password; after a new key is put first, SealAppInfo re-seals every value (and a value stored before sealing
// existed) under it, the old key is no longer needed, and a keyring without the sealing key cannot read.
func TestAppInfoSealedAndRotated(t *testing.T) {
	pool := testenv.Pool(t)
	ctx := context.Background()
	oldSpec, _ := secrets.NewKeySpec("old")
	newSpec, _ := secrets.NewKeySpec("new")
	ring := func(specs ...string) *secrets.Keyring {
		k, err := secrets.Parse("test", strings.Join(specs, ","))
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	a := &Lifecycle{Store: &store.Store{Pool: pool, Keys: ring(oldSpec)}, Builtin: provisioning.NewBuiltin("")}
	for _, id := range []string{"s1", "s2", "legacy"} {
		if err := a.Record(ctx, store.Write{Summary: "accepted", Instance: instanceRow(id, 1, "PROVISIONING")}); err != nil {
			t.Fatal(err)
		}
	}
	for _, id := range []string{"s1", "s2"} {
		ev := provisioning.Event{EventID: id + ":create", Type: provisioning.Create, InstanceID: id, OccurredAt: t0}
		if _, err := a.Provision(ctx, ProvisionInput{Event: ev, Target: "builtin"}); err != nil {
			t.Fatal(err)
		}
	}
	pw := storedPassword(t, a.Store, "s1")
	if n := count(t, pool, `SELECT count(*) FROM instances WHERE app_info_key = 'old' AND app_info ? 'userName' AND NOT app_info ? 'password'`); n != 2 || pw == "" {
		t.Fatalf("sealed rows %d, password %q", n, pw)
	}
	// A row written before sealing: plain appInfo with its password.
	if _, err := pool.Exec(ctx, `UPDATE instances SET app_info = '{"frontEndUrl":"https://x","userName":"u","password":"legacy-pw-123"}'
		WHERE instance_id = 'legacy'`); err != nil {
		t.Fatal(err)
	}
	if got := storedPassword(t, a.Store, "legacy"); got != "legacy-pw-123" {
		t.Fatalf("legacy row reads %q", got)
	}

	rotated := &store.Store{Pool: pool, Keys: ring(newSpec, oldSpec)}
	n, err := rotated.SealAppInfo(ctx, 1) // batches of one, to cross batch boundaries
	if err != nil || n != 3 {
		t.Fatalf("sealed %d: %v", n, err)
	}
	if n, err := rotated.SealAppInfo(ctx, 10); err != nil || n != 0 {
		t.Fatalf("a second rotation sealed %d: %v", n, err)
	}
	if n := count(t, pool, `SELECT count(*) FROM instances WHERE app_info_key = 'new' AND NOT app_info ? 'password'`); n != 3 {
		t.Fatalf("%d rows under the new key", n)
	}
	onlyNew := &store.Store{Pool: pool, Keys: ring(newSpec)}
	if got := storedPassword(t, onlyNew, "s1"); got != pw {
		t.Fatalf("after rotation s1 reads %q, want %q", got, pw)
	}
	if got := storedPassword(t, onlyNew, "legacy"); got != "legacy-pw-123" {
		t.Fatalf("after rotation legacy reads %q", got)
	}
	onlyOld := &store.Store{Pool: pool, Keys: ring(oldSpec)}
	if _, err := onlyOld.InstancesAccess(ctx, []string{"s1"}); !errors.Is(err, secrets.ErrNoKey) || !strings.Contains(err.Error(), `"new"`) {
		t.Fatalf("reading with a keyring without the sealing key: %v", err)
	}
	// Without keys, storing is refused with a clear error rather than written in plain.
	noKeys := &Lifecycle{Store: &store.Store{Pool: pool}, Builtin: provisioning.NewBuiltin("")}
	if err := noKeys.Record(ctx, store.Write{Summary: "accepted", Instance: instanceRow("nokey", 1, "PROVISIONING")}); err != nil {
		t.Fatal(err)
	}
	ev := provisioning.Event{EventID: "nokey:create", Type: provisioning.Create, InstanceID: "nokey", OccurredAt: t0}
	if _, err := noKeys.Provision(ctx, ProvisionInput{Event: ev, Target: "builtin"}); err == nil || !strings.Contains(err.Error(), "KOOFLOW_DATA_KEYS") {
		t.Fatalf("provision without keys: %v", err)
	}
	if n := count(t, pool, `SELECT count(*) FROM instances WHERE instance_id = 'nokey' AND app_info IS NOT NULL`); n != 0 {
		t.Fatal("appInfo stored without a key")
	}
}

// TestProvisionThroughWebhook sends a create over real HTTP to the reference receiver: the appInfo it answers is
// stored; a refusal of the endpoint needs a person; a 5xx is retryable.
func TestProvisionThroughWebhook(t *testing.T) {
	pool := testenv.Pool(t)
	ctx := context.Background()
	const secret = "webhook-secret-for-tests-0123"
	fail := ""
	recv := provisioning.NewReceiver(secret, time.Minute, func(ctx context.Context, e provisioning.Event) (provisioning.Result, error) {
		switch fail {
		case "refuse":
			return provisioning.Result{}, &provisioning.Error{Retryable: false, Reason: "tenant name taken"}
		case "down":
			return provisioning.Result{}, &provisioning.Error{Retryable: true, Reason: "database down"}
		}
		return provisioning.Result{AppInfo: &provisioning.AppInfo{FrontEndURL: "https://crm.example/" + e.InstanceID, UserName: "owner"}}, nil
	})
	srv := httptest.NewServer(recv)
	defer srv.Close()
	wh, err := provisioning.NewWebhook(srv.URL, secret, srv.Client())
	if err != nil {
		t.Fatal(err)
	}
	a := &Lifecycle{Store: &store.Store{Pool: pool, Keys: testKeys(t)}, Builtin: provisioning.NewBuiltin(""), Webhook: wh}
	if err := a.Record(ctx, store.Write{Summary: "accepted", Instance: instanceRow("i1", 1, "PROVISIONING")}); err != nil {
		t.Fatal(err)
	}
	// An unknown product ("" target) goes to the webhook when one is configured.
	res, err := a.Provision(ctx, ProvisionInput{Event: provisioning.Event{EventID: "i1:s1:create", Type: provisioning.Create, InstanceID: "i1", OccurredAt: t0}})
	if err != nil || res.FrontEndURL != "https://crm.example/i1" || !strings.HasPrefix(res.Provisioner, "webhook") {
		t.Fatalf("result %+v, %v", res, err)
	}
	fail = "refuse"
	_, err = a.Provision(ctx, ProvisionInput{Event: provisioning.Event{EventID: "i1:s2:upgrade", Type: provisioning.Upgrade, InstanceID: "i1", OccurredAt: t0}, Target: "webhook"})
	if !IsNeedsPerson(err) || !strings.Contains(err.Error(), "tenant name taken") {
		t.Fatalf("refused: %v", err)
	}
	fail = "down"
	_, err = a.Provision(ctx, ProvisionInput{Event: provisioning.Event{EventID: "i1:s3:freeze", Type: provisioning.Freeze, InstanceID: "i1", OccurredAt: t0}, Target: "webhook"})
	if err == nil || IsNeedsPerson(err) {
		t.Fatalf("a 503 must be retried: %v", err)
	}
}

// TestProvisionRecordsARefusedPurchase: a create the endpoint refuses with a newInstance code is recorded on the
// instance with that code and raises one purchase-refused alert; the next attempt clears it and resolves the
// alert; a refusal of another event, or a temporary failure, records nothing; a refusal without a code is 000104.
func TestProvisionRecordsARefusedPurchase(t *testing.T) {
	pool := testenv.Pool(t)
	ctx := context.Background()
	var answer atomic.Value // "refuse-coded", "refuse", "down" or "ok"
	answer.Store("refuse-coded")
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch answer.Load().(string) {
		case "refuse-coded":
			w.WriteHeader(http.StatusBadRequest)
			_, _ = w.Write([]byte(`{"error":"no capacity left in cn-north-4","resultCode":"000107"}`))
		case "refuse":
			w.WriteHeader(http.StatusConflict)
			_, _ = w.Write([]byte(`{"error":"tenant name taken"}`))
		case "down":
			w.WriteHeader(http.StatusServiceUnavailable)
		default:
			_, _ = w.Write([]byte(`{"appInfo":{"frontEndUrl":"https://crm.example/i1"}}`))
		}
	}))
	defer hook.Close()
	wh, err := provisioning.NewWebhook(hook.URL, "webhook-secret-for-tests-0123", hook.Client())
	if err != nil {
		t.Fatal(err)
	}
	a := &Lifecycle{Store: &store.Store{Pool: pool}, Builtin: provisioning.NewBuiltin(""), Webhook: wh}
	if err := a.Record(ctx, store.Write{Summary: "accepted", Instance: instanceRow("i1", 1, "PROVISIONING")}); err != nil {
		t.Fatal(err)
	}
	create := ProvisionInput{Event: provisioning.Event{EventID: "i1:s1:create", Type: provisioning.Create, InstanceID: "i1",
		OrderID: "CS1", OccurredAt: t0}, Target: "webhook"}
	refusal := func() (string, string, bool) {
		t.Helper()
		code, msg, ok, err := a.Store.Refusal(ctx, "i1")
		if err != nil {
			t.Fatal(err)
		}
		return code, msg, ok
	}
	openAlerts := func() int {
		return count(t, pool, `SELECT count(*) FROM instance_alerts WHERE instance_id = 'i1' AND kind = 'purchase-refused' AND resolved_at IS NULL`)
	}
	for range 2 { // a repeated refusal is one alert
		if _, err := a.Provision(ctx, create); !IsNeedsPerson(err) {
			t.Fatalf("refused create: %v", err)
		}
	}
	if code, msg, ok := refusal(); !ok || code != "000107" || msg != "no capacity left in cn-north-4" {
		t.Fatalf("refusal %q %q %v", code, msg, ok)
	}
	if n := openAlerts(); n != 1 {
		t.Fatalf("%d open purchase-refused alerts", n)
	}
	// A temporary failure of the next attempt: in progress again, the alert resolved.
	answer.Store("down")
	if _, err := a.Provision(ctx, create); err == nil || IsNeedsPerson(err) {
		t.Fatalf("503: %v", err)
	}
	if _, _, ok := refusal(); ok || openAlerts() != 0 {
		t.Fatalf("refusal kept after a new attempt (open alerts %d)", openAlerts())
	}
	// Refused again without a code: 000104, and the same alert reopened.
	answer.Store("refuse")
	if _, err := a.Provision(ctx, create); !IsNeedsPerson(err) {
		t.Fatalf("refused create: %v", err)
	}
	if code, msg, ok := refusal(); !ok || code != "000104" || msg != "tenant name taken" || openAlerts() != 1 {
		t.Fatalf("refusal without a code: %q %q %v", code, msg, ok)
	}
	if n := count(t, pool, `SELECT count(*) FROM instance_alerts WHERE instance_id = 'i1'`); n != 1 {
		t.Fatalf("%d alert rows, want the one reopened", n)
	}
	// The instance moving on (here: skipped to ACTIVE by the workflow's projection) settles the refusal.
	if err := a.Record(ctx, store.Write{Summary: "skipped", Instance: instanceRow("i1", 2, "ACTIVE")}); err != nil {
		t.Fatal(err)
	}
	if _, _, ok := refusal(); ok || openAlerts() != 0 {
		t.Fatal("refusal kept after the instance left PROVISIONING")
	}
	// A refused upgrade is not a refused purchase.
	if _, err := a.Provision(ctx, ProvisionInput{Event: provisioning.Event{EventID: "i1:s2:upgrade", Type: provisioning.Upgrade,
		InstanceID: "i1", OccurredAt: t0}, Target: "webhook"}); !IsNeedsPerson(err) {
		t.Fatalf("refused upgrade: %v", err)
	}
	if _, _, ok := refusal(); ok {
		t.Fatal("a refused upgrade was recorded as a refused purchase")
	}
}

// TestQueryOrderAgainstTheEmulatedMarketplace queries the emulator's order API over TLS with AK/SK signatures,
// as in production: the facts come back without personal data; an unknown order or a wrong order type needs a
// person; an injected 5xx is left to Temporal's retries.
func TestQueryOrderAgainstTheEmulatedMarketplace(t *testing.T) {
	const ak, sk = "TESTAK0000000000", "test-secret-key-0123456789"
	m, srv, err := market.Serve(market.Options{AK: ak, SK: sk, Seed: 7}, "127.0.0.1:0", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	q, err := orderquery.NewClient(orderquery.Options{Endpoint: srv.URL, AK: config.Secret(ak), SK: config.Secret(sk), CAFile: srv.CAFile})
	if err != nil {
		t.Fatal(err)
	}
	phone, email := "13800000000", "buyer@example.com"
	exp := t0.AddDate(0, 1, 0)
	if err := m.PutOrder(market.Order{OrderID: "CS1", OrderType: market.TypeNew, CreateTime: t0,
		Lines: []market.Line{{OrderLineID: "CS1-000001", ChargingMode: market.ChargingPeriod, PeriodType: "month", PeriodNumber: 1,
			ExpireTime: exp, ProductID: "OFFI-KOOFLOW-CRM-MONTHLY", SKUCode: "crm-pro-month", LinearValue: 7,
			ListAmount: decimal.RequireFromString("2100"), PaidAmount: decimal.RequireFromString("1999.5")}},
		Buyer: &market.Buyer{CustomerID: "cust-9", CustomerName: "Li Si", MobilePhone: &phone, Email: &email}}); err != nil {
		t.Fatal(err)
	}
	a := &Lifecycle{Orders: q, Catalog: devCatalog(t)}
	ctx := context.Background()
	f, err := a.QueryOrder(ctx, QueryOrderInput{InstanceID: "i1", OrderID: "CS1", OrderLineID: "CS1-000001", Expect: []string{"NEW", "TRIAL"}})
	if err != nil {
		t.Fatal(err)
	}
	if f.OrderType != "NEW" || f.Product.SKUCode != "crm-pro-month" || f.Product.Quantity != 7 || !f.Product.Known ||
		f.Product.Supervised || !f.PaidAmount.Equal(decimal.RequireFromString("1999.5")) || !f.ExpireTime.Equal(exp) ||
		f.CustomerID != "cust-9" || !strings.Contains(f.Product.Name, "Pro") {
		t.Fatalf("facts %+v", f)
	}
	for _, personal := range []string{phone, email, "Li Si"} {
		if strings.Contains(string(f.Raw), personal) {
			t.Fatalf("personal data %q in the recorded order: %s", personal, f.Raw)
		}
	}
	if _, err := a.QueryOrder(ctx, QueryOrderInput{OrderID: "CS1", OrderLineID: "CS1-000001", Expect: []string{"RENEW"}}); !IsNeedsPerson(err) ||
		!strings.Contains(err.Error(), "is a NEW order") {
		t.Fatalf("wrong type: %v", err)
	}
	if _, err := a.QueryOrder(ctx, QueryOrderInput{OrderID: "NO-SUCH-ORDER"}); !IsNeedsPerson(err) {
		t.Fatalf("unknown order: %v", err)
	}
	// The marketplace's own debugging order works too.
	if f, err := a.QueryOrder(ctx, QueryOrderInput{OrderID: "MOCKPERIODYEARNEW", OrderLineID: "MOCKPERIODYEARNEW-000001"}); err != nil || f.Product.Known {
		t.Fatalf("mock order: %+v %v", f, err)
	}
	m.SetQueryFaults(market.QueryFaults{ErrorRate: 1})
	if _, err := a.QueryOrder(ctx, QueryOrderInput{OrderID: "CS1", OrderLineID: "CS1-000001"}); err == nil || IsNeedsPerson(err) {
		t.Fatalf("a 5xx must be retried: %v", err)
	}
	if _, err := (&Lifecycle{Catalog: devCatalog(t)}).QueryOrder(ctx, QueryOrderInput{OrderID: "CS1"}); !IsNeedsPerson(err) ||
		!strings.Contains(err.Error(), "KOOGALLERY_AK") {
		t.Fatalf("unconfigured order query: %v", err)
	}
}

func testKeys(t *testing.T) *secrets.Keyring {
	t.Helper()
	k, err := secrets.Generate("test")
	if err != nil {
		t.Fatal(err)
	}
	return k
}
