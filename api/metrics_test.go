package api_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/kooflow/kooflow/internal/config"
	"github.com/kooflow/kooflow/internal/koogallery"
	"github.com/kooflow/kooflow/internal/testenv"
	"github.com/kooflow/kooflow/internal/teststack"
)

// scrape reads url/metrics over HTTP and parses the text exposition.
func scrape(t *testing.T, base string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET /metrics: %d %s", resp.StatusCode, b)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return fams
}

// value is the counter, gauge or histogram count of the family's series with exactly these labels (0 if none).
func value(fams map[string]*dto.MetricFamily, name string, labels map[string]string) float64 {
	f := fams[name]
	if f == nil {
		return 0
	}
	for _, m := range f.GetMetric() {
		if len(m.GetLabel()) != len(labels) {
			continue
		}
		match := true
		for _, l := range m.GetLabel() {
			if labels[l.GetName()] != l.GetValue() {
				match = false
			}
		}
		if !match {
			continue
		}
		switch {
		case m.Counter != nil:
			return m.GetCounter().GetValue()
		case m.Gauge != nil:
			return m.GetGauge().GetValue()
		case m.Histogram != nil:
			return float64(m.GetHistogram().GetSampleCount())
		}
	}
	return 0
}

// TestMetricsCountWhatWasCalled drives the real router and worker with signed marketplace calls and console
// requests, then scrapes GET /metrics over HTTP: every family is present and counts exactly what was called.
func TestMetricsCountWhatWasCalled(t *testing.T) {
	const accessKey = "metrics-test-access-key"
	st := teststack.Start(t, teststack.Config(t, map[string]string{
		config.EnvConsoleTokens: "tester:" + consoleToken,
		config.EnvAccessKey:     accessKey,
	}), teststack.Options{})
	call := func(body map[string]any, key, nonce string) koogallery.Response {
		t.Helper()
		raw, _ := json.Marshal(body)
		q, err := koogallery.SignQuery(key, raw, time.Now(), nonce)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.Post(st.URL+st.Config.ProductionPath+"?"+q.Encode(), "application/json", bytes.NewReader(raw))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var r koogallery.Response
		if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
			t.Fatal(err)
		}
		return r
	}
	order := testenv.Unique("MET")
	buy := map[string]any{"activity": "newInstance", "orderId": order, "orderLineId": order + "-1", "businessId": "b1"}
	for range 2 { // the order and the marketplace's retry
		if r := call(buy, accessKey, koogallery.NewNonce()); r.ResultCode != "000004" {
			t.Fatalf("newInstance %+v", r)
		}
	}
	unknown := map[string]any{"activity": "queryInstance", "instanceId": "no-such-instance"}
	for range 3 {
		if r := call(unknown, accessKey, koogallery.NewNonce()); r.ResultCode != "000003" {
			t.Fatalf("queryInstance %+v", r)
		}
	}
	if r := call(unknown, "another-sellers-key", koogallery.NewNonce()); r.ResultCode != "000001" {
		t.Fatalf("bad signature %+v", r)
	}
	nonce := koogallery.NewNonce()
	release := map[string]any{"activity": "releaseInstance", "instanceId": "no-such-instance"}
	if r := call(release, accessKey, nonce); r.ResultCode != "000000" {
		t.Fatalf("releaseInstance %+v", r)
	}
	if r := call(release, accessKey, nonce); r.ResultCode != "000001" {
		t.Fatalf("replayed nonce %+v", r)
	}
	for _, token := range []string{consoleToken, consoleToken, "wrong-token"} {
		req, _ := http.NewRequest(http.MethodGet, st.URL+"/console/v1/instances?lifecycle="+url.QueryEscape("ACTIVE"), nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
	}

	fams := scrape(t, st.URL)
	want := []struct {
		name   string
		labels map[string]string
		n      float64
	}{
		{"kooflow_gateway_calls_total", map[string]string{"activity": "newInstance", "result_code": "000004"}, 2},
		{"kooflow_gateway_calls_total", map[string]string{"activity": "queryInstance", "result_code": "000003"}, 3},
		{"kooflow_gateway_calls_total", map[string]string{"activity": "queryInstance", "result_code": "000001"}, 1},
		{"kooflow_gateway_calls_total", map[string]string{"activity": "releaseInstance", "result_code": "000000"}, 1},
		{"kooflow_gateway_calls_total", map[string]string{"activity": "releaseInstance", "result_code": "000001"}, 1},
		{"kooflow_gateway_call_duration_seconds", map[string]string{"activity": "newInstance"}, 2},
		{"kooflow_gateway_call_duration_seconds", map[string]string{"activity": "queryInstance"}, 4},
		{"kooflow_gateway_call_duration_seconds", map[string]string{"activity": "releaseInstance"}, 2},
		{"kooflow_gateway_auth_failures_total", map[string]string{"reason": "bad_signature"}, 1},
		{"kooflow_gateway_auth_failures_total", map[string]string{"reason": "replayed_nonce"}, 1},
		{"kooflow_console_requests_total", map[string]string{"route": "/console/v1/instances", "status": "200"}, 2},
		{"kooflow_console_requests_total", map[string]string{"route": "/console/v1/instances", "status": "401"}, 1},
	}
	for _, w := range want {
		if got := value(fams, w.name, w.labels); got != w.n {
			t.Errorf("%s%v = %v, want %v", w.name, w.labels, got, w.n)
		}
	}
	// Nothing else was counted: the totals equal the calls made.
	total := func(name string) (n float64) {
		for _, m := range fams[name].GetMetric() {
			n += m.GetCounter().GetValue()
		}
		return n
	}
	if n := total("kooflow_gateway_calls_total"); n != 8 {
		t.Errorf("kooflow_gateway_calls_total sums to %v, want 8", n)
	}
	if n := total("kooflow_gateway_auth_failures_total"); n != 2 {
		t.Errorf("kooflow_gateway_auth_failures_total sums to %v, want 2", n)
	}
	for _, name := range []string{"kooflow_inbox_pending", "go_goroutines", "process_cpu_seconds_total"} {
		if fams[name] == nil {
			t.Errorf("family %s missing", name)
		}
	}
	// The one accepted order's start is dispatched: nothing stays pending.
	deadline := time.Now().Add(15 * time.Second)
	for value(scrape(t, st.URL), "kooflow_inbox_pending", map[string]string{}) != 0 {
		if time.Now().After(deadline) {
			t.Fatal("kooflow_inbox_pending did not return to 0")
		}
		time.Sleep(200 * time.Millisecond)
	}
}
