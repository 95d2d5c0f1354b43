package scenario

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shopspring/decimal"

	"github.com/kooflow/kooflow/emulator/clock"
	"github.com/kooflow/kooflow/emulator/deliver"
	"github.com/kooflow/kooflow/emulator/ledger"
	"github.com/kooflow/kooflow/emulator/market"
	"github.com/kooflow/kooflow/internal/catalog"
)

// Config shapes a run.
type Config struct {
	Orders int                // customers (each places one purchase)
	Mix    map[string]float64 // path weights; DefaultMix if nil
	Faults Faults
	Seed   uint64 // 0: random
	// Spread is the marketplace time over which purchases arrive; Horizon is how long after the start the
	// customers stop acting (by then every monthly subscription has expired, been frozen and released or
	// renewed).
	Spread  time.Duration
	Horizon time.Duration
	// Converge bounds the wall time spent waiting for the seller's read model to match once customers stop.
	Converge time.Duration
	// ConsoleRetry bounds the wall time a console action is retried while the seller says "try again later".
	ConsoleRetry time.Duration
	// Forever keeps adding a customer every Interval (wall time) until the context ends; no comparison.
	Forever  bool
	Interval time.Duration
	// SettlementClock stamps what the marketplace's bill reads in the ledger: when an order took effect and when
	// a credit-paid order was repaid. The seller stamps the same events with its own wall clock (and refuses a
	// repayment in its future), so while the lifecycles run on the scaled clock these stay on the wall clock and
	// both sides bill each line in the same month. nil is time.Now.
	SettlementClock func() time.Time
}

// Deps are the parts a run drives.
type Deps struct {
	Catalog    *catalog.Catalog
	Clock      *clock.Clock
	Dispatcher *deliver.Dispatcher
	Market     market.Places
	Seller     Seller
	Ledger     *ledger.Ledger
	Log        *slog.Logger
}

// Runner runs one scenario.
type Runner struct {
	cfg  Config
	deps Deps

	rmu sync.Mutex
	rng *mrand.Rand

	runID    string
	seq      atomic.Int64
	horizon  time.Time
	placedAt map[int]time.Time
	pmu      sync.Mutex

	cmu       sync.Mutex
	customers []*customer
	notes     []string

	offers map[string][]offer
}

type offer struct {
	product catalog.Product
	sku     catalog.SKU
}

// New prepares a run.
func New(cfg Config, deps Deps) (*Runner, error) {
	if cfg.Mix == nil {
		cfg.Mix = DefaultMix()
	}
	if cfg.Spread == 0 {
		cfg.Spread = 10 * 24 * time.Hour
	}
	if cfg.Horizon == 0 {
		cfg.Horizon = cfg.Spread + 75*24*time.Hour
	}
	if cfg.Converge == 0 {
		cfg.Converge = 2 * time.Minute
	}
	if cfg.ConsoleRetry == 0 {
		cfg.ConsoleRetry = time.Minute
	}
	if cfg.Interval == 0 {
		cfg.Interval = 3 * time.Second
	}
	if cfg.SettlementClock == nil {
		cfg.SettlementClock = time.Now
	}
	seed := cfg.Seed
	if seed == 0 {
		seed = mrand.Uint64()
		cfg.Seed = seed
	}
	b := make([]byte, 2)
	_, _ = rand.Read(b)
	r := &Runner{cfg: cfg, deps: deps, rng: mrand.New(mrand.NewPCG(seed, seed^0x2545f4914f6cdd1d)),
		runID: strings.ToUpper(hex.EncodeToString(b))[:3], placedAt: map[int]time.Time{}}
	if err := r.buildOffers(); err != nil {
		return nil, err
	}
	return r, nil
}

// buildOffers sorts the catalog's SKUs into what each path can sell.
func (r *Runner) buildOffers() error {
	r.offers = map[string][]offer{}
	for _, p := range r.deps.Catalog.Products() {
		for _, s := range p.SKUs {
			o := offer{p, s}
			if p.PayPerUse() {
				// Sold by usage: kept apart, so the period paths never sell a usage product by its SKU.
				r.offers[p.ChargingMode] = append(r.offers[p.ChargingMode], o)
				continue
			}
			switch {
			case s.Period == "once" && p.Supervised:
				r.offers["supervised"] = append(r.offers["supervised"], o)
			case s.Period == "month" && !p.Supervised:
				r.offers["monthly"] = append(r.offers["monthly"], o)
				r.offers["period"] = append(r.offers["period"], o)
			case s.Period == "year" && !p.Supervised:
				r.offers["period"] = append(r.offers["period"], o)
			}
		}
	}
	for _, k := range []string{"monthly", "period"} {
		if len(r.offers[k]) == 0 {
			return fmt.Errorf("scenario: the catalog has no non-supervised monthly SKU to sell")
		}
	}
	return nil
}

func (r *Runner) pick(c *customer) {
	kind := "monthly"
	switch c.path {
	case PathBuy, PathUndeliverable, PathCredit, PathCreditUnpaid, PathDialTest:
		kind = "period"
	case PathSupervised, PathSupervisedRefund:
		kind = "supervised"
	}
	os := r.offers[kind]
	if len(os) == 0 {
		os = r.offers["monthly"]
		c.problem("the catalog has no supervised one-time SKU; sold a monthly one instead")
	}
	o := os[r.intN(len(os))]
	c.product, c.sku = o.product, o.sku
	c.supervised = o.product.Supervised
	c.qty = int64(1 + r.intN(20))
	if c.supervised {
		c.qty = 1
	}
	c.supervise = SupNotInvolved
	if c.supervised {
		c.supervise = SupAwaitingRequirement
	}
}

func (r *Runner) chance(p float64) bool {
	r.rmu.Lock()
	defer r.rmu.Unlock()
	return r.rng.Float64() < p
}

func (r *Runner) intN(n int) int {
	r.rmu.Lock()
	defer r.rmu.Unlock()
	return r.rng.IntN(n)
}

// discount gives some customers a discount, so list and paid amounts differ.
func (r *Runner) discount(list decimal.Decimal) decimal.Decimal {
	if r.chance(0.25) {
		return list.Mul(decimal.RequireFromString("0.9")).Round(2)
	}
	return list
}

func (r *Runner) otherSKU(c *customer) (catalog.SKU, bool) {
	for _, s := range c.product.SKUs {
		if s.SKUCode != c.sku.SKUCode && s.Period == c.sku.Period {
			return s, true
		}
	}
	return catalog.SKU{}, false
}

// orderID makes a marketplace-looking order ID (CS + yyMMddHHmm + suffix) unique per run and within it.
func (r *Runner) orderID(now time.Time) string {
	n := r.seq.Add(1)
	return "CS" + now.UTC().Format("0601021504") + r.runID + fmt.Sprintf("%04s", strings.ToUpper(strconv.FormatInt(n, 36)))
}

func (r *Runner) note(format string, args ...any) {
	r.cmu.Lock()
	defer r.cmu.Unlock()
	r.notes = append(r.notes, fmt.Sprintf(format, args...))
}

func (r *Runner) choosePath() string {
	names := make([]string, 0, len(r.cfg.Mix))
	total := 0.0
	for _, p := range Paths() {
		if w := r.cfg.Mix[p]; w > 0 {
			names = append(names, p)
			total += w
		}
	}
	r.rmu.Lock()
	x := r.rng.Float64() * total
	r.rmu.Unlock()
	for _, p := range names {
		x -= r.cfg.Mix[p]
		if x < 0 {
			return p
		}
	}
	return names[len(names)-1]
}

func (r *Runner) newCustomer(n int) *customer {
	b := make([]byte, 16)
	r.rmu.Lock()
	for i := range b {
		b[i] = byte(r.rng.UintN(256))
	}
	r.rmu.Unlock()
	// The first customers take each path in the mix once, so a run of any size covers every path; the rest
	// are drawn by weight.
	path := r.choosePath()
	var named []string
	for _, p := range Paths() {
		if r.cfg.Mix[p] > 0 {
			named = append(named, p)
		}
	}
	if n < len(named) && !r.cfg.Forever {
		path = named[n]
	}
	c := &customer{n: n, path: path, customerID: hex.EncodeToString(b), refunded: decimal.Zero, test: path == PathDialTest,
		credit: path == PathCredit || path == PathCreditUnpaid}
	r.pick(c)
	r.cmu.Lock()
	r.customers = append(r.customers, c)
	r.cmu.Unlock()
	return c
}

// Run plays the scenario and, unless Forever, waits for the seller to converge and reports.
func (r *Runner) Run(ctx context.Context) (*Report, error) {
	wallStart := time.Now()
	r.deps.Dispatcher.SetFaults(r.cfg.Faults.Delivery)
	if err := r.deps.Market.SetQueryFaults(ctx, r.cfg.Faults.Query); err != nil {
		return nil, fmt.Errorf("set the order query's faults: %w", err)
	}
	start := r.deps.Clock.Now()
	r.horizon = start.Add(r.cfg.Horizon)
	var wg sync.WaitGroup
	if r.cfg.Forever {
		r.horizon = start.AddDate(100, 0, 0)
		r.forever(ctx, &wg)
		wg.Wait()
		return nil, ctx.Err()
	}
	for i := 0; i < r.cfg.Orders; i++ {
		c := r.newCustomer(i)
		at := start.Add(time.Duration(float64(r.cfg.Spread) * (float64(i) + r.float()) / float64(max(r.cfg.Orders, 1))))
		r.pmu.Lock()
		r.placedAt[i] = at
		r.pmu.Unlock()
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := r.deps.Clock.Until(ctx, at); err != nil {
				return
			}
			r.pmu.Lock()
			r.placedAt[c.n] = r.deps.Clock.Now()
			r.pmu.Unlock()
			r.live(ctx, c)
		}()
	}
	r.deps.Log.Info("scenario started", "orders", r.cfg.Orders, "mix", FormatMix(r.cfg.Mix), "faults", r.cfg.Faults.String(),
		"seed", r.cfg.Seed, "horizon", r.horizon.Format(time.RFC3339), "clock_scale", r.deps.Clock.Scale())
	wg.Wait()
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	// Customers stopped at the horizon; let the clock rest so nothing else is due while the seller catches up.
	r.deps.Clock.SetScale(0)
	if err := r.shareLedger(ctx); err != nil {
		return nil, err
	}
	drivenAt := time.Now()
	r.deps.Log.Info("customers done; waiting for the seller's read model to converge", "wall", drivenAt.Sub(wallStart).Round(time.Millisecond))
	mismatches, err := r.converge(ctx)
	if err != nil {
		return nil, err
	}
	return r.report(ctx, wallStart, drivenAt, mismatches), nil
}

func (r *Runner) float() float64 {
	r.rmu.Lock()
	defer r.rmu.Unlock()
	return r.rng.Float64()
}

// forever adds customers at a steady pace, logging progress, until ctx ends.
func (r *Runner) forever(ctx context.Context, wg *sync.WaitGroup) {
	tick := time.NewTicker(r.cfg.Interval)
	defer tick.Stop()
	status := time.NewTicker(30 * time.Second)
	defer status.Stop()
	n := 0
	for {
		c := r.newCustomer(n)
		r.pmu.Lock()
		r.placedAt[n] = r.deps.Clock.Now()
		r.pmu.Unlock()
		n++
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.live(ctx, c)
			r.forget(c)
		}()
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-status.C:
			if err := r.shareLedger(ctx); err != nil && ctx.Err() == nil {
				r.deps.Log.Warn("the market did not take the run's ledger; its bill lacks this run's latest orders", "err", err)
			}
			st := r.deps.Dispatcher.Stats()
			lat := r.deps.Dispatcher.Latencies()["all"]
			r.deps.Log.Info("emulator", "customers", n, "marketplace_time", r.deps.Clock.Now().Format(time.DateTime),
				"deliveries", st.Deliveries, "retries", st.Retries, "gave_up", st.GaveUp, "p50", lat.P50, "p99", lat.P99,
				"violations", len(r.deps.Dispatcher.Violations()))
		}
	}
}

// shareLedger gives the market this run's ledger, so the market's bill (the control API's, `kooflow emulator
// bill`) covers the orders of a runner in another process: at the end of a run, and every status line of the
// continuous mode. A market in this process that holds the same ledger needs nothing.
func (r *Runner) shareLedger(ctx context.Context) error {
	b, ok := r.deps.Market.(market.Bills)
	if !ok || r.deps.Ledger == nil {
		return nil
	}
	if l, local := b.(market.Local); local && l.M.Ledger() == r.deps.Ledger {
		return nil
	}
	if err := b.PutLedger(ctx, r.deps.Ledger.Entries()); err != nil {
		return fmt.Errorf("give the market the run's ledger: %w", err)
	}
	return nil
}

// forget drops a finished customer in the continuous mode, so memory stays flat.
func (r *Runner) forget(c *customer) {
	if len(c.problems) > 0 {
		r.deps.Log.Warn("customer problems", "path", c.path, "instance", c.instanceID, "problems", strings.Join(c.problems, "; "))
	}
	r.cmu.Lock()
	defer r.cmu.Unlock()
	for i, x := range r.customers {
		if x == c {
			r.customers = append(r.customers[:i], r.customers[i+1:]...)
			break
		}
	}
	r.pmu.Lock()
	delete(r.placedAt, c.n)
	r.pmu.Unlock()
}

// Mismatch is one difference between the marketplace's view and the seller's.
type Mismatch struct {
	Customer   int
	Path       string
	OrderID    string
	InstanceID string
	Field      string
	Market     string
	Seller     string
}

func (m Mismatch) String() string {
	return fmt.Sprintf("#%d %s order %s instance %s: %s: marketplace %q, seller %q", m.Customer, m.Path, m.OrderID,
		m.InstanceID, m.Field, m.Market, m.Seller)
}

// converge compares every customer with the seller's read model until nothing differs or time runs out.
func (r *Runner) converge(ctx context.Context) ([]Mismatch, error) {
	deadline := time.Now().Add(r.cfg.Converge)
	pending := append([]*customer(nil), r.customers...)
	var last []Mismatch
	for {
		var still []*customer
		last = nil
		for _, c := range pending {
			ms, err := r.compare(ctx, c)
			if err != nil {
				if ctx.Err() != nil {
					return nil, ctx.Err()
				}
				ms = []Mismatch{r.mismatch(c, "console", "readable", err.Error())}
			}
			if len(ms) > 0 {
				still = append(still, c)
				last = append(last, ms...)
			}
		}
		if len(still) == 0 || time.Now().After(deadline) {
			sort.Slice(last, func(i, j int) bool { return last[i].Customer < last[j].Customer })
			return last, nil
		}
		pending = still
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

func (r *Runner) mismatch(c *customer, field, market, seller string) Mismatch {
	return Mismatch{Customer: c.n, Path: c.path, OrderID: c.purchase.OrderID, InstanceID: c.instanceID, Field: field,
		Market: market, Seller: seller}
}

func fmtTime(t *time.Time) string {
	if t == nil || t.IsZero() {
		return "none"
	}
	return t.UTC().Format(time.RFC3339)
}

// compare lists the differences between the marketplace's view of c and the seller's read model.
func (r *Runner) compare(ctx context.Context, c *customer) ([]Mismatch, error) {
	var out []Mismatch
	add := func(field, m, s string) { out = append(out, r.mismatch(c, field, m, s)) }
	for _, p := range c.problems {
		add("marketplace", "no problem", p)
	}
	si, err := r.deps.Seller.InstanceByOrder(ctx, c.purchase.OrderID, c.purchase.LineID)
	if err != nil {
		return nil, err
	}
	if c.state == StateFailed || c.state == "" {
		if si != nil {
			add("instance", "none (order refunded: newInstance never got through)", si.InstanceID+" "+si.Lifecycle)
		}
		return out, nil
	}
	if si == nil {
		add("instance", c.instanceID, "none")
		return out, nil
	}
	if si.InstanceID != c.instanceID {
		add("instanceId", c.instanceID, si.InstanceID)
	}
	if si.Lifecycle != c.state {
		add("lifecycle", c.state, si.Lifecycle)
	}
	if si.Parked {
		add("parked", "no", si.ParkedWhy)
	}
	want := c.expire
	switch {
	case want.IsZero() && si.ExpireTime != nil:
		add("expireTime", "none", fmtTime(si.ExpireTime))
	case !want.IsZero() && (si.ExpireTime == nil || !si.ExpireTime.Truncate(time.Second).Equal(want.Truncate(time.Second))):
		add("expireTime", fmtTime(&want), fmtTime(si.ExpireTime))
	}
	// A released instance's access data is gone on both sides (its credentials no longer work).
	if c.appInfo != nil && c.state != StateReleased && !si.AppInfo.Matches(*c.appInfo) {
		shown := "none"
		if si.AppInfo != nil {
			shown = fmt.Sprintf("%+v", *si.AppInfo)
		}
		ai := *c.appInfo
		ai.Password = strings.Repeat("*", len(ai.Password))
		add("appInfo", fmt.Sprintf("%+v", ai), shown)
	}
	if si.Supervision != c.supervise {
		add("supervision", c.supervise, si.Supervision)
	}
	if si.SKUCode != "" && si.SKUCode != c.sku.SKUCode {
		add("skuCode", c.sku.SKUCode, si.SKUCode)
	}
	if si.Quantity != 0 && si.Quantity != c.qty {
		add("quantity", strconv.FormatInt(c.qty, 10), strconv.FormatInt(si.Quantity, 10))
	}
	if c.credit {
		credit, repaid, err := r.deps.Seller.Payment(ctx, c.purchase.OrderID)
		if err != nil {
			return nil, err
		}
		var want *time.Time
		for _, e := range r.deps.Ledger.ForInstance(c.instanceID) {
			if e.OrderID == c.purchase.OrderID {
				want = e.RepaidAt
			}
		}
		if !credit || fmtTime(repaid) != fmtTime(want) {
			add("payment", "credit-paid, repaid "+fmtTime(want), fmt.Sprintf("credit-paid %t, repaid %s", credit, fmtTime(repaid)))
		}
	}
	refunded := decimal.Zero
	seller := map[string]SellerOrder{}
	for _, o := range si.Orders {
		seller[o.OrderID] = o
		if o.Paid.IsNegative() {
			refunded = refunded.Add(o.Paid.Neg())
		}
	}
	if !refunded.Equal(c.refunded) {
		add("refunded", c.refunded.StringFixed(2), refunded.StringFixed(2))
	}
	for _, o := range c.orders {
		so, ok := seller[o.OrderID]
		switch {
		case !ok:
			add("order "+o.OrderID, o.Type+" "+o.Paid.StringFixed(2), "missing")
		case so.Type != o.Type:
			add("order "+o.OrderID+" type", o.Type, so.Type)
		case o.Type != market.TypeUnsubscribe && !so.Paid.Equal(o.Paid):
			add("order "+o.OrderID+" paid", o.Paid.StringFixed(2), so.Paid.StringFixed(2))
		}
	}
	return out, nil
}
