package lifecycle

import (
	"fmt"
	"time"

	"github.com/kooflow/kooflow/internal/instance"
	"github.com/kooflow/kooflow/internal/refusal"
)

// ExpiryPolicy is what the workflow does when the marketplace has not frozen an expired instance within the
// grace period (KOOFLOW_EXPIRY_POLICY).
type ExpiryPolicy string

const (
	PolicyAlert  ExpiryPolicy = "alert"  // raise an alert only; the marketplace stays in charge of freezing
	PolicyFreeze ExpiryPolicy = "freeze" // raise an alert and freeze the instance itself
)

// ParsePolicy validates a configured policy.
func ParsePolicy(s string) (ExpiryPolicy, error) {
	switch ExpiryPolicy(s) {
	case PolicyAlert, PolicyFreeze:
		return ExpiryPolicy(s), nil
	case "":
		return PolicyAlert, nil
	}
	return "", fmt.Errorf("expiry policy %q must be alert or freeze", s)
}

// ExpiryDeadline is when the expiry safety net looks at the instance: expireTime plus the grace period. ok is
// false when there is nothing to watch: no expiry (one-time products), an ended or frozen instance (access is
// already stopped; an unfreeze brings the watch back), or an expiry already handled. Not watching saves a timer,
// a billed action.
func ExpiryDeadline(s *instance.Carry, grace time.Duration) (at time.Time, ok bool) {
	if s.ExpireTime == nil || Ended(s) || s.Lifecycle == instance.LifecycleFrozen {
		return time.Time{}, false
	}
	if s.ExpiryHandledFor != nil && s.ExpiryHandledFor.Equal(*s.ExpireTime) {
		return time.Time{}, false
	}
	return s.ExpireTime.Add(grace), true
}

// ExpiryAction is what the safety net does when its deadline passes.
type ExpiryAction int

const (
	ExpiryNothing        ExpiryAction = iota // the marketplace froze it (or it ended): all is as it should be
	ExpiryAlert                              // alert an operator
	ExpiryAlertAndFreeze                     // alert and freeze it ourselves
)

// String names the action as ExpiryCheckResult reports it.
func (a ExpiryAction) String() string {
	switch a {
	case ExpiryAlert:
		return "alert"
	case ExpiryAlertAndFreeze:
		return "alert and freeze"
	}
	return "nothing"
}

// DecideExpiry says what to do at now. Before the deadline it does nothing; afterwards an instance that is still
// usable gets an alert and, under PolicyFreeze, a freeze.
func DecideExpiry(s *instance.Carry, now time.Time, grace time.Duration, policy ExpiryPolicy) ExpiryAction {
	at, ok := ExpiryDeadline(s, grace)
	if !ok || now.Before(at) {
		return ExpiryNothing
	}
	if s.Lifecycle != instance.LifecycleActive && s.Lifecycle != instance.LifecycleProvisioning {
		return ExpiryNothing
	}
	if policy == PolicyFreeze {
		return ExpiryAlertAndFreeze
	}
	return ExpiryAlert
}

// ExpiryHandled marks the current expiry as handled so its safety net fires once.
func ExpiryHandled(s *instance.Carry) {
	if s.ExpireTime != nil {
		t := *s.ExpireTime
		s.ExpiryHandledFor = &t
		Touch(s)
	}
}

// CheckOperator says whether an operator action applies: only a parked instance can be resumed or skipped.
func CheckOperator(s *instance.Carry, a instance.OperatorAction) *refusal.Error {
	if a.Action != instance.OperatorResume && a.Action != instance.OperatorSkip {
		return refusal.New(CodeInvalid, "operator action %q is not resume or skip", a.Action)
	}
	if s.Parked == nil {
		return refusal.New(CodeConflict, "the instance is not parked; there is no step to %s", a.Action)
	}
	return nil
}
