// Package lifecyclebench measures the instance lifecycle against a running stack the way the marketplace drives
// it: N instances go newInstance → provisioned (queryInstance answers 000000) → releaseInstance → released (the
// workflow closed) through the real production interface, C at a time. In the same run and against the same
// Temporal server it then runs N bare workflows of three no-op activities at the same concurrency, so the ratio
// of the two rates says how much of the server's capacity the lifecycle's own work (order query, provisioning,
// read-model writes, Updates) costs, independent of how fast the machine is. `kooflow bench lifecycle` runs it.
package lifecyclebench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"go.temporal.io/sdk/client"

	"github.com/kooflow/kooflow/internal/instance"
	"github.com/kooflow/kooflow/internal/koogallery"
)

// Options configure a run.
type Options struct {
	// URL is the production interface, e.g. http://127.0.0.1:8080/koogallery/v2; AccessKey signs the calls.
	URL       string
	AccessKey string
	// Temporal is a client of the server the stack's worker uses; the bare workflows run there too, on
	// BareTaskQueue (a worker for it runs inside this process).
	Temporal      client.Client
	BareTaskQueue string
	// N lifecycles and N bare workflows, C at a time.
	N, C int
	// Place makes each order known to the marketplace the stack queries (outside the measured gateway calls).
	Place func(ctx context.Context, orderID, orderLineID string) error
	// Poll is the interval of queryInstance while waiting for provisioning (default 50 ms).
	Poll time.Duration
	// Timeout bounds one lifecycle (default 2 minutes).
	Timeout time.Duration
	// OrderPrefix starts the generated order ids (default BENCH).
	OrderPrefix string
	// SkipBare leaves the bare workflows out (the ratio is then not reported).
	SkipBare bool
}

// Report holds a run's figures.
type Report struct {
	N, C              int
	Lifecycles        time.Duration // wall time of the lifecycle phase
	LifecycleFailures int
	FirstFailure      string
	Bare              time.Duration // wall time of the bare phase
	BareFailures      int
	ToProvisioned     []time.Duration // newInstance sent → queryInstance 000000, sorted
	Gateway           []time.Duration // every gateway call of the lifecycle phase, sorted
	GatewayCalls      map[string]int  // by activity
}

// LifecycleRate is completed lifecycles per second.
func (r *Report) LifecycleRate() float64 { return rate(r.N-r.LifecycleFailures, r.Lifecycles) }

// BareRate is completed bare workflows per second.
func (r *Report) BareRate() float64 { return rate(r.N-r.BareFailures, r.Bare) }

// Ratio is LifecycleRate / BareRate (0 without the bare phase).
func (r *Report) Ratio() float64 {
	if r.BareRate() == 0 {
		return 0
	}
	return r.LifecycleRate() / r.BareRate()
}

func rate(n int, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}

// Quantile returns the value at q of sorted durations by nearest rank.
func Quantile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

func ms(d time.Duration) string {
	return strconv.FormatFloat(float64(d.Microseconds())/1000, 'f', 1, 64) + " ms"
}

// Write prints the report.
func (r *Report) Write(w io.Writer) {
	fmt.Fprintf(w, "lifecycles:      %d (newInstance → provisioned → releaseInstance → released), %d at a time, in %s: %.1f/s",
		r.N, r.C, r.Lifecycles.Round(time.Millisecond), r.LifecycleRate())
	if r.LifecycleFailures > 0 {
		fmt.Fprintf(w, " (%d failed; first: %s)", r.LifecycleFailures, r.FirstFailure)
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "to provisioned:  p50 %s   p99 %s   max %s\n", ms(Quantile(r.ToProvisioned, 0.5)),
		ms(Quantile(r.ToProvisioned, 0.99)), ms(Quantile(r.ToProvisioned, 1)))
	keys := make([]string, 0, len(r.GatewayCalls))
	for k := range r.GatewayCalls {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var calls []string
	for _, k := range keys {
		calls = append(calls, fmt.Sprintf("%s×%d", k, r.GatewayCalls[k]))
	}
	fmt.Fprintf(w, "gateway meanwhile: p50 %s   p99 %s   max %s over %d calls (%s)\n", ms(Quantile(r.Gateway, 0.5)),
		ms(Quantile(r.Gateway, 0.99)), ms(Quantile(r.Gateway, 1)), len(r.Gateway), strings.Join(calls, " "))
	if r.Bare > 0 {
		fmt.Fprintf(w, "bare workflows:  %d of 3 no-op activities, %d at a time, in %s: %.1f/s", r.N, r.C,
			r.Bare.Round(time.Millisecond), r.BareRate())
		if r.BareFailures > 0 {
			fmt.Fprintf(w, " (%d failed)", r.BareFailures)
		}
		fmt.Fprintln(w)
		fmt.Fprintf(w, "ratio:           %.2f (lifecycles/s ÷ bare workflows/s)\n", r.Ratio())
	}
}

// Run runs the lifecycle phase, then the bare phase.
func Run(ctx context.Context, o Options) (*Report, error) {
	if o.URL == "" || o.AccessKey == "" || o.Temporal == nil {
		return nil, errors.New("lifecyclebench: the URL, the access key and a Temporal client are required")
	}
	if o.N < 1 || o.C < 1 {
		return nil, errors.New("lifecyclebench: N and C must be at least 1")
	}
	if o.Poll <= 0 {
		o.Poll = 50 * time.Millisecond
	}
	if o.Timeout <= 0 {
		o.Timeout = 2 * time.Minute
	}
	if o.OrderPrefix == "" {
		o.OrderPrefix = "BENCH"
	}
	g := newGateway(o.URL, o.AccessKey, o.C, 0)

	rep := &Report{N: o.N, C: o.C}
	runID := strings.ToUpper(strconv.FormatInt(time.Now().UnixMilli(), 36))
	var mu sync.Mutex
	start := time.Now()
	each(o.N, o.C, func(i int) {
		d, err := lifecycle(ctx, o, g, fmt.Sprintf("%s%s%06d", o.OrderPrefix, runID, i))
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			rep.LifecycleFailures++
			if rep.FirstFailure == "" {
				rep.FirstFailure = err.Error()
			}
			return
		}
		rep.ToProvisioned = append(rep.ToProvisioned, d)
	})
	rep.Lifecycles = time.Since(start)
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	sort.Slice(rep.ToProvisioned, func(i, j int) bool { return rep.ToProvisioned[i] < rep.ToProvisioned[j] })
	rep.Gateway, rep.GatewayCalls = g.sorted()

	if !o.SkipBare {
		d, failed, err := runBare(ctx, o.Temporal, o.BareTaskQueue, o.N, o.C)
		if err != nil {
			return nil, err
		}
		rep.Bare, rep.BareFailures = d, failed
	}
	return rep, nil
}

// each calls fn(0..n-1) from c goroutines.
func each(n, c int, fn func(i int)) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for range c {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				fn(i)
			}
		}()
	}
	wg.Wait()
}

// lifecycle takes one instance through its life and returns the time from newInstance to provisioned.
func lifecycle(ctx context.Context, o Options, g *gateway, orderID string) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	id, provisioned, err := provision(ctx, o.Place, o.Poll, g, orderID)
	if err != nil {
		return 0, err
	}
	rel, err := g.call(ctx, koogallery.ActivityReleaseInstance, body(map[string]string{"activity": koogallery.ActivityReleaseInstance, "instanceId": id}))
	if err != nil {
		return 0, err
	}
	if rel.ResultCode != koogallery.ResultSuccess {
		return 0, fmt.Errorf("releaseInstance %s: %s %s", id, rel.ResultCode, rel.ResultMsg)
	}
	// The workflow closes once the release is recorded in the read model.
	if err := o.Temporal.GetWorkflow(ctx, instance.WorkflowID(id), "").Get(ctx, nil); err != nil {
		return 0, fmt.Errorf("instance %s: wait for its workflow to close: %w", id, err)
	}
	return provisioned, nil
}

// provision places the order (when place is set), sends newInstance and polls queryInstance every poll until the
// instance is provisioned; it returns the instance id and the time from newInstance to provisioned. ctx bounds it.
func provision(ctx context.Context, place func(ctx context.Context, orderID, orderLineID string) error, poll time.Duration,
	g *gateway, orderID string) (string, time.Duration, error) {
	line := orderID + "-000001"
	if place != nil {
		if err := place(ctx, orderID, line); err != nil {
			return "", 0, fmt.Errorf("place order %s: %w", orderID, err)
		}
	}
	start := time.Now()
	r, err := g.call(ctx, koogallery.ActivityNewInstance, koogallery.NewInstanceBody(orderID, line, uuid.NewString(), false))
	if err != nil {
		return "", 0, err
	}
	if r.ResultCode != koogallery.ResultSuccess && r.ResultCode != koogallery.ResultInProgress {
		return "", 0, fmt.Errorf("newInstance of order %s: %s %s", orderID, r.ResultCode, r.ResultMsg)
	}
	id := r.InstanceID
	for {
		q, err := g.call(ctx, koogallery.ActivityQueryInstance, body(map[string]string{"activity": koogallery.ActivityQueryInstance, "instanceId": id}))
		if err != nil {
			return id, 0, err
		}
		if q.ResultCode == koogallery.ResultSuccess {
			return id, time.Since(start), nil
		}
		if q.ResultCode != koogallery.ResultInProgress && q.ResultCode != koogallery.ResultNotFound {
			return id, 0, fmt.Errorf("queryInstance %s: %s %s", id, q.ResultCode, q.ResultMsg)
		}
		select {
		case <-ctx.Done():
			return id, 0, fmt.Errorf("instance %s not provisioned: %w", id, ctx.Err())
		case <-time.After(poll):
		}
	}
}

func body(m map[string]string) []byte {
	b, _ := json.Marshal(m)
	return b
}

// gateway sends signed calls and records their latency.
type gateway struct {
	url, key string
	http     *http.Client

	mu        sync.Mutex
	latencies []time.Duration
	calls     map[string]int
}

// newGateway is a client of the production interface at url keeping c connections open; timeout 0 means none.
func newGateway(url, key string, c int, timeout time.Duration) *gateway {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = c
	return &gateway{url: url, key: key, http: &http.Client{Transport: tr, Timeout: timeout}, calls: map[string]int{}}
}

func (g *gateway) call(ctx context.Context, activity string, b []byte) (koogallery.Response, error) {
	var r koogallery.Response
	start := time.Now()
	q, err := koogallery.SignQuery(g.key, b, start, koogallery.NewNonce())
	if err != nil {
		return r, err
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(cctx, http.MethodPost, g.url+"?"+q.Encode(), bytes.NewReader(b))
	if err != nil {
		return r, err
	}
	req.Header.Set("Content-Type", "application/json;charset=utf8")
	resp, err := g.http.Do(req)
	if err != nil {
		return r, fmt.Errorf("%s: %w", activity, err)
	}
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	lat := time.Since(start)
	if err != nil {
		return r, fmt.Errorf("%s: read the answer: %w", activity, err)
	}
	if resp.StatusCode != http.StatusOK {
		return r, fmt.Errorf("%s: HTTP %d", activity, resp.StatusCode)
	}
	if resp.Header.Get(koogallery.BodySignHeaderName) != koogallery.BodySignHeader(g.key, raw) {
		return r, fmt.Errorf("%s: the answer's Body-Sign does not match", activity)
	}
	if err := json.Unmarshal(raw, &r); err != nil {
		return r, fmt.Errorf("%s: answer: %w", activity, err)
	}
	g.mu.Lock()
	g.latencies = append(g.latencies, lat)
	g.calls[activity]++
	g.mu.Unlock()
	return r, nil
}

func (g *gateway) sorted() ([]time.Duration, map[string]int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := append([]time.Duration(nil), g.latencies...)
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	calls := make(map[string]int, len(g.calls))
	for k, v := range g.calls {
		calls[k] = v
	}
	return out, calls
}
