package store

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// PendingRefund is a refund request waiting for the seller's decision, with its instance.
type PendingRefund struct {
	InstanceID string `json:"instanceId"`
	Refund
}

// PendingRefunds lists refund requests waiting for a decision, oldest first (the marketplace's guarantee period
// runs from the request), at most limit of them.
func (s *Store) PendingRefunds(ctx context.Context, limit int) ([]PendingRefund, error) {
	if limit <= 0 || limit > 1000 {
		limit = 100
	}
	rows, err := s.Pool.Query(ctx, `SELECT instance_id, refund_id, order_id, order_line_id, status, requested_amount::text,
		approved_amount::text, full_only, reason, decision_note, requested_by, requested_at, decided_by, decided_at,
		refund_order_id FROM refunds WHERE status = 'PENDING' ORDER BY requested_at, refund_id LIMIT $1`, limit)
	if err != nil {
		return nil, fmt.Errorf("list pending refunds: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (PendingRefund, error) {
		var p PendingRefund
		f := &p.Refund
		err := r.Scan(&p.InstanceID, &f.RefundID, &f.OrderID, &f.OrderLineID, &f.Status, &f.RequestedAmount, &f.ApprovedAmount,
			&f.FullOnly, &f.Reason, &f.DecisionNote, &f.RequestedBy, &f.RequestedAt, &f.DecidedBy, &f.DecidedAt, &f.RefundOrderID)
		return p, err
	})
	if err != nil {
		return nil, fmt.Errorf("list pending refunds: %w", err)
	}
	return out, nil
}
