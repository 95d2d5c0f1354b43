package workflows

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/kooflow/kooflow/activities"
	"github.com/kooflow/kooflow/internal/catalog"
	"github.com/kooflow/kooflow/internal/ledger"
)

func newEnv(t *testing.T) *testsuite.TestWorkflowEnvironment {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	registerForTest(env, LifecycleConfig{})
	env.RegisterActivity(&activities.Settlement{})
	return env
}

func TestPeriodWorkflowComputesAndVerifies(t *testing.T) {
	env := newEnv(t)
	var a *activities.Settlement
	env.OnActivity(a.SettlementPrepare, mock.Anything, mock.MatchedBy(func(in activities.SettlementPrepareInput) bool {
		return in.Period == "2026-10" && in.WorkflowID != "" && in.RunID != ""
	})).Return(ledger.Plan{CloseID: 7, Period: "2026-10", Compute: []catalog.ProductType{catalog.General},
		Verify: []catalog.ProductType{catalog.JointOperation}, Batches: 11}, nil).Once()
	env.OnActivity(a.SettlementApplyBatches, mock.Anything, int64(7)).Return(int64(500), nil).Times(3)
	env.OnActivity(a.SettlementFinalize, mock.Anything, int64(7)).
		Return([]ledger.BillSummary{{Period: "2026-10", ProductType: catalog.General, Status: ledger.StatusFinal, ContentHash: "g"}}, nil).Once()
	env.OnActivity(a.SettlementVerify, mock.Anything, activities.SettlementVerifyInput{Period: "2026-10", ProductTypes: []catalog.ProductType{catalog.JointOperation}}).
		Return([]ledger.BillSummary{{Period: "2026-10", ProductType: catalog.JointOperation, Status: ledger.StatusFinal, ContentHash: "j"}}, nil).Once()

	env.ExecuteWorkflow(SettlementPeriodWorkflowType, SettlementPeriodInput{Period: "2026-10", Parallelism: 3})
	if !env.IsWorkflowCompleted() || env.GetWorkflowError() != nil {
		t.Fatalf("workflow: completed=%v err=%v", env.IsWorkflowCompleted(), env.GetWorkflowError())
	}
	var res SettlementPeriodResult
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
	var a *activities.Settlement
	env.OnActivity(a.SettlementPrepare, mock.Anything, mock.Anything).Return(ledger.Plan{},
		temporal.NewNonRetryableApplicationError("period 2026-12 has not ended yet", activities.ErrSettlementRefused, nil, ledger.CodePeriodNotEnded)).Once()
	env.ExecuteWorkflow(SettlementPeriodWorkflowType, SettlementPeriodInput{Period: "2026-12"})
	var appErr *temporal.ApplicationError
	if err := env.GetWorkflowError(); !errors.As(err, &appErr) || appErr.Type() != activities.ErrSettlementRefused {
		t.Fatalf("want the refusal, got %v", err)
	}
	env.AssertExpectations(t)
}

func TestPeriodWorkflowRejectsABadPeriod(t *testing.T) {
	env := newEnv(t)
	env.ExecuteWorkflow(SettlementPeriodWorkflowType, SettlementPeriodInput{Period: "October"})
	var appErr *temporal.ApplicationError
	if err := env.GetWorkflowError(); !errors.As(err, &appErr) || appErr.Type() != activities.ErrSettlementRefused {
		t.Fatalf("want a refusal, got %v", err)
	}
}

func TestPeriodWorkflowRetriesBatchesAfterAFailure(t *testing.T) {
	env := newEnv(t)
	var a *activities.Settlement
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
	env.ExecuteWorkflow(SettlementPeriodWorkflowType, SettlementPeriodInput{Period: "2026-10"})
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	if calls != 2 {
		t.Fatalf("one batch activity for one batch, retried once: %d calls", calls)
	}
}

func stubPeriod(ctx workflow.Context, in SettlementPeriodInput) (SettlementPeriodResult, error) {
	return SettlementPeriodResult{Period: in.Period, Computed: in.ProductTypes}, nil
}

func TestTickClosesWhatIsDueForTheScheduledDate(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	env.RegisterWorkflowWithOptions(SettlementTick, workflow.RegisterOptions{Name: SettlementTickWorkflowType})
	env.RegisterWorkflowWithOptions(stubPeriod, workflow.RegisterOptions{Name: SettlementPeriodWorkflowType})
	env.RegisterActivity(&activities.Settlement{})
	// A backfilled run stands for 2026-11-09 although it runs now.
	scheduled := time.Date(2026, 11, 9, 2, 0, 0, 0, time.UTC)
	if err := env.SetTypedSearchAttributesOnStart(temporal.NewSearchAttributes(scheduledStartTime.ValueSet(scheduled))); err != nil {
		t.Fatal(err)
	}
	var a *activities.Settlement
	env.OnActivity(a.SettlementDue, mock.Anything, mock.MatchedBy(func(at time.Time) bool { return at.Equal(scheduled) })).
		Return([]activities.DuePeriod{{Period: "2026-10", ProductTypes: []catalog.ProductType{catalog.General}, BillDates: []string{"2026-11-09"}}}, nil).Once()
	env.ExecuteWorkflow(SettlementTickWorkflowType)
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	var res SettlementTickResult
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
	env.RegisterWorkflowWithOptions(SettlementTick, workflow.RegisterOptions{Name: SettlementTickWorkflowType})
	started := false
	env.RegisterWorkflowWithOptions(func(ctx workflow.Context, in SettlementPeriodInput) (SettlementPeriodResult, error) {
		started = true
		return SettlementPeriodResult{}, nil
	}, workflow.RegisterOptions{Name: SettlementPeriodWorkflowType})
	env.RegisterActivity(&activities.Settlement{})
	var a *activities.Settlement
	env.OnActivity(a.SettlementDue, mock.Anything, mock.Anything).Return([]activities.DuePeriod(nil), nil).Once()
	env.ExecuteWorkflow(SettlementTickWorkflowType)
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	if started {
		t.Fatal("a period workflow was started on a day nothing was due")
	}
}
