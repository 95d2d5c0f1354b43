package lifecyclebench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// OpenOptions configure the open-instances benchmark: N instances are created through the production interface
// of a running stack and left open (provisioned, not released), and the worker's memory is read from its
// metrics before and after.
type OpenOptions struct {
	URL, AccessKey string // production interface
	// N instances, C at a time.
	N, C int
	// Place makes each order known to the marketplace the stack queries (as for Run).
	Place   func(ctx context.Context, orderID, orderLineID string) error
	Poll    time.Duration // queryInstance interval while waiting for provisioning (default 200 ms)
	Timeout time.Duration // bound of one instance's provisioning (default 5 minutes)
	// OrderPrefix starts the generated order ids (default OPEN).
	OrderPrefix string
	// MetricsURL is the worker's Prometheus endpoint (e.g. http://127.0.0.1:9464/metrics).
	MetricsURL string
	// Settle is how long to wait after the last instance was provisioned before the memory is read again, so the
	// worker's last workflow tasks have finished (default 10 s).
	Settle time.Duration
	// Progress, when set, is called every 1,000 instances.
	Progress func(done, failed int, elapsed time.Duration)
}

// WorkerMemory is what the worker's metrics say about its memory at one moment.
type WorkerMemory struct {
	RSS         float64 // process_resident_memory_bytes
	HeapInuse   float64 // go_memstats_heap_inuse_bytes
	StickyCache float64 // temporal_sticky_cache_size: workflow executions held in the sticky cache
}

// OpenReport holds the figures of an open-instances run.
type OpenReport struct {
	N, C          int
	Failures      int
	FirstFailure  string
	Elapsed       time.Duration
	ToProvisioned []time.Duration // sorted
	Before, After WorkerMemory
}

// PerInstanceRSS is the worker's resident memory added per open instance held in its sticky cache (bytes).
func (r *OpenReport) PerInstanceRSS() float64 {
	cached := r.After.StickyCache - r.Before.StickyCache
	if cached <= 0 {
		cached = float64(r.N - r.Failures)
	}
	if cached <= 0 {
		return 0
	}
	return (r.After.RSS - r.Before.RSS) / cached
}

// Write prints the report.
func (r *OpenReport) Write(w io.Writer) {
	mb := func(b float64) string { return strconv.FormatFloat(b/(1<<20), 'f', 1, 64) + " MB" }
	fmt.Fprintf(w, "open instances:  %d created through the production interface and left open, %d at a time, in %s: %.1f/s",
		r.N, r.C, r.Elapsed.Round(time.Millisecond), rate(r.N-r.Failures, r.Elapsed))
	if r.Failures > 0 {
		fmt.Fprintf(w, " (%d failed; first: %s)", r.Failures, r.FirstFailure)
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "to provisioned:  p50 %s   p99 %s   max %s\n", ms(Quantile(r.ToProvisioned, 0.5)),
		ms(Quantile(r.ToProvisioned, 0.99)), ms(Quantile(r.ToProvisioned, 1)))
	fmt.Fprintf(w, "worker before:   RSS %s, heap in use %s, sticky cache %.0f executions\n", mb(r.Before.RSS), mb(r.Before.HeapInuse), r.Before.StickyCache)
	fmt.Fprintf(w, "worker after:    RSS %s, heap in use %s, sticky cache %.0f executions\n", mb(r.After.RSS), mb(r.After.HeapInuse), r.After.StickyCache)
	fmt.Fprintf(w, "per cached open instance: %.1f KB RSS\n", r.PerInstanceRSS()/1024)
}

// RunOpen creates N open instances and reads the worker's memory before and after.
func RunOpen(ctx context.Context, o OpenOptions) (*OpenReport, error) {
	if o.URL == "" || o.AccessKey == "" || o.MetricsURL == "" {
		return nil, errors.New("lifecyclebench: the URL, the access key and the worker's metrics URL are required")
	}
	if o.N < 1 || o.C < 1 {
		return nil, errors.New("lifecyclebench: N and C must be at least 1")
	}
	if o.Poll <= 0 {
		o.Poll = 200 * time.Millisecond
	}
	if o.Timeout <= 0 {
		o.Timeout = 5 * time.Minute
	}
	if o.Settle <= 0 {
		o.Settle = 10 * time.Second
	}
	if o.OrderPrefix == "" {
		o.OrderPrefix = "OPEN"
	}
	g := newGateway(o.URL, o.AccessKey, o.C, 10*time.Second)
	rep := &OpenReport{N: o.N, C: o.C}
	var err error
	if rep.Before, err = ReadWorkerMemory(ctx, g.http, o.MetricsURL); err != nil {
		return nil, err
	}
	runID := strings.ToUpper(strconv.FormatInt(time.Now().UnixMilli(), 36))
	var mu sync.Mutex
	start := time.Now()
	done := 0
	each(o.N, o.C, func(i int) {
		ictx, cancel := context.WithTimeout(ctx, o.Timeout)
		_, d, err := provision(ictx, o.Place, o.Poll, g, fmt.Sprintf("%s%s%07d", o.OrderPrefix, runID, i))
		cancel()
		mu.Lock()
		defer mu.Unlock()
		done++
		if err != nil {
			rep.Failures++
			if rep.FirstFailure == "" {
				rep.FirstFailure = err.Error()
			}
		} else {
			rep.ToProvisioned = append(rep.ToProvisioned, d)
		}
		if o.Progress != nil && done%1000 == 0 {
			o.Progress(done, rep.Failures, time.Since(start))
		}
	})
	rep.Elapsed = time.Since(start)
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	sort.Slice(rep.ToProvisioned, func(i, j int) bool { return rep.ToProvisioned[i] < rep.ToProvisioned[j] })
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-time.After(o.Settle):
	}
	if rep.After, err = ReadWorkerMemory(ctx, g.http, o.MetricsURL); err != nil {
		return nil, err
	}
	return rep, nil
}

// ReadWorkerMemory reads the worker's resident memory, Go heap and sticky cache size from its Prometheus
// endpoint. A metric reported with several label sets (the SDK's sticky cache gauge, per worker) is summed.
func ReadWorkerMemory(ctx context.Context, hc *http.Client, url string) (WorkerMemory, error) {
	var m WorkerMemory
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return m, fmt.Errorf("worker metrics: %w", err)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return m, fmt.Errorf("worker metrics at %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return m, fmt.Errorf("worker metrics at %s: HTTP %d", url, resp.StatusCode)
	}
	vals, err := parseMetrics(resp.Body, "process_resident_memory_bytes", "go_memstats_heap_inuse_bytes", "temporal_sticky_cache_size")
	if err != nil {
		return m, fmt.Errorf("worker metrics at %s: %w", url, err)
	}
	if _, ok := vals["process_resident_memory_bytes"]; !ok {
		return m, fmt.Errorf("worker metrics at %s: no process_resident_memory_bytes", url)
	}
	m.RSS, m.HeapInuse, m.StickyCache = vals["process_resident_memory_bytes"], vals["go_memstats_heap_inuse_bytes"], vals["temporal_sticky_cache_size"]
	return m, nil
}

// parseMetrics sums the samples of the named metrics in Prometheus' text format.
func parseMetrics(r io.Reader, names ...string) (map[string]float64, error) {
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		name, rest, _ := strings.Cut(line, " ")
		if i := strings.IndexByte(name, '{'); i >= 0 {
			name = name[:i]
			if j := strings.LastIndexByte(line, '}'); j >= 0 {
				rest = strings.TrimSpace(line[j+1:])
			}
		}
		if !want[name] {
			continue
		}
		value, _, _ := strings.Cut(strings.TrimSpace(rest), " ")
		v, err := strconv.ParseFloat(value, 64)
		if err != nil {
			return nil, fmt.Errorf("metric %s: %q is not a number", name, value)
		}
		out[name] += v
	}
	return out, sc.Err()
}
