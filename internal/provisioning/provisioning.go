// Package provisioning is the adapter between an instance's lifecycle and the seller's own systems that create,
// freeze, unfreeze, upgrade and release the customer's service. Two implementations exist: Webhook, which sends
// signed JSON events to the seller's provisioning endpoint (KOOFLOW_PROVISIONER_URL), and Builtin, a local
// provisioner for `kooflow dev`, demos and dial tests that produces appInfo without creating anything.
//
// Every event carries an EventID that stays the same on every retry, so the receiver can answer idempotently:
// the lifecycle workflow retries failed calls with backoff and may deliver an event more than once.
package provisioning

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/kooflow/kooflow/internal/koogallery"
)

// Kind is what an event asks the seller to do.
type Kind string

const (
	Create   Kind = "create"   // a paid order: create the customer's service and return its access data
	Freeze   Kind = "freeze"   // stop access, keep the data (expiry, violation)
	Unfreeze Kind = "unfreeze" // restore access (renewal during the freeze period)
	Upgrade  Kind = "upgrade"  // apply a new SKU or quantity
	Release  Kind = "release"  // end the service; the customer's data may now be deleted

	// Joint-operation Kit changes (docs/koogallery.md, "Kit interfaces"): Event.Kit says what changed.
	KitTenant      Kind = "tenant"      // the buyer's tenant was added, modified or deleted
	KitApplication Kind = "application" // the application credential (client id; never the secret)
	KitUsers       Kind = "users"       // users added, modified, deleted or their authorisation cancelled
	KitOrg         Kind = "org"         // organisation units
)

// Valid reports whether k is a known kind.
func (k Kind) Valid() bool {
	switch k {
	case Create, Freeze, Unfreeze, Upgrade, Release, KitTenant, KitApplication, KitUsers, KitOrg:
		return true
	}
	return false
}

// Event is one instruction to the seller's provisioning. It carries no personal data beyond the marketplace's
// customer id.
type Event struct {
	// EventID identifies the event across retries: the receiver must answer a repeated EventID with the same
	// result and must not act twice.
	EventID    string     `json:"eventId"`
	Type       Kind       `json:"type"`
	InstanceID string     `json:"instanceId"`
	OrderID    string     `json:"orderId,omitempty"`
	ProductID  string     `json:"productId,omitempty"`
	SKUCode    string     `json:"skuCode,omitempty"`
	Quantity   int64      `json:"quantity,omitempty"`
	ExpireTime *time.Time `json:"expireTime,omitempty"`
	CustomerID string     `json:"customerId,omitempty"`
	// TestFlag marks the marketplace's dial tests; they never reach the webhook (the built-in path answers).
	TestFlag   bool      `json:"testFlag,omitempty"`
	OccurredAt time.Time `json:"occurredAt"`
	// Kit is what a Kit event (tenant, application, users, org) changed: the call, its flag and the rows as
	// synced. It is filled by the activity from PostgreSQL, so it never passes through workflow history.
	Kit json.RawMessage `json:"kit,omitempty"`
}

// AppInfo is what the customer needs to use the service: the marketplace's appInfo, which kooflow stores and
// returns in queryInstance as the provisioner gave it.
type AppInfo = koogallery.AppInfo

// Result is a provisioner's answer. AppInfo is set by create when the service delivers its access data
// through the marketplace (it may instead go to the customer by SMS or e-mail).
type Result struct {
	AppInfo *AppInfo `json:"appInfo,omitempty"`
}

// Provisioner carries out events. Implementations must be idempotent per EventID and classify failures with
// *Error: Retryable ones are retried with backoff, the others need a person and park the instance.
type Provisioner interface {
	Apply(ctx context.Context, e Event) (Result, error)
	// Name says which provisioner acted, for timelines and activity summaries.
	Name() string
}

// Error is a classified provisioning failure.
type Error struct {
	Retryable bool
	Reason    string // for the operator who will read it on the parked instance
	Err       error
	// Refused is set when the seller's endpoint itself refused the event permanently (a 4xx), as opposed to
	// kooflow failing to build the event or to read the answer. A refused create is reported to the marketplace
	// (docs/koogallery.md, "Refused purchases").
	Refused bool
	// ResultCode is the KooGallery newInstance code (000100–000107) the endpoint gave with its refusal, "" when it
	// gave none or an invalid one. RefusalCode maps "" to 000104.
	ResultCode string
	// Message is the endpoint's own text for the refusal ({"error": …}), without kooflow's framing.
	Message string
}

func (e *Error) Error() string {
	if e.Err != nil {
		return e.Reason + ": " + e.Err.Error()
	}
	return e.Reason
}

func (e *Error) Unwrap() error { return e.Err }

// Retryable reports whether err may succeed if tried again. Unclassified errors are taken as retryable.
func Retryable(err error) bool {
	var pe *Error
	if errors.As(err, &pe) {
		return pe.Retryable
	}
	return true
}

// DefaultRefusalCode is the newInstance code reported for a refused create whose refusal named no code of its
// own: 000104, the marketplace's catch-all for a failure on the seller's side.
const DefaultRefusalCode = "000104"

// ValidRefusalCode reports whether code is one of KooGallery's newInstance failure codes, 000100–000107.
func ValidRefusalCode(code string) bool {
	return len(code) == 6 && code >= "000100" && code <= "000107"
}

// RefusalCode reports whether err is a permanent refusal by the seller's endpoint and, if so, the newInstance
// code to report for it and the endpoint's message.
func RefusalCode(err error) (code, message string, refused bool) {
	var pe *Error
	if !errors.As(err, &pe) || pe.Retryable || !pe.Refused {
		return "", "", false
	}
	code = pe.ResultCode
	if !ValidRefusalCode(code) {
		code = DefaultRefusalCode
	}
	message = pe.Message
	if message == "" {
		message = pe.Reason
	}
	return code, message, true
}

// Validate checks an event before it is sent.
func (e Event) Validate() error {
	switch {
	case e.EventID == "":
		return errors.New("provisioning event without eventId")
	case !e.Type.Valid():
		return fmt.Errorf("provisioning event %s: unknown type %q", e.EventID, e.Type)
	case e.InstanceID == "":
		return fmt.Errorf("provisioning event %s: instanceId is empty", e.EventID)
	}
	return nil
}
