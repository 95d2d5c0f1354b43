package tracing

import (
	"context"
	"net/http"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// InstrumentationName is the tracer name of kooflow's own spans.
const InstrumentationName = "github.com/kooflow/kooflow"

// Start starts a span named name as a child of ctx's span, on the provider that recorded that span: the
// activity's span (the Temporal interceptor's RunActivity), or the request's. No provider is set globally, so
// with no span in ctx (tracing off) the span records nothing and costs next to nothing.
//
// Attributes must carry no secrets: ids, kinds, outcomes and status codes, never keys, signatures, tokens,
// URLs with their query, bodies or personal data.
func Start(ctx context.Context, name string, attrs ...attribute.KeyValue) (context.Context, trace.Span) {
	return trace.SpanFromContext(ctx).TracerProvider().Tracer(InstrumentationName).Start(ctx, name,
		trace.WithAttributes(attrs...))
}

// StartClient is Start for a span that calls another system (kind client).
func StartClient(ctx context.Context, name string, attrs ...attribute.KeyValue) (context.Context, trace.Span) {
	return trace.SpanFromContext(ctx).TracerProvider().Tracer(InstrumentationName).Start(ctx, name,
		trace.WithAttributes(attrs...), trace.WithSpanKind(trace.SpanKindClient))
}

// End records err (nil: success) on span and ends it. The error's text is recorded: callers keep secrets out
// of their errors anyway, since errors are logged.
func End(span trace.Span, err error) {
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}

// Inject writes ctx's trace context into h (the W3C traceparent header), so a system kooflow calls can continue
// the trace. Without a recording span it writes nothing.
func Inject(ctx context.Context, h http.Header) {
	if !trace.SpanContextFromContext(ctx).IsValid() {
		return
	}
	propagation.TraceContext{}.Inject(ctx, propagation.HeaderCarrier(h))
}
