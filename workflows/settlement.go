package workflows

// Monthly settlement on Temporal: one workflow per period (workflow ID "settlement/2026-10") that closes the
// period's bills through set-based activities, and a small tick workflow a Temporal Schedule starts on each
// candidate bill day (the schedule itself is created by the worker, see worker.EnsureSettlementSchedule).

import (
	"errors"
	"fmt"
	"sort"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/kooflow/kooflow/activities"
	"github.com/kooflow/kooflow/internal/catalog"
	"github.com/kooflow/kooflow/internal/instance"
	"github.com/kooflow/kooflow/internal/ledger"
	"github.com/kooflow/kooflow/internal/settlement"
)

// Registered names of the settlement workflows.
const (
	SettlementPeriodWorkflowType = "SettlementPeriod"
	SettlementTickWorkflowType   = "SettlementTick"
)

// SettlementWorkflowID is the ID of a period's settlement workflow: one per period, so two closes of the same period can
// never run at once, and operators find a period by its ID or by SettlementPeriod = "2026-10".
func SettlementWorkflowID(period settlement.Period) string { return "settlement/" + period.String() }

// Defaults of a close.
const (
	DefaultSettlementParallelism = 2 // concurrent batch activities: one per core of the database is the sweet spot
	maxSettlementParallelism     = 16
)

// SettlementPeriodInput asks to close a period.
type SettlementPeriodInput struct {
	Period string `json:"period"`
	// ProductTypes to close; empty means all.
	ProductTypes []catalog.ProductType `json:"productTypes,omitempty"`
	RequestedBy  string                `json:"requestedBy,omitempty"`
	// Parallelism is the number of batch activities run at once; BatchSize the instances per batch.
	Parallelism int `json:"parallelism,omitempty"`
	BatchSize   int `json:"batchSize,omitempty"`
}

// SettlementPeriodResult is what a close produced (or, for bills closed before, what it verified).
type SettlementPeriodResult struct {
	Period   string                `json:"period"`
	Computed []catalog.ProductType `json:"computed,omitempty"`
	Verified []catalog.ProductType `json:"verified,omitempty"`
	Batches  int                   `json:"batches"`
	Bills    []ledger.BillSummary  `json:"bills"`
}

// SettlementPeriod closes one period. Its history does not grow with the number of orders: one activity prepares
// the close and plans the batches, Parallelism activities work through the batches (each heartbeats and commits
// batch by batch, so a retry resumes after the last committed batch), one activity finalizes the bills, and
// bills closed earlier are verified against their content hash instead of being recomputed. A re-run of a closed
// period therefore returns the same bills, byte for byte, or fails loudly if they were tampered with.
func SettlementPeriod(ctx workflow.Context, in SettlementPeriodInput) (SettlementPeriodResult, error) {
	out := SettlementPeriodResult{Period: in.Period}
	p, err := settlement.ParsePeriod(in.Period)
	if err != nil {
		return out, temporal.NewNonRetryableApplicationError(err.Error(), activities.ErrSettlementRefused, nil)
	}
	if _, ok := workflow.GetTypedSearchAttributes(ctx).GetKeyword(instance.SASettlementPeriod); !ok {
		if err := workflow.UpsertTypedSearchAttributes(ctx, instance.SASettlementPeriod.ValueSet(p.String())); err != nil {
			return out, fmt.Errorf("set search attribute: %w", err)
		}
	}
	info := workflow.GetInfo(ctx)
	var a *activities.Settlement
	short := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 15 * time.Minute,
		RetryPolicy: &temporal.RetryPolicy{InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: time.Minute,
			MaximumAttempts: 20, NonRetryableErrorTypes: []string{activities.ErrSettlementRefused}},
	})
	var plan ledger.Plan
	err = workflow.ExecuteActivity(short, a.SettlementPrepare, activities.SettlementPrepareInput{
		Period: p.String(), ProductTypes: in.ProductTypes, WorkflowID: info.WorkflowExecution.ID,
		RunID: info.WorkflowExecution.RunID, RequestedBy: in.RequestedBy, BatchSize: in.BatchSize,
	}).Get(ctx, &plan)
	if err != nil {
		return out, err
	}
	out.Computed, out.Verified, out.Batches = plan.Compute, plan.Verify, plan.Batches

	if plan.CloseID != 0 {
		n := in.Parallelism
		if n <= 0 {
			n = DefaultSettlementParallelism
		}
		n = min(n, maxSettlementParallelism, max(plan.Batches, 1))
		batches := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
			StartToCloseTimeout: 6 * time.Hour,
			HeartbeatTimeout:    2 * time.Minute,
			RetryPolicy: &temporal.RetryPolicy{InitialInterval: 2 * time.Second, BackoffCoefficient: 2, MaximumInterval: 2 * time.Minute,
				MaximumAttempts: 20, NonRetryableErrorTypes: []string{activities.ErrSettlementRefused}},
		})
		futures := make([]workflow.Future, n)
		for i := range futures {
			futures[i] = workflow.ExecuteActivity(batches, a.SettlementApplyBatches, plan.CloseID)
		}
		var firstErr error
		for _, f := range futures {
			if err := f.Get(ctx, nil); err != nil && firstErr == nil {
				firstErr = err
			}
		}
		if firstErr != nil {
			return out, firstErr
		}
		var bills []ledger.BillSummary
		if err := workflow.ExecuteActivity(short, a.SettlementFinalize, plan.CloseID).Get(ctx, &bills); err != nil {
			return out, err
		}
		out.Bills = append(out.Bills, bills...)
	}
	if len(plan.Verify) > 0 {
		var bills []ledger.BillSummary
		if err := workflow.ExecuteActivity(short, a.SettlementVerify, activities.SettlementVerifyInput{Period: p.String(), ProductTypes: plan.Verify}).
			Get(ctx, &bills); err != nil {
			return out, err
		}
		out.Bills = append(out.Bills, bills...)
	}
	sort.SliceStable(out.Bills, func(i, j int) bool { return out.Bills[i].ProductType < out.Bills[j].ProductType })
	return out, nil
}

// scheduledStartTime is the search attribute a Temporal Schedule sets on the runs it starts, including
// backfilled ones: the time the run stands for.
var scheduledStartTime = temporal.NewSearchAttributeKeyTime("TemporalScheduledStartTime")

// SettlementTickResult says what one tick did.
type SettlementTickResult struct {
	Date    string                   `json:"date"`
	Due     []activities.DuePeriod   `json:"due,omitempty"`
	Closed  []string                 `json:"closed,omitempty"`
	Skipped []string                 `json:"skipped,omitempty"`
	Results []SettlementPeriodResult `json:"results,omitempty"`
}

// SettlementTick is what the schedule starts on each candidate bill day. Temporal schedules know nothing about
// holidays, so the schedule fires on every day a bill may fall on (the configured day and the two weeks after)
// and the tick asks the holiday calendar whether some bill is due: a period's bill is due on its bill date (the
// first working day on or after the configured day) and stays due until it is closed, so a day missed while the
// worker was down is caught up by the next tick. Each due period is closed by its own period workflow, as a
// child the tick waits for (so the schedule's overlap policy sees the close running).
func SettlementTick(ctx workflow.Context) (SettlementTickResult, error) {
	at := workflow.GetInfo(ctx).WorkflowStartTime
	if t, ok := workflow.GetTypedSearchAttributes(ctx).GetTime(scheduledStartTime); ok && !t.IsZero() {
		at = t
	}
	out := SettlementTickResult{Date: settlement.DateOf(at).String()}
	var a *activities.Settlement
	short := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: time.Minute,
		RetryPolicy:         &temporal.RetryPolicy{MaximumAttempts: 10, NonRetryableErrorTypes: []string{activities.ErrSettlementRefused}},
	})
	if err := workflow.ExecuteActivity(short, a.SettlementDue, at).Get(ctx, &out.Due); err != nil {
		return out, err
	}
	info := workflow.GetInfo(ctx)
	for _, d := range out.Due {
		p, err := settlement.ParsePeriod(d.Period)
		if err != nil {
			return out, temporal.NewNonRetryableApplicationError(err.Error(), activities.ErrSettlementRefused, nil)
		}
		child := workflow.WithChildOptions(ctx, workflow.ChildWorkflowOptions{
			WorkflowID:            SettlementWorkflowID(p),
			TaskQueue:             info.TaskQueueName,
			ParentClosePolicy:     enumspb.PARENT_CLOSE_POLICY_ABANDON,
			WorkflowIDReusePolicy: enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
			TypedSearchAttributes: temporal.NewSearchAttributes(instance.SASettlementPeriod.ValueSet(p.String())),
			StaticSummary:         fmt.Sprintf("close %s for %v (schedule, %s)", p, d.ProductTypes, out.Date),
		})
		var res SettlementPeriodResult
		err = workflow.ExecuteChildWorkflow(child, SettlementPeriodWorkflowType, SettlementPeriodInput{
			Period: p.String(), ProductTypes: d.ProductTypes, RequestedBy: "schedule " + out.Date,
		}).Get(ctx, &res)
		var already *temporal.ChildWorkflowExecutionAlreadyStartedError
		if errors.As(err, &already) {
			out.Skipped = append(out.Skipped, SettlementWorkflowID(p)+" is already running")
			continue
		}
		if err != nil {
			return out, err
		}
		out.Closed = append(out.Closed, SettlementWorkflowID(p))
		out.Results = append(out.Results, res)
	}
	return out, nil
}
