// Package loadgen measures the production interface the way the marketplace uses it: N concurrent clients send
// signed newInstance calls for fresh orders to a running kooflow and record each call's latency and result
// code. It is what `kooflow load` runs; it talks only to the URL it is given.
package loadgen

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/kooflow/kooflow/internal/koogallery"
)

// Options configure a run.
type Options struct {
	// URL is the production interface, e.g. http://127.0.0.1:8080/koogallery/v2.
	URL string
	// AccessKey signs the requests (KOOGALLERY_ACCESS_KEY of the target).
	AccessKey string
	// Concurrency is the number of clients, each sending its next call as soon as the previous one is answered.
	Concurrency int
	// Requests bounds the measured calls (all clients together); Duration bounds the measured time. At least
	// one must be set; the run stops at whichever comes first.
	Requests int
	Duration time.Duration
	// Warmup calls are sent first and left out of the figures (connection set-up, caches).
	Warmup int
	// TestFlag marks the calls as the marketplace's debug calls (testFlag "1").
	TestFlag bool
	// OrderPrefix starts every generated order id; a run-unique part follows, so runs never collide.
	OrderPrefix string
	// Timeout bounds one call; 10 s if zero.
	Timeout time.Duration
	// Place, if set, is called before each call (outside the measured time) to make the order known to the
	// marketplace the target queries, so its workflows provision instead of parking on an unknown order.
	Place func(ctx context.Context, orderID, orderLineID string) error
	// HTTPClient replaces the default client (keep-alive connections, one per client).
	HTTPClient *http.Client
	// Settle, if set, is waited for after the warm-up and before the measured calls (see IdleWait).
	Settle *IdleWait
}

// Report holds a run's figures.
type Report struct {
	Concurrency int
	Requests    int
	Elapsed     time.Duration
	// Codes counts result codes; Errors counts calls that produced none (transport errors, non-200, bad
	// Body-Sign), by kind.
	Codes  map[string]int
	Errors map[string]int
	// Settled says how the wait for idle CPUs ended (nil: no wait).
	Settled   *Settled
	latencies []time.Duration // of every measured call that got an answer, sorted
}

// Quantile returns the latency at q (0 < q ≤ 1) by nearest rank.
func (r *Report) Quantile(q float64) time.Duration {
	if len(r.latencies) == 0 {
		return 0
	}
	i := int(math.Ceil(q*float64(len(r.latencies)))) - 1
	return r.latencies[max(0, min(i, len(r.latencies)-1))]
}

// Max is the slowest answered call.
func (r *Report) Max() time.Duration { return r.Quantile(1) }

// Throughput is answered calls per second of wall time.
func (r *Report) Throughput() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(len(r.latencies)) / r.Elapsed.Seconds()
}

// Answered is the number of calls that got a signed answer.
func (r *Report) Answered() int { return len(r.latencies) }

// Write prints the report.
func (r *Report) Write(w io.Writer) {
	ms := func(d time.Duration) string {
		return strconv.FormatFloat(float64(d.Microseconds())/1000, 'f', 1, 64) + " ms"
	}
	r.Settled.write(w)
	fmt.Fprintf(w, "newInstance calls: %d sent by %d concurrent clients in %s\n", r.Requests, r.Concurrency, r.Elapsed.Round(time.Millisecond))
	fmt.Fprintf(w, "throughput:        %.1f answered calls/s\n", r.Throughput())
	fmt.Fprintf(w, "latency:           p50 %s   p90 %s   p99 %s   max %s\n", ms(r.Quantile(0.5)), ms(r.Quantile(0.9)), ms(r.Quantile(0.99)), ms(r.Max()))
	fmt.Fprintf(w, "result codes:     ")
	for _, k := range sortedKeys(r.Codes) {
		fmt.Fprintf(w, " %s×%d", k, r.Codes[k])
	}
	fmt.Fprintln(w)
	if len(r.Errors) > 0 {
		fmt.Fprintf(w, "errors:           ")
		for _, k := range sortedKeys(r.Errors) {
			fmt.Fprintf(w, " %s×%d", k, r.Errors[k])
		}
		fmt.Fprintln(w)
	}
}

func sortedKeys(m map[string]int) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

type outcome struct {
	latency time.Duration
	code    string
	errKind string
}

// Run performs the warm-up, then the measured calls, and reports.
func Run(ctx context.Context, o Options) (*Report, error) {
	if o.URL == "" || o.AccessKey == "" {
		return nil, errors.New("loadgen: the URL and the access key are required")
	}
	if o.Concurrency < 1 {
		return nil, errors.New("loadgen: concurrency must be at least 1")
	}
	if o.Requests <= 0 && o.Duration <= 0 {
		return nil, errors.New("loadgen: set a number of requests or a duration")
	}
	if err := o.defaults(); err != nil {
		return nil, err
	}
	nextOrder := o.orderSource()

	settled, err := o.prepare(ctx, nextOrder)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	outs, err := phase(ctx, o, o.Requests, o.Duration, nextOrder)
	if err != nil {
		return nil, err
	}
	rep := &Report{Concurrency: o.Concurrency, Requests: len(outs), Elapsed: time.Since(start),
		Codes: map[string]int{}, Errors: map[string]int{}, Settled: settled}
	for _, x := range outs {
		if x.errKind != "" {
			rep.Errors[x.errKind]++
			continue
		}
		rep.Codes[x.code]++
		rep.latencies = append(rep.latencies, x.latency)
	}
	sort.Slice(rep.latencies, func(i, j int) bool { return rep.latencies[i] < rep.latencies[j] })
	return rep, nil
}

// prepare sends the warm-up calls, then waits for Settle if set.
func (o Options) prepare(ctx context.Context, nextOrder func() string) (*Settled, error) {
	if o.Warmup > 0 {
		if _, err := phase(ctx, o, o.Warmup, 0, nextOrder); err != nil {
			return nil, err
		}
	}
	if o.Settle == nil {
		return nil, nil
	}
	waited, idle, err := o.Settle.Wait(ctx)
	if err != nil {
		return nil, fmt.Errorf("loadgen: wait for idle CPUs: %w", err)
	}
	return &Settled{Waited: waited, Idle: idle, Share: o.Settle.Idle}, nil
}

// Settled is how the wait before the measured calls ended.
type Settled struct {
	Waited time.Duration
	// Idle is false when the wait gave up at its Max and the calls were measured anyway.
	Idle  bool
	Share float64
}

func (s *Settled) write(w io.Writer) {
	if s == nil {
		return
	}
	if s.Idle {
		fmt.Fprintf(w, "before measuring:  waited %s for the CPUs to be %.0f%% idle\n", s.Waited.Round(time.Second), 100*s.Share)
		return
	}
	fmt.Fprintf(w, "before measuring:  the CPUs were not %.0f%% idle after %s; measured anyway\n", 100*s.Share, s.Waited.Round(time.Second))
}

// defaults fills in the timeout, the HTTP client (keep-alive connections, one per client) and the order prefix.
func (o *Options) defaults() error {
	if o.URL == "" || o.AccessKey == "" {
		return errors.New("loadgen: the URL and the access key are required")
	}
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	if o.HTTPClient == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxIdleConnsPerHost = o.Concurrency
		tr.MaxConnsPerHost = o.Concurrency
		o.HTTPClient = &http.Client{Transport: tr}
	}
	if o.OrderPrefix == "" {
		o.OrderPrefix = "LOAD"
	}
	return nil
}

// orderSource returns a generator of run-unique order ids.
func (o *Options) orderSource() func() string {
	run := strings.ToUpper(strconv.FormatInt(time.Now().UnixMilli(), 36))
	var seq atomic.Int64
	return func() string { return fmt.Sprintf("%s%s%07d", o.OrderPrefix, run, seq.Add(1)) }
}

// phase runs the clients until n calls were sent (n > 0) or d elapsed (d > 0).
func phase(ctx context.Context, o Options, n int, d time.Duration, nextOrder func() string) ([]outcome, error) {
	var stop time.Time
	if d > 0 {
		stop = time.Now().Add(d)
	}
	var issued atomic.Int64
	var mu sync.Mutex
	var outs []outcome
	var placeErr error
	var wg sync.WaitGroup
	for c := 0; c < o.Concurrency; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var local []outcome
			defer func() {
				mu.Lock()
				outs = append(outs, local...)
				mu.Unlock()
			}()
			for ctx.Err() == nil {
				if n > 0 && issued.Add(1) > int64(n) {
					return
				}
				if !stop.IsZero() && time.Now().After(stop) {
					return
				}
				order := nextOrder()
				line := order + "-000001"
				if o.Place != nil {
					if err := o.Place(ctx, order, line); err != nil {
						mu.Lock()
						if placeErr == nil {
							placeErr = fmt.Errorf("place order %s: %w", order, err)
						}
						mu.Unlock()
						return
					}
				}
				local = append(local, call(ctx, o, order, line))
			}
		}()
	}
	wg.Wait()
	if placeErr != nil {
		return nil, placeErr
	}
	return outs, nil
}

// call sends one signed newInstance and checks the answer's Body-Sign.
func call(ctx context.Context, o Options, order, line string) outcome {
	body := koogallery.NewInstanceBody(order, line, uuid.NewString(), o.TestFlag)
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	start := time.Now()
	q, err := koogallery.SignQuery(o.AccessKey, body, start, koogallery.NewNonce())
	if err != nil {
		return outcome{errKind: "sign: " + err.Error()}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, o.URL+"?"+q.Encode(), bytes.NewReader(body))
	if err != nil {
		return outcome{errKind: "request: " + err.Error()}
	}
	req.Header.Set("Content-Type", "application/json;charset=utf8")
	req.Header.Set("Accept", "application/json")
	resp, err := o.HTTPClient.Do(req)
	if err != nil {
		return outcome{errKind: transportKind(err)}
	}
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	latency := time.Since(start)
	if err != nil {
		return outcome{errKind: transportKind(err)}
	}
	if resp.StatusCode != http.StatusOK {
		return outcome{errKind: "HTTP " + strconv.Itoa(resp.StatusCode)}
	}
	if resp.Header.Get(koogallery.BodySignHeaderName) != koogallery.BodySignHeader(o.AccessKey, raw) {
		return outcome{errKind: "Body-Sign does not match the body"}
	}
	var r koogallery.Response
	if err := json.Unmarshal(raw, &r); err != nil || r.ResultCode == "" {
		return outcome{errKind: "answer is not a result"}
	}
	return outcome{latency: latency, code: r.ResultCode}
}

func transportKind(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()):
		return "timeout"
	case errors.Is(err, context.Canceled):
		return "cancelled"
	}
	var op *net.OpError
	if errors.As(err, &op) {
		return "network: " + op.Op
	}
	return "transport"
}
