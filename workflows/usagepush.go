package workflows

// The hourly usage push (docs/koogallery.md, "Usage push"): a Temporal Schedule starts UsagePush every hour; it
// plans the windows that closed (one set-based activity) and drains the pending records in batches of 1,000
// (activities that loop over batches). Its history does not grow with the number of records or instances: each
// drain call pushes up to drainBatches batches, and after maxDrainCalls calls the run continues as new.

import (
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/kooflow/kooflow/activities"
	"github.com/kooflow/kooflow/internal/usagepush"
)

// UsagePushWorkflowType is the usage push's registered name.
const UsagePushWorkflowType = "UsagePush"

const (
	drainBatches  = 50 // pushes per drain activity: 50,000 records
	maxDrainCalls = 20 // drain activities per run, then continue-as-new
)

// UsagePushInput is a run's input. A scheduled run starts with the zero value; a continued run carries its cutoff
// and skips the planning it already did.
type UsagePushInput struct {
	Cutoff  *time.Time `json:"cutoff,omitempty"`
	Planned bool       `json:"planned,omitempty"`
	// BatchesPerDrain and DrainsPerRun override drainBatches and maxDrainCalls (0: the defaults); a continued
	// run keeps them.
	BatchesPerDrain int `json:"batchesPerDrain,omitempty"`
	DrainsPerRun    int `json:"drainsPerRun,omitempty"`
}

// UsagePushResult is what one run did (a continued run reports its own part).
type UsagePushResult struct {
	Cutoff  time.Time         `json:"cutoff"`
	Planned usagepush.Planned `json:"planned"`
	Drained usagepush.Drained `json:"drained"`
}

// UsagePush plans every window closed by the run's start and pushes every pending record.
func UsagePush(ctx workflow.Context, in UsagePushInput) (UsagePushResult, error) {
	var a *activities.UsagePush
	out := UsagePushResult{Cutoff: workflow.Now(ctx).UTC()}
	if in.Cutoff != nil {
		out.Cutoff = in.Cutoff.UTC()
	}
	if !in.Planned {
		actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
			StartToCloseTimeout: 10 * time.Minute,
			RetryPolicy:         &temporal.RetryPolicy{MaximumAttempts: 10, NonRetryableErrorTypes: []string{activities.ErrUsagePushRefused}},
			Summary:             "plan the closed usage windows",
		})
		if err := workflow.ExecuteActivity(actx, a.UsagePushPlan, activities.UsagePushPlanInput{Cutoff: out.Cutoff}).Get(ctx, &out.Planned); err != nil {
			return out, err
		}
	}
	dctx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 30 * time.Minute,
		HeartbeatTimeout:    2 * time.Minute,
		// The marketplace may be down for a while: retry until the next hour's run is due, which resumes.
		ScheduleToCloseTimeout: 50 * time.Minute,
		RetryPolicy: &temporal.RetryPolicy{InitialInterval: 5 * time.Second, BackoffCoefficient: 2, MaximumInterval: 2 * time.Minute,
			NonRetryableErrorTypes: []string{activities.ErrUsagePushRefused}},
		Summary: "push pending usage records in batches of 1,000",
	})
	batches, drains := drainBatches, maxDrainCalls
	if in.BatchesPerDrain > 0 {
		batches = in.BatchesPerDrain
	}
	if in.DrainsPerRun > 0 {
		drains = in.DrainsPerRun
	}
	for i := 0; i < drains; i++ {
		var d usagepush.Drained
		if err := workflow.ExecuteActivity(dctx, a.UsagePushDrain, activities.UsagePushDrainInput{MaxBatches: batches}).Get(ctx, &d); err != nil {
			return out, err
		}
		out.Drained.Batches += d.Batches
		out.Drained.Accepted += d.Accepted
		out.Drained.Duplicates += d.Duplicates
		out.Drained.Parked += d.Parked
		out.Drained.Refused += d.Refused
		if !d.More {
			return out, nil
		}
	}
	cutoff := out.Cutoff
	return out, workflow.NewContinueAsNewError(ctx, UsagePushWorkflowType, UsagePushInput{Cutoff: &cutoff, Planned: true,
		BatchesPerDrain: in.BatchesPerDrain, DrainsPerRun: in.DrainsPerRun})
}
