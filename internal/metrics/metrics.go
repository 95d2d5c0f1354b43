// Package metrics defines kooflow's Prometheus metric families and the registries the API and worker processes
// serve them from (README.md, "Operating kooflow"). Each process builds its own registry here
// and passes the typed recorders to the code that counts; nothing registers with Prometheus' global registry.
// Label values are bounded: activities, result codes, reasons, route templates, kinds and outcomes, never ids.
package metrics

import (
	"context"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// scrapeTimeout bounds the PostgreSQL reads a scrape triggers: a scrape has no context of its own.
const scrapeTimeout = 3 * time.Second

// newRegistry is a process registry with the Go runtime and process collectors.
func newRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// handler serves reg in the text exposition format.
func handler(reg *prometheus.Registry, log *slog.Logger) http.Handler {
	opts := promhttp.HandlerOpts{Registry: reg, MaxRequestsInFlight: 4, Timeout: 10 * time.Second}
	if log != nil {
		opts.ErrorLog = slogPrinter{log}
	}
	return promhttp.HandlerFor(reg, opts)
}

type slogPrinter struct{ log *slog.Logger }

func (p slogPrinter) Println(v ...any) { p.log.Warn("metrics scrape", "err", v) }

// labeledGauges is a collector whose values are read (from PostgreSQL) at scrape time, one series per label
// value (or one unlabeled series). A failed read fails the scrape of that family and is logged, so a dashboard
// shows a gap rather than a false zero.
type labeledGauges struct {
	desc *prometheus.Desc
	read func(ctx context.Context) (map[string]float64, error)
	// fixed are label values always exported (as 0 when absent), so a rule can compare against them.
	fixed []string
	// unlabeled: desc has no label, and read returns one value under "".
	unlabeled bool
	log       *slog.Logger
}

func (g *labeledGauges) Describe(ch chan<- *prometheus.Desc) { ch <- g.desc }

func (g *labeledGauges) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), scrapeTimeout)
	defer cancel()
	vals, err := g.read(ctx)
	if err != nil {
		if g.log != nil {
			g.log.Warn("metrics: read failed", "metric", g.desc.String(), "err", err)
		}
		ch <- prometheus.NewInvalidMetric(g.desc, err)
		return
	}
	for _, f := range g.fixed {
		if _, ok := vals[f]; !ok {
			vals[f] = 0
		}
	}
	for label, v := range vals {
		if g.unlabeled {
			ch <- prometheus.MustNewConstMetric(g.desc, prometheus.GaugeValue, v)
			continue
		}
		ch <- prometheus.MustNewConstMetric(g.desc, prometheus.GaugeValue, v, label)
	}
}

func status(code int) string { return strconv.Itoa(code) }
