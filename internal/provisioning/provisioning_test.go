package provisioning

import (
	"context"
	"encoding/base64"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

const secret = "provisioning-test-secret-0123"

func event(kind Kind) Event {
	return Event{EventID: "i1:s1:" + string(kind), Type: kind, InstanceID: "i1", OrderID: "O1", ProductID: "P1",
		SKUCode: "S1", Quantity: 2, OccurredAt: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
}

// TestStandardWebhooksVector checks Sign and Verify against the test vector the Standard Webhooks specification
// publishes (and its reference libraries test with).
func TestStandardWebhooksVector(t *testing.T) {
	key, err := ParseSecret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	if err != nil {
		t.Fatal(err)
	}
	const id, ts, want = "msg_p5jXN8AQM9LWM0D4loKWxJek", "1614265330", "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
	body := []byte(`{"test": 2432232314}`)
	if got := Sign(key, id, ts, body); got != want {
		t.Fatalf("signature %s, want %s", got, want)
	}
	h := http.Header{}
	h.Set(HeaderEventID, id)
	h.Set(HeaderTimestamp, ts)
	h.Set(HeaderSignature, "v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc= "+want) // one of several, as in rotation
	now := time.Unix(1614265330, 0)
	if err := Verify([][]byte{key}, h, body, now.Add(time.Minute), 5*time.Minute); err != nil {
		t.Fatalf("the specification's vector refused: %v", err)
	}
	other, _ := ParseSecret("another-secret-0123456")
	for name, check := range map[string]func() error{
		"tampered body": func() error { return Verify([][]byte{key}, h, []byte(`{"test": 2432232315}`), now, time.Minute) },
		"wrong secret":  func() error { return Verify([][]byte{other}, h, body, now, time.Minute) },
		"stale":         func() error { return Verify([][]byte{key}, h, body, now.Add(10*time.Minute), 5*time.Minute) },
		"future":        func() error { return Verify([][]byte{key}, h, body, now.Add(-10*time.Minute), 5*time.Minute) },
		"other id": func() error {
			h2 := h.Clone()
			h2.Set(HeaderEventID, "msg_other")
			return Verify([][]byte{key}, h2, body, now, time.Minute)
		},
		"v1 without comma": func() error {
			h2 := h.Clone()
			h2.Set(HeaderSignature, strings.Replace(want, "v1,", "v1=", 1))
			return Verify([][]byte{key}, h2, body, now, time.Minute)
		},
		"milliseconds": func() error {
			h2 := h.Clone()
			h2.Set(HeaderTimestamp, ts+"000")
			return Verify([][]byte{key}, h2, body, now, time.Minute)
		},
	} {
		if check() == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// TestSecrets: the whsec_ form and a plain secret (as configured before) name the same key; several secrets are
// accepted for rotation; unusable ones are refused with the setting's name.
func TestSecrets(t *testing.T) {
	plain := "provisioning-test-secret-0123"
	a, err := ParseSecret(plain)
	if err != nil {
		t.Fatal(err)
	}
	b, err := ParseSecret("whsec_" + base64.StdEncoding.EncodeToString([]byte(plain)))
	if err != nil || string(a) != string(b) {
		t.Fatalf("whsec_ of the plain secret: %q vs %q, %v", a, b, err)
	}
	keys, err := ParseSecrets("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw, " + plain)
	if err != nil || len(keys) != 2 {
		t.Fatalf("two secrets: %d %v", len(keys), err)
	}
	for _, bad := range []string{"", "short", "whsec_not*base64", "whsec_" + base64.StdEncoding.EncodeToString([]byte("tiny"))} {
		if _, err := ParseSecrets(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// TestWebhookSignsWithEverySecret: during rotation each delivery carries one signature per configured secret, so
// a receiver that knows only the old or only the new one accepts it.
func TestWebhookSignsWithEverySecret(t *testing.T) {
	const oldSecret, newSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "provisioning-new-secret-456789"
	var accepted atomic.Int32
	for _, receiverSecret := range []string{oldSecret, newSecret} {
		srv := httptest.NewServer(NewReceiver(receiverSecret, time.Minute, func(ctx context.Context, e Event) (Result, error) {
			accepted.Add(1)
			return Result{}, nil
		}))
		wh, err := NewWebhook(srv.URL, oldSecret+" "+newSecret, srv.Client())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := wh.Apply(context.Background(), event(Freeze)); err != nil {
			t.Fatalf("receiver with %s: %v", receiverSecret[:8], err)
		}
		srv.Close()
	}
	if accepted.Load() != 2 {
		t.Fatalf("accepted %d", accepted.Load())
	}
}

// TestWebhookRequiresHTTPSAndFollowsNoRedirect: plain http is refused unless on loopback, and a redirect is not
// followed (the event would go, signed, to a URL nobody configured): the step parks with the reason.
func TestWebhookRequiresHTTPSAndFollowsNoRedirect(t *testing.T) {
	for _, u := range []string{"http://seller.example/hook", "http://10.0.0.8/hook", "http://[2001:db8::1]/hook"} {
		if _, err := NewWebhook(u, secret, nil); err == nil || !strings.Contains(err.Error(), "https") {
			t.Errorf("%s: %v", u, err)
		}
	}
	for _, u := range []string{"https://seller.example/hook", "http://127.0.0.1:9/hook", "http://localhost:9/hook", "http://[::1]:9/hook"} {
		if _, err := NewWebhook(u, secret, nil); err != nil {
			t.Errorf("%s: %v", u, err)
		}
	}
	var followed atomic.Int32
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { followed.Add(1) }))
	defer target.Close()
	redirect := httptest.NewServer(http.RedirectHandler(target.URL, http.StatusTemporaryRedirect))
	defer redirect.Close()
	wh, err := NewWebhook(redirect.URL, secret, redirect.Client())
	if err != nil {
		t.Fatal(err)
	}
	_, err = wh.Apply(context.Background(), event(Create))
	if err == nil || Retryable(err) || !strings.Contains(err.Error(), "redirect") || followed.Load() != 0 {
		t.Fatalf("redirect: %v (followed %d times)", err, followed.Load())
	}
}

// TestWebhookAgainstReceiver drives the webhook over real HTTP into the reference receiver: events arrive signed,
// a repeated EventID is applied once and answered the same.
func TestWebhookAgainstReceiver(t *testing.T) {
	var applied atomic.Int32
	recv := NewReceiver(secret, time.Minute, func(ctx context.Context, e Event) (Result, error) {
		applied.Add(1)
		if e.Type == Create {
			return Result{AppInfo: &AppInfo{FrontEndURL: "https://crm.example/" + e.InstanceID, UserName: "admin", Password: "pw-" + e.EventID}}, nil
		}
		return Result{}, nil
	})
	srv := httptest.NewServer(recv)
	defer srv.Close()
	wh, err := NewWebhook(srv.URL, secret, srv.Client())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	res, err := wh.Apply(ctx, event(Create))
	if err != nil {
		t.Fatal(err)
	}
	if res.AppInfo == nil || res.AppInfo.FrontEndURL != "https://crm.example/i1" {
		t.Fatalf("appInfo %+v", res.AppInfo)
	}
	again, err := wh.Apply(ctx, event(Create))
	if err != nil || again.AppInfo.Password != res.AppInfo.Password {
		t.Fatalf("repeat answered %+v, %v", again.AppInfo, err)
	}
	for _, k := range []Kind{Freeze, Unfreeze, Upgrade, Release} {
		if _, err := wh.Apply(ctx, event(k)); err != nil {
			t.Fatalf("%s: %v", k, err)
		}
	}
	if n := applied.Load(); n != 5 {
		t.Fatalf("applied %d times, want 5 (create once, then four other events)", n)
	}

	// A wrongly signed delivery is refused by the receiver, and the sender classifies that as needing a person.
	bad, _ := NewWebhook(srv.URL, "not-the-right-secret-000", srv.Client())
	_, err = bad.Apply(ctx, event(Freeze))
	var pe *Error
	if !errors.As(err, &pe) || pe.Retryable || !strings.Contains(pe.Reason, "401") {
		t.Fatalf("bad signature: %v", err)
	}
}

func TestWebhookClassifiesAnswers(t *testing.T) {
	tests := []struct {
		name      string
		status    int
		body      string
		retryable bool
		ok        bool
		contains  string
	}{
		{"done without body", 204, "", false, true, ""},
		{"done with appInfo", 200, `{"appInfo":{"frontEndUrl":"https://x"}}`, false, true, ""},
		{"appInfo without url", 200, `{"appInfo":{"userName":"a"}}`, false, false, "frontEndUrl"},
		{"not json", 200, `<html>`, false, false, "not the expected JSON"},
		{"server error", 500, `{"error":"db down"}`, true, false, "db down"},
		{"unavailable", 503, ``, true, false, "503"},
		{"throttled", 429, ``, true, false, "429"},
		{"timeout", 408, ``, true, false, "408"},
		{"refused", 422, `{"error":"tenant name already taken"}`, false, false, "tenant name already taken"},
		{"not found", 404, `no such route`, false, false, "no such route"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(tc.status)
				_, _ = w.Write([]byte(tc.body))
			}))
			defer srv.Close()
			wh, _ := NewWebhook(srv.URL, secret, srv.Client())
			_, err := wh.Apply(context.Background(), event(Create))
			if tc.ok {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			var pe *Error
			if !errors.As(err, &pe) || pe.Retryable != tc.retryable || !strings.Contains(err.Error(), tc.contains) {
				t.Fatalf("err = %v (retryable %v), want retryable=%v containing %q", err, Retryable(err), tc.retryable, tc.contains)
			}
		})
	}
	t.Run("unreachable", func(t *testing.T) {
		srv := httptest.NewServer(http.NotFoundHandler())
		url := srv.URL
		srv.Close()
		wh, _ := NewWebhook(url, secret, nil)
		_, err := wh.Apply(context.Background(), event(Freeze))
		if err == nil || !Retryable(err) {
			t.Fatalf("unreachable endpoint: %v", err)
		}
	})
}

// TestWebhookRefusalCodes: a 4xx refusal carries the KooGallery newInstance code the endpoint named (000100–000107),
// 000104 when it named none or another value; temporary failures and kooflow's own failures are no refusal.
func TestWebhookRefusalCodes(t *testing.T) {
	tests := []struct {
		name    string
		status  int
		body    string
		refused bool
		code    string
		message string
	}{
		{"named code", 400, `{"error":"no capacity in region","resultCode":"000107"}`, true, "000107", "no capacity in region"},
		{"lowest code", 409, `{"error":"already purchased","resultCode":"000100"}`, true, "000100", "already purchased"},
		{"no code", 422, `{"error":"tenant name taken"}`, true, "000104", "tenant name taken"},
		{"code outside the range", 400, `{"error":"x","resultCode":"000108"}`, true, "000104", "x"},
		{"a success code is no refusal code", 400, `{"error":"x","resultCode":"000000"}`, true, "000104", "x"},
		{"plain text", 403, `forbidden`, true, "000104", "forbidden"},
		{"temporary", 503, `{"error":"busy","resultCode":"000107"}`, false, "", ""},
		{"kooflow's own failure", 200, `{"appInfo":{"userName":"a"}}`, false, "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(tc.status)
				_, _ = w.Write([]byte(tc.body))
			}))
			defer srv.Close()
			wh, _ := NewWebhook(srv.URL, secret, srv.Client())
			_, err := wh.Apply(context.Background(), event(Create))
			if err == nil {
				t.Fatal("no error")
			}
			code, msg, refused := RefusalCode(err)
			if refused != tc.refused || code != tc.code || msg != tc.message {
				t.Fatalf("RefusalCode = %q %q %v, want %q %q %v", code, msg, refused, tc.code, tc.message, tc.refused)
			}
		})
	}
	// The reference receiver passes an apply error's code on.
	recv := NewReceiver(secret, time.Minute, func(ctx context.Context, e Event) (Result, error) {
		return Result{}, &Error{Reason: "sold out", ResultCode: "000102"}
	})
	srv := httptest.NewServer(recv)
	defer srv.Close()
	wh, _ := NewWebhook(srv.URL, secret, srv.Client())
	_, err := wh.Apply(context.Background(), event(Create))
	if code, msg, refused := RefusalCode(err); !refused || code != "000102" || msg != "sold out" {
		t.Fatalf("through the receiver: %q %q %v (%v)", code, msg, refused, err)
	}
}

func TestNewWebhookValidates(t *testing.T) {
	if _, err := NewWebhook("ftp://x", secret, nil); err == nil {
		t.Error("ftp URL accepted")
	}
	if _, err := NewWebhook("http://127.0.0.1:1/p", "short", nil); err == nil {
		t.Error("short secret accepted")
	}
	if _, err := (&Webhook{}).Apply(context.Background(), Event{}); err == nil || Retryable(err) {
		t.Errorf("invalid event: %v", err)
	}
}

func TestBuiltin(t *testing.T) {
	b := NewBuiltin("")
	res, err := b.Apply(context.Background(), event(Create))
	if err != nil {
		t.Fatal(err)
	}
	a := res.AppInfo
	if a == nil || a.FrontEndURL != DefaultBuiltinURL+"/t/i1/" || a.UserName != "admin" || len(a.Password) != 16 {
		t.Fatalf("appInfo %+v", a)
	}
	if err := a.Validate(); err != nil {
		t.Fatal(err)
	}
	other, _ := b.Apply(context.Background(), event(Create))
	if other.AppInfo.Password == a.Password {
		t.Fatal("two passwords are equal")
	}
	for _, k := range []Kind{Freeze, Unfreeze, Upgrade, Release} {
		res, err := b.Apply(context.Background(), event(k))
		if err != nil || res.AppInfo != nil {
			t.Fatalf("%s: %+v %v", k, res, err)
		}
	}
	dial := event(Create)
	dial.TestFlag = true
	res, _ = b.Apply(context.Background(), dial)
	if !strings.Contains(res.AppInfo.Memo, "Dial test") {
		t.Fatalf("dial test memo %q", res.AppInfo.Memo)
	}
	if _, err := b.Apply(context.Background(), Event{EventID: "x", Type: "explode", InstanceID: "i"}); err == nil || Retryable(err) {
		t.Fatalf("unknown kind: %v", err)
	}
}
