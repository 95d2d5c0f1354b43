package console

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/jackc/pgx/v5"

	"github.com/kooflow/kooflow/api/httpx"
	"github.com/kooflow/kooflow/internal/instance"
)

// Instance is one instance as the read model holds it. The initial password of its appInfo is never shown.
type Instance struct {
	InstanceID             string     `json:"instanceId"`
	WorkflowID             string     `json:"workflowId"`
	OrderID                string     `json:"orderId"`
	OrderLineID            string     `json:"orderLineId"`
	ProductID              string     `json:"productId"`
	ProductName            string     `json:"productName"`
	ProductKnown           bool       `json:"productKnown"`
	SKUCode                string     `json:"skuCode"`
	Quantity               int64      `json:"quantity"`
	CustomerID             string     `json:"customerId"`
	ChargingMode           string     `json:"chargingMode"`
	PeriodType             string     `json:"periodType"`
	Lifecycle              string     `json:"lifecycle"`
	Supervision            string     `json:"supervision"`
	Trial                  bool       `json:"trial"`
	TestFlag               bool       `json:"testFlag"`
	ExpireTime             *time.Time `json:"expireTime"`
	Parked                 bool       `json:"parked"`
	ParkedStep             string     `json:"parkedStep,omitempty"`
	ParkedReason           string     `json:"parkedReason,omitempty"`
	ParkedAt               *time.Time `json:"parkedAt,omitempty"`
	ProvisionedAt          *time.Time `json:"provisionedAt"`
	FrozenAt               *time.Time `json:"frozenAt,omitempty"`
	FrozenBy               string     `json:"frozenBy,omitempty"`
	ReleasedAt             *time.Time `json:"releasedAt,omitempty"`
	SupervisionCompletedAt *time.Time `json:"supervisionCompletedAt,omitempty"`
	ServiceStartAt         *time.Time `json:"serviceStartAt,omitempty"`
	AppInfo                *AppInfo   `json:"appInfo,omitempty"`
	CreatedAt              time.Time  `json:"createdAt"`
	UpdatedAt              time.Time  `json:"updatedAt"`
}

// AppInfo is the customer's access data without the password.
type AppInfo struct {
	FrontEndURL string `json:"frontEndUrl"`
	AdminURL    string `json:"adminUrl,omitempty"`
	UserName    string `json:"userName,omitempty"`
	PasswordSet bool   `json:"passwordSet"`
	Memo        string `json:"memo,omitempty"`
}

// Order is one orders row; amounts are exact decimal strings in yuan (refunds negative).
type Order struct {
	OrderID         string     `json:"orderId"`
	OrderLineID     string     `json:"orderLineId"`
	OrderType       string     `json:"orderType"`
	ProductID       string     `json:"productId"`
	SKUCode         string     `json:"skuCode"`
	ChargingMode    string     `json:"chargingMode"`
	PeriodType      string     `json:"periodType"`
	PeriodNumber    int        `json:"periodNumber"`
	Quantity        int64      `json:"quantity"`
	ListAmount      string     `json:"listAmount"`
	PaidAmount      string     `json:"paidAmount"`
	RefersToOrderID *string    `json:"refersToOrderId,omitempty"`
	PlacedAt        *time.Time `json:"placedAt,omitempty"`
	EffectiveAt     *time.Time `json:"effectiveAt"`
	ExpireTime      *time.Time `json:"expireTime,omitempty"`
	TestFlag        bool       `json:"testFlag"`
	RecordedAt      time.Time  `json:"recordedAt"`
}

// Event is one timeline entry.
type Event struct {
	At      time.Time       `json:"at"`
	Kind    string          `json:"kind"`
	Actor   string          `json:"actor"`
	Summary string          `json:"summary"`
	Detail  json.RawMessage `json:"detail,omitempty"`
}

// Refund is one refund request and its decision.
type Refund struct {
	RefundID        string     `json:"refundId"`
	OrderID         string     `json:"orderId"`
	OrderLineID     string     `json:"orderLineId"`
	Status          string     `json:"status"`
	RequestedAmount string     `json:"requestedAmount"`
	ApprovedAmount  *string    `json:"approvedAmount,omitempty"`
	FullOnly        bool       `json:"fullOnly"`
	Reason          string     `json:"reason,omitempty"`
	DecisionNote    string     `json:"decisionNote,omitempty"`
	RequestedBy     string     `json:"requestedBy"`
	RequestedAt     time.Time  `json:"requestedAt"`
	DecidedBy       *string    `json:"decidedBy,omitempty"`
	DecidedAt       *time.Time `json:"decidedAt,omitempty"`
	RefundOrderID   *string    `json:"refundOrderId,omitempty"`
}

// Alert is a condition an operator should look at.
type Alert struct {
	InstanceID string          `json:"instanceId"`
	Key        string          `json:"key"`
	Kind       string          `json:"kind"`
	RaisedAt   time.Time       `json:"raisedAt"`
	Message    string          `json:"message"`
	Detail     json.RawMessage `json:"detail,omitempty"`
	ResolvedAt *time.Time      `json:"resolvedAt,omitempty"`
}

// Parking is one time a step parked and how it was resolved.
type Parking struct {
	Key        string     `json:"key"`
	StepID     string     `json:"stepId"`
	Stage      string     `json:"stage"`
	Reason     string     `json:"reason"`
	ParkedAt   time.Time  `json:"parkedAt"`
	Resolution *string    `json:"resolution,omitempty"`
	ResolvedBy *string    `json:"resolvedBy,omitempty"`
	ResolvedAt *time.Time `json:"resolvedAt,omitempty"`
	Note       string     `json:"note,omitempty"`
}

// InstanceDetail is GET /instances/:id.
type InstanceDetail struct {
	Instance
	Orders   []Order   `json:"orders"`
	Timeline []Event   `json:"timeline"`
	Refunds  []Refund  `json:"refunds"`
	Alerts   []Alert   `json:"alerts"`
	Parkings []Parking `json:"parkings"`
	// Live is the workflow's own state (?live=true): the queued steps and the parked one. Each such query is a
	// billed Temporal action, so it is opt-in.
	Live      *instance.Carry `json:"live,omitempty"`
	LiveError string          `json:"liveError,omitempty"`
}

// InstancePage is GET /instances.
type InstancePage struct {
	Items      []Instance `json:"items"`
	NextCursor string     `json:"nextCursor,omitempty"`
}

const instanceColumns = `instance_id, workflow_id, order_id, order_line_id, product_id, product_name, product_known,
	sku_code, quantity, customer_id, charging_mode, period_type, lifecycle, supervision, trial, test_flag, expire_time,
	parked, parked_step, parked_reason, parked_at, provisioned_at, frozen_at, frozen_by, released_at,
	supervision_completed_at, service_start_at, app_info, created_at, updated_at`

func scanInstance(row pgx.Row) (Instance, error) {
	var i Instance
	var app []byte
	err := row.Scan(&i.InstanceID, &i.WorkflowID, &i.OrderID, &i.OrderLineID, &i.ProductID, &i.ProductName, &i.ProductKnown,
		&i.SKUCode, &i.Quantity, &i.CustomerID, &i.ChargingMode, &i.PeriodType, &i.Lifecycle, &i.Supervision, &i.Trial,
		&i.TestFlag, &i.ExpireTime, &i.Parked, &i.ParkedStep, &i.ParkedReason, &i.ParkedAt, &i.ProvisionedAt, &i.FrozenAt,
		&i.FrozenBy, &i.ReleasedAt, &i.SupervisionCompletedAt, &i.ServiceStartAt, &app, &i.CreatedAt, &i.UpdatedAt)
	if err != nil {
		return i, err
	}
	if len(app) > 0 {
		var a struct {
			FrontEndURL string `json:"frontEndUrl"`
			AdminURL    string `json:"adminUrl"`
			UserName    string `json:"userName"`
			Password    string `json:"password"`
			Memo        string `json:"memo"`
		}
		if json.Unmarshal(app, &a) == nil {
			i.AppInfo = &AppInfo{FrontEndURL: a.FrontEndURL, AdminURL: a.AdminURL, UserName: a.UserName,
				PasswordSet: a.Password != "", Memo: a.Memo}
		}
	}
	return i, nil
}

var (
	lifecycles   = []string{"PROVISIONING", "ACTIVE", "FROZEN", "RELEASED"}
	supervisions = []string{"UNKNOWN", "NOT_INVOLVED", "AWAITING_REQUIREMENT", "AWAITING_CONFIRMATION", "IN_SERVICE",
		"AWAITING_ACCEPTANCE", "COMPLETED"}
)

// list: GET /instances?lifecycle=&supervision=&parked=&productId=&orderId=&customerId=&testFlag=&expiresBefore=
// &expiresAfter=&limit=&cursor=
func (h *handlers) list(c *gin.Context) {
	var where []string
	var args []any
	var problems []httpx.FieldError
	bad := func(field, detail string) {
		problems = append(problems, httpx.FieldError{Field: field, Detail: detail})
	}
	arg := func(v any) string { args = append(args, v); return "$" + strconv.Itoa(len(args)) }
	oneOf := func(field, column string, allowed []string) {
		if v := c.Query(field); v != "" {
			if !slices.Contains(allowed, v) {
				bad(field, "must be one of "+strings.Join(allowed, ", "))
				return
			}
			where = append(where, column+" = "+arg(v))
		}
	}
	oneOf("lifecycle", "lifecycle", lifecycles)
	oneOf("supervision", "supervision", supervisions)
	for _, f := range []struct{ field, column string }{{"productId", "product_id"}, {"orderId", "order_id"}, {"customerId", "customer_id"}} {
		if v := c.Query(f.field); v != "" {
			if len(v) > 64 {
				bad(f.field, "must be at most 64 characters")
				continue
			}
			where = append(where, f.column+" = "+arg(v))
		}
	}
	for _, f := range []struct{ field, column string }{{"parked", "parked"}, {"testFlag", "test_flag"}} {
		if v := c.Query(f.field); v != "" {
			b, err := strconv.ParseBool(v)
			if err != nil {
				bad(f.field, "must be true or false")
				continue
			}
			where = append(where, f.column+" = "+arg(b))
		}
	}
	for _, f := range []struct{ field, op string }{{"expiresBefore", "<"}, {"expiresAfter", ">="}} {
		if v := c.Query(f.field); v != "" {
			t, err := time.Parse(time.RFC3339Nano, v)
			if err != nil {
				bad(f.field, "must be an RFC 3339 time such as 2026-12-01T00:00:00Z")
				continue
			}
			where = append(where, "expire_time "+f.op+" "+arg(t.UTC()))
		}
	}
	limit := 50
	if v := c.Query("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 500 {
			bad("limit", "must be a whole number from 1 to 500")
		}
		limit = n
	}
	if v := c.Query("cursor"); v != "" {
		at, id, err := decodeCursor(v)
		if err != nil {
			bad("cursor", "is not a cursor this API returned")
		} else {
			where = append(where, "(updated_at, instance_id) < ("+arg(at)+", "+arg(id)+")")
		}
	}
	if len(problems) > 0 {
		httpx.WriteProblem(c, http.StatusBadRequest, "invalid instance filter", problems...)
		return
	}
	q := "SELECT " + instanceColumns + " FROM instances"
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY updated_at DESC, instance_id DESC LIMIT " + arg(limit+1)
	rows, err := h.d.Pool.Query(c.Request.Context(), q, args...)
	if err != nil {
		h.internal(c, "list instances", err)
		return
	}
	defer rows.Close()
	page := InstancePage{Items: []Instance{}}
	for rows.Next() {
		i, err := scanInstance(rows)
		if err != nil {
			h.internal(c, "read instance", err)
			return
		}
		page.Items = append(page.Items, i)
	}
	if err := rows.Err(); err != nil {
		h.internal(c, "list instances", err)
		return
	}
	if len(page.Items) > limit {
		last := page.Items[limit-1]
		page.Items = page.Items[:limit]
		page.NextCursor = encodeCursor(last.UpdatedAt, last.InstanceID)
	}
	c.JSON(http.StatusOK, page)
}

func encodeCursor(at time.Time, id string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(at.UTC().Format(time.RFC3339Nano) + "|" + id))
}

func decodeCursor(s string) (time.Time, string, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return time.Time{}, "", err
	}
	ts, id, ok := strings.Cut(string(b), "|")
	if !ok || id == "" {
		return time.Time{}, "", errors.New("malformed cursor")
	}
	t, err := time.Parse(time.RFC3339Nano, ts)
	return t, id, err
}

// get: GET /instances/:id[?live=true]
func (h *handlers) get(c *gin.Context) {
	id := c.Param("id")
	ctx := c.Request.Context()
	inst, err := h.instance(ctx, id)
	if errors.Is(err, pgx.ErrNoRows) {
		httpx.WriteProblem(c, http.StatusNotFound, "no instance "+id)
		return
	}
	if err != nil {
		h.internal(c, "read instance", err)
		return
	}
	d := InstanceDetail{Instance: inst}
	if d.Orders, err = h.orders(ctx, id); err != nil {
		h.internal(c, "read orders", err)
		return
	}
	if d.Timeline, err = h.timeline(ctx, id); err != nil {
		h.internal(c, "read timeline", err)
		return
	}
	if d.Refunds, err = h.refunds(ctx, id); err != nil {
		h.internal(c, "read refunds", err)
		return
	}
	if d.Alerts, err = h.alertRows(ctx, "WHERE instance_id = $1", 1000, id); err != nil {
		h.internal(c, "read alerts", err)
		return
	}
	if d.Parkings, err = h.parkings(ctx, id); err != nil {
		h.internal(c, "read parkings", err)
		return
	}
	if live, _ := strconv.ParseBool(c.Query("live")); live {
		qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		v, err := h.d.Temporal.QueryWorkflow(qctx, inst.WorkflowID, "", instance.QueryState)
		if err == nil {
			var s instance.Carry
			if err = v.Get(&s); err == nil {
				d.Live = &s
			}
		}
		if err != nil {
			d.LiveError = "the workflow did not answer the state query: " + err.Error()
		}
	}
	c.JSON(http.StatusOK, d)
}

func (h *handlers) instance(ctx context.Context, id string) (Instance, error) {
	return scanInstance(h.d.Pool.QueryRow(ctx, "SELECT "+instanceColumns+" FROM instances WHERE instance_id = $1", id))
}

func (h *handlers) orders(ctx context.Context, id string) ([]Order, error) {
	rows, err := h.d.Pool.Query(ctx, `SELECT order_id, order_line_id, order_type, product_id, sku_code, charging_mode,
		period_type, period_number, quantity, list_amount::text, paid_amount::text, refers_to_order_id, placed_at,
		effective_at, expire_time, test_flag, recorded_at
		FROM orders WHERE instance_id = $1 ORDER BY recorded_at, order_id, order_line_id`, id)
	if err != nil {
		return nil, err
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Order, error) {
		var o Order
		err := r.Scan(&o.OrderID, &o.OrderLineID, &o.OrderType, &o.ProductID, &o.SKUCode, &o.ChargingMode, &o.PeriodType,
			&o.PeriodNumber, &o.Quantity, &o.ListAmount, &o.PaidAmount, &o.RefersToOrderID, &o.PlacedAt, &o.EffectiveAt,
			&o.ExpireTime, &o.TestFlag, &o.RecordedAt)
		return o, err
	})
	if out == nil {
		out = []Order{}
	}
	return out, err
}

func (h *handlers) timeline(ctx context.Context, id string) ([]Event, error) {
	rows, err := h.d.Pool.Query(ctx, `SELECT at, kind, actor, summary, detail FROM instance_events
		WHERE instance_id = $1 ORDER BY at, id`, id)
	if err != nil {
		return nil, err
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Event, error) {
		var e Event
		var detail []byte
		err := r.Scan(&e.At, &e.Kind, &e.Actor, &e.Summary, &detail)
		e.Detail = detail
		return e, err
	})
	if out == nil {
		out = []Event{}
	}
	return out, err
}

func (h *handlers) refunds(ctx context.Context, id string) ([]Refund, error) {
	rows, err := h.d.Pool.Query(ctx, `SELECT refund_id, order_id, order_line_id, status, requested_amount::text,
		approved_amount::text, full_only, reason, decision_note, requested_by, requested_at, decided_by, decided_at,
		refund_order_id FROM refunds WHERE instance_id = $1 ORDER BY requested_at, refund_id`, id)
	if err != nil {
		return nil, err
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Refund, error) {
		var f Refund
		err := r.Scan(&f.RefundID, &f.OrderID, &f.OrderLineID, &f.Status, &f.RequestedAmount, &f.ApprovedAmount,
			&f.FullOnly, &f.Reason, &f.DecisionNote, &f.RequestedBy, &f.RequestedAt, &f.DecidedBy, &f.DecidedAt, &f.RefundOrderID)
		return f, err
	})
	if out == nil {
		out = []Refund{}
	}
	return out, err
}

func (h *handlers) alertRows(ctx context.Context, where string, limit int, args ...any) ([]Alert, error) {
	rows, err := h.d.Pool.Query(ctx, `SELECT instance_id, alert_key, kind, raised_at, message, detail, resolved_at
		FROM instance_alerts `+where+` ORDER BY raised_at DESC, instance_id, alert_key LIMIT `+strconv.Itoa(limit), args...)
	if err != nil {
		return nil, err
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Alert, error) {
		var a Alert
		var detail []byte
		err := r.Scan(&a.InstanceID, &a.Key, &a.Kind, &a.RaisedAt, &a.Message, &detail, &a.ResolvedAt)
		a.Detail = detail
		return a, err
	})
	if out == nil {
		out = []Alert{}
	}
	return out, err
}

func (h *handlers) parkings(ctx context.Context, id string) ([]Parking, error) {
	rows, err := h.d.Pool.Query(ctx, `SELECT parking_key, step_id, stage, reason, parked_at, resolution, resolved_by,
		resolved_at, note FROM instance_parkings WHERE instance_id = $1 ORDER BY parked_at, parking_key`, id)
	if err != nil {
		return nil, err
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Parking, error) {
		var p Parking
		err := r.Scan(&p.Key, &p.StepID, &p.Stage, &p.Reason, &p.ParkedAt, &p.Resolution, &p.ResolvedBy, &p.ResolvedAt, &p.Note)
		return p, err
	})
	if out == nil {
		out = []Parking{}
	}
	return out, err
}

// alerts: GET /alerts?open=true&kind=&limit=
func (h *handlers) alerts(c *gin.Context) {
	var where []string
	var args []any
	open := true
	if v := c.Query("open"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			httpx.WriteProblem(c, http.StatusBadRequest, "invalid alert filter", httpx.FieldError{Field: "open", Detail: "must be true or false"})
			return
		}
		open = b
	}
	if open {
		where = append(where, "resolved_at IS NULL")
	}
	if k := c.Query("kind"); k != "" {
		args = append(args, k)
		where = append(where, fmt.Sprintf("kind = $%d", len(args)))
	}
	limit := 100
	if v := c.Query("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			httpx.WriteProblem(c, http.StatusBadRequest, "invalid alert filter", httpx.FieldError{Field: "limit", Detail: "must be a whole number from 1 to 1000"})
			return
		}
		limit = n
	}
	w := ""
	if len(where) > 0 {
		w = "WHERE " + strings.Join(where, " AND ")
	}
	out, err := h.alertRows(c.Request.Context(), w, limit, args...)
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
