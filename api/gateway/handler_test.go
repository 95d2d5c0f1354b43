package gateway

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/kooflow/kooflow/api/httpx"
	"github.com/kooflow/kooflow/internal/app"
	"github.com/kooflow/kooflow/internal/config"
	"github.com/kooflow/kooflow/internal/instance"
	"github.com/kooflow/kooflow/internal/koogallery"
	"github.com/kooflow/kooflow/internal/refusal"
	"github.com/kooflow/kooflow/internal/store"
)

// These tests drive the handler over real HTTP with in-memory stand-ins for the replay cache, the message log
// and the backend, to cover every activity, result code and error path quickly. The same handler against
// PostgreSQL and Temporal is tested in integration_test.go.

const testKey = "gateway-test-access-key"

type memNonces struct {
	mu   sync.Mutex
	seen map[string]bool
	err  error
}

func (m *memNonces) ClaimNonce(_ context.Context, nonce string, _ time.Time) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.err != nil {
		return false, m.err
	}
	if m.seen == nil {
		m.seen = map[string]bool{}
	}
	if m.seen[nonce] {
		return false, nil
	}
	m.seen[nonce] = true
	return true, nil
}

type memLog struct {
	mu   sync.Mutex
	msgs []*store.Message
	err  error
}

func (m *memLog) AppendMessage(_ context.Context, msg *store.Message) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.err != nil {
		return m.err
	}
	msg.ID = int64(len(m.msgs) + 1)
	m.msgs = append(m.msgs, msg)
	return nil
}

func (m *memLog) last(t *testing.T) *store.Message {
	t.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.msgs) == 0 {
		t.Fatal("nothing in the message log")
	}
	return m.msgs[len(m.msgs)-1]
}

// call records one backend invocation.
type call struct {
	method     string
	instanceID string
	deliveryID string
	arg        any
}

type fakeBackend struct {
	mu    sync.Mutex
	calls []call
	// err, result and views decide the answer; block makes every call wait for its context.
	err         error
	provisioned bool
	change      instance.ChangeCheckResult
	views       []InstanceView
	block       bool
}

func (f *fakeBackend) record(ctx context.Context, c call) error {
	f.mu.Lock()
	f.calls = append(f.calls, c)
	f.mu.Unlock()
	if f.block {
		<-ctx.Done()
		return ctx.Err()
	}
	return f.err
}

func (f *fakeBackend) NewInstance(ctx context.Context, c NewInstanceCall) (NewInstanceOutcome, error) {
	if err := f.record(ctx, call{method: "newInstance", arg: c}); err != nil {
		return NewInstanceOutcome{}, err
	}
	return NewInstanceOutcome{Result: instance.NewInstanceResult{InstanceID: instance.ID(c.OrderID, c.OrderLineID), Provisioned: f.provisioned}}, nil
}
func (f *fakeBackend) Refresh(ctx context.Context, id string, r instance.RefreshRequest) error {
	return f.record(ctx, call{method: "refresh", instanceID: id, arg: r})
}
func (f *fakeBackend) UpdateStatus(ctx context.Context, id, delivery string, r instance.StatusRequest) error {
	return f.record(ctx, call{method: "status", instanceID: id, deliveryID: delivery, arg: r})
}
func (f *fakeBackend) Release(ctx context.Context, id string, r instance.ReleaseRequest) error {
	return f.record(ctx, call{method: "release", instanceID: id, arg: r})
}
func (f *fakeBackend) Upgrade(ctx context.Context, id string, r instance.UpgradeRequest) error {
	return f.record(ctx, call{method: "upgrade", instanceID: id, arg: r})
}
func (f *fakeBackend) ChangeCheck(ctx context.Context, id string, r instance.ChangeCheckRequest) (instance.ChangeCheckResult, error) {
	err := f.record(ctx, call{method: "changeCheck", instanceID: id, arg: r})
	return f.change, err
}
func (f *fakeBackend) QueryInstances(ctx context.Context, ids []string) ([]InstanceView, error) {
	err := f.record(ctx, call{method: "query", arg: ids})
	return f.views, err
}

func (f *fakeBackend) only(t *testing.T) call {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.calls) != 1 {
		t.Fatalf("backend called %d times, want once: %+v", len(f.calls), f.calls)
	}
	return f.calls[0]
}

func (f *fakeBackend) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.calls)
}

type rig struct {
	srv     *httptest.Server
	h       *Handler
	nonces  *memNonces
	log     *memLog
	backend *fakeBackend
}

func newRig(t *testing.T) *rig {
	t.Helper()
	rg := &rig{nonces: &memNonces{}, log: &memLog{}, backend: &fakeBackend{}}
	rg.h = &Handler{
		AccessKey: testKey,
		Verifier:  koogallery.Verifier{AccessKey: testKey, Window: time.Minute},
		Deadline:  4 * time.Second,
		Nonces:    rg.nonces, Messages: rg.log, Backend: rg.backend,
	}
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	r.ContextWithFallback = true
	r.Use(httpx.RequestContext(slog.New(slog.NewTextHandler(io.Discard, nil))))
	r.POST("/koogallery/v2", rg.h.Serve)
	rg.srv = httptest.NewServer(r)
	t.Cleanup(rg.srv.Close)
	return rg
}

// answer is a decoded, signature-checked response.
type reply struct {
	status int
	raw    []byte
	resp   koogallery.Response
}

// post sends body signed now with a fresh nonce.
func (rg *rig) post(t *testing.T, body string) reply {
	t.Helper()
	q, err := koogallery.SignQuery(testKey, []byte(body), time.Now(), koogallery.NewNonce())
	if err != nil {
		// Not a JSON object: sign the raw bytes, so only the body's shape is wrong.
		ts, nonce := strconv.FormatInt(time.Now().UnixMilli(), 10), koogallery.NewNonce()
		q = url.Values{"signature": {koogallery.RequestSignature(testKey, []byte(body), nonce, ts)}, "timestamp": {ts}, "nonce": {nonce}}
	}
	return rg.postQuery(t, q.Encode(), []byte(body))
}

func (rg *rig) postQuery(t *testing.T, query string, body []byte) reply {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, rg.srv.URL+"/koogallery/v2?"+query, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json;charset=utf8")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if want := koogallery.BodySignHeader(testKey, raw); resp.Header.Get("Body-Sign") != want {
		t.Fatalf("Body-Sign = %q, want %q over %s", resp.Header.Get("Body-Sign"), want, raw)
	}
	for _, c := range raw {
		if c >= 0x80 {
			t.Fatalf("non-ASCII byte in the response %s", raw)
		}
	}
	var r koogallery.Response
	if err := json.Unmarshal(raw, &r); err != nil {
		t.Fatalf("response %s: %v", raw, err)
	}
	return reply{status: resp.StatusCode, raw: raw, resp: r}
}

func (r reply) expect(t *testing.T, code string) {
	t.Helper()
	if r.status != http.StatusOK {
		t.Fatalf("HTTP %d, want 200 (%s)", r.status, r.raw)
	}
	if r.resp.ResultCode != code {
		t.Fatalf("resultCode %s (%s), want %s", r.resp.ResultCode, r.resp.ResultMsg, code)
	}
	if r.resp.ResultMsg == "" {
		t.Fatalf("empty resultMsg in %s", r.raw)
	}
}

var frozenRefusal = refusal.New("000005", "the instance is frozen; renew it before upgrading").Temporal()

func TestActivities(t *testing.T) {
	iid := instance.ID("O1", "O1-000001")
	exp := time.Date(2027, 1, 31, 15, 59, 59, 0, time.UTC)
	cases := []struct {
		name    string
		body    string
		setup   func(*fakeBackend)
		code    string
		msg     string // substring of resultMsg
		check   func(t *testing.T, c call, r reply)
		noCalls bool
	}{
		{name: "newInstance accepted", code: "000004",
			body: `{"activity":"newInstance","orderId":"O1","orderLineId":"O1-000001","businessId":"B1"}`,
			check: func(t *testing.T, c call, r reply) {
				in := c.arg.(NewInstanceCall)
				if in.OrderID != "O1" || in.OrderLineID != "O1-000001" || in.BusinessID != "B1" || in.TestFlag {
					t.Fatalf("call %+v", in)
				}
				if r.resp.InstanceID != iid {
					t.Fatalf("instanceId %q, want %q", r.resp.InstanceID, iid)
				}
			}},
		{name: "newInstance provisioned synchronously", code: "000000", setup: func(f *fakeBackend) { f.provisioned = true },
			body: `{"activity":"newInstance","orderId":"O1","orderLineId":"O1-000001","businessId":"B1","testFlag":"1"}`,
			check: func(t *testing.T, c call, r reply) {
				if !c.arg.(NewInstanceCall).TestFlag || r.resp.InstanceID != iid {
					t.Fatalf("call %+v reply %s", c.arg, r.raw)
				}
			}},
		{name: "newInstance internal failure", code: "000005", setup: func(f *fakeBackend) { f.err = errors.New("temporal down") },
			body: `{"activity":"newInstance","orderId":"O1","orderLineId":"O1-000001","businessId":"B1"}`,
			check: func(t *testing.T, _ call, r reply) {
				if r.resp.InstanceID != "" || strings.Contains(r.resp.ResultMsg, "temporal down") {
					t.Fatalf("internal failure leaked or half answered: %s", r.raw)
				}
			}},
		{name: "newInstance missing orderLineId", code: "000002", msg: "orderLineId", noCalls: true,
			body: `{"activity":"newInstance","orderId":"O1","businessId":"B1"}`},

		{name: "queryInstance with appInfo", code: "000000",
			setup: func(f *fakeBackend) {
				f.views = []InstanceView{{InstanceID: "i-2", Lifecycle: instance.LifecycleActive,
					AppInfo: &koogallery.AppInfo{FrontEndURL: "https://app.example/t/1", UserName: "admin", Password: "pw", Memo: "中文说明"}},
					{InstanceID: "i-1", Lifecycle: instance.LifecycleActive}}
			},
			body: `{"activity":"queryInstance","instanceId":"i-1,i-2,i-3"}`,
			check: func(t *testing.T, c call, r reply) {
				if ids := c.arg.([]string); strings.Join(ids, ",") != "i-1,i-2,i-3" {
					t.Fatalf("asked for %v", ids)
				}
				if len(r.resp.Info) != 2 || r.resp.Info[0].InstanceID != "i-1" || r.resp.Info[1].AppInfo.Memo != "中文说明" {
					t.Fatalf("info %s", r.raw)
				}
				if !bytes.Contains(r.raw, []byte(`"memo":"\u4e2d\u6587\u8bf4\u660e"`)) {
					t.Fatalf("memo not escaped as \\uXXXX: %s", r.raw)
				}
			}},
		{name: "queryInstance still provisioning", code: "000004",
			setup: func(f *fakeBackend) {
				f.views = []InstanceView{{InstanceID: "i-1", Lifecycle: instance.LifecycleProvisioning}}
			},
			body: `{"activity":"queryInstance","instanceId":"i-1"}`},
		{name: "queryInstance none exist", code: "000003",
			body: `{"activity":"queryInstance","instanceId":"i-1,i-2"}`},
		{name: "queryInstance of a released instance", code: "000003",
			setup: func(f *fakeBackend) {
				f.views = []InstanceView{{InstanceID: "i-1", Lifecycle: instance.LifecycleReleased}}
			},
			body: `{"activity":"queryInstance","instanceId":"i-1"}`},
		{name: "queryInstance read model down", code: "000005", setup: func(f *fakeBackend) { f.err = errors.New("pg down") },
			body: `{"activity":"queryInstance","instanceId":"i-1"}`},

		{name: "refresh RENEWAL", code: "000000",
			body: `{"activity":"refreshInstance","scene":"RENEWAL","orderId":"R1","orderLineId":"R1-000001","instanceId":"i-1","expireTime":"20270131155959"}`,
			check: func(t *testing.T, c call, _ reply) {
				r := c.arg.(instance.RefreshRequest)
				if c.instanceID != "i-1" || r.Scene != "RENEWAL" || r.OrderID != "R1" || !r.ExpireTime.Equal(exp) {
					t.Fatalf("call %+v", c)
				}
			}},
		{name: "refresh TRIAL_TO_FORMAL with productId and 17-digit time", code: "000000",
			body: `{"activity":"refreshInstance","scene":"TRIAL_TO_FORMAL","orderId":"R1","orderLineId":"R1-000001","instanceId":"i-1","productId":"P9","expireTime":"20270131155959000"}`,
			check: func(t *testing.T, c call, _ reply) {
				r := c.arg.(instance.RefreshRequest)
				if r.Scene != "TRIAL_TO_FORMAL" || r.ProductID != "P9" || !r.ExpireTime.Equal(exp) {
					t.Fatalf("call %+v", r)
				}
			}},
		{name: "refresh UNSUBSCRIBE_RENEWAL_PERIOD", code: "000000",
			body: `{"activity":"refreshInstance","scene":"UNSUBSCRIBE_RENEWAL_PERIOD","orderId":"U1","orderLineId":"U1-000001","instanceId":"i-1","expireTime":"20261231155959"}`,
			check: func(t *testing.T, c call, _ reply) {
				if c.arg.(instance.RefreshRequest).Scene != "UNSUBSCRIBE_RENEWAL_PERIOD" {
					t.Fatal(c)
				}
			}},
		{name: "refresh RENEWAL_CHANGE", code: "000000",
			body: `{"activity":"refreshInstance","scene":"RENEWAL_CHANGE","orderId":"C1","orderLineId":"C1-000001","instanceId":"i-1","expireTime":"20270131155959"}`,
			check: func(t *testing.T, c call, _ reply) {
				if c.arg.(instance.RefreshRequest).Scene != "RENEWAL_CHANGE" {
					t.Fatal(c)
				}
			}},
		{name: "refresh unknown scene", code: "000002", msg: "scene", noCalls: true,
			body: `{"activity":"refreshInstance","scene":"DOWNGRADE","orderId":"R1","orderLineId":"R1-000001","instanceId":"i-1","expireTime":"20270131155959"}`},
		{name: "refresh unknown instance", code: "000003", setup: func(f *fakeBackend) { f.err = ErrUnknownInstance },
			body: `{"activity":"refreshInstance","scene":"RENEWAL","orderId":"R1","orderLineId":"R1-000001","instanceId":"nope","expireTime":"20270131155959"}`},
		{name: "refresh refused", code: "000005", msg: "frozen", setup: func(f *fakeBackend) { f.err = frozenRefusal },
			body: `{"activity":"refreshInstance","scene":"RENEWAL","orderId":"R1","orderLineId":"R1-000001","instanceId":"i-1","expireTime":"20270131155959"}`},

		{name: "FREEZE", code: "000000",
			body: `{"activity":"updateInstanceStatus","instanceId":"i-1","status":"FREEZE"}`,
			check: func(t *testing.T, c call, _ reply) {
				if c.arg.(instance.StatusRequest).Status != "FREEZE" || len(c.deliveryID) != 64 {
					t.Fatalf("call %+v", c)
				}
			}},
		{name: "UNFREEZE", code: "000000",
			body: `{"activity":"updateInstanceStatus","instanceId":"i-1","status":"UNFREEZE","testFlag":"1"}`,
			check: func(t *testing.T, c call, _ reply) {
				if r := c.arg.(instance.StatusRequest); r.Status != "UNFREEZE" || !r.TestFlag {
					t.Fatalf("call %+v", c)
				}
			}},
		{name: "status unknown instance", code: "000003", setup: func(f *fakeBackend) { f.err = ErrUnknownInstance },
			body: `{"activity":"updateInstanceStatus","instanceId":"nope","status":"FREEZE"}`},
		{name: "status bad value", code: "000002", noCalls: true,
			body: `{"activity":"updateInstanceStatus","instanceId":"i-1","status":"PAUSE"}`},

		{name: "release", code: "000000",
			body: `{"activity":"releaseInstance","instanceId":"i-1","orderId":"U1","orderLineId":"U1-000001"}`,
			check: func(t *testing.T, c call, _ reply) {
				if r := c.arg.(instance.ReleaseRequest); r.OrderID != "U1" || c.instanceID != "i-1" {
					t.Fatalf("call %+v", c)
				}
			}},
		{name: "release of an unknown instance succeeds", code: "000000", setup: func(f *fakeBackend) { f.err = ErrUnknownInstance },
			body: `{"activity":"releaseInstance","instanceId":"nope"}`},
		{name: "release internal failure", code: "000005", setup: func(f *fakeBackend) { f.err = errors.New("boom") },
			body: `{"activity":"releaseInstance","instanceId":"i-1"}`},

		{name: "upgrade", code: "000000",
			body: `{"activity":"upgradeInstance","instanceId":"i-1","orderId":"C2","orderLineId":"C2-000001"}`,
			check: func(t *testing.T, c call, _ reply) {
				if r := c.arg.(instance.UpgradeRequest); r.OrderID != "C2" || r.OrderLineID != "C2-000001" {
					t.Fatalf("call %+v", c)
				}
			}},
		{name: "upgrade unknown instance", code: "000003", setup: func(f *fakeBackend) { f.err = ErrUnknownInstance },
			body: `{"activity":"upgradeInstance","instanceId":"nope","orderId":"C2","orderLineId":"C2-000001"}`},
		{name: "upgrade refused", code: "000005", msg: "renew it", setup: func(f *fakeBackend) { f.err = frozenRefusal },
			body: `{"activity":"upgradeInstance","instanceId":"i-1","orderId":"C2","orderLineId":"C2-000001"}`},

		{name: "changeInstanceCheck allowed", code: "000000", setup: func(f *fakeBackend) { f.change = instance.ChangeCheckResult{Allowed: true} },
			body: `{"activity":"changeInstanceCheck","instanceId":"i-1","productInfo":{"productId":"P","skuCode":"S","linearValue":10}}`,
			check: func(t *testing.T, c call, _ reply) {
				if r := c.arg.(instance.ChangeCheckRequest); r.SKUCode != "S" || r.LinearValue != 10 || r.ProductID != "P" {
					t.Fatalf("call %+v", c)
				}
			}},
		{name: "changeInstanceCheck refused", code: "000002", msg: "50 users",
			setup: func(f *fakeBackend) {
				f.change = instance.ChangeCheckResult{Reason: "the instance has 50 users; the target allows 10"}
			},
			body: `{"activity":"changeInstanceCheck","instanceId":"i-1","productInfo":{"skuCode":"S","linearValue":10}}`},
		{name: "changeInstanceCheck unknown instance", code: "000003", setup: func(f *fakeBackend) { f.err = ErrUnknownInstance },
			body: `{"activity":"changeInstanceCheck","instanceId":"nope","productInfo":{"skuCode":"S"}}`},

		{name: "unknown activity", code: "000002", msg: "not an activity", noCalls: true,
			body: `{"activity":"expireInstance","instanceId":"i-1"}`},
		{name: "no activity", code: "000002", noCalls: true, body: `{"instanceId":"i-1"}`},
		{name: "not JSON", code: "000002", noCalls: true, body: `activity=newInstance`},
		{name: "JSON array", code: "000002", noCalls: true, body: `[{"activity":"newInstance"}]`},
		{name: "empty body", code: "000002", noCalls: true, body: ``},
		{name: "duplicate key", code: "000002", noCalls: true, body: `{"activity":"releaseInstance","instanceId":"a","instanceId":"b"}`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rg := newRig(t)
			if c.setup != nil {
				c.setup(rg.backend)
			}
			r := rg.post(t, c.body)
			r.expect(t, c.code)
			if c.msg != "" && !strings.Contains(r.resp.ResultMsg, c.msg) {
				t.Fatalf("resultMsg %q does not mention %q", r.resp.ResultMsg, c.msg)
			}
			if c.noCalls {
				if n := rg.backend.count(); n != 0 {
					t.Fatalf("backend called %d times for a refused request", n)
				}
			} else if c.check != nil {
				c.check(t, rg.backend.only(t), r)
			}
			m := rg.log.last(t)
			// The log keeps the answer as sent, except a password, and the hash of the exact bytes sent.
			sent := sha256.Sum256(r.raw)
			logged := bytes.ReplaceAll(m.ResponseBody, []byte(`"password":"[redacted]"`), []byte(`"password":"pw"`))
			if m.ResultCode != c.code || !bytes.Equal(logged, r.raw) || !bytes.Equal(m.ResponseSHA256, sent[:]) ||
				m.BodySign != koogallery.BodySignHeader(testKey, r.raw) {
				t.Fatalf("logged %s / %s, answered %s", m.ResultCode, m.ResponseBody, r.raw)
			}
			if bytes.Contains(m.ResponseBody, []byte(`"pw"`)) {
				t.Fatalf("the logged answer shows the password: %s", m.ResponseBody)
			}
			if string(m.RawBody) != c.body || m.RawQuery == "" || m.Failed == koogallery.Succeeded(c.code) {
				t.Fatalf("logged message %+v", m)
			}
		})
	}
}

func TestAuthentication(t *testing.T) {
	body := []byte(`{"activity":"releaseInstance","instanceId":"i-1"}`)
	signed := func(at time.Time, nonce string) url.Values {
		q, err := koogallery.SignQuery(testKey, body, at, nonce)
		if err != nil {
			t.Fatal(err)
		}
		return q
	}
	cases := []struct {
		name    string
		query   func() string
		verdict koogallery.Verdict
	}{
		{"expired timestamp", func() string { return signed(time.Now().Add(-2*time.Minute), koogallery.NewNonce()).Encode() }, koogallery.VerdictStale},
		{"timestamp from the future", func() string { return signed(time.Now().Add(2*time.Minute), koogallery.NewNonce()).Encode() }, koogallery.VerdictStale},
		{"one bit flipped", func() string {
			q := signed(time.Now(), koogallery.NewNonce())
			q.Set("signature", flipBit(t, q.Get("signature")))
			return q.Encode()
		}, koogallery.VerdictBadSig},
		{"wrong key", func() string {
			q, _ := koogallery.SignQuery("someone-else", body, time.Now(), koogallery.NewNonce())
			return q.Encode()
		}, koogallery.VerdictBadSig},
		{"unsigned", func() string { return "" }, koogallery.VerdictMissing},
		{"nonce missing", func() string {
			q := signed(time.Now(), koogallery.NewNonce())
			q.Del("nonce")
			return q.Encode()
		}, koogallery.VerdictMissing},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rg := newRig(t)
			r := rg.postQuery(t, c.query(), body)
			r.expect(t, koogallery.ResultAuthFailed)
			if rg.backend.count() != 0 {
				t.Fatal("an unauthenticated call reached the backend")
			}
			// The caller learns nothing beyond the failure; the operator finds the reason in the message log.
			if r.resp.ResultMsg != "authentication failed" {
				t.Fatalf("resultMsg %q tells an unauthenticated caller more than that authentication failed", r.resp.ResultMsg)
			}
			if m := rg.log.last(t); m.ErrorDetail == "" || m.ErrorDetail == "authentication failed" {
				t.Fatalf("the logged detail %q does not say why", m.ErrorDetail)
			}
			if m := rg.log.last(t); m.Verification != c.verdict || m.Activity != "releaseInstance" || len(m.InstanceIDs) != 1 {
				t.Fatalf("logged verification %s activity %q ids %v, want %s", m.Verification, m.Activity, m.InstanceIDs, c.verdict)
			}
			if len(rg.nonces.seen) != 0 {
				t.Fatal("a refused call claimed a nonce")
			}
		})
	}

	t.Run("replayed nonce", func(t *testing.T) {
		rg := newRig(t)
		q := signed(time.Now(), koogallery.NewNonce()).Encode()
		rg.postQuery(t, q, body).expect(t, koogallery.ResultSuccess)
		rg.postQuery(t, q, body).expect(t, koogallery.ResultAuthFailed)
		if n := rg.backend.count(); n != 1 {
			t.Fatalf("backend called %d times; the replay must not reach it", n)
		}
		if m := rg.log.last(t); m.Verification != koogallery.VerdictReplayed {
			t.Fatalf("verification %s", m.Verification)
		}
	})
	t.Run("replay cache down", func(t *testing.T) {
		rg := newRig(t)
		rg.nonces.err = errors.New("pg down")
		rg.post(t, string(body)).expect(t, koogallery.ResultInternal)
		if rg.backend.count() != 0 {
			t.Fatal("dispatched without a replay check")
		}
	})
	t.Run("auth failure hides field problems", func(t *testing.T) {
		rg := newRig(t)
		rg.postQuery(t, "", []byte(`{"activity":"bogus"}`)).expect(t, koogallery.ResultAuthFailed)
	})
}

func TestOversizedBody(t *testing.T) {
	rg := newRig(t)
	big := `{"activity":"queryInstance","instanceId":"` + strings.Repeat("x", koogallery.MaxBodyBytes) + `"}`
	r := rg.post(t, big)
	r.expect(t, koogallery.ResultInvalidParams)
	if !strings.Contains(r.resp.ResultMsg, "larger than") {
		t.Fatalf("resultMsg %q", r.resp.ResultMsg)
	}
	if m := rg.log.last(t); len(m.RawBody) > koogallery.MaxBodyBytes+1 || m.Verification != koogallery.VerdictNotChecked {
		t.Fatalf("logged %d body bytes, verification %s", len(m.RawBody), m.Verification)
	}
}

func TestMessageLogFailureAnswers000005(t *testing.T) {
	rg := newRig(t)
	rg.log.err = errors.New("disk full")
	r := rg.post(t, `{"activity":"releaseInstance","instanceId":"i-1"}`)
	r.expect(t, koogallery.ResultInternal)
	if !strings.Contains(r.resp.ResultMsg, "could not be recorded") {
		t.Fatalf("resultMsg %q", r.resp.ResultMsg)
	}
}

func TestDeadline(t *testing.T) {
	rg := newRig(t)
	rg.h.Deadline = 400 * time.Millisecond
	rg.backend.block = true
	start := time.Now()
	r := rg.post(t, `{"activity":"upgradeInstance","instanceId":"i-1","orderId":"C","orderLineId":"C-1"}`)
	elapsed := time.Since(start)
	r.expect(t, koogallery.ResultInternal)
	if elapsed > 600*time.Millisecond {
		t.Fatalf("answered after %s with a 400 ms deadline", elapsed)
	}
	if m := rg.log.last(t); !strings.Contains(m.ErrorDetail, "deadline") {
		t.Fatalf("error detail %q", m.ErrorDetail)
	}
}

func TestMountWithoutKeyRefuses(t *testing.T) {
	// Without an access key nothing can be verified or signed; the endpoint says so instead of pretending.
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	d := app.Deps{Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Config: configWith("", "/koogallery/v2")}
	Mount(r, httpx.NewConsole(r, "/console/v1", nil), d, NewInbox(d))
	srv := httptest.NewServer(r)
	defer srv.Close()
	resp, err := http.Post(srv.URL+"/koogallery/v2", "application/json", strings.NewReader(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("HTTP %d", resp.StatusCode)
	}
}

// flipBit flips exactly one of the signature's 256 bits.
func flipBit(t *testing.T, sig string) string {
	t.Helper()
	raw, err := hex.DecodeString(sig)
	if err != nil || len(raw) != 32 {
		t.Fatalf("signature %q is not 64 hex characters", sig)
	}
	raw[13] ^= 0x04
	return strings.ToUpper(hex.EncodeToString(raw))
}

func configWith(accessKey, path string) config.Config {
	return config.Config{AccessKey: config.Secret(accessKey), ProductionPath: path, Deadline: 4 * time.Second,
		SignatureSkew: time.Minute, TaskQueue: "kooflow"}
}
