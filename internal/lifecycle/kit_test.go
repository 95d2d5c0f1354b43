package lifecycle

import (
	"testing"
	"time"

	"github.com/kooflow/kooflow/internal/instance"
)

func TestKitChangeQueuesAStepUntilRelease(t *testing.T) {
	s := &instance.Carry{Lifecycle: instance.LifecycleActive}
	now := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	if r := CheckKitChange(s); r != nil {
		t.Fatalf("active instance refused: %v", r)
	}
	c := instance.KitChange{DeliveryID: 7, Kind: "tenant", Call: "tenantSync", Flag: "add", TenantID: "t"}
	ApplyKitChange(s, c, now)
	if len(s.Pending) != 1 || s.Pending[0].Kind != instance.StepKit || s.Pending[0].Kit == nil || *s.Pending[0].Kit != c {
		t.Fatalf("pending %+v", s.Pending)
	}
	s.ReleaseAccepted = true
	if r := CheckKitChange(s); r == nil || r.Code != CodeReleased {
		t.Fatalf("release accepted: %v", r)
	}
}
