package deliver

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sort"
	"sync"
	"time"

	"github.com/kooflow/kooflow/emulator/clock"
)

// Policy is how long and how often the marketplace retries one activity (docs/koogallery.md, "Retry windows"), in
// marketplace time. A message gets 1 + Window/Interval attempts, the first at once.
type Policy struct {
	Window   time.Duration
	Interval time.Duration
	// MinGap, if set, is the least wall time between two attempts of this activity (see Dispatcher.MinGap).
	MinGap time.Duration
}

// Attempts is the number of deliveries the policy allows.
func (p Policy) Attempts() int {
	if p.Interval <= 0 || p.Window <= 0 {
		return 1
	}
	return 1 + int(p.Window/p.Interval)
}

// DefaultPolicies are the documented windows: newInstance three hours hourly (then the order is refunded),
// upgrade three hours, updateInstanceStatus two hours, refresh and release one hour. The interval inside the one-
// and two-hour windows is not documented; ten minutes is the emulator's choice. queryInstance is polled every
// five minutes for a day after an asynchronous newInstance. changeInstanceCheck is retried only while it gets
// no real answer (see Answer): a refusal is the seller's answer, not a failure.
func DefaultPolicies() map[string]Policy {
	return map[string]Policy{
		NewInstance:          {Window: 3 * time.Hour, Interval: time.Hour},
		UpgradeInstance:      {Window: 3 * time.Hour, Interval: time.Hour},
		UpdateInstanceStatus: {Window: 2 * time.Hour, Interval: 10 * time.Minute},
		RefreshInstance:      {Window: time.Hour, Interval: 10 * time.Minute},
		ReleaseInstance:      {Window: time.Hour, Interval: 10 * time.Minute},
		// Polling is paced in wall time too, so a fast clock does not turn it into a flood of reads.
		QueryInstance:       {Window: 24 * time.Hour, Interval: 5 * time.Minute, MinGap: 500 * time.Millisecond},
		ChangeInstanceCheck: {Window: time.Hour, Interval: 10 * time.Minute},
	}
}

// Faults are the misbehaviours the Dispatcher injects. Rates are per delivery, in [0, 1].
//
// Faults that make an attempt fail (Delay, DropResponse) are never applied to a message's last allowed attempt:
// random faults exercise the seller's idempotency and freshness checks, while running out of the retry window is a
// business outcome (a refunded order) that scenarios choose deliberately with Message.Undeliverable.
type Faults struct {
	// Duplicate is the probability a delivery is sent more than once; each time 1..MaxCopies extra copies go
	// out concurrently, each signed afresh, as a marketplace resending on a flaky network does.
	Duplicate float64
	MaxCopies int
	// Reorder holds each message for a random time in [0, Reorder) of marketplace time before its first
	// delivery, so calls issued close together reach the seller in a shuffled order.
	Reorder time.Duration
	// Delay is the probability a delivery arrives DelayBy after it was signed: past the seller's freshness
	// window, so a correct seller refuses it (000001) and the marketplace retries with a new signature.
	Delay   float64
	DelayBy time.Duration
	// DropResponse is the probability the seller's answer is lost on the way back: the seller did the work,
	// the marketplace saw a failure and retries.
	DropResponse float64
}

// Violation is seller behaviour the contract forbids, seen by the marketplace.
type Violation struct {
	At       time.Time
	Activity string
	OrderID  string
	Instance string
	What     string
}

// Outcome is the end of one message.
type Outcome struct {
	Delivered bool
	Final     Attempt // the completing attempt, or the last one
	Attempts  int
	GaveUp    bool
}

// Dispatcher delivers messages with retries and faults, and counts what happened. Safe for concurrent use.
type Dispatcher struct {
	Client   *Client
	Clock    *clock.Clock
	Policies map[string]Policy
	// MinGap is the least wall time between two attempts of one message, so that a fast clock does not burn a
	// whole retry window while the seller's asynchronous work is still running.
	MinGap time.Duration

	mu         sync.Mutex
	faults     Faults
	rng        *rand.Rand
	stats      Stats
	latencies  map[string][]time.Duration
	violations []Violation
}

// Stats counts deliveries.
type Stats struct {
	Messages     int            // messages dispatched
	Delivered    int            // messages completed
	GaveUp       int            // messages whose retry window ran out
	Deliveries   int            // HTTP requests sent, copies included
	Attempts     int            // attempts (first deliveries and retries, copies excluded)
	Retries      int            // attempts after the first
	Copies       int            // extra duplicate deliveries
	Delayed      int            // deliveries signed past the freshness window
	Dropped      int            // answers discarded by the fault injector
	Lost         int            // attempts that never reached the seller
	BadBodySign  int            // answers whose Body-Sign failed
	TransportErr int            // timeouts and connection failures
	ByActivity   map[string]int // messages by activity
	RetriesBy    map[string]int // retries by activity (queryInstance's are polls for appInfo)
	ResultCodes  map[string]int // answers by resultCode (HTTP status if none)
}

// NewDispatcher builds a dispatcher with the default policies and no faults; seed makes fault choices repeatable.
func NewDispatcher(c *Client, clk *clock.Clock, seed uint64) *Dispatcher {
	if seed == 0 {
		seed = rand.Uint64()
	}
	return &Dispatcher{
		Client: c, Clock: clk, Policies: DefaultPolicies(), MinGap: 100 * time.Millisecond,
		rng:       rand.New(rand.NewPCG(seed, seed^0x5851f42d4c957f2d)),
		latencies: map[string][]time.Duration{},
		stats:     Stats{ByActivity: map[string]int{}, RetriesBy: map[string]int{}, ResultCodes: map[string]int{}},
	}
}

// SetFaults changes the faults from now on.
func (d *Dispatcher) SetFaults(f Faults) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.faults = f
}

// Faults returns the current faults.
func (d *Dispatcher) Faults() Faults {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.faults
}

func (d *Dispatcher) float() float64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.rng.Float64()
}

func (d *Dispatcher) intN(n int) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.rng.IntN(n)
}

// Deliver sends m until it completes or its policy's window runs out. It blocks for as long as that takes
// in marketplace time.
func (d *Dispatcher) Deliver(ctx context.Context, m Message) (Outcome, error) {
	f := d.Faults()
	d.count(func(s *Stats) { s.Messages++; s.ByActivity[m.Activity]++ })
	if f.Reorder > 0 {
		if err := d.Clock.Sleep(ctx, time.Duration(d.float()*float64(f.Reorder))); err != nil {
			return Outcome{}, err
		}
	}
	p, ok := d.Policies[m.Activity]
	if !ok {
		p = Policy{Window: time.Hour, Interval: 10 * time.Minute}
	}
	accept := m.Accept
	if accept == nil {
		accept = func(a Attempt) bool { return Succeeded(m.Activity, a) }
	}
	n := p.Attempts()
	start := d.Clock.Now()
	var out Outcome
	var lastWall time.Time
	for k := 0; k < n; k++ {
		if k > 0 {
			if err := d.Clock.Until(ctx, start.Add(time.Duration(k)*p.Interval)); err != nil {
				return out, err
			}
			if gap := max(d.MinGap, p.MinGap) - time.Since(lastWall); gap > 0 {
				select {
				case <-ctx.Done():
					return out, ctx.Err()
				case <-time.After(gap):
				}
			}
			d.count(func(s *Stats) { s.Retries++; s.RetriesBy[m.Activity]++ })
		}
		lastWall = time.Now()
		a := d.attempt(ctx, m, f, k == n-1)
		out.Attempts++
		out.Final = a
		if ctx.Err() != nil {
			return out, ctx.Err()
		}
		if accept(a) {
			out.Delivered = true
			d.count(func(s *Stats) { s.Delivered++ })
			return out, nil
		}
		// f may have changed while we waited; pick up the current faults for the next attempt.
		f = d.Faults()
	}
	out.GaveUp = true
	d.count(func(s *Stats) { s.GaveUp++ })
	return out, nil
}

func (d *Dispatcher) attempt(ctx context.Context, m Message, f Faults, last bool) Attempt {
	d.count(func(s *Stats) { s.Attempts++ })
	if m.Undeliverable {
		d.count(func(s *Stats) { s.Lost++ })
		return Attempt{Sent: time.Now(), Lost: true}
	}
	var backdate time.Duration
	if !last && f.Delay > 0 && d.float() < f.Delay {
		backdate = f.DelayBy
	}
	drop := !last && f.DropResponse > 0 && d.float() < f.DropResponse
	copies := 0
	if f.Duplicate > 0 && f.MaxCopies > 0 && d.float() < f.Duplicate {
		copies = 1 + d.intN(f.MaxCopies)
	}
	var wg sync.WaitGroup
	copyResults := make([]Attempt, copies)
	for i := range copies {
		wg.Add(1)
		go func() {
			defer wg.Done()
			copyResults[i] = d.Client.Send(ctx, m, 0)
		}()
	}
	a := d.Client.Send(ctx, m, backdate)
	wg.Wait()
	d.record(m, a, false)
	for _, c := range copyResults {
		d.record(m, c, true)
		// Every copy of a newInstance must name the same instance: a second instanceId means a second instance.
		if m.Activity == NewInstance && a.Answered() && c.Answered() && a.InstanceID != "" && c.InstanceID != "" &&
			a.InstanceID != c.InstanceID {
			d.violate(m, fmt.Sprintf("duplicate newInstance deliveries got different instanceIds %s and %s", a.InstanceID, c.InstanceID))
		}
	}
	if backdate > 0 {
		d.count(func(s *Stats) { s.Delayed++ })
		if a.Answered() && (a.ResultCode == CodeSuccess || a.ResultCode == CodeInProgress) {
			d.violate(m, fmt.Sprintf("accepted a delivery signed %s before it arrived (resultCode %s)", backdate, a.ResultCode))
		}
	}
	if drop {
		a.Dropped = true
		d.count(func(s *Stats) { s.Dropped++ })
	}
	return a
}

func (d *Dispatcher) record(m Message, a Attempt, isCopy bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	s := &d.stats
	s.Deliveries++
	if isCopy {
		s.Copies++
	}
	switch {
	case a.BadBodySign:
		s.BadBodySign++
		d.violations = append(d.violations, Violation{At: a.Sent, Activity: m.Activity, OrderID: m.OrderID,
			Instance: m.InstanceID, What: a.Err.Error()})
	case a.HTTPStatus == 0:
		s.TransportErr++
	}
	code := a.ResultCode
	if code == "" {
		code = fmt.Sprintf("HTTP %d", a.HTTPStatus)
	}
	s.ResultCodes[code]++
	if a.HTTPStatus != 0 {
		d.latencies[m.Activity] = append(d.latencies[m.Activity], a.Latency)
	}
}

func (d *Dispatcher) violate(m Message, what string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.violations = append(d.violations, Violation{At: time.Now(), Activity: m.Activity, OrderID: m.OrderID, Instance: m.InstanceID, What: what})
}

func (d *Dispatcher) count(f func(*Stats)) {
	d.mu.Lock()
	defer d.mu.Unlock()
	f(&d.stats)
}

// Stats returns a copy of the counters.
func (d *Dispatcher) Stats() Stats {
	d.mu.Lock()
	defer d.mu.Unlock()
	s := d.stats
	s.ByActivity, s.RetriesBy, s.ResultCodes = map[string]int{}, map[string]int{}, map[string]int{}
	for k, v := range d.stats.ByActivity {
		s.ByActivity[k] = v
	}
	for k, v := range d.stats.RetriesBy {
		s.RetriesBy[k] = v
	}
	for k, v := range d.stats.ResultCodes {
		s.ResultCodes[k] = v
	}
	return s
}

// Violations returns the contract breaches seen so far.
func (d *Dispatcher) Violations() []Violation {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]Violation(nil), d.violations...)
}

// Latency is a latency summary of answered deliveries.
type Latency struct {
	Count    int
	P50, P99 time.Duration
	Max      time.Duration
}

// Latencies summarises the seller's answer times, per activity and overall ("all").
func (d *Dispatcher) Latencies() map[string]Latency {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := map[string]Latency{}
	var all []time.Duration
	for act, ls := range d.latencies {
		out[act] = summarize(ls)
		all = append(all, ls...)
	}
	out["all"] = summarize(all)
	return out
}

func summarize(ls []time.Duration) Latency {
	if len(ls) == 0 {
		return Latency{}
	}
	s := append([]time.Duration(nil), ls...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	q := func(p float64) time.Duration {
		i := int(p*float64(len(s))+0.5) - 1
		if i < 0 {
			i = 0
		}
		if i >= len(s) {
			i = len(s) - 1
		}
		return s[i]
	}
	return Latency{Count: len(s), P50: q(0.50), P99: q(0.99), Max: s[len(s)-1]}
}
