package lifecycle

import (
	"time"

	"github.com/kooflow/kooflow/internal/instance"
	"github.com/kooflow/kooflow/internal/koogallery"
	"github.com/kooflow/kooflow/internal/refusal"
)

// CheckNewInstance accepts newInstance for this instance's own order only. The instanceId is derived from the
// order, so a mismatch means a caller bug, not a marketplace retry.
func CheckNewInstance(start instance.StartInput, req instance.NewInstanceRequest) *refusal.Error {
	if req.OrderID != start.OrderID || req.OrderLineID != start.OrderLineID {
		return refusal.New(CodeInvalid, "instance %s belongs to order %s line %s, not to order %s line %s",
			start.InstanceID, start.OrderID, start.OrderLineID, req.OrderID, req.OrderLineID)
	}
	return nil
}

// CheckRefresh says whether refreshInstance can be applied.
func CheckRefresh(s *instance.Carry, r instance.RefreshRequest, now time.Time) *refusal.Error {
	if Ended(s) {
		return released(s)
	}
	switch r.Scene {
	case instance.SceneRenewal, instance.SceneRenewalChange, instance.SceneTrialToFormal, instance.SceneUnsubscribeRenewalPeriod:
	default:
		return refusal.New(CodeInvalid, "scene %q is not one of TRIAL_TO_FORMAL, RENEWAL, UNSUBSCRIBE_RENEWAL_PERIOD, RENEWAL_CHANGE", r.Scene)
	}
	if r.OrderID == "" {
		return refusal.New(CodeInvalid, "orderId is missing")
	}
	if r.ExpireTime.IsZero() {
		return refusal.New(CodeInvalid, "expireTime is missing")
	}
	if IsApplied(s, RefreshKey(r)) {
		return nil // a retry of a call already applied: success, nothing to do
	}
	switch r.Scene {
	case instance.SceneTrialToFormal:
		if s.Product.ProductID != "" && !s.Trial {
			if p := Purchase(s); p != nil && p.Type == koogallery.OrderTypeTrialToFormal {
				return refusal.New(CodeInvalid, "the trial was already converted to a formal order by order %s", p.OrderID)
			}
			return refusal.New(CodeInvalid, "the instance was bought as a formal order, not a trial; TRIAL_TO_FORMAL does not apply")
		}
	case instance.SceneUnsubscribeRenewalPeriod:
		if s.ExpireTime != nil && r.ExpireTime.After(*s.ExpireTime) {
			return refusal.New(CodeInvalid, "a renewal refund moves the expiry earlier, but %s is after the current expiry %s",
				fmtTime(r.ExpireTime), fmtTime(*s.ExpireTime))
		}
		if len(RenewalsRefundedBy(s, r.ExpireTime, now)) == 0 {
			return refusal.New(CodeInvalid, "no renewal of this instance is still to take effect after %s; a renewal that already took effect cannot be refunded",
				fmtTime(r.ExpireTime))
		}
	}
	return nil
}

// RenewalEffective is the time a renewal takes effect: the expiry it extends, or now when the instance had
// already expired (settlement attribution, docs/koogallery.md, "Settlement rules").
func RenewalEffective(prevExpire *time.Time, now time.Time) time.Time {
	if prevExpire != nil && prevExpire.After(now) {
		return prevExpire.UTC()
	}
	return now.UTC()
}

// ApplyRefresh applies an accepted refreshInstance: the expiry moves to the marketplace's expireTime (trusted as
// given, docs/koogallery.md, "refreshInstance"), a renewal or trial conversion is entered in the ledger (its
// amount follows once the order is queried) and restores access if the instance was frozen. It returns the step
// that queries and records the order, or nil for a retry of a call already applied.
func ApplyRefresh(s *instance.Carry, r instance.RefreshRequest, now time.Time) *instance.Step {
	key := RefreshKey(r)
	if IsApplied(s, key) {
		return nil
	}
	Remember(s, key)
	now = now.UTC()
	expire := r.ExpireTime.UTC()
	step := NewStep(s, instance.StepRefresh, now, Marketplace)
	req := r
	step.Refresh = &req
	switch r.Scene {
	case instance.SceneRenewal, instance.SceneRenewalChange:
		eff := RenewalEffective(s.ExpireTime, now)
		step.EffectiveAt = &eff
		s.Ledger = append(s.Ledger, instance.LedgerOrder{OrderID: r.OrderID, OrderLineID: r.OrderLineID, Type: koogallery.OrderTypeRenew,
			AppliedAt: now, EffectiveAt: &eff, ExpireTime: &expire})
	case instance.SceneTrialToFormal:
		step.EffectiveAt = &now
		s.Trial = false
		s.Ledger = append(s.Ledger, instance.LedgerOrder{OrderID: r.OrderID, OrderLineID: r.OrderLineID,
			Type: "TRIAL_TO_FORMAL", AppliedAt: now, EffectiveAt: &now, ExpireTime: &expire})
	}
	if r.Scene != instance.SceneUnsubscribeRenewalPeriod && s.Lifecycle == instance.LifecycleFrozen {
		s.Lifecycle = instance.LifecycleActive
		s.FrozenBy, s.FrozenAt = "", nil
		step.Unfreeze = true
	}
	s.ExpireTime = &expire
	return step
}

// RenewalsRefundedBy lists the renewals a renewal refund moving the expiry back to newExpire undoes: those that
// have not taken effect yet and start at or after the new expiry. A renewal the seller already refunded through
// the console is included: the marketplace's UNSUBSCRIBE_RENEWAL_PERIOD executes that refund.
func RenewalsRefundedBy(s *instance.Carry, newExpire, now time.Time) []*instance.LedgerOrder {
	var out []*instance.LedgerOrder
	for i := range s.Ledger {
		o := &s.Ledger[i]
		if o.Type != koogallery.OrderTypeRenew || o.EffectiveAt == nil {
			continue
		}
		if o.EffectiveAt.After(now) && !o.EffectiveAt.Before(newExpire) {
			out = append(out, o)
		}
	}
	return out
}

// CheckStatus says whether updateInstanceStatus can be applied. Freezing a frozen instance or unfreezing an
// active one succeeds without doing anything (docs/koogallery.md, "Idempotency": idempotent by state).
func CheckStatus(s *instance.Carry, r instance.StatusRequest) *refusal.Error {
	if Ended(s) {
		return released(s)
	}
	if r.Status != instance.StatusFreeze && r.Status != instance.StatusUnfreeze {
		return refusal.New(CodeInvalid, "status %q is not FREEZE or UNFREEZE", r.Status)
	}
	return nil
}

// ApplyStatus applies an accepted freeze or unfreeze and returns the step that tells the provisioner, or nil
// when the instance is already in that state.
func ApplyStatus(s *instance.Carry, r instance.StatusRequest, now time.Time, by instance.Actor) *instance.Step {
	switch r.Status {
	case instance.StatusFreeze:
		if s.Lifecycle == instance.LifecycleFrozen {
			return nil
		}
		n := now.UTC()
		s.Lifecycle = instance.LifecycleFrozen
		s.FrozenAt = &n
		s.FrozenBy = instance.FrozenByMarketplace
		if by.Party == instance.PartySystem {
			s.FrozenBy = instance.FrozenByExpiryPolicy
		}
		// A freeze at or after the expiry is the marketplace doing what the safety net watches for: that
		// expiry is handled, so an UNFREEZE that precedes the renewal's refreshInstance does not re-alert.
		if s.ExpireTime != nil && !n.Before(*s.ExpireTime) {
			ExpiryHandled(s)
		}
	case instance.StatusUnfreeze:
		if s.Lifecycle != instance.LifecycleFrozen {
			return nil
		}
		s.Lifecycle = instance.LifecycleActive
		if !s.Provisioned {
			s.Lifecycle = instance.LifecycleProvisioning
		}
		s.FrozenBy, s.FrozenAt = "", nil
	default:
		return nil
	}
	step := NewStep(s, instance.StepStatus, now, by)
	req := r
	step.Status = &req
	return step
}

// CheckUpgrade says whether upgradeInstance can be applied.
func CheckUpgrade(s *instance.Carry, r instance.UpgradeRequest) *refusal.Error {
	if Ended(s) {
		return released(s)
	}
	if r.OrderID == "" {
		return refusal.New(CodeInvalid, "orderId is missing")
	}
	return nil
}

// ApplyUpgrade accepts upgradeInstance; the step queries the CHANGE order and applies the new SKU or quantity.
func ApplyUpgrade(s *instance.Carry, r instance.UpgradeRequest, now time.Time) *instance.Step {
	key := UpgradeKey(r)
	if IsApplied(s, key) {
		return nil
	}
	Remember(s, key)
	step := NewStep(s, instance.StepUpgrade, now, Marketplace)
	req := r
	step.Upgrade = &req
	return step
}

// ApplyRelease accepts releaseInstance, which is always possible and idempotent per instance (docs/koogallery.md,
// "releaseInstance"). It returns nil when the release was already accepted.
func ApplyRelease(s *instance.Carry, r instance.ReleaseRequest, now time.Time) *instance.Step {
	if Ended(s) {
		return nil
	}
	s.ReleaseAccepted = true
	step := NewStep(s, instance.StepRelease, now, Marketplace)
	req := r
	step.Release = &req
	return step
}

// Released ends the instance.
func Released(s *instance.Carry, now time.Time) {
	now = now.UTC()
	s.Lifecycle = instance.LifecycleReleased
	s.ReleasedAt = &now
	s.FrozenBy, s.FrozenAt = "", nil
	for i := range s.Refunds {
		if s.Refunds[i].Status == instance.RefundPending {
			s.Refunds[i].Status = instance.RefundCancelled
			s.Refunds[i].DecidedAt = &now
			s.Refunds[i].Note = "the instance was released"
		}
	}
	Touch(s)
}

// CheckChange answers changeInstanceCheck: whether a renewal with a change of specification may proceed.
func CheckChange(s *instance.Carry, r instance.ChangeCheckRequest) instance.ChangeCheckResult {
	switch {
	case Ended(s):
		return instance.ChangeCheckResult{Allowed: false, Reason: released(s).Reason}
	case r.LinearValue < 0:
		return instance.ChangeCheckResult{Allowed: false, Reason: "linearValue must not be negative"}
	case s.Parked != nil:
		return instance.ChangeCheckResult{Allowed: false,
			Reason: "the instance waits for an operator (" + s.Parked.Stage + ": " + s.Parked.Reason + "); try again later"}
	}
	return instance.ChangeCheckResult{Allowed: true}
}
