package instance

import (
	"time"

	"github.com/shopspring/decimal"
)

// Acting parties recorded with console actions.
const (
	PartySeller      = "seller"
	PartyCustomer    = "customer"
	PartyOperator    = "operator"
	PartyMarketplace = "marketplace"
	PartySystem      = "system"
)

// SupervisionResult answers UpdateSupervision with the state the step led to.
type SupervisionResult struct {
	Supervision Supervision `json:"supervision"`
	Step        string      `json:"step"`
	At          time.Time   `json:"at"`
}

// Refund actions (UpdateRefund).
const (
	RefundRequestAction = "request" // the customer asks for a refund inside the guarantee period
	RefundApproveAction = "approve" // the seller approves, with an amount no larger than what was paid
	RefundRejectAction  = "reject"  // the seller rejects
)

// RefundRequest is the payload of UpdateRefund.
type RefundRequest struct {
	Action string `json:"action"`
	// RefundID names the request a decision is about.
	RefundID string `json:"refundId,omitempty"`
	// OrderID names the order to refund; empty means the purchase (the NEW or TRIAL_TO_FORMAL order).
	OrderID string `json:"orderId,omitempty"`
	// Amount is the requested amount (request; empty: all that may still be refunded) or the approved amount
	// (approve; empty: the requested amount).
	Amount      *decimal.Decimal `json:"amount,omitempty"`
	Reason      string           `json:"reason,omitempty"`
	Actor       Actor            `json:"actor"`
	RequestedAt time.Time        `json:"requestedAt"`
}

// RefundResult answers UpdateRefund with the request as it now stands.
type RefundResult struct {
	Refund Refund `json:"refund"`
}

// Operator actions (UpdateOperator, SignalOperator).
const (
	OperatorResume = "resume" // retry the parked step
	OperatorSkip   = "skip"   // give the parked step up and go on (the operator did it by hand or it is moot)
)

// OperatorResult answers UpdateOperator.
type OperatorResult struct {
	Action string `json:"action"`
	StepID string `json:"stepId"`
	Stage  string `json:"stage"`
}
