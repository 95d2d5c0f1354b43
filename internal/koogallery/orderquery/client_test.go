package orderquery

import (
	"context"
	"crypto/tls"
	"encoding/pem"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/kooflow/kooflow/emulator/market"
	"github.com/kooflow/kooflow/internal/config"
	"github.com/kooflow/kooflow/internal/koogallery"
)

// The two official vectors of Huawei's Go SDK signer (signer_test.go), reproduced in docs/koogallery.md
// ("Test vectors"): the signing path the client uses must produce them exactly.
func TestSignerVectors(t *testing.T) {
	at := time.Date(2006, 1, 2, 15, 4, 5, 0, time.UTC)
	cases := []struct {
		name    string
		method  string
		url     string
		headers map[string]string
		body    []byte
		want    string
	}{
		{"GET with a query", http.MethodGet, "https://example.huaweicloud.com/path?limit=1",
			map[string]string{"TEST_UNDERSCORE": "TEST_VALUE"}, nil,
			"SDK-HMAC-SHA256 Access=AccessKey, SignedHeaders=x-sdk-date, Signature=5a2ce64c865e0e6046321c6f3d5a77ba8413eeaf355c3166c03d58d02ac79624"},
		{"POST with a JSON body", http.MethodPost, "https://example.huaweicloud.com/path?key=value",
			map[string]string{"TEST_UNDERSCORE": "TEST_VALUE", "Content-Type": "application/json"},
			[]byte("{\"Name\":\"test\",\"Id\":1}\n"), // json.Encoder's trailing newline is part of the hashed body
			"SDK-HMAC-SHA256 Access=AccessKey, SignedHeaders=x-sdk-date, Signature=cecc2af119b18ab70b4d094c0750f3b42c02f254903179a0fc2cc72fc9db4f59"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			u, _ := url.Parse(c.url)
			h, err := SignHeaders(c.method, u, c.headers, c.body, "AccessKey", "SecretKey", at, false)
			if err != nil {
				t.Fatal(err)
			}
			if h["Authorization"] != c.want {
				t.Fatalf("Authorization = %s\nwant            %s", h["Authorization"], c.want)
			}
			if h["X-Sdk-Date"] != "20060102T150405Z" {
				t.Fatalf("X-Sdk-Date = %s", h["X-Sdk-Date"])
			}
		})
	}
	// With Host signed (what the client sends) the header list says so.
	u, _ := url.Parse("https://example.huaweicloud.com/path?limit=1")
	h, _ := SignHeaders(http.MethodGet, u, nil, nil, "AccessKey", "SecretKey", at, true)
	if !strings.Contains(h["Authorization"], "SignedHeaders=host;x-sdk-date,") {
		t.Fatalf("Authorization = %s", h["Authorization"])
	}
}

const (
	testAK = "KOOFLOWTESTAK00000001"
	testSK = "kooflow-test-secret-key-0123"
)

func startEmulator(t *testing.T) (*market.Market, *market.Server) {
	t.Helper()
	m, srv, err := market.Serve(market.Options{AK: testAK, SK: testSK, Seed: 1}, "127.0.0.1:0", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	return m, srv
}

func newClient(t *testing.T, endpoint, caFile, sk string) *Client {
	t.Helper()
	c, err := NewClient(Options{Endpoint: endpoint, AK: testAK, SK: config.Secret(sk), CAFile: caFile, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestAgainstEmulator queries the emulator's marketplace over real TLS, trusting its CA through CAFile, and
// has the emulator verify the AK/SK signature independently of Huawei's signer.
func TestAgainstEmulator(t *testing.T) {
	m, srv := startEmulator(t)
	ctx := context.Background()
	c := newClient(t, srv.URL, srv.CAFile, testSK)

	t.Run("mock order", func(t *testing.T) {
		info, err := c.QueryOrder(ctx, "MOCKPERIODYEARNEW", "MOCKPERIODYEARNEW-000001")
		if err != nil {
			t.Fatal(err)
		}
		if info.OrderType != koogallery.OrderTypeNew || len(info.OrderLine) != 1 || info.OrderLine[0].ChargingMode != koogallery.ChargingPeriod ||
			len(info.OrderLine[0].ProductInfo) != 1 || info.OrderLine[0].ProductInfo[0].LinearValue <= 0 {
			t.Fatalf("order %+v", info)
		}
		if _, err := ParseTime(info.OrderLine[0].ExpireTime); err != nil {
			t.Fatalf("expireTime %q: %v", info.OrderLine[0].ExpireTime, err)
		}
	})

	t.Run("placed order with a reserved character in its id", func(t *testing.T) {
		id := "CS2611 21+X" // spaces and '+' must be escaped identically on the wire and in the signature
		err := m.PutOrder(market.Order{OrderID: id, OrderType: market.TypeRenew, CreateTime: time.Now().UTC(),
			Lines: []market.Line{{OrderLineID: id + "-000001", ChargingMode: market.ChargingPeriod, PeriodType: "month",
				PeriodNumber: 1, ExpireTime: time.Now().Add(720 * time.Hour).UTC(), ProductID: "P1", SKUCode: "S1",
				LinearValue: 3, ListAmount: decimal.RequireFromString("100"), PaidAmount: decimal.RequireFromString("90.5")}}})
		if err != nil {
			t.Fatal(err)
		}
		info, err := c.QueryOrder(ctx, id, id+"-000001")
		if err != nil {
			t.Fatal(err)
		}
		if info.OrderID != id || info.OrderType != koogallery.OrderTypeRenew || info.OrderLine[0].CurrencyAfterDiscount != "90.5" {
			t.Fatalf("order %+v", info)
		}
	})

	t.Run("unknown order is terminal", func(t *testing.T) {
		_, err := c.QueryOrder(ctx, "NOSUCHORDER", "")
		wantErr(t, err, false, "0101")
	})

	t.Run("wrong secret is terminal", func(t *testing.T) {
		_, err := newClient(t, srv.URL, srv.CAFile, "not-the-secret").QueryOrder(ctx, "MOCKPERIODYEARNEW", "")
		wantErr(t, err, false, "0154")
	})

	t.Run("marketplace fault is retryable", func(t *testing.T) {
		m.SetQueryFaults(market.QueryFaults{ErrorRate: 1})
		defer m.SetQueryFaults(market.QueryFaults{})
		_, err := c.QueryOrder(ctx, "MOCKPERIODYEARNEW", "")
		wantErr(t, err, true, "0999")
	})

	t.Run("hanging marketplace times out, retryable", func(t *testing.T) {
		m.SetQueryFaults(market.QueryFaults{TimeoutRate: 1, Hang: 10 * time.Second})
		defer m.SetQueryFaults(market.QueryFaults{})
		c, err := NewClient(Options{Endpoint: srv.URL, AK: testAK, SK: testSK, CAFile: srv.CAFile, Timeout: 300 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		_, err = c.QueryOrder(ctx, "MOCKPERIODYEARNEW", "")
		var qe *Error
		if err == nil || errors.As(err, &qe) || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("error %v: want a retryable timeout", err)
		}
		if time.Since(start) > 2*time.Second {
			t.Fatalf("took %s with a 300 ms timeout", time.Since(start))
		}
	})

	t.Run("certificate not trusted without the CA file", func(t *testing.T) {
		_, err := newClient(t, srv.URL, "", testSK).QueryOrder(ctx, "MOCKPERIODYEARNEW", "")
		wantErr(t, err, false, "TLS")
	})
}

func wantErr(t *testing.T, err error, retryable bool, code string) {
	t.Helper()
	var qe *Error
	if !errors.As(err, &qe) {
		t.Fatalf("error %v is not an *orderquery.Error", err)
	}
	if qe.Retryable != retryable || !strings.Contains(qe.Code, code) {
		t.Fatalf("error %+v: want code *%s, retryable %v", qe, code, retryable)
	}
}

// TestClassification covers the answers the emulator does not give, from a TLS server under the test's control.
func TestClassification(t *testing.T) {
	var status int
	var body string
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != Path || r.Header.Get("X-Sdk-Date") == "" ||
			!strings.HasPrefix(r.Header.Get("Authorization"), "SDK-HMAC-SHA256 Access="+testAK+", SignedHeaders=host;x-sdk-date, Signature=") {
			http.Error(w, "unsigned", http.StatusTeapot)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = w.Write([]byte(body))
	}))
	defer srv.Close()
	c, err := NewClient(Options{Endpoint: srv.URL, AK: testAK, SK: testSK, HTTPClient: srv.Client()})
	if err != nil {
		t.Fatal(err)
	}
	ok := `{"resultCode":"MKT.0000","resultMsg":"Success","orderInfo":{"orderId":"O1","orderType":"NEW","createTime":"20241121090846","orderLine":[{"orderLineId":"O1-000001","chargingMode":"PERIOD","periodType":"year","periodNumber":1,"expireTime":"20251121235959","productInfo":[{"productId":"P","skuCode":"S","linearValue":50,"productName":"MOCK测试商品"}],"currency":"100","currencyAfterDiscount":"100"}],"buyerInfo":{"mobilePhone":null,"email":null,"customerId":"c","customerName":"n","customerRealName":"r","customerType":0,"userId":null,"userName":null},"extendParams":[]}}`
	cases := []struct {
		name      string
		status    int
		body      string
		ok        bool
		retryable bool
		code      string
	}{
		{"MKT success", 200, ok, true, false, ""},
		{"CBC success", 200, strings.Replace(ok, "MKT.0000", "CBC.0000", 1), true, false, ""},
		{"CBC.0999 internal error", 500, `{"resultCode":"CBC.0999","resultMsg":"internal error"}`, false, true, "CBC.0999"},
		{"MKT.0250 throttled", 406, `{"resultCode":"MKT.0250","resultMsg":"frequency over limit"}`, false, true, "MKT.0250"},
		{"CBC.0100 input parameter failure", 500, `{"resultCode":"CBC.0100","resultMsg":"input"}`, false, false, "CBC.0100"},
		{"CBC.0101 invalid parameter", 400, `{"resultCode":"CBC.0101","resultMsg":"invalid"}`, false, false, "CBC.0101"},
		{"MKT.0199 parameter error", 400, `{"resultCode":"MKT.0199","resultMsg":"invalid"}`, false, false, "MKT.0199"},
		{"CBC.0150 illegal operation", 401, `{"resultCode":"CBC.0150","resultMsg":"not yours"}`, false, false, "CBC.0150"},
		{"CBC.0151 no authority", 401, `{"resultCode":"CBC.0151","resultMsg":"no"}`, false, false, "CBC.0151"},
		{"MKT.0154 illegal token", 401, `{"resultCode":"MKT.0154","resultMsg":"token"}`, false, false, "MKT.0154"},
		{"CBC.9001 not found", 500, `{"resultCode":"CBC.9001","resultMsg":"not found"}`, false, false, "CBC.9001"},
		{"unknown code, 503", 503, `{"resultCode":"MKT.7777","resultMsg":"?"}`, false, true, "MKT.7777"},
		{"unknown code, 400", 400, `{"resultCode":"MKT.7777","resultMsg":"?"}`, false, false, "MKT.7777"},
		{"API gateway auth error", 401, `{"error_code":"APIGW.0301","error_msg":"Incorrect IAM authentication information"}`, false, false, "APIGW.0301"},
		{"API gateway throttled", 429, `{"error_code":"APIGW.0308","error_msg":"throttled"}`, false, true, "APIGW.0308"},
		{"HTML from a proxy, 502", 502, `<html>bad gateway</html>`, false, true, "HTTP502"},
		{"HTML, 404", 404, `<html>not found</html>`, false, false, "HTTP404"},
		{"success without orderInfo", 200, `{"resultCode":"MKT.0000","resultMsg":"Success"}`, false, false, "MKT.0000"},
		{"another order's answer", 200, strings.Replace(ok, `"orderId":"O1"`, `"orderId":"O2"`, 1), false, false, "MKT.0000"},
	}
	for _, cs := range cases {
		t.Run(cs.name, func(t *testing.T) {
			status, body = cs.status, cs.body
			info, err := c.QueryOrder(context.Background(), "O1", "O1-000001")
			if cs.ok {
				if err != nil {
					t.Fatal(err)
				}
				if info.OrderLine[0].ProductInfo[0].ProductName != "MOCK测试商品" || info.BuyerInfo.MobilePhone != nil {
					t.Fatalf("order %+v", info)
				}
				return
			}
			wantErr(t, err, cs.retryable, cs.code)
		})
	}
}

func TestNewClientRefuses(t *testing.T) {
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.pem")
	_ = os.WriteFile(garbage, []byte("not a certificate"), 0o600)
	cases := []struct {
		name string
		o    Options
		want string
	}{
		{"plain http", Options{Endpoint: "http://mkt.myhuaweicloud.com", AK: "a", SK: "s"}, "https"},
		{"no endpoint", Options{AK: "a", SK: "s"}, "not a URL"},
		{"no SK", Options{Endpoint: "https://mkt.myhuaweicloud.com", AK: "a"}, config.EnvMarketSK},
		{"missing CA file", Options{Endpoint: "https://x", AK: "a", SK: "s", CAFile: filepath.Join(dir, "none.pem")}, "CA file"},
		{"CA file without a certificate", Options{Endpoint: "https://x", AK: "a", SK: "s", CAFile: garbage}, "no PEM certificate"},
	}
	for _, c := range cases {
		if _, err := NewClient(c.o); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want one mentioning %q", c.name, err, c.want)
		}
	}
}

func TestCAFileAddsToSystemRoots(t *testing.T) {
	// A CA file holding the test server's certificate makes it trusted; verification stays on (a client built
	// from options has no InsecureSkipVerify anywhere).
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(`{"resultCode":"MKT.0000","resultMsg":"ok","orderInfo":{"orderId":"O1","orderType":"NEW","createTime":"20241121090846","orderLine":[]}}`))
	}))
	defer srv.Close()
	ca := filepath.Join(t.TempDir(), "ca.pem")
	cert := srv.Certificate()
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := NewClient(Options{Endpoint: srv.URL, AK: "a", SK: "s", CAFile: ca})
	if err != nil {
		t.Fatal(err)
	}
	tr := c.http.Transport.(*http.Transport)
	if tr.TLSClientConfig.InsecureSkipVerify || tr.TLSClientConfig.MinVersion != tls.VersionTLS12 {
		t.Fatalf("TLS config %+v", tr.TLSClientConfig)
	}
	if _, err := c.QueryOrder(context.Background(), "O1", ""); err != nil {
		t.Fatal(err)
	}
}
