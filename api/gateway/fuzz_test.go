package gateway

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/kooflow/kooflow/api/httpx"
	"github.com/kooflow/kooflow/internal/koogallery"
)

// FuzzServe sends arbitrary bodies and query strings to the production interface (with a backend that accepts
// everything) and requires what the marketplace relies on: HTTP 200, never a 5xx, never a panic, a body that is
// JSON with a six-digit resultCode, a Body-Sign over exactly those bytes, and a message-log entry for the call.
// Half of the inputs are signed correctly so the fuzzer also reaches validation and dispatch.
//
//	go test ./api/gateway -run '^$' -fuzz FuzzServe -fuzztime 1m
func FuzzServe(f *testing.F) {
	for _, s := range []struct {
		body string
		sign bool
	}{
		{`{"activity":"newInstance","orderId":"O","orderLineId":"O-1","businessId":"B"}`, true},
		{`{"activity":"queryInstance","instanceId":"a,b"}`, true},
		{`{"activity":"refreshInstance","scene":"RENEWAL","orderId":"o","orderLineId":"l","instanceId":"i","expireTime":"20270101000000"}`, true},
		{`{"activity":"updateInstanceStatus","instanceId":"i","status":"FREEZE"}`, true},
		{`{"activity":"releaseInstance","instanceId":"i"}`, false},
		{`{"activity":"changeInstanceCheck","instanceId":"i","productInfo":{"skuCode":"s"}}`, true},
		{`{"activity":"upgradeInstance","instanceId":"i","orderId":"o","orderLineId":"l","x":[1,{"y":null}]}`, true},
		{"\x00\xff", false},
	} {
		f.Add([]byte(s.body), "", s.sign)
	}
	f.Add([]byte(`{}`), "signature=&timestamp=&nonce=", false)
	f.Add([]byte(`{"activity":"newInstance"}`), "signature=A&signature=B&timestamp=1&nonce=%00", false)

	gin.SetMode(gin.ReleaseMode)
	log := &memLog{}
	h := &Handler{
		AccessKey: testKey,
		Verifier:  koogallery.Verifier{AccessKey: testKey, Window: time.Minute},
		Deadline:  time.Second,
		Nonces:    &memNonces{},
		Messages:  log,
		Backend:   &fakeBackend{},
	}
	r := gin.New()
	r.ContextWithFallback = true
	r.Use(httpx.RequestContext(slog.New(slog.NewTextHandler(io.Discard, nil))), httpx.Recover())
	r.POST("/koogallery/v2", h.Serve)

	f.Fuzz(func(t *testing.T, body []byte, query string, sign bool) {
		if sign {
			if q, err := koogallery.SignQuery(testKey, body, time.Now(), koogallery.NewNonce()); err == nil {
				query = q.Encode()
			}
		}
		req := httptest.NewRequest(http.MethodPost, "/koogallery/v2", bytes.NewReader(body))
		req.URL.RawQuery = query
		rec := httptest.NewRecorder()
		log.mu.Lock()
		log.msgs = nil // keep memory flat over a long run
		before := len(log.msgs)
		log.mu.Unlock()
		r.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			t.Fatalf("HTTP %d for body %q query %q: %s", rec.Code, body, query, rec.Body.Bytes())
		}
		raw := rec.Body.Bytes()
		if got, want := rec.Header().Get("Body-Sign"), koogallery.BodySignHeader(testKey, raw); got != want {
			t.Fatalf("Body-Sign %q does not sign the body %q", got, raw)
		}
		var resp koogallery.Response
		if err := json.Unmarshal(raw, &resp); err != nil || len(resp.ResultCode) != 6 {
			t.Fatalf("response %q: %v", raw, err)
		}
		log.mu.Lock()
		after := len(log.msgs)
		log.mu.Unlock()
		if after != before+1 {
			t.Fatalf("message log grew by %d", after-before)
		}
	})
}
