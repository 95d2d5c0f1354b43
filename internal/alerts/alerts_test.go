package alerts_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kooflow/kooflow/internal/alerts"
	"github.com/kooflow/kooflow/internal/koogallery"
	"github.com/kooflow/kooflow/internal/store"
	"github.com/kooflow/kooflow/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// sink is a real HTTP server that records every body it receives; fail answers the next n deliveries 503.
type sink struct {
	mu     sync.Mutex
	bodies [][]byte
	fail   int
	answer string // the bot's 200 body
}

func (s *sink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail > 0 {
		s.fail--
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	s.bodies = append(s.bodies, b)
	_, _ = io.WriteString(w, s.answer)
}

func (s *sink) take() [][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.bodies
	s.bodies = nil
	return b
}

var t0 = time.Date(2026, 11, 2, 8, 0, 0, 0, time.UTC)

func instance(id string, version int64, lifecycle string) *store.InstanceRow {
	return &store.InstanceRow{InstanceID: id, WorkflowID: "instance/" + id, Version: version, OrderID: "CS-" + id,
		OrderLineID: "CS-" + id + "-1", ProductID: "P", Quantity: 1, Lifecycle: lifecycle, Supervision: "NOT_INVOLVED"}
}

// TestEveryKindRaisedDedupedResolvedAndPushed: purchase-failing (with the time left before the refund),
// parked, purchase-refused and expiry are each raised once however often the watcher runs, resolved when their
// cause is gone, and pushed exactly once raised and once resolved, in the generic JSON format; a failing
// webhook is retried with backoff and nothing is pushed twice.
func TestEveryKindRaisedDedupedResolvedAndPushed(t *testing.T) {
	ctx := context.Background()
	st := &store.Store{Pool: testenv.Pool(t)}
	sk := &sink{answer: "ok"}
	srv := httptest.NewServer(sk)
	defer srv.Close()
	now := t0
	p := &alerts.Pusher{Store: st, URL: srv.URL, Format: alerts.FormatJSON, Log: testenv.Logger(t),
		PurchaseAfter: 30 * time.Minute, Now: func() time.Time { return now }}
	round := func() {
		t.Helper()
		if _, err := p.Round(ctx); err != nil {
			t.Fatal(err)
		}
	}
	apply := func(w store.Write) {
		t.Helper()
		if err := st.Apply(ctx, w); err != nil {
			t.Fatal(err)
		}
	}
	// i1 and i2: purchases ordered at t0 (the inbox row's receipt).
	for _, id := range []string{"i1", "i2"} {
		if _, _, err := st.AcceptInbox(ctx, store.InboxRow{InstanceID: id, OrderID: "CS-" + id, OrderLineID: "CS-" + id + "-1",
			BusinessID: "b", ReceivedAt: t0}, time.Second); err != nil {
			t.Fatal(err)
		}
	}
	apply(store.Write{Summary: "accepted", Instance: instance("i1", 1, "PROVISIONING")})
	// i2: parked at its order query.
	parkedAt := t0.Add(time.Minute)
	i2 := instance("i2", 1, "PROVISIONING")
	i2.Parked, i2.ParkedStep, i2.ParkedReason, i2.ParkedAt = true, "query purchase order CS-i2", "order does not exist", &parkedAt
	apply(store.Write{Summary: "parked", Instance: i2})
	// i3: its provisioner refused; i4: the expiry safety net's alert, written by the workflow.
	apply(store.Write{Summary: "accepted", Instance: instance("i3", 1, "PROVISIONING")})
	if err := st.RecordPurchaseRefusal(ctx, store.PurchaseRefusal{InstanceID: "i3", OrderID: "CS-i3", Code: "000101",
		Message: "the buyer's phone number is missing", At: t0}); err != nil {
		t.Fatal(err)
	}
	apply(store.Write{Summary: "expired", Instance: instance("i4", 1, "ACTIVE"),
		Alerts: []store.AlertRow{{Key: "expiry:1", Kind: "expiry", At: t0, Message: "expired without FREEZE"}}})

	// Ten minutes in: nothing late yet; the three existing alerts are pushed once.
	now = t0.Add(10 * time.Minute)
	round()
	round()
	got := decode(t, sk.take())
	if kinds(got) != "expiry raised,parked raised,purchase-refused raised" {
		t.Fatalf("first pushes: %s", kinds(got))
	}
	for _, m := range got {
		if m.Kind == "parked" && (!strings.Contains(m.Message, "order does not exist") || m.OrderID != "CS-i2") {
			t.Fatalf("parked alert %+v", m)
		}
		if m.Kind == "purchase-refused" && !strings.Contains(m.Message, "000101") {
			t.Fatalf("refused alert %+v", m)
		}
	}

	// 40 minutes in: i1 and i2 are late. The webhook fails once: retried after the backoff, not before.
	now = t0.Add(40 * time.Minute)
	sk.fail = 1
	round()
	if b := sk.take(); len(b) != 1 {
		t.Fatalf("%d delivered while the webhook failed once, want the other one", len(b))
	}
	round()
	if b := sk.take(); len(b) != 0 {
		t.Fatalf("retried before the backoff: %s", b)
	}
	now = now.Add(alerts.Backoff(1) + time.Second)
	round()
	if b := sk.take(); len(b) != 1 {
		t.Fatalf("retry after the backoff delivered %d", len(b))
	}
	var late []alerts.Message
	for _, id := range []string{"i1", "i2"} {
		as, err := st.Alerts(ctx, store.AlertFilter{InstanceID: id, Kind: store.AlertPurchaseFailing})
		if err != nil || len(as) != 1 {
			t.Fatalf("purchase-failing of %s: %v %v", id, as, err)
		}
		late = append(late, alerts.Message{Message: as[0].Message})
	}
	if !strings.Contains(late[0].Message, "2h20m0s left") || !strings.Contains(late[0].Message, "CS-i1") {
		t.Fatalf("purchase-failing message %q", late[0].Message)
	}
	if !strings.Contains(late[1].Message, "parked: order does not exist") {
		t.Fatalf("purchase-failing of a parked purchase %q", late[1].Message)
	}
	// Watching again raises nothing new.
	for range 3 {
		if raised, _, err := st.WatchAlerts(ctx, now, 30*time.Minute); err != nil || raised != 0 {
			t.Fatalf("watch again raised %d, %v", raised, err)
		}
	}

	// Causes gone: i1 provisioned, i2 resumed, i3 resumed (the next attempt clears the refusal), i4 frozen.
	provisioned := now
	i1 := instance("i1", 2, "ACTIVE")
	i1.ProvisionedAt = &provisioned
	apply(store.Write{Summary: "provisioned", Instance: i1})
	apply(store.Write{Summary: "resumed", Instance: instance("i2", 2, "PROVISIONING")})
	if err := st.ClearPurchaseRefusal(ctx, "i3"); err != nil {
		t.Fatal(err)
	}
	apply(store.Write{Summary: "frozen", Instance: instance("i4", 2, "FROZEN"), ResolveAlerts: []string{"expiry"}})
	round()
	round()
	got = decode(t, sk.take())
	if kinds(got) != "expiry resolved,parked resolved,purchase-failing resolved,purchase-refused resolved" {
		t.Fatalf("resolutions pushed: %s", kinds(got))
	}
	for _, m := range got {
		if m.ResolvedAt == nil {
			t.Fatalf("resolution without resolvedAt: %+v", m)
		}
	}
	// i2 still provisioning (not parked any more): its purchase-failing stays open and pushed once only.
	open, err := st.Alerts(ctx, store.AlertFilter{OpenOnly: true})
	if err != nil || len(open) != 1 || open[0].InstanceID != "i2" || open[0].Kind != store.AlertPurchaseFailing {
		t.Fatalf("open alerts %+v %v", open, err)
	}
	// Three hours in: nothing is pushed twice.
	now = t0.Add(3 * time.Hour)
	round()
	if b := sk.take(); len(b) != 0 {
		t.Fatalf("pushed again: %s", b)
	}
}

func decode(t *testing.T, bodies [][]byte) []alerts.Message {
	t.Helper()
	var out []alerts.Message
	for _, b := range bodies {
		var m alerts.Message
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("body %s: %v", b, err)
		}
		if m.Source != "kooflow" || m.InstanceID == "" || m.Key == "" {
			t.Fatalf("body %s", b)
		}
		out = append(out, m)
	}
	return out
}

func kinds(ms []alerts.Message) string {
	var s []string
	for _, m := range ms {
		s = append(s, m.Kind+" "+m.Event)
	}
	sortStrings(s)
	return strings.Join(s, ",")
}

func sortStrings(s []string) {
	for i := range s {
		for j := i + 1; j < len(s); j++ {
			if s[j] < s[i] {
				s[i], s[j] = s[j], s[i]
			}
		}
	}
}

// TestBotFormats pushes one alert to each bot format over real HTTP and checks the body against the bot's
// message format; a bot's refusal in a 200 answer (errcode/code) is a failed delivery, retried later.
func TestBotFormats(t *testing.T) {
	ctx := context.Background()
	st := &store.Store{Pool: testenv.Pool(t)}
	if err := st.Apply(ctx, store.Write{Summary: "expired", Instance: instance("b1", 1, "ACTIVE"),
		Alerts: []store.AlertRow{{Key: "expiry:1", Kind: "expiry", At: t0, Message: "expired without FREEZE"}}}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		format  alerts.Format
		ok, bad string // the bot's answers
		check   func(map[string]any) bool
	}{
		{alerts.FormatDingTalk, `{"errcode":0,"errmsg":"ok"}`, `{"errcode":310000,"errmsg":"keywords not in content"}`, func(m map[string]any) bool {
			md, _ := m["markdown"].(map[string]any)
			return m["msgtype"] == "markdown" && md["title"] == "[kooflow] expiry raised" &&
				strings.Contains(md["text"].(string), "expired without FREEZE") && strings.Contains(md["text"].(string), "instance: b1")
		}},
		{alerts.FormatFeishu, `{"code":0,"msg":"success"}`, `{"code":19021,"msg":"sign match fail"}`, func(m map[string]any) bool {
			c, _ := m["content"].(map[string]any)
			return m["msg_type"] == "text" && strings.HasPrefix(c["text"].(string), "[kooflow] expiry raised\nexpired without FREEZE")
		}},
		{alerts.FormatWeCom, `{"errcode":0,"errmsg":"ok"}`, `{"errcode":93000,"errmsg":"invalid webhook url"}`, func(m map[string]any) bool {
			md, _ := m["markdown"].(map[string]any)
			return m["msgtype"] == "markdown" && strings.HasPrefix(md["content"].(string), "**[kooflow] expiry raised**\nexpired without FREEZE")
		}},
	}
	for _, tc := range tests {
		t.Run(string(tc.format), func(t *testing.T) {
			if _, err := st.Pool.Exec(ctx, `UPDATE instance_alerts SET pushed_at = NULL, push_next_at = NULL, push_attempts = 0`); err != nil {
				t.Fatal(err)
			}
			sk := &sink{answer: tc.bad}
			srv := httptest.NewServer(sk)
			defer srv.Close()
			now := t0
			p := &alerts.Pusher{Store: st, URL: srv.URL, Format: tc.format, Log: testenv.Logger(t), Now: func() time.Time { return now }}
			if n, err := p.Round(ctx); err != nil || n != 0 {
				t.Fatalf("a refusing bot: %d delivered, %v", n, err)
			}
			var attempts int
			var lastErr string
			if err := st.Pool.QueryRow(ctx, `SELECT push_attempts, push_last_error FROM instance_alerts`).Scan(&attempts, &lastErr); err != nil || attempts != 1 || lastErr == "" {
				t.Fatalf("after the bot refused: attempts %d, error %q, %v", attempts, lastErr, err)
			}
			sk.answer = tc.ok
			sk.take()
			now = now.Add(alerts.Backoff(1)) // the retry is due after the backoff
			if n, err := p.Round(ctx); err != nil || n != 1 {
				t.Fatalf("delivered %d, %v", n, err)
			}
			bodies := sk.take()
			var m map[string]any
			if len(bodies) != 1 || json.Unmarshal(bodies[0], &m) != nil || !tc.check(m) {
				t.Fatalf("%s body: %s", tc.format, bodies)
			}
		})
	}
	if _, err := alerts.ParseFormat("slack"); err == nil {
		t.Error("unknown format accepted")
	}
	if f, err := alerts.ParseFormat(""); err != nil || f != alerts.FormatJSON {
		t.Errorf("default format %q %v", f, err)
	}
}

// TestFreezeRetention: an instance frozen longer than the marketplace's 15-day retention with no release raises
// freeze-retention once, pushed once, and the alert is resolved (and the resolution pushed) when the instance is
// renewed and unfrozen. A dial-test instance and one frozen for less than 15 days raise nothing.
func TestFreezeRetention(t *testing.T) {
	ctx := context.Background()
	st := &store.Store{Pool: testenv.Pool(t)}
	sk := &sink{answer: "ok"}
	srv := httptest.NewServer(sk)
	defer srv.Close()
	now := t0
	p := &alerts.Pusher{Store: st, URL: srv.URL, Format: alerts.FormatJSON, Log: testenv.Logger(t),
		PurchaseAfter: 30 * time.Minute, Now: func() time.Time { return now }}
	frozen := func(id string, version int64, at time.Time, test bool) *store.InstanceRow {
		r := instance(id, version, "FROZEN")
		r.FrozenAt, r.FrozenBy, r.TestFlag = &at, "marketplace", test
		provisioned := t0.Add(-30 * 24 * time.Hour)
		r.ProvisionedAt = &provisioned
		return r
	}
	for _, r := range []*store.InstanceRow{frozen("f1", 1, t0, false), frozen("f2", 1, t0.Add(2*24*time.Hour), false),
		frozen("f3", 1, t0, true)} {
		if err := st.Apply(ctx, store.Write{Summary: "frozen", Instance: r}); err != nil {
			t.Fatal(err)
		}
	}
	retention := func(id string) []store.Alert {
		t.Helper()
		as, err := st.Alerts(ctx, store.AlertFilter{InstanceID: id, Kind: store.AlertFreezeRetention})
		if err != nil {
			t.Fatal(err)
		}
		return as
	}
	now = t0.Add(store.FreezeRetention - time.Minute)
	if _, err := p.Round(ctx); err != nil {
		t.Fatal(err)
	}
	if a := retention("f1"); len(a) != 0 {
		t.Fatalf("raised before the retention ended: %+v", a)
	}
	now = t0.Add(store.FreezeRetention + time.Hour)
	for range 3 {
		if _, err := p.Round(ctx); err != nil {
			t.Fatal(err)
		}
	}
	a := retention("f1")
	if len(a) != 1 || a[0].ResolvedAt != nil || !strings.Contains(a[0].Message, "15-day retention") ||
		!strings.Contains(a[0].Message, "CS-f1") {
		t.Fatalf("freeze-retention of f1: %+v", a)
	}
	if got := retention("f2"); len(got) != 0 {
		t.Fatalf("f2 is frozen for 13 days only: %+v", got)
	}
	if got := retention("f3"); len(got) != 0 {
		t.Fatalf("a dial-test instance raised %+v", got)
	}
	if got := kinds(decode(t, sk.take())); got != "freeze-retention raised" {
		t.Fatalf("pushed %s", got)
	}
	// Renewed and unfrozen: resolved, and the resolution pushed once.
	if err := st.Apply(ctx, store.Write{Summary: "unfrozen", Instance: instance("f1", 2, "ACTIVE")}); err != nil {
		t.Fatal(err)
	}
	now = now.Add(time.Minute)
	for range 2 {
		if _, err := p.Round(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if a := retention("f1"); len(a) != 1 || a[0].ResolvedAt == nil {
		t.Fatalf("not resolved after unfreeze: %+v", a)
	}
	if got := kinds(decode(t, sk.take())); got != "freeze-retention resolved" {
		t.Fatalf("pushed %s", got)
	}
}

// TestMarketplaceCallFailed: a verified renewal call kooflow answered with a failure, with no successful delivery
// of the same call within the marketplace's 1-hour window, raises marketplace-call-failed once (however many
// failed deliveries), pushed once; a successful delivery of the same call (the seller-center restart) resolves it.
// Dial-test calls, calls that failed verification, and a call retried successfully in time raise nothing.
func TestMarketplaceCallFailed(t *testing.T) {
	ctx := context.Background()
	st := &store.Store{Pool: testenv.Pool(t)}
	sk := &sink{answer: "ok"}
	srv := httptest.NewServer(sk)
	defer srv.Close()
	now := t0
	p := &alerts.Pusher{Store: st, URL: srv.URL, Format: alerts.FormatJSON, Log: testenv.Logger(t),
		PurchaseAfter: 30 * time.Minute, Now: func() time.Time { return now }}
	for _, id := range []string{"m1", "m2", "m3", "m4"} {
		if err := st.Apply(ctx, store.Write{Summary: "active", Instance: instance(id, 1, "ACTIVE")}); err != nil {
			t.Fatal(err)
		}
	}
	renewal := func(instanceID, order string, at time.Time, code string, verdict koogallery.Verdict, test bool) {
		t.Helper()
		m := &store.Message{ReceivedAt: at, Method: "POST", Path: "/koogallery/v2", RawBody: []byte(`{}`),
			Verification: verdict, Activity: koogallery.ActivityRefreshInstance, OrderID: order, OrderLineID: order + "-1",
			InstanceIDs: []string{instanceID}, Scene: "RENEWAL", TestFlag: test, ResultCode: code, ResultMsg: "answer " + code,
			HTTPStatus: 200, ResponseBody: []byte(`{}`)}
		if err := st.AppendMessage(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	// m1: failed three times; m2: failed, then succeeded within the hour; m3: a dial test; m4: not verified.
	for i := range 3 {
		renewal("m1", "R1", t0.Add(time.Duration(i)*10*time.Minute), "000005", koogallery.VerdictOK, false)
	}
	renewal("m2", "R2", t0, "000005", koogallery.VerdictOK, false)
	renewal("m2", "R2", t0.Add(20*time.Minute), "000000", koogallery.VerdictOK, false)
	renewal("m3", "R3", t0, "000005", koogallery.VerdictOK, true)
	renewal("m4", "R4", t0, "000001", koogallery.VerdictBadSig, false)
	failedCalls := func(id string) []store.Alert {
		t.Helper()
		as, err := st.Alerts(ctx, store.AlertFilter{InstanceID: id, Kind: store.AlertMarketplaceCall})
		if err != nil {
			t.Fatal(err)
		}
		return as
	}
	now = t0.Add(59 * time.Minute) // the window is still open: the marketplace may yet retry
	if _, err := p.Round(ctx); err != nil {
		t.Fatal(err)
	}
	if a := failedCalls("m1"); len(a) != 0 {
		t.Fatalf("raised inside the retry window: %+v", a)
	}
	now = t0.Add(61 * time.Minute)
	for range 3 {
		if _, err := p.Round(ctx); err != nil {
			t.Fatal(err)
		}
	}
	a := failedCalls("m1")
	if len(a) != 1 || a[0].ResolvedAt != nil || !strings.Contains(a[0].Message, "refreshInstance R1 failed 3 time(s)") ||
		!strings.Contains(a[0].Message, "重新启动") {
		t.Fatalf("marketplace-call-failed of m1: %+v", a)
	}
	for _, id := range []string{"m2", "m3", "m4"} {
		if got := failedCalls(id); len(got) != 0 {
			t.Fatalf("%s raised %+v", id, got)
		}
	}
	if got := kinds(decode(t, sk.take())); got != "marketplace-call-failed raised" {
		t.Fatalf("pushed %s", got)
	}
	// The seller center restarts the call, and kooflow answers it.
	renewal("m1", "R1", t0.Add(5*time.Hour), "000000", koogallery.VerdictOK, false)
	now = t0.Add(5*time.Hour + time.Minute)
	for range 2 {
		if _, err := p.Round(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if a := failedCalls("m1"); len(a) != 1 || a[0].ResolvedAt == nil {
		t.Fatalf("not resolved by the restart: %+v", a)
	}
	if got := kinds(decode(t, sk.take())); got != "marketplace-call-failed resolved" {
		t.Fatalf("pushed %s", got)
	}
}
