package instance

import (
	"time"

	"github.com/shopspring/decimal"
)

// Carry is the whole state of one instance's lifecycle workflow. The workflow keeps it in memory, answers
// QueryState with it, and hands it to its next run on Continue-As-New, so it holds only what later steps need:
// the instance's facts, the orders that may still be refunded, the marketplace calls already applied (so the
// workflow stays idempotent by state after Temporal's per-run Update deduplication is gone), the steps still to
// do and the parked step, if any. Every list in it is bounded, so a customer who renews monthly for ten years
// hands the same small state to each run.
//
// It carries no personal data: the buyer's name, phone and e-mail stay in the order-query response and never
// reach workflow history.
type Carry struct {
	// Runs counts the runs before this one (0 on the first run).
	Runs int `json:"runs"`
	// Version increases with every change; the read-model writes carry it so an older projection never
	// overwrites a newer one.
	Version int64 `json:"version"`

	Lifecycle   Lifecycle   `json:"lifecycle"`
	Supervision Supervision `json:"supervision,omitempty"` // empty until the purchase order is known
	// SupervisionCompletedAt is the customer's acceptance: the end of the guarantee period (交易担保期).
	SupervisionCompletedAt *time.Time `json:"supervisionCompletedAt,omitempty"`
	// ServiceStartAt is the seller's optional actual service start time (服务实际开通时间).
	ServiceStartAt *time.Time `json:"serviceStartAt,omitempty"`

	Provisioned   bool       `json:"provisioned"`
	ProvisionedAt *time.Time `json:"provisionedAt,omitempty"`
	Trial         bool       `json:"trial"`
	Product       Product    `json:"product"`
	CustomerID    string     `json:"customerId,omitempty"`
	ExpireTime    *time.Time `json:"expireTime,omitempty"`
	// FrozenBy says who froze the instance: FrozenByMarketplace or FrozenByExpiryPolicy.
	FrozenBy string     `json:"frozenBy,omitempty"`
	FrozenAt *time.Time `json:"frozenAt,omitempty"`
	// ExpiryHandledFor is the expiry whose grace timer already fired, so it alerts once per expiry.
	ExpiryHandledFor *time.Time `json:"expiryHandledFor,omitempty"`

	// ReleaseAccepted is set when releaseInstance is accepted; the release step then ends the workflow.
	ReleaseAccepted bool       `json:"releaseAccepted"`
	ReleasedAt      *time.Time `json:"releasedAt,omitempty"`

	// Ledger holds the paid orders that may still matter for refunds (see lifecycle.PruneLedger).
	Ledger []LedgerOrder `json:"ledger,omitempty"`
	// Applied remembers the business keys of the marketplace calls already applied, newest last, bounded.
	Applied []string `json:"applied,omitempty"`

	Refunds   []Refund `json:"refunds,omitempty"` // pending and recently decided, bounded
	RefundSeq int      `json:"refundSeq"`

	// Pending are the accepted steps not yet done, in order; the first one is running (or parked).
	Pending []Step   `json:"pending,omitempty"`
	StepSeq int      `json:"stepSeq"`
	Parked  *Parking `json:"parked,omitempty"`
	ParkSeq int      `json:"parkSeq"`
}

// Who froze an instance.
const (
	FrozenByMarketplace  = "marketplace"
	FrozenByExpiryPolicy = "expiry-policy"
)

// Product is what the instance runs, from the order query and the catalog.
type Product struct {
	ProductID    string `json:"productId,omitempty"`
	SKUCode      string `json:"skuCode,omitempty"`
	Quantity     int64  `json:"quantity,omitempty"`
	Name         string `json:"name,omitempty"`
	ChargingMode string `json:"chargingMode,omitempty"`
	PeriodType   string `json:"periodType,omitempty"`
	// Known is false when the catalog does not list the product and its safe default was used.
	Known        bool   `json:"known"`
	Supervised   bool   `json:"supervised"`
	Provisioning string `json:"provisioning,omitempty"` // builtin or webhook
}

// LedgerOrder is one paid order of the instance as the refund rules see it.
type LedgerOrder struct {
	OrderID     string `json:"orderId"`
	OrderLineID string `json:"orderLineId"`
	Type        string `json:"type"` // NEW, TRIAL, TRIAL_TO_FORMAL, RENEW, CHANGE
	// Known is false until the order query answered; Paid is then still zero.
	Known bool            `json:"known"`
	Paid  decimal.Decimal `json:"paid"`
	// Refunded is the total refunded so far (REFUND and UNSUBSCRIBE rows); SellerApproved the part of it the
	// seller approved through the console, which a later marketplace unsubscribe of the same order nets against.
	Refunded       decimal.Decimal `json:"refunded"`
	SellerApproved decimal.Decimal `json:"sellerApproved"`
	AppliedAt      time.Time       `json:"appliedAt"`
	// EffectiveAt is when the order counts from (a renewal: the expiry it extends); nil while not yet known
	// (a supervised purchase before acceptance).
	EffectiveAt *time.Time `json:"effectiveAt,omitempty"`
	// ExpireTime is the expiry this order set.
	ExpireTime *time.Time `json:"expireTime,omitempty"`
}

// Refundable is what may still be refunded of the order.
func (o LedgerOrder) Refundable() decimal.Decimal {
	r := o.Paid.Sub(o.Refunded)
	if r.IsNegative() {
		return decimal.Zero
	}
	return r
}

// Step is one accepted piece of work the workflow does in order: the purchase, a marketplace call, or a freeze
// the expiry policy decided. Its ID keys the timeline events and the provisioning event it produces, so a retry
// writes and sends the same thing.
type Step struct {
	ID         string    `json:"id"`
	Kind       string    `json:"kind"` // StepPurchase, StepRefresh, StepStatus, StepUpgrade, StepRelease, StepKit
	AcceptedAt time.Time `json:"acceptedAt"`
	Actor      Actor     `json:"actor"`

	Refresh *RefreshRequest `json:"refresh,omitempty"`
	Status  *StatusRequest  `json:"status,omitempty"`
	Upgrade *UpgradeRequest `json:"upgrade,omitempty"`
	Release *ReleaseRequest `json:"release,omitempty"`
	Kit     *KitChange      `json:"kit,omitempty"`

	// Unfreeze asks a refresh step to restore access (the instance was frozen when the renewal arrived).
	Unfreeze bool `json:"unfreeze,omitempty"`
	// EffectiveAt is a renewal's effective time, fixed when the call was accepted.
	EffectiveAt *time.Time `json:"effectiveAt,omitempty"`
}

// Step kinds.
const (
	StepPurchase = "purchase"
	StepRefresh  = "refresh"
	StepStatus   = "status"
	StepUpgrade  = "upgrade"
	StepRelease  = "release"
)

// Parking describes a step that failed in a way retries cannot fix and waits for an operator.
type Parking struct {
	Key    string    `json:"key"` // unique per parking, keys its row
	StepID string    `json:"stepId"`
	Stage  string    `json:"stage"` // e.g. "query order", "provision create"
	Reason string    `json:"reason"`
	Since  time.Time `json:"since"`
}

// Refund statuses.
const (
	RefundPending   = "PENDING"
	RefundApproved  = "APPROVED"
	RefundRejected  = "REJECTED"
	RefundCancelled = "CANCELLED" // the instance was released while the request was pending
)

// Refund is one refund request inside the guarantee period and the seller's decision on it.
type Refund struct {
	RefundID    string          `json:"refundId"`
	OrderID     string          `json:"orderId"`
	OrderLineID string          `json:"orderLineId"`
	OrderType   string          `json:"orderType"`
	Status      string          `json:"status"`
	Requested   decimal.Decimal `json:"requested"`
	Approved    decimal.Decimal `json:"approved"`
	// FullOnly marks a not-yet-effective renewal, which is refunded in full or not at all.
	FullOnly    bool       `json:"fullOnly,omitempty"`
	Reason      string     `json:"reason,omitempty"`
	Note        string     `json:"note,omitempty"`
	RequestedBy Actor      `json:"requestedBy"`
	RequestedAt time.Time  `json:"requestedAt"`
	DecidedBy   *Actor     `json:"decidedBy,omitempty"`
	DecidedAt   *time.Time `json:"decidedAt,omitempty"`
	// RefundOrderID is the REFUND row written on approval.
	RefundOrderID string `json:"refundOrderId,omitempty"`
}
