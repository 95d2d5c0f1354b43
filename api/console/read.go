package console

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/kooflow/kooflow/api/httpx"
	"github.com/kooflow/kooflow/internal/instance"
	"github.com/kooflow/kooflow/internal/store"
)

// InstanceDetail is GET /instances/:id.
type InstanceDetail struct {
	store.Instance
	Orders   []store.Order   `json:"orders"`
	Timeline []store.Event   `json:"timeline"`
	Refunds  []store.Refund  `json:"refunds"`
	Alerts   []store.Alert   `json:"alerts"`
	Parkings []store.Parking `json:"parkings"`
	// Live is the workflow's own state (?live=true): the queued steps and the parked one. Each such query is a
	// billed Temporal action, so it is opt-in.
	Live      *instance.Carry `json:"live,omitempty"`
	LiveError string          `json:"liveError,omitempty"`
}

var (
	lifecycles   = []string{"PROVISIONING", "ACTIVE", "FROZEN", "RELEASED"}
	supervisions = []string{"UNKNOWN", "NOT_INVOLVED", "AWAITING_REQUIREMENT", "AWAITING_CONFIRMATION", "IN_SERVICE",
		"AWAITING_ACCEPTANCE", "COMPLETED"}
)

// list: GET /instances?lifecycle=&supervision=&parked=&productId=&orderId=&customerId=&testFlag=&expiresBefore=
// &expiresAfter=&limit=&cursor=
func (h *handlers) list(c *gin.Context) {
	var f store.InstanceFilter
	var problems []httpx.FieldError
	bad := func(field, detail string) {
		problems = append(problems, httpx.FieldError{Field: field, Detail: detail})
	}
	oneOf := func(field string, allowed []string, into *string) {
		if v := c.Query(field); v != "" {
			if !slices.Contains(allowed, v) {
				bad(field, "must be one of "+strings.Join(allowed, ", "))
				return
			}
			*into = v
		}
	}
	oneOf("lifecycle", lifecycles, &f.Lifecycle)
	oneOf("supervision", supervisions, &f.Supervision)
	for _, q := range []struct {
		field string
		into  *string
	}{{"productId", &f.ProductID}, {"orderId", &f.OrderID}, {"customerId", &f.CustomerID}} {
		if v := c.Query(q.field); v != "" {
			if len(v) > 64 {
				bad(q.field, "must be at most 64 characters")
				continue
			}
			*q.into = v
		}
	}
	for _, q := range []struct {
		field string
		into  **bool
	}{{"parked", &f.Parked}, {"testFlag", &f.TestFlag}} {
		if v := c.Query(q.field); v != "" {
			b, err := strconv.ParseBool(v)
			if err != nil {
				bad(q.field, "must be true or false")
				continue
			}
			*q.into = &b
		}
	}
	for _, q := range []struct {
		field string
		into  **time.Time
	}{{"expiresBefore", &f.ExpiresBefore}, {"expiresAfter", &f.ExpiresAfter}} {
		if v := c.Query(q.field); v != "" {
			t, err := time.Parse(time.RFC3339Nano, v)
			if err != nil {
				bad(q.field, "must be an RFC 3339 time such as 2026-12-01T00:00:00Z")
				continue
			}
			*q.into = &t
		}
	}
	f.Limit = 50
	if v := c.Query("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 500 {
			bad("limit", "must be a whole number from 1 to 500")
		}
		f.Limit = n
	}
	f.Cursor = c.Query("cursor")
	if len(problems) > 0 {
		httpx.WriteProblem(c, http.StatusBadRequest, "invalid instance filter", problems...)
		return
	}
	page, err := h.store.ListInstances(c.Request.Context(), f)
	if errors.Is(err, store.ErrBadCursor) {
		httpx.WriteProblem(c, http.StatusBadRequest, "invalid instance filter",
			httpx.FieldError{Field: "cursor", Detail: "is not a cursor this API returned"})
		return
	}
	if err != nil {
		h.internal(c, "list instances", err)
		return
	}
	c.JSON(http.StatusOK, page)
}

// get: GET /instances/:id[?live=true]
func (h *handlers) get(c *gin.Context) {
	id := c.Param("id")
	ctx := c.Request.Context()
	inst, err := h.store.Instance(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		httpx.WriteProblem(c, http.StatusNotFound, "no instance "+id)
		return
	}
	if err != nil {
		h.internal(c, "read instance", err)
		return
	}
	d := InstanceDetail{Instance: inst}
	if d.Orders, err = h.store.Orders(ctx, id); err != nil {
		h.internal(c, "read orders", err)
		return
	}
	if d.Timeline, err = h.store.Timeline(ctx, id); err != nil {
		h.internal(c, "read timeline", err)
		return
	}
	if d.Refunds, err = h.store.Refunds(ctx, id); err != nil {
		h.internal(c, "read refunds", err)
		return
	}
	if d.Alerts, err = h.store.Alerts(ctx, store.AlertFilter{InstanceID: id, Limit: 1000}); err != nil {
		h.internal(c, "read alerts", err)
		return
	}
	if d.Parkings, err = h.store.Parkings(ctx, id); err != nil {
		h.internal(c, "read parkings", err)
		return
	}
	if live, _ := strconv.ParseBool(c.Query("live")); live {
		qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		var s instance.Carry
		if err := h.instances.Query(qctx, id, instance.QueryState, &s); err == nil {
			d.Live = &s
		} else {
			d.LiveError = "the workflow did not answer the state query: " + err.Error()
		}
	}
	c.JSON(http.StatusOK, d)
}

// alerts: GET /alerts?open=true&kind=&limit=
func (h *handlers) alerts(c *gin.Context) {
	f := store.AlertFilter{OpenOnly: true, Kind: c.Query("kind"), Limit: 100}
	if v := c.Query("open"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			httpx.WriteProblem(c, http.StatusBadRequest, "invalid alert filter", httpx.FieldError{Field: "open", Detail: "must be true or false"})
			return
		}
		f.OpenOnly = b
	}
	if v := c.Query("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			httpx.WriteProblem(c, http.StatusBadRequest, "invalid alert filter", httpx.FieldError{Field: "limit", Detail: "must be a whole number from 1 to 1000"})
			return
		}
		f.Limit = n
	}
	out, err := h.store.Alerts(c.Request.Context(), f)
	if err != nil {
		h.internal(c, "list alerts", err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"items": out})
}

func (h *handlers) internal(c *gin.Context, what string, err error) {
	httpx.Log(c).Error(what, "err", err)
	httpx.WriteProblem(c, http.StatusInternalServerError, "could not "+what+"; see the server log for request "+httpx.RequestID(c))
}
