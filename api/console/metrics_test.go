package console_test

import (
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/kooflow/kooflow/api/console"
	"github.com/kooflow/kooflow/emulator/market"
	"github.com/kooflow/kooflow/internal/metrics"
	"github.com/kooflow/kooflow/internal/testenv"
	"github.com/kooflow/kooflow/internal/teststack"
)

// scrapeWorker reads the worker's /metrics over HTTP.
func scrapeWorker(t *testing.T, base string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %d", resp.StatusCode)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return fams
}

// sample is the value (histogram: count) of the family's series with exactly these labels, and whether it exists.
func sample(fams map[string]*dto.MetricFamily, name string, labels map[string]string) (float64, bool) {
	for _, m := range fams[name].GetMetric() {
		if len(m.GetLabel()) != len(labels) {
			continue
		}
		match := true
		for _, l := range m.GetLabel() {
			match = match && labels[l.GetName()] == l.GetValue()
		}
		if !match {
			continue
		}
		switch {
		case m.Counter != nil:
			return m.GetCounter().GetValue(), true
		case m.Gauge != nil:
			return m.GetGauge().GetValue(), true
		case m.Histogram != nil:
			return float64(m.GetHistogram().GetSampleCount()), true
		}
	}
	return 0, false
}

// TestWorkerMetrics runs the real worker measured as `kooflow worker` is: one purchase provisions (the built-in
// provisioner, in a local activity of the first workflow task) and is frozen (the freeze's provisioning is a
// regular activity, whose completion brings the workflow back from the sticky cache), one order unknown to the
// marketplace parks at its order query. The worker's /metrics then counts exactly those calls, the gauges read
// from PostgreSQL show one FROZEN and one parked instance and no open alert, and the Temporal SDK's temporal_*
// families are present.
func TestWorkerMetrics(t *testing.T) {
	cfg, m, _ := teststack.WithMarket(t, teststack.Keys{AccessKey: accessKey, MarketAK: marketAK, MarketSK: marketSK,
		ConsoleToken: consoleToken}, market.Options{}, nil)
	cfg.TaskQueue = testenv.TaskQueue(t)
	st := teststack.Start(t, cfg, teststack.Options{WorkerMetrics: true})
	s := &stack{t: t, url: st.URL, cfg: st.Config, pool: st.Pool, tc: st.Temporal, market: m}

	bought := testenv.Unique("MTR")
	line := s.order(bought, "NEW", monthly, "crm-basic-month", 1, "100", time.Now().UTC().AddDate(0, 1, 0))
	active := s.newInstance(bought, line)
	s.waitFor(active, "provisioning", func(d console.InstanceDetail) bool { return d.Lifecycle == "ACTIVE" })
	if r := s.mp(map[string]any{"activity": "updateInstanceStatus", "instanceId": active, "status": "FREEZE"}); r.ResultCode != "000000" {
		t.Fatalf("FREEZE %+v", r)
	}
	s.waitFor(active, "the freeze", func(d console.InstanceDetail) bool {
		return d.Lifecycle == "FROZEN" && slices.Contains(kinds(d), "frozen")
	})
	unknown := testenv.Unique("MTR-NONE")
	parked := s.newInstance(unknown, unknown+"-1")
	s.waitFor(parked, "the parking", func(d console.InstanceDetail) bool { return d.Parked })

	fams := scrapeWorker(t, st.WorkerMetricsURL)
	want := []struct {
		name   string
		labels map[string]string
		n      float64
	}{
		{"kooflow_provisioning_calls_total", map[string]string{"kind": "create", "outcome": "ok"}, 1},
		{"kooflow_provisioning_duration_seconds", map[string]string{"kind": "create"}, 1},
		{"kooflow_provisioning_calls_total", map[string]string{"kind": "freeze", "outcome": "ok"}, 1},
		{"kooflow_order_queries_total", map[string]string{"outcome": "ok"}, 1},
		{"kooflow_order_queries_total", map[string]string{"outcome": "needs_person"}, 1},
		{"kooflow_instances", map[string]string{"lifecycle": "FROZEN"}, 1},
		{"kooflow_instances", map[string]string{"lifecycle": "PROVISIONING"}, 1},
		{"kooflow_instances_parked", map[string]string{"step": "query order"}, 1},
	}
	for _, w := range want {
		if got, ok := sample(fams, w.name, w.labels); !ok || got != w.n {
			t.Errorf("%s%v = %v (present %v), want %v", w.name, w.labels, got, ok, w.n)
		}
	}
	// Known alert kinds are exported even when none is open, so an alerting rule always has a series.
	for _, kind := range []string{"expiry", "unknown-product", "purchase-refused"} {
		if n, ok := sample(fams, "kooflow_alerts_open", map[string]string{"kind": kind}); !ok || n != 0 {
			t.Errorf("kooflow_alerts_open{kind=%q} = %v (present %v), want 0", kind, n, ok)
		}
	}
	var temporal []string
	for name := range fams {
		if strings.HasPrefix(name, "temporal_") {
			temporal = append(temporal, name)
		}
	}
	for _, name := range metrics.SDKFamilies() { // the ones deploy/'s dashboard and rules use
		if fams[name] == nil {
			t.Errorf("SDK family %s missing; temporal_* present: %v", name, temporal)
		}
	}
	// The parked order's failed order query is counted by one of the SDK's failure families.
	if !slices.ContainsFunc(metrics.SDKFailureFamilies(), func(name string) bool { return fams[name] != nil }) {
		t.Errorf("none of the SDK failure families %v present after a failed order query; temporal_* present: %v",
			metrics.SDKFailureFamilies(), temporal)
	}
	for _, name := range []string{"go_goroutines", "process_cpu_seconds_total"} {
		if fams[name] == nil {
			t.Errorf("family %s missing", name)
		}
	}
}
