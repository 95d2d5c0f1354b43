package lifecycle

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/kooflow/kooflow/internal/instance"
)

var (
	seller   = instance.Actor{Party: instance.PartySeller, Name: "alice"}
	customer = instance.Actor{Party: instance.PartyCustomer, Name: "bob"}
	operator = instance.Actor{Party: instance.PartyOperator, Name: "ops"}
)

func TestSupervisionSteps(t *testing.T) {
	notProvisioned := supervised(instance.SupervisionInService)
	notProvisioned.Provisioned = false
	pendingRefund := supervised(instance.SupervisionAwaitingAcceptance)
	pendingRefund.Refunds = []instance.Refund{{RefundID: "R1", Status: instance.RefundPending}}
	releasing := supervised(instance.SupervisionAwaitingRequirement)
	releasing.ReleaseAccepted = true
	unknown := supervised("")

	tests := []struct {
		name         string
		s            *instance.Carry
		r            instance.SupervisionRequest
		code, reason string
		to           instance.Supervision
	}{
		{"customer submits", supervised(instance.SupervisionAwaitingRequirement), instance.SupervisionRequest{Step: instance.StepSubmitRequirement, Actor: customer}, "", "", instance.SupervisionAwaitingConfirm},
		{"operator submits for the customer", supervised(instance.SupervisionAwaitingRequirement), instance.SupervisionRequest{Step: instance.StepSubmitRequirement, Actor: operator}, "", "", instance.SupervisionAwaitingConfirm},
		{"seller cannot submit", supervised(instance.SupervisionAwaitingRequirement), instance.SupervisionRequest{Step: instance.StepSubmitRequirement, Actor: seller}, CodeConflict, "only the customer", ""},
		{"seller confirms", supervised(instance.SupervisionAwaitingConfirm), instance.SupervisionRequest{Step: instance.StepConfirm, Actor: seller}, "", "", instance.SupervisionInService},
		{"seller rejects with a note", supervised(instance.SupervisionAwaitingConfirm), instance.SupervisionRequest{Step: instance.StepReject, Actor: seller, Note: "need the tenant name"}, "", "", instance.SupervisionAwaitingRequirement},
		{"reject needs a note", supervised(instance.SupervisionAwaitingConfirm), instance.SupervisionRequest{Step: instance.StepReject, Actor: seller}, CodeConflict, "say why", ""},
		{"confirm before requirement", supervised(instance.SupervisionAwaitingRequirement), instance.SupervisionRequest{Step: instance.StepConfirm, Actor: seller}, CodeConflict, "waits for the customer's requirement", ""},
		{"seller delivers", supervised(instance.SupervisionInService), instance.SupervisionRequest{Step: instance.StepDeliver, Actor: seller, ActualStartTime: ptr(t0.Add(-time.Hour))}, "", "", instance.SupervisionAwaitingAcceptance},
		{"deliver with a future start", supervised(instance.SupervisionInService), instance.SupervisionRequest{Step: instance.StepDeliver, Actor: seller, ActualStartTime: ptr(t0.Add(time.Hour))}, CodeConflict, "in the future", ""},
		{"deliver before provisioned", notProvisioned, instance.SupervisionRequest{Step: instance.StepDeliver, Actor: seller}, CodeConflict, "not provisioned", ""},
		{"customer accepts", supervised(instance.SupervisionAwaitingAcceptance), instance.SupervisionRequest{Step: instance.StepAccept, Actor: customer}, "", "", instance.SupervisionCompleted},
		{"accept with refund pending", pendingRefund, instance.SupervisionRequest{Step: instance.StepAccept, Actor: customer}, CodeConflict, "refund request R1 is pending", ""},
		{"accept twice", supervised(instance.SupervisionCompleted), instance.SupervisionRequest{Step: instance.StepAccept, Actor: customer}, CodeConflict, "completed", ""},
		{"not supervised", active(), instance.SupervisionRequest{Step: instance.StepSubmitRequirement, Actor: customer}, CodeConflict, "not under service supervision", ""},
		{"order not known", unknown, instance.SupervisionRequest{Step: instance.StepSubmitRequirement, Actor: customer}, CodeConflict, "not been queried", ""},
		{"released", releasing, instance.SupervisionRequest{Step: instance.StepSubmitRequirement, Actor: customer}, CodeConflict, "released", ""},
		{"unknown step", supervised(instance.SupervisionInService), instance.SupervisionRequest{Step: "dance", Actor: seller}, CodeInvalid, "unknown", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			wantRefusal(t, CheckSupervision(tc.s, tc.r, t0), tc.code, tc.reason)
			if tc.code != "" {
				return
			}
			took := ApplySupervision(tc.s, tc.r, t0)
			if tc.s.Supervision != tc.to {
				t.Fatalf("supervision %s, want %s", tc.s.Supervision, tc.to)
			}
			if tc.to == instance.SupervisionCompleted {
				if took == nil || !took.EffectiveAt.Equal(t0) || !tc.s.SupervisionCompletedAt.Equal(t0) {
					t.Fatalf("acceptance did not make the purchase effective: %+v", took)
				}
			} else if took != nil {
				t.Fatal("a step before acceptance made the purchase effective")
			}
		})
	}
}

func TestSupervisionWithOneRejection(t *testing.T) {
	s := supervised(instance.SupervisionAwaitingRequirement)
	steps := []instance.SupervisionRequest{
		{Step: instance.StepSubmitRequirement, Actor: customer},
		{Step: instance.StepReject, Actor: seller, Note: "missing tenant"},
		{Step: instance.StepSubmitRequirement, Actor: customer},
		{Step: instance.StepConfirm, Actor: seller},
		{Step: instance.StepDeliver, Actor: seller, Note: "delivered"},
		{Step: instance.StepAccept, Actor: customer},
	}
	for i, r := range steps {
		if ref := CheckSupervision(s, r, t0); ref != nil {
			t.Fatalf("step %d %s refused: %v", i, r.Step, ref)
		}
		ApplySupervision(s, r, t0)
	}
	if s.Supervision != instance.SupervisionCompleted {
		t.Fatalf("ended in %s", s.Supervision)
	}
}

func TestRefundRequests(t *testing.T) {
	expired := active()
	expired.ExpireTime = ptr(t0.Add(-time.Hour))
	completed := supervised(instance.SupervisionCompleted)
	completed.SupervisionCompletedAt = ptr(t0.Add(-time.Hour))
	inSupervision := supervised(instance.SupervisionInService)
	withRenewals := active()
	withRenewals.ExpireTime = ptr(t0.AddDate(0, 3, 0))
	withRenewals.Ledger = append(withRenewals.Ledger,
		instance.LedgerOrder{OrderID: "RE", OrderLineID: "RE-1", Type: "RENEW", Known: true, Paid: dec("90"), EffectiveAt: ptr(t0.Add(-time.Hour))},
		instance.LedgerOrder{OrderID: "RP", OrderLineID: "RP-1", Type: "RENEW", Known: true, Paid: dec("90"), EffectiveAt: ptr(t0.AddDate(0, 2, 0))},
		instance.LedgerOrder{OrderID: "RU", Type: "RENEW", Known: false, EffectiveAt: ptr(t0.AddDate(0, 2, 0))},
	)
	pending := active()
	pending.Refunds = []instance.Refund{{RefundID: "R1", Status: instance.RefundPending}}
	trial := active()
	trial.Ledger[0].Type, trial.Ledger[0].Paid = "TRIAL", decimal.Zero
	refunded := active()
	refunded.Ledger[0].Refunded = dec("100")

	req := func(order string, amount string) instance.RefundRequest {
		r := instance.RefundRequest{Action: instance.RefundRequestAction, OrderID: order, Actor: customer, Reason: "changed my mind"}
		if amount != "" {
			r.Amount = ptr(dec(amount))
		}
		return r
	}
	tests := []struct {
		name         string
		s            *instance.Carry
		r            instance.RefundRequest
		code, reason string
		want         string // requested amount recorded
		fullOnly     bool
	}{
		{"full refund of the purchase", active(), req("", ""), "", "", "100", false},
		{"partial refund", active(), req("O1", "30.5"), "", "", "30.5", false},
		{"during supervision", inSupervision, req("", "40"), "", "", "40", false},
		{"more than paid", active(), req("", "100.001"), CodeConflict, "exceeds what may still be refunded", "", false},
		{"zero", active(), req("", "0"), CodeInvalid, "positive", "", false},
		{"after supervision completed", completed, req("", "10"), CodeConflict, "guarantee period ended", "", false},
		{"after expiry", expired, req("", "10"), CodeConflict, "expired", "", false},
		{"renewal that took effect", withRenewals, req("RE", ""), CodeConflict, "took effect", "", false},
		{"renewal not yet effective, in full", withRenewals, req("RP", ""), "", "", "90", true},
		{"renewal not yet effective, explicit full", withRenewals, req("RP", "90"), "", "", "90", true},
		{"renewal not yet effective, partial", withRenewals, req("RP", "50"), CodeConflict, "in full", "", false},
		{"renewal amount unknown", withRenewals, req("RU", ""), CodeConflict, "not known yet", "", false},
		{"unknown order", active(), req("NOPE", ""), CodeConflict, "not a refundable order", "", false},
		{"one at a time", pending, req("", "10"), CodeConflict, "still pending", "", false},
		{"trial paid nothing", trial, req("", ""), CodeConflict, "nothing was paid", "", false},
		{"already refunded in full", refunded, req("", ""), CodeConflict, "already refunded in full", "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := clone(t, tc.s)
			wantRefusal(t, CheckRefund(s, tc.r, t0), tc.code, tc.reason)
			if tc.code != "" {
				return
			}
			rf, changed := ApplyRefund(s, "I1", tc.r, t0)
			if !changed || rf.Status != instance.RefundPending || !rf.Requested.Equal(dec(tc.want)) || rf.FullOnly != tc.fullOnly || rf.RefundID != "R1" {
				t.Fatalf("refund %+v", rf)
			}
		})
	}
}

func TestRefundDecisions(t *testing.T) {
	requested := func(amount string) *instance.Carry {
		s := active()
		r := instance.RefundRequest{Action: instance.RefundRequestAction, Actor: customer}
		if amount != "" {
			r.Amount = ptr(dec(amount))
		}
		if ref := CheckRefund(s, r, t0); ref != nil {
			t.Fatal(ref)
		}
		ApplyRefund(s, "I1", r, t0)
		return s
	}
	approve := func(amount string) instance.RefundRequest {
		r := instance.RefundRequest{Action: instance.RefundApproveAction, RefundID: "R1", Actor: seller}
		if amount != "" {
			r.Amount = ptr(dec(amount))
		}
		return r
	}
	reject := instance.RefundRequest{Action: instance.RefundRejectAction, RefundID: "R1", Actor: seller, Reason: "service delivered"}

	t.Run("approve the requested amount", func(t *testing.T) {
		s := requested("60")
		wantRefusal(t, CheckRefund(s, approve(""), t0), "", "")
		rf, _ := ApplyRefund(s, "I1", approve(""), t0)
		if rf.Status != instance.RefundApproved || !rf.Approved.Equal(dec("60")) || rf.RefundOrderID != "REFUND-I1-R1" {
			t.Fatalf("refund %+v", rf)
		}
		o := Purchase(s)
		if !o.Refunded.Equal(dec("60")) || !o.Refundable().Equal(dec("40")) {
			t.Fatalf("ledger %+v", o)
		}
		// The same decision again is a success that changes nothing; another decision is refused.
		wantRefusal(t, CheckRefund(s, approve(""), t0), "", "")
		if _, changed := ApplyRefund(s, "I1", approve(""), t0); changed {
			t.Fatal("a repeated approval changed the state")
		}
		wantRefusal(t, CheckRefund(s, reject, t0), CodeConflict, "already APPROVED")
		wantRefusal(t, CheckRefund(s, approve("10"), t0), CodeConflict, "already APPROVED")
	})
	t.Run("approve a negotiated amount up to what was paid", func(t *testing.T) {
		s := requested("30")
		wantRefusal(t, CheckRefund(s, approve("100"), t0), "", "")
		wantRefusal(t, CheckRefund(s, approve("100.01"), t0), CodeConflict, "exceeds")
	})
	t.Run("reject", func(t *testing.T) {
		s := requested("")
		wantRefusal(t, CheckRefund(s, reject, t0), "", "")
		rf, _ := ApplyRefund(s, "I1", reject, t0)
		if rf.Status != instance.RefundRejected || !Purchase(s).Refunded.IsZero() || rf.Note != "service delivered" {
			t.Fatalf("refund %+v", rf)
		}
		// A new request may follow a decided one.
		wantRefusal(t, CheckRefund(s, instance.RefundRequest{Action: instance.RefundRequestAction, Actor: customer}, t0), "", "")
	})
	t.Run("approval after expiry or after the renewal took effect", func(t *testing.T) {
		s := requested("60")
		later := s.ExpireTime.Add(time.Minute)
		wantRefusal(t, CheckRefund(s, approve(""), later), CodeConflict, "only rejected")
		wantRefusal(t, CheckRefund(s, reject, later), "", "")

		r := active()
		r.ExpireTime = ptr(t0.AddDate(0, 2, 0))
		eff := t0.AddDate(0, 1, 0)
		r.Ledger = append(r.Ledger, instance.LedgerOrder{OrderID: "RN", Type: "RENEW", Known: true, Paid: dec("90"), EffectiveAt: &eff})
		req := instance.RefundRequest{Action: instance.RefundRequestAction, OrderID: "RN", Actor: customer}
		wantRefusal(t, CheckRefund(r, req, t0), "", "")
		ApplyRefund(r, "I1", req, t0)
		wantRefusal(t, CheckRefund(r, approve(""), eff.Add(time.Second)), CodeConflict, "took effect")
		wantRefusal(t, CheckRefund(r, approve(""), eff.Add(-time.Second)), "", "")
	})
	t.Run("unknown request", func(t *testing.T) {
		wantRefusal(t, CheckRefund(active(), approve(""), t0), CodeConflict, "no refund request")
	})
	t.Run("decided list is bounded", func(t *testing.T) {
		s := active()
		s.Ledger[0].Paid = dec("1000")
		for i := 0; i < MaxDecidedRefunds+5; i++ {
			ApplyRefund(s, "I1", instance.RefundRequest{Action: instance.RefundRequestAction, Amount: ptr(dec("1")), Actor: customer}, t0)
			id := s.Refunds[len(s.Refunds)-1].RefundID
			ApplyRefund(s, "I1", instance.RefundRequest{Action: instance.RefundApproveAction, RefundID: id, Actor: seller}, t0)
		}
		if len(s.Refunds) != MaxDecidedRefunds || !Purchase(s).Refunded.Equal(dec(itoa(MaxDecidedRefunds+5))) {
			t.Fatalf("%d refunds kept, refunded %s", len(s.Refunds), Purchase(s).Refunded)
		}
	})
}

func clone(t *testing.T, s *instance.Carry) *instance.Carry {
	t.Helper()
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	var c instance.Carry
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	return &c
}

func itoa(i int) string { return decimal.NewFromInt(int64(i)).String() }

func TestUnsubscribeAmount(t *testing.T) {
	order := func(paid, approved string) instance.LedgerOrder {
		return instance.LedgerOrder{Paid: dec(paid), Refunded: dec(approved), SellerApproved: dec(approved), Known: true}
	}
	tests := []struct {
		name     string
		o        instance.LedgerOrder
		queried  *decimal.Decimal
		want     string
		totalRef string
	}{
		{"full unsubscribe", order("1200", "0"), ptr(dec("1200")), "1200", "1200"},
		{"marketplace sends a negative amount", order("1200", "0"), ptr(dec("-1200")), "1200", "1200"},
		{"partial unsubscribe", order("1200", "0"), ptr(dec("700")), "700", "700"},
		{"unknown amount refunds what is left", order("100", "0"), nil, "100", "100"},
		{"seller approved the same amount before", order("100", "80"), ptr(dec("80")), "0", "80"},
		{"marketplace refunds more than approved", order("100", "80"), ptr(dec("100")), "20", "100"},
		{"never more than paid", order("100", "0"), ptr(dec("150")), "100", "100"},
		{"renewal refund after an approved full refund", order("90", "90"), nil, "0", "90"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := tc.o
			got := ApplyUnsubscribe(&o, tc.queried)
			if !got.Equal(dec(tc.want)) || !o.Refunded.Equal(dec(tc.totalRef)) {
				t.Fatalf("amount %s refunded %s, want %s and %s", got, o.Refunded, tc.want, tc.totalRef)
			}
		})
	}
}

func TestRenewalsRefundedBy(t *testing.T) {
	s := active()
	e1, e2, e3 := t0.AddDate(0, 1, 0), t0.AddDate(0, 2, 0), t0.AddDate(0, 3, 0)
	s.ExpireTime = &e3
	s.Ledger = append(s.Ledger,
		instance.LedgerOrder{OrderID: "R1", Type: "RENEW", Known: true, Paid: dec("10"), EffectiveAt: &e1},
		instance.LedgerOrder{OrderID: "R2", Type: "RENEW", Known: true, Paid: dec("10"), EffectiveAt: &e2})
	got := RenewalsRefundedBy(s, e2, t0)
	if len(got) != 1 || got[0].OrderID != "R2" {
		t.Fatalf("refunding back to %v undoes %v", e2, got)
	}
	if got := RenewalsRefundedBy(s, e2, e2.Add(time.Second)); len(got) != 0 {
		t.Fatalf("a renewal that took effect was refundable: %v", got)
	}
}

func TestExpiry(t *testing.T) {
	grace := 24 * time.Hour
	s := active()
	exp := *s.ExpireTime
	at, ok := ExpiryDeadline(s, grace)
	if !ok || !at.Equal(exp.Add(grace)) {
		t.Fatalf("deadline %v %v", at, ok)
	}
	if a := DecideExpiry(s, exp.Add(time.Hour), grace, PolicyFreeze); a != ExpiryNothing {
		t.Fatal("acted inside the grace period")
	}
	if a := DecideExpiry(s, exp.Add(grace), grace, PolicyAlert); a != ExpiryAlert {
		t.Fatalf("alert policy: %v", a)
	}
	if a := DecideExpiry(s, exp.Add(grace), grace, PolicyFreeze); a != ExpiryAlertAndFreeze {
		t.Fatalf("freeze policy: %v", a)
	}
	frozen := active()
	frozen.Lifecycle = instance.LifecycleFrozen
	if a := DecideExpiry(frozen, exp.Add(grace), grace, PolicyFreeze); a != ExpiryNothing {
		t.Fatal("acted on an instance the marketplace froze")
	}
	if _, ok := ExpiryDeadline(frozen, grace); ok {
		t.Fatal("watching a frozen instance")
	}
	// The marketplace freezing after expiry handles that expiry: an UNFREEZE before the renewal does not alert.
	m := active()
	ApplyStatus(m, instance.StatusRequest{Status: instance.StatusFreeze}, exp.Add(time.Hour), Marketplace)
	ApplyStatus(m, instance.StatusRequest{Status: instance.StatusUnfreeze}, exp.Add(2*time.Hour), Marketplace)
	if _, ok := ExpiryDeadline(m, grace); ok {
		t.Fatal("an expiry the marketplace froze for is still watched after the unfreeze")
	}
	// A freeze before expiry (a violation) leaves the expiry watched once unfrozen.
	v := active()
	ApplyStatus(v, instance.StatusRequest{Status: instance.StatusFreeze}, t0, Marketplace)
	ApplyStatus(v, instance.StatusRequest{Status: instance.StatusUnfreeze}, t0.Add(time.Hour), Marketplace)
	if _, ok := ExpiryDeadline(v, grace); !ok {
		t.Fatal("a freeze before expiry switched the safety net off")
	}
	ExpiryHandled(s)
	if _, ok := ExpiryDeadline(s, grace); ok {
		t.Fatal("handled expiry still watched")
	}
	// A renewal moves the expiry: the new one is watched again.
	ApplyRefresh(s, instance.RefreshRequest{Scene: instance.SceneRenewal, OrderID: "R9", ExpireTime: exp.AddDate(0, 1, 0)}, exp)
	if _, ok := ExpiryDeadline(s, grace); !ok {
		t.Fatal("the renewed expiry is not watched")
	}
	oneTime := active()
	oneTime.ExpireTime = nil
	if _, ok := ExpiryDeadline(oneTime, grace); ok {
		t.Fatal("watching an instance without expiry")
	}
	if _, err := ParsePolicy("explode"); err == nil {
		t.Fatal("bad policy accepted")
	}
	if p, _ := ParsePolicy(""); p != PolicyAlert {
		t.Fatal("default policy is not alert")
	}
}

func TestCheckOperator(t *testing.T) {
	s := active()
	wantRefusal(t, CheckOperator(s, instance.OperatorAction{Action: instance.OperatorResume}), CodeConflict, "not parked")
	s.Parked = &instance.Parking{StepID: "s1", Stage: "provision create"}
	wantRefusal(t, CheckOperator(s, instance.OperatorAction{Action: instance.OperatorSkip}), "", "")
	wantRefusal(t, CheckOperator(s, instance.OperatorAction{Action: "reboot"}), CodeInvalid, "resume or skip")
}

func TestProvisionedMakesOnlyUnsupervisedPurchasesEffective(t *testing.T) {
	s := active()
	s.Lifecycle, s.Provisioned, s.Ledger[0].EffectiveAt = instance.LifecycleProvisioning, false, nil
	Provisioned(s, t0)
	if s.Lifecycle != instance.LifecycleActive || s.Ledger[0].EffectiveAt == nil {
		t.Fatalf("%+v", s)
	}
	sv := supervised(instance.SupervisionAwaitingRequirement)
	sv.Lifecycle, sv.Provisioned = instance.LifecycleFrozen, false
	Provisioned(sv, t0)
	if sv.Lifecycle != instance.LifecycleFrozen || sv.Ledger[0].EffectiveAt != nil {
		t.Fatalf("%+v", sv)
	}
}
