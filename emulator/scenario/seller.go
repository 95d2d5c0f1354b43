package scenario

import (
	"context"
	"errors"
	"time"

	"github.com/shopspring/decimal"

	"github.com/kooflow/kooflow/emulator/deliver"
)

// Seller is the seller's console as a scenario uses it: the read model to compare with, and the console
// actions of the parties (the customer's side of supervision and refunds, the seller's operator's side).
type Seller interface {
	// InstanceByOrder returns the seller's instance for an order line, or nil when it has none.
	InstanceByOrder(ctx context.Context, orderID, orderLineID string) (*SellerInstance, error)
	// Supervise performs one supervision step as party ("customer" or "seller"); note says why (a rejection
	// needs one).
	Supervise(ctx context.Context, instanceID, step, party, note string) error
	// RequestRefund asks, as the customer, for a refund of the purchase (amount nil: all that may be refunded).
	RequestRefund(ctx context.Context, instanceID string, amount *decimal.Decimal) (refundID string, err error)
	// ApproveRefund approves, as the seller, a pending refund with the requested amount.
	ApproveRefund(ctx context.Context, instanceID, refundID string) (approved decimal.Decimal, err error)
	// RecordPayment records, as the seller's finance, how an order was paid: credit payment (信用支付) and, once
	// the customer repaid (回款), when.
	RecordPayment(ctx context.Context, orderID string, credit bool, repaidAt *time.Time) error
	// Payment reads how the seller records an order's payment: credit-paid or not, and the repayment's time.
	Payment(ctx context.Context, orderID string) (credit bool, repaidAt *time.Time, err error)
}

// SellerInstance is the part of the seller's read model the comparison looks at.
type SellerInstance struct {
	InstanceID  string
	OrderID     string
	OrderLineID string
	Lifecycle   string
	Supervision string
	ProductID   string
	SKUCode     string
	Quantity    int64
	ExpireTime  *time.Time
	AppInfo     *SellerAppInfo
	Parked      bool
	ParkedWhy   string
	Orders      []SellerOrder
}

// SellerAppInfo is the customer's access data as the console shows it: the password itself is never shown,
// only whether one is set.
type SellerAppInfo struct {
	FrontEndURL string
	AdminURL    string
	UserName    string
	Memo        string
	PasswordSet bool
}

// Matches reports whether the seller's access data is what the marketplace received from queryInstance.
func (s *SellerAppInfo) Matches(a deliver.AppInfo) bool {
	return s != nil && s.FrontEndURL == a.FrontEndURL && s.AdminURL == a.AdminURL && s.UserName == a.UserName &&
		s.Memo == a.Memo && s.PasswordSet == (a.Password != "")
}

// SellerOrder is one order row of the seller's read model.
type SellerOrder struct {
	OrderID     string
	OrderLineID string
	Type        string          // NEW, TRIAL, TRIAL_TO_FORMAL, RENEW, CHANGE, UNSUBSCRIBE, REFUND
	Paid        decimal.Decimal // negative for refunds
}

// ErrRetryLater is returned by Seller actions the seller refused for now but may accept shortly (the order
// query has not answered yet, say); the scenario tries again.
var ErrRetryLater = errors.New("the seller asks to try again later")

// Supervision steps and parties, in the console's terms.
const (
	StepSubmitRequirement = "submitRequirement"
	StepConfirm           = "confirmRequirement"
	StepReject            = "rejectRequirement"
	StepDeliver           = "completeService"
	StepAccept            = "accept"

	PartyCustomer = "customer"
	PartySeller   = "seller"
)
