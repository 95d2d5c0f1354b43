package scenario

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/kooflow/kooflow/emulator/deliver"
	"github.com/kooflow/kooflow/emulator/ledger"
	"github.com/kooflow/kooflow/emulator/market"
)

// Report is what a run found.
type Report struct {
	Orders     int
	Seed       uint64
	Mix        string
	Faults     string
	Wall       time.Duration // from the start to the end of the comparison
	DriveWall  time.Duration // until every customer had stopped
	Market     time.Duration // marketplace time covered
	Paths      map[string]PathCount
	Deliveries deliver.Stats
	Latency    map[string]deliver.Latency
	Queries    market.Stats
	Ledger     ledger.Totals
	Violations []deliver.Violation
	Mismatches []Mismatch
	Notes      []string
}

// PathCount counts customers on one path by how they ended.
type PathCount struct {
	Customers int
	Ended     map[string]int // marketplace state at the end
}

// Failed reports whether the run found anything wrong: a mismatch or a contract breach.
func (r *Report) Failed() bool { return len(r.Mismatches) > 0 || len(r.Violations) > 0 }

func (r *Runner) report(ctx context.Context, wallStart, drivenAt time.Time, ms []Mismatch) *Report {
	rep := &Report{
		Orders: r.cfg.Orders, Seed: r.cfg.Seed, Mix: FormatMix(r.cfg.Mix), Faults: r.cfg.Faults.String(),
		Wall: time.Since(wallStart), DriveWall: drivenAt.Sub(wallStart), Market: r.cfg.Horizon,
		Paths: map[string]PathCount{}, Deliveries: r.deps.Dispatcher.Stats(), Latency: r.deps.Dispatcher.Latencies(),
		Ledger: r.deps.Ledger.Totals(), Violations: r.deps.Dispatcher.Violations(), Mismatches: ms, Notes: r.notes,
	}
	if st, err := r.deps.Market.Stats(ctx); err == nil {
		rep.Queries = st
	}
	for _, c := range r.customers {
		pc := rep.Paths[c.path]
		if pc.Ended == nil {
			pc.Ended = map[string]int{}
		}
		pc.Customers++
		pc.Ended[c.state]++
		rep.Paths[c.path] = pc
	}
	return rep
}

// Print writes the report for a person.
func (rep *Report) Print(w io.Writer) {
	p := func(format string, args ...any) { fmt.Fprintf(w, format+"\n", args...) }
	verdict := "PASS"
	if rep.Failed() {
		verdict = "FAIL"
	}
	p("KooGallery emulator scenario: %s", verdict)
	p("  orders %d, seed %d, wall %s (customers %s, convergence %s), marketplace time %s",
		rep.Orders, rep.Seed, rep.Wall.Round(time.Millisecond), rep.DriveWall.Round(time.Millisecond),
		(rep.Wall - rep.DriveWall).Round(time.Millisecond), rep.Market)
	p("  faults: %s", rep.Faults)
	p("")
	p("Orders by path:")
	for _, path := range Paths() {
		pc, ok := rep.Paths[path]
		if !ok {
			continue
		}
		var ends []string
		for s, n := range pc.Ended {
			if s == "" {
				s = "not bought"
			}
			ends = append(ends, fmt.Sprintf("%s %d", s, n))
		}
		sort.Strings(ends)
		p("  %-18s %4d   %s", path, pc.Customers, strings.Join(ends, ", "))
	}
	d := rep.Deliveries
	p("")
	p("Deliveries: %d HTTP requests for %d messages (%d completed, %d gave up)", d.Deliveries, d.Messages, d.Delivered, d.GaveUp)
	p("  attempts %d, retries %d, duplicate copies %d, delayed past the freshness window %d, answers dropped %d, unreachable %d",
		d.Attempts, d.Retries, d.Copies, d.Delayed, d.Dropped, d.Lost)
	p("  transport errors %d, bad Body-Sign %d", d.TransportErr, d.BadBodySign)
	var acts []string
	for a, n := range d.ByActivity {
		acts = append(acts, fmt.Sprintf("%s %d", a, n))
	}
	sort.Strings(acts)
	p("  messages: %s", strings.Join(acts, ", "))
	var rets []string
	for a, n := range d.RetriesBy {
		rets = append(rets, fmt.Sprintf("%s %d", a, n))
	}
	sort.Strings(rets)
	p("  retries: %s", strings.Join(rets, ", "))
	var codes []string
	for c, n := range d.ResultCodes {
		codes = append(codes, fmt.Sprintf("%s×%d", c, n))
	}
	sort.Strings(codes)
	p("  answers: %s", strings.Join(codes, ", "))
	p("")
	p("Seller latency (production interface, answered deliveries):")
	names := make([]string, 0, len(rep.Latency))
	for a := range rep.Latency {
		names = append(names, a)
	}
	sort.Strings(names)
	for _, a := range names {
		l := rep.Latency[a]
		p("  %-22s n=%-6d p50 %-10s p99 %-10s max %s", a, l.Count, l.P50.Round(10*time.Microsecond),
			l.P99.Round(10*time.Microsecond), l.Max.Round(10*time.Microsecond))
	}
	q := rep.Queries
	p("")
	p("Order query API: %d served, %d refused, %d injected 5xx, %d injected timeouts", q.QueriesServed, q.QueriesRefused, q.QueriesFailed, q.QueriesHung)
	p("Ledger: %d order lines, paid %s, refunded %s, net %s", rep.Ledger.Orders, rep.Ledger.Paid.StringFixed(2),
		rep.Ledger.Refunded.StringFixed(2), rep.Ledger.Net.StringFixed(2))
	for _, n := range rep.Notes {
		p("note: %s", n)
	}
	p("")
	p("Contract breaches: %d", len(rep.Violations))
	for i, v := range rep.Violations {
		if i == 50 {
			p("  … %d more", len(rep.Violations)-50)
			break
		}
		p("  %s %s order %s instance %s: %s", v.At.Format(time.TimeOnly), v.Activity, v.OrderID, v.Instance, v.What)
	}
	p("Mismatches (marketplace vs seller read model): %d", len(rep.Mismatches))
	for i, m := range rep.Mismatches {
		if i == 100 {
			p("  … %d more", len(rep.Mismatches)-100)
			break
		}
		p("  %s", m)
	}
}
