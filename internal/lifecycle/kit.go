package lifecycle

import (
	"time"

	"github.com/kooflow/kooflow/internal/instance"
	"github.com/kooflow/kooflow/internal/refusal"
)

// CheckKitChange refuses a Kit change for an instance whose release was accepted: its Kit data goes with it.
func CheckKitChange(s *instance.Carry) *refusal.Error {
	if Ended(s) {
		return released(s)
	}
	return nil
}

// ApplyKitChange queues the delivery of a Kit change behind the instance's other steps. A change handed twice
// (a retry after Continue-As-New) is delivered once: the delivering activity skips a delivered row.
func ApplyKitChange(s *instance.Carry, c instance.KitChange, now time.Time) {
	st := NewStep(s, instance.StepKit, now, Marketplace)
	st.Kit = &c
}
