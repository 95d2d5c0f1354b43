package activities

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shopspring/decimal"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/interceptor"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/kooflow/kooflow/emulator/market"
	"github.com/kooflow/kooflow/internal/config"
	"github.com/kooflow/kooflow/internal/koogallery/orderquery"
	"github.com/kooflow/kooflow/internal/logging"
	"github.com/kooflow/kooflow/internal/provisioning"
	"github.com/kooflow/kooflow/internal/store"
	"github.com/kooflow/kooflow/internal/testenv"
	"github.com/kooflow/kooflow/internal/tracing"
)

// TestActivitySpans runs the real QueryOrder, Provision and Record activities on a Temporal worker whose client
// carries the SDK's OpenTelemetry interceptor, against the emulated marketplace (TLS, AK/SK) and a signed webhook
// receiver, and records the spans in memory: each activity's span holds kooflow's own spans (the order query down
// to its HTTP call, the provisioning down to the webhook call, the read-model write), the webhook receives the
// trace in traceparent, and no span attribute carries a key, secret, signature, password or the buyer's data.
func TestActivitySpans(t *testing.T) {
	const ak, sk = "TESTAK0000000000", "test-secret-key-0123456789"
	const hookSecret = "webhook-secret-for-tests-0123"
	const password = "initial-Passw0rd!"
	m, msrv, err := market.Serve(market.Options{AK: ak, SK: sk, Seed: 7}, "127.0.0.1:0", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer msrv.Close()
	phone := "13800000000"
	if err := m.PutOrder(market.Order{OrderID: "TR1", OrderType: market.TypeNew, CreateTime: t0,
		Lines: []market.Line{{OrderLineID: "TR1-000001", ChargingMode: market.ChargingPeriod, PeriodType: "month", PeriodNumber: 1,
			ExpireTime: t0.AddDate(0, 1, 0), ProductID: "OFFI-KOOFLOW-CRM-MONTHLY", SKUCode: "crm-pro-month", LinearValue: 1,
			ListAmount: decimal.RequireFromString("300"), PaidAmount: decimal.RequireFromString("300")}},
		Buyer: &market.Buyer{CustomerID: "cust-1", CustomerName: "Wang Wu", MobilePhone: &phone}}); err != nil {
		t.Fatal(err)
	}
	q, err := orderquery.NewClient(orderquery.Options{Endpoint: msrv.URL, AK: config.Secret(ak), SK: config.Secret(sk), CAFile: msrv.CAFile})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var traceparent string
	recv := provisioning.NewReceiver(hookSecret, time.Minute, func(ctx context.Context, e provisioning.Event) (provisioning.Result, error) {
		return provisioning.Result{AppInfo: &provisioning.AppInfo{FrontEndURL: "https://crm.example/" + e.InstanceID,
			UserName: "owner", Password: password}}, nil
	})
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		traceparent = r.Header.Get("traceparent")
		mu.Unlock()
		recv.ServeHTTP(w, r)
	}))
	defer hook.Close()
	wh, err := provisioning.NewWebhook(hook.URL+"/hook?token=url-token-0123", hookSecret, hook.Client())
	if err != nil {
		t.Fatal(err)
	}

	rec := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(rec))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	ti, err := tracing.Interceptor(tp)
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.Dial(client.Options{HostPort: testenv.TemporalAddress(t), Namespace: "default",
		Logger: logging.Temporal(testenv.Logger(t)), Interceptors: []interceptor.ClientInterceptor{ti}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	a := &Lifecycle{Store: &store.Store{Pool: testenv.Pool(t), Keys: testKeys(t)}, Orders: q, Catalog: devCatalog(t),
		Builtin: provisioning.NewBuiltin(""), Webhook: wh}
	tq := testenv.TaskQueue(t)
	wk := worker.New(c, tq, worker.Options{})
	wk.RegisterActivity(a)
	wk.RegisterWorkflowWithOptions(func(ctx workflow.Context) error {
		ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{StartToCloseTimeout: time.Minute,
			RetryPolicy: &temporal.RetryPolicy{MaximumAttempts: 1}})
		if err := workflow.ExecuteActivity(ctx, a.Record, store.Write{Summary: "accepted", Instance: instanceRow("tr1", 1, "PROVISIONING")}).Get(ctx, nil); err != nil {
			return err
		}
		var f OrderFacts
		if err := workflow.ExecuteActivity(ctx, a.QueryOrder, QueryOrderInput{InstanceID: "tr1", OrderID: "TR1", OrderLineID: "TR1-000001"}).Get(ctx, &f); err != nil {
			return err
		}
		return workflow.ExecuteActivity(ctx, a.Provision, ProvisionInput{Target: "webhook", Event: provisioning.Event{
			EventID: "tr1:s1:create", Type: provisioning.Create, InstanceID: "tr1", OrderID: "TR1", OccurredAt: t0}}).Get(ctx, nil)
	}, workflow.RegisterOptions{Name: "TracedActivities"})
	if err := wk.Start(); err != nil {
		t.Fatal(err)
	}
	defer wk.Stop()
	run, err := c.ExecuteWorkflow(context.Background(), client.StartWorkflowOptions{ID: testenv.Unique("traced-"), TaskQueue: tq}, "TracedActivities")
	if err != nil {
		t.Fatal(err)
	}
	if err := run.Get(context.Background(), nil); err != nil {
		t.Fatal(err)
	}

	spans := rec.GetSpans().Snapshots()
	byName := map[string]sdktrace.ReadOnlySpan{}
	for _, s := range spans {
		byName[s.Name()] = s
	}
	childOf := func(child, parent string) sdktrace.ReadOnlySpan {
		t.Helper()
		c, p := byName[child], byName[parent]
		if c == nil || p == nil {
			var names []string
			for _, s := range spans {
				names = append(names, s.Name())
			}
			t.Fatalf("span %q or %q missing; spans: %v", child, parent, names)
		}
		if c.Parent().SpanID() != p.SpanContext().SpanID() || c.SpanContext().TraceID() != p.SpanContext().TraceID() {
			t.Fatalf("span %q is not a child of %q", child, parent)
		}
		return c
	}
	query := childOf("query order", "RunActivity:QueryOrder")
	call := childOf("koogallery order query", "query order")
	prov := childOf("provision", "RunActivity:Provision")
	hookSpan := childOf("provisioning webhook", "provision")
	childOf("record in PostgreSQL", "RunActivity:Record")
	attr := func(s sdktrace.ReadOnlySpan, key string) string {
		for _, kv := range s.Attributes() {
			if string(kv.Key) == key {
				return kv.Value.String()
			}
		}
		return ""
	}
	for _, want := range []struct {
		span      sdktrace.ReadOnlySpan
		key, want string
	}{
		{query, "koogallery.order_id", "TR1"}, {query, "kooflow.outcome", "ok"}, {query, "koogallery.order_type", "NEW"},
		{call, "http.response.status_code", "200"}, {call, "url.path", orderquery.Path},
		{prov, "kooflow.provisioner", "webhook"}, {prov, "kooflow.outcome", "ok"}, {prov, "kooflow.event_type", "create"},
		{hookSpan, "http.response.status_code", "200"}, {hookSpan, "kooflow.instance_id", "tr1"},
		{hookSpan, "server.address", strings.TrimPrefix(hook.URL, "http://")},
	} {
		if got := attr(want.span, want.key); got != want.want {
			t.Errorf("%s %s = %q, want %q", want.span.Name(), want.key, got, want.want)
		}
	}
	if call.SpanKind() != trace.SpanKindClient || hookSpan.SpanKind() != trace.SpanKindClient {
		t.Errorf("outbound calls are not client spans: %v %v", call.SpanKind(), hookSpan.SpanKind())
	}
	mu.Lock()
	tp2 := traceparent
	mu.Unlock()
	if want := hookSpan.SpanContext().TraceID().String() + "-" + hookSpan.SpanContext().SpanID().String(); !strings.Contains(tp2, want) {
		t.Errorf("the webhook got traceparent %q, want one naming %s", tp2, want)
	}
	for _, s := range spans {
		for _, kv := range s.Attributes() {
			v := kv.Value.String()
			for _, secret := range []string{ak, sk, hookSecret, password, phone, "Wang Wu", "url-token-0123", "v1="} {
				if strings.Contains(v, secret) {
					t.Errorf("span %s attribute %s carries %q", s.Name(), kv.Key, secret)
				}
			}
		}
	}
}
