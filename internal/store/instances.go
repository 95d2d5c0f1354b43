package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// The instance read model as the console reads it: one instance, its orders, timeline, refunds, alerts and
// parked steps, and the filtered, keyset-paged instance list.

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
	// InstanceID is the instance the alert is about; empty for a system alert, which names its Subject instead.
	InstanceID string          `json:"instanceId"`
	Subject    string          `json:"subject,omitempty"`
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

// InstancePage is one page of ListInstances.
type InstancePage struct {
	Items      []Instance `json:"items"`
	NextCursor string     `json:"nextCursor,omitempty"`
}

// ErrNotFound is returned (wrapped) for a row that does not exist.
var ErrNotFound = errors.New("not found")

// InstanceFilter selects instances for ListInstances; zero fields do not filter. Callers validate values
// against the contract (lifecycle and supervision names) before they get here.
type InstanceFilter struct {
	Lifecycle, Supervision         string
	ProductID, OrderID, CustomerID string
	Parked, TestFlag               *bool
	ExpiresBefore, ExpiresAfter    *time.Time
	Limit                          int
	Cursor                         string // a previous page's NextCursor
}

// instanceCursor is the keyset position of the list's order (most recently updated first).
type instanceCursor struct {
	UpdatedAt  time.Time `json:"u"`
	InstanceID string    `json:"i"`
}

// ListInstances returns a page of instances, most recently updated first. A Cursor that is not one this
// package issued is ErrBadCursor.
func (s *Store) ListInstances(ctx context.Context, f InstanceFilter) (InstancePage, error) {
	var where []string
	var args []any
	arg := func(v any) string { args = append(args, v); return "$" + strconv.Itoa(len(args)) }
	eq := func(column string, v any) { where = append(where, column+" = "+arg(v)) }
	for _, c := range []struct{ column, v string }{{"lifecycle", f.Lifecycle}, {"supervision", f.Supervision},
		{"product_id", f.ProductID}, {"order_id", f.OrderID}, {"customer_id", f.CustomerID}} {
		if c.v != "" {
			eq(c.column, c.v)
		}
	}
	if f.Parked != nil {
		eq("parked", *f.Parked)
	}
	if f.TestFlag != nil {
		eq("test_flag", *f.TestFlag)
	}
	if f.ExpiresBefore != nil {
		where = append(where, "expire_time < "+arg(f.ExpiresBefore.UTC()))
	}
	if f.ExpiresAfter != nil {
		where = append(where, "expire_time >= "+arg(f.ExpiresAfter.UTC()))
	}
	if f.Cursor != "" {
		var cur instanceCursor
		if err := DecodeCursor(f.Cursor, &cur); err != nil || cur.InstanceID == "" {
			return InstancePage{}, ErrBadCursor
		}
		where = append(where, "(updated_at, instance_id) < ("+arg(cur.UpdatedAt)+", "+arg(cur.InstanceID)+")")
	}
	limit := f.Limit
	if limit <= 0 {
		limit = 50
	}
	q := "SELECT " + instanceColumns + " FROM instances"
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY updated_at DESC, instance_id DESC LIMIT " + arg(limit+1)
	rows, err := s.Pool.Query(ctx, q, args...)
	if err != nil {
		return InstancePage{}, fmt.Errorf("list instances: %w", err)
	}
	items, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Instance, error) { return scanInstance(r) })
	if err != nil {
		return InstancePage{}, fmt.Errorf("list instances: %w", err)
	}
	page := InstancePage{Items: items}
	if page.Items == nil {
		page.Items = []Instance{}
	}
	if len(page.Items) > limit {
		last := page.Items[limit-1]
		page.Items = page.Items[:limit]
		page.NextCursor = EncodeCursor(instanceCursor{UpdatedAt: last.UpdatedAt, InstanceID: last.InstanceID})
	}
	return page, nil
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
			PasswordSet bool   `json:"passwordSet"` // the password is sealed (app_info_sealed)
			Memo        string `json:"memo"`
		}
		if json.Unmarshal(app, &a) == nil {
			i.AppInfo = &AppInfo{FrontEndURL: a.FrontEndURL, AdminURL: a.AdminURL, UserName: a.UserName,
				PasswordSet: a.Password != "" || a.PasswordSet, Memo: a.Memo}
		}
	}
	return i, nil
}

func (s *Store) Instance(ctx context.Context, id string) (Instance, error) {
	i, err := scanInstance(s.Pool.QueryRow(ctx, "SELECT "+instanceColumns+" FROM instances WHERE instance_id = $1", id))
	if errors.Is(err, pgx.ErrNoRows) {
		return i, fmt.Errorf("%w: instance %s", ErrNotFound, id)
	}
	if err != nil {
		return i, fmt.Errorf("read instance %s: %w", id, err)
	}
	return i, nil
}

func (s *Store) Orders(ctx context.Context, id string) ([]Order, error) {
	rows, err := s.Pool.Query(ctx, `SELECT order_id, order_line_id, order_type, product_id, sku_code, charging_mode,
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

func (s *Store) Timeline(ctx context.Context, id string) ([]Event, error) {
	rows, err := s.Pool.Query(ctx, `SELECT at, kind, actor, summary, detail FROM instance_events
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

func (s *Store) Refunds(ctx context.Context, id string) ([]Refund, error) {
	rows, err := s.Pool.Query(ctx, `SELECT refund_id, order_id, order_line_id, status, requested_amount::text,
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

func (s *Store) alertRows(ctx context.Context, where string, limit int, args ...any) ([]Alert, error) {
	rows, err := s.Pool.Query(ctx, `SELECT instance_id, subject, alert_key, kind, raised_at, message, detail, resolved_at
		FROM (`+allAlerts+`) a `+where+` ORDER BY raised_at DESC, instance_id, alert_key LIMIT `+strconv.Itoa(limit), args...)
	if err != nil {
		return nil, err
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Alert, error) {
		var a Alert
		var detail []byte
		err := r.Scan(&a.InstanceID, &a.Subject, &a.Key, &a.Kind, &a.RaisedAt, &a.Message, &detail, &a.ResolvedAt)
		a.Detail = detail
		return a, err
	})
	if out == nil {
		out = []Alert{}
	}
	return out, err
}

func (s *Store) Parkings(ctx context.Context, id string) ([]Parking, error) {
	rows, err := s.Pool.Query(ctx, `SELECT parking_key, step_id, stage, reason, parked_at, resolution, resolved_by,
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

// AlertFilter selects alerts for Alerts; zero fields do not filter.
type AlertFilter struct {
	OpenOnly   bool
	Kind       string
	InstanceID string
	Limit      int // default 100
}

// Alerts returns alerts, newest first.
func (s *Store) Alerts(ctx context.Context, f AlertFilter) ([]Alert, error) {
	var where []string
	var args []any
	if f.OpenOnly {
		where = append(where, "resolved_at IS NULL")
	}
	if f.Kind != "" {
		args = append(args, f.Kind)
		where = append(where, fmt.Sprintf("kind = $%d", len(args)))
	}
	if f.InstanceID != "" {
		args = append(args, f.InstanceID)
		where = append(where, fmt.Sprintf("instance_id = $%d", len(args)))
	}
	limit := f.Limit
	if limit <= 0 {
		limit = 100
	}
	w := ""
	if len(where) > 0 {
		w = "WHERE " + strings.Join(where, " AND ")
	}
	out, err := s.alertRows(ctx, w, limit, args...)
	if err != nil {
		return nil, fmt.Errorf("read alerts: %w", err)
	}
	return out, nil
}

// ProductsInUse counts instances by product id, for the catalog view's warnings about unknown products.
func (s *Store) ProductsInUse(ctx context.Context) (map[string]int64, error) {
	rows, err := s.Pool.Query(ctx, `SELECT product_id, count(*) FROM instances
		WHERE product_id <> '' GROUP BY product_id ORDER BY product_id`)
	if err != nil {
		return nil, fmt.Errorf("read the products in use: %w", err)
	}
	out := map[string]int64{}
	var id string
	var n int64
	_, err = pgx.ForEachRow(rows, []any{&id, &n}, func() error { out[id] = n; return nil })
	if err != nil {
		return nil, fmt.Errorf("read the products in use: %w", err)
	}
	return out, nil
}

// KeepAppInfo stores the instance's access data (appInfo, JSON) unless some is stored already, and returns the
// stored one: a retried provisioning never replaces the credentials the customer was first given. The whole
// appInfo is sealed under the current data key (app_info_sealed, app_info_key); app_info keeps it without the
// password for the console.
func (s *Store) KeepAppInfo(ctx context.Context, instanceID string, appInfo []byte) ([]byte, error) {
	if s.Keys == nil {
		return nil, fmt.Errorf("store appInfo of instance %s: no data key configured (KOOFLOW_DATA_KEYS)", instanceID)
	}
	keyID, sealed, err := s.Keys.Seal(appInfo, appInfoContext(instanceID))
	if err != nil {
		return nil, fmt.Errorf("store appInfo of instance %s: %w", instanceID, err)
	}
	var a InstanceAccess
	a.InstanceID = instanceID
	err = s.Pool.QueryRow(ctx, `
		UPDATE instances SET app_info = COALESCE(app_info, `+withoutPassword("$2::jsonb")+`),
			app_info_sealed = CASE WHEN app_info IS NULL THEN $3 ELSE app_info_sealed END,
			app_info_key = CASE WHEN app_info IS NULL THEN $4 ELSE app_info_key END,
			updated_at = now()
		WHERE instance_id = $1
		RETURNING app_info, app_info_sealed, app_info_key`, instanceID, appInfo, sealed, keyID).Scan(&a.AppInfo, &a.sealed, &a.keyID)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("store appInfo: %w: instance %s has no row yet", ErrNotFound, instanceID)
	}
	if err != nil {
		return nil, fmt.Errorf("store appInfo of instance %s: %w", instanceID, err)
	}
	if err := s.open(&a); err != nil {
		return nil, err
	}
	return a.AppInfo, nil
}

// withoutPassword is the SQL for appInfo (the jsonb expression e) as app_info keeps it: the password replaced by
// "passwordSet": true, so the console can say one was given without holding it.
func withoutPassword(e string) string {
	return `(` + e + ` - 'password') || CASE WHEN coalesce(` + e + `->>'password', '') <> '' THEN '{"passwordSet":true}'::jsonb ELSE '{}'::jsonb END`
}

// appInfoContext binds a sealed appInfo to its row: copied to another instance it does not open.
func appInfoContext(instanceID string) string { return "instances.app_info:" + instanceID }

// open replaces a's appInfo with the sealed one, opened. A row stored before sealing existed keeps its plain
// app_info until `kooflow keys rotate` seals it.
func (s *Store) open(a *InstanceAccess) error {
	if a.sealed == nil {
		return nil
	}
	if s.Keys == nil {
		return fmt.Errorf("read appInfo of instance %s: no data key configured (KOOFLOW_DATA_KEYS)", a.InstanceID)
	}
	plain, err := s.Keys.Open(a.keyID, a.sealed, appInfoContext(a.InstanceID))
	if err != nil {
		return fmt.Errorf("read appInfo of instance %s: %w", a.InstanceID, err)
	}
	a.AppInfo = plain
	return nil
}

// SealAppInfo seals under the current data key every appInfo that is stored in plain (written before sealing)
// or sealed under another key, in batches of batch rows, and returns how many it sealed. Run by
// `kooflow keys rotate`; every key the values were sealed under must still be configured.
func (s *Store) SealAppInfo(ctx context.Context, batch int) (int, error) {
	if s.Keys == nil {
		return 0, fmt.Errorf("seal appInfo: no data key configured (KOOFLOW_DATA_KEYS)")
	}
	current := s.Keys.CurrentID()
	total := 0
	for {
		n, err := s.sealBatch(ctx, current, batch)
		total += n
		if err != nil || n < batch {
			return total, err
		}
	}
}

func (s *Store) sealBatch(ctx context.Context, current string, batch int) (int, error) {
	tx, err := s.Pool.Begin(ctx)
	if err != nil {
		return 0, fmt.Errorf("seal appInfo: %w", err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	rows, err := tx.Query(ctx, `SELECT instance_id, app_info, app_info_sealed, app_info_key FROM instances
		WHERE app_info IS NOT NULL AND (app_info_sealed IS NULL OR app_info_key <> $1)
		ORDER BY instance_id LIMIT $2 FOR UPDATE SKIP LOCKED`, current, batch)
	if err != nil {
		return 0, fmt.Errorf("seal appInfo: %w", err)
	}
	var todo []InstanceAccess
	for rows.Next() {
		var a InstanceAccess
		var key *string
		if err := rows.Scan(&a.InstanceID, &a.AppInfo, &a.sealed, &key); err != nil {
			rows.Close()
			return 0, fmt.Errorf("seal appInfo: %w", err)
		}
		if key != nil {
			a.keyID = *key
		}
		todo = append(todo, a)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("seal appInfo: %w", err)
	}
	for _, a := range todo {
		if err := s.open(&a); err != nil {
			return 0, err
		}
		keyID, sealed, err := s.Keys.Seal(a.AppInfo, appInfoContext(a.InstanceID))
		if err != nil {
			return 0, err
		}
		if _, err := tx.Exec(ctx, `UPDATE instances SET app_info = `+withoutPassword("app_info")+`, app_info_sealed = $2,
			app_info_key = $3 WHERE instance_id = $1`, a.InstanceID, sealed, keyID); err != nil {
			return 0, fmt.Errorf("seal appInfo of instance %s: %w", a.InstanceID, err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, fmt.Errorf("seal appInfo: %w", err)
	}
	return len(todo), nil
}

// Provisioned reports whether the instance's provisioning has finished (or the instance has moved on, e.g.
// released), with its lifecycle; both are zero when the workflow has not written its row yet.
func (s *Store) Provisioned(ctx context.Context, instanceID string) (done bool, lifecycle string, err error) {
	err = s.Pool.QueryRow(ctx, `SELECT lifecycle, provisioned_at IS NOT NULL OR lifecycle <> 'PROVISIONING'
		FROM instances WHERE instance_id = $1`, instanceID).Scan(&lifecycle, &done)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, "", nil
	}
	if err != nil {
		return false, "", fmt.Errorf("read instance %s: %w", instanceID, err)
	}
	return done, lifecycle, nil
}

// ReleasedTestInstance reports whether the instance is a released dial-test instance.
func (s *Store) ReleasedTestInstance(ctx context.Context, instanceID string) (bool, error) {
	var ok bool
	err := s.Pool.QueryRow(ctx, `SELECT test_flag AND lifecycle = 'RELEASED' FROM instances WHERE instance_id = $1`,
		instanceID).Scan(&ok)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("read instance %s: %w", instanceID, err)
	}
	return ok, nil
}

// InstanceAccess is what queryInstance answers for one instance: its lifecycle and its access data (appInfo,
// JSON as provisioning stored it; nil before provisioning and after release).
type InstanceAccess struct {
	InstanceID string
	Lifecycle  string
	AppInfo    []byte
	TestFlag   bool
	// ChargingMode is the product's (PERIOD, ONE_TIME, ON_DEMAND, ON_DEMAND_PKG), empty before the purchase order
	// was read.
	ChargingMode string
	// RefusalCode and RefusalMsg are set while the seller's provisioning refused the purchase (see
	// RecordPurchaseRefusal).
	RefusalCode, RefusalMsg string

	sealed []byte
	keyID  string
}

// InstancesAccess reads the instances among ids that have a row; the others are left out.
func (s *Store) InstancesAccess(ctx context.Context, ids []string) ([]InstanceAccess, error) {
	rows, err := s.Pool.Query(ctx, `SELECT instance_id, lifecycle, app_info, test_flag, COALESCE(charging_mode, ''),
			COALESCE(refusal_code, ''), COALESCE(refusal_msg, ''), app_info_sealed, COALESCE(app_info_key, '')
		FROM instances WHERE instance_id = ANY($1)`, ids)
	if err != nil {
		return nil, fmt.Errorf("query instances: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (InstanceAccess, error) {
		var v InstanceAccess
		err := r.Scan(&v.InstanceID, &v.Lifecycle, &v.AppInfo, &v.TestFlag, &v.ChargingMode, &v.RefusalCode, &v.RefusalMsg,
			&v.sealed, &v.keyID)
		if string(v.AppInfo) == "null" {
			v.AppInfo = nil
		}
		return v, err
	})
	if err != nil {
		return nil, fmt.Errorf("query instances: %w", err)
	}
	for i := range out {
		if err := s.open(&out[i]); err != nil {
			return nil, err
		}
	}
	return out, nil
}
