package gateway

import (
	"context"
	"time"

	"github.com/kooflow/kooflow/internal/instance"
	"github.com/kooflow/kooflow/internal/koogallery"
)

// Backend carries out the activities once a request is authenticated and valid. The production implementation
// (TemporalBackend) turns each into an Update or Query on the instance's workflow and reads queryInstance from
// PostgreSQL; tests of the HTTP layer can substitute a fake.
//
// Errors: ErrUnknownInstance for an instance that has no workflow, a Refusal (instance.AsRefusal) for a step the
// workflow refused, anything else is an internal failure.
type Backend interface {
	NewInstance(ctx context.Context, call NewInstanceCall) (NewInstanceOutcome, error)
	Refresh(ctx context.Context, instanceID string, r instance.RefreshRequest) error
	// UpdateStatus takes the delivery's id: a freeze or unfreeze is deduplicated per delivery, not per status,
	// because FREEZE → UNFREEZE → FREEZE in one run is three distinct steps.
	UpdateStatus(ctx context.Context, instanceID, deliveryID string, r instance.StatusRequest) error
	Release(ctx context.Context, instanceID string, r instance.ReleaseRequest) error
	Upgrade(ctx context.Context, instanceID string, r instance.UpgradeRequest) error
	ChangeCheck(ctx context.Context, instanceID string, r instance.ChangeCheckRequest) (instance.ChangeCheckResult, error)
	QueryInstances(ctx context.Context, ids []string) ([]InstanceView, error)
}

// NewInstanceCall is a validated newInstance.
type NewInstanceCall struct {
	OrderID     string
	OrderLineID string
	// ProductID is the pay-per-use billing item the call names; empty when it names none.
	ProductID  string
	BusinessID string
	TestFlag   bool
	ReceivedAt time.Time
}

// InstanceID derives the instance the call is for from its idempotency key (docs/koogallery.md, "Pay-per-use
// instances"): orderId + productId when the call names a product (one instance per pay-per-use billing item),
// orderId + orderLineId otherwise.
func (c NewInstanceCall) InstanceID() string {
	if c.ProductID != "" {
		return instance.PayPerUseID(c.OrderID, c.ProductID)
	}
	return instance.ID(c.OrderID, c.OrderLineID)
}

// NewInstanceOutcome is what newInstance answers with. Note, when set, records for the message log how the
// answer was reached (recorded in the inbox, or a retry answered from the read model).
type NewInstanceOutcome struct {
	Result instance.NewInstanceResult
	Note   string
	// Refusal is set on a retry of a purchase the seller's provisioning refused (docs/koogallery.md, "Refused
	// purchases"): the call is answered with its code instead of 000004.
	Refusal *Refusal
}

// Refusal is a purchase the seller's provisioning refused: a KooGallery newInstance code (000100–000107) and the
// provisioner's reason.
type Refusal struct {
	Code, Message string
}

// InstanceView is one instance as queryInstance reports it.
type InstanceView struct {
	InstanceID string
	Lifecycle  instance.Lifecycle
	// AppInfo is nil until provisioning produced it.
	AppInfo *koogallery.AppInfo
	// TestFlag marks a dial-test instance.
	TestFlag bool
	// Refusal is set while the seller's provisioning refuses the instance's purchase.
	Refusal *Refusal
	// Usage is set for pay-per-use instances and packages: what queryInstance reports as usageInfo.
	Usage *koogallery.UsageInfo

	// chargingMode, as the read model has it, tells which views need their usage read.
	chargingMode string
}

// ErrUnknownInstance means no workflow exists for the instance (resultCode 000003). It is the instance client's
// ErrNoWorkflow, so the backend's errors carry it as they come.
var ErrUnknownInstance = instance.ErrNoWorkflow
