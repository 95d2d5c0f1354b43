package metrics

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/uber-go/tally/v4"
	tallyprom "github.com/uber-go/tally/v4/prometheus"
	"go.temporal.io/sdk/client"
	sdktally "go.temporal.io/sdk/contrib/tally"
)

// The worker process's families (besides the Temporal SDK's temporal_*).
const (
	ProvisioningCalls    = "kooflow_provisioning_calls_total"
	ProvisioningDuration = "kooflow_provisioning_duration_seconds"
	OrderQueries         = "kooflow_order_queries_total"
	Instances            = "kooflow_instances"
	InstancesParked      = "kooflow_instances_parked"
	AlertsOpen           = "kooflow_alerts_open"
	SettlementRuns       = "kooflow_settlement_runs_total"
	SettlementLines      = "kooflow_settlement_lines"
)

// SDKFamilies are the Temporal SDK families deploy/'s dashboard and rules use; the worker's metrics test checks
// that a real worker exports each.
func SDKFamilies() []string {
	return []string{
		"temporal_worker_task_slots_available", "temporal_worker_task_slots_used",
		"temporal_workflow_task_schedule_to_start_latency", "temporal_activity_schedule_to_start_latency",
		"temporal_sticky_cache_size", "temporal_sticky_cache_hit", "temporal_request", "temporal_num_pollers",
	}
}

// SDKFailureFamilies are the SDK's failure counters deploy/'s dashboard plots. The SDK exports one only after its
// first failure: a purchase's first order query runs as a local activity, so which one a failing order query
// creates depends on whether the local attempt or the regular activity failed.
func SDKFailureFamilies() []string {
	return []string{"temporal_activity_execution_failed", "temporal_local_activity_execution_failed"}
}

// Families are kooflow's own families, API and worker.
func Families() []string {
	return []string{GatewayCalls, GatewayCallDuration, GatewayAuthFailures, InboxPending, ConsoleRequests,
		ProvisioningCalls, ProvisioningDuration, OrderQueries, Instances, InstancesParked, AlertsOpen, SettlementRuns,
		SettlementLines}
}

// AlertKinds are the alert kinds kooflow raises; kooflow_alerts_open exports each (0 when none is open).
func AlertKinds() []string {
	return []string{"expiry", "unknown-product", "purchase-refused", "purchase-failing", "parked", "freeze-retention",
		"marketplace-call-failed", "settlement-failed", "order-query-failing", "freeze-after-renewal", "usage-push-parked",
		"usage-push-refused", "recon-unexplained-difference", "recon-payment-overdue", "recon-payment-short"}
}

// Outcomes of a provisioning call or an order query.
const (
	OutcomeOK          = "ok"           // done
	OutcomeRetryable   = "retryable"    // failed; Temporal retries it
	OutcomeNeedsPerson = "needs_person" // failed; the step parks
	OutcomeRefused     = "refused"      // provisioning only: the seller's endpoint refused the event
)

// Counts are what the worker's gauges read from PostgreSQL at scrape time (store.Store has each).
type Counts struct {
	InstancesByLifecycle func(context.Context) (map[string]int64, error)
	ParkedBySteps        func(context.Context) (map[string]int64, error)
	OpenAlerts           func(context.Context) (map[string]int64, error)
}

// Worker holds the worker process's metrics. A nil *Worker records nothing.
type Worker struct {
	reg          *prometheus.Registry
	log          *slog.Logger
	provisioning *prometheus.CounterVec
	provDuration *prometheus.HistogramVec
	orderQueries *prometheus.CounterVec
	settlement   *prometheus.CounterVec
	lines        *prometheus.GaugeVec
	scope        tally.Scope
	closeScope   func() error
	sdk          client.MetricsHandler
}

// NewWorker builds the worker process's registry with the Temporal SDK's metrics (TemporalHandler, reported
// through tally into the same registry) and, when counts are given, the gauges read from PostgreSQL.
func NewWorker(log *slog.Logger, counts *Counts) (*Worker, error) {
	m := &Worker{reg: newRegistry(), log: log,
		provisioning: prometheus.NewCounterVec(prometheus.CounterOpts{Name: ProvisioningCalls,
			Help: "Calls to the seller's provisioning, by event kind and outcome (ok, retryable, needs_person, refused)."},
			[]string{"kind", "outcome"}),
		provDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: ProvisioningDuration,
			Help:    "Duration of one call to the seller's provisioning, by event kind.",
			Buckets: []float64{.01, .05, .1, .25, .5, 1, 2.5, 5, 10, 20}}, []string{"kind"}),
		orderQueries: prometheus.NewCounterVec(prometheus.CounterOpts{Name: OrderQueries,
			Help: "Order queries to the marketplace, by outcome (ok, retryable, needs_person)."}, []string{"outcome"}),
		settlement: prometheus.NewCounterVec(prometheus.CounterOpts{Name: SettlementRuns,
			Help: "Settlement period closes finished, by outcome (closed, refused, failed)."}, []string{"outcome"}),
	}
	m.lines = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: SettlementLines,
		Help: "Lines of the bill this worker closed most recently, per product type (a bill that suddenly shrinks is worth a look)."},
		[]string{"product_type"})
	m.reg.MustRegister(m.provisioning, m.provDuration, m.orderQueries, m.settlement, m.lines)
	if counts != nil {
		m.reg.MustRegister(
			&labeledGauges{desc: prometheus.NewDesc(Instances, "Instances per lifecycle state.", []string{"lifecycle"}, nil),
				read: asFloats(counts.InstancesByLifecycle), log: log},
			&labeledGauges{desc: prometheus.NewDesc(InstancesParked, "Instances parked for a person, per parked stage.", []string{"step"}, nil),
				read: grouped(counts.ParkedBySteps, StepLabel), log: log},
			&labeledGauges{desc: prometheus.NewDesc(AlertsOpen, "Open alerts, per kind.", []string{"kind"}, nil),
				read: asFloats(counts.OpenAlerts), fixed: AlertKinds(), log: log},
		)
	}
	// The SDK's timers become histograms (aggregatable across workers, unlike summaries), in seconds.
	reporter := tallyprom.NewReporter(tallyprom.Options{Registerer: m.reg,
		DefaultTimerType:        tallyprom.HistogramTimerType,
		DefaultHistogramBuckets: []float64{.001, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
		OnRegisterError: func(err error) {
			if log != nil {
				log.Warn("metrics: a Temporal SDK metric could not be registered", "err", err)
			}
		}})
	scope, closer := tally.NewRootScope(tally.ScopeOptions{
		CachedReporter:  reporter,
		Separator:       tallyprom.DefaultSeparator,
		SanitizeOptions: &sdktally.PrometheusSanitizeOptions,
	}, time.Second)
	m.scope, m.closeScope = scope, closer.Close
	m.sdk = sdktally.NewMetricsHandler(scope)
	return m, nil
}

// TemporalHandler is the Temporal SDK's metrics handler (client.Options.MetricsHandler) reporting into this
// registry as temporal_*.
func (m *Worker) TemporalHandler() client.MetricsHandler { return m.sdk }

// Handler serves the registry.
func (m *Worker) Handler() http.Handler { return handler(m.reg, m.log) }

// Registry is the process registry.
func (m *Worker) Registry() *prometheus.Registry { return m.reg }

// Close flushes and stops the SDK metrics' reporting loop.
func (m *Worker) Close() error {
	if m == nil || m.closeScope == nil {
		return nil
	}
	return m.closeScope()
}

// ObserveProvisioning records one provisioning call.
func (m *Worker) ObserveProvisioning(kind, outcome string, d time.Duration) {
	if m == nil {
		return
	}
	m.provisioning.WithLabelValues(kind, outcome).Inc()
	m.provDuration.WithLabelValues(kind).Observe(d.Seconds())
}

// ObserveOrderQuery records one order query.
func (m *Worker) ObserveOrderQuery(outcome string) {
	if m == nil {
		return
	}
	m.orderQueries.WithLabelValues(outcome).Inc()
}

// ObserveSettlementBill records the line count of a bill a close decided (kooflow_settlement_lines).
func (m *Worker) ObserveSettlementBill(productType string, lines int64) {
	if m == nil {
		return
	}
	m.lines.WithLabelValues(productType).Set(float64(lines))
}

// ObserveSettlementRun records one finished period close.
func (m *Worker) ObserveSettlementRun(outcome string) {
	if m == nil {
		return
	}
	m.settlement.WithLabelValues(outcome).Inc()
}

// StepLabel bounds a parked stage as the workflow names it ("provision create", "query purchase order CS…",
// "record in PostgreSQL: …") to a label without ids: "provision <kind>", "query order", "record", or "other".
func StepLabel(stage string) string {
	switch {
	case strings.HasPrefix(stage, "provision "):
		switch k := strings.TrimPrefix(stage, "provision "); k {
		case "create", "freeze", "unfreeze", "upgrade", "release":
			return stage
		}
		return "provision other"
	case strings.HasPrefix(stage, "query "):
		return "query order"
	case strings.HasPrefix(stage, "record in PostgreSQL"):
		return "record"
	}
	return "other"
}

func asFloats(read func(context.Context) (map[string]int64, error)) func(context.Context) (map[string]float64, error) {
	return grouped(read, func(s string) string { return s })
}

func grouped(read func(context.Context) (map[string]int64, error), label func(string) string) func(context.Context) (map[string]float64, error) {
	return func(ctx context.Context) (map[string]float64, error) {
		if read == nil {
			return nil, errors.New("no reader configured")
		}
		counts, err := read(ctx)
		if err != nil {
			return nil, err
		}
		out := make(map[string]float64, len(counts))
		for k, n := range counts {
			out[label(k)] += float64(n)
		}
		return out, nil
	}
}

// ListenAndServe serves h on addr until ctx ends (the worker's metrics listener, KOOFLOW_WORKER_METRICS_ADDR).
// ready, if not nil, receives the bound address.
func ListenAndServe(ctx context.Context, addr string, h http.Handler, log *slog.Logger, ready func(net.Addr)) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("metrics listener on %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", h)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, WriteTimeout: 30 * time.Second}
	if ready != nil {
		ready(ln.Addr())
	}
	if log != nil {
		log.Info("metrics listening", "addr", ln.Addr().String(), "path", "/metrics")
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("metrics listener: %w", err)
	case <-ctx.Done():
	}
	shCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shCtx); err != nil {
		return fmt.Errorf("metrics listener shutdown: %w", err)
	}
	return nil
}
