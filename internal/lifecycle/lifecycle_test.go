package lifecycle

import (
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/kooflow/kooflow/internal/instance"
	"github.com/kooflow/kooflow/internal/refusal"
)

var t0 = time.Date(2026, 1, 10, 8, 0, 0, 0, time.UTC)

func ptr[T any](v T) *T { return &v }

func dec(s string) decimal.Decimal { return decimal.RequireFromString(s) }

// active is a provisioned, non-supervised monthly instance paid 100, expiring a month after t0.
func active() *instance.Carry {
	exp := t0.AddDate(0, 1, 0)
	return &instance.Carry{
		Lifecycle: instance.LifecycleActive, Supervision: instance.SupervisionNotInvolved,
		Provisioned: true, ProvisionedAt: ptr(t0),
		Product:    instance.Product{ProductID: "P1", SKUCode: "S1", Quantity: 1, Known: true},
		ExpireTime: &exp,
		Ledger: []instance.LedgerOrder{{OrderID: "O1", OrderLineID: "O1-1", Type: "NEW", Known: true, Paid: dec("100"),
			AppliedAt: t0, EffectiveAt: ptr(t0), ExpireTime: &exp}},
	}
}

func supervised(state instance.Supervision) *instance.Carry {
	s := active()
	s.Product.Supervised = true
	s.Supervision = state
	s.Ledger[0].EffectiveAt = nil
	return s
}

func wantRefusal(t *testing.T, r *refusal.Error, code, contains string) {
	t.Helper()
	if contains == "" && code == "" {
		if r != nil {
			t.Fatalf("refused unexpectedly: %v", r)
		}
		return
	}
	if r == nil {
		t.Fatalf("accepted, want refusal %s containing %q", code, contains)
	}
	if r.Code != code || !strings.Contains(r.Reason, contains) {
		t.Fatalf("refusal = %s %q, want %s containing %q", r.Code, r.Reason, code, contains)
	}
}

func TestCheckRefresh(t *testing.T) {
	exp := t0.AddDate(0, 2, 0)
	renewal := instance.RefreshRequest{Scene: instance.SceneRenewal, OrderID: "R1", OrderLineID: "R1-1", ExpireTime: exp}
	releasedInst := active()
	releasedInst.Lifecycle, releasedInst.ReleasedAt = instance.LifecycleReleased, ptr(t0)
	releasing := active()
	releasing.ReleaseAccepted = true
	trial := active()
	trial.Trial = true
	converted := active()
	converted.Ledger = append(converted.Ledger, instance.LedgerOrder{OrderID: "T2F", Type: "TRIAL_TO_FORMAL", Known: true})
	pendingRenewal := active()
	pendingRenewal.ExpireTime = &exp
	pendingRenewal.Ledger = append(pendingRenewal.Ledger, instance.LedgerOrder{OrderID: "R1", Type: "RENEW", Known: true,
		Paid: dec("100"), EffectiveAt: ptr(t0.AddDate(0, 1, 0)), ExpireTime: &exp})
	applied := active()
	Remember(applied, RefreshKey(renewal))
	applied.Lifecycle, applied.ReleaseAccepted = instance.LifecycleActive, false

	tests := []struct {
		name         string
		s            *instance.Carry
		r            instance.RefreshRequest
		code, reason string
	}{
		{"renewal", active(), renewal, "", ""},
		{"released", releasedInst, renewal, CodeReleased, "was released at"},
		{"release accepted", releasing, renewal, CodeReleased, "being released"},
		{"unknown scene", active(), instance.RefreshRequest{Scene: "X", OrderID: "R", ExpireTime: exp}, CodeInvalid, "scene"},
		{"no order", active(), instance.RefreshRequest{Scene: instance.SceneRenewal, ExpireTime: exp}, CodeInvalid, "orderId"},
		{"no expiry", active(), instance.RefreshRequest{Scene: instance.SceneRenewal, OrderID: "R"}, CodeInvalid, "expireTime"},
		{"retry of applied", applied, renewal, "", ""},
		{"trial to formal of trial", trial, instance.RefreshRequest{Scene: instance.SceneTrialToFormal, OrderID: "F", ExpireTime: exp}, "", ""},
		{"trial to formal of formal", active(), instance.RefreshRequest{Scene: instance.SceneTrialToFormal, OrderID: "F", ExpireTime: exp}, CodeInvalid, "not a trial"},
		{"trial to formal twice", converted, instance.RefreshRequest{Scene: instance.SceneTrialToFormal, OrderID: "F2", ExpireTime: exp}, CodeInvalid, "already converted"},
		{"trial to formal before order known", &instance.Carry{Lifecycle: instance.LifecycleProvisioning}, instance.RefreshRequest{Scene: instance.SceneTrialToFormal, OrderID: "F", ExpireTime: exp}, "", ""},
		{"renewal refund", pendingRenewal, instance.RefreshRequest{Scene: instance.SceneUnsubscribeRenewalPeriod, OrderID: "U", ExpireTime: t0.AddDate(0, 1, 0)}, "", ""},
		{"renewal refund later expiry", pendingRenewal, instance.RefreshRequest{Scene: instance.SceneUnsubscribeRenewalPeriod, OrderID: "U", ExpireTime: exp.Add(time.Hour)}, CodeInvalid, "earlier"},
		{"renewal refund nothing pending", active(), instance.RefreshRequest{Scene: instance.SceneUnsubscribeRenewalPeriod, OrderID: "U", ExpireTime: t0}, CodeInvalid, "no renewal"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			wantRefusal(t, CheckRefresh(tc.s, tc.r, t0), tc.code, tc.reason)
		})
	}
}

func TestApplyRefresh(t *testing.T) {
	t.Run("renewal before expiry takes effect at the old expiry", func(t *testing.T) {
		s := active()
		old := *s.ExpireTime
		exp := old.AddDate(0, 1, 0)
		step := ApplyRefresh(s, instance.RefreshRequest{Scene: instance.SceneRenewal, OrderID: "R1", OrderLineID: "R1-1", ExpireTime: exp}, t0)
		if step == nil || step.Kind != instance.StepRefresh || step.Unfreeze {
			t.Fatalf("step = %+v", step)
		}
		if !step.EffectiveAt.Equal(old) || !s.ExpireTime.Equal(exp) {
			t.Fatalf("effective %v expire %v", step.EffectiveAt, s.ExpireTime)
		}
		r := FindOrder(s, "R1")
		if r == nil || r.Type != "RENEW" || r.Known || !r.EffectiveAt.Equal(old) {
			t.Fatalf("ledger %+v", r)
		}
		if again := ApplyRefresh(s, instance.RefreshRequest{Scene: instance.SceneRenewal, OrderID: "R1", OrderLineID: "R1-1", ExpireTime: exp}, t0); again != nil {
			t.Fatal("a retry applied twice")
		}
		if len(s.Pending) != 1 {
			t.Fatalf("pending %d", len(s.Pending))
		}
	})
	t.Run("renewal of a frozen, expired instance unfreezes and takes effect now", func(t *testing.T) {
		s := active()
		s.Lifecycle, s.FrozenBy = instance.LifecycleFrozen, instance.FrozenByMarketplace
		now := s.ExpireTime.Add(72 * time.Hour)
		step := ApplyRefresh(s, instance.RefreshRequest{Scene: instance.SceneRenewal, OrderID: "R1", ExpireTime: now.AddDate(0, 1, 0)}, now)
		if !step.Unfreeze || s.Lifecycle != instance.LifecycleActive || s.FrozenBy != "" || !step.EffectiveAt.Equal(now) {
			t.Fatalf("step %+v state %s", step, s.Lifecycle)
		}
	})
	t.Run("trial to formal", func(t *testing.T) {
		s := active()
		s.Trial = true
		s.Ledger[0].Type, s.Ledger[0].Paid = "TRIAL", decimal.Zero
		exp := t0.AddDate(1, 0, 0)
		step := ApplyRefresh(s, instance.RefreshRequest{Scene: instance.SceneTrialToFormal, OrderID: "F1", ExpireTime: exp}, t0)
		if s.Trial || step.EffectiveAt == nil || Purchase(s).OrderID != "F1" || !s.ExpireTime.Equal(exp) {
			t.Fatalf("state %+v", s)
		}
	})
	t.Run("renewal refund moves expiry earlier without unfreezing", func(t *testing.T) {
		s := active()
		s.Lifecycle = instance.LifecycleFrozen
		back := t0.AddDate(0, 0, 5)
		step := ApplyRefresh(s, instance.RefreshRequest{Scene: instance.SceneUnsubscribeRenewalPeriod, OrderID: "U1", ExpireTime: back}, t0)
		if step.Unfreeze || s.Lifecycle != instance.LifecycleFrozen || !s.ExpireTime.Equal(back) || len(s.Ledger) != 1 {
			t.Fatalf("state %+v", s)
		}
	})
}

func TestStatus(t *testing.T) {
	tests := []struct {
		name      string
		from      instance.Lifecycle
		provision bool
		status    string
		by        instance.Actor
		step      bool
		to        instance.Lifecycle
		frozenBy  string
	}{
		{"freeze active", instance.LifecycleActive, true, instance.StatusFreeze, Marketplace, true, instance.LifecycleFrozen, instance.FrozenByMarketplace},
		{"freeze frozen is a no-op", instance.LifecycleFrozen, true, instance.StatusFreeze, Marketplace, false, instance.LifecycleFrozen, instance.FrozenByMarketplace},
		{"unfreeze frozen", instance.LifecycleFrozen, true, instance.StatusUnfreeze, Marketplace, true, instance.LifecycleActive, ""},
		{"unfreeze active is a no-op", instance.LifecycleActive, true, instance.StatusUnfreeze, Marketplace, false, instance.LifecycleActive, ""},
		{"freeze during provisioning", instance.LifecycleProvisioning, false, instance.StatusFreeze, Marketplace, true, instance.LifecycleFrozen, instance.FrozenByMarketplace},
		{"unfreeze before provisioned", instance.LifecycleFrozen, false, instance.StatusUnfreeze, Marketplace, true, instance.LifecycleProvisioning, ""},
		{"expiry policy freeze", instance.LifecycleActive, true, instance.StatusFreeze, System, true, instance.LifecycleFrozen, instance.FrozenByExpiryPolicy},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := active()
			s.Lifecycle, s.Provisioned = tc.from, tc.provision
			if tc.from == instance.LifecycleFrozen {
				s.FrozenBy = instance.FrozenByMarketplace
			}
			r := instance.StatusRequest{Status: tc.status}
			wantRefusal(t, CheckStatus(s, r), "", "")
			step := ApplyStatus(s, r, t0, tc.by)
			if (step != nil) != tc.step || s.Lifecycle != tc.to || s.FrozenBy != tc.frozenBy {
				t.Fatalf("step %v lifecycle %s frozenBy %q", step, s.Lifecycle, s.FrozenBy)
			}
		})
	}
	s := active()
	wantRefusal(t, CheckStatus(s, instance.StatusRequest{Status: "PAUSE"}), CodeInvalid, "FREEZE or UNFREEZE")
	s.ReleaseAccepted = true
	wantRefusal(t, CheckStatus(s, instance.StatusRequest{Status: instance.StatusFreeze}), CodeReleased, "released")
}

func TestUpgradeAndRelease(t *testing.T) {
	s := active()
	u := instance.UpgradeRequest{OrderID: "C1", OrderLineID: "C1-1"}
	wantRefusal(t, CheckUpgrade(s, instance.UpgradeRequest{}), CodeInvalid, "orderId")
	wantRefusal(t, CheckUpgrade(s, u), "", "")
	if ApplyUpgrade(s, u, t0) == nil || ApplyUpgrade(s, u, t0) != nil {
		t.Fatal("upgrade must apply once per order")
	}
	if ApplyRelease(s, instance.ReleaseRequest{}, t0) == nil || ApplyRelease(s, instance.ReleaseRequest{}, t0) != nil {
		t.Fatal("release must apply once")
	}
	wantRefusal(t, CheckUpgrade(s, instance.UpgradeRequest{OrderID: "C2"}), CodeReleased, "being released")
	s.Refunds = []instance.Refund{{RefundID: "R1", Status: instance.RefundPending}}
	Released(s, t0)
	if s.Lifecycle != instance.LifecycleReleased || s.Refunds[0].Status != instance.RefundCancelled {
		t.Fatalf("after release: %+v", s)
	}
	if res := CheckChange(s, instance.ChangeCheckRequest{LinearValue: 2}); res.Allowed {
		t.Fatal("change check allowed on a released instance")
	}
}

func TestRememberIsBounded(t *testing.T) {
	s := &instance.Carry{}
	for i := 0; i < MaxApplied*3; i++ {
		Remember(s, RefreshKey(instance.RefreshRequest{OrderID: time.Duration(i).String()}))
	}
	if len(s.Applied) != MaxApplied {
		t.Fatalf("applied keeps %d keys", len(s.Applied))
	}
	if !IsApplied(s, RefreshKey(instance.RefreshRequest{OrderID: time.Duration(MaxApplied*3 - 1).String()})) {
		t.Fatal("newest key forgotten")
	}
	if IsApplied(s, RefreshKey(instance.RefreshRequest{OrderID: time.Duration(0).String()})) {
		t.Fatal("oldest key kept")
	}
}

func TestPruneLedger(t *testing.T) {
	s := active()
	now := t0.AddDate(2, 0, 0)
	for i := 0; i < 24; i++ {
		eff := t0.AddDate(0, i+1, 0)
		s.Ledger = append(s.Ledger, instance.LedgerOrder{OrderID: "R" + eff.Format("200601"), Type: "RENEW", Known: true, Paid: dec("100"), EffectiveAt: &eff})
	}
	future := now.AddDate(0, 1, 0)
	s.Ledger = append(s.Ledger, instance.LedgerOrder{OrderID: "RF", Type: "RENEW", Known: true, Paid: dec("100"), EffectiveAt: &future})
	PruneLedger(s, now)
	if len(s.Ledger) != 1+keepEffectiveRenewals+1 {
		t.Fatalf("ledger kept %d orders", len(s.Ledger))
	}
	if Purchase(s) == nil || FindOrder(s, "RF") == nil || FindOrder(s, "R"+t0.AddDate(0, 24, 0).Format("200601")) == nil {
		t.Fatal("pruned the purchase, a pending renewal or the newest renewal")
	}
}

func TestActorString(t *testing.T) {
	for in, want := range map[instance.Actor]string{
		{}:                               "system",
		Marketplace:                      "marketplace",
		System:                           "system",
		{Party: "seller", Name: "alice"}: "seller:alice",
		{Party: "operator", Name: ""}:    "operator",
		{Party: "customer", Name: "dev"}: "customer:dev",
	} {
		if got := ActorString(in); got != want {
			t.Errorf("ActorString(%+v) = %q, want %q", in, got, want)
		}
	}
}
