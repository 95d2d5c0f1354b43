package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/kooflow/kooflow/internal/koogallery"
)

// Alerts that reach a person (README.md, "Operating kooflow"): the conditions the watcher raises from the read
// model (a purchase not provisioned in time, a parked step), and the push bookkeeping of every alert.

// Alert kinds raised by WatchAlerts.
const (
	AlertPurchaseFailing = "purchase-failing"
	AlertParked          = "parked"
	AlertFreezeRetention = "freeze-retention"
	AlertMarketplaceCall = "marketplace-call-failed"
)

// RetryWindows are how long the marketplace retries each call before only a restart from the seller center helps
// (docs/koogallery.md, "Retry windows"). queryInstance is polled, not retried, and has none.
var RetryWindows = map[string]time.Duration{
	koogallery.ActivityNewInstance:         3 * time.Hour,
	koogallery.ActivityRefreshInstance:     time.Hour,
	koogallery.ActivityReleaseInstance:     time.Hour,
	koogallery.ActivityUpdateInstanceState: 2 * time.Hour,
	koogallery.ActivityUpgradeInstance:     3 * time.Hour,
}

// callLookBack bounds how far back the watcher looks for failed calls: far longer than any retry window, so a
// worker that was down for a few days still raises what it missed, while each round reads a bounded slice of the
// message log.
const callLookBack = 7 * 24 * time.Hour

// FreezeRetention is how long the marketplace keeps a frozen (expired, not renewed) instance before it expects
// the seller's release (docs/koogallery.md, "Expiry, freeze and release").
const FreezeRetention = 15 * 24 * time.Hour

// RefundWindow is how long the marketplace retries newInstance before it refunds the order automatically
// (docs/koogallery.md, "Retry windows").
const RefundWindow = 3 * time.Hour

// WatchAlerts raises and resolves the alerts derived from the read model, as of now:
//   - purchase-failing (one per instance): provisioning has not succeeded purchaseAfter after the order was
//     received, with the time left before the marketplace's refund in the message; resolved once provisioned or
//     no longer provisioning;
//   - parked (one per parking, keyed by when it parked): the instance waits for a person; resolved when that
//     parking ended;
//   - freeze-retention (one per freeze, keyed by when it froze): frozen longer than FreezeRetention with no
//     release; resolved when the instance is no longer frozen (renewed and unfrozen, or released);
//   - marketplace-call-failed (one per business key of a call): see watchMarketplaceCalls.
//
// Every statement is idempotent, so several worker processes may watch at once. It returns how many alerts it
// raised and resolved.
func (s *Store) WatchAlerts(ctx context.Context, now time.Time, purchaseAfter time.Duration) (raised, resolved int64, err error) {
	now = now.UTC()
	rows, err := s.Pool.Query(ctx, `
		SELECT i.instance_id, i.order_id, COALESCE(b.received_at, i.created_at), i.parked, i.parked_reason
		FROM instances i LEFT JOIN koogallery_inbox b ON b.instance_id = i.instance_id
		WHERE i.lifecycle = 'PROVISIONING' AND i.provisioned_at IS NULL AND NOT i.test_flag
			AND COALESCE(b.received_at, i.created_at) <= $1
			AND NOT EXISTS (SELECT 1 FROM instance_alerts a WHERE a.instance_id = i.instance_id AND a.alert_key = $2)`,
		now.Add(-purchaseAfter), AlertPurchaseFailing)
	if err != nil {
		return 0, 0, fmt.Errorf("find purchases not provisioned in time: %w", err)
	}
	type late struct {
		id, order, reason string
		ordered           time.Time
		parked            bool
	}
	var lates []late
	var l late
	if _, err := pgx.ForEachRow(rows, []any{&l.id, &l.order, &l.ordered, &l.parked, &l.reason}, func() error {
		lates = append(lates, l)
		return nil
	}); err != nil {
		return 0, 0, fmt.Errorf("find purchases not provisioned in time: %w", err)
	}
	for _, l := range lates {
		refundAt := l.ordered.Add(RefundWindow)
		left := refundAt.Sub(now).Round(time.Minute)
		msg := fmt.Sprintf("order %s is not provisioned %s after the marketplace's newInstance; the marketplace refunds it "+
			"automatically at %s (%s left)", l.order, now.Sub(l.ordered).Round(time.Minute), refundAt.Format(time.RFC3339), left)
		if left <= 0 {
			msg = fmt.Sprintf("order %s is not provisioned %s after the marketplace's newInstance; its 3 h window ended at %s: "+
				"the marketplace refunds it, and only a restart from the seller center helps", l.order, now.Sub(l.ordered).Round(time.Minute),
				refundAt.Format(time.RFC3339))
		}
		if l.parked {
			msg += "; parked: " + l.reason
		}
		detail, err := json.Marshal(map[string]any{"orderId": l.order, "orderedAt": l.ordered, "refundAt": refundAt})
		if err != nil {
			return raised, resolved, fmt.Errorf("encode alert detail: %w", err)
		}
		tag, err := s.Pool.Exec(ctx, `INSERT INTO instance_alerts (instance_id, alert_key, kind, raised_at, message, detail)
			VALUES ($1, $2, $2, $3, $4, $5) ON CONFLICT (instance_id, alert_key) DO NOTHING`,
			l.id, AlertPurchaseFailing, now, msg, detail)
		if err != nil {
			return raised, resolved, fmt.Errorf("raise purchase-failing for instance %s: %w", l.id, err)
		}
		raised += tag.RowsAffected()
	}
	tag, err := s.Pool.Exec(ctx, `UPDATE instance_alerts a SET resolved_at = $2
		FROM instances i
		WHERE a.instance_id = i.instance_id AND a.kind = $1 AND a.resolved_at IS NULL
			AND (i.lifecycle <> 'PROVISIONING' OR i.provisioned_at IS NOT NULL)`, AlertPurchaseFailing, now)
	if err != nil {
		return raised, resolved, fmt.Errorf("resolve purchase-failing alerts: %w", err)
	}
	resolved += tag.RowsAffected()

	tag, err = s.Pool.Exec(ctx, `INSERT INTO instance_alerts (instance_id, alert_key, kind, raised_at, message, detail)
		SELECT instance_id, $1 || ':' || to_char(parked_at AT TIME ZONE 'UTC', 'YYYYMMDD"T"HH24MISS.US'), $1,
			parked_at, 'parked at ' || parked_step || ': ' || parked_reason || ' (resume or skip it in the console)',
			jsonb_build_object('step', parked_step, 'orderId', order_id)
		FROM instances WHERE parked AND parked_at IS NOT NULL
		ON CONFLICT (instance_id, alert_key) DO NOTHING`, AlertParked)
	if err != nil {
		return raised, resolved, fmt.Errorf("raise parked alerts: %w", err)
	}
	raised += tag.RowsAffected()
	tag, err = s.Pool.Exec(ctx, `UPDATE instance_alerts a SET resolved_at = $2
		WHERE a.kind = $1 AND a.resolved_at IS NULL AND NOT EXISTS (
			SELECT 1 FROM instances i WHERE i.instance_id = a.instance_id AND i.parked AND i.parked_at IS NOT NULL
				AND a.alert_key = $1 || ':' || to_char(i.parked_at AT TIME ZONE 'UTC', 'YYYYMMDD"T"HH24MISS.US'))`, AlertParked, now)
	if err != nil {
		return raised, resolved, fmt.Errorf("resolve parked alerts: %w", err)
	}
	resolved += tag.RowsAffected()

	tag, err = s.Pool.Exec(ctx, `INSERT INTO instance_alerts (instance_id, alert_key, kind, raised_at, message, detail)
		SELECT instance_id, $1 || ':' || to_char(frozen_at AT TIME ZONE 'UTC', 'YYYYMMDD"T"HH24MISS.US'), $1, $2,
			'order ' || order_id || ' has been frozen since ' || to_char(frozen_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI') ||
			' UTC, longer than the marketplace''s 15-day retention, and no releaseInstance arrived: check the order in ' ||
			'the seller center, then renew or release the instance',
			jsonb_build_object('orderId', order_id, 'frozenAt', frozen_at, 'retentionEndedAt', frozen_at + $3::interval)
		FROM instances WHERE lifecycle = 'FROZEN' AND frozen_at IS NOT NULL AND NOT test_flag
			AND frozen_at <= $2::timestamptz - $3::interval
		ON CONFLICT (instance_id, alert_key) DO NOTHING`, AlertFreezeRetention, now, FreezeRetention)
	if err != nil {
		return raised, resolved, fmt.Errorf("raise freeze-retention alerts: %w", err)
	}
	raised += tag.RowsAffected()
	tag, err = s.Pool.Exec(ctx, `UPDATE instance_alerts a SET resolved_at = $2
		WHERE a.kind = $1 AND a.resolved_at IS NULL AND NOT EXISTS (
			SELECT 1 FROM instances i WHERE i.instance_id = a.instance_id AND i.lifecycle = 'FROZEN'
				AND a.alert_key = $1 || ':' || to_char(i.frozen_at AT TIME ZONE 'UTC', 'YYYYMMDD"T"HH24MISS.US'))`,
		AlertFreezeRetention, now)
	if err != nil {
		return raised, resolved, fmt.Errorf("resolve freeze-retention alerts: %w", err)
	}
	resolved += tag.RowsAffected()

	r, v, err := s.watchMarketplaceCalls(ctx, now)
	return raised + r, resolved + v, err
}

// watchMarketplaceCalls raises marketplace-call-failed for a verified marketplace call (not a dial test) that
// kooflow answered with a failure and of which no successful delivery arrived within the call's retry window,
// counted from its first failed delivery: the marketplace has stopped retrying, and only a restart from the seller
// center (生产接口消息 › 重新启动) delivers it again. Deliveries are the same call when they carry the same business
// key (activity, order, order line, instances, scene, status). The alert is resolved when a successful delivery of
// that key arrives (the restart). Calls whose instance has no read-model row yet (a newInstance that failed before
// its instance existed) cannot carry an instance alert; they stay in the message log's failed list.
func (s *Store) watchMarketplaceCalls(ctx context.Context, now time.Time) (raised, resolved int64, err error) {
	activities := make([]string, 0, len(RetryWindows))
	windows := make([]string, 0, len(RetryWindows))
	for a, w := range RetryWindows {
		activities = append(activities, a)
		windows = append(windows, fmt.Sprintf("%d seconds", int64(w.Seconds())))
	}
	const callKey = `m.activity || '|' || m.order_id || '|' || m.order_line_id || '|' ||
		array_to_string(m.instance_ids, ',') || '|' || m.scene || '|' || m.status`
	tag, err := s.Pool.Exec(ctx, `
		WITH win AS (SELECT * FROM unnest($2::text[], $3::interval[]) AS w(activity, span)),
		failed AS (
			SELECT `+callKey+` AS call_key, m.activity, m.order_id, m.instance_ids[1] AS instance_id,
				min(m.received_at) AS first_failed, max(m.received_at) AS last_failed, count(*) AS deliveries,
				(array_agg(m.result_code || ' ' || m.result_msg ORDER BY m.received_at DESC))[1] AS last_answer,
				w.span
			FROM koogallery_messages m JOIN win w ON w.activity = m.activity
			WHERE m.failed AND m.verification = 'ok' AND NOT m.test_flag AND cardinality(m.instance_ids) > 0
				AND m.received_at >= $4::timestamptz - $5::interval
			GROUP BY 1, 2, 3, 4, w.span
		)
		INSERT INTO instance_alerts (instance_id, alert_key, kind, raised_at, message, detail)
		SELECT f.instance_id, $1 || ':' || md5(f.call_key), $1, $4,
			f.activity || ' ' || coalesce(nullif(f.order_id, ''), f.instance_id) || ' failed ' || f.deliveries ||
				' time(s) from ' || to_char(f.first_failed AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI') || ' UTC (last answer ' ||
				f.last_answer || ') and the marketplace''s retry window ended at ' ||
				to_char((f.first_failed + f.span) AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI') ||
				' UTC: fix the cause, then restart the call in the seller center (生产接口消息 › 重新启动)',
			jsonb_build_object('activity', f.activity, 'orderId', f.order_id, 'firstFailedAt', f.first_failed,
				'lastFailedAt', f.last_failed, 'deliveries', f.deliveries, 'lastAnswer', f.last_answer,
				'windowEndedAt', f.first_failed + f.span)
		FROM failed f
		WHERE f.first_failed + f.span <= $4
			AND EXISTS (SELECT 1 FROM instances i WHERE i.instance_id = f.instance_id)
			AND NOT EXISTS (SELECT 1 FROM koogallery_messages m WHERE m.activity = f.activity
				AND m.received_at > f.first_failed AND NOT m.failed AND m.verification = 'ok' AND `+callKey+` = f.call_key)
		ON CONFLICT (instance_id, alert_key) DO NOTHING`,
		AlertMarketplaceCall, activities, windows, now, fmt.Sprintf("%d seconds", int64(callLookBack.Seconds())))
	if err != nil {
		return 0, 0, fmt.Errorf("raise marketplace-call-failed alerts: %w", err)
	}
	raised = tag.RowsAffected()
	tag, err = s.Pool.Exec(ctx, `UPDATE instance_alerts a SET resolved_at = $2
		WHERE a.kind = $1 AND a.resolved_at IS NULL AND EXISTS (
			SELECT 1 FROM koogallery_messages m
			WHERE m.activity = a.detail->>'activity' AND m.received_at > (a.detail->>'firstFailedAt')::timestamptz
				AND NOT m.failed AND m.verification = 'ok'
				AND a.alert_key = $1 || ':' || md5(`+callKey+`))`, AlertMarketplaceCall, now)
	if err != nil {
		return raised, 0, fmt.Errorf("resolve marketplace-call-failed alerts: %w", err)
	}
	return raised, tag.RowsAffected(), nil
}

// AlertPush is one delivery due: an alert's raising, or its resolution.
type AlertPush struct {
	Alert
	OrderID string `json:"orderId"`
	// Resolved is true when this delivery announces the resolution (the raising was pushed before).
	Resolved bool `json:"resolved"`
	Attempts int  `json:"attempts"`
}

// ClaimAlertPushes leases up to limit due deliveries for lease, as of now (the pusher's clock): alerts whose raising or resolution has not been
// pushed and whose backoff has passed. A delivery not confirmed within the lease is due again, so a pusher that
// dies loses nothing; rows another pusher holds are skipped.
func (s *Store) ClaimAlertPushes(ctx context.Context, now time.Time, limit int, lease time.Duration) ([]AlertPush, error) {
	rows, err := s.Pool.Query(ctx, `
		UPDATE instance_alerts a SET push_next_at = $3::timestamptz + $2 * interval '1 millisecond'
		FROM (SELECT instance_id, alert_key FROM instance_alerts
			WHERE (pushed_at IS NULL OR (resolved_at IS NOT NULL AND resolved_pushed_at IS NULL))
				AND (push_next_at IS NULL OR push_next_at <= $3)
			ORDER BY raised_at LIMIT $1 FOR UPDATE SKIP LOCKED) due
		WHERE a.instance_id = due.instance_id AND a.alert_key = due.alert_key
		RETURNING a.instance_id, a.alert_key, a.kind, a.raised_at, a.message, a.detail, a.resolved_at,
			a.pushed_at IS NOT NULL, a.push_attempts,
			COALESCE((SELECT order_id FROM instances i WHERE i.instance_id = a.instance_id), '')`,
		limit, lease.Milliseconds(), now.UTC())
	if err != nil {
		return nil, fmt.Errorf("claim alert pushes: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (AlertPush, error) {
		var p AlertPush
		err := r.Scan(&p.InstanceID, &p.Key, &p.Kind, &p.RaisedAt, &p.Message, &p.Detail, &p.ResolvedAt, &p.Resolved,
			&p.Attempts, &p.OrderID)
		return p, err
	})
	if err != nil {
		return nil, fmt.Errorf("claim alert pushes: %w", err)
	}
	if len(out) >= limit {
		return out, nil
	}
	sys, err := s.claimSystemAlertPushes(ctx, now, limit-len(out), lease)
	if err != nil {
		return out, err
	}
	return append(out, sys...), nil
}

// AlertPushed records a confirmed delivery.
func (s *Store) AlertPushed(ctx context.Context, p AlertPush) error {
	if p.System() {
		return s.systemAlertPushed(ctx, p)
	}
	col := "pushed_at"
	if p.Resolved {
		col = "resolved_pushed_at"
	}
	if _, err := s.Pool.Exec(ctx, `UPDATE instance_alerts SET `+col+` = now(), push_next_at = NULL, push_attempts = 0,
		push_last_error = '' WHERE instance_id = $1 AND alert_key = $2`, p.InstanceID, p.Key); err != nil {
		return fmt.Errorf("record the push of alert %s/%s: %w", p.InstanceID, p.Key, err)
	}
	return nil
}

// AlertPushFailed records a failed delivery and when to try again.
func (s *Store) AlertPushFailed(ctx context.Context, p AlertPush, retryAt time.Time, cause string) error {
	if p.System() {
		return s.systemAlertPushFailed(ctx, p, retryAt, cause)
	}
	if _, err := s.Pool.Exec(ctx, `UPDATE instance_alerts SET push_next_at = $3, push_attempts = push_attempts + 1,
		push_last_error = $4 WHERE instance_id = $1 AND alert_key = $2`, p.InstanceID, p.Key, retryAt.UTC(), cause); err != nil {
		return fmt.Errorf("record the failed push of alert %s/%s: %w", p.InstanceID, p.Key, err)
	}
	return nil
}
