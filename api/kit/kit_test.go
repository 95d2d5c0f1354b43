package kit_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/kooflow/kooflow/api/kit"
	"github.com/kooflow/kooflow/emulator/market"
	"github.com/kooflow/kooflow/internal/config"
	"github.com/kooflow/kooflow/internal/instance"
	kitcall "github.com/kooflow/kooflow/internal/kit"
	"github.com/kooflow/kooflow/internal/koogallery"
	"github.com/kooflow/kooflow/internal/provisioning"
	"github.com/kooflow/kooflow/internal/store"
	"github.com/kooflow/kooflow/internal/testenv"
	"github.com/kooflow/kooflow/internal/teststack"
)

func TestMain(m *testing.M) { testenv.Main(m) }

const (
	accessKey    = "kit-test-access-key-0123456789"
	consoleToken = "kit-console-token"
)

type env struct {
	t      *testing.T
	url    string
	store  *store.Store
	key    kitcall.KeyPair
	market *market.Market
	hook   *hook
}

// hook is the seller's provisioning endpoint: it answers create with appInfo and records every event.
type hook struct {
	mu     sync.Mutex
	events []provisioning.Event
	// refuseKit makes the endpoint refuse Kit events as a person must fix (a 4xx): the step parks.
	refuseKit atomic.Bool
}

func (h *hook) kitEvents() []provisioning.Event {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []provisioning.Event
	for _, e := range h.events {
		if e.Kit != nil {
			out = append(out, e)
		}
	}
	return out
}

// start runs kooflow on real parts (router, worker, PostgreSQL, Temporal), the emulator's order query and a
// provisioning webhook, with a Kit key.
func start(t *testing.T) *env {
	t.Helper()
	return startWith(t, nil)
}

// startWith is start with extra environment settings.
func startWith(t *testing.T, extra map[string]string) *env {
	t.Helper()
	kp, err := kitcall.GenerateKey(kitcall.MinKeyBits)
	if err != nil {
		t.Fatal(err)
	}
	const secret = "kit-webhook-secret-0123456789"
	h := &hook{}
	recv := provisioning.NewReceiver(secret, time.Minute, func(ctx context.Context, e provisioning.Event) (provisioning.Result, error) {
		if e.Kit != nil && h.refuseKit.Load() {
			return provisioning.Result{}, &provisioning.Error{Retryable: false, Reason: "unknown tenant domain"}
		}
		h.mu.Lock()
		h.events = append(h.events, e)
		h.mu.Unlock()
		if e.Type == provisioning.Create {
			return provisioning.Result{AppInfo: &provisioning.AppInfo{FrontEndURL: "https://seller.example/" + e.InstanceID}}, nil
		}
		return provisioning.Result{}, nil
	})
	srv := httptest.NewServer(recv)
	t.Cleanup(srv.Close)
	settings := map[string]string{
		config.EnvKitPrivateKey:     kp.PrivatePEM,
		config.EnvProvisionerURL:    srv.URL,
		config.EnvProvisionerSecret: secret,
	}
	maps.Copy(settings, extra)
	cfg, m, _ := teststack.WithMarket(t, teststack.Keys{AccessKey: accessKey, MarketAK: "KITTESTAK0000000000", MarketSK: "kit-test-market-sk-0123456789",
		ConsoleToken: consoleToken}, market.Options{}, settings)
	st := teststack.Start(t, cfg, teststack.Options{})
	return &env{t: t, url: st.URL, store: &store.Store{Pool: st.Pool}, key: kp, market: m, hook: h}
}

// buy places a one-time order in the emulated marketplace and sends its signed newInstance; it returns the
// instance id.
func (e *env) buy(orderID string) string {
	e.t.Helper()
	line := orderID + "-000001"
	if err := e.market.PutOrder(market.Order{OrderID: orderID, OrderType: "NEW", CreateTime: time.Now().UTC(),
		Lines: []market.Line{{OrderLineID: line, ChargingMode: market.ChargingOneTime, ProductID: "KIT-PRODUCT", SKUCode: "kit-1",
			LinearValue: 1, ProductName: "joint-operation test product", ListAmount: decimal.RequireFromString("10"),
			PaidAmount: decimal.RequireFromString("10")}}}); err != nil {
		e.t.Fatal(err)
	}
	raw, _ := json.Marshal(map[string]string{"activity": "newInstance", "orderId": orderID, "orderLineId": line, "businessId": "b-" + orderID})
	q, err := koogallery.SignQuery(accessKey, raw, time.Now(), koogallery.NewNonce())
	if err != nil {
		e.t.Fatal(err)
	}
	resp, err := http.Post(e.url+config.DefaultProductionPath+"?"+q.Encode(), "application/json", bytes.NewReader(raw))
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	var r koogallery.Response
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil || r.InstanceID != instance.ID(orderID, line) {
		e.t.Fatalf("newInstance answered %+v, %v", r, err)
	}
	// newInstance is answered from the inbox before the workflow starts; until its first task has written the
	// instance's row, a Kit change for it is answered 000005 (retry), as the marketplace's retries expect. The
	// tests here are about the Kit calls, so they start once the instance exists.
	deadline := time.Now().Add(30 * time.Second)
	for {
		var n int
		if err := e.store.Pool.QueryRow(context.Background(), `SELECT count(*) FROM instances WHERE instance_id = $1`, r.InstanceID).Scan(&n); err != nil {
			e.t.Fatal(err)
		}
		if n == 1 {
			break
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("instance %s not started 30 s after newInstance", r.InstanceID)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return r.InstanceID
}

type reply struct {
	Code string `json:"resultCode"`
	Msg  string `json:"resultMsg"`
}

// call signs body as the marketplace does and posts it to the Kit endpoint kind; it checks Body-Sign. Like the
// marketplace it sends the call again, freshly signed, while the answer is 000005 (the instance's workflow may
// not have started yet).
func (e *env) call(kind string, body any) reply {
	e.t.Helper()
	raw, ok := body.([]byte)
	if !ok {
		var err error
		if raw, err = json.Marshal(body); err != nil {
			e.t.Fatal(err)
		}
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		h, err := koogallery.SignKit(accessKey, raw, time.Now(), koogallery.NewNonce())
		if err != nil {
			e.t.Fatal(err)
		}
		r := e.post(kind, raw, h)
		if r.Code != koogallery.ResultInternal || time.Now().After(deadline) {
			return r
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func (e *env) post(kind string, raw []byte, h http.Header) reply {
	e.t.Helper()
	req, err := http.NewRequest(http.MethodPost, e.url+config.DefaultKitPath+"/"+kind, bytes.NewReader(raw))
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header = h.Clone()
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		e.t.Fatalf("%s: HTTP %d %s", kind, resp.StatusCode, out)
	}
	if got, want := resp.Header.Get(koogallery.BodySignHeaderName), koogallery.BodySignHeader(accessKey, out); got != want {
		e.t.Fatalf("%s: Body-Sign %q, want %q", kind, got, want)
	}
	var r reply
	if err := json.Unmarshal(out, &r); err != nil {
		e.t.Fatalf("%s: answer %s: %v", kind, out, err)
	}
	return r
}

func (e *env) kit(instanceID string, test bool) store.KitView {
	e.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, fmt.Sprintf("%s/console/v1/instances/%s/kit?testFlag=%v", e.url, instanceID, test), nil)
	req.Header.Set("Authorization", "Bearer "+consoleToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		e.t.Fatalf("console: HTTP %d %s", resp.StatusCode, raw)
	}
	if bytes.Contains(raw, []byte("clientSecret")) {
		e.t.Fatalf("the console shows the client secret: %s", raw)
	}
	var out struct {
		Kit store.KitView `json:"kit"`
	}
	if err := json.Unmarshal(raw, &out); err != nil {
		e.t.Fatal(err)
	}
	return out.Kit
}

func must(t *testing.T, r reply, code string) {
	t.Helper()
	if r.Code != code {
		t.Fatalf("answer %+v, want %s", r, code)
	}
}

const ts = "20261129093539534" // UTC+8: 2026-11-29 01:35:39.534 UTC

func tenantBody(instanceID string, flag int, name string) map[string]any {
	return map[string]any{"instanceId": instanceID, "orderId": "CS-" + instanceID, "tenantId": "t-1", "tenantCode": "acme",
		"name": name, "domainName": "https://acme.example", "flag": flag, "testFlag": 0, "timeStamp": ts}
}

func accept(t *testing.T, s *store.Store, id string) {
	t.Helper()
	if _, _, err := s.AcceptInbox(context.Background(), store.InboxRow{InstanceID: id, OrderID: "CS-" + id,
		OrderLineID: "CS-" + id + "-000001", BusinessID: "b", ReceivedAt: time.Now()}, time.Hour); err != nil {
		t.Fatal(err)
	}
}

func TestKitSyncThroughTheRouter(t *testing.T) {
	e := start(t)
	inst := e.buy(testenv.Unique("CSKIT"))

	// tenantSync: add, repeated add, modify; the instance must exist for an add but not for a delete.
	must(t, e.call(kitcall.KindTenant, tenantBody(inst, 1, "Acme")), koogallery.ResultSuccess)
	must(t, e.call(kitcall.KindTenant, tenantBody(inst, 1, "Acme")), koogallery.ResultSuccess)
	v := e.kit(inst, false)
	if len(v.Tenants) != 1 || v.Tenants[0].Name != "Acme" || !v.Tenants[0].SyncedAt.Equal(time.Date(2026, 11, 29, 1, 35, 39, 534e6, time.UTC)) {
		t.Fatalf("tenants %+v", v.Tenants)
	}
	must(t, e.call(kitcall.KindTenant, tenantBody("never-bought", 1, "Acme")), koogallery.ResultNotFound)
	must(t, e.call(kitcall.KindTenant, tenantBody("never-bought", 0, "")), koogallery.ResultSuccess)

	// applicationSync with a secret encrypted the Java way.
	secret, err := kitcall.EncryptSecret(&e.key.Key.PublicKey, "client-secret-plain")
	if err != nil {
		t.Fatal(err)
	}
	app := map[string]any{"instanceId": inst, "tenantId": "t-1", "appId": "app-1", "clientId": "client-1",
		"clientSecret": secret, "flag": 1, "testFlag": 0, "timeStamp": ts}
	must(t, e.call(kitcall.KindApplication, app), koogallery.ResultSuccess)
	bad := map[string]any{}
	for k, val := range app {
		bad[k] = val
	}
	bad["clientSecret"] = "bm90IGEgY2lwaGVydGV4dA=="
	bad["appId"] = "app-2"
	if r := e.call(kitcall.KindApplication, bad); r.Code != koogallery.ResultInvalidParams || !strings.Contains(r.Msg, "clientSecret") {
		t.Fatalf("undecryptable secret: %+v", r)
	}
	v = e.kit(inst, false)
	if len(v.Applications) != 1 || v.Applications[0].AppID != "app-1" {
		t.Fatalf("applications %+v", v.Applications)
	}
	stored, err := e.store.KitOfInstance(context.Background(), inst, false)
	if err != nil || stored.Applications[0].ClientSecret != secret {
		t.Fatalf("the ciphertext is not what is stored: %v", err)
	}
	msgs, _, err := e.store.ListMessages(context.Background(), store.MessageFilter{Activity: kitcall.KindApplication})
	if err != nil || len(msgs) != 2 {
		t.Fatalf("message log: %d messages, %v", len(msgs), err)
	}
	for _, m := range msgs {
		full, err := e.store.GetMessage(context.Background(), m.ID)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(full.RawBody, []byte(secret)) || bytes.Contains(full.RawBody, []byte("bm90IGEgY2lwaGVydGV4dA")) ||
			!bytes.Contains(full.RawBody, []byte(`"clientSecret":"[redacted]"`)) {
			t.Fatalf("message %d keeps the secret: %s", m.ID, full.RawBody)
		}
	}

	// The console's message log lists the Kit calls under their names, with the secret redacted.
	req, _ := http.NewRequest(http.MethodGet, e.url+"/console/v1/koogallery/messages?activity=applicationSync", nil)
	req.Header.Set("Authorization", "Bearer "+consoleToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	listed, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !bytes.Contains(listed, []byte(`"activity":"applicationSync"`)) || bytes.Contains(listed, []byte(secret)) {
		t.Fatalf("console message log: HTTP %d %s", resp.StatusCode, listed)
	}

	// authSync: 500 users sent as a JSON string, then one user's authorisation cancelled, then 501 refused.
	users := make([]map[string]string, 500)
	for i := range users {
		users[i] = map[string]string{"userName": fmt.Sprintf("user%03d", i), "name": fmt.Sprintf("User %d", i),
			"orgCode": "o1", "role": "user", "enable": "true", "email": fmt.Sprintf("u%d@acme.example", i)}
	}
	list, _ := json.Marshal(users)
	auth := map[string]any{"instanceId": inst, "tenantId": "t-1", "appId": "app-1", "userList": string(list),
		"currentSyncTime": ts, "flag": 1, "testFlag": 0, "timeStamp": ts}
	must(t, e.call(kitcall.KindAuth, auth), koogallery.ResultSuccess)
	cancel := map[string]any{"instanceId": inst, "tenantId": "t-1", "appId": "app-1",
		"userList": []map[string]string{{"userName": "user007"}}, "flag": 3, "testFlag": 0, "timeStamp": "20261129093540000"}
	must(t, e.call(kitcall.KindAuth, cancel), koogallery.ResultSuccess)
	must(t, e.call(kitcall.KindAuth, cancel), koogallery.ResultSuccess)
	users = append(users, map[string]string{"userName": "one-too-many", "name": "x", "role": "user"})
	auth["userList"] = users
	if r := e.call(kitcall.KindAuth, auth); r.Code != koogallery.ResultInvalidParams || !strings.Contains(r.Msg, "500") {
		t.Fatalf("501 users: %+v", r)
	}
	v = e.kit(inst, false)
	authorised := 0
	for _, u := range v.Users {
		if u.Authorised {
			authorised++
		}
	}
	if len(v.Users) != 500 || authorised != 499 {
		t.Fatalf("%d users, %d authorised", len(v.Users), authorised)
	}

	// allOrgSync then singleOrgSync delete, twice.
	must(t, e.call(kitcall.KindAllOrg, map[string]any{"instanceId": inst, "tenantId": "t-1", "testFlag": 0, "timeStamp": ts,
		"orgList": []map[string]string{{"orgCode": "o1", "orgName": "HQ"}, {"orgCode": "o2", "orgName": "Sales", "parentCode": "o1"}}}),
		koogallery.ResultSuccess)
	del := map[string]any{"instanceId": inst, "tenantId": "t-1", "orgCode": "o2", "flag": 0, "testFlag": 0, "timeStamp": "20261129093541000"}
	must(t, e.call(kitcall.KindSingleOrg, del), koogallery.ResultSuccess)
	must(t, e.call(kitcall.KindSingleOrg, del), koogallery.ResultSuccess)
	if v = e.kit(inst, false); len(v.Orgs) != 1 || v.Orgs[0].OrgCode != "o1" {
		t.Fatalf("org units %+v", v.Orgs)
	}

	// A test call (no instance) is answered and kept apart.
	test := tenantBody("", 1, "Debug tool")
	test["testFlag"] = 1
	must(t, e.call(kitcall.KindTenant, test), koogallery.ResultSuccess)
	if tv := e.kit("", true); len(tv.Tenants) != 1 || tv.Tenants[0].Name != "Debug tool" {
		t.Fatalf("test tenants %+v", tv.Tenants)
	}
	if v2 := e.kit(inst, false); len(v2.Tenants) != 1 || v2.Tenants[0].Name != "Acme" {
		t.Fatalf("production tenants %+v", v2.Tenants)
	}

	// Deleting the tenant takes the application, users and units along; a repeat succeeds.
	must(t, e.call(kitcall.KindTenant, tenantBody(inst, 0, "")), koogallery.ResultSuccess)
	must(t, e.call(kitcall.KindTenant, tenantBody(inst, 0, "")), koogallery.ResultSuccess)
	if v = e.kit(inst, false); len(v.Tenants)+len(v.Applications)+len(v.Users)+len(v.Orgs) != 0 {
		t.Fatalf("left after delete: %+v", v)
	}

	// Every change that changed something, and only those, reached the seller's webhook in order, without the
	// secret; test calls and calls for unknown instances were not delivered.
	want := []string{"tenant:add", "application:add", "users:add", "users:cancel", "org:add", "org:delete", "tenant:delete"}
	var got []string
	deadline := time.Now().Add(30 * time.Second)
	for {
		got = got[:0]
		for _, ev := range e.hook.kitEvents() {
			var k struct {
				Flag string `json:"flag"`
			}
			if err := json.Unmarshal(ev.Kit, &k); err != nil {
				t.Fatal(err)
			}
			if ev.InstanceID != inst || bytes.Contains(ev.Kit, []byte(secret)) || bytes.Contains(ev.Kit, []byte("client-secret-plain")) {
				t.Fatalf("event %s: %s", ev.EventID, ev.Kit)
			}
			got = append(got, string(ev.Type)+":"+k.Flag)
		}
		if len(got) >= len(want) || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("delivered %v, want %v", got, want)
	}
	usersEvent := e.hook.kitEvents()[2]
	var detail struct {
		Users struct {
			Users []map[string]any `json:"users"`
		} `json:"users"`
	}
	if err := json.Unmarshal(usersEvent.Kit, &detail); err != nil || len(detail.Users.Users) != 500 {
		t.Fatalf("users event: %d users, %v", len(detail.Users.Users), err)
	}
}

// TestKitRefusals: every refusal is answered with its code and changes nothing.
func TestKitRefusals(t *testing.T) {
	e := start(t)
	inst := e.buy(testenv.Unique("CSKIT"))
	raw, _ := json.Marshal(tenantBody(inst, 1, "Acme"))
	now := time.Now()
	h, err := koogallery.SignKit(accessKey, raw, now, koogallery.NewNonce())
	if err != nil {
		t.Fatal(err)
	}
	// An unauthenticated caller learns only "authentication failed"; why is in the message log, which keeps
	// such a call as metadata (no headers).
	check := func(name string, r reply, code, msgPart string) {
		t.Helper()
		wantMsg := r.Msg
		if code == koogallery.ResultAuthFailed {
			wantMsg = "authentication failed"
		}
		if r.Code != code || r.Msg != wantMsg || (code != koogallery.ResultAuthFailed && !strings.Contains(r.Msg, msgPart)) {
			t.Fatalf("%s: %+v, want %s mentioning %q", name, r, code, msgPart)
		}
		if v := e.kit(inst, false); len(v.Tenants) != 0 {
			t.Fatalf("%s changed the rows: %+v", name, v.Tenants)
		}
	}
	logged := func(name, msgPart string) {
		t.Helper()
		var detail string
		var headers int
		if err := e.store.Pool.QueryRow(context.Background(), `SELECT error_detail, jsonb_array_length(jsonb_path_query_array(headers, '$.*'))
			FROM koogallery_messages WHERE path LIKE '%/tenantSync' ORDER BY id DESC LIMIT 1`).Scan(&detail, &headers); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(detail, msgPart) || headers != 0 {
			t.Fatalf("%s: the message log has detail %q (want it to mention %q) and %d headers (want none)", name, detail, msgPart, headers)
		}
	}
	changed := bytes.Replace(raw, []byte("Acme"), []byte("Evil"), 1)
	check("changed body", e.post(kitcall.KindTenant, changed, h), koogallery.ResultAuthFailed, "x-sign")
	logged("changed body", "x-sign")
	noNonce := h.Clone()
	noNonce.Del(koogallery.HeaderKitNonce)
	check("no nonce", e.post(kitcall.KindTenant, raw, noNonce), koogallery.ResultAuthFailed, "x-nonce")
	logged("no nonce", "x-nonce")
	stale, _ := koogallery.SignKit(accessKey, raw, now.Add(-2*time.Minute), koogallery.NewNonce())
	check("stale", e.post(kitcall.KindTenant, raw, stale), koogallery.ResultAuthFailed, "x-timestamp")
	logged("stale", "x-timestamp")
	otherKey, _ := koogallery.SignKit("another-key", raw, now, koogallery.NewNonce())
	check("other key", e.post(kitcall.KindTenant, raw, otherKey), koogallery.ResultAuthFailed, "x-sign")
	logged("other key", "x-sign")
	check("not JSON", e.post(kitcall.KindTenant, []byte("flag=1"), h), koogallery.ResultInvalidParams, "JSON object")
	noName := tenantBody(inst, 1, "")
	check("no name", e.call(kitcall.KindTenant, noName), koogallery.ResultInvalidParams, "name")
	flag9 := tenantBody(inst, 9, "Acme")
	check("flag 9", e.call(kitcall.KindTenant, flag9), koogallery.ResultInvalidParams, "flag")
	badTime := tenantBody(inst, 1, "Acme")
	badTime["timeStamp"] = "2026-11-29"
	check("timeStamp", e.call(kitcall.KindTenant, badTime), koogallery.ResultInvalidParams, "timeStamp")

	// The signed call goes through once; its replay is refused.
	must(t, e.post(kitcall.KindTenant, raw, h), koogallery.ResultSuccess)
	if r := e.post(kitcall.KindTenant, raw, h); r.Code != koogallery.ResultAuthFailed || r.Msg != "authentication failed" {
		t.Fatalf("replay: %+v", r)
	}
	logged("replay", "already used")
}

func TestRedact(t *testing.T) {
	for name, c := range map[string]struct{ in, want string }{
		"secret":          {`{"clientId":"c","clientSecret":"abc","flag":1}`, `{"clientId":"c","clientSecret":"[redacted]","flag":1}`},
		"escaped key":     {`{"client\u0053ecret":"abc"}`, `{"clientSecret":"[redacted]"}`},
		"no secret":       {`{"tenantId":"t","flag":1}`, `{"tenantId":"t","flag":1}`},
		"other case":      {`{"ClientSecret":"abc"}`, `{"ClientSecret":"[redacted]"}`},
		"broken w/secret": {`{"clientSecret":"abc"`, ``},
	} {
		if got := string(kit.Redact([]byte(c.in))); got != c.want {
			t.Errorf("%s: %s, want %s", name, got, c.want)
		}
	}
}

// TestKitDeliveryParksAndResumes: a Kit change the seller's endpoint refuses for good parks the instance at its
// delivery stage, like a provisioning stage; the marketplace's call was answered success (the change is held
// by the workflow); an operator's resume after the fix delivers it, and the timeline shows it.
func TestKitDeliveryParksAndResumes(t *testing.T) {
	e := start(t)
	e.hook.refuseKit.Store(true)
	inst := e.buy(testenv.Unique("CSKIT"))
	must(t, e.call(kitcall.KindTenant, tenantBody(inst, 1, "Acme")), koogallery.ResultSuccess)

	ctx := context.Background()
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	waitFor("the parking", func() bool {
		row, err := e.store.Instance(ctx, inst)
		return err == nil && row.Parked && strings.HasPrefix(row.ParkedStep, "deliver tenant change") &&
			strings.Contains(row.ParkedReason, "unknown tenant domain")
	})
	if n := len(e.hook.kitEvents()); n != 0 {
		t.Fatalf("%d Kit events delivered while refused", n)
	}
	e.hook.refuseKit.Store(false)
	body, _ := json.Marshal(map[string]string{"action": "resume", "note": "domain registered"})
	req, _ := http.NewRequest(http.MethodPost, e.url+"/console/v1/instances/"+inst+"/operator", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+consoleToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("resume: HTTP %d", resp.StatusCode)
	}
	waitFor("the delivery", func() bool { return len(e.hook.kitEvents()) == 1 })
	waitFor("the timeline event", func() bool {
		events, err := e.store.Timeline(ctx, inst)
		if err != nil {
			t.Fatal(err)
		}
		for _, ev := range events {
			if ev.Kind == "kit-tenant" && strings.Contains(ev.Summary, "delivered to the seller") {
				return true
			}
		}
		return false
	})
	if row, err := e.store.Instance(ctx, inst); err != nil || row.Parked {
		t.Fatalf("still parked: %+v, %v", row, err)
	}
}
