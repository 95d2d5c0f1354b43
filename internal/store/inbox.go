package store

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// The newInstance inbox (koogallery_inbox): one row per instanceId, written before newInstance is answered and
// read by the dispatchers that start the instance's workflow. The primary key is the instanceId derived from
// orderId + orderLineId, so marketplace retries find one row.

// InboxRow is one recorded newInstance.
type InboxRow struct {
	InstanceID   string     `json:"instanceId"`
	OrderID      string     `json:"orderId"`
	OrderLineID  string     `json:"orderLineId"`
	ProductID    string     `json:"productId,omitempty"` // the pay-per-use billing item the call named
	BusinessID   string     `json:"businessId"`
	TestFlag     bool       `json:"testFlag"`
	ReceivedAt   time.Time  `json:"receivedAt"`
	DispatchedAt *time.Time `json:"dispatchedAt,omitempty"`
	Attempts     int        `json:"attempts"`
	LastError    string     `json:"lastError,omitempty"`
	NextAttempt  time.Time  `json:"nextAttemptAt"`
}

// AcceptInbox records the newInstance r describes (InstanceID, OrderID, OrderLineID, BusinessID, TestFlag,
// ReceivedAt; the other fields are ignored) unless its instance is already recorded, leaving it to the
// re-driver from ReceivedAt + grace. retry reports that an earlier call recorded it; dispatched that its
// workflow's start was already confirmed. One statement, so concurrent retries of a call find one row. Its
// commit does not wait for the disk: the call's synchronous message log entry makes it durable before the
// answer (see commit.go).
func (s *Store) AcceptInbox(ctx context.Context, r InboxRow, grace time.Duration) (retry, dispatched bool, err error) {
	var at *time.Time
	err = s.Pool.QueryRow(ctx, `
		INSERT INTO koogallery_inbox (instance_id, order_id, order_line_id, business_id, test_flag, received_at, next_attempt_at,
			product_id)
		SELECT $1, $2, $3, $4, $5, $6, $6::timestamptz + $7::interval, $8 FROM `+relaxedCommit+`
		ON CONFLICT (instance_id) DO UPDATE SET instance_id = EXCLUDED.instance_id
		RETURNING xmax <> 0, dispatched_at`,
		r.InstanceID, r.OrderID, r.OrderLineID, r.BusinessID, r.TestFlag, r.ReceivedAt.UTC(), grace, r.ProductID).Scan(&retry, &at)
	if err != nil {
		return false, false, fmt.Errorf("record newInstance %s in the inbox: %w", r.InstanceID, err)
	}
	return retry, at != nil, nil
}

// InboxAccepted reports which of ids the inbox holds (dispatched or not).
func (s *Store) InboxAccepted(ctx context.Context, ids []string) (map[string]bool, error) {
	rows, err := s.Pool.Query(ctx, `SELECT instance_id FROM koogallery_inbox WHERE instance_id = ANY($1)`, ids)
	if err != nil {
		return nil, fmt.Errorf("read the inbox: %w", err)
	}
	found, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("read the inbox: %w", err)
	}
	out := make(map[string]bool, len(found))
	for _, id := range found {
		out[id] = true
	}
	return out, nil
}

// InboxEntry returns the inbox row of instance id. An unknown id is an error wrapping pgx.ErrNoRows.
func (s *Store) InboxEntry(ctx context.Context, id string) (InboxRow, error) {
	r, err := scanInboxRow(s.Pool.QueryRow(ctx, "SELECT "+inboxColumns+" FROM koogallery_inbox WHERE instance_id = $1", id))
	if err != nil {
		return InboxRow{}, fmt.Errorf("read inbox row %s: %w", id, err)
	}
	return r, nil
}

// InboxDispatchFailed records a failed start of instance id's workflow: one more attempt, the cause, and the
// next attempt backoff from now. A row already dispatched is left alone.
func (s *Store) InboxDispatchFailed(ctx context.Context, id, cause string, backoff time.Duration) error {
	if _, err := s.Pool.Exec(ctx, `UPDATE koogallery_inbox
			SET attempts = attempts + 1, last_error = $2, next_attempt_at = now() + $3::interval
			WHERE instance_id = $1 AND dispatched_at IS NULL`, id, cause, backoff); err != nil {
		return fmt.Errorf("record a failed dispatch of inbox row %s: %w", id, err)
	}
	return nil
}

// InboxDispatched marks instance id's workflow as started (the attempt that started it counts); a row already
// marked keeps its first dispatch time. Its commit does not wait for the disk: if a crash loses the mark, the
// re-driver starts the workflow again, which finds it already started.
func (s *Store) InboxDispatched(ctx context.Context, id string) error {
	if _, err := s.Pool.Exec(ctx, `UPDATE koogallery_inbox
		SET dispatched_at = now(), attempts = attempts + 1 FROM `+relaxedCommit+`
		WHERE instance_id = $1 AND dispatched_at IS NULL`, id); err != nil {
		return fmt.Errorf("mark inbox row %s dispatched: %w", id, err)
	}
	return nil
}

// ClaimInbox claims up to limit undispatched rows whose next attempt is due, oldest due first, and leases them
// for lease (their next attempt moves to now + lease), so re-drivers in several API processes do not dispatch
// the same rows at once. Rows another re-driver is claiming are skipped, not waited for (FOR UPDATE SKIP
// LOCKED, in the same statement as the lease). It returns the claimed instance ids.
func (s *Store) ClaimInbox(ctx context.Context, limit int, lease time.Duration) ([]string, error) {
	rows, err := s.Pool.Query(ctx, `UPDATE koogallery_inbox SET next_attempt_at = now() + $2::interval
		WHERE instance_id IN (SELECT instance_id FROM koogallery_inbox
			WHERE dispatched_at IS NULL AND next_attempt_at <= now()
			ORDER BY next_attempt_at LIMIT $1 FOR UPDATE SKIP LOCKED)
		RETURNING instance_id`, limit, lease)
	if err != nil {
		return nil, fmt.Errorf("claim inbox rows: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("claim inbox rows: %w", err)
	}
	return ids, nil
}

// ListInbox returns up to limit inbox rows for the console, undispatched ones first, newest first; with
// pendingOnly, only the undispatched ones.
func (s *Store) ListInbox(ctx context.Context, pendingOnly bool, limit int) ([]InboxRow, error) {
	rows, err := s.Pool.Query(ctx, "SELECT "+inboxColumns+` FROM koogallery_inbox WHERE NOT $1 OR dispatched_at IS NULL
		ORDER BY dispatched_at IS NULL DESC, received_at DESC LIMIT $2`, pendingOnly, limit)
	if err != nil {
		return nil, fmt.Errorf("list the inbox: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (InboxRow, error) { return scanInboxRow(row) })
	if err != nil {
		return nil, fmt.Errorf("list the inbox: %w", err)
	}
	return out, nil
}

const inboxColumns = `instance_id, order_id, order_line_id, business_id, test_flag, received_at, dispatched_at, attempts,
	last_error, next_attempt_at, product_id`

func scanInboxRow(row pgx.Row) (InboxRow, error) {
	var r InboxRow
	err := row.Scan(&r.InstanceID, &r.OrderID, &r.OrderLineID, &r.BusinessID, &r.TestFlag, &r.ReceivedAt,
		&r.DispatchedAt, &r.Attempts, &r.LastError, &r.NextAttempt, &r.ProductID)
	return r, err
}

// InboxPendingCount is the number of accepted newInstance calls whose workflow start is not confirmed yet.
func (s *Store) InboxPendingCount(ctx context.Context) (int64, error) {
	var n int64
	if err := s.Pool.QueryRow(ctx, `SELECT count(*) FROM koogallery_inbox WHERE dispatched_at IS NULL`).Scan(&n); err != nil {
		return 0, fmt.Errorf("count pending inbox rows: %w", err)
	}
	return n, nil
}
