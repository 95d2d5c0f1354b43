package flow

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/kooflow/kooflow/catalog"
	"github.com/kooflow/kooflow/settlement/ledger"
)

func newEnv(t *testing.T) *testsuite.TestWorkflowEnvironment {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	RegisterWorkflows(env)
	env.RegisterActivity(&Activities{})
	return env
}

func TestPeriodWorkflowComputesAndVerifies(t *testing.T) {
	env := newEnv(t)
	var a *Activities
	env.OnActivity(a.SettlementPrepare, mock.Anything, mock.MatchedBy(func(in PrepareInput) bool {
		return in.Period == "2026-10" && in.WorkflowID != "" && in.RunID != ""
	})).Return(ledger.Plan{CloseID: 7, Period: "2026-10", Compute: []catalog.ProductType{catalog.General},
		Verify: []catalog.ProductType{catalog.JointOperation}, Batches: 11}, nil).Once()
	env.OnActivity(a.SettlementApplyBatches, mock.Anything, int64(7)).Return(int64(500), nil).Times(3)
	env.OnActivity(a.SettlementFinalize, mock.Anything, int64(7)).
		Return([]ledger.BillSummary{{Period: "2026-10", ProductType: catalog.General, Status: ledger.StatusFinal, ContentHash: "g"}}, nil).Once()
	env.OnActivity(a.SettlementVerify, mock.Anything, VerifyInput{Period: "2026-10", ProductTypes: []catalog.ProductType{catalog.JointOperation}}).
		Return([]ledger.BillSummary{{Period: "2026-10", ProductType: catalog.JointOperation, Status: ledger.StatusFinal, ContentHash: "j"}}, nil).Once()

	env.ExecuteWorkflow(PeriodWorkflowName, PeriodInput{Period: "2026-10", Parallelism: 3})
	if !env.IsWorkflowCompleted() || env.GetWorkflowError() != nil {
		t.Fatalf("workflow: completed=%v err=%v", env.IsWorkflowCompleted(), env.GetWorkflowError())
	}
	var res PeriodResult
	if err := env.GetWorkflowResult(&res); err != nil {
		t.Fatal(err)
	}
	if len(res.Bills) != 2 || res.Bills[0].ProductType != catalog.General || res.Bills[1].ContentHash != "j" || res.Batches != 11 {
		t.Fatalf("result %+v", res)
	}
	env.AssertExpectations(t)
}

func TestPeriodWorkflowDoesNotRetryARefusal(t *testing.T) {
	env := newEnv(t)
	var a *Activities
	env.OnActivity(a.SettlementPrepare, mock.Anything, mock.Anything).Return(ledger.Plan{},
		temporal.NewNonRetryableApplicationError("period 2026-12 has not ended yet", RefusedErrorType, nil, ledger.CodePeriodNotEnded)).Once()
	env.ExecuteWorkflow(PeriodWorkflowName, PeriodInput{Period: "2026-12"})
	var appErr *temporal.ApplicationError
	if err := env.GetWorkflowError(); !errors.As(err, &appErr) || appErr.Type() != RefusedErrorType {
		t.Fatalf("want the refusal, got %v", err)
	}
	env.AssertExpectations(t)
}

func TestPeriodWorkflowRejectsABadPeriod(t *testing.T) {
	env := newEnv(t)
	env.ExecuteWorkflow(PeriodWorkflowName, PeriodInput{Period: "October"})
	var appErr *temporal.ApplicationError
	if err := env.GetWorkflowError(); !errors.As(err, &appErr) || appErr.Type() != RefusedErrorType {
		t.Fatalf("want a refusal, got %v", err)
	}
}

func TestPeriodWorkflowRetriesBatchesAfterAFailure(t *testing.T) {
	env := newEnv(t)
	var a *Activities
	env.OnActivity(a.SettlementPrepare, mock.Anything, mock.Anything).
		Return(ledger.Plan{CloseID: 1, Period: "2026-10", Compute: []catalog.ProductType{catalog.General}, Batches: 1}, nil)
	calls := 0
	env.OnActivity(a.SettlementApplyBatches, mock.Anything, int64(1)).Return(func(context.Context, int64) (int64, error) {
		calls++
		if calls == 1 {
			return 0, errors.New("connection reset by peer")
		}
		return 10, nil
	})
	env.OnActivity(a.SettlementFinalize, mock.Anything, int64(1)).Return([]ledger.BillSummary{{Period: "2026-10"}}, nil)
	env.ExecuteWorkflow(PeriodWorkflowName, PeriodInput{Period: "2026-10"})
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	if calls != 2 {
		t.Fatalf("one batch activity for one batch, retried once: %d calls", calls)
	}
}

func stubPeriod(ctx workflow.Context, in PeriodInput) (PeriodResult, error) {
	return PeriodResult{Period: in.Period, Computed: in.ProductTypes}, nil
}

func TestTickClosesWhatIsDueForTheScheduledDate(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	env.RegisterWorkflowWithOptions(TickWorkflow, workflow.RegisterOptions{Name: TickWorkflowName})
	env.RegisterWorkflowWithOptions(stubPeriod, workflow.RegisterOptions{Name: PeriodWorkflowName})
	env.RegisterActivity(&Activities{})
	// A backfilled run stands for 2026-11-09 although it runs now.
	scheduled := time.Date(2026, 11, 9, 2, 0, 0, 0, time.UTC)
	if err := env.SetTypedSearchAttributesOnStart(temporal.NewSearchAttributes(scheduledStartTime.ValueSet(scheduled))); err != nil {
		t.Fatal(err)
	}
	var a *Activities
	env.OnActivity(a.SettlementDue, mock.Anything, mock.MatchedBy(func(at time.Time) bool { return at.Equal(scheduled) })).
		Return([]DuePeriod{{Period: "2026-10", ProductTypes: []catalog.ProductType{catalog.General}, BillDates: []string{"2026-11-09"}}}, nil).Once()
	env.ExecuteWorkflow(TickWorkflowName)
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	var res TickResult
	if err := env.GetWorkflowResult(&res); err != nil {
		t.Fatal(err)
	}
	if res.Date != "2026-11-09" || len(res.Closed) != 1 || res.Closed[0] != "settlement/2026-10" ||
		len(res.Results) != 1 || res.Results[0].Computed[0] != catalog.General {
		t.Fatalf("tick result %+v", res)
	}
	env.AssertExpectations(t)
}

func TestTickWithNothingDueStartsNothing(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	env.RegisterWorkflowWithOptions(TickWorkflow, workflow.RegisterOptions{Name: TickWorkflowName})
	started := false
	env.RegisterWorkflowWithOptions(func(ctx workflow.Context, in PeriodInput) (PeriodResult, error) {
		started = true
		return PeriodResult{}, nil
	}, workflow.RegisterOptions{Name: PeriodWorkflowName})
	env.RegisterActivity(&Activities{})
	var a *Activities
	env.OnActivity(a.SettlementDue, mock.Anything, mock.Anything).Return([]DuePeriod(nil), nil).Once()
	env.ExecuteWorkflow(TickWorkflowName)
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	if started {
		t.Fatal("a period workflow was started on a day nothing was due")
	}
}

func TestScheduleSpecCoversEveryCandidateDay(t *testing.T) {
	spec := ScheduleSpec(ScheduleConfig{TaskQueue: "q", Hour: 10, Days: []int{3, 7}})
	c := spec.Calendars[0]
	if spec.TimeZoneName != "Asia/Shanghai" || c.Hour[0].Start != 10 || c.DayOfMonth[0].Start != 3 || c.DayOfMonth[0].End != 21 {
		t.Fatalf("spec %+v", spec)
	}
	late := ScheduleSpec(ScheduleConfig{Hour: 0, Days: []int{28}})
	if late.Calendars[0].DayOfMonth[0].End != 31 {
		t.Fatalf("days past the month's end: %+v", late.Calendars[0].DayOfMonth)
	}
}
