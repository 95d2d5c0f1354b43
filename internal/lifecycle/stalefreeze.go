package lifecycle

import (
	"time"

	"github.com/kooflow/kooflow/internal/instance"
	"github.com/kooflow/kooflow/internal/koogallery"
)

// StaleFreeze says whether a FREEZE arriving at now is a retry the renewal has overtaken: the instance is not
// frozen, its expiry is in the future, and its latest renewal was applied after the expiry it extended (so it
// is what ended, or made needless, the freeze the marketplace is still delivering). The marketplace retries
// updateInstanceStatus for hours; freezing then would cut off a customer who has paid, so the workflow raises an
// alert for a person instead.
func StaleFreeze(s *instance.Carry, now time.Time) bool {
	if s.Lifecycle == instance.LifecycleFrozen || s.ExpireTime == nil || !now.Before(*s.ExpireTime) {
		return false
	}
	for i := len(s.Ledger) - 1; i >= 0; i-- {
		o := s.Ledger[i]
		if o.Type != koogallery.OrderTypeRenew {
			continue
		}
		// A renewal applied after the expiry takes effect when applied (RenewalEffective).
		return o.EffectiveAt != nil && o.EffectiveAt.Equal(o.AppliedAt)
	}
	return false
}
