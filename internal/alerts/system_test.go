package alerts_test

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/kooflow/kooflow/internal/alerts"
	"github.com/kooflow/kooflow/internal/store"
	"github.com/kooflow/kooflow/internal/testenv"
)

// TestSystemAlertLifecycle: an alert about no instance (a settlement period) is raised once however often it is
// raised, listed and counted beside the instance alerts, pushed once raised and once resolved, raised (and pushed)
// again when its cause comes back after the resolution, and refused without a kind, key, subject or message.
func TestSystemAlertLifecycle(t *testing.T) {
	ctx := context.Background()
	st := &store.Store{Pool: testenv.Pool(t)}
	sk := &sink{answer: "ok"}
	srv := httptest.NewServer(sk)
	defer srv.Close()
	now := t0
	p := &alerts.Pusher{Store: st, URL: srv.URL, Format: alerts.FormatJSON, Log: testenv.Logger(t), Now: func() time.Time { return now }}

	// An instance alert beside it: both are listed, counted and pushed.
	if err := st.Apply(ctx, store.Write{Summary: "expired", Instance: instance("s1", 1, "ACTIVE"),
		Alerts: []store.AlertRow{{Key: "expiry:1", Kind: "expiry", At: t0, Message: "expired without FREEZE"}}}); err != nil {
		t.Fatal(err)
	}
	a := store.SystemAlert{Kind: "settlement-failed", Key: "settlement-failed:2026-10", Subject: "settlement period 2026-10",
		Message: "the close of settlement period 2026-10 failed: the bill query answered 91390001",
		Detail:  json.RawMessage(`{"period":"2026-10"}`)}
	for i := range 3 {
		raised, err := st.RaiseSystemAlert(ctx, a, t0.Add(time.Duration(i)*time.Minute))
		if err != nil || raised != (i == 0) {
			t.Fatalf("raise #%d: raised %v, %v", i+1, raised, err)
		}
	}
	open, err := st.Alerts(ctx, store.AlertFilter{OpenOnly: true})
	if err != nil || len(open) != 2 {
		t.Fatalf("open alerts %+v %v", open, err)
	}
	var sys *store.Alert
	for i := range open {
		if open[i].Kind == "settlement-failed" {
			sys = &open[i]
		}
	}
	if sys == nil || sys.InstanceID != "" || sys.Subject != a.Subject || !sys.RaisedAt.Equal(t0) || sys.Message != a.Message {
		t.Fatalf("listed system alert %+v", sys)
	}
	if only, err := st.Alerts(ctx, store.AlertFilter{OpenOnly: true, Kind: "settlement-failed"}); err != nil || len(only) != 1 {
		t.Fatalf("by kind: %+v %v", only, err)
	}
	if mine, err := st.Alerts(ctx, store.AlertFilter{InstanceID: "s1"}); err != nil || len(mine) != 1 || mine[0].Kind != "expiry" {
		t.Fatalf("an instance's alerts include system alerts: %+v %v", mine, err)
	}
	counts, err := st.CountOpenAlerts(ctx)
	if err != nil || counts["settlement-failed"] != 1 || counts["expiry"] != 1 || len(counts) != 2 {
		t.Fatalf("open counts %v %v", counts, err)
	}

	// Pushed once each, the system alert with its subject and no instance.
	now = t0.Add(5 * time.Minute)
	for range 2 {
		if _, err := p.Round(ctx); err != nil {
			t.Fatal(err)
		}
	}
	got := decodeAny(t, sk.take())
	if len(got) != 2 {
		t.Fatalf("pushed %d, want 2: %+v", len(got), got)
	}
	m := find(got, "settlement-failed")
	if m == nil || m.Event != "raised" || m.Subject != a.Subject || m.InstanceID != "" || m.Key != a.Key ||
		string(m.Detail) != `{"period":"2026-10"}` {
		t.Fatalf("pushed system alert %+v", m)
	}

	// Resolved once; the resolution is pushed once; it is no longer open or counted.
	if ok, err := st.ResolveSystemAlert(ctx, a.Key, now); err != nil || !ok {
		t.Fatalf("resolve: %v %v", ok, err)
	}
	if ok, err := st.ResolveSystemAlert(ctx, a.Key, now); err != nil || ok {
		t.Fatalf("resolve again: %v %v", ok, err)
	}
	if ok, err := st.ResolveSystemAlert(ctx, "settlement-failed:never-raised", now); err != nil || ok {
		t.Fatalf("resolve an unknown key: %v %v", ok, err)
	}
	if o, err := st.OpenSystemAlert(ctx, a.Key); err != nil || o != nil {
		t.Fatalf("open after resolve: %+v %v", o, err)
	}
	for range 2 {
		if _, err := p.Round(ctx); err != nil {
			t.Fatal(err)
		}
	}
	got = decodeAny(t, sk.take())
	if len(got) != 1 || got[0].Event != "resolved" || got[0].ResolvedAt == nil || got[0].Kind != "settlement-failed" {
		t.Fatalf("resolution pushed: %+v", got)
	}
	if counts, err := st.CountOpenAlerts(ctx); err != nil || counts["settlement-failed"] != 0 {
		t.Fatalf("open counts after resolve %v %v", counts, err)
	}

	// The cause comes back: raised again and pushed again, once.
	now = t0.Add(time.Hour)
	if raised, err := st.RaiseSystemAlert(ctx, a, now); err != nil || !raised {
		t.Fatalf("raise after resolve: %v %v", raised, err)
	}
	if o, err := st.OpenSystemAlert(ctx, a.Key); err != nil || o == nil || !o.RaisedAt.Equal(now) {
		t.Fatalf("open after raising again: %+v %v", o, err)
	}
	for range 2 {
		if _, err := p.Round(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if got := decodeAny(t, sk.take()); len(got) != 1 || got[0].Event != "raised" || got[0].Subject != a.Subject {
		t.Fatalf("raised again pushed: %+v", got)
	}

	for _, bad := range []store.SystemAlert{
		{Key: "k", Subject: "s", Message: "m"},
		{Kind: "k", Subject: "s", Message: "m"},
		{Kind: "k", Key: "k", Message: "m"},
		{Kind: "k", Key: "k", Subject: "s"},
		{Kind: "k", Key: "k", Subject: "s", Message: "m", Detail: json.RawMessage(`{not json`)},
	} {
		if _, err := st.RaiseSystemAlert(ctx, bad, now); err == nil {
			t.Errorf("raised %+v", bad)
		}
	}
	if all, err := st.Alerts(ctx, store.AlertFilter{}); err != nil || len(all) != 2 {
		t.Fatalf("a refused raise left a row: %+v %v", all, err)
	}
}

// TestSystemAlertBotFormats: a system alert reaches each bot with its subject where an instance alert names its
// instance; a refusing bot's answer is a failed delivery retried after the backoff.
func TestSystemAlertBotFormats(t *testing.T) {
	ctx := context.Background()
	st := &store.Store{Pool: testenv.Pool(t)}
	if _, err := st.RaiseSystemAlert(ctx, store.SystemAlert{Kind: "order-query-failing", Key: "order-query-failing",
		Subject: "order query", Message: "the marketplace's order query has failed for 20m"}, t0); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		format  alerts.Format
		ok, bad string
		text    func(map[string]any) string
	}{
		{alerts.FormatDingTalk, `{"errcode":0,"errmsg":"ok"}`, `{"errcode":310000,"errmsg":"keywords not in content"}`, func(m map[string]any) string {
			md, _ := m["markdown"].(map[string]any)
			if m["msgtype"] != "markdown" || md["title"] != "[kooflow] order-query-failing raised" {
				return ""
			}
			s, _ := md["text"].(string)
			return s
		}},
		{alerts.FormatFeishu, `{"code":0,"msg":"success"}`, `{"code":19021,"msg":"sign match fail"}`, func(m map[string]any) string {
			c, _ := m["content"].(map[string]any)
			if m["msg_type"] != "text" {
				return ""
			}
			s, _ := c["text"].(string)
			return s
		}},
		{alerts.FormatWeCom, `{"errcode":0,"errmsg":"ok"}`, `{"errcode":93000,"errmsg":"invalid webhook url"}`, func(m map[string]any) string {
			md, _ := m["markdown"].(map[string]any)
			if m["msgtype"] != "markdown" {
				return ""
			}
			s, _ := md["content"].(string)
			return s
		}},
	}
	for _, tc := range tests {
		t.Run(string(tc.format), func(t *testing.T) {
			if _, err := st.Pool.Exec(ctx, `UPDATE system_alerts SET pushed_at = NULL, push_next_at = NULL, push_attempts = 0`); err != nil {
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
			if err := st.Pool.QueryRow(ctx, `SELECT push_attempts, push_last_error FROM system_alerts`).Scan(&attempts, &lastErr); err != nil || attempts != 1 || lastErr == "" {
				t.Fatalf("after the bot refused: attempts %d, error %q, %v", attempts, lastErr, err)
			}
			sk.answer = tc.ok
			sk.take()
			if n, err := p.Round(ctx); err != nil || n != 0 {
				t.Fatalf("retried before the backoff: %d, %v", n, err)
			}
			now = now.Add(alerts.Backoff(1))
			if n, err := p.Round(ctx); err != nil || n != 1 {
				t.Fatalf("delivered %d, %v", n, err)
			}
			bodies := sk.take()
			var m map[string]any
			if len(bodies) != 1 || json.Unmarshal(bodies[0], &m) != nil {
				t.Fatalf("%s bodies: %s", tc.format, bodies)
			}
			text := tc.text(m)
			if !strings.Contains(text, "order-query-failing raised") || !strings.Contains(text, "has failed for 20m") ||
				!strings.Contains(text, "subject: order query") || strings.Contains(text, "instance:") {
				t.Fatalf("%s body: %s", tc.format, bodies[0])
			}
		})
	}
}

func decodeAny(t *testing.T, bodies [][]byte) []alerts.Message {
	t.Helper()
	var out []alerts.Message
	for _, b := range bodies {
		var m alerts.Message
		if err := json.Unmarshal(b, &m); err != nil || m.Source != "kooflow" || m.Key == "" || (m.InstanceID == "") == (m.Subject == "") {
			t.Fatalf("body %s: %v", b, err)
		}
		out = append(out, m)
	}
	return out
}

func find(ms []alerts.Message, kind string) *alerts.Message {
	for i := range ms {
		if ms[i].Kind == kind {
			return &ms[i]
		}
	}
	return nil
}
