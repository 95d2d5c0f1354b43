package loadgen

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"sync"
	"time"
)

// OpenOptions configure an open-loop run: calls start on a fixed schedule whatever the target's latency, so a
// slow answer cannot hold the next call back and hide itself (as it does with clients that wait for their
// previous answer).
type OpenOptions struct {
	Options
	// Rate is the number of calls started per second.
	Rate float64
	// MaxInFlight bounds the calls waiting for an answer; a slot that finds the bound reached is not sent and
	// is counted as missed (default 2,000).
	MaxInFlight int
	// Late is how far behind its slot a call may start before it counts as missed (it is still sent and
	// measured; default 10 ms).
	Late time.Duration
}

// OpenReport holds an open-loop run's figures. Latencies are measured from each call's slot, so time a call
// spent waiting to start is counted.
type OpenReport struct {
	Report
	Rate float64
	// Missed counts slots whose call started later than Late or could not start (MaxInFlight reached).
	Missed, Dropped int
}

// Write prints the report.
func (r *OpenReport) Write(w io.Writer) {
	ms := func(d time.Duration) string {
		return strconv.FormatFloat(float64(d.Microseconds())/1000, 'f', 1, 64) + " ms"
	}
	r.Settled.write(w)
	fmt.Fprintf(w, "newInstance calls: %d scheduled at %.0f/s (open loop) over %s\n", r.Requests, r.Rate, r.Elapsed.Round(time.Millisecond))
	fmt.Fprintf(w, "answered:          %d (%.1f/s)\n", r.Answered(), r.Throughput())
	fmt.Fprintf(w, "latency from slot: p50 %s   p90 %s   p99 %s   max %s\n", ms(r.Quantile(0.5)), ms(r.Quantile(0.9)), ms(r.Quantile(0.99)), ms(r.Max()))
	fmt.Fprintf(w, "missed slots:      %d started late, %d not sent (too many in flight)\n", r.Missed-r.Dropped, r.Dropped)
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

// RunOpen places the orders first (when Place is set, Concurrency at a time, outside the measured phase), then
// starts one call per slot of the schedule for Duration, or Requests calls.
func RunOpen(ctx context.Context, o OpenOptions) (*OpenReport, error) {
	if o.Rate <= 0 {
		return nil, errors.New("loadgen: the rate must be positive")
	}
	if o.Duration <= 0 && o.Requests <= 0 {
		return nil, errors.New("loadgen: set a number of requests or a duration")
	}
	n := o.Requests
	if o.Duration > 0 {
		n = int(o.Rate * o.Duration.Seconds())
		if o.Requests > 0 {
			n = min(n, o.Requests)
		}
	}
	if o.MaxInFlight <= 0 {
		o.MaxInFlight = 2000
	}
	if o.Late <= 0 {
		o.Late = 10 * time.Millisecond
	}
	o.Concurrency = max(o.Concurrency, 1)
	if o.HTTPClient == nil {
		// No bound on connections: every slot's call goes out at once, on a new connection if need be.
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxIdleConnsPerHost = min(o.MaxInFlight, 256)
		o.HTTPClient = &http.Client{Transport: tr}
	}
	if err := o.defaults(); err != nil {
		return nil, err
	}
	orders := make([]string, n)
	nextOrder := o.orderSource()
	for i := range orders {
		orders[i] = nextOrder()
	}
	if o.Place != nil {
		var wg sync.WaitGroup
		errs := make(chan error, o.Concurrency)
		work := make(chan string)
		for range o.Concurrency {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for id := range work {
					if err := o.Place(ctx, id, id+"-000001"); err != nil {
						select {
						case errs <- fmt.Errorf("place order %s: %w", id, err):
						default:
						}
					}
				}
			}()
		}
		for _, id := range orders {
			work <- id
		}
		close(work)
		wg.Wait()
		select {
		case err := <-errs:
			return nil, err
		default:
		}
	}
	settled, err := o.prepare(ctx, nextOrder)
	if err != nil {
		return nil, err
	}

	outs := make([]outcome, n)
	sent := make([]bool, n)
	late := make([]bool, n)
	sem := make(chan struct{}, o.MaxInFlight)
	var wg sync.WaitGroup
	interval := time.Duration(float64(time.Second) / o.Rate)
	start := time.Now()
	for i := range n {
		slot := start.Add(time.Duration(i) * interval)
		if d := time.Until(slot); d > 0 {
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(d):
			}
		}
		select {
		case sem <- struct{}{}:
		default:
			continue // too many in flight: the slot is dropped
		}
		sent[i], late[i] = true, time.Since(slot) > o.Late
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			x := call(ctx, o.Options, orders[i], orders[i]+"-000001")
			if x.errKind == "" {
				x.latency = time.Since(slot) // from the slot, not from when the call got going
			}
			outs[i] = x
		}()
	}
	wg.Wait()
	rep := &OpenReport{Rate: o.Rate, Report: Report{Concurrency: o.MaxInFlight, Settled: settled, Requests: n, Elapsed: time.Since(start),
		Codes: map[string]int{}, Errors: map[string]int{}}}
	for i, x := range outs {
		if !sent[i] {
			rep.Missed++
			rep.Dropped++
			continue
		}
		if late[i] {
			rep.Missed++
		}
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
