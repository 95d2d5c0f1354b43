package lifecycle

import (
	"fmt"
	"time"

	"github.com/shopspring/decimal"

	"github.com/kooflow/kooflow/internal/instance"
	"github.com/kooflow/kooflow/internal/refusal"
)

// Refund rules of the transaction guarantee period (交易担保期, docs/koogallery.md, "Refunds in the guarantee period"):
//
//   - a refund is decided by the seller: approved with an amount no larger than what was paid (less what was
//     already refunded), or rejected;
//   - it is refused after supervision completed (the customer's acceptance ends the guarantee period), after the
//     instance expired, and for a renewal that already took effect;
//   - a renewal that has not taken effect yet is refunded in full or not at all;
//   - one request at a time per instance.
//
// Non-supervised products have no acceptance step; their guarantee period is taken to last until expiry.

// PendingRefund returns the pending request, if any.
func PendingRefund(s *instance.Carry) *instance.Refund {
	for i := range s.Refunds {
		if s.Refunds[i].Status == instance.RefundPending {
			return &s.Refunds[i]
		}
	}
	return nil
}

// FindRefund returns a request by id.
func FindRefund(s *instance.Carry, id string) *instance.Refund {
	for i := range s.Refunds {
		if s.Refunds[i].RefundID == id {
			return &s.Refunds[i]
		}
	}
	return nil
}

// refundTarget resolves the order a request refunds and checks it may be refunded now.
func refundTarget(s *instance.Carry, orderID string, now time.Time) (*instance.LedgerOrder, *refusal.Error) {
	var o *instance.LedgerOrder
	if orderID == "" {
		o = Purchase(s)
		if o == nil {
			return nil, refusal.New(CodeConflict, "the purchase order has not been recorded yet; try again shortly")
		}
	} else if o = FindOrder(s, orderID); o == nil {
		return nil, refusal.New(CodeConflict, "order %s is not a refundable order of this instance (renewals that took effect long ago are no longer tracked)", orderID)
	}
	if !o.Known {
		return nil, refusal.New(CodeConflict, "the amount of order %s is not known yet (its order query has not answered); try again shortly", o.OrderID)
	}
	if o.Type == "RENEW" && o.EffectiveAt != nil && !o.EffectiveAt.After(now) {
		return nil, refusal.New(CodeConflict, "renewal %s took effect at %s; a renewal that took effect cannot be refunded", o.OrderID, fmtTime(*o.EffectiveAt))
	}
	if !o.Refundable().IsPositive() {
		if o.Paid.IsZero() {
			return nil, refusal.New(CodeConflict, "nothing was paid for order %s (%s)", o.OrderID, o.Type)
		}
		return nil, refusal.New(CodeConflict, "order %s was already refunded in full (%s of %s)", o.OrderID, o.Refunded, o.Paid)
	}
	return o, nil
}

// CheckRefund says whether a refund request or decision is possible now.
func CheckRefund(s *instance.Carry, r instance.RefundRequest, now time.Time) *refusal.Error {
	if r.Amount != nil && !r.Amount.IsPositive() {
		return refusal.New(CodeInvalid, "the amount must be positive, got %s", r.Amount)
	}
	switch r.Action {
	case instance.RefundRequestAction:
		return checkRefundRequest(s, r, now)
	case instance.RefundApproveAction, instance.RefundRejectAction:
		return checkRefundDecision(s, r, now)
	}
	return refusal.New(CodeInvalid, "refund action %q is not request, approve or reject", r.Action)
}

func checkRefundRequest(s *instance.Carry, r instance.RefundRequest, now time.Time) *refusal.Error {
	if Ended(s) {
		return refusal.New(CodeConflict, "%s", released(s).Reason)
	}
	if p := PendingRefund(s); p != nil {
		return refusal.New(CodeConflict, "refund request %s is still pending; the seller must decide it first", p.RefundID)
	}
	if s.Supervision == instance.SupervisionCompleted {
		return refusal.New(CodeConflict, "the guarantee period ended when supervision was completed at %s; no refund after that",
			fmtTimePtr(s.SupervisionCompletedAt))
	}
	if s.ExpireTime != nil && !now.Before(*s.ExpireTime) {
		return refusal.New(CodeConflict, "the instance expired at %s; an expired order cannot be refunded", fmtTime(*s.ExpireTime))
	}
	o, refused := refundTarget(s, r.OrderID, now)
	if refused != nil {
		return refused
	}
	if r.Amount != nil && r.Amount.GreaterThan(o.Refundable()) {
		return refusal.New(CodeConflict, "%s exceeds what may still be refunded of order %s (paid %s, refunded %s)",
			r.Amount, o.OrderID, o.Paid, o.Refunded)
	}
	if fullOnly(o, now) && r.Amount != nil && !r.Amount.Equal(o.Refundable()) {
		return refusal.New(CodeConflict, "renewal %s has not taken effect yet and is refunded in full (%s) or not at all", o.OrderID, o.Refundable())
	}
	return nil
}

func fullOnly(o *instance.LedgerOrder, now time.Time) bool {
	return o.Type == "RENEW" && o.EffectiveAt != nil && o.EffectiveAt.After(now)
}

func checkRefundDecision(s *instance.Carry, r instance.RefundRequest, now time.Time) *refusal.Error {
	rf := FindRefund(s, r.RefundID)
	if rf == nil {
		return refusal.New(CodeConflict, "there is no refund request %q on this instance", r.RefundID)
	}
	if rf.Status != instance.RefundPending {
		if sameDecision(rf, r) {
			return nil // a repeated decision: success, nothing to do
		}
		return refusal.New(CodeConflict, "refund request %s is already %s (at %s)", rf.RefundID, rf.Status, fmtTimePtr(rf.DecidedAt))
	}
	if Ended(s) {
		return refusal.New(CodeConflict, "%s", released(s).Reason)
	}
	if r.Action == instance.RefundRejectAction {
		return nil
	}
	// A refund takes effect when approved, so the limits of the guarantee period apply again now.
	if s.ExpireTime != nil && !now.Before(*s.ExpireTime) {
		return refusal.New(CodeConflict, "the instance expired at %s; the refund can no longer be approved, only rejected", fmtTime(*s.ExpireTime))
	}
	o := FindOrder(s, rf.OrderID)
	if o == nil {
		return refusal.New(CodeConflict, "order %s is no longer tracked by this instance", rf.OrderID)
	}
	if o.Type == "RENEW" && o.EffectiveAt != nil && !o.EffectiveAt.After(now) {
		return refusal.New(CodeConflict, "renewal %s took effect at %s while the request was pending; it can no longer be refunded, only rejected",
			o.OrderID, fmtTime(*o.EffectiveAt))
	}
	amount := rf.Requested
	if r.Amount != nil {
		amount = *r.Amount
	}
	if amount.GreaterThan(o.Refundable()) {
		return refusal.New(CodeConflict, "%s exceeds what may still be refunded of order %s (paid %s, refunded %s)",
			amount, o.OrderID, o.Paid, o.Refunded)
	}
	if rf.FullOnly && !amount.Equal(o.Refundable()) {
		return refusal.New(CodeConflict, "renewal %s is refunded in full (%s) or not at all", o.OrderID, o.Refundable())
	}
	return nil
}

func sameDecision(rf *instance.Refund, r instance.RefundRequest) bool {
	switch r.Action {
	case instance.RefundRejectAction:
		return rf.Status == instance.RefundRejected
	case instance.RefundApproveAction:
		return rf.Status == instance.RefundApproved && (r.Amount == nil || r.Amount.Equal(rf.Approved))
	}
	return false
}

// RefundOrderID is the order_id of the REFUND row an approval writes. It names the instance so it is unique
// across instances.
func RefundOrderID(instanceID, refundID string) string {
	return "REFUND-" + instanceID + "-" + refundID
}

// ApplyRefund applies a checked request or decision and returns the request as it now stands; changed is false
// for a repeated decision.
func ApplyRefund(s *instance.Carry, instanceID string, r instance.RefundRequest, now time.Time) (rf instance.Refund, changed bool) {
	now = now.UTC()
	switch r.Action {
	case instance.RefundRequestAction:
		o, _ := refundTarget(s, r.OrderID, now)
		amount := o.Refundable()
		if r.Amount != nil {
			amount = *r.Amount
		}
		s.RefundSeq++
		rf = instance.Refund{
			RefundID: fmt.Sprintf("R%d", s.RefundSeq), OrderID: o.OrderID, OrderLineID: o.OrderLineID, OrderType: o.Type,
			Status: instance.RefundPending, Requested: amount, Approved: decimal.Zero, FullOnly: fullOnly(o, now),
			Reason: r.Reason, RequestedBy: r.Actor, RequestedAt: now,
		}
		s.Refunds = append(s.Refunds, rf)
		Touch(s)
		return rf, true
	default:
		p := FindRefund(s, r.RefundID)
		if p.Status != instance.RefundPending {
			return *p, false
		}
		actor := r.Actor
		p.DecidedBy, p.DecidedAt, p.Note = &actor, &now, r.Reason
		if r.Action == instance.RefundRejectAction {
			p.Status = instance.RefundRejected
		} else {
			amount := p.Requested
			if r.Amount != nil {
				amount = *r.Amount
			}
			p.Status, p.Approved = instance.RefundApproved, amount
			p.RefundOrderID = RefundOrderID(instanceID, p.RefundID)
			o := FindOrder(s, p.OrderID)
			o.Refunded = o.Refunded.Add(amount)
			o.SellerApproved = o.SellerApproved.Add(amount)
		}
		out := *p
		Touch(s)
		PruneRefunds(s)
		return out, true
	}
}

// UnsubscribeAmount is the (positive) amount a marketplace unsubscribe of order o records as refunded. The
// marketplace's unsubscribe order executes a refund the seller may already have approved through the console:
// the order's total refund becomes the larger of the two, never more than was paid, so an approved refund
// followed by the marketplace's unsubscribe of the same amount is not counted twice. queried is the unsubscribe
// order's amount; nil when it is not known (then the full paid amount is assumed, as for a renewal refund).
func UnsubscribeAmount(o instance.LedgerOrder, queried *decimal.Decimal) decimal.Decimal {
	q := o.Paid
	if queried != nil {
		q = queried.Abs()
	}
	amount := q.Sub(o.SellerApproved)
	if amount.IsNegative() {
		amount = decimal.Zero
	}
	if r := o.Refundable(); amount.GreaterThan(r) {
		amount = r
	}
	return amount
}

// ApplyUnsubscribe records an unsubscribe of order o and returns the amount refunded by it.
func ApplyUnsubscribe(o *instance.LedgerOrder, queried *decimal.Decimal) decimal.Decimal {
	amount := UnsubscribeAmount(*o, queried)
	o.Refunded = o.Refunded.Add(amount)
	return amount
}
