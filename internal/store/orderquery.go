package store

import (
	"context"
	"fmt"
	"time"
)

// The order query's health (order_query_health): the QueryOrder activity records each call's outcome, the alert
// watcher reads it (order-query-failing).

// OrderQueryHealth is the order query as the workers last saw it.
type OrderQueryHealth struct {
	// FailingSince is when the current run of failures began; nil while the query works.
	FailingSince  *time.Time
	Failures      int64
	LastFailureAt *time.Time
	LastError     string
	LastOKAt      *time.Time
}

// okWriteEvery bounds how often a working query is written: a success only needs to end a run of failures, or
// refresh last_ok_at now and then.
const okWriteEvery = time.Minute

// RecordOrderQueryOK records a successful order query at at: any run of failures ends.
func (s *Store) RecordOrderQueryOK(ctx context.Context, at time.Time) error {
	if _, err := s.Pool.Exec(ctx, `UPDATE order_query_health SET failing_since = NULL, failures = 0, last_ok_at = $1
		WHERE failing_since IS NOT NULL OR last_ok_at IS NULL OR last_ok_at < $1::timestamptz - $2::interval`,
		at.UTC(), fmt.Sprintf("%d milliseconds", okWriteEvery.Milliseconds())); err != nil {
		return fmt.Errorf("record a successful order query: %w", err)
	}
	return nil
}

// RecordOrderQueryFailure records an order query that failed at at for a reason that is not about the order
// itself (transport, TLS, credentials, the marketplace's own errors); cause is kept without any credential.
func (s *Store) RecordOrderQueryFailure(ctx context.Context, at time.Time, cause string) error {
	if len(cause) > 500 {
		cause = cause[:500]
	}
	if _, err := s.Pool.Exec(ctx, `UPDATE order_query_health SET failing_since = COALESCE(failing_since, $1),
		failures = failures + 1, last_failure_at = GREATEST(last_failure_at, $1), last_error = $2`, at.UTC(), cause); err != nil {
		return fmt.Errorf("record a failed order query: %w", err)
	}
	return nil
}

// OrderQueryHealth reads the order query's health.
func (s *Store) OrderQueryHealth(ctx context.Context) (OrderQueryHealth, error) {
	var h OrderQueryHealth
	if err := s.Pool.QueryRow(ctx, `SELECT failing_since, failures, last_failure_at, last_error, last_ok_at
		FROM order_query_health`).Scan(&h.FailingSince, &h.Failures, &h.LastFailureAt, &h.LastError, &h.LastOKAt); err != nil {
		return h, fmt.Errorf("read the order query's health: %w", err)
	}
	return h, nil
}

// WaitingPurchases counts the purchases not provisioned yet (dial tests aside) and returns the oldest one's order
// time, from which the marketplace's refund deadline follows.
func (s *Store) WaitingPurchases(ctx context.Context) (int64, *time.Time, error) {
	var n int64
	var oldest *time.Time
	if err := s.Pool.QueryRow(ctx, `SELECT count(*), min(COALESCE(b.received_at, i.created_at))
		FROM instances i LEFT JOIN koogallery_inbox b ON b.instance_id = i.instance_id
		WHERE i.lifecycle = 'PROVISIONING' AND i.provisioned_at IS NULL AND NOT i.test_flag`).Scan(&n, &oldest); err != nil {
		return 0, nil, fmt.Errorf("count the purchases waiting for provisioning: %w", err)
	}
	return n, oldest, nil
}
