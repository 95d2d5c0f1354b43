package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// System alerts are about kooflow as a whole rather than one instance (a settlement period, the marketplace's
// order query, a bill). They live in system_alerts and otherwise behave as instance alerts: one row per dedupe
// key, raised once, resolved when the cause is gone, pushed once raised and once resolved by the same pusher,
// listed with the instance alerts and counted in the same gauge.

// allAlerts is every alert, instance and system, in one shape for listing.
const allAlerts = `SELECT instance_id, '' AS subject, alert_key, kind, raised_at, message, detail, resolved_at FROM instance_alerts
	UNION ALL SELECT '', subject, alert_key, kind, raised_at, message, detail, resolved_at FROM system_alerts`

// SystemAlert is an alert about no single instance.
type SystemAlert struct {
	Kind string
	// Key deduplicates: raising a key that is open changes nothing. It should name the cause ("settlement-failed:
	// 2026-10"), so a cause that comes back after its resolution raises the same alert again.
	Key string
	// Subject says what the alert is about, for a person: "settlement period 2026-10", "order query".
	Subject string
	Message string
	Detail  json.RawMessage
}

func (a SystemAlert) validate() error {
	var missing []string
	for _, f := range [][2]string{{"kind", a.Kind}, {"key", a.Key}, {"subject", a.Subject}, {"message", a.Message}} {
		if f[1] == "" {
			missing = append(missing, f[0])
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("system alert %q: missing %v", a.Key, missing)
	}
	if len(a.Detail) > 0 && !json.Valid(a.Detail) {
		return fmt.Errorf("system alert %q: detail is not JSON", a.Key)
	}
	return nil
}

// System reports whether the delivery is of a system alert (no instance).
func (p AlertPush) System() bool { return p.InstanceID == "" }

// RaiseSystemAlert raises a, as of at, unless an alert with its key is open; an alert of that key resolved
// earlier is raised again (the cause came back) and pushed again. It reports whether it raised.
func (s *Store) RaiseSystemAlert(ctx context.Context, a SystemAlert, at time.Time) (bool, error) {
	if err := a.validate(); err != nil {
		return false, err
	}
	tag, err := s.Pool.Exec(ctx, `INSERT INTO system_alerts (alert_key, kind, subject, raised_at, message, detail)
		VALUES ($1, $2, $3, $4, $5, $6)
		ON CONFLICT (alert_key) DO UPDATE SET kind = EXCLUDED.kind, subject = EXCLUDED.subject,
			raised_at = EXCLUDED.raised_at, message = EXCLUDED.message, detail = EXCLUDED.detail, resolved_at = NULL,
			pushed_at = NULL, resolved_pushed_at = NULL, push_next_at = NULL, push_attempts = 0, push_last_error = ''
		WHERE system_alerts.resolved_at IS NOT NULL`,
		a.Key, a.Kind, a.Subject, at.UTC(), a.Message, nullJSON(a.Detail))
	if err != nil {
		return false, fmt.Errorf("raise system alert %s: %w", a.Key, err)
	}
	return tag.RowsAffected() > 0, nil
}

// ResolveSystemAlert resolves the open alert of key, as of at; it reports whether one was open.
func (s *Store) ResolveSystemAlert(ctx context.Context, key string, at time.Time) (bool, error) {
	tag, err := s.Pool.Exec(ctx, `UPDATE system_alerts SET resolved_at = $2 WHERE alert_key = $1 AND resolved_at IS NULL`,
		key, at.UTC())
	if err != nil {
		return false, fmt.Errorf("resolve system alert %s: %w", key, err)
	}
	return tag.RowsAffected() > 0, nil
}

// OpenSystemAlert returns the open system alert of key, or nil.
func (s *Store) OpenSystemAlert(ctx context.Context, key string) (*Alert, error) {
	var a Alert
	var detail []byte
	err := s.Pool.QueryRow(ctx, `SELECT subject, alert_key, kind, raised_at, message, detail FROM system_alerts
		WHERE alert_key = $1 AND resolved_at IS NULL`, key).
		Scan(&a.Subject, &a.Key, &a.Kind, &a.RaisedAt, &a.Message, &detail)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read system alert %s: %w", key, err)
	}
	a.Detail = detail
	return &a, nil
}

// claimSystemAlertPushes is ClaimAlertPushes over system_alerts.
func (s *Store) claimSystemAlertPushes(ctx context.Context, now time.Time, limit int, lease time.Duration) ([]AlertPush, error) {
	rows, err := s.Pool.Query(ctx, `
		UPDATE system_alerts a SET push_next_at = $3::timestamptz + $2 * interval '1 millisecond'
		FROM (SELECT alert_key FROM system_alerts
			WHERE (pushed_at IS NULL OR (resolved_at IS NOT NULL AND resolved_pushed_at IS NULL))
				AND (push_next_at IS NULL OR push_next_at <= $3)
			ORDER BY raised_at LIMIT $1 FOR UPDATE SKIP LOCKED) due
		WHERE a.alert_key = due.alert_key
		RETURNING a.subject, a.alert_key, a.kind, a.raised_at, a.message, a.detail, a.resolved_at,
			a.pushed_at IS NOT NULL, a.push_attempts`,
		limit, lease.Milliseconds(), now.UTC())
	if err != nil {
		return nil, fmt.Errorf("claim system alert pushes: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (AlertPush, error) {
		var p AlertPush
		err := r.Scan(&p.Subject, &p.Key, &p.Kind, &p.RaisedAt, &p.Message, &p.Detail, &p.ResolvedAt, &p.Resolved, &p.Attempts)
		return p, err
	})
	if err != nil {
		return nil, fmt.Errorf("claim system alert pushes: %w", err)
	}
	return out, nil
}

func (s *Store) systemAlertPushed(ctx context.Context, p AlertPush) error {
	col := "pushed_at"
	if p.Resolved {
		col = "resolved_pushed_at"
	}
	if _, err := s.Pool.Exec(ctx, `UPDATE system_alerts SET `+col+` = now(), push_next_at = NULL, push_attempts = 0,
		push_last_error = '' WHERE alert_key = $1`, p.Key); err != nil {
		return fmt.Errorf("record the push of system alert %s: %w", p.Key, err)
	}
	return nil
}

func (s *Store) systemAlertPushFailed(ctx context.Context, p AlertPush, retryAt time.Time, cause string) error {
	if _, err := s.Pool.Exec(ctx, `UPDATE system_alerts SET push_next_at = $2, push_attempts = push_attempts + 1,
		push_last_error = $3 WHERE alert_key = $1`, p.Key, retryAt.UTC(), cause); err != nil {
		return fmt.Errorf("record the failed push of system alert %s: %w", p.Key, err)
	}
	return nil
}
