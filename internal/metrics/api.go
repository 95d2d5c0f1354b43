package metrics

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// The API process's families.
const (
	GatewayCalls        = "kooflow_gateway_calls_total"
	GatewayCallDuration = "kooflow_gateway_call_duration_seconds"
	GatewayAuthFailures = "kooflow_gateway_auth_failures_total"
	InboxPending        = "kooflow_inbox_pending"
	ConsoleRequests     = "kooflow_console_requests_total"
)

// activities are the production interface's activity names; anything else is counted as "unknown" so that a
// caller cannot create label values.
var activities = map[string]bool{
	"newInstance": true, "queryInstance": true, "refreshInstance": true, "updateInstanceStatus": true,
	"releaseInstance": true, "upgradeInstance": true, "changeInstanceCheck": true,
}

// API holds the API process's metrics. A nil *API records nothing.
type API struct {
	reg          *prometheus.Registry
	log          *slog.Logger
	calls        *prometheus.CounterVec
	duration     *prometheus.HistogramVec
	authFailures *prometheus.CounterVec
	console      *prometheus.CounterVec
}

// NewAPI builds the API process's registry. pending reads the number of newInstance calls whose workflow start
// is still pending in the inbox (store.InboxPendingCount).
func NewAPI(log *slog.Logger, pending func(context.Context) (int64, error)) *API {
	m := &API{reg: newRegistry(), log: log,
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{Name: GatewayCalls,
			Help: "Production-interface calls answered, by activity and result code."}, []string{"activity", "result_code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: GatewayCallDuration,
			Help:    "Time from receiving a production-interface call to writing its answer (the marketplace waits 5 s).",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2, 3, 4, 5}}, []string{"activity"}),
		authFailures: prometheus.NewCounterVec(prometheus.CounterOpts{Name: GatewayAuthFailures,
			Help: "Production-interface calls refused by authentication, by reason (the message log's verdict)."}, []string{"reason"}),
		console: prometheus.NewCounterVec(prometheus.CounterOpts{Name: ConsoleRequests,
			Help: "Console API requests, by route template and HTTP status."}, []string{"route", "status"}),
	}
	m.reg.MustRegister(m.calls, m.duration, m.authFailures, m.console)
	m.reg.MustRegister(&labeledGauges{
		desc: prometheus.NewDesc(InboxPending, "newInstance calls accepted whose workflow start has not been confirmed yet.", nil, nil),
		read: func(ctx context.Context) (map[string]float64, error) {
			n, err := pending(ctx)
			return map[string]float64{"": float64(n)}, err
		},
		unlabeled: true,
		log:       log,
	})
	return m
}

// Handler serves the registry (GET /metrics).
func (m *API) Handler() http.Handler { return handler(m.reg, m.log) }

// Registry is the process registry, for tests and for adding collectors.
func (m *API) Registry() *prometheus.Registry { return m.reg }

// ObserveCall records one answered production-interface call. verdict is the authentication verdict as the
// message log records it; anything but "ok" and "not_checked" counts as an authentication failure.
func (m *API) ObserveCall(activity, resultCode, verdict string, d time.Duration) {
	if m == nil {
		return
	}
	if !activities[activity] {
		activity = "unknown"
	}
	if len(resultCode) != 6 {
		resultCode = "other"
	}
	m.calls.WithLabelValues(activity, resultCode).Inc()
	m.duration.WithLabelValues(activity).Observe(d.Seconds())
	switch verdict {
	case "", "ok", "not_checked":
	default:
		m.authFailures.WithLabelValues(verdict).Inc()
	}
}

// ObserveConsole records one console request; route is the router's template ("" when no route matched).
func (m *API) ObserveConsole(route string, code int) {
	if m == nil {
		return
	}
	if route == "" {
		route = "unmatched"
	}
	m.console.WithLabelValues(route, status(code)).Inc()
}
