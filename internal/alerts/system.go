package alerts

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	workflowpb "go.temporal.io/api/workflow/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/kooflow/kooflow/internal/store"
)

// Watcher raises and resolves one family of alerts from its own source each round of the pusher.
type Watcher interface {
	Watch(ctx context.Context, now time.Time) error
}

// The system alert kinds these watchers raise.
const (
	KindSettlementFailed  = "settlement-failed"
	KindOrderQueryFailing = "order-query-failing"
)

// OrderQueryWatch raises order-query-failing when the marketplace's order query has failed, for reasons that are
// not about one order, for at least After and MinFailures calls with no success since (order_query_health, which
// every worker's QueryOrder activity updates). New purchases cannot be provisioned meanwhile, and the marketplace
// refunds a purchase not provisioned 3 h after its order, so the message says how many wait and when the first
// refund falls. The alert is resolved by the first successful query.
type OrderQueryWatch struct {
	Store *store.Store
	// After is how long failures must last (KOOFLOW_ORDER_QUERY_ALERT_AFTER); 0 means 15 min.
	After time.Duration
	// MinFailures is how many failed calls it takes; 0 means 3.
	MinFailures int64
}

// orderQueryKey is the one dedupe key of order-query-failing: there is one order query.
const orderQueryKey = KindOrderQueryFailing

// Watch implements Watcher.
func (w *OrderQueryWatch) Watch(ctx context.Context, now time.Time) error {
	after, minFailures := w.After, w.MinFailures
	if after <= 0 {
		after = 15 * time.Minute
	}
	if minFailures <= 0 {
		minFailures = 3
	}
	h, err := w.Store.OrderQueryHealth(ctx)
	if err != nil {
		return err
	}
	if h.FailingSince == nil {
		_, err := w.Store.ResolveSystemAlert(ctx, orderQueryKey, now)
		return err
	}
	if now.Sub(*h.FailingSince) < after || h.Failures < minFailures {
		return nil
	}
	waiting, oldest, err := w.Store.WaitingPurchases(ctx)
	if err != nil {
		return err
	}
	msg := fmt.Sprintf("the marketplace's order query has failed %d time(s) since %s UTC with no success (last: %s); "+
		"kooflow cannot provision new purchases, renewals or upgrades meanwhile. Check KOOGALLERY_AK/SK, "+
		"KOOGALLERY_API_ENDPOINT and the marketplace's status", h.Failures, h.FailingSince.UTC().Format("2006-01-02 15:04"),
		h.LastError)
	detail := map[string]any{"failingSince": h.FailingSince, "failures": h.Failures, "lastError": h.LastError,
		"waitingPurchases": waiting}
	if waiting > 0 && oldest != nil {
		refund := oldest.Add(store.RefundWindow)
		msg += fmt.Sprintf("; %d purchase(s) wait, and the marketplace refunds the first at %s UTC (%s left)", waiting,
			refund.UTC().Format("2006-01-02 15:04"), max(refund.Sub(now), 0).Round(time.Minute))
		detail["firstRefundAt"] = refund
	}
	b, err := json.Marshal(detail)
	if err != nil {
		return fmt.Errorf("encode the order-query-failing detail: %w", err)
	}
	_, err = w.Store.RaiseSystemAlert(ctx, store.SystemAlert{Kind: KindOrderQueryFailing, Key: orderQueryKey,
		Subject: "marketplace order query", Message: msg, Detail: b}, now)
	return err
}

// Settlement workflow types as the worker registers them (workflows.SettlementPeriodWorkflowType and
// SettlementTickWorkflowType; the workflows package imports this one's dependencies, not the reverse).
const (
	settlementPeriodType = "SettlementPeriod"
	settlementTickType   = "SettlementTick"
	settlementIDPrefix   = "settlement/"
	tickKey              = KindSettlementFailed + ":tick"
)

// SettlementWatch raises settlement-failed from Temporal's own record of the settlement workflows:
//   - for a period (key settlement-failed:<YYYY-MM>) whose latest close (workflow settlement/<period>) failed,
//     timed out or was terminated: its bills are not closed, so the period is not paid out; resolved when a
//     later close of the period completes;
//   - for the schedule's tick (key settlement-failed:tick) when a tick failed by itself (not because a period's
//     close failed, which has its own alert) and no tick completed after it: due bills are not being closed;
//     resolved when a later tick completes.
type SettlementWatch struct {
	Store    *store.Store
	Temporal client.Client
	// LookBack bounds how far back closed workflows are listed; 0 means 40 days (a period's bill and its
	// catch-up ticks fit).
	LookBack time.Duration
}

// Watch implements Watcher.
func (w *SettlementWatch) Watch(ctx context.Context, now time.Time) error {
	lookBack := w.LookBack
	if lookBack <= 0 {
		lookBack = 40 * 24 * time.Hour
	}
	since := now.Add(-lookBack).UTC().Format(time.RFC3339)
	failed, err := w.list(ctx, fmt.Sprintf(`WorkflowType = '%s' AND `+unsuccessful+` AND CloseTime >= '%s'`,
		settlementPeriodType, since))
	if err != nil {
		return err
	}
	seen := map[string]bool{}
	for _, e := range failed {
		id := e.GetExecution().GetWorkflowId()
		if seen[id] || !strings.HasPrefix(id, settlementIDPrefix) {
			continue
		}
		seen[id] = true
		if err := w.period(ctx, now, id); err != nil {
			return err
		}
	}
	if err := w.resolvePeriods(ctx, now); err != nil {
		return err
	}
	return w.tick(ctx, now, since)
}

type workflowExecution = workflowpb.WorkflowExecutionInfo

// unsuccessful selects closed runs that did not complete; a cancellation is an operator's decision, not a failure.
const unsuccessful = `(ExecutionStatus = 'Failed' OR ExecutionStatus = 'TimedOut' OR ExecutionStatus = 'Terminated')`

func (w *SettlementWatch) list(ctx context.Context, query string) ([]*workflowExecution, error) {
	var out []*workflowExecution
	var token []byte
	for page := 0; page < 10; page++ {
		resp, err := w.Temporal.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Query: query,
			PageSize: 100, NextPageToken: token})
		if err != nil {
			return nil, fmt.Errorf("list settlement workflows (%s): %w", query, err)
		}
		out = append(out, resp.GetExecutions()...)
		if token = resp.GetNextPageToken(); len(token) == 0 {
			break
		}
	}
	return out, nil
}

// period raises the alert of the period whose workflow is id when its latest run did not complete.
func (w *SettlementWatch) period(ctx context.Context, now time.Time, id string) error {
	d, err := w.Temporal.DescribeWorkflowExecution(ctx, id, "")
	if err != nil {
		return fmt.Errorf("describe %s: %w", id, err)
	}
	info := d.GetWorkflowExecutionInfo()
	switch info.GetStatus() {
	case enumspb.WORKFLOW_EXECUTION_STATUS_FAILED, enumspb.WORKFLOW_EXECUTION_STATUS_TIMED_OUT,
		enumspb.WORKFLOW_EXECUTION_STATUS_TERMINATED:
	default:
		return nil // completed or being run again
	}
	period := strings.TrimPrefix(id, settlementIDPrefix)
	runID := info.GetExecution().GetRunId()
	closed := info.GetCloseTime().AsTime()
	cause := w.cause(ctx, id, runID, info.GetStatus())
	msg := fmt.Sprintf("the close of settlement period %s (workflow %s) did not complete: %s at %s UTC: %s. Its bills "+
		"are not closed, so the period is neither reported nor paid out; fix the cause, then close it again "+
		"(kooflow settle close --period %s, or POST /console/v1/bills/close)", period, id, statusWord(info.GetStatus()),
		closed.UTC().Format("2006-01-02 15:04"), cause, period)
	detail, err := json.Marshal(map[string]any{"period": period, "workflowId": id, "runId": runID,
		"status": statusWord(info.GetStatus()), "closedAt": closed, "cause": cause})
	if err != nil {
		return fmt.Errorf("encode the settlement-failed detail: %w", err)
	}
	_, err = w.Store.RaiseSystemAlert(ctx, store.SystemAlert{Kind: KindSettlementFailed, Key: KindSettlementFailed + ":" + period,
		Subject: "settlement period " + period, Message: msg, Detail: detail}, now)
	return err
}

// resolvePeriods resolves the open period alerts whose workflow's latest run completed.
func (w *SettlementWatch) resolvePeriods(ctx context.Context, now time.Time) error {
	open, err := w.Store.Alerts(ctx, store.AlertFilter{OpenOnly: true, Kind: KindSettlementFailed, Limit: 1000})
	if err != nil {
		return err
	}
	for _, a := range open {
		if a.InstanceID != "" || a.Key == tickKey {
			continue
		}
		id := settlementIDPrefix + strings.TrimPrefix(a.Key, KindSettlementFailed+":")
		d, err := w.Temporal.DescribeWorkflowExecution(ctx, id, "")
		var nf *serviceerror.NotFound
		if errors.As(err, &nf) {
			continue // past the namespace's retention: an operator sees the alert and the bills
		}
		if err != nil {
			return fmt.Errorf("describe %s: %w", id, err)
		}
		if d.GetWorkflowExecutionInfo().GetStatus() == enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED {
			if _, err := w.Store.ResolveSystemAlert(ctx, a.Key, now); err != nil {
				return err
			}
		}
	}
	return nil
}

// tick raises or resolves the tick's alert.
func (w *SettlementWatch) tick(ctx context.Context, now time.Time, since string) error {
	failed, err := w.list(ctx, fmt.Sprintf(`WorkflowType = '%s' AND `+unsuccessful+` AND CloseTime >= '%s'`, settlementTickType, since))
	if err != nil {
		return err
	}
	var last *workflowExecution
	var cause string
	for _, e := range failed {
		if last != nil && !e.GetCloseTime().AsTime().After(last.GetCloseTime().AsTime()) {
			continue
		}
		c, childFailed := w.tickCause(ctx, e)
		if childFailed {
			continue
		}
		last, cause = e, c
	}
	after := since
	if last != nil {
		after = last.GetCloseTime().AsTime().UTC().Format(time.RFC3339Nano)
	} else if open, err := w.Store.OpenSystemAlert(ctx, tickKey); err != nil {
		return err
	} else if open != nil {
		after = open.RaisedAt.UTC().Format(time.RFC3339Nano)
	}
	completed, err := w.Temporal.CountWorkflow(ctx, &workflowservice.CountWorkflowExecutionsRequest{
		Query: fmt.Sprintf(`WorkflowType = '%s' AND ExecutionStatus = 'Completed' AND CloseTime > '%s'`, settlementTickType, after)})
	if err != nil {
		return fmt.Errorf("count completed settlement ticks: %w", err)
	}
	if completed.GetCount() > 0 {
		_, err := w.Store.ResolveSystemAlert(ctx, tickKey, now)
		return err
	}
	if last == nil {
		return nil
	}
	id := last.GetExecution().GetWorkflowId()
	closed := last.GetCloseTime().AsTime()
	msg := fmt.Sprintf("the settlement schedule's tick %s did not complete: %s at %s UTC: %s. Bills that fall due are "+
		"not being closed; fix the cause (the holiday calendar KOOFLOW_SETTLEMENT_CALENDAR, the database), then wait for "+
		"the next tick or close the period by hand (kooflow settle close)", id, statusWord(last.GetStatus()),
		closed.UTC().Format("2006-01-02 15:04"), cause)
	detail, err := json.Marshal(map[string]any{"workflowId": id, "runId": last.GetExecution().GetRunId(),
		"status": statusWord(last.GetStatus()), "closedAt": closed, "cause": cause})
	if err != nil {
		return fmt.Errorf("encode the settlement-failed detail: %w", err)
	}
	_, err = w.Store.RaiseSystemAlert(ctx, store.SystemAlert{Kind: KindSettlementFailed, Key: tickKey,
		Subject: "settlement schedule", Message: msg, Detail: detail}, now)
	return err
}

// tickCause reads why a tick did not complete, and whether it was because a period's close failed.
func (w *SettlementWatch) tickCause(ctx context.Context, e *workflowExecution) (string, bool) {
	if e.GetStatus() != enumspb.WORKFLOW_EXECUTION_STATUS_FAILED {
		return w.cause(ctx, e.GetExecution().GetWorkflowId(), e.GetExecution().GetRunId(), e.GetStatus()), false
	}
	err := w.result(ctx, e.GetExecution().GetWorkflowId(), e.GetExecution().GetRunId())
	var child *temporal.ChildWorkflowExecutionError
	if errors.As(err, &child) {
		return "", true
	}
	return errorText(err), false
}

// cause is a closed run's failure as a person reads it.
func (w *SettlementWatch) cause(ctx context.Context, id, runID string, status enumspb.WorkflowExecutionStatus) string {
	switch status {
	case enumspb.WORKFLOW_EXECUTION_STATUS_TERMINATED:
		return "terminated (by an operator or a reset)"
	case enumspb.WORKFLOW_EXECUTION_STATUS_TIMED_OUT:
		return "the workflow's run timeout passed"
	}
	return errorText(w.result(ctx, id, runID))
}

func (w *SettlementWatch) result(ctx context.Context, id, runID string) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	return w.Temporal.GetWorkflow(ctx, id, runID).Get(ctx, nil)
}

// errorText is the innermost message of a workflow's failure (the activity's own words), bounded.
func errorText(err error) string {
	if err == nil {
		return "no failure recorded"
	}
	msg := err.Error()
	for u := errors.Unwrap(err); u != nil; u = errors.Unwrap(u) {
		msg = u.Error()
	}
	if len(msg) > 400 {
		msg = msg[:400] + "…"
	}
	return msg
}

func statusWord(s enumspb.WorkflowExecutionStatus) string {
	switch s {
	case enumspb.WORKFLOW_EXECUTION_STATUS_FAILED:
		return "failed"
	case enumspb.WORKFLOW_EXECUTION_STATUS_TIMED_OUT:
		return "timed out"
	case enumspb.WORKFLOW_EXECUTION_STATUS_TERMINATED:
		return "terminated"
	}
	return strings.ToLower(strings.TrimPrefix(s.String(), "WORKFLOW_EXECUTION_STATUS_"))
}
