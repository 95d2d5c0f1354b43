// Package lifecycle holds the business rules of one KooGallery instance (docs/koogallery.md, "Lifecycle rules"):
// which marketplace calls and console actions are possible in which state, what each does to the instance's
// state, the supervision steps, the refund limits of the guarantee period, and the expiry safety net. It is
// plain, deterministic Go: the lifecycle workflow calls it and only orchestrates, so every rule is table-tested
// without Temporal.
//
// Functions come in pairs: CheckX says whether X is possible now and, if not, why (an *refusal.Error a
// person can act on); ApplyX changes the state and assumes CheckX passed. Workflow Update validators call the
// Check functions so impossible steps never reach history.
//
// Refusal codes. Marketplace calls are answered with the KooGallery result codes (docs/koogallery.md,
// "Result codes"); a refused transition uses the nearest one the marketplace offers:
//
//   - 000003 (instance does not exist): any call but releaseInstance on an instance that was released, or whose
//     release was accepted. For the marketplace a released instance no longer exists; release itself stays
//     idempotent (success).
//   - 000002 (invalid request parameters): a call that does not fit the instance, e.g. TRIAL_TO_FORMAL for an
//     instance bought as a formal order, UNSUBSCRIBE_RENEWAL_PERIOD with no renewal left to take effect or with an
//     expiry later than the current one, a missing orderId or expireTime, an unknown scene or status.
//
// 000005 (internal error) is never used for a refusal: it tells the marketplace to retry, which cannot help.
// Console actions (supervision, refunds, operator) are refused with CodeConflict, which the console answers with
// HTTP 409 and the reason.
package lifecycle

import (
	"fmt"
	"time"

	"github.com/kooflow/kooflow/internal/instance"
	"github.com/kooflow/kooflow/internal/koogallery"
	"github.com/kooflow/kooflow/internal/refusal"
)

// Refusal codes. The marketplace's are koogallery's result codes, named here for what a refusal means.
const (
	CodeInvalid  = koogallery.ResultInvalidParams
	CodeReleased = koogallery.ResultNotFound
	// CodeConflict refuses a console action that the instance's state does not allow (HTTP 409).
	CodeConflict = "CONFLICT"
)

// Bounds on the state carried across Continue-As-New.
const (
	MaxApplied            = 64 // marketplace business keys remembered for idempotency
	MaxDecidedRefunds     = 10 // decided refund requests kept for display; all are in PostgreSQL
	keepEffectiveRenewals = 3
	keepChanges           = 8
)

// Ended reports whether the instance was released or its release accepted; nothing but release applies then.
func Ended(s *instance.Carry) bool {
	return s.ReleaseAccepted || s.Lifecycle == instance.LifecycleReleased
}

func released(s *instance.Carry) *refusal.Error {
	if s.ReleasedAt != nil {
		return refusal.New(CodeReleased, "the instance was released at %s and no longer exists", fmtTime(*s.ReleasedAt))
	}
	return refusal.New(CodeReleased, "the instance is being released (releaseInstance was accepted) and no longer exists")
}

func fmtTime(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// Touch marks a change: the read model only accepts projections with a higher version.
func Touch(s *instance.Carry) { s.Version++ }

// NewStep appends a step to the queue and returns it.
func NewStep(s *instance.Carry, kind string, now time.Time, actor instance.Actor) *instance.Step {
	s.StepSeq++
	s.Pending = append(s.Pending, instance.Step{
		ID: fmt.Sprintf("s%d", s.StepSeq), Kind: kind, AcceptedAt: now.UTC(), Actor: actor,
	})
	Touch(s)
	return &s.Pending[len(s.Pending)-1]
}

// IsApplied reports whether a marketplace call with this business key was already applied.
func IsApplied(s *instance.Carry, key string) bool {
	for _, k := range s.Applied {
		if k == key {
			return true
		}
	}
	return false
}

// Remember records a business key as applied, keeping the newest MaxApplied. The marketplace retries a call for
// at most a few hours (docs/koogallery.md, "Retry windows"), far fewer than MaxApplied calls later, so an older
// key cannot come back.
func Remember(s *instance.Carry, key string) {
	if IsApplied(s, key) {
		return
	}
	s.Applied = append(s.Applied, key)
	if n := len(s.Applied) - MaxApplied; n > 0 {
		s.Applied = append([]string(nil), s.Applied[n:]...)
	}
}

// Business keys of marketplace calls (docs/koogallery.md, "Idempotency").
func RefreshKey(r instance.RefreshRequest) string {
	return "refresh:" + r.OrderID + ":" + r.OrderLineID
}

// UpgradeKey is the business key of upgradeInstance.
func UpgradeKey(r instance.UpgradeRequest) string {
	return "upgrade:" + r.OrderID + ":" + r.OrderLineID
}

// Marketplace is the actor of marketplace calls.
var Marketplace = instance.Actor{Party: instance.PartyMarketplace, Name: "KooGallery"}

// System is the actor of the workflow's own decisions (the expiry policy).
var System = instance.Actor{Party: instance.PartySystem, Name: "kooflow"}

// ActorString renders an actor for the timeline: "seller:alice", "marketplace", "system".
func ActorString(a instance.Actor) string {
	switch {
	case a.Party == "":
		return instance.PartySystem
	case a.Name == "" || a.Party == instance.PartyMarketplace || a.Party == instance.PartySystem:
		return a.Party
	default:
		return a.Party + ":" + a.Name
	}
}

// InitialSupervision is the supervision state a purchase starts in: products configured as supervised wait for
// the customer's requirement; the others are not involved (不涉及) from the start.
func InitialSupervision(p instance.Product) instance.Supervision {
	if p.Supervised {
		return instance.SupervisionAwaitingRequirement
	}
	return instance.SupervisionNotInvolved
}

// Provisioned marks provisioning done at now. The instance becomes ACTIVE unless a freeze was accepted
// meanwhile (its step follows and freezes it). A non-supervised purchase takes effect now; a supervised one
// takes effect when the customer accepts the service.
func Provisioned(s *instance.Carry, now time.Time) {
	now = now.UTC()
	s.Provisioned = true
	s.ProvisionedAt = &now
	if s.Lifecycle == instance.LifecycleProvisioning {
		s.Lifecycle = instance.LifecycleActive
	}
	if !s.Product.Supervised {
		for i := range s.Ledger {
			o := &s.Ledger[i]
			if (o.Type == koogallery.OrderTypeNew || o.Type == koogallery.OrderTypeTrial) && o.EffectiveAt == nil {
				o.EffectiveAt = &now
			}
		}
	}
	Touch(s)
}

// Purchase returns the purchase order in the ledger: the TRIAL_TO_FORMAL order of a converted trial, else the
// NEW (or TRIAL) order.
func Purchase(s *instance.Carry) *instance.LedgerOrder {
	var p *instance.LedgerOrder
	for i := range s.Ledger {
		switch s.Ledger[i].Type {
		case "TRIAL_TO_FORMAL":
			return &s.Ledger[i]
		case koogallery.OrderTypeNew, koogallery.OrderTypeTrial:
			p = &s.Ledger[i]
		}
	}
	return p
}

// FindOrder returns the ledger entry of an order.
func FindOrder(s *instance.Carry, orderID string) *instance.LedgerOrder {
	for i := range s.Ledger {
		if s.Ledger[i].OrderID == orderID {
			return &s.Ledger[i]
		}
	}
	return nil
}

// PruneLedger drops the orders refund rules no longer need: renewals that took effect (they cannot be refunded)
// beyond the last few, and old upgrade orders. The purchase stays. Every order is in PostgreSQL regardless.
func PruneLedger(s *instance.Carry, now time.Time) {
	var effectiveRenewals, changes int
	for _, o := range s.Ledger {
		switch {
		case o.Type == koogallery.OrderTypeRenew && o.Known && o.EffectiveAt != nil && !o.EffectiveAt.After(now):
			effectiveRenewals++
		case o.Type == koogallery.OrderTypeChange:
			changes++
		}
	}
	dropRenewals := effectiveRenewals - keepEffectiveRenewals
	dropChanges := changes - keepChanges
	out := s.Ledger[:0:0]
	for _, o := range s.Ledger {
		switch {
		case dropRenewals > 0 && o.Type == koogallery.OrderTypeRenew && o.Known && o.EffectiveAt != nil && !o.EffectiveAt.After(now):
			dropRenewals--
			continue
		case dropChanges > 0 && o.Type == koogallery.OrderTypeChange:
			dropChanges--
			continue
		}
		out = append(out, o)
	}
	s.Ledger = out
}

// PruneRefunds keeps pending refund requests and the newest MaxDecidedRefunds decided ones.
func PruneRefunds(s *instance.Carry) {
	decided := 0
	for _, r := range s.Refunds {
		if r.Status != instance.RefundPending {
			decided++
		}
	}
	drop := decided - MaxDecidedRefunds
	out := s.Refunds[:0:0]
	for _, r := range s.Refunds {
		if drop > 0 && r.Status != instance.RefundPending {
			drop--
			continue
		}
		out = append(out, r)
	}
	s.Refunds = out
}
