package lifecycle

import (
	"testing"
	"time"

	"github.com/kooflow/kooflow/internal/instance"
)

func TestStaleFreeze(t *testing.T) {
	t0 := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	expired := func() *instance.Carry {
		exp := t0
		return &instance.Carry{Lifecycle: instance.LifecycleActive, Provisioned: true, ExpireTime: &exp}
	}
	renew := func(s *instance.Carry, at time.Time) {
		ApplyRefresh(s, instance.RefreshRequest{OrderID: "R-" + at.Format("0102"), OrderLineID: "L", Scene: instance.SceneRenewal,
			ExpireTime: at.AddDate(0, 1, 0)}, at)
	}
	// Frozen at expiry, renewed two days later (which unfreezes): the FREEZE retry after that is stale.
	s := expired()
	ApplyStatus(s, instance.StatusRequest{Status: instance.StatusFreeze}, t0.Add(time.Hour), Marketplace)
	renew(s, t0.Add(48*time.Hour))
	if s.Lifecycle != instance.LifecycleActive || !StaleFreeze(s, t0.Add(49*time.Hour)) {
		t.Fatalf("FREEZE after the renewal that unfroze: lifecycle %s, stale %v", s.Lifecycle, StaleFreeze(s, t0.Add(49*time.Hour)))
	}
	// Renewed before expiry: a FREEZE then is not a retry of an expiry freeze; it is applied as before.
	s = expired()
	renew(s, t0.Add(-48*time.Hour))
	if StaleFreeze(s, t0.Add(-time.Hour)) {
		t.Fatal("a renewal before expiry made a FREEZE stale")
	}
	// Expired and not renewed: the FREEZE is the expected one.
	if StaleFreeze(expired(), t0.Add(time.Hour)) {
		t.Fatal("the expiry's own FREEZE is stale")
	}
	// Already frozen: nothing to decide.
	s = expired()
	ApplyStatus(s, instance.StatusRequest{Status: instance.StatusFreeze}, t0.Add(time.Hour), Marketplace)
	if StaleFreeze(s, t0.Add(2*time.Hour)) {
		t.Fatal("a frozen instance's FREEZE is stale")
	}
}
