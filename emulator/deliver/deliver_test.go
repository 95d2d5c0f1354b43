package deliver

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kooflow/kooflow/emulator/clock"
	"github.com/kooflow/kooflow/emulator/sign"
)

const key = "deliver-test-access-key"

// testSeller is a minimal seller for unit tests: it checks the V2 signature and freshness like a real seller
// must, and answers through a pluggable function with a Body-Sign header.
type testSeller struct {
	mu       sync.Mutex
	bodies   []map[string]string
	nonces   map[string]bool
	answer   func(body map[string]string) (code string, extra map[string]any)
	badSign  bool
	window   time.Duration
	requests int
}

func (s *testSeller) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	raw, _ := io.ReadAll(r.Body)
	q := r.URL.Query()
	reply := func(v map[string]any) {
		b, _ := json.Marshal(v)
		h := sign.BodySignHeader(key, b)
		if s.badSign {
			h = sign.BodySignHeader("not-the-key", b)
		}
		w.Header().Set("Body-Sign", h)
		_, _ = w.Write(b)
	}
	s.mu.Lock()
	s.requests++
	s.mu.Unlock()
	want, err := sign.RequestSignature(key, raw, q.Get("nonce"), q.Get("timestamp"))
	ms, _ := strconv.ParseInt(q.Get("timestamp"), 10, 64)
	if err != nil || !strings.EqualFold(want, q.Get("signature")) || time.Since(time.UnixMilli(ms)) > s.window {
		reply(map[string]any{"resultCode": CodeAuth, "resultMsg": "authentication failed"})
		return
	}
	var body map[string]string
	_ = json.Unmarshal(raw, &body)
	s.mu.Lock()
	if s.nonces == nil {
		s.nonces = map[string]bool{}
	}
	if s.nonces[q.Get("nonce")] {
		s.mu.Unlock()
		reply(map[string]any{"resultCode": CodeAuth, "resultMsg": "nonce reused"})
		return
	}
	s.nonces[q.Get("nonce")] = true
	s.bodies = append(s.bodies, body)
	s.mu.Unlock()
	code, extra := s.answer(body)
	out := map[string]any{"resultCode": code, "resultMsg": "x"}
	for k, v := range extra {
		out[k] = v
	}
	reply(out)
}

func setup(t *testing.T, s *testSeller) *Dispatcher {
	t.Helper()
	if s.window == 0 {
		s.window = 60 * time.Second
	}
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	c := NewClient(srv.URL+"/koogallery/v2", key)
	d := NewDispatcher(c, clock.New(time.Now(), 3600*100), 1) // an hour is 10 ms
	d.MinGap = 0
	return d
}

func newInstanceMsg() Message {
	return Message{Activity: NewInstance, OrderID: "CS1", Fields: []Field{
		{"orderId", "CS1"}, {"orderLineId", "CS1-000001"}, {"businessId", ""}}}
}

func TestDeliverSignsEveryDeliveryAfresh(t *testing.T) {
	s := &testSeller{answer: func(map[string]string) (string, map[string]any) {
		return CodeInProgress, map[string]any{"instanceId": "i-1"}
	}}
	d := setup(t, s)
	d.SetFaults(Faults{Duplicate: 1, MaxCopies: 3})
	out, err := d.Deliver(context.Background(), newInstanceMsg())
	if err != nil || !out.Delivered || out.Final.InstanceID != "i-1" {
		t.Fatalf("%+v %v", out, err)
	}
	st := d.Stats()
	if st.Copies < 1 || st.Copies > 3 || st.Deliveries != 1+st.Copies || len(s.bodies) != st.Deliveries {
		t.Fatalf("stats %+v, seller saw %d", st, len(s.bodies))
	}
	ids := map[string]bool{}
	for _, b := range s.bodies {
		if b["activity"] != NewInstance || b["orderId"] != "CS1" || b["testFlag"] != "0" {
			t.Fatalf("body %v", b)
		}
		ids[b["businessId"]] = true
	}
	if len(ids) != len(s.bodies) {
		t.Fatal("businessId repeated across deliveries")
	}
	// The seller's nonce check passed for every copy, so every delivery had its own nonce.
}

func TestDeliverRetriesPerPolicyThenGivesUp(t *testing.T) {
	s := &testSeller{answer: func(map[string]string) (string, map[string]any) { return CodeInternal, nil }}
	d := setup(t, s)
	out, err := d.Deliver(context.Background(), newInstanceMsg())
	if err != nil {
		t.Fatal(err)
	}
	if out.Delivered || !out.GaveUp || out.Attempts != 4 {
		t.Fatalf("newInstance: %+v (want 4 attempts over 3 hours, then give up)", out)
	}
	out, _ = d.Deliver(context.Background(), Message{Activity: ReleaseInstance, InstanceID: "i", Fields: []Field{{"instanceId", "i"}}})
	if out.Attempts != 7 || !out.GaveUp {
		t.Fatalf("releaseInstance: %+v (want 7 attempts over an hour)", out)
	}
	if st := d.Stats(); st.Retries != 3+6 || st.GaveUp != 2 {
		t.Fatalf("stats %+v", st)
	}
}

func TestBadBodySignIsAFailedDelivery(t *testing.T) {
	s := &testSeller{badSign: true, answer: func(map[string]string) (string, map[string]any) { return CodeSuccess, nil }}
	d := setup(t, s)
	out, _ := d.Deliver(context.Background(), Message{Activity: UpdateInstanceStatus, InstanceID: "i",
		Fields: []Field{{"instanceId", "i"}, {"status", "FREEZE"}}})
	if out.Delivered || out.Attempts != 13 || !out.Final.BadBodySign {
		t.Fatalf("%+v", out)
	}
	if st := d.Stats(); st.BadBodySign != 13 || len(d.Violations()) != 13 {
		t.Fatalf("stats %+v", st)
	}
}

func TestFaultsNeverSpendTheLastAttempt(t *testing.T) {
	s := &testSeller{answer: func(map[string]string) (string, map[string]any) { return CodeSuccess, nil }}
	d := setup(t, s)
	d.SetFaults(Faults{DropResponse: 1})
	out, _ := d.Deliver(context.Background(), Message{Activity: RefreshInstance, InstanceID: "i", Fields: []Field{{"instanceId", "i"}}})
	if !out.Delivered || out.Attempts != 7 {
		t.Fatalf("dropped responses: %+v", out)
	}
	if len(s.bodies) != 7 {
		t.Fatalf("the seller saw %d deliveries, want 7 (each dropped answer is resent)", len(s.bodies))
	}
	d.SetFaults(Faults{Delay: 1, DelayBy: 2 * time.Minute})
	out, _ = d.Deliver(context.Background(), Message{Activity: UpgradeInstance, InstanceID: "i", Fields: []Field{{"instanceId", "i"}}})
	if !out.Delivered || out.Attempts != 4 {
		t.Fatalf("delayed deliveries: %+v", out)
	}
	if st := d.Stats(); st.Delayed != 3 || st.ResultCodes[CodeAuth] != 3 {
		t.Fatalf("stats %+v", st)
	}
	if v := d.Violations(); len(v) != 0 {
		t.Fatalf("a seller that refuses stale deliveries was flagged: %+v", v)
	}
}

func TestStaleDeliveryAcceptedIsAViolation(t *testing.T) {
	s := &testSeller{window: time.Hour, answer: func(map[string]string) (string, map[string]any) { return CodeSuccess, nil }}
	d := setup(t, s)
	d.SetFaults(Faults{Delay: 1, DelayBy: 2 * time.Minute})
	out, _ := d.Deliver(context.Background(), Message{Activity: ReleaseInstance, InstanceID: "i", Fields: []Field{{"instanceId", "i"}}})
	if !out.Delivered || out.Attempts != 1 {
		t.Fatalf("%+v", out)
	}
	if v := d.Violations(); len(v) != 1 || !strings.Contains(v[0].What, "signed 2m0s before") {
		t.Fatalf("violations %+v", v)
	}
}

func TestUndeliverableNeverReachesTheSeller(t *testing.T) {
	s := &testSeller{answer: func(map[string]string) (string, map[string]any) { return CodeSuccess, nil }}
	d := setup(t, s)
	m := newInstanceMsg()
	m.Undeliverable = true
	out, _ := d.Deliver(context.Background(), m)
	if out.Delivered || !out.GaveUp || out.Attempts != 4 || s.requests != 0 {
		t.Fatalf("%+v, seller saw %d", out, s.requests)
	}
}

func TestBodyShapes(t *testing.T) {
	m := Message{Activity: ChangeInstanceCheck, TestFlag: true, Fields: []Field{{"instanceId", "i<1>"},
		{"productInfo", map[string]any{"skuCode": "s", "productId": "p", "linearValue": 3}}}}
	want := `{"activity":"changeInstanceCheck","instanceId":"i<1>","productInfo":{"linearValue":3,"productId":"p","skuCode":"s"},"testFlag":"1"}`
	if got := string(m.Body()); got != want {
		t.Fatalf("body %s\nwant %s", got, want)
	}
	m = Message{Activity: ReleaseInstance, OmitTestFlag: true, Fields: []Field{{"instanceId", "i"}}}
	if got := string(m.Body()); got != `{"activity":"releaseInstance","instanceId":"i"}` {
		t.Fatalf("body %s", got)
	}
}

func TestLatencySummary(t *testing.T) {
	var ls []time.Duration
	for i := 1; i <= 100; i++ {
		ls = append(ls, time.Duration(i)*time.Millisecond)
	}
	s := summarize(ls)
	if s.P50 != 50*time.Millisecond || s.P99 != 99*time.Millisecond || s.Max != 100*time.Millisecond || s.Count != 100 {
		t.Fatalf("%+v", s)
	}
}
