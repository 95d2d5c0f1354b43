package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/shopspring/decimal"
)

// Write is one change of an instance's read model, applied in one transaction by Apply. Every part is
// idempotent (keyed inserts, a versioned projection), so a retry after a crash, or a write that arrives late,
// leaves the rows as the newest state says.
type Write struct {
	// Summary is what the Temporal UI shows for this write.
	Summary   string           `json:"summary"`
	Instance  *InstanceRow     `json:"instance,omitempty"`
	Orders    []OrderRow       `json:"orders,omitempty"`
	Effective []OrderEffective `json:"effective,omitempty"`
	Events    []EventRow       `json:"events,omitempty"`
	Refunds   []RefundRow      `json:"refunds,omitempty"`
	Alerts    []AlertRow       `json:"alerts,omitempty"`
	// ResolveAlerts closes the instance's open alerts of these kinds.
	ResolveAlerts []string     `json:"resolveAlerts,omitempty"`
	Parkings      []ParkingRow `json:"parkings,omitempty"`
	// ClearAppInfo drops the instance's access data (release: the credentials no longer work), and with it the
	// instance's Kit rows (tenants, applications, users, org units).
	ClearAppInfo bool `json:"clearAppInfo,omitempty"`
}

// InstanceRow is the projection of the workflow state into instances. Version orders projections.
type InstanceRow struct {
	InstanceID             string     `json:"instanceId"`
	WorkflowID             string     `json:"workflowId"`
	Version                int64      `json:"version"`
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
	ExpireTime             *time.Time `json:"expireTime,omitempty"`
	Parked                 bool       `json:"parked"`
	ParkedStep             string     `json:"parkedStep"`
	ParkedReason           string     `json:"parkedReason"`
	ParkedAt               *time.Time `json:"parkedAt,omitempty"`
	ProvisionedAt          *time.Time `json:"provisionedAt,omitempty"`
	FrozenAt               *time.Time `json:"frozenAt,omitempty"`
	FrozenBy               string     `json:"frozenBy"`
	ReleasedAt             *time.Time `json:"releasedAt,omitempty"`
	SupervisionCompletedAt *time.Time `json:"supervisionCompletedAt,omitempty"`
	ServiceStartAt         *time.Time `json:"serviceStartAt,omitempty"`
}

// OrderRow is one row of orders, as the package doc's contract describes it (amounts in yuan, refunds negative).
type OrderRow struct {
	OrderID         string          `json:"orderId"`
	OrderLineID     string          `json:"orderLineId"`
	InstanceID      string          `json:"instanceId"`
	OrderType       string          `json:"orderType"`
	ProductID       string          `json:"productId"`
	SKUCode         string          `json:"skuCode"`
	ChargingMode    string          `json:"chargingMode"`
	PeriodType      string          `json:"periodType"`
	PeriodNumber    int             `json:"periodNumber"`
	Quantity        int64           `json:"quantity"`
	ListAmount      decimal.Decimal `json:"listAmount"`
	PaidAmount      decimal.Decimal `json:"paidAmount"`
	RefersToOrderID string          `json:"refersToOrderId,omitempty"`
	PlacedAt        *time.Time      `json:"placedAt,omitempty"`
	EffectiveAt     *time.Time      `json:"effectiveAt,omitempty"`
	ExpireTime      *time.Time      `json:"expireTime,omitempty"`
	TestFlag        bool            `json:"testFlag"`
	Raw             json.RawMessage `json:"raw,omitempty"`
}

// OrderEffective sets an order's effective time once (a supervised purchase at acceptance, a purchase at
// provisioning).
type OrderEffective struct {
	OrderID     string    `json:"orderId"`
	OrderLineID string    `json:"orderLineId"`
	At          time.Time `json:"at"`
}

// EventRow is one timeline entry; Key makes it once-only.
type EventRow struct {
	Key     string    `json:"key"`
	At      time.Time `json:"at"`
	Kind    string    `json:"kind"`
	Actor   string    `json:"actor"`
	Summary string    `json:"summary"`
	// Detail is stored as JSON. It is encoded here, not in the workflow, which must stay free of reflection-based
	// encoding (workflowcheck).
	Detail any `json:"detail,omitempty"`
}

// RefundRow is a refund request as it now stands.
type RefundRow struct {
	RefundID        string           `json:"refundId"`
	OrderID         string           `json:"orderId"`
	OrderLineID     string           `json:"orderLineId"`
	Status          string           `json:"status"`
	RequestedAmount decimal.Decimal  `json:"requestedAmount"`
	ApprovedAmount  *decimal.Decimal `json:"approvedAmount,omitempty"`
	FullOnly        bool             `json:"fullOnly"`
	Reason          string           `json:"reason"`
	DecisionNote    string           `json:"decisionNote"`
	RequestedBy     string           `json:"requestedBy"`
	RequestedAt     time.Time        `json:"requestedAt"`
	DecidedBy       string           `json:"decidedBy,omitempty"`
	DecidedAt       *time.Time       `json:"decidedAt,omitempty"`
	RefundOrderID   string           `json:"refundOrderId,omitempty"`
}

// AlertRow raises an alert once per key.
type AlertRow struct {
	Key     string          `json:"key"`
	Kind    string          `json:"kind"`
	At      time.Time       `json:"at"`
	Message string          `json:"message"`
	Detail  json.RawMessage `json:"detail,omitempty"`
}

// ParkingRow records a parked step, or (with Resolution) how it ended.
type ParkingRow struct {
	Key        string     `json:"key"`
	StepID     string     `json:"stepId"`
	Stage      string     `json:"stage"`
	Reason     string     `json:"reason"`
	ParkedAt   time.Time  `json:"parkedAt"`
	Resolution string     `json:"resolution,omitempty"`
	ResolvedBy string     `json:"resolvedBy,omitempty"`
	ResolvedAt *time.Time `json:"resolvedAt,omitempty"`
	Note       string     `json:"note,omitempty"`
}

// OrderConflictError is returned by Apply when an order line is already recorded for another instance or as
// another order type: a marketplace or operator mistake that a person must look at, not something to retry.
type OrderConflictError struct {
	OrderID, OrderLineID string
	Have, Want           string // "<order type> order of instance <id>"
}

func (e *OrderConflictError) Error() string {
	return fmt.Sprintf("order %s line %s is already recorded as a %s; it cannot also be a %s", e.OrderID, e.OrderLineID, e.Have, e.Want)
}

// ErrNoInstance is returned by Apply for a write that names no instance.
var ErrNoInstance = errors.New("the write names no instance")

// Apply applies a Write in one transaction. The instance's workflow is its only caller (through the Record
// local activity), so an instance's rows have one writer; writes are short.
func (s *Store) Apply(ctx context.Context, w Write) error {
	tx, err := s.Pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("record %q: begin: %w", w.Summary, err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	instanceID := ""
	if w.Instance != nil {
		instanceID = w.Instance.InstanceID
		if err := upsertInstance(ctx, tx, w.Instance); err != nil {
			return err
		}
		if err := settleRefusal(ctx, tx, instanceID); err != nil {
			return err
		}
	}
	for _, o := range w.Orders {
		if err := insertOrder(ctx, tx, o); err != nil {
			return err
		}
		instanceID = o.InstanceID
	}
	if instanceID == "" {
		return fmt.Errorf("record %q: %w", w.Summary, ErrNoInstance)
	}
	for _, e := range w.Effective {
		if _, err := tx.Exec(ctx, `UPDATE orders SET effective_at = $3
			WHERE order_id = $1 AND order_line_id = $2 AND instance_id = $4 AND effective_at IS NULL`,
			e.OrderID, e.OrderLineID, e.At.UTC(), instanceID); err != nil {
			return fmt.Errorf("set effective time of order %s: %w", e.OrderID, err)
		}
	}
	for _, e := range w.Events {
		if _, err := tx.Exec(ctx, `INSERT INTO instance_events (instance_id, event_key, at, kind, actor, summary, detail)
			VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (instance_id, event_key) DO NOTHING`,
			instanceID, e.Key, e.At.UTC(), e.Kind, e.Actor, e.Summary, detailJSON(e.Detail)); err != nil {
			return fmt.Errorf("record event %s: %w", e.Key, err)
		}
	}
	for _, r := range w.Refunds {
		if _, err := tx.Exec(ctx, `INSERT INTO refunds (instance_id, refund_id, order_id, order_line_id, status,
				requested_amount, approved_amount, full_only, reason, decision_note, requested_by, requested_at,
				decided_by, decided_at, refund_order_id)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
			ON CONFLICT (instance_id, refund_id) DO UPDATE SET status = EXCLUDED.status,
				approved_amount = EXCLUDED.approved_amount, decision_note = EXCLUDED.decision_note,
				decided_by = EXCLUDED.decided_by, decided_at = EXCLUDED.decided_at, refund_order_id = EXCLUDED.refund_order_id`,
			instanceID, r.RefundID, r.OrderID, r.OrderLineID, r.Status, r.RequestedAmount, r.ApprovedAmount, r.FullOnly,
			r.Reason, r.DecisionNote, r.RequestedBy, r.RequestedAt.UTC(), nullString(r.DecidedBy), utcPtr(r.DecidedAt),
			nullString(r.RefundOrderID)); err != nil {
			return fmt.Errorf("record refund %s: %w", r.RefundID, err)
		}
	}
	for _, al := range w.Alerts {
		if _, err := tx.Exec(ctx, `INSERT INTO instance_alerts (instance_id, alert_key, kind, raised_at, message, detail)
			VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (instance_id, alert_key) DO NOTHING`,
			instanceID, al.Key, al.Kind, al.At.UTC(), al.Message, nullJSON(al.Detail)); err != nil {
			return fmt.Errorf("raise alert %s: %w", al.Key, err)
		}
	}
	if len(w.ResolveAlerts) > 0 {
		if _, err := tx.Exec(ctx, `UPDATE instance_alerts SET resolved_at = now()
			WHERE instance_id = $1 AND kind = ANY($2) AND resolved_at IS NULL`, instanceID, w.ResolveAlerts); err != nil {
			return fmt.Errorf("resolve alerts: %w", err)
		}
	}
	for _, p := range w.Parkings {
		if _, err := tx.Exec(ctx, `INSERT INTO instance_parkings (instance_id, parking_key, step_id, stage, reason, parked_at,
				resolution, resolved_by, resolved_at, note)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
			ON CONFLICT (instance_id, parking_key) DO UPDATE SET
				resolution = COALESCE(EXCLUDED.resolution, instance_parkings.resolution),
				resolved_by = COALESCE(EXCLUDED.resolved_by, instance_parkings.resolved_by),
				resolved_at = COALESCE(EXCLUDED.resolved_at, instance_parkings.resolved_at),
				note = CASE WHEN EXCLUDED.note <> '' THEN EXCLUDED.note ELSE instance_parkings.note END`,
			instanceID, p.Key, p.StepID, p.Stage, p.Reason, p.ParkedAt.UTC(), nullString(p.Resolution),
			nullString(p.ResolvedBy), utcPtr(p.ResolvedAt), p.Note); err != nil {
			return fmt.Errorf("record parking %s: %w", p.Key, err)
		}
	}
	if w.ClearAppInfo {
		if _, err := tx.Exec(ctx, `UPDATE instances SET app_info = NULL, app_info_sealed = NULL, app_info_key = NULL
			WHERE instance_id = $1`, instanceID); err != nil {
			return fmt.Errorf("clear appInfo: %w", err)
		}
		if err := releaseKit(ctx, tx, instanceID); err != nil {
			return err
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("record %q: commit: %w", w.Summary, err)
	}
	return nil
}

func upsertInstance(ctx context.Context, tx pgx.Tx, r *InstanceRow) error {
	_, err := tx.Exec(ctx, `
		INSERT INTO instances (instance_id, workflow_id, order_id, order_line_id, product_id, sku_code, quantity,
			customer_id, charging_mode, lifecycle, supervision, trial, test_flag, expire_time, parked, parked_step,
			parked_reason, provisioned_at, frozen_at, released_at, state_version, product_name, product_known,
			period_type, frozen_by, supervision_completed_at, service_start_at, parked_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22,
			$23, $24, $25, $26, $27, $28)
		ON CONFLICT (instance_id) DO UPDATE SET
			product_id = EXCLUDED.product_id, sku_code = EXCLUDED.sku_code, quantity = EXCLUDED.quantity,
			customer_id = EXCLUDED.customer_id, charging_mode = EXCLUDED.charging_mode, lifecycle = EXCLUDED.lifecycle,
			supervision = EXCLUDED.supervision, trial = EXCLUDED.trial, test_flag = EXCLUDED.test_flag,
			expire_time = EXCLUDED.expire_time, parked = EXCLUDED.parked, parked_step = EXCLUDED.parked_step,
			parked_reason = EXCLUDED.parked_reason, provisioned_at = EXCLUDED.provisioned_at,
			frozen_at = EXCLUDED.frozen_at, released_at = EXCLUDED.released_at, state_version = EXCLUDED.state_version,
			product_name = EXCLUDED.product_name, product_known = EXCLUDED.product_known,
			period_type = EXCLUDED.period_type, frozen_by = EXCLUDED.frozen_by,
			supervision_completed_at = EXCLUDED.supervision_completed_at,
			service_start_at = EXCLUDED.service_start_at, parked_at = EXCLUDED.parked_at, updated_at = now()
		WHERE instances.state_version < EXCLUDED.state_version`,
		r.InstanceID, r.WorkflowID, r.OrderID, r.OrderLineID, r.ProductID, r.SKUCode, r.Quantity,
		r.CustomerID, r.ChargingMode, r.Lifecycle, r.Supervision, r.Trial, r.TestFlag, utcPtr(r.ExpireTime), r.Parked,
		r.ParkedStep, r.ParkedReason, utcPtr(r.ProvisionedAt), utcPtr(r.FrozenAt), utcPtr(r.ReleasedAt), r.Version,
		r.ProductName, r.ProductKnown, r.PeriodType, r.FrozenBy, utcPtr(r.SupervisionCompletedAt),
		utcPtr(r.ServiceStartAt), utcPtr(r.ParkedAt))
	if err != nil {
		return fmt.Errorf("upsert instance %s: %w", r.InstanceID, err)
	}
	return nil
}

// insertOrder writes an order row once. The same order recorded for another instance is a marketplace or
// operator mistake that a person must look at, not something to retry.
func insertOrder(ctx context.Context, tx pgx.Tx, o OrderRow) error {
	var inserted string
	err := tx.QueryRow(ctx, `
		INSERT INTO orders (order_id, order_line_id, instance_id, order_type, product_id, sku_code, charging_mode,
			period_type, period_number, quantity, list_amount, paid_amount, refers_to_order_id, placed_at,
			effective_at, expire_time, test_flag, raw)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)
		ON CONFLICT (order_id, order_line_id) DO NOTHING
		RETURNING order_id`,
		o.OrderID, o.OrderLineID, o.InstanceID, o.OrderType, o.ProductID, o.SKUCode, o.ChargingMode, o.PeriodType,
		o.PeriodNumber, o.Quantity, o.ListAmount, o.PaidAmount, nullString(o.RefersToOrderID), utcPtr(o.PlacedAt),
		utcPtr(o.EffectiveAt), utcPtr(o.ExpireTime), o.TestFlag, nullJSON(o.Raw)).Scan(&inserted)
	if err == nil {
		return nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("record order %s line %s: %w", o.OrderID, o.OrderLineID, err)
	}
	var owner, typ, mode string
	if err := tx.QueryRow(ctx, `SELECT instance_id, order_type, charging_mode FROM orders WHERE order_id = $1 AND order_line_id = $2`,
		o.OrderID, o.OrderLineID).Scan(&owner, &typ, &mode); err != nil {
		return fmt.Errorf("read existing order %s: %w", o.OrderID, err)
	}
	if owner != o.InstanceID && typ == o.OrderType && isPayPerUse(mode) && mode == o.ChargingMode {
		// One pay-per-use order line billing several items: each item is its own instance, the line one row,
		// kept by the instance recorded first. Those instances are settled by their usage, not by the line.
		return nil
	}
	if owner != o.InstanceID || typ != o.OrderType {
		return &OrderConflictError{OrderID: o.OrderID, OrderLineID: o.OrderLineID,
			Have: typ + " order of instance " + owner, Want: o.OrderType + " order of instance " + o.InstanceID}
	}
	return nil
}

func nullString(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func nullJSON(b json.RawMessage) any {
	if len(b) == 0 {
		return nil
	}
	return []byte(b)
}

func detailJSON(v any) any {
	if v == nil {
		return nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil
	}
	return b
}

func utcPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

// isPayPerUse says whether an order line's chargingMode is pay-per-use or a pay-per-use package.
func isPayPerUse(mode string) bool { return mode == ChargingOnDemand || mode == ChargingOnDemandPkg }
