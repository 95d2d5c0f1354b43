package workflows

import (
	"fmt"
	"time"

	"go.temporal.io/sdk/workflow"

	"github.com/kooflow/kooflow/activities"
	"github.com/kooflow/kooflow/internal/instance"
	"github.com/kooflow/kooflow/internal/lifecycle"
)

// kitStep delivers one Kit change to the seller's systems with the provisioning retry policy, parking like a
// provisioning stage when retries cannot help, and records it on the timeline. It is given up once the
// instance's release is accepted (the Kit data goes with the instance).
func (r *run) kitStep(ctx workflow.Context, st *instance.Step) {
	c := st.Kit
	if c == nil {
		r.log.Error("Kit step without its change; dropped", "step", st.ID)
		return
	}
	var res activities.DeliverKitResult
	stage := fmt.Sprintf("deliver %s change %d", c.Kind, c.DeliveryID)
	out := r.attempt(ctx, st, stage, true, func(ctx workflow.Context) error {
		actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
			StartToCloseTimeout: time.Minute, RetryPolicy: provisionRetry,
			Summary: fmt.Sprintf("deliver Kit %s %s of tenant %s to the seller", c.Call, c.Flag, c.TenantID),
		})
		return workflow.ExecuteActivity(actx, la.DeliverKit, activities.DeliverKitInput{
			InstanceID: r.in.InstanceID, DeliveryID: c.DeliveryID, Target: r.s.Product.Provisioning, TestFlag: r.in.TestFlag,
		}).Get(ctx, &res)
	})
	summary := fmt.Sprintf("Kit %s (%s) of tenant %s: ", c.Call, c.Flag, c.TenantID)
	switch {
	case out != done:
		summary += "delivery " + outcomeText(out)
	case res.Skipped:
		summary += "nothing left to deliver"
	default:
		summary += "delivered to the seller (" + res.Provisioner + ")"
	}
	r.record(ctx, r.write("record Kit change "+st.ID, r.event(ctx, st.ID+":kit", "kit-"+c.Kind, lifecycle.Marketplace, summary, c)))
}
