package settlement

import (
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/shopspring/decimal"

	"github.com/kooflow/kooflow/internal/catalog"
	"github.com/kooflow/kooflow/internal/koogallery"
)

// Supervision states that allow settlement (docs/koogallery.md, "Service supervision": 不涉及 / 已完成).
const (
	SupervisionNotInvolved = "NOT_INVOLVED"
	SupervisionCompleted   = "COMPLETED"
)

// ChargeTypes are the order types that bring money in; RefundTypes give it back (negative paid amounts).
var (
	ChargeTypes = []string{koogallery.OrderTypeNew, koogallery.OrderTypeTrialToFormal, koogallery.OrderTypeRenew, koogallery.OrderTypeChange}
	RefundTypes = []string{koogallery.OrderTypeUnsubscribe, koogallery.OrderTypeRefund}
)

// IsCharge reports whether an order type is a charge line.
func IsCharge(orderType string) bool { return slices.Contains(ChargeTypes, orderType) }

// IsRefund reports whether an order type is a refund line.
func IsRefund(orderType string) bool { return slices.Contains(RefundTypes, orderType) }

// ProductTypes lists every product type in bill order.
var ProductTypes = []catalog.ProductType{catalog.General, catalog.JointOperation}

// Key identifies an order line, the unit that is settled once.
type Key struct {
	OrderID     string `json:"orderId"`
	OrderLineID string `json:"orderLineId"`
}

func (k Key) String() string { return k.OrderID + "/" + k.OrderLineID }

// OrderRow is one row of the orders table.
type OrderRow struct {
	Key
	InstanceID  string          `json:"instanceId"`
	OrderType   string          `json:"orderType"`
	ProductID   string          `json:"productId"`
	SKUCode     string          `json:"skuCode"`
	PeriodType  string          `json:"periodType,omitempty"`
	PeriodNum   int             `json:"periodNumber,omitempty"`
	Quantity    int64           `json:"quantity"`
	PaidAmount  decimal.Decimal `json:"paidAmount"`
	ListAmount  decimal.Decimal `json:"listAmount"`
	RefersTo    string          `json:"refersToOrderId,omitempty"`
	EffectiveAt *time.Time      `json:"effectiveAt,omitempty"`
	TestFlag    bool            `json:"testFlag"`
}

// InstanceState is what settlement reads from instances.
type InstanceState struct {
	ID          string `json:"instanceId"`
	Supervision string `json:"supervision"`
	TestFlag    bool   `json:"testFlag"`
}

// Payment is settlement's own payment record of an order: absent means paid at purchase. A credit-paid order
// (信用支付) counts as paid once its repayment (回款) is recorded.
type Payment struct {
	Credit   bool       `json:"credit"`
	RepaidAt *time.Time `json:"repaidAt,omitempty"`
}

// SettledLine is where an order line was already settled.
type SettledLine struct {
	Period string              `json:"period"`
	Type   catalog.ProductType `json:"productType"`
	Status string              `json:"status"`
	Rate   decimal.Decimal     `json:"rate"`
}

// Input is everything the rules need about one instance to decide its order lines for one close.
type Input struct {
	// End is the end of the period being closed (exclusive): a line must have become eligible before it.
	End time.Time
	// Types are the product types this close settles; empty means all.
	Types    []catalog.ProductType
	Instance InstanceState
	// Rows are all order rows of the instance (refunds are paired with the line they refund within it).
	Rows     []OrderRow
	Settled  map[Key]SettledLine
	Payments map[string]Payment // by order id
	// Product returns a product's settlement terms; known is false when the catalog does not list it.
	Product func(productID string) (t Terms, known bool)
}

// ReasonCode names one reason an order line is not (yet) in a bill.
type ReasonCode string

const (
	ReasonSettled          ReasonCode = "SETTLED"
	ReasonTest             ReasonCode = "TEST_ORDER"
	ReasonTrial            ReasonCode = "TRIAL"
	ReasonUnknownType      ReasonCode = "UNKNOWN_ORDER_TYPE"
	ReasonUnknownProduct   ReasonCode = "UNKNOWN_PRODUCT"
	ReasonOtherType        ReasonCode = "OTHER_PRODUCT_TYPE"
	ReasonSupervision      ReasonCode = "SUPERVISION"
	ReasonUnpaid           ReasonCode = "NOT_REPAID"
	ReasonNotEffective     ReasonCode = "NOT_EFFECTIVE"
	ReasonEffectiveLater   ReasonCode = "EFFECTIVE_AFTER_PERIOD"
	ReasonOriginalMissing  ReasonCode = "REFUNDED_ORDER_UNKNOWN"
	ReasonWaitsForOriginal ReasonCode = "WAITS_FOR_REFUNDED_ORDER"
)

// Reason is one ReasonCode with its explanation in the console's terms.
type Reason struct {
	Code   ReasonCode `json:"code"`
	Detail string     `json:"detail"`
}

// Verdict is the rules' decision on one order line.
type Verdict struct {
	Row      OrderRow `json:"order"`
	Eligible bool     `json:"eligible"`
	// AttributedAt is when the line counts for settlement (docs/koogallery.md, "Settlement rules"): a charge's
	// effective time (for a fully refunded charge, the refund time if earlier), a refund's own effective time.
	AttributedAt *time.Time `json:"attributedAt,omitempty"`
	Terms        Terms      `json:"-"`
	Amounts      Amounts    `json:"amounts"`
	Reasons      []Reason   `json:"reasons,omitempty"`
	// Settled is set when the line was already settled (Reasons then holds SETTLED only).
	Settled *SettledLine `json:"settled,omitempty"`
}

// Evaluate decides every order line of one instance for a close ending at in.End.
//
// A charge line (NEW, TRIAL_TO_FORMAL, RENEW, CHANGE) is eligible when it is not settled yet, not a dial test,
// its product is in the catalog and of a type this close settles, the instance's supervision is NOT_INVOLVED or
// COMPLETED, its payment was received before in.End (credit-paid orders: repaid before in.End), and it is
// attributed before in.End. Attribution is the order's effective time (provisioning success; supervision
// completion for supervised products; a renewal's effective time), except that a charge whose effective refunds
// add up to its whole paid amount is attributed at its last refund if that is earlier: a not-yet-effective
// renewal refunded in full never takes effect, and the marketplace bills it with its refund, netting to 0.
//
// A refund line (UNSUBSCRIBE, REFUND) belongs to the line it refunds (same order id, same instance). It is
// eligible when its own effective time is before in.End and that line is either settled already (the refund is
// then a negative line in a later bill, at the original line's rate) or eligible in this same close (the two sit
// in one bill and sum to the refunded difference). TRIAL lines are free and never billed.
//
// The SQL in settlement/ledger applies exactly these rules set-based; a test runs both on the same rows.
func Evaluate(in Input) []Verdict {
	rows := slices.Clone(in.Rows)
	sort.Slice(rows, func(i, j int) bool {
		if rows[i].OrderID != rows[j].OrderID {
			return rows[i].OrderID < rows[j].OrderID
		}
		return rows[i].OrderLineID < rows[j].OrderLineID
	})
	test := func(r OrderRow) bool { return r.TestFlag || in.Instance.TestFlag }
	inClose := func(t catalog.ProductType) bool { return len(in.Types) == 0 || slices.Contains(in.Types, t) }

	// Effective refunds per refunded order id, for the full-refund attribution rule.
	refunds := map[string]*refundSum{}
	for _, r := range rows {
		if !IsRefund(r.OrderType) || test(r) || r.EffectiveAt == nil || !r.EffectiveAt.Before(in.End) {
			continue
		}
		s := refunds[r.RefersTo]
		if s == nil {
			s = &refundSum{}
			refunds[r.RefersTo] = s
		}
		s.total = s.total.Add(r.PaidAmount)
		if r.EffectiveAt.After(s.last) {
			s.last = *r.EffectiveAt
		}
	}

	out := make([]Verdict, len(rows))
	// Charges first: refunds depend on them.
	for i, r := range rows {
		v := Verdict{Row: r}
		if s, ok := in.Settled[r.Key]; ok {
			v.Settled = &s
			v.Reasons = []Reason{{ReasonSettled, fmt.Sprintf("settled in the %s bill for %s (%s)", s.Type, s.Period, s.Status)}}
			out[i] = v
			continue
		}
		if IsRefund(r.OrderType) {
			out[i] = v // decided below
			continue
		}
		v.Reasons = chargeReasons(in, r, test(r), inClose, &v)
		if IsCharge(r.OrderType) {
			v.AttributedAt = attribution(r, refunds[r.OrderID])
			if v.AttributedAt == nil {
				v.Reasons = append(v.Reasons, Reason{ReasonNotEffective, notEffectiveDetail(r, in)})
			} else if !v.AttributedAt.Before(in.End) {
				v.Reasons = append(v.Reasons, Reason{ReasonEffectiveLater, fmt.Sprintf(
					"effective at %s, after the period ends (%s); it counts for the period it takes effect in",
					fmtTime(*v.AttributedAt), fmtTime(in.End))})
			}
		}
		if len(v.Reasons) == 0 {
			v.Eligible = true
			v.Amounts = Compute(r.PaidAmount, v.Terms)
		}
		out[i] = v
	}
	for i, r := range rows {
		if !IsRefund(r.OrderType) || out[i].Settled != nil {
			continue
		}
		v := &out[i]
		if test(r) {
			v.Reasons = append(v.Reasons, Reason{ReasonTest, "dial-test order (testFlag=1): never settled"})
			continue
		}
		orig := -1
		for j, o := range rows { // rows are sorted, so the first match is the lowest order line id
			if o.OrderID == r.RefersTo && IsCharge(o.OrderType) {
				orig = j
				break
			}
		}
		if r.EffectiveAt == nil || !r.EffectiveAt.Before(in.End) {
			when := "not effective yet"
			if r.EffectiveAt != nil {
				when = "effective at " + fmtTime(*r.EffectiveAt) + ", after the period ends"
			}
			v.Reasons = append(v.Reasons, Reason{ReasonEffectiveLater, "the refund is " + when})
		}
		if orig < 0 {
			v.Reasons = append(v.Reasons, Reason{ReasonOriginalMissing, fmt.Sprintf(
				"refunds order %q, which has no charge line on this instance; held until it is recorded", r.RefersTo)})
			continue
		}
		o := out[orig]
		switch {
		case o.Settled != nil:
			v.Terms = Terms{Type: o.Settled.Type, Rate: o.Settled.Rate}
			if !inClose(v.Terms.Type) {
				v.Reasons = append(v.Reasons, Reason{ReasonOtherType, fmt.Sprintf("a %s line, not settled by this close", v.Terms.Type)})
			}
		case o.Eligible:
			v.Terms = o.Terms
		default:
			v.Reasons = append(v.Reasons, Reason{ReasonWaitsForOriginal, fmt.Sprintf(
				"settled together with the refunded line %s, which is not eligible yet", o.Row.Key)})
		}
		if len(v.Reasons) == 0 {
			v.Eligible = true
			at := *r.EffectiveAt
			v.AttributedAt = &at
			v.Amounts = Compute(r.PaidAmount, v.Terms)
		}
	}
	return out
}

// refundSum adds up the effective refunds of one order.
type refundSum struct {
	total decimal.Decimal
	last  time.Time
}

// chargeReasons collects every condition a non-refund line fails, except attribution, and sets v.Terms.
func chargeReasons(in Input, r OrderRow, test bool, inClose func(catalog.ProductType) bool, v *Verdict) []Reason {
	var rs []Reason
	if test {
		rs = append(rs, Reason{ReasonTest, "dial-test order (testFlag=1): never settled"})
	}
	switch {
	case r.OrderType == koogallery.OrderTypeTrial:
		return append(rs, Reason{ReasonTrial, "trial orders are free and never billed"})
	case !IsCharge(r.OrderType):
		return append(rs, Reason{ReasonUnknownType, fmt.Sprintf("order type %q is not one settlement knows", r.OrderType)})
	}
	t, known := in.Product(r.ProductID)
	switch {
	case !known:
		rs = append(rs, Reason{ReasonUnknownProduct, fmt.Sprintf(
			"product %q is not in the catalog, so its product type and rate are unknown; held until it is added", r.ProductID)})
	case !inClose(t.Type):
		rs = append(rs, Reason{ReasonOtherType, fmt.Sprintf("a %s product, not settled by this close", t.Type)})
	default:
		v.Terms = t
	}
	if s := in.Instance.Supervision; s != SupervisionNotInvolved && s != SupervisionCompleted {
		rs = append(rs, Reason{ReasonSupervision, fmt.Sprintf(
			"service supervision is %s; only NOT_INVOLVED or COMPLETED orders are settled", s)})
	}
	if p, ok := in.Payments[r.OrderID]; ok && p.Credit {
		switch {
		case p.RepaidAt == nil:
			rs = append(rs, Reason{ReasonUnpaid, "credit-paid (信用支付) and the repayment (回款) is not recorded yet"})
		case !p.RepaidAt.Before(in.End):
			rs = append(rs, Reason{ReasonUnpaid, fmt.Sprintf(
				"credit-paid and repaid at %s, after the period ends; it counts for the period of the repayment", fmtTime(*p.RepaidAt))})
		}
	}
	return rs
}

// attribution is when a charge line counts (see Evaluate); nil while it has no effective time and is not fully
// refunded.
func attribution(r OrderRow, refunded *refundSum) *time.Time {
	var at *time.Time
	if r.EffectiveAt != nil {
		t := *r.EffectiveAt
		at = &t
	}
	if refunded != nil && r.PaidAmount.IsPositive() && !r.PaidAmount.Add(refunded.total).IsPositive() {
		if at == nil || refunded.last.Before(*at) {
			t := refunded.last
			at = &t
		}
	}
	return at
}

func notEffectiveDetail(r OrderRow, in Input) string {
	if in.Instance.Supervision != SupervisionNotInvolved {
		return "not effective yet: a supervised order takes effect when supervision completes (customer acceptance)"
	}
	if r.OrderType == koogallery.OrderTypeNew {
		return "not effective yet: provisioning has not succeeded"
	}
	return "not effective yet"
}

func fmtTime(t time.Time) string { return t.In(Beijing).Format("2006-01-02 15:04:05 -07:00") }

// Totals sums the eligible verdicts' amounts by product type.
func Totals(vs []Verdict) map[catalog.ProductType]Amounts {
	out := map[catalog.ProductType]Amounts{}
	for _, v := range vs {
		if v.Eligible {
			out[v.Terms.Type] = out[v.Terms.Type].Add(v.Amounts)
		}
	}
	return out
}
