package webconsole

import (
	"fmt"
	"net/http"

	"github.com/gin-gonic/gin"
	"github.com/shopspring/decimal"

	"github.com/kooflow/kooflow/api/console"
	"github.com/kooflow/kooflow/api/httpx"
	"github.com/kooflow/kooflow/internal/instance"
)

// The forms' actions: each builds the JSON API's body from the form and calls the same console.Actions function,
// then returns to the page it came from. The form's idempotency key makes a resubmitted form apply once.

func (c *Console) supervise(ctx *gin.Context) {
	id := ctx.Param("id")
	b := console.SupervisionBody{Step: ctx.PostForm("step"), Note: ctx.PostForm("note")}
	if _, err := c.actions.Supervise(ctx.Request.Context(), token(ctx), id, b, ctx.PostForm("key")); err != nil {
		c.actionFailed(ctx, err)
		return
	}
	back(ctx, Prefix+"/instances/"+id, b.Step)
}

func (c *Console) decideRefund(ctx *gin.Context) {
	id := ctx.Param("id")
	b := console.DecisionBody{Decision: ctx.PostForm("decision"), Note: ctx.PostForm("note")}
	if a := ctx.PostForm("amount"); a != "" && b.Decision == instance.RefundApproveAction {
		d, err := decimal.NewFromString(a)
		if err != nil {
			c.fail(ctx, 400, c.cat(ctx).T("err.amount"))
			return
		}
		b.Amount = &d
	}
	if _, err := c.actions.DecideRefund(ctx.Request.Context(), token(ctx), id, ctx.Param("refundId"), b, ctx.PostForm("key")); err != nil {
		c.actionFailed(ctx, err)
		return
	}
	back(ctx, Prefix+"/instances/"+id, "refund-"+b.Decision)
}

func (c *Console) operate(ctx *gin.Context) {
	id := ctx.Param("id")
	b := console.OperatorBody{Action: ctx.PostForm("action"), Note: ctx.PostForm("note")}
	if b.Action == instance.OperatorSkip && b.Note == "" {
		c.fail(ctx, 400, c.cat(ctx).T("err.skipReason"))
		return
	}
	if _, err := c.actions.Operate(ctx.Request.Context(), token(ctx), id, b, ctx.PostForm("key")); err != nil {
		c.actionFailed(ctx, err)
		return
	}
	back(ctx, Prefix+"/instances/"+id, "operator-"+b.Action)
}

// resumeUsage resumes a parked usage push through the same function as `kooflow usage resume`.
func (c *Console) resumeUsage(ctx *gin.Context) {
	id := ctx.Param("id")
	was, err := c.usage.Resume(ctx.Request.Context(), id)
	if err != nil {
		c.internal(ctx, "resume usage push", err)
		return
	}
	if !was {
		c.fail(ctx, http.StatusConflict, fmt.Sprintf(c.cat(ctx).T("usage.notParked"), id))
		return
	}
	httpx.Log(ctx).Info("usage push resumed", "instance_id", id, "token", token(ctx).Name)
	back(ctx, Prefix+"/instances/"+id, "usage-resumed")
}
