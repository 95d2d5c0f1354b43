package workflows

import (
	"fmt"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/kooflow/kooflow/activities"
	"github.com/kooflow/kooflow/internal/instance"
)

// usageFlushChange marks the lifecycle code that pushes a pay-per-use instance's usage before its release
// completes; histories recorded before it take the old path.
const usageFlushChange = "usage-final-flush"

// Charging modes of pay-per-use instances (orderLine.chargingMode).
const (
	chargingOnDemand    = "ON_DEMAND"
	chargingOnDemandPkg = "ON_DEMAND_PKG"
)

// payPerUse reports a pay-per-use product, whose usage the marketplace charges.
func payPerUse(p instance.Product) bool {
	return p.ChargingMode == chargingOnDemand || p.ChargingMode == chargingOnDemandPkg
}

// flushUsage pushes a pay-per-use instance's usage up to the time its release was accepted (the running hour's
// window ends there), so the release completes with the customer's usage charged. It returns a clause for the
// release event. The release is not held forever: if the marketplace stays unreachable past the flush's budget,
// the records stay pending and the hourly push sends them; a parked instance's records wait for an operator with
// their alert.
func (r *run) flushUsage(ctx workflow.Context, st *instance.Step) string {
	if !payPerUse(r.s.Product) {
		return ""
	}
	if workflow.GetVersion(ctx, usageFlushChange, workflow.DefaultVersion, 1) == workflow.DefaultVersion {
		return ""
	}
	until := st.AcceptedAt
	if until.IsZero() {
		until = workflow.Now(ctx)
	}
	var ua *activities.UsagePush
	actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout:    10 * time.Minute,
		HeartbeatTimeout:       2 * time.Minute,
		ScheduleToCloseTimeout: 30 * time.Minute,
		RetryPolicy: &temporal.RetryPolicy{InitialInterval: 2 * time.Second, BackoffCoefficient: 2, MaximumInterval: time.Minute,
			NonRetryableErrorTypes: []string{activities.ErrUsagePushRefused}},
		Summary: "push the usage of instance " + r.in.InstanceID + " up to its release",
	})
	var res activities.UsagePushFlushResult
	err := workflow.ExecuteActivity(actx, ua.UsagePushFlush, activities.UsagePushFlushInput{InstanceID: r.in.InstanceID, Until: until.UTC()}).
		Get(ctx, &res)
	if err != nil {
		r.log.Warn("final usage push failed; the hourly push sends what is pending", "instance_id", r.in.InstanceID, "err", err)
		return "; the final usage push failed (" + err.Error() + "), the hourly push sends what is pending"
	}
	t := res.Totals
	s := fmt.Sprintf("; usage up to the release pushed: %s charged of %s ingested", t.Pushed.StringFixed(4), t.Ingested.StringFixed(4))
	switch {
	case t.Parked:
		s += fmt.Sprintf(", %d records held while the instance's usage push is parked", t.Pending)
	case t.Pending > 0:
		s += fmt.Sprintf(", %d records pending", t.Pending)
	}
	if t.Refused.IsPositive() {
		s += ", " + t.Refused.StringFixed(4) + " refused by the marketplace"
	}
	return s
}
