package tracing_test

import (
	"context"
	"errors"
	"net/http"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/kooflow/kooflow/internal/tracing"
)

// TestStartFollowsTheSpanInTheContext: a span started under a recorded span is recorded by the same provider as
// its child, with its attributes and error; without a span in the context (tracing off) nothing is recorded and
// no traceparent is sent.
func TestStartFollowsTheSpanInTheContext(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	defer func() { _ = tp.Shutdown(context.Background()) }()

	ctx, parent := tp.Tracer("test").Start(context.Background(), "parent")
	cctx, child := tracing.StartClient(ctx, "call", attribute.String("kooflow.instance_id", "i-1"))
	h := http.Header{}
	tracing.Inject(cctx, h)
	tracing.End(child, errors.New("refused"))
	parent.End()

	spans := exp.GetSpans().Snapshots()
	if len(spans) != 2 || spans[0].Name() != "call" {
		t.Fatalf("spans %v", spans)
	}
	c := spans[0]
	if c.Parent().SpanID() != parent.SpanContext().SpanID() || c.Status().Code != codes.Error || len(c.Events()) != 1 ||
		c.Attributes()[0].Value.AsString() != "i-1" {
		t.Fatalf("child span: parent %v status %v events %v attrs %v", c.Parent(), c.Status(), c.Events(), c.Attributes())
	}
	if want := "00-" + c.SpanContext().TraceID().String() + "-" + c.SpanContext().SpanID().String() + "-01"; h.Get("traceparent") != want {
		t.Fatalf("traceparent %q, want %q", h.Get("traceparent"), want)
	}

	off, span := tracing.Start(context.Background(), "untraced")
	if span.IsRecording() || span.SpanContext().IsValid() {
		t.Fatal("a span without a provider in the context records")
	}
	h = http.Header{}
	tracing.Inject(off, h)
	tracing.End(span, nil)
	if len(h) != 0 || len(exp.GetSpans()) != 2 {
		t.Fatalf("tracing off: headers %v, %d spans", h, len(exp.GetSpans()))
	}
}
