package main

import (
	"context"
	"fmt"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/interceptor"

	"github.com/kooflow/kooflow/internal/app"
	"github.com/kooflow/kooflow/internal/logging"
	"github.com/kooflow/kooflow/internal/temporalconn"
	"github.com/kooflow/kooflow/internal/tracing"
)

// traced turns tracing on for a serving process when OTEL_EXPORTER_OTLP_ENDPOINT is set: d gets the tracer
// provider and a Temporal client carrying the tracing interceptor (workers created from it trace workflows and
// activities). stop flushes the exporter and closes that client.
func traced(ctx context.Context, d *app.Deps) (stop func(), err error) {
	tp, shutdown, err := tracing.Setup(ctx, "kooflow")
	if err != nil || tp == nil {
		return func() {}, err
	}
	ti, err := tracing.Interceptor(tp)
	if err != nil {
		return nil, err
	}
	opts := client.Options{Namespace: d.Config.TemporalNamespace,
		Logger: logging.Temporal(d.Log), Interceptors: []interceptor.ClientInterceptor{ti}}
	temporalconn.Encrypt(&opts, d.Keys)
	tc, err := client.NewClientFromExistingWithContext(ctx, d.Temporal, opts)
	if err != nil {
		_ = shutdown(ctx)
		return nil, fmt.Errorf("traced Temporal client: %w", err)
	}
	d.Temporal, d.Tracer = tc, tp
	d.Log.Info("tracing on: exporting spans over OTLP")
	return func() {
		tc.Close()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := shutdown(sctx); err != nil {
			d.Log.Warn("flush traces", "err", err)
		}
	}, nil
}
