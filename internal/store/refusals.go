package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// A purchase the seller's provisioning refused permanently (docs/koogallery.md, "Refused purchases"): the
// instances row carries the KooGallery newInstance code and message the gateway answers with, and an alert of
// kind AlertPurchaseRefused is open, until provisioning is tried again or the instance moves on.

// AlertPurchaseRefused is the kind of the alert raised when the seller's provisioning refused a purchase.
const AlertPurchaseRefused = "purchase-refused"

// purchaseRefusedKey is the alert's key: one per instance. A refusal after an operator's resume reopens it.
const purchaseRefusedKey = "purchase-refused"

// PurchaseRefusal is a refused purchase as recorded.
type PurchaseRefusal struct {
	InstanceID string
	OrderID    string
	Code       string // 000100–000107
	Message    string // the provisioner's own words
	At         time.Time
}

// RecordPurchaseRefusal records that the seller's provisioning refused the instance's purchase and raises (or
// reopens) its purchase-refused alert, in one transaction. It does nothing to an instance that is no longer
// provisioning. The instance's row must exist (the lifecycle workflow writes it before provisioning).
func (s *Store) RecordPurchaseRefusal(ctx context.Context, r PurchaseRefusal) error {
	tx, err := s.Pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("record the refusal of instance %s: begin: %w", r.InstanceID, err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	var provisioning bool
	err = tx.QueryRow(ctx, `SELECT lifecycle = 'PROVISIONING' AND provisioned_at IS NULL FROM instances
		WHERE instance_id = $1 FOR UPDATE`, r.InstanceID).Scan(&provisioning)
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("record the refusal: %w: instance %s has no row yet", ErrNotFound, r.InstanceID)
	}
	if err != nil {
		return fmt.Errorf("record the refusal of instance %s: %w", r.InstanceID, err)
	}
	if !provisioning {
		return nil
	}
	at := r.At.UTC()
	if _, err := tx.Exec(ctx, `UPDATE instances SET refusal_code = $2, refusal_msg = $3, refused_at = $4,
		updated_at = now() WHERE instance_id = $1`, r.InstanceID, r.Code, r.Message, at); err != nil {
		return fmt.Errorf("record the refusal of instance %s: %w", r.InstanceID, err)
	}
	detail, err := json.Marshal(map[string]string{"resultCode": r.Code, "orderId": r.OrderID, "reason": r.Message})
	if err != nil {
		return fmt.Errorf("encode the refusal alert's detail: %w", err)
	}
	msg := fmt.Sprintf("the seller's provisioning refused order %s: %s. The marketplace is answered %s and will "+
		"treat the purchase as failed (refunded once its 3 h newInstance window ends); resume the parked step "+
		"once the cause is fixed, or contact the customer", r.OrderID, r.Message, r.Code)
	if _, err := tx.Exec(ctx, `INSERT INTO instance_alerts (instance_id, alert_key, kind, raised_at, message, detail)
		VALUES ($1, $2, $3, $4, $5, $6)
		ON CONFLICT (instance_id, alert_key) DO UPDATE SET raised_at = EXCLUDED.raised_at,
			message = EXCLUDED.message, detail = EXCLUDED.detail, resolved_at = NULL,
			pushed_at = NULL, resolved_pushed_at = NULL, push_next_at = NULL, push_attempts = 0, push_last_error = ''
		WHERE instance_alerts.resolved_at IS NOT NULL`,
		r.InstanceID, purchaseRefusedKey, AlertPurchaseRefused, at, msg, detail); err != nil {
		return fmt.Errorf("raise the refusal alert of instance %s: %w", r.InstanceID, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("record the refusal of instance %s: commit: %w", r.InstanceID, err)
	}
	return nil
}

// ClearPurchaseRefusal forgets the instance's recorded refusal and resolves its purchase-refused alert:
// provisioning is being tried again, so the marketplace hears "in progress" again. A no-op when none is recorded.
func (s *Store) ClearPurchaseRefusal(ctx context.Context, instanceID string) error {
	if _, err := s.Pool.Exec(ctx, clearRefusalSQL+` AND refusal_code IS NOT NULL`+clearRefusalTail, instanceID); err != nil {
		return fmt.Errorf("clear the refusal of instance %s: %w", instanceID, err)
	}
	return nil
}

// clearRefusalSQL clears the instance's refusal and resolves its alert in one statement; the caller completes the
// UPDATE's WHERE clause before clearRefusalTail.
const (
	clearRefusalSQL = `WITH cleared AS (
		UPDATE instances SET refusal_code = NULL, refusal_msg = NULL, refused_at = NULL, updated_at = now()
		WHERE instance_id = $1`
	clearRefusalTail = `
		RETURNING instance_id)
	UPDATE instance_alerts SET resolved_at = now()
	WHERE instance_id IN (SELECT instance_id FROM cleared) AND kind = '` + AlertPurchaseRefused + `' AND resolved_at IS NULL`
)

// settleRefusal clears a recorded refusal once the instance has moved on (provisioned by a later attempt, skipped,
// released): only a purchase still provisioning is reported as refused. Apply calls it after each projection.
func settleRefusal(ctx context.Context, tx pgx.Tx, instanceID string) error {
	if _, err := tx.Exec(ctx, clearRefusalSQL+` AND refusal_code IS NOT NULL
		AND (lifecycle <> 'PROVISIONING' OR provisioned_at IS NOT NULL)`+clearRefusalTail, instanceID); err != nil {
		return fmt.Errorf("settle the refusal of instance %s: %w", instanceID, err)
	}
	return nil
}

// Refusal reads the instance's recorded refusal: ok is false when none is recorded or the instance has no row.
func (s *Store) Refusal(ctx context.Context, instanceID string) (code, message string, ok bool, err error) {
	var c, m *string
	err = s.Pool.QueryRow(ctx, `SELECT refusal_code, refusal_msg FROM instances WHERE instance_id = $1`,
		instanceID).Scan(&c, &m)
	if errors.Is(err, pgx.ErrNoRows) || (err == nil && c == nil) {
		return "", "", false, nil
	}
	if err != nil {
		return "", "", false, fmt.Errorf("read the refusal of instance %s: %w", instanceID, err)
	}
	if m != nil {
		message = *m
	}
	return *c, message, true, nil
}
