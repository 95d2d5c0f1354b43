package activities

import (
	"context"
	"time"

	"github.com/shopspring/decimal"

	"github.com/kooflow/kooflow/internal/instance"
	"github.com/kooflow/kooflow/internal/store"
)

// OrderRecord is the read-model write of a step whose only other call is its order query (a renewal), handed to
// QueryOrder so the query records the step as well: one billed activity instead of the activity plus a local
// activity in a later workflow task. The workflow builds the write as it would after the query; the activity
// adds what only the answer gives: the order row and the paid amount in the first event's summary.
type OrderRecord struct {
	Write store.Write `json:"write"`
	// Product is the product the write's instance projection assumes. The workflow takes the queried product
	// over, so when the answer names another one, nothing is recorded and the workflow records the step itself.
	Product instance.Product `json:"product"`
	// The order row: OrderType, EffectiveAt and ExpireTime override the answer's; the paid amount is the answer's.
	OrderType   string     `json:"orderType"`
	EffectiveAt *time.Time `json:"effectiveAt,omitempty"`
	ExpireTime  *time.Time `json:"expireTime,omitempty"`
	TestFlag    bool       `json:"testFlag,omitempty"`
	// PaidSuffix, followed by the paid amount, ends the first event's summary.
	PaidSuffix string `json:"paidSuffix,omitempty"`
}

// OrderRow builds an orders row from a queried order line; the workflow and OrderRecord build rows the same way.
func OrderRow(f *OrderFacts, instanceID, typ string, paid decimal.Decimal, effective *time.Time, refersTo string, testFlag bool) store.OrderRow {
	return store.OrderRow{
		OrderID: f.OrderID, OrderLineID: f.OrderLineID, InstanceID: instanceID, OrderType: typ,
		ProductID: f.Product.ProductID, SKUCode: f.Product.SKUCode, ChargingMode: f.ChargingMode,
		PeriodType: f.PeriodType, PeriodNumber: f.PeriodNumber, Quantity: f.Product.Quantity,
		ListAmount: f.ListAmount, PaidAmount: paid, RefersToOrderID: refersTo, PlacedAt: f.PlacedAt,
		EffectiveAt: utc(effective), ExpireTime: f.ExpireTime, TestFlag: testFlag, Raw: f.Raw,
	}
}

func utc(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

// sameProduct reports whether the queried product is the one a projection assumed (what the instance row shows).
func sameProduct(a, b instance.Product) bool {
	return a.ProductID == b.ProductID && a.Name == b.Name && a.Known == b.Known && a.SKUCode == b.SKUCode &&
		a.Quantity == b.Quantity && a.ChargingMode == b.ChargingMode && a.PeriodType == b.PeriodType
}

// recordOrder applies rec with the queried order and reports whether it did.
func (a *Lifecycle) recordOrder(ctx context.Context, instanceID string, f *OrderFacts, rec *OrderRecord) bool {
	if rec == nil || (f.Product.ProductID != "" && !sameProduct(f.Product, rec.Product)) {
		return false
	}
	w := rec.Write
	row := OrderRow(f, instanceID, rec.OrderType, f.PaidAmount, rec.EffectiveAt, "", rec.TestFlag)
	if rec.ExpireTime != nil {
		row.ExpireTime = utc(rec.ExpireTime)
	}
	w.Orders = append(append([]store.OrderRow(nil), w.Orders...), row)
	if rec.PaidSuffix != "" && len(w.Events) > 0 {
		w.Events = append([]store.EventRow(nil), w.Events...)
		w.Events[0].Summary += rec.PaidSuffix + f.PaidAmount.String()
	}
	return a.recordAlong(ctx, w)
}

// recordAlong applies a write handed to an activity along with its work, once the work is done. A failure is
// logged and reported as not recorded, never as the activity's failure: the work must not be repeated for its
// record, and the workflow then queues the write to its writer, which retries it and parks the instance when
// retries cannot help, exactly as for any other write.
func (a *Lifecycle) recordAlong(ctx context.Context, w store.Write) bool {
	if err := a.Record(ctx, w); err != nil {
		a.log().WarnContext(ctx, "record along with the activity failed; the workflow records it", "write", w.Summary, "err", err)
		return false
	}
	return true
}
