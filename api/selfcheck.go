package api

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"
	"go.temporal.io/sdk/client"

	"github.com/kooflow/kooflow/activities"
	"github.com/kooflow/kooflow/api/httpx"
	"github.com/kooflow/kooflow/internal/app"
	"github.com/kooflow/kooflow/internal/config"
	"github.com/kooflow/kooflow/internal/store"
	"github.com/kooflow/kooflow/workflows"
)

// mountSelfCheck adds POST /console/v1/selfcheck, which runs the SelfCheck workflow end to end (API → Temporal →
// worker → PostgreSQL) and answers with what the activity wrote, and GET /console/v1/selfcheck/:runId.
func mountSelfCheck(console *httpx.Console, d app.Deps) {
	st := &store.Store{Pool: d.Pool}
	console.POST("/selfcheck", config.ScopeOperate, func(c *gin.Context) {
		in := activities.SelfCheckInput{
			RunID:       uuid.NewString(),
			RequestedBy: httpx.ActorName(c),
			RequestedAt: time.Now().UTC(),
		}
		wfID := "selfcheck/" + in.RunID
		run, err := d.Temporal.ExecuteWorkflow(c.Request.Context(), client.StartWorkflowOptions{
			ID:                       wfID,
			TaskQueue:                d.Config.TaskQueue,
			WorkflowExecutionTimeout: time.Minute,
			StaticSummary:            "self-check requested by " + in.RequestedBy,
		}, workflows.SelfCheckWorkflowType, in)
		if err != nil {
			httpx.Log(c).Error("start self-check", "err", err)
			httpx.WriteProblem(c, http.StatusServiceUnavailable, "could not start the self-check workflow in Temporal: "+err.Error())
			return
		}
		ctx, cancel := context.WithTimeout(c.Request.Context(), 15*time.Second)
		defer cancel()
		var out activities.SelfCheckResult
		if err := run.Get(ctx, &out); err != nil {
			httpx.Log(c).Error("self-check did not complete", "workflow_id", wfID, "err", err)
			httpx.WriteProblem(c, http.StatusGatewayTimeout,
				"the self-check workflow "+wfID+" did not complete; is a worker running on task queue "+d.Config.TaskQueue+"? ("+err.Error()+")")
			return
		}
		c.JSON(http.StatusCreated, gin.H{
			"runId": out.RunID, "workflowId": wfID, "temporalRunId": run.GetRunID(),
			"writtenAt": out.WrittenAt, "worker": out.Worker,
		})
	})
	console.GET("/selfcheck/:runId", config.ScopeRead, func(c *gin.Context) {
		id := c.Param("runId")
		if _, err := uuid.Parse(id); err != nil {
			httpx.WriteProblem(c, http.StatusBadRequest, "runId must be a UUID", httpx.FieldError{Field: "runId", Detail: err.Error()})
			return
		}
		run, err := st.SelfCheck(c.Request.Context(), id)
		if errors.Is(err, store.ErrNoSelfCheckRun) {
			httpx.WriteProblem(c, http.StatusNotFound, "no self-check run "+id)
			return
		}
		if err != nil {
			httpx.Log(c).Error("read self-check", "err", err)
			httpx.WriteProblem(c, http.StatusInternalServerError, "could not read the self-check row")
			return
		}
		c.JSON(http.StatusOK, gin.H{"runId": run.RunID, "requestedBy": run.RequestedBy,
			"requestedAt": run.RequestedAt, "writtenAt": run.WrittenAt, "worker": run.Worker})
	})
}
