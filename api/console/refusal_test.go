package console_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kooflow/kooflow/api/console"
	"github.com/kooflow/kooflow/internal/config"
	"github.com/kooflow/kooflow/internal/instance"
	"github.com/kooflow/kooflow/internal/provisioning"
	"github.com/kooflow/kooflow/internal/testenv"
)

// TestRefusedPurchaseReachesTheMarketplace: the seller's provisioning endpoint refuses a purchase permanently with
// a KooGallery newInstance code; through the real API and worker, queryInstance and a newInstance retry answer
// that code with the endpoint's reason instead of 000004, the instance parks with a purchase-refused alert, and
// the message log records the calls as failed. An operator's resume tries again: while the endpoint still refuses
// (now without a code) the answer is 000104; once it provisions, the answers are 000000 with appInfo and the
// alert is resolved.
func TestRefusedPurchaseReachesTheMarketplace(t *testing.T) {
	const secret = "refusal-webhook-secret-0123456"
	var mode atomic.Value
	mode.Store("refuse-coded")
	var deliveries atomic.Int32
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if err := provisioning.Verify([][]byte{[]byte(secret)}, r.Header, body, time.Now(), time.Minute); err != nil {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		deliveries.Add(1)
		w.Header().Set("Content-Type", "application/json")
		switch mode.Load().(string) {
		case "refuse-coded":
			w.WriteHeader(http.StatusBadRequest)
			_, _ = io.WriteString(w, `{"error":"no capacity left in region cn-north-4","resultCode":"000107"}`)
		case "refuse":
			w.WriteHeader(http.StatusUnprocessableEntity)
			_, _ = io.WriteString(w, `{"error":"tenant name already taken"}`)
		default:
			_, _ = io.WriteString(w, `{"appInfo":{"frontEndUrl":"https://seller.example/`+r.Header.Get(provisioning.HeaderEventID)+`"}}`)
		}
	}))
	t.Cleanup(hook.Close)
	s := newStack(t, func(c *config.Config) { c.ProvisionerURL, c.ProvisionerSecret = hook.URL, config.Secret(secret) })
	orderID := testenv.Unique("RFS")
	line := s.order(orderID, "NEW", "OFFI-NOT-IN-CATALOG", "x-1", 1, "10", time.Now().UTC().AddDate(0, 1, 0))
	id := s.newInstance(orderID, line)
	path := "/instances/" + id
	query := func() (code, msg string) {
		r := s.mp(map[string]any{"activity": "queryInstance", "instanceId": id})
		return r.ResultCode, r.ResultMsg
	}
	retry := func() (code, msg string) {
		r := s.mp(map[string]any{"activity": "newInstance", "orderId": orderID, "orderLineId": line, "businessId": testenv.Unique("biz")})
		if r.InstanceID != id {
			t.Fatalf("newInstance retry answered instanceId %q", r.InstanceID)
		}
		return r.ResultCode, r.ResultMsg
	}
	refusedAlert := func(d console.InstanceDetail) (open, total int) {
		for _, a := range d.Alerts {
			if a.Kind == "purchase-refused" {
				total++
				if a.ResolvedAt == nil {
					open++
				}
			}
		}
		return open, total
	}

	d := s.waitFor(id, "the refusal", func(d console.InstanceDetail) bool { open, _ := refusedAlert(d); return d.Parked && open == 1 })
	if !strings.Contains(d.ParkedReason, "no capacity left in region cn-north-4") {
		t.Fatalf("parked reason %q", d.ParkedReason)
	}
	for _, a := range d.Alerts {
		if a.Kind == "purchase-refused" && (!strings.Contains(a.Message, "000107") || !strings.Contains(string(a.Detail), `"resultCode":"000107"`)) {
			t.Fatalf("alert %+v", a)
		}
	}
	for name, call := range map[string]func() (string, string){"queryInstance": query, "newInstance retry": retry} {
		if code, msg := call(); code != "000107" || !strings.Contains(msg, "no capacity left in region cn-north-4") {
			t.Fatalf("%s while refused: %s %q", name, code, msg)
		}
	}
	var msgs struct {
		Items []struct {
			Activity   string `json:"activity"`
			ResultCode string `json:"resultCode"`
			Failed     bool   `json:"failed"`
		} `json:"items"`
	}
	s.do(http.MethodGet, "/koogallery/messages?resultCode=000107", nil, &msgs)
	failed := 0
	for _, m := range msgs.Items {
		if m.ResultCode == "000107" {
			failed++
			if !m.Failed {
				t.Fatalf("message %+v not marked failed", m)
			}
		}
	}
	if failed != 2 {
		t.Fatalf("message log: %d calls answered 000107, want 2: %+v", failed, msgs.Items)
	}

	// Resume while the endpoint still refuses, now without a code: 000104.
	mode.Store("refuse")
	var res instance.OperatorResult
	if code, p := s.do(http.MethodPost, path+"/operator", console.OperatorBody{Action: "resume", Note: "capacity added"}, &res); code != http.StatusOK {
		t.Fatalf("resume: %d %s", code, p.Detail)
	}
	s.waitFor(id, "the second parking", func(d console.InstanceDetail) bool { return d.Parked && len(d.Parkings) == 2 })
	if code, msg := query(); code != "000104" || !strings.Contains(msg, "tenant name already taken") {
		t.Fatalf("queryInstance after a refusal without a code: %s %q", code, msg)
	}

	// Fixed: the resume provisions; the marketplace hears success with appInfo, the alert is resolved.
	mode.Store("ok")
	if code, p := s.do(http.MethodPost, path+"/operator", console.OperatorBody{Action: "resume", Note: "name freed"}, &res); code != http.StatusOK {
		t.Fatalf("second resume: %d %s", code, p.Detail)
	}
	d = s.waitFor(id, "provisioning after the resume", func(d console.InstanceDetail) bool { return d.Lifecycle == "ACTIVE" && !d.Parked })
	if open, total := refusedAlert(d); open != 0 || total != 1 {
		t.Fatalf("purchase-refused alerts: %d open of %d", open, total)
	}
	r := s.mp(map[string]any{"activity": "queryInstance", "instanceId": id})
	if r.ResultCode != "000000" || len(r.Info) != 1 || r.Info[0].AppInfo == nil || !strings.HasPrefix(r.Info[0].AppInfo.FrontEndURL, "https://seller.example/") {
		t.Fatalf("queryInstance after provisioning: %+v", r)
	}
	if code, _ := retry(); code != "000000" {
		t.Fatalf("newInstance retry after provisioning: %s", code)
	}
	if n := deliveries.Load(); n != 3 {
		t.Fatalf("%d deliveries to the endpoint, want 3 (refused, refused, provisioned)", n)
	}
}
