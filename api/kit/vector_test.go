package kit_test

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

	"github.com/kooflow/kooflow/api/gateway"
	"github.com/kooflow/kooflow/api/httpx"
	"github.com/kooflow/kooflow/api/kit"
	kitcall "github.com/kooflow/kooflow/internal/kit"
	"github.com/kooflow/kooflow/internal/koogallery"
	"github.com/kooflow/kooflow/internal/store"
	"github.com/kooflow/kooflow/internal/testenv"
)

// TestSpecVectorThroughTheHandler posts the Kit test vector of the spec (§3.3) exactly as documented: the body
// in the documentation's unsorted order, the documented x-sign, x-nonce and x-timestamp, with the verifier's
// clock set just after that timestamp. The handler must accept it (the canonical re-serialisation matches),
// store the tenant, and refuse the identical second delivery as a replay.
func TestSpecVectorThroughTheHandler(t *testing.T) {
	const (
		vectorKey   = "0123456789abcdef-test-access-key"
		vectorNonce = "50D83FDECAED6CCD8EF597F2A577950527928BA287D04E6036E92B2806FD17DA"
		vectorTS    = "1680508066618"
		vectorSign  = "9192305a92849992f62925d4c37415b883d1e2dca0f1ab153ab65bd58d021bbd"
		body        = `{"tenantId":"68cbc86abc2018ab880d92f36422fa0e","tenantCode":"huawei","name":"huaiweitest","domainName":"https://example.tenantaccount.com","flag":1,"testFlag":0,"timeStamp":"20220413093539534","instanceId":"huaiweitest123456","orderId":"CS1906666666ABCDE"}`
	)
	pool := testenv.Pool(t)
	st := &store.Store{Pool: pool}
	accept(t, st, "huaiweitest123456")
	now := func() time.Time { return time.UnixMilli(1680508066618 + 1500) }
	h := &kit.Handler{
		AccessKey: vectorKey,
		Verifier:  koogallery.Verifier{AccessKey: vectorKey, Now: now},
		Nonces:    &gateway.Nonces{Store: st, Retain: 2 * time.Minute},
		Messages:  st,
		Store:     st,
		// The handler's own clock stays real: the message log is partitioned by the time a call is received.
	}
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	r.Use(httpx.RequestContext(slog.New(slog.NewTextHandler(io.Discard, nil))))
	r.POST("/kit/tenantSync", h.Serve(kitcall.KindTenant))
	srv := httptest.NewServer(r)
	defer srv.Close()

	send := func() reply {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/kit/tenantSync", bytes.NewReader([]byte(body)))
		req.Header.Set("x-sign", vectorSign)
		req.Header.Set("x-nonce", vectorNonce)
		req.Header.Set("x-timestamp", vectorTS)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		if got := resp.Header.Get("Body-Sign"); got != koogallery.BodySignHeader(vectorKey, raw) {
			t.Fatalf("Body-Sign %q over %s", got, raw)
		}
		var out reply
		if err := json.Unmarshal(raw, &out); err != nil {
			t.Fatal(err)
		}
		return out
	}
	must(t, send(), koogallery.ResultSuccess)
	v, err := st.KitOfInstance(t.Context(), "huaiweitest123456", false)
	if err != nil || len(v.Tenants) != 1 || v.Tenants[0].TenantCode != "huawei" ||
		!v.Tenants[0].SyncedAt.Equal(time.Date(2022, 4, 13, 1, 35, 39, 534e6, time.UTC)) {
		t.Fatalf("tenants %+v, %v", v.Tenants, err)
	}
	if r := send(); r.Code != koogallery.ResultAuthFailed {
		t.Fatalf("replayed vector: %+v", r)
	}
}
