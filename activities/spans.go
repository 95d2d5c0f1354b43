package activities

import (
	"context"
	"errors"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/kooflow/kooflow/internal/koogallery/orderquery"
	"github.com/kooflow/kooflow/internal/provisioning"
	"github.com/kooflow/kooflow/internal/store"
	"github.com/kooflow/kooflow/internal/tracing"
)

// Spans inside the activities (internal/tracing): each is a child of the activity's own span, which the
// Temporal interceptor starts on the worker, so a trace shows which step of an activity took the time. Their
// attributes are ids, kinds and outcomes only: no appInfo, Kit data, buyer details, keys or URLs.

// provisionerKind names a provisioner without its URL (a webhook URL may carry a token).
func provisionerKind(p provisioning.Provisioner) string {
	if _, ok := p.(*provisioning.Webhook); ok {
		return "webhook"
	}
	return "builtin"
}

// provisionSpan starts the span of one provisioning event delivered by p.
func provisionSpan(ctx context.Context, p provisioning.Provisioner, e provisioning.Event) (context.Context, trace.Span) {
	return tracing.Start(ctx, "provision", attribute.String("kooflow.event_type", string(e.Type)),
		attribute.String("kooflow.event_id", e.EventID), attribute.String("kooflow.instance_id", e.InstanceID),
		attribute.String("kooflow.provisioner", provisionerKind(p)), attribute.Bool("koogallery.test_flag", e.TestFlag))
}

func endProvisionSpan(span trace.Span, err error) {
	span.SetAttributes(attribute.String("kooflow.outcome", provisionOutcome(err)))
	if code, _, refused := provisioning.RefusalCode(err); refused && code != "" {
		span.SetAttributes(attribute.String("koogallery.result_code", code))
	}
	tracing.End(span, err)
}

// queryOrder calls the marketplace's order query in a span that says which order and how it went.
func (a *Lifecycle) queryOrder(ctx context.Context, in QueryOrderInput) (*orderquery.OrderInfo, error) {
	ctx, span := tracing.Start(ctx, "query order", attribute.String("kooflow.instance_id", in.InstanceID),
		attribute.String("koogallery.order_id", in.OrderID), attribute.String("koogallery.order_line_id", in.OrderLineID),
		attribute.StringSlice("kooflow.expect", in.Expect))
	info, err := a.Orders.QueryOrder(ctx, in.OrderID, in.OrderLineID)
	outcome := "ok"
	var qe *orderquery.Error
	switch {
	case errors.As(err, &qe) && !qe.Retryable:
		outcome = "refused"
	case err != nil:
		outcome = "retryable"
	}
	span.SetAttributes(attribute.String("kooflow.outcome", outcome))
	if info != nil {
		span.SetAttributes(attribute.String("koogallery.order_type", info.OrderType))
	}
	tracing.End(span, err)
	return info, err
}

// recordSpan starts the span of one read-model write: which instance, and how much it writes.
func recordSpan(ctx context.Context, w store.Write) (context.Context, trace.Span) {
	attrs := []attribute.KeyValue{attribute.Int("kooflow.events", len(w.Events)), attribute.Int("kooflow.orders", len(w.Orders)),
		attribute.Int("kooflow.alerts", len(w.Alerts)), attribute.Int("kooflow.parkings", len(w.Parkings))}
	if w.Instance != nil {
		attrs = append(attrs, attribute.String("kooflow.instance_id", w.Instance.InstanceID),
			attribute.String("kooflow.lifecycle", w.Instance.Lifecycle), attribute.Int64("kooflow.version", w.Instance.Version))
	}
	return tracing.Start(ctx, "record in PostgreSQL", attrs...)
}
