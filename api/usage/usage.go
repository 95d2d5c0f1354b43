// Package usage serves the usage intake, POST /usage/v1/records: the seller's systems report the usage of
// pay-per-use instances, authenticated with a console token holding the scope "usage" (docs/koogallery.md,
// "Usage intake"; docs/security.md, "Console tokens").
package usage

import (
	"errors"
	"io"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/kooflow/kooflow/api/httpx"
	"github.com/kooflow/kooflow/internal/app"
	"github.com/kooflow/kooflow/internal/config"
	"github.com/kooflow/kooflow/internal/store"
	intake "github.com/kooflow/kooflow/internal/usage"
	"github.com/kooflow/kooflow/usageclient"
)

// Prefix is where the intake's routes are mounted.
const Prefix = "/usage/v1"

// maxBody bounds a request: 1,000 records of a few hundred bytes each, with room to spare.
const maxBody = 4 << 20

// Mount adds POST /usage/v1/records to g, a console group mounted at Prefix.
func Mount(g *httpx.Console, d app.Deps) {
	h := &Handler{Intake: &intake.Intake{Store: &store.Store{Pool: d.Pool}, LateWindow: d.Config.UsageIntake.LateWindow, Now: d.Now}}
	g.POST("/records", config.ScopeUsage, h.Records)
}

// Handler serves the intake.
type Handler struct {
	Intake *intake.Intake
}

// Records takes a batch. A batch that cannot be read answers 400 and stores nothing; a readable batch answers 200
// with a result per record once the accepted ones are stored; a storage failure answers 503 and stores nothing,
// so the batch can be sent again as it is.
func (h *Handler) Records(c *gin.Context) {
	body, err := io.ReadAll(http.MaxBytesReader(c.Writer, c.Request.Body, maxBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			httpx.WriteProblem(c, http.StatusRequestEntityTooLarge, "the body is larger than 4 MiB; send at most 1000 records per call")
			return
		}
		httpx.WriteProblem(c, http.StatusBadRequest, "the body could not be read: "+err.Error())
		return
	}
	raw, err := intake.Decode(body)
	if err != nil {
		httpx.WriteProblem(c, http.StatusBadRequest, err.Error())
		return
	}
	resp, err := h.Intake.Ingest(c.Request.Context(), raw)
	if err != nil {
		httpx.Log(c).Error("usage intake: store failed; nothing of the batch was stored", "records", raw.Len(), "err", err)
		httpx.WriteProblem(c, http.StatusServiceUnavailable, "the usage could not be stored; nothing of this batch was kept, send it again")
		return
	}
	if resp.Refused > 0 {
		httpx.Log(c).Warn("usage intake refused records", "accepted", resp.Accepted, "duplicate", resp.Duplicate,
			"refused", resp.Refused, "first_reason", firstReason(resp.Results))
	}
	c.JSON(http.StatusOK, resp)
}

func firstReason(rs []usageclient.Result) string {
	for _, r := range rs {
		if r.Status == usageclient.Refused {
			return r.ID + ": " + r.Reason
		}
	}
	return ""
}
