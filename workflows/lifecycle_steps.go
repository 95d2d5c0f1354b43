package workflows

import (
	"fmt"
	"slices"
	"time"

	"github.com/shopspring/decimal"
	"go.temporal.io/sdk/workflow"

	"github.com/kooflow/kooflow/activities"
	"github.com/kooflow/kooflow/internal/instance"
	"github.com/kooflow/kooflow/internal/koogallery"
	"github.com/kooflow/kooflow/internal/lifecycle"
	"github.com/kooflow/kooflow/internal/provisioning"
	"github.com/kooflow/kooflow/internal/store"
)

// testFlag says whether a step belongs to a dial test: such orders are never settled and never provisioned for
// real.
func (r *run) testFlag(st *instance.Step) bool {
	switch {
	case r.in.TestFlag:
		return true
	case st.Refresh != nil:
		return st.Refresh.TestFlag
	case st.Status != nil:
		return st.Status.TestFlag
	case st.Upgrade != nil:
		return st.Upgrade.TestFlag
	case st.Release != nil:
		return st.Release.TestFlag
	}
	return false
}

// orderRow builds an orders row from a queried order line.
func (r *run) orderRow(f *activities.OrderFacts, typ string, paid decimal.Decimal, effective *time.Time, refersTo string, testFlag bool) store.OrderRow {
	return activities.OrderRow(f, r.in.InstanceID, typ, paid, effective, refersTo, testFlag)
}

// refundOrderRow builds an UNSUBSCRIBE row: paid_amount is minus the refunded amount, list_amount the order
// line's currency as the marketplace gives it (docs/architecture.md, "The orders contract"). Without the queried
// order (the operator skipped the query) it is built from the call and the instance's product, with no list
// amount.
func (r *run) refundOrderRow(f *activities.OrderFacts, orderID, lineID string, amount decimal.Decimal, at time.Time, refersTo string, testFlag bool) store.OrderRow {
	if f != nil {
		return r.orderRow(f, koogallery.OrderTypeUnsubscribe, amount.Neg(), &at, refersTo, testFlag)
	}
	p := r.s.Product
	return store.OrderRow{
		OrderID: orderID, OrderLineID: lineID, InstanceID: r.in.InstanceID, OrderType: koogallery.OrderTypeUnsubscribe,
		ProductID: p.ProductID, SKUCode: p.SKUCode, ChargingMode: p.ChargingMode, PeriodType: p.PeriodType,
		Quantity: max(p.Quantity, 1), PaidAmount: amount.Neg(), RefersToOrderID: refersTo,
		EffectiveAt: utc(&at), TestFlag: testFlag,
	}
}

func utc(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

func fmtTime(t *time.Time) string {
	if t == nil {
		return "no expiry"
	}
	return t.UTC().Format(time.RFC3339)
}

// purchase queries the purchase order, records it, provisions the instance and records the result.
func (r *run) purchase(ctx workflow.Context, st *instance.Step) {
	tf := r.testFlag(st)
	accepted := fmt.Sprintf("newInstance accepted for order %s line %s", r.in.OrderID, r.in.OrderLineID)
	if tf {
		accepted += " (dial test)"
	}
	acceptedW := r.write("record instance "+r.in.InstanceID+" accepted",
		r.event(ctx, st.ID+":accepted", "accepted", lifecycle.Marketplace, accepted, nil))
	var f *activities.OrderFacts
	if workflow.GetVersion(ctx, purchaseLocalQuery, workflow.DefaultVersion, 1) == 1 {
		// The accepted row, the order query and the order row all run as local activities of the workflow's
		// first task: one billed action instead of three, and no activity task round trip through the server.
		r.enqueue(acceptedW)
		f, _ = r.queryOrderLocal(ctx, st, "purchase", r.in.OrderID, r.in.OrderLineID, koogallery.OrderTypeNew, koogallery.OrderTypeTrial)
	} else {
		r.record(ctx, acceptedW)
		f, _ = r.queryOrder(ctx, st, "purchase", r.in.OrderID, r.in.OrderLineID, koogallery.OrderTypeNew, koogallery.OrderTypeTrial)
	}
	var w store.Write
	if f != nil {
		r.s.Product, r.s.CustomerID = f.Product, f.CustomerID
		if p := lifecycle.Purchase(&r.s); p == nil || p.Type != "TRIAL_TO_FORMAL" {
			r.s.Trial = f.OrderType == koogallery.OrderTypeTrial
		}
		if r.s.ExpireTime == nil {
			r.s.ExpireTime = f.ExpireTime
		}
		if r.s.Supervision == "" {
			r.s.Supervision = lifecycle.InitialSupervision(f.Product)
		}
		paid := f.PaidAmount
		if f.OrderType == koogallery.OrderTypeTrial {
			paid = decimal.Zero // a trial is never billed
		}
		r.s.Ledger = append([]instance.LedgerOrder{{OrderID: f.OrderID, OrderLineID: f.OrderLineID, Type: f.OrderType,
			Known: true, Paid: paid, AppliedAt: st.AcceptedAt}}, r.s.Ledger...)
		lifecycle.Touch(&r.s)
		w = r.write("record purchase order "+f.OrderID, r.event(ctx, st.ID+":order", "order", lifecycle.Marketplace,
			fmt.Sprintf("%s order %s: %s %s ×%d, paid %s, expires %s, supervision %s", f.OrderType, f.OrderID,
				f.Product.ProductID, f.Product.SKUCode, f.Product.Quantity, paid, fmtTime(r.s.ExpireTime), r.s.Supervision), nil))
		w.Orders = []store.OrderRow{r.orderRow(f, f.OrderType, paid, nil, "", tf)}
		if !f.Product.Known {
			msg := fmt.Sprintf("product %s is not in the catalog: treated as supervised, general, provisioned by the default provisioner; add it to KOOFLOW_CATALOG_FILE", f.Product.ProductID)
			w.Events = append(w.Events, r.event(ctx, st.ID+":unknown-product", "unknown-product", lifecycle.System, msg, nil))
			w.Alerts = []store.AlertRow{{Key: "unknown-product:" + f.Product.ProductID, Kind: "unknown-product",
				At: workflow.Now(ctx).UTC(), Message: msg}}
		}
	} else {
		// Skipped by an operator: nothing is known about the order, so the safe defaults apply and no order row
		// exists for settlement.
		r.s.Product = instance.Product{Known: false, Supervised: true}
		if r.s.Supervision == "" {
			r.s.Supervision = lifecycle.InitialSupervision(r.s.Product)
		}
		lifecycle.Touch(&r.s)
		w = r.write("record skipped purchase order query", r.event(ctx, st.ID+":order", "order", lifecycle.System,
			"the purchase order query was skipped: no order row is recorded, so nothing will be settled for it", nil))
	}
	// Search attributes follow once provisioning ends (one upsert for the whole purchase).
	r.record(ctx, w)

	res, out := r.provisionWith(ctx, st, provisioning.Create, r.s.Product, r.in.OrderID, tf, provisionOptions{local: r.fewer})
	now := workflow.Now(ctx).UTC()
	var summary string
	switch out {
	case abandoned:
		lifecycle.Touch(&r.s)
		r.record(ctx, r.write("record provisioning abandoned", r.event(ctx, st.ID+":provisioned", "provisioning-abandoned",
			lifecycle.System, "the release was accepted before provisioning completed; nothing was provisioned", nil)))
		return
	case skipped:
		summary = "provisioning skipped by an operator: the instance is treated as provisioned by hand"
	default:
		summary = "provisioned by the " + res.Provisioner + " provisioner"
		if res.AppInfoStored {
			summary += "; the customer's URL is " + res.FrontEndURL
		}
	}
	lifecycle.Provisioned(&r.s, now)
	w = r.write("record instance provisioned", r.event(ctx, st.ID+":provisioned", "provisioned", lifecycle.System, summary, nil))
	for _, o := range r.s.Ledger {
		if (o.Type == koogallery.OrderTypeNew || o.Type == koogallery.OrderTypeTrial) && o.EffectiveAt != nil {
			w.Effective = append(w.Effective, store.OrderEffective{OrderID: o.OrderID, OrderLineID: o.OrderLineID, At: *o.EffectiveAt})
		}
	}
	r.syncSearchAttributes(ctx)
	r.record(ctx, w)
}

// refreshStep records a renewal, trial conversion or renewal refund, applies a changed specification and
// restores access, then asks for Continue-As-New after a renewal.
func (r *run) refreshStep(ctx workflow.Context, st *instance.Step) {
	req := st.Refresh
	tf := r.testFlag(st)
	var expect []string
	what := "renewal"
	switch req.Scene {
	case instance.SceneRenewal:
		expect = []string{koogallery.OrderTypeRenew}
	case instance.SceneRenewalChange:
		expect = []string{koogallery.OrderTypeRenew, koogallery.OrderTypeChange}
	case instance.SceneTrialToFormal:
		expect, what = []string{koogallery.OrderTypeTrialToFormal}, "trial-to-formal"
	case instance.SceneUnsubscribeRenewalPeriod:
		expect, what = []string{koogallery.OrderTypeUnsubscribe}, "renewal refund"
	}
	renewed := fmt.Sprintf("renewed until %s by order %s, effective %s", fmtTime(&req.ExpireTime), req.OrderID, fmtTime(st.EffectiveAt))
	// A plain renewal hands its write to the order query, which records it with the queried order row.
	var rec *activities.OrderRecord
	var next instance.Carry
	if r.fewer && req.Scene == instance.SceneRenewal && !st.Unfreeze {
		next = r.s
		lifecycle.Touch(&next)
		w := r.writeOf(&next, "record "+what+" order "+req.OrderID, r.event(ctx, st.ID+":renewed", "renewed", lifecycle.Marketplace, renewed, nil))
		w.ResolveAlerts = []string{"expiry"}
		exp := req.ExpireTime.UTC()
		rec = &activities.OrderRecord{Write: w, Product: r.s.Product, OrderType: koogallery.OrderTypeRenew,
			EffectiveAt: st.EffectiveAt, ExpireTime: &exp, TestFlag: tf, PaidSuffix: ", paid "}
	}
	f, _ := r.queryOrderRecording(ctx, st, what, req.OrderID, req.OrderLineID, rec, expect...)
	var orders []store.OrderRow
	var events []store.EventRow
	kind, summary := "renewed", ""
	switch req.Scene {
	case instance.SceneRenewal, instance.SceneRenewalChange:
		summary = renewed
		if f == nil {
			summary += "; the order query was skipped, so no order row is recorded"
			break
		}
		if o := lifecycle.FindOrder(&r.s, req.OrderID); o != nil {
			o.Known, o.Paid = true, f.PaidAmount
		}
		row := r.orderRow(f, koogallery.OrderTypeRenew, f.PaidAmount, st.EffectiveAt, "", tf)
		exp := req.ExpireTime.UTC()
		row.ExpireTime = &exp
		orders = append(orders, row)
		summary += ", paid " + f.PaidAmount.String()
		changed := f.Product.SKUCode != r.s.Product.SKUCode || f.Product.Quantity != r.s.Product.Quantity
		if req.Scene == instance.SceneRenewalChange && changed && r.s.Provisioned {
			_, out := r.provision(ctx, st, provisioning.Upgrade, f.Product, req.OrderID, tf)
			events = append(events, r.event(ctx, st.ID+":change", "upgraded", lifecycle.Marketplace,
				fmt.Sprintf("specification changed with the renewal: %s ×%d → %s ×%d (%s)", r.s.Product.SKUCode,
					r.s.Product.Quantity, f.Product.SKUCode, f.Product.Quantity, outcomeText(out)), nil))
		}
		if f.Product.ProductID != "" {
			r.s.Product = f.Product
		}
	case instance.SceneTrialToFormal:
		kind = "trial-converted"
		summary = fmt.Sprintf("trial converted to a formal order %s, expires %s", req.OrderID, fmtTime(&req.ExpireTime))
		if f == nil {
			summary += "; the order query was skipped, so no order row is recorded"
			break
		}
		if o := lifecycle.FindOrder(&r.s, req.OrderID); o != nil {
			o.Known, o.Paid = true, f.PaidAmount
		}
		orders = append(orders, r.orderRow(f, koogallery.OrderTypeTrialToFormal, f.PaidAmount, &st.AcceptedAt, "", tf))
		summary += ", paid " + f.PaidAmount.String()
		if f.Product.ProductID != "" {
			r.s.Product = f.Product
		}
	case instance.SceneUnsubscribeRenewalPeriod:
		kind = "renewal-refunded"
		refunded := lifecycle.RenewalsRefundedBy(&r.s, req.ExpireTime, st.AcceptedAt)
		total, refers := decimal.Zero, ""
		for _, o := range refunded {
			total = total.Add(lifecycle.ApplyUnsubscribe(o, nil))
			refers = o.OrderID
		}
		if len(refunded) == 0 && f != nil {
			total = f.PaidAmount.Abs()
		}
		orders = append(orders, r.refundOrderRow(f, req.OrderID, req.OrderLineID, total, st.AcceptedAt, refers, tf))
		summary = fmt.Sprintf("renewal %s refunded (%s) by order %s; expiry moved back to %s", refers, total, req.OrderID, fmtTime(&req.ExpireTime))
	}
	if st.Unfreeze {
		note := "access restored"
		if r.s.Provisioned && !lifecycle.Ended(&r.s) {
			_, out := r.provision(ctx, st, provisioning.Unfreeze, r.s.Product, req.OrderID, tf)
			note = outcomeText(out)
		}
		events = append(events, r.event(ctx, st.ID+":unfrozen", "unfrozen", lifecycle.Marketplace,
			"unfrozen by the renewal ("+note+")", nil))
	}
	lifecycle.Touch(&r.s)
	if req.Scene != instance.SceneUnsubscribeRenewalPeriod {
		r.renewals++
		r.wantCAN = !r.fewer || r.renewals >= r.renewalsPerRun()
	}
	if f != nil && f.Recorded && r.s.Version == next.Version {
		// Recorded by the query, and nothing has changed the state since the write was built.
		r.syncSearchAttributes(ctx)
		return
	}
	w := r.write("record "+what+" order "+req.OrderID, append([]store.EventRow{
		r.event(ctx, st.ID+":"+kind, kind, lifecycle.Marketplace, summary, nil)}, events...)...)
	w.Orders = orders
	if req.Scene != instance.SceneUnsubscribeRenewalPeriod {
		w.ResolveAlerts = []string{"expiry"}
	}
	r.syncSearchAttributes(ctx)
	r.record(ctx, w)
}

// renewalsPerRun is how many renewals this run takes before it continues as new.
func (r *run) renewalsPerRun() int {
	if r.cfg.RenewalsPerRun > 0 {
		return r.cfg.RenewalsPerRun
	}
	return defaultRenewalsPerRun
}

func outcomeText(o outcome) string {
	switch o {
	case skipped:
		return "skipped by an operator"
	case abandoned:
		return "abandoned: the instance is being released"
	}
	return "done"
}

// statusStep tells the provisioner about a freeze or unfreeze (data is kept either way).
func (r *run) statusStep(ctx workflow.Context, st *instance.Step) {
	req := st.Status
	kind, pk, verb := "frozen", provisioning.Freeze, "frozen"
	if req.Status == instance.StatusUnfreeze {
		kind, pk, verb = "unfrozen", provisioning.Unfreeze, "unfrozen"
	}
	build := func(s *instance.Carry, note string) store.Write {
		summary := verb + " by the marketplace (" + note + ")"
		if st.Actor.Party == instance.PartySystem {
			summary = verb + " by the expiry policy (" + note + ")"
		}
		w := r.writeOf(s, "record instance "+verb, r.event(ctx, st.ID+":"+kind, kind, st.Actor, summary, nil))
		if req.Status == instance.StatusFreeze {
			w.ResolveAlerts = []string{"expiry"}
		}
		return w
	}
	note := ""
	switch {
	case !r.s.Provisioned:
		note = "nothing provisioned yet, so nothing to tell the provisioner"
	case lifecycle.Ended(&r.s):
		note = "skipped: the instance is being released"
	default:
		var o provisionOptions
		next := r.s
		lifecycle.Touch(&next)
		if r.fewer {
			// The provisioning activity records the step when it succeeds.
			w := build(&next, outcomeText(done))
			o.record = &w
		}
		res, out := r.provisionWith(ctx, st, pk, r.s.Product, "", r.testFlag(st), o)
		note = outcomeText(out)
		if out == done && res.Recorded && r.s.Version+1 == next.Version {
			lifecycle.Touch(&r.s)
			r.syncSearchAttributes(ctx)
			return
		}
	}
	lifecycle.Touch(&r.s)
	w := build(&r.s, note)
	r.syncSearchAttributes(ctx)
	r.record(ctx, w)
}

// upgradeStep queries the CHANGE order and applies the new SKU or quantity through the provisioner.
func (r *run) upgradeStep(ctx workflow.Context, st *instance.Step) {
	req := st.Upgrade
	tf := r.testFlag(st)
	f, _ := r.queryOrder(ctx, st, "upgrade", req.OrderID, req.OrderLineID, koogallery.OrderTypeChange)
	var w store.Write
	if f == nil {
		lifecycle.Touch(&r.s)
		w = r.write("record skipped upgrade order query", r.event(ctx, st.ID+":upgraded", "upgraded", lifecycle.System,
			"the query of upgrade order "+req.OrderID+" was skipped: nothing was changed or recorded", nil))
	} else {
		note := "not provisioned yet"
		if r.s.Provisioned && !lifecycle.Ended(&r.s) {
			_, out := r.provision(ctx, st, provisioning.Upgrade, f.Product, req.OrderID, tf)
			note = outcomeText(out)
		}
		summary := fmt.Sprintf("upgraded by order %s: %s ×%d → %s ×%d, paid %s (%s)", req.OrderID, r.s.Product.SKUCode,
			r.s.Product.Quantity, f.Product.SKUCode, f.Product.Quantity, f.PaidAmount, note)
		accepted := st.AcceptedAt
		r.s.Ledger = append(r.s.Ledger, instance.LedgerOrder{OrderID: f.OrderID, OrderLineID: f.OrderLineID,
			Type: koogallery.OrderTypeChange, Known: true, Paid: f.PaidAmount, AppliedAt: accepted, EffectiveAt: &accepted})
		if f.Product.ProductID != "" {
			r.s.Product = f.Product
		}
		lifecycle.Touch(&r.s)
		w = r.write("record upgrade order "+req.OrderID, r.event(ctx, st.ID+":upgraded", "upgraded", lifecycle.Marketplace, summary, nil))
		w.Orders = []store.OrderRow{r.orderRow(f, koogallery.OrderTypeChange, f.PaidAmount, &accepted, "", tf)}
	}
	r.syncSearchAttributes(ctx)
	r.record(ctx, w)
}

// releaseStep records an unsubscribe refund if the release follows one, deprovisions, writes the final rows and
// ends the instance.
func (r *run) releaseStep(ctx workflow.Context, st *instance.Step) {
	req := st.Release
	tf := r.testFlag(st)
	var orders []store.OrderRow
	summary := "released by the marketplace"
	if req.OrderID != "" {
		f, _ := r.queryOrder(ctx, st, "unsubscribe", req.OrderID, req.OrderLineID, koogallery.OrderTypeUnsubscribe)
		var queried *decimal.Decimal
		if f != nil {
			q := f.PaidAmount
			queried = &q
		}
		amount, refers := decimal.Zero, ""
		if p := lifecycle.Purchase(&r.s); p != nil && p.Known {
			amount, refers = lifecycle.ApplyUnsubscribe(p, queried), p.OrderID
		} else if queried != nil {
			amount = queried.Abs()
		}
		orders = append(orders, r.refundOrderRow(f, req.OrderID, req.OrderLineID, amount, st.AcceptedAt, refers, tf))
		summary = fmt.Sprintf("released after unsubscribe order %s (refunded %s of order %s)", req.OrderID, amount, refers)
	}
	build := func(s *instance.Carry, summary string, now time.Time) store.Write {
		w := r.writeOf(s, "record instance released", r.event(ctx, st.ID+":released", "released", lifecycle.Marketplace, summary, nil))
		w.Orders = orders
		w.ClearAppInfo = true
		w.ResolveAlerts = []string{"expiry", "unknown-product"}
		for _, rf := range s.Refunds {
			if rf.Status == instance.RefundCancelled && rf.DecidedAt != nil && rf.DecidedAt.Equal(now) {
				w.Refunds = append(w.Refunds, refundRow(rf))
			}
		}
		return w
	}
	// The release time is taken before deprovisioning when the deprovisioning activity records the release
	// itself (a pay-per-use instance pushes its usage after deprovisioning, so it records as before).
	fold := r.fewer && r.s.Provisioned && !payPerUse(r.s.Product)
	var now time.Time
	if fold {
		now = workflow.Now(ctx).UTC()
	}
	if r.s.Provisioned {
		var o provisionOptions
		next := r.s
		if fold {
			next.Refunds = slices.Clone(r.s.Refunds)
			lifecycle.Released(&next, now)
			w := build(&next, summary+"; deprovisioning "+outcomeText(done)+", the customer's data may now be deleted", now)
			o.record = &w
		}
		res, out := r.provisionWith(ctx, st, provisioning.Release, r.s.Product, req.OrderID, tf, o)
		summary += "; deprovisioning " + outcomeText(out) + ", the customer's data may now be deleted"
		if fold && out == done && res.Recorded {
			lifecycle.Released(&r.s, now)
			if r.s.Version == next.Version {
				r.syncSearchAttributes(ctx)
				return
			}
			// The state changed while deprovisioning: record it again over the folded write (a newer version).
			r.syncSearchAttributes(ctx)
			r.record(ctx, build(&r.s, summary, now))
			return
		}
	}
	summary += r.flushUsage(ctx, st)
	if !fold {
		now = workflow.Now(ctx).UTC()
	}
	lifecycle.Released(&r.s, now)
	w := build(&r.s, summary, now)
	r.syncSearchAttributes(ctx)
	r.record(ctx, w)
}
