package market

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/huaweicloud/huaweicloud-sdk-go-v3/core/auth/signer"
	"github.com/huaweicloud/huaweicloud-sdk-go-v3/core/request"
)

// The two AK/SK vectors of docs/koogallery.md, "Test vectors" (from Huawei's signer_test.go): AK "AccessKey", SK
// "SecretKey".
func TestAKSKSpecVectors(t *testing.T) {
	emptyHash := "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
	cr := canonicalRequest("GET", "/path", url.Values{"limit": {"1"}}, map[string]string{"x-sdk-date": "20060102T150405Z"},
		[]string{"x-sdk-date"}, emptyHash)
	if want := "GET\n/path/\nlimit=1\nx-sdk-date:20060102T150405Z\n\nx-sdk-date\n" + emptyHash; cr != want {
		t.Fatalf("canonical request:\n%q\nwant\n%q", cr, want)
	}
	if got := hex.EncodeToString(akskSignature("SecretKey", "20060102T150405Z", cr)); got != "5a2ce64c865e0e6046321c6f3d5a77ba8413eeaf355c3166c03d58d02ac79624" {
		t.Fatalf("GET signature %s", got)
	}
	sum := sha256.Sum256([]byte("{\"Name\":\"test\",\"Id\":1}\n"))
	bodyHash := hex.EncodeToString(sum[:])
	if bodyHash != "a29d7b4c5efd1a22011d69fd7b7aee76fe51e4083c609244228de258afd61289" {
		t.Fatalf("body hash %s", bodyHash)
	}
	cr = canonicalRequest("POST", "/path", url.Values{"key": {"value"}}, map[string]string{"x-sdk-date": "20060102T150405Z"},
		[]string{"x-sdk-date"}, bodyHash)
	if got := hex.EncodeToString(akskSignature("SecretKey", "20060102T150405Z", cr)); got != "cecc2af119b18ab70b4d094c0750f3b42c02f254903179a0fc2cc72fc9db4f59" {
		t.Fatalf("POST signature %s", got)
	}
}

// sdkSign signs a request with Huawei's own SDK signer and copies the headers onto an http.Request, as a seller
// using the SDK would send it.
func sdkSign(t *testing.T, method, endpoint, path string, query map[string]string, extra map[string]string, body string, ak, sk string, at time.Time) *http.Request {
	t.Helper()
	b := request.NewHttpRequestBuilder().WithMethod(method).WithEndpoint(endpoint).WithPath(path)
	for k, v := range query {
		b.AddQueryParam(k, reflect.ValueOf(v))
	}
	b.AddHeaderParam("X-Sdk-Date", at.UTC().Format("20060102T150405Z"))
	for k, v := range extra {
		b.AddHeaderParam(k, v)
	}
	if body != "" {
		b.WithBody("body", body)
	}
	hr := b.Build()
	signed, err := signer.Sign(hr, ak, sk)
	if err != nil {
		t.Fatal(err)
	}
	u := endpoint + path
	if len(query) > 0 {
		v := url.Values{}
		for k, x := range query {
			v.Set(k, x)
		}
		u += "?" + v.Encode()
	}
	req, err := http.NewRequest(method, u, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hr.GetHeaderParams() {
		req.Header.Set(k, v)
	}
	for k, v := range signed {
		req.Header.Set(k, v)
	}
	return req
}

func TestVerifyAKSKAgainstHuaweiSDK(t *testing.T) {
	now := time.Now()
	req := sdkSign(t, "GET", "https://127.0.0.1:8090", OrderQueryPath,
		map[string]string{"orderId": "CS 1/2+3", "orderLineId": "CS-000001"}, nil, "", "AK1", "SK1", now)
	if err := verifyAKSK(req, nil, "AK1", "SK1", now, time.Minute); err != nil {
		t.Fatalf("SDK-signed GET refused: %v", err)
	}
	body := `{"usage_records":[]}`
	req = sdkSign(t, "POST", "https://127.0.0.1:8090", UsagePath, nil,
		map[string]string{"Content-Type": "application/json"}, body, "AK1", "SK1", now)
	if err := verifyAKSK(req, []byte(body), "AK1", "SK1", now, time.Minute); err != nil {
		t.Fatalf("SDK-signed POST refused: %v", err)
	}
	if err := verifyAKSK(req, []byte(body+" "), "AK1", "SK1", now, time.Minute); err == nil {
		t.Fatal("a changed body verified")
	}
}

func TestVerifyAKSKRefusals(t *testing.T) {
	now := time.Now()
	sign := func() *http.Request {
		return sdkSign(t, "GET", "https://127.0.0.1:8090", OrderQueryPath, map[string]string{"orderId": "X"}, nil, "", "AK1", "SK1", now)
	}
	cases := map[string]func() (*http.Request, string, string, time.Time){
		"wrong SK":   func() (*http.Request, string, string, time.Time) { return sign(), "AK1", "SK2", now },
		"unknown AK": func() (*http.Request, string, string, time.Time) { return sign(), "AK2", "SK1", now },
		"stale date": func() (*http.Request, string, string, time.Time) {
			return sign(), "AK1", "SK1", now.Add(16 * time.Minute)
		},
		"future date": func() (*http.Request, string, string, time.Time) {
			return sign(), "AK1", "SK1", now.Add(-16 * time.Minute)
		},
		"no auth": func() (*http.Request, string, string, time.Time) {
			r := sign()
			r.Header.Del("Authorization")
			return r, "AK1", "SK1", now
		},
		"query changed": func() (*http.Request, string, string, time.Time) {
			r := sign()
			r.URL.RawQuery = "orderId=Y"
			return r, "AK1", "SK1", now
		},
		"date unsigned": func() (*http.Request, string, string, time.Time) {
			r := sign()
			r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), "SignedHeaders=x-sdk-date", "SignedHeaders=host", 1))
			r.Host = "127.0.0.1:8090"
			return r, "AK1", "SK1", now
		},
	}
	for name, c := range cases {
		r, ak, sk, at := c()
		err := verifyAKSK(r, nil, ak, sk, at, 15*time.Minute)
		ae, ok := err.(*authError)
		if !ok || ae.code != "MKT.0154" {
			t.Errorf("%s: err = %v, want MKT.0154", name, err)
		}
	}
}
