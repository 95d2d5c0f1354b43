package scenario

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/shopspring/decimal"

	"github.com/kooflow/kooflow/emulator/deliver"
	"github.com/kooflow/kooflow/emulator/ledger"
	"github.com/kooflow/kooflow/emulator/market"
	"github.com/kooflow/kooflow/internal/catalog"
)

// Marketplace lifecycle states (the seller's read model uses the same words).
const (
	StateActive   = "ACTIVE"
	StateFrozen   = "FROZEN"
	StateReleased = "RELEASED"
	StateFailed   = "FAILED" // newInstance never got through: the order was refunded, there is no instance
)

// Supervision states, in the console's vocabulary.
const (
	SupNotInvolved         = "NOT_INVOLVED"
	SupAwaitingRequirement = "AWAITING_REQUIREMENT"
	SupAwaitingConfirm     = "AWAITING_CONFIRMATION"
	SupInService           = "IN_SERVICE"
	SupAwaitingAcceptance  = "AWAITING_ACCEPTANCE"
	SupCompleted           = "COMPLETED"
)

// Retention is how long a frozen instance is kept before the marketplace releases it (docs/koogallery.md,
// "Expiry, freeze and release").
const Retention = 15 * 24 * time.Hour

type orderRef struct {
	OrderID, LineID, Type string
	Paid                  decimal.Decimal
	Expire                time.Time
	PrevExpire            time.Time // renewals: the expiry they extend
}

// customer is one customer's subscription as the marketplace believes it. Only its own goroutine changes it
// while it runs; the comparison reads it afterwards (or under mu in the continuous mode's status lines).
type customer struct {
	mu         sync.Mutex
	n          int
	path       string
	customerID string
	product    catalog.Product
	sku        catalog.SKU
	qty        int64

	purchase   orderRef
	instanceID string
	state      string
	expire     time.Time
	appInfo    *deliver.AppInfo
	supervised bool
	supervise  string
	refunded   decimal.Decimal
	orders     []orderRef // orders the seller was told about
	renewal    *orderRef  // the latest renewal (renewal-refund path)
	problems   []string
	done       bool
	test       bool // a dial test: every call carries testFlag "1"
	credit     bool // the purchase was paid with credit payment
}

func (c *customer) problem(format string, args ...any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.problems = append(c.problems, fmt.Sprintf(format, args...))
}

// step is one scripted customer action: when it is due (computed from the state when it comes up), and what
// it does.
type step struct {
	name string
	when func(c *customer) time.Time
	do   func(ctx context.Context, c *customer) error
}

func (r *Runner) script(c *customer) []step {
	r.pmu.Lock()
	base := r.placedAt[c.n]
	r.pmu.Unlock()
	placed := func(d time.Duration) func(*customer) time.Time {
		at := base.Add(d)
		return func(*customer) time.Time { return at }
	}
	beforeExpiry := func(d time.Duration) func(*customer) time.Time {
		return func(c *customer) time.Time { return c.expire.Add(-d) }
	}
	afterExpiry := func(d time.Duration) func(*customer) time.Time {
		return func(c *customer) time.Time { return c.expire.Add(d) }
	}
	day := 24 * time.Hour
	switch c.path {
	case PathRenew:
		return []step{{"renew", beforeExpiry(5 * day), func(ctx context.Context, c *customer) error { return r.renew(ctx, c, false) }}}
	case PathFreezeRenew:
		return []step{{"renew during freeze", afterExpiry(5 * day), func(ctx context.Context, c *customer) error { return r.renew(ctx, c, false) }}}
	case PathTrialConvert:
		return []step{{"convert trial", placed(3 * day), r.convertTrial}}
	case PathUpgrade:
		return []step{{"upgrade", placed(3 * day), r.upgrade}}
	case PathRenewChange:
		return []step{{"renew with change", beforeExpiry(3 * day), func(ctx context.Context, c *customer) error { return r.renew(ctx, c, true) }}}
	case PathUnsubscribe:
		return []step{{"unsubscribe", placed(2 * day), r.unsubscribe}}
	case PathCredit:
		return []step{{"repay", placed(2 * day), r.repay}}
	case PathRenewalRefund:
		return []step{
			{"renew", placed(5 * day), func(ctx context.Context, c *customer) error { return r.renew(ctx, c, false) }},
			{"refund the renewal", placed(7 * day), r.refundRenewal},
		}
	case PathSupervised:
		steps := []step{{"submit requirement", placed(day), r.supervisionStep(StepSubmitRequirement, PartyCustomer, SupAwaitingConfirm)}}
		if r.chance(0.3) {
			steps = append(steps,
				step{"reject requirement", placed(day + 2*time.Hour), r.supervisionStep(StepReject, PartySeller, SupAwaitingRequirement)},
				step{"resubmit requirement", placed(day + 4*time.Hour), r.supervisionStep(StepSubmitRequirement, PartyCustomer, SupAwaitingConfirm)})
		}
		return append(steps,
			step{"confirm requirement", placed(day + 6*time.Hour), r.supervisionStep(StepConfirm, PartySeller, SupInService)},
			step{"complete service", placed(3 * day), r.supervisionStep(StepDeliver, PartySeller, SupAwaitingAcceptance)},
			step{"accept", placed(4 * day), r.supervisionStep(StepAccept, PartyCustomer, SupCompleted)})
	case PathSupervisedRefund:
		return []step{
			{"submit requirement", placed(day), r.supervisionStep(StepSubmitRequirement, PartyCustomer, SupAwaitingConfirm)},
			{"confirm requirement", placed(day + 6*time.Hour), r.supervisionStep(StepConfirm, PartySeller, SupInService)},
			{"negotiated refund", placed(2 * day), r.negotiatedRefund},
		}
	}
	return nil // buy, expire-release, trial-expire, undeliverable: the clock does the rest
}

// live runs one customer: the purchase, then scripted steps and the marketplace's own expiry, freeze and
// release, whichever is due first, until the instance is released or the horizon is reached.
func (r *Runner) live(ctx context.Context, c *customer) {
	defer func() {
		c.mu.Lock()
		c.done = true
		c.mu.Unlock()
	}()
	if err := r.buy(ctx, c); err != nil {
		if ctx.Err() == nil {
			c.problem("purchase: %v", err)
		}
		return
	}
	steps := r.script(c)
	for {
		c.mu.Lock()
		state, expire := c.state, c.expire
		c.mu.Unlock()
		if state == StateReleased || state == StateFailed {
			return
		}
		var next *step
		var at time.Time
		if len(steps) > 0 {
			next, at = &steps[0], steps[0].when(c)
		}
		var auto func(context.Context, *customer) error
		var autoAt time.Time
		switch {
		case state == StateActive && !expire.IsZero():
			auto, autoAt = r.freeze, expire
		case state == StateFrozen:
			auto, autoAt = r.releaseAfterRetention, expire.Add(Retention)
		}
		do := (func(context.Context, *customer) error)(nil)
		name := ""
		switch {
		case next != nil && (auto == nil || !at.After(autoAt)):
			do, name = next.do, next.name
			steps = steps[1:]
		case auto != nil:
			do, at, name = auto, autoAt, "expiry"
		default:
			return
		}
		if at.After(r.horizon) {
			return
		}
		if err := r.deps.Clock.Until(ctx, at); err != nil {
			return
		}
		if err := do(ctx, c); err != nil {
			if ctx.Err() != nil {
				return
			}
			c.problem("%s: %v", name, err)
		}
	}
}

func endOfDay(t time.Time) time.Time {
	t = t.UTC()
	return time.Date(t.Year(), t.Month(), t.Day(), 23, 59, 59, 0, time.UTC)
}

func addPeriod(t time.Time, period string, n int) time.Time {
	switch period {
	case "year":
		return t.AddDate(n, 0, 0)
	case "day":
		return t.AddDate(0, 0, n)
	default:
		return t.AddDate(0, n, 0)
	}
}

// amount is unit price x periods x quantity, the documented sales revenue formula (docs/koogallery.md,
// "Settlement rules").
func amount(unit decimal.Decimal, periods int, qty int64) decimal.Decimal {
	return unit.Mul(decimal.NewFromInt(int64(periods))).Mul(decimal.NewFromInt(qty)).Round(2)
}

// place creates an order in the market and the ledger.
func (r *Runner) place(ctx context.Context, c *customer, typ string, line market.Line, refundOf *orderRef) (orderRef, error) {
	now := r.deps.Clock.Now().UTC().Truncate(time.Second)
	id := r.orderID(now)
	line.OrderLineID = id + "-000001"
	if line.ProductName == "" {
		line.ProductName = c.product.Name
	}
	o := market.Order{OrderID: id, OrderType: typ, CreateTime: now, Lines: []market.Line{line},
		Buyer: &market.Buyer{CustomerID: c.customerID, CustomerName: fmt.Sprintf("customer-%d", c.n), CustomerType: c.n % 2}}
	if err := r.deps.Market.PutOrder(ctx, o); err != nil {
		return orderRef{}, fmt.Errorf("place %s order: %w", typ, err)
	}
	ref := orderRef{OrderID: id, LineID: line.OrderLineID, Type: typ, Paid: line.PaidAmount, Expire: line.ExpireTime}
	e := ledger.Entry{OrderID: id, OrderLineID: line.OrderLineID, OrderType: typ, InstanceID: c.instanceID,
		CustomerID: c.customerID, ProductID: line.ProductID, SKUCode: line.SKUCode, Quantity: line.LinearValue,
		ListAmount: line.ListAmount, Amount: line.PaidAmount, PlacedAt: now, Payment: ledger.Paid, Delivery: ledger.Pending,
		Supervised: c.supervised, Supervision: SupNotInvolved, TestFlag: c.test, Credit: c.credit && typ == market.TypeNew}
	if !line.ExpireTime.IsZero() {
		t := line.ExpireTime
		e.ExpireAt = &t
	}
	if c.supervised && (typ == market.TypeNew || typ == market.TypeTrial) {
		e.Supervision = SupAwaitingRequirement
	}
	var err error
	if refundOf != nil {
		err = r.deps.Ledger.Refund(refundOf.OrderID, refundOf.LineID, e)
	} else {
		err = r.deps.Ledger.Add(e)
	}
	return ref, err
}

func (r *Runner) setDelivery(ref orderRef, out deliver.Outcome, instanceID string) {
	_ = r.deps.Ledger.Update(ref.OrderID, ref.LineID, func(e *ledger.Entry) {
		e.Delivery = ledger.Delivered
		if !out.Delivered {
			e.Delivery = ledger.Failed
		}
		if instanceID != "" {
			e.InstanceID = instanceID
		}
	})
}

// takeEffect records when an order line took effect for the marketplace's bill: the seller's provisioning,
// renewal, conversion, upgrade or refund was accepted (at, by the settlement clock), or a supervised purchase was
// accepted by the customer. A line takes effect once.
func (r *Runner) takeEffect(ref orderRef, at time.Time) {
	at = at.UTC()
	_ = r.deps.Ledger.Update(ref.OrderID, ref.LineID, func(e *ledger.Entry) {
		if e.EffectiveAt == nil {
			e.EffectiveAt = &at
		}
	})
}

// settledNow is the settlement clock's now.
func (r *Runner) settledNow() time.Time { return r.cfg.SettlementClock().UTC() }

func (r *Runner) expireField(t time.Time) string {
	// The documents specify yyyyMMddHHmmss but show 17 digits in an example; the marketplace sends both.
	if r.chance(0.5) {
		return t.UTC().Format("20060102150405") + fmt.Sprintf("%03d", t.Nanosecond()/1e6)
	}
	return t.UTC().Format("20060102150405")
}

// message builds a production-interface call for c's instance.
func (r *Runner) message(c *customer, activity string, fields ...deliver.Field) deliver.Message {
	return deliver.Message{Activity: activity, InstanceID: c.instanceID, OrderID: c.purchase.OrderID, Fields: fields,
		OmitTestFlag: r.chance(0.5), TestFlag: c.test}
}

func (r *Runner) buy(ctx context.Context, c *customer) error {
	typ := market.TypeNew
	line := market.Line{ChargingMode: market.ChargingPeriod, ProductID: c.product.ProductID, SKUCode: c.sku.SKUCode,
		LinearValue: c.qty}
	now := r.deps.Clock.Now()
	switch {
	case c.path == PathTrialConvert || c.path == PathTrialExpire:
		typ = market.TypeTrial
		days := 7 + r.intN(8)
		line.PeriodType, line.PeriodNumber = "day", days
		line.ExpireTime = endOfDay(now.AddDate(0, 0, days))
		line.ListAmount, line.PaidAmount = decimal.Zero, decimal.Zero
	case c.sku.Period == "once":
		line.ChargingMode = market.ChargingOneTime
		line.ListAmount = amount(c.sku.UnitPrice, 1, c.qty)
		line.PaidAmount = r.discount(line.ListAmount)
	default:
		line.PeriodType, line.PeriodNumber = c.sku.Period, 1
		line.ExpireTime = endOfDay(addPeriod(now, c.sku.Period, 1))
		line.ListAmount = amount(c.sku.UnitPrice, 1, c.qty)
		line.PaidAmount = r.discount(line.ListAmount)
	}
	ref, err := r.place(ctx, c, typ, line, nil)
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.purchase = ref
	c.expire = line.ExpireTime
	c.mu.Unlock()
	msg := deliver.Message{Activity: deliver.NewInstance, OrderID: ref.OrderID, OmitTestFlag: r.chance(0.5),
		Fields:        []deliver.Field{{Name: "orderId", Value: ref.OrderID}, {Name: "orderLineId", Value: ref.LineID}, {Name: "businessId", Value: ""}},
		Undeliverable: c.path == PathUndeliverable, TestFlag: c.test}
	out, err := r.deps.Dispatcher.Deliver(ctx, msg)
	if err != nil {
		return err
	}
	if !out.Delivered {
		// The seller never accepted the order in the whole window: the marketplace judges it failed and refunds
		// the customer by itself (docs/koogallery.md, "Retry windows"). No instanceId was ever returned, so
		// nothing is sent.
		r.setDelivery(ref, out, "")
		now := r.deps.Clock.Now().UTC().Truncate(time.Second)
		refundID := r.orderID(now)
		_ = r.deps.Ledger.Refund(ref.OrderID, ref.LineID, ledger.Entry{OrderID: refundID, OrderLineID: refundID + "-000001",
			OrderType: market.TypeUnsubscribe, CustomerID: c.customerID, ProductID: line.ProductID, SKUCode: line.SKUCode,
			Quantity: line.LinearValue, Amount: line.PaidAmount, PlacedAt: now, Delivery: ledger.NotSent})
		c.mu.Lock()
		c.state, c.refunded = StateFailed, line.PaidAmount
		c.mu.Unlock()
		if c.path != PathUndeliverable {
			c.problem("newInstance given up after %d attempts: %s", out.Attempts, describe(out.Final))
		}
		return nil
	}
	c.mu.Lock()
	c.instanceID = out.Final.InstanceID
	c.state = StateActive
	c.orders = append(c.orders, ref)
	c.mu.Unlock()
	r.setDelivery(ref, out, c.instanceID)
	if !c.supervised {
		r.takeEffect(ref, r.settledNow()) // a supervised purchase takes effect at acceptance
	}
	_ = r.deps.Market.PutInstance(ctx, market.Instance{InstanceID: c.instanceID, OrderID: ref.OrderID,
		ChargingMode: line.ChargingMode, Status: "NORMAL"})
	if c.credit {
		// The seller's finance records the credit payment as the marketplace reports it.
		if err := r.withRetry(ctx, func() error { return r.deps.Seller.RecordPayment(ctx, ref.OrderID, true, nil) }); err != nil {
			return fmt.Errorf("console: record the credit payment of %s: %w", ref.OrderID, err)
		}
	}
	return r.pollAppInfo(ctx, c)
}

// repay is the credit-paid customer's repayment (回款): the marketplace records it and the seller's finance
// records it on the console with the same time.
func (r *Runner) repay(ctx context.Context, c *customer) error {
	at := r.settledNow().Truncate(time.Second)
	if err := r.withRetry(ctx, func() error { return r.deps.Seller.RecordPayment(ctx, c.purchase.OrderID, true, &at) }); err != nil {
		return fmt.Errorf("console: record the repayment of %s: %w", c.purchase.OrderID, err)
	}
	return r.deps.Ledger.Update(c.purchase.OrderID, c.purchase.LineID, func(e *ledger.Entry) { e.RepaidAt = &at })
}

// pollAppInfo calls queryInstance until the seller reports how the customer reaches the service
// (docs/koogallery.md, "queryInstance").
func (r *Runner) pollAppInfo(ctx context.Context, c *customer) error {
	id := c.instanceID
	msg := r.message(c, deliver.QueryInstance, deliver.Field{Name: "instanceId", Value: id})
	msg.Accept = func(a deliver.Attempt) bool {
		if !deliver.Succeeded(deliver.QueryInstance, a) {
			return false
		}
		for _, in := range a.Info {
			if in.InstanceID == id && in.AppInfo != nil && in.AppInfo.FrontEndURL != "" {
				return true
			}
		}
		return false
	}
	out, err := r.deps.Dispatcher.Deliver(ctx, msg)
	if err != nil {
		return err
	}
	if !out.Delivered {
		return fmt.Errorf("queryInstance never reported appInfo in %d polls: %s", out.Attempts, describe(out.Final))
	}
	for _, in := range out.Final.Info {
		if in.InstanceID == id {
			ai := *in.AppInfo
			c.mu.Lock()
			c.appInfo = &ai
			c.mu.Unlock()
		}
	}
	return nil
}

func describe(a deliver.Attempt) string {
	switch {
	case a.Lost:
		return "not reachable"
	case a.Err != nil:
		return a.Err.Error()
	default:
		return fmt.Sprintf("resultCode %s %q", a.ResultCode, a.ResultMsg)
	}
}

// deliverOrFail turns an undelivered message into an error the customer records.
func deliverOrFail(out deliver.Outcome, err error) error {
	if err != nil {
		return err
	}
	if !out.Delivered {
		return fmt.Errorf("%d attempts, last: %s", out.Attempts, describe(out.Final))
	}
	return nil
}

func (r *Runner) freeze(ctx context.Context, c *customer) error {
	c.mu.Lock()
	c.state = StateFrozen
	c.mu.Unlock()
	_ = r.deps.Market.PutInstance(ctx, market.Instance{InstanceID: c.instanceID, OrderID: c.purchase.OrderID, ChargingMode: market.ChargingPeriod, Status: "FROZEN"})
	err := deliverOrFail(r.deps.Dispatcher.Deliver(ctx, r.message(c, deliver.UpdateInstanceStatus,
		deliver.Field{Name: "instanceId", Value: c.instanceID}, deliver.Field{Name: "status", Value: "FREEZE"})))
	if err != nil {
		return fmt.Errorf("FREEZE: %w", err)
	}
	return nil
}

func (r *Runner) releaseAfterRetention(ctx context.Context, c *customer) error {
	return r.release(ctx, c, nil)
}

func (r *Runner) release(ctx context.Context, c *customer, unsub *orderRef) error {
	c.mu.Lock()
	c.state = StateReleased
	c.mu.Unlock()
	_ = r.deps.Market.PutInstance(ctx, market.Instance{InstanceID: c.instanceID, OrderID: c.purchase.OrderID, ChargingMode: market.ChargingPeriod, Status: "RELEASED"})
	fields := []deliver.Field{{Name: "instanceId", Value: c.instanceID}}
	if unsub != nil {
		fields = append(fields, deliver.Field{Name: "orderId", Value: unsub.OrderID}, deliver.Field{Name: "orderLineId", Value: unsub.LineID})
	}
	out, err := r.deps.Dispatcher.Deliver(ctx, r.message(c, deliver.ReleaseInstance, fields...))
	if unsub != nil {
		r.setDelivery(*unsub, out, c.instanceID)
		if out.Delivered {
			r.takeEffect(*unsub, r.settledNow())
		}
	}
	if err := deliverOrFail(out, err); err != nil {
		return fmt.Errorf("releaseInstance: %w", err)
	}
	return nil
}

// renew buys another period (with change: another SKU, after asking the seller with changeInstanceCheck). A
// renewal during the freeze counts from the original expiry and is followed by UNFREEZE, sent together with
// the refresh in no particular order (docs/koogallery.md, "updateInstanceStatus").
func (r *Runner) renew(ctx context.Context, c *customer, change bool) error {
	sku, qty := c.sku, c.qty
	scene := "RENEWAL"
	if change {
		target, ok := r.otherSKU(c)
		if !ok {
			target, qty = c.sku, c.qty+5
		}
		sku = target
		check := r.message(c, deliver.ChangeInstanceCheck,
			deliver.Field{Name: "instanceId", Value: c.instanceID},
			deliver.Field{Name: "productInfo", Value: map[string]any{"productId": c.product.ProductID, "skuCode": sku.SKUCode, "linearValue": qty}})
		check.Accept = deliver.Answer
		out, err := r.deps.Dispatcher.Deliver(ctx, check)
		if err != nil {
			return err
		}
		if !out.Delivered {
			return fmt.Errorf("changeInstanceCheck got no answer in %d attempts: %s", out.Attempts, describe(out.Final))
		}
		if out.Final.ResultCode != deliver.CodeSuccess {
			// A refusal is the seller's answer: the customer cannot renew with this change. Not a mismatch,
			// but worth showing.
			r.note("changeInstanceCheck refused for %s: %s", c.instanceID, describe(out.Final))
			return nil
		}
		scene = "RENEWAL_CHANGE"
	}
	c.mu.Lock()
	prev, state := c.expire, c.state
	c.mu.Unlock()
	newExpire := addPeriod(prev, c.sku.Period, 1)
	line := market.Line{ChargingMode: market.ChargingPeriod, PeriodType: c.sku.Period, PeriodNumber: 1, ExpireTime: newExpire,
		ProductID: c.product.ProductID, SKUCode: sku.SKUCode, LinearValue: qty, ListAmount: amount(sku.UnitPrice, 1, qty)}
	line.PaidAmount = r.discount(line.ListAmount)
	ref, err := r.place(ctx, c, market.TypeRenew, line, nil)
	if err != nil {
		return err
	}
	ref.PrevExpire = prev
	c.mu.Lock()
	c.expire, c.state, c.sku, c.qty = newExpire, StateActive, sku, qty
	c.orders = append(c.orders, ref)
	c.renewal = &ref
	c.mu.Unlock()
	refresh := r.message(c, deliver.RefreshInstance,
		deliver.Field{Name: "scene", Value: scene}, deliver.Field{Name: "orderId", Value: ref.OrderID},
		deliver.Field{Name: "orderLineId", Value: ref.LineID}, deliver.Field{Name: "instanceId", Value: c.instanceID},
		deliver.Field{Name: "expireTime", Value: r.expireField(newExpire)})
	// A renewal takes effect when the expiry it extends is reached, or when it is applied if that has passed.
	effective := func(out deliver.Outcome) {
		if out.Delivered {
			now := r.settledNow()
			if prev.After(now) {
				now = prev
			}
			r.takeEffect(ref, now)
		}
	}
	if state != StateFrozen {
		out, err := r.deps.Dispatcher.Deliver(ctx, refresh)
		r.setDelivery(ref, out, c.instanceID)
		effective(out)
		return deliverOrFail(out, err)
	}
	_ = r.deps.Market.PutInstance(ctx, market.Instance{InstanceID: c.instanceID, OrderID: c.purchase.OrderID, ChargingMode: market.ChargingPeriod, Status: "NORMAL"})
	var wg sync.WaitGroup
	var refreshErr, unfreezeErr error
	wg.Add(2)
	go func() {
		defer wg.Done()
		out, err := r.deps.Dispatcher.Deliver(ctx, refresh)
		r.setDelivery(ref, out, c.instanceID)
		effective(out)
		refreshErr = deliverOrFail(out, err)
	}()
	go func() {
		defer wg.Done()
		unfreezeErr = deliverOrFail(r.deps.Dispatcher.Deliver(ctx, r.message(c, deliver.UpdateInstanceStatus,
			deliver.Field{Name: "instanceId", Value: c.instanceID}, deliver.Field{Name: "status", Value: "UNFREEZE"})))
	}()
	wg.Wait()
	if refreshErr != nil || unfreezeErr != nil {
		return fmt.Errorf("renewal during freeze: refresh: %v; UNFREEZE: %v", refreshErr, unfreezeErr)
	}
	return nil
}

func (r *Runner) convertTrial(ctx context.Context, c *customer) error {
	now := r.deps.Clock.Now()
	expire := endOfDay(addPeriod(now, "month", 1))
	line := market.Line{ChargingMode: market.ChargingPeriod, PeriodType: "month", PeriodNumber: 1, ExpireTime: expire,
		ProductID: c.product.ProductID, SKUCode: c.sku.SKUCode, LinearValue: c.qty, ListAmount: amount(c.sku.UnitPrice, 1, c.qty)}
	line.PaidAmount = r.discount(line.ListAmount)
	ref, err := r.place(ctx, c, market.TypeTrialToFormal, line, nil)
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.expire, c.state = expire, StateActive
	c.orders = append(c.orders, ref)
	c.mu.Unlock()
	out, err := r.deps.Dispatcher.Deliver(ctx, r.message(c, deliver.RefreshInstance,
		deliver.Field{Name: "scene", Value: "TRIAL_TO_FORMAL"}, deliver.Field{Name: "orderId", Value: ref.OrderID},
		deliver.Field{Name: "orderLineId", Value: ref.LineID}, deliver.Field{Name: "instanceId", Value: c.instanceID},
		deliver.Field{Name: "expireTime", Value: r.expireField(expire)}))
	r.setDelivery(ref, out, c.instanceID)
	if out.Delivered {
		r.takeEffect(ref, r.settledNow())
	}
	return deliverOrFail(out, err)
}

func (r *Runner) upgrade(ctx context.Context, c *customer) error {
	sku, qty := c.sku, c.qty
	if other, ok := r.otherSKU(c); ok && other.UnitPrice.GreaterThan(c.sku.UnitPrice) {
		sku = other
	} else {
		qty += 5
	}
	diff := amount(sku.UnitPrice, 1, qty).Sub(amount(c.sku.UnitPrice, 1, c.qty))
	if diff.IsNegative() {
		diff = decimal.Zero
	}
	c.mu.Lock()
	expire := c.expire
	c.mu.Unlock()
	line := market.Line{ChargingMode: market.ChargingPeriod, PeriodType: c.sku.Period, PeriodNumber: 1, ExpireTime: expire,
		ProductID: c.product.ProductID, SKUCode: sku.SKUCode, LinearValue: qty, ListAmount: diff, PaidAmount: diff}
	ref, err := r.place(ctx, c, market.TypeChange, line, nil)
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.sku, c.qty = sku, qty
	c.orders = append(c.orders, ref)
	c.mu.Unlock()
	out, err := r.deps.Dispatcher.Deliver(ctx, r.message(c, deliver.UpgradeInstance,
		deliver.Field{Name: "instanceId", Value: c.instanceID}, deliver.Field{Name: "orderId", Value: ref.OrderID},
		deliver.Field{Name: "orderLineId", Value: ref.LineID}))
	r.setDelivery(ref, out, c.instanceID)
	if out.Delivered {
		r.takeEffect(ref, r.settledNow())
	}
	return deliverOrFail(out, err)
}

// unsubscribe is the customer's no-reason unsubscription of a non-supervised purchase: the marketplace refunds
// what was paid and releases the instance with the unsubscribe order.
func (r *Runner) unsubscribe(ctx context.Context, c *customer) error {
	c.mu.Lock()
	p := c.purchase
	refund := p.Paid.Sub(c.refunded)
	c.mu.Unlock()
	return r.unsubscribeWith(ctx, c, p, refund)
}

func (r *Runner) unsubscribeWith(ctx context.Context, c *customer, of orderRef, refund decimal.Decimal) error {
	line := market.Line{ChargingMode: market.ChargingPeriod, PeriodType: c.sku.Period, PeriodNumber: 1,
		ProductID: c.product.ProductID, SKUCode: c.sku.SKUCode, LinearValue: c.qty, ListAmount: refund, PaidAmount: refund}
	if c.sku.Period == "once" {
		line.ChargingMode, line.PeriodType, line.PeriodNumber = market.ChargingOneTime, "", 0
	}
	ref, err := r.place(ctx, c, market.TypeUnsubscribe, line, &of)
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.refunded = c.refunded.Add(refund)
	c.orders = append(c.orders, ref)
	c.mu.Unlock()
	return r.release(ctx, c, &ref)
}

// refundRenewal refunds the latest renewal before it takes effect: the expiry moves back (refreshInstance
// UNSUBSCRIBE_RENEWAL_PERIOD with the unsubscribe order).
func (r *Runner) refundRenewal(ctx context.Context, c *customer) error {
	c.mu.Lock()
	rn := c.renewal
	c.mu.Unlock()
	if rn == nil {
		return errors.New("no renewal to refund")
	}
	line := market.Line{ChargingMode: market.ChargingPeriod, PeriodType: c.sku.Period, PeriodNumber: 1, ExpireTime: rn.PrevExpire,
		ProductID: c.product.ProductID, SKUCode: c.sku.SKUCode, LinearValue: c.qty, ListAmount: rn.Paid, PaidAmount: rn.Paid}
	ref, err := r.place(ctx, c, market.TypeUnsubscribe, line, rn)
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.expire = rn.PrevExpire
	c.refunded = c.refunded.Add(rn.Paid)
	c.orders = append(c.orders, ref)
	c.renewal = nil
	c.mu.Unlock()
	out, err := r.deps.Dispatcher.Deliver(ctx, r.message(c, deliver.RefreshInstance,
		deliver.Field{Name: "scene", Value: "UNSUBSCRIBE_RENEWAL_PERIOD"}, deliver.Field{Name: "orderId", Value: ref.OrderID},
		deliver.Field{Name: "orderLineId", Value: ref.LineID}, deliver.Field{Name: "instanceId", Value: c.instanceID},
		deliver.Field{Name: "expireTime", Value: r.expireField(rn.PrevExpire)}))
	r.setDelivery(ref, out, c.instanceID)
	if out.Delivered {
		r.takeEffect(ref, r.settledNow())
	}
	return deliverOrFail(out, err)
}

// supervisionStep performs one step on the seller's console as party; on success the marketplace's view of the
// supervision moves to want.
func (r *Runner) supervisionStep(stepName, party, want string) func(context.Context, *customer) error {
	return func(ctx context.Context, c *customer) error {
		note := ""
		if stepName == StepReject {
			note = "please add the number of seats and the go-live date"
		}
		err := r.withRetry(ctx, func() error { return r.deps.Seller.Supervise(ctx, c.instanceID, stepName, party, note) })
		if err != nil {
			return fmt.Errorf("console %s as %s: %w", stepName, party, err)
		}
		c.mu.Lock()
		c.supervise = want
		c.mu.Unlock()
		_ = r.deps.Ledger.Update(c.purchase.OrderID, c.purchase.LineID, func(e *ledger.Entry) { e.Supervision = want })
		if want == SupCompleted {
			r.takeEffect(c.purchase, r.settledNow())
		}
		return nil
	}
}

// negotiatedRefund is a refund inside the guarantee period of a supervised purchase: the customer asks on the
// console, the seller approves, and the marketplace executes it with an unsubscribe order and releaseInstance.
func (r *Runner) negotiatedRefund(ctx context.Context, c *customer) error {
	var amt *decimal.Decimal
	if r.chance(0.5) {
		half := c.purchase.Paid.Div(decimal.NewFromInt(2)).Round(2)
		if half.IsPositive() {
			amt = &half
		}
	}
	var refundID string
	err := r.withRetry(ctx, func() error {
		var err error
		refundID, err = r.deps.Seller.RequestRefund(ctx, c.instanceID, amt)
		return err
	})
	if err != nil {
		return fmt.Errorf("console refund request: %w", err)
	}
	var approved decimal.Decimal
	err = r.withRetry(ctx, func() error {
		var err error
		approved, err = r.deps.Seller.ApproveRefund(ctx, c.instanceID, refundID)
		return err
	})
	if err != nil {
		return fmt.Errorf("console refund approval: %w", err)
	}
	return r.unsubscribeWith(ctx, c, c.purchase, approved)
}

// withRetry repeats a console action the seller asks to retry later, for up to a minute of wall time.
func (r *Runner) withRetry(ctx context.Context, f func() error) error {
	deadline := time.Now().Add(r.cfg.ConsoleRetry)
	for {
		err := f()
		if err == nil || !errors.Is(err, ErrRetryLater) || time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(300 * time.Millisecond):
		}
	}
}
