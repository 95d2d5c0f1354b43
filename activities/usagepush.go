package activities

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/kooflow/kooflow/internal/usagepush"
)

// ErrUsagePushRefused is the error type of a usage push that retrying cannot cure: the marketplace refused the
// request itself (signature, credentials, format), or no push client is configured.
const ErrUsagePushRefused = "UsagePushRefused"

// UsagePush holds the usage push's activities (docs/koogallery.md, "Usage push"). Their names carry the UsagePush
// prefix, unique among the worker's activities.
type UsagePush struct {
	Store *usagepush.Store
	// Pusher pushes to the marketplace; nil when no key or endpoint is configured, which fails every push with a
	// message that says so while planning goes on.
	Pusher *usagepush.Pusher
	Log    *slog.Logger
	// Now is the clock of record_time; time.Now if nil.
	Now func() time.Time
}

// UsagePushPlanInput asks to plan every instance's windows closed by Cutoff.
type UsagePushPlanInput struct {
	Cutoff time.Time `json:"cutoff"`
}

// UsagePushPlan plans the records of every window closed by the cutoff that has usage not yet planned: the
// windows missed by runs that did not happen included, since the planning reads from where the last one stopped.
func (a *UsagePush) UsagePushPlan(ctx context.Context, in UsagePushPlanInput) (usagepush.Planned, error) {
	p, err := a.Store.PlanWindows(ctx, usagepush.Plan{Cutoff: in.Cutoff, RecordTime: a.now()})
	if err != nil {
		return p, err
	}
	a.log().InfoContext(ctx, "usage windows planned", "cutoff", in.Cutoff, "records", p.Records, "value", p.Value)
	return p, nil
}

// UsagePushDrainInput bounds one drain.
type UsagePushDrainInput struct {
	// InstanceID drains one instance; empty drains all.
	InstanceID string `json:"instanceId,omitempty"`
	// MaxBatches is the most pushes of this call (0: until nothing is pending).
	MaxBatches int `json:"maxBatches,omitempty"`
}

// UsagePushDrain pushes pending records in batches of at most 1,000, oldest window first, heartbeating after each
// push. A push that fails as a whole fails the activity (retried by Temporal unless the marketplace refused the
// request itself); what was pushed before it stays pushed.
func (a *UsagePush) UsagePushDrain(ctx context.Context, in UsagePushDrainInput) (usagepush.Drained, error) {
	if a.Pusher == nil {
		return usagepush.Drained{}, temporal.NewNonRetryableApplicationError(
			"the usage push is not configured: set KOOGALLERY_ACCESS_KEY and KOOGALLERY_API_ENDPOINT", ErrUsagePushRefused, nil)
	}
	d, err := a.Pusher.Drain(ctx, in.InstanceID, in.MaxBatches, func(d usagepush.Drained) {
		if activity.IsActivity(ctx) {
			activity.RecordHeartbeat(ctx, d)
		}
	})
	if err != nil {
		var fe *usagepush.FailedError
		if errors.As(err, &fe) && !fe.Retryable {
			return d, temporal.NewNonRetryableApplicationError(err.Error(), ErrUsagePushRefused, err)
		}
		return d, err
	}
	a.log().InfoContext(ctx, "usage pushed", "instance_id", in.InstanceID, "batches", d.Batches, "accepted", d.Accepted,
		"duplicates", d.Duplicates, "parked", d.Parked, "refused", d.Refused, "more", d.More)
	return d, nil
}

// UsagePushFlushInput asks for the final flush of one instance's usage up to a time (its release).
type UsagePushFlushInput struct {
	InstanceID string    `json:"instanceId"`
	Until      time.Time `json:"until"`
}

// UsagePushFlushResult is what the flush pushed and where the instance's usage stands after it.
type UsagePushFlushResult struct {
	Planned usagepush.Planned `json:"planned"`
	Drained usagepush.Drained `json:"drained"`
	Totals  usagepush.Totals  `json:"totals"`
}

// UsagePushFlush plans every window of the instance that started before Until (the running one ends at Until)
// and pushes them. A parked instance's records stay pending, with the alert already raised; the result says so.
func (a *UsagePush) UsagePushFlush(ctx context.Context, in UsagePushFlushInput) (UsagePushFlushResult, error) {
	var out UsagePushFlushResult
	if in.InstanceID == "" {
		return out, temporal.NewNonRetryableApplicationError("the final usage flush needs an instance id", ErrUsagePushRefused, nil)
	}
	var err error
	out.Planned, err = a.Store.PlanWindows(ctx, usagepush.Plan{Cutoff: in.Until, Partial: true, InstanceID: in.InstanceID, RecordTime: a.now()})
	if err != nil {
		return out, err
	}
	if out.Drained, err = a.UsagePushDrain(ctx, UsagePushDrainInput{InstanceID: in.InstanceID}); err != nil {
		return out, err
	}
	if out.Totals, err = a.Store.InstanceTotals(ctx, in.InstanceID); err != nil {
		return out, err
	}
	a.log().InfoContext(ctx, "final usage flush", "instance_id", in.InstanceID, "until", in.Until,
		"ingested", out.Totals.Ingested, "pushed", out.Totals.Pushed, "pending", out.Totals.Pending, "parked", out.Totals.Parked)
	return out, nil
}

func (a *UsagePush) now() time.Time {
	if a.Now != nil {
		return a.Now().UTC()
	}
	return time.Now().UTC()
}

func (a *UsagePush) log() *slog.Logger {
	if a.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return a.Log
}
