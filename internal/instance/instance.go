// Package instance holds the contract every part of kooflow shares about one KooGallery instance: how its
// identifiers are derived from the marketplace's keys, the names and payloads of the Temporal Updates, Signals
// and Queries that drive its workflow, its states, and the typed refusal a workflow returns for an impossible step.
//
// It is deliberately free of Temporal workers, HTTP and SQL so that the gateway, the console, the workflow and
// the emulator can all import it without pulling in each other.
package instance

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"time"

	"github.com/google/uuid"
)

// idNamespace scopes the name-based UUIDs kooflow derives; changing it would change every instanceId ever issued.
var idNamespace = uuid.MustParse("5b0e1b7c-3f5e-4f63-9a53-2f4f3c6c9d10")

// ID derives the instanceId returned to the marketplace from the newInstance idempotency key
// (docs/koogallery.md, "instanceId"): orderId + orderLineId for period and one-time products. Because it is a
// pure function of the key, every retry of newInstance, on any API process, finds the same instance without a
// lookup.
func ID(orderID, orderLineID string) string {
	return uuid.NewSHA1(idNamespace, []byte("order:"+orderID+"\x00line:"+orderLineID)).String()
}

// PayPerUseID derives the instanceId for pay-per-use lines, whose idempotency key is orderId + productId.
func PayPerUseID(orderID, productID string) string {
	return uuid.NewSHA1(idNamespace, []byte("order:"+orderID+"\x00product:"+productID)).String()
}

// WorkflowID is the Temporal workflow ID of an instance's lifecycle workflow.
func WorkflowID(instanceID string) string { return "instance/" + instanceID }

// InstanceIDFromWorkflowID inverts WorkflowID; ok is false for other workflows.
func InstanceIDFromWorkflowID(workflowID string) (string, bool) {
	return strings.CutPrefix(workflowID, "instance/")
}

// WorkflowType is the registered name of the lifecycle workflow.
const WorkflowType = "InstanceLifecycle"

// Update, signal and query names of the lifecycle workflow.
const (
	UpdateNewInstance     = "newInstance"
	UpdateRefreshInstance = "refreshInstance"
	UpdateStatus          = "updateInstanceStatus"
	UpdateRelease         = "releaseInstance"
	UpdateUpgrade         = "upgradeInstance"

	UpdateSupervision = "supervision"    // console: requirement, confirm, reject, deliver, accept
	UpdateRefund      = "refund"         // console: request, approve, reject
	UpdateOperator    = "operatorAction" // console: resume or skip a parked step

	// UpdateCheckExpiry is sent by the workers' expiry watch to an instance the read model shows unfrozen past
	// its expiry and grace: the lifecycle's safety net (alert, and under the freeze policy a freeze).
	UpdateCheckExpiry = "checkExpiry"

	// SignalOperator carries the same OperatorAction as UpdateOperator; it exists because the Temporal web UI can
	// send signals but not updates, and operators work there.
	SignalOperator = "operator"

	QueryState       = "state"
	QueryChangeCheck = "changeInstanceCheck"
)

// UpdateID builds a deterministic Temporal Update ID from a call's business key, never from businessId, nonce
// or timestamp, which change on every marketplace retry. Long keys are hashed to stay within Temporal's limits.
func UpdateID(kind string, keyParts ...string) string {
	id := kind + ":" + strings.Join(keyParts, ":")
	if len(id) <= 200 {
		return id
	}
	sum := sha256.Sum256([]byte(id))
	return kind + ":sha256:" + hex.EncodeToString(sum[:])
}

// Lifecycle is the instance's state in the marketplace's sense (docs/koogallery.md, "Lifecycle states").
type Lifecycle string

const (
	LifecycleProvisioning Lifecycle = "PROVISIONING"
	LifecycleActive       Lifecycle = "ACTIVE"
	LifecycleFrozen       Lifecycle = "FROZEN"
	LifecycleReleased     Lifecycle = "RELEASED"
)

// Supervision is the service-supervision (服务监管) state (docs/koogallery.md, "Service supervision").
type Supervision string

const (
	SupervisionNotInvolved         Supervision = "NOT_INVOLVED"          // 不涉及
	SupervisionAwaitingRequirement Supervision = "AWAITING_REQUIREMENT"  // 待提交需求 (also after a rejection)
	SupervisionAwaitingConfirm     Supervision = "AWAITING_CONFIRMATION" // 待确认需求
	SupervisionInService           Supervision = "IN_SERVICE"            // 服务中/交付中
	SupervisionAwaitingAcceptance  Supervision = "AWAITING_ACCEPTANCE"   // 待验收
	SupervisionCompleted           Supervision = "COMPLETED"             // 已完成
)

// NewInstanceRequest is the payload of UpdateNewInstance. The gateway no longer sends it (its inbox starts the
// workflow with StartInput); the workflow keeps the handler so that histories of workflows started with
// Update-With-Start still replay (docs/architecture.md, "Inside the lifecycle workflow").
type NewInstanceRequest struct {
	OrderID     string    `json:"orderId"`
	OrderLineID string    `json:"orderLineId"`
	BusinessID  string    `json:"businessId"` // first businessId seen, kept for the record only
	TestFlag    bool      `json:"testFlag"`
	ReceivedAt  time.Time `json:"receivedAt"`
}

// NewInstanceResult answers newInstance: Provisioned false means "accepted, provisioning runs" (000004).
type NewInstanceResult struct {
	InstanceID  string `json:"instanceId"`
	Provisioned bool   `json:"provisioned"`
}

// Refresh scenes (docs/koogallery.md, "refreshInstance").
const (
	SceneTrialToFormal            = "TRIAL_TO_FORMAL"
	SceneRenewal                  = "RENEWAL"
	SceneUnsubscribeRenewalPeriod = "UNSUBSCRIBE_RENEWAL_PERIOD"
	SceneRenewalChange            = "RENEWAL_CHANGE"
)

// RefreshRequest is the payload of UpdateRefreshInstance.
type RefreshRequest struct {
	Scene       string    `json:"scene"`
	OrderID     string    `json:"orderId"`
	OrderLineID string    `json:"orderLineId"`
	ProductID   string    `json:"productId,omitempty"`
	ExpireTime  time.Time `json:"expireTime"`
	TestFlag    bool      `json:"testFlag"`
	ReceivedAt  time.Time `json:"receivedAt"`
}

// Status values of updateInstanceStatus.
const (
	StatusFreeze   = "FREEZE"
	StatusUnfreeze = "UNFREEZE"
)

// StatusRequest is the payload of UpdateStatus.
type StatusRequest struct {
	Status     string    `json:"status"`
	TestFlag   bool      `json:"testFlag"`
	ReceivedAt time.Time `json:"receivedAt"`
}

// ReleaseRequest is the payload of UpdateRelease; OrderID is the unsubscribe order when release follows a refund.
type ReleaseRequest struct {
	OrderID     string    `json:"orderId,omitempty"`
	OrderLineID string    `json:"orderLineId,omitempty"`
	TestFlag    bool      `json:"testFlag"`
	ReceivedAt  time.Time `json:"receivedAt"`
}

// UpgradeRequest is the payload of UpdateUpgrade.
type UpgradeRequest struct {
	OrderID     string    `json:"orderId"`
	OrderLineID string    `json:"orderLineId"`
	TestFlag    bool      `json:"testFlag"`
	ReceivedAt  time.Time `json:"receivedAt"`
}

// ExpiryCheck is the payload of UpdateCheckExpiry: the expiry the read model showed.
type ExpiryCheck struct {
	ExpireTime time.Time `json:"expireTime"`
}

// ExpiryCheckResult answers UpdateCheckExpiry with what the safety net does: "alert", "alert and freeze", or
// "nothing" (the marketplace froze or renewed it, or the expiry was already handled).
type ExpiryCheckResult struct {
	Action string `json:"action"`
	// DueAt is the workflow's own deadline when the check came before it (a watch configured with a shorter
	// KOOFLOW_EXPIRY_GRACE than the run's): the run then arms a timer for it, since the watch's check, deduplicated
	// by its Update ID, does not come again for the same expiry.
	DueAt *time.Time `json:"dueAt,omitempty"`
}

// ChangeCheckRequest is the argument of QueryChangeCheck: the target spec of a renewal with change.
type ChangeCheckRequest struct {
	ProductID   string `json:"productId,omitempty"`
	SKUCode     string `json:"skuCode,omitempty"`
	LinearValue int64  `json:"linearValue,omitempty"`
}

// ChangeCheckResult answers QueryChangeCheck.
type ChangeCheckResult struct {
	Allowed bool   `json:"allowed"`
	Reason  string `json:"reason,omitempty"`
}

// Actor records who performed a console action.
type Actor struct {
	Party string `json:"party"` // "seller", "customer" or "operator"
	Name  string `json:"name"`  // console user or token name
}

// Supervision steps (UpdateSupervision).
const (
	StepSubmitRequirement = "submitRequirement" // customer
	StepConfirm           = "confirmRequirement"
	StepReject            = "rejectRequirement"
	StepDeliver           = "completeService" // seller marks service complete (确认服务完成)
	StepAccept            = "accept"          // customer accepts (确认验收)
)

// SupervisionRequest is the payload of UpdateSupervision.
type SupervisionRequest struct {
	Step            string     `json:"step"`
	Actor           Actor      `json:"actor"`
	Note            string     `json:"note,omitempty"`
	ActualStartTime *time.Time `json:"actualStartTime,omitempty"`
	RequestedAt     time.Time  `json:"requestedAt"`
}

// OperatorAction is the payload of UpdateOperator and SignalOperator.
type OperatorAction struct {
	Action string `json:"action"` // "resume" (retry the parked step) or "skip"
	Actor  Actor  `json:"actor"`
	Note   string `json:"note,omitempty"`
}

// StartInput is the lifecycle workflow's argument. The gateway's inbox starts the workflow with it when
// newInstance is accepted, so the workflow knows its order from the start and needs no newInstance Update; it is
// also what the workflow passes to itself on Continue-As-New, with Carry holding the state it keeps across runs.
type StartInput struct {
	InstanceID  string `json:"instanceId"`
	OrderID     string `json:"orderId"`
	OrderLineID string `json:"orderLineId"`
	// ProductID is the pay-per-use billing item newInstance named (the instance is one of several of its order);
	// empty when the call named none, as for period and one-time products.
	ProductID  string    `json:"productId,omitempty"`
	BusinessID string    `json:"businessId"`
	TestFlag   bool      `json:"testFlag"`
	ReceivedAt time.Time `json:"receivedAt"`
	// Carry is nil on the first run and set by Continue-As-New.
	Carry *Carry `json:"carry,omitempty"`
}
