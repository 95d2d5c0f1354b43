package lifecycle

import (
	"time"

	"github.com/kooflow/kooflow/internal/instance"
	"github.com/kooflow/kooflow/internal/koogallery"
	"github.com/kooflow/kooflow/internal/refusal"
)

// supervisionStep is one transition of the service-supervision flow (docs/koogallery.md, "Service supervision").
type supervisionStep struct {
	from  instance.Supervision
	to    instance.Supervision
	party string // who takes the step (an operator may act for either party)
	what  string // for messages
}

var supervisionSteps = map[string]supervisionStep{
	instance.StepSubmitRequirement: {instance.SupervisionAwaitingRequirement, instance.SupervisionAwaitingConfirm, instance.PartyCustomer, "submit the requirement"},
	instance.StepConfirm:           {instance.SupervisionAwaitingConfirm, instance.SupervisionInService, instance.PartySeller, "confirm the requirement"},
	instance.StepReject:            {instance.SupervisionAwaitingConfirm, instance.SupervisionAwaitingRequirement, instance.PartySeller, "reject the requirement"},
	instance.StepDeliver:           {instance.SupervisionInService, instance.SupervisionAwaitingAcceptance, instance.PartySeller, "mark the service complete"},
	instance.StepAccept:            {instance.SupervisionAwaitingAcceptance, instance.SupervisionCompleted, instance.PartyCustomer, "accept the service"},
}

// SupervisionParty is the party that takes a supervision step ("" for an unknown step).
func SupervisionParty(step string) string { return supervisionSteps[step].party }

// next says what each state waits for, for refusal messages.
var waitingFor = map[instance.Supervision]string{
	instance.SupervisionAwaitingRequirement: "the customer's requirement",
	instance.SupervisionAwaitingConfirm:     "the seller to confirm or reject the requirement",
	instance.SupervisionInService:           "the seller to deliver and mark the service complete",
	instance.SupervisionAwaitingAcceptance:  "the customer's acceptance",
}

// CheckSupervision says whether a supervision step is possible now.
func CheckSupervision(s *instance.Carry, r instance.SupervisionRequest, now time.Time) *refusal.Error {
	st, ok := supervisionSteps[r.Step]
	if !ok {
		return refusal.New(CodeInvalid, "unknown supervision step %q", r.Step)
	}
	if Ended(s) {
		return refusal.New(CodeConflict, "%s", released(s).Reason)
	}
	if r.Actor.Party != st.party && r.Actor.Party != instance.PartyOperator {
		return refusal.New(CodeConflict, "only the %s (or an operator on their behalf) can %s, not the %s", st.party, st.what, r.Actor.Party)
	}
	switch s.Supervision {
	case "":
		return refusal.New(CodeConflict, "the purchase order has not been queried yet, so it is not known whether the product is supervised; try again shortly")
	case instance.SupervisionNotInvolved:
		return refusal.New(CodeConflict, "product %s is not under service supervision (不涉及); there is nothing to %s", s.Product.ProductID, st.what)
	case instance.SupervisionCompleted:
		return refusal.New(CodeConflict, "supervision was completed at %s by the customer's acceptance; it cannot %s again", fmtTimePtr(s.SupervisionCompletedAt), st.what)
	}
	if s.Supervision != st.from {
		return refusal.New(CodeConflict, "cannot %s now: supervision is %s and waits for %s", st.what, s.Supervision, waitingFor[s.Supervision])
	}
	switch r.Step {
	case instance.StepReject:
		if r.Note == "" {
			return refusal.New(CodeConflict, "say why the requirement is rejected (note), so the customer knows what to change")
		}
	case instance.StepDeliver:
		if !s.Provisioned {
			return refusal.New(CodeConflict, "the instance is not provisioned yet; the service cannot be complete before it exists")
		}
		if r.ActualStartTime != nil && r.ActualStartTime.After(now) {
			return refusal.New(CodeConflict, "the actual service start time %s is in the future", fmtTime(*r.ActualStartTime))
		}
	case instance.StepAccept:
		for _, rf := range s.Refunds {
			if rf.Status == instance.RefundPending {
				return refusal.New(CodeConflict, "refund request %s is pending; the seller must decide it before the service can be accepted", rf.RefundID)
			}
		}
	}
	return nil
}

func fmtTimePtr(t *time.Time) string {
	if t == nil {
		return "an unknown time"
	}
	return fmtTime(*t)
}

// ApplySupervision takes the step and returns the purchase order that took effect with it (the customer's
// acceptance completes supervision, ends the guarantee period and makes the purchase settleable), if any.
func ApplySupervision(s *instance.Carry, r instance.SupervisionRequest, now time.Time) *instance.LedgerOrder {
	now = now.UTC()
	st := supervisionSteps[r.Step]
	s.Supervision = st.to
	Touch(s)
	switch r.Step {
	case instance.StepDeliver:
		if r.ActualStartTime != nil {
			t := r.ActualStartTime.UTC()
			s.ServiceStartAt = &t
		}
	case instance.StepAccept:
		s.SupervisionCompletedAt = &now
		var took *instance.LedgerOrder
		for i := range s.Ledger {
			o := &s.Ledger[i]
			if (o.Type == koogallery.OrderTypeNew || o.Type == koogallery.OrderTypeTrial) && o.EffectiveAt == nil {
				o.EffectiveAt = &now
				took = o
			}
		}
		return took
	}
	return nil
}
