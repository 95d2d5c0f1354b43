package recon

import (
	"fmt"
	"slices"
)

// BillState is where the marketplace's bill of one period and product type stands in its own process
// (docs/settlement.md, "The marketplace's bill states and payment"; the seller center's states in brackets).
type BillState string

// The marketplace's bill states, stage by stage: 出账 → 会签 → 申付 → 支付.
const (
	StateBilled                    BillState = "BILLED"                      // 出账
	StateCountersignPending        BillState = "COUNTERSIGN_PENDING"         // 待会签
	StateCountersigning            BillState = "COUNTERSIGNING"              // 会签中
	StateCountersignRejected       BillState = "COUNTERSIGN_REJECTED"        // 会签驳回
	StatePaymentApplicationPending BillState = "PAYMENT_APPLICATION_PENDING" // 待申付
	StatePaymentApplicationFailed  BillState = "PAYMENT_APPLICATION_FAILED"  // 申付单创建失败
	StatePaymentApplicationReview  BillState = "PAYMENT_APPLICATION_REVIEW"  // 申付审核
	StatePaymentProcessing         BillState = "PAYMENT_PROCESSING"          // 申付处理中
	StatePaid                      BillState = "PAID"                        // 支付
)

// States lists every state in process order.
var States = []BillState{StateBilled, StateCountersignPending, StateCountersigning, StateCountersignRejected,
	StatePaymentApplicationPending, StatePaymentApplicationFailed, StatePaymentApplicationReview, StatePaymentProcessing,
	StatePaid}

var stateIndex = func() map[BillState]int {
	m := map[BillState]int{}
	for i, s := range States {
		m[s] = i
	}
	return m
}()

// Stage is the seller center's stage of a state.
func (s BillState) Stage() string {
	switch s {
	case StateBilled:
		return "出账"
	case StateCountersignPending, StateCountersigning, StateCountersignRejected:
		return "会签"
	case StatePaymentApplicationPending, StatePaymentApplicationFailed, StatePaymentApplicationReview, StatePaymentProcessing:
		return "申付"
	case StatePaid:
		return "支付"
	}
	return ""
}

// transitions are the moves the marketplace's process makes: forward through the stages (a step may be skipped,
// as an operator often sees a bill only after it moved on), a rejected countersign back to waiting for
// countersign, a failed payment application back to waiting for it. Nothing leaves PAID.
var transitions = map[BillState][]BillState{
	StateBilled:                    {StateCountersignPending, StateCountersigning, StatePaymentApplicationPending, StatePaymentApplicationReview, StatePaymentProcessing, StatePaid},
	StateCountersignPending:        {StateCountersigning, StateCountersignRejected, StatePaymentApplicationPending, StatePaymentApplicationReview, StatePaymentProcessing, StatePaid},
	StateCountersigning:            {StateCountersignRejected, StatePaymentApplicationPending, StatePaymentApplicationReview, StatePaymentProcessing, StatePaid},
	StateCountersignRejected:       {StateCountersignPending, StateCountersigning},
	StatePaymentApplicationPending: {StatePaymentApplicationFailed, StatePaymentApplicationReview, StatePaymentProcessing, StatePaid},
	StatePaymentApplicationFailed:  {StatePaymentApplicationPending, StatePaymentApplicationReview},
	StatePaymentApplicationReview:  {StatePaymentApplicationFailed, StatePaymentProcessing, StatePaid},
	StatePaymentProcessing:         {StatePaid},
}

// ParseState reads a state name (kooflow's or the seller center's word).
func ParseState(s string) (BillState, error) {
	if _, ok := stateIndex[BillState(s)]; ok {
		return BillState(s), nil
	}
	if st, ok := DefaultMapping().BillStatusValues[s]; ok {
		return BillState(st), nil
	}
	return "", fmt.Errorf("bill state %q is not one of %v", s, States)
}

// CheckTransition says whether the bill may move from one state to another; "" is a bill with no state yet,
// which may start anywhere (the first state kooflow learns of may be a late one).
func CheckTransition(from, to BillState) error {
	if _, ok := stateIndex[to]; !ok {
		return fmt.Errorf("bill state %q is not one of %v", to, States)
	}
	if from == "" || from == to {
		return nil
	}
	if !slices.Contains(transitions[from], to) {
		return fmt.Errorf("a bill in %s (%s) cannot move to %s (%s)", from, from.Stage(), to, to.Stage())
	}
	return nil
}

// Transitions lists the states a bill in from may move to, in process order; every state for a bill with no
// state yet ("").
func Transitions(from BillState) []BillState {
	if from == "" {
		return slices.Clone(States)
	}
	out := []BillState{}
	for _, s := range States {
		if slices.Contains(transitions[from], s) {
			out = append(out, s)
		}
	}
	return out
}
