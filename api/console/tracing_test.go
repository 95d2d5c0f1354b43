package console_test

import (
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/kooflow/kooflow/api/console"
	"github.com/kooflow/kooflow/emulator/market"
	"github.com/kooflow/kooflow/internal/testenv"
	"github.com/kooflow/kooflow/internal/teststack"
)

// TestTraceFromGatewayIntoWorkflowAndActivity: with tracing on, a marketplace FREEZE through the real API is one
// trace: the gateway's span, the Temporal client's Update, and the workflow's Update validator and handler on the
// worker. The steps the workflow queues run later in its main loop, so their activities (the freeze's Provision)
// belong to the workflow run's own trace, which the interceptor also records.
func TestTraceFromGatewayIntoWorkflowAndActivity(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() { _ = tp.Shutdown(t.Context()) })
	cfg, m, _ := teststack.WithMarket(t, teststack.Keys{AccessKey: accessKey, MarketAK: marketAK, MarketSK: marketSK,
		ConsoleToken: consoleToken}, market.Options{}, nil)
	cfg.TaskQueue = testenv.TaskQueue(t)
	st := teststack.Start(t, cfg, teststack.Options{Tracer: tp})
	s := &stack{t: t, url: st.URL, cfg: st.Config, pool: st.Pool, tc: st.Temporal, market: m}

	orderID := testenv.Unique("TRC")
	line := s.order(orderID, "NEW", monthly, "crm-basic-month", 1, "100", time.Now().UTC().AddDate(0, 1, 0))
	id := s.newInstance(orderID, line)
	s.waitFor(id, "provisioning", func(d console.InstanceDetail) bool { return d.Lifecycle == "ACTIVE" })
	if r := s.mp(map[string]any{"activity": "updateInstanceStatus", "instanceId": id, "status": "FREEZE"}); r.ResultCode != "000000" {
		t.Fatalf("FREEZE %+v", r)
	}
	s.waitFor(id, "the freeze", func(d console.InstanceDetail) bool { return d.Lifecycle == "FROZEN" })

	deadline := time.Now().Add(20 * time.Second)
	for {
		spans := rec.Ended()
		var gateway sdktrace.ReadOnlySpan
		for _, sp := range spans {
			if sp.Name() == "koogallery production interface" && hasAttr(sp.Attributes(), "koogallery.activity", "updateInstanceStatus") {
				gateway = sp
			}
		}
		var names []string
		if gateway != nil {
			for _, sp := range spans {
				if sp.SpanContext().TraceID() == gateway.SpanContext().TraceID() {
					names = append(names, sp.Name())
				}
			}
			joined := strings.Join(names, "|")
			if strings.Contains(joined, "UpdateWorkflow:updateInstanceStatus") && strings.Contains(joined, "HandleUpdate:updateInstanceStatus") &&
				runTraced(spans) {
				if !hasAttr(gateway.Attributes(), "koogallery.result_code", "000000") {
					t.Fatalf("gateway span attributes %v", gateway.Attributes())
				}
				// The message log keeps the call's trace id, the way from a message to its trace.
				var logged string
				if err := s.pool.QueryRow(t.Context(), `SELECT trace_id FROM koogallery_messages
					WHERE activity = 'updateInstanceStatus' AND $1 = ANY(instance_ids)`, id).Scan(&logged); err != nil {
					t.Fatal(err)
				}
				if want := gateway.SpanContext().TraceID().String(); logged != want {
					t.Fatalf("message log trace_id %q, want the gateway span's %q", logged, want)
				}
				return
			}
		}
		if time.Now().After(deadline) {
			var all []string
			for _, sp := range spans {
				all = append(all, sp.Name())
			}
			t.Fatalf("no trace from the gateway into the worker; spans of the FREEZE's trace: %v (gateway span found: %v); all: %v", names, gateway != nil, all)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// runTraced reports whether the workflow run's trace (rooted at the inbox dispatcher's StartWorkflow; the
// RunWorkflow span ends only with the run) holds its activities: both RunActivity:Provision spans.
func runTraced(spans []sdktrace.ReadOnlySpan) bool {
	runs := map[string]bool{}
	for _, sp := range spans {
		if sp.Name() == "StartWorkflow:InstanceLifecycle" {
			runs[sp.SpanContext().TraceID().String()] = true
		}
	}
	provisions := 0
	for _, sp := range spans {
		if sp.Name() == "RunActivity:Provision" && runs[sp.SpanContext().TraceID().String()] {
			provisions++
		}
	}
	return provisions >= 2 // the purchase's create and the freeze
}

func hasAttr(attrs []attribute.KeyValue, key, value string) bool {
	for _, a := range attrs {
		if string(a.Key) == key && a.Value.AsString() == value {
			return true
		}
	}
	return false
}
