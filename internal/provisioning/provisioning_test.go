package provisioning

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
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

func TestSignAndVerify(t *testing.T) {
	body := []byte(`{"eventId":"e1"}`)
	now := time.UnixMilli(1767225600000)
	ts := strconv.FormatInt(now.UnixMilli(), 10)
	sig := Sign([]byte(secret), ts, body)
	if !strings.HasPrefix(sig, "v1=") || len(sig) != 3+64 {
		t.Fatalf("signature %q", sig)
	}
	h := http.Header{}
	h.Set(HeaderTimestamp, ts)
	h.Set(HeaderSignature, sig)
	if err := Verify([]byte(secret), h, body, now.Add(time.Minute), 5*time.Minute); err != nil {
		t.Fatalf("valid delivery refused: %v", err)
	}
	h.Set(HeaderSignature, strings.ToUpper(sig[:3])+strings.ToUpper(sig[3:]))
	if err := Verify([]byte(secret), h, body, now, time.Minute); err != nil {
		t.Fatalf("upper-case hex refused: %v", err)
	}
	h.Set(HeaderSignature, sig)
	for name, check := range map[string]func() error{
		"tampered body": func() error { return Verify([]byte(secret), h, []byte(`{"eventId":"e2"}`), now, time.Minute) },
		"wrong secret":  func() error { return Verify([]byte("another-secret-0123456"), h, body, now, time.Minute) },
		"stale":         func() error { return Verify([]byte(secret), h, body, now.Add(10*time.Minute), 5*time.Minute) },
		"future":        func() error { return Verify([]byte(secret), h, body, now.Add(-10*time.Minute), 5*time.Minute) },
	} {
		if check() == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	h.Set(HeaderTimestamp, "yesterday")
	if Verify([]byte(secret), h, body, now, time.Minute) == nil {
		t.Error("non-numeric timestamp accepted")
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
