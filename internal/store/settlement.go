package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/shopspring/decimal"

	"github.com/kooflow/kooflow/internal/settlement"
)

// The orders and instances as settlement reads them, outside a close's set-based statement (see the package
// doc): the ledger calls these inside its own transactions, so they take the transaction.

// SettlementOrders reads an order's lines (orderLineID empty: all of them) as settlement sees them.
func SettlementOrders(ctx context.Context, tx pgx.Tx, orderID, orderLineID string) ([]settlement.OrderRow, error) {
	return settlementOrders(ctx, tx, `WHERE order_id = $1 AND ($2 = '' OR order_line_id = $2)`, orderID, orderLineID)
}

// SettlementOrdersOf reads every order line of an instance as settlement sees them.
func SettlementOrdersOf(ctx context.Context, tx pgx.Tx, instanceID string) ([]settlement.OrderRow, error) {
	return settlementOrders(ctx, tx, `WHERE instance_id = $1`, instanceID)
}

func settlementOrders(ctx context.Context, tx pgx.Tx, where string, args ...any) ([]settlement.OrderRow, error) {
	rows, err := tx.Query(ctx, `SELECT order_id, order_line_id, instance_id, order_type, product_id, sku_code, period_type,
		period_number, quantity, paid_amount::text, list_amount::text, coalesce(refers_to_order_id, ''), effective_at, test_flag
		FROM orders `+where+` ORDER BY order_id, order_line_id`, args...)
	if err != nil {
		return nil, fmt.Errorf("read orders: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (settlement.OrderRow, error) {
		var r settlement.OrderRow
		var paid, list string
		if err := row.Scan(&r.OrderID, &r.OrderLineID, &r.InstanceID, &r.OrderType, &r.ProductID, &r.SKUCode, &r.PeriodType,
			&r.PeriodNum, &r.Quantity, &paid, &list, &r.RefersTo, &r.EffectiveAt, &r.TestFlag); err != nil {
			return r, err
		}
		var err error
		if r.PaidAmount, err = decimal.NewFromString(paid); err != nil {
			return r, fmt.Errorf("order %s paid amount %q: %w", r.OrderID, paid, err)
		}
		if r.ListAmount, err = decimal.NewFromString(list); err != nil {
			return r, fmt.Errorf("order %s list amount %q: %w", r.OrderID, list, err)
		}
		r.EffectiveAt = utcPtr(r.EffectiveAt)
		return r, nil
	})
	if err != nil {
		return nil, fmt.Errorf("read orders: %w", err)
	}
	return out, nil
}

// SettlementInstance reads what settlement needs of an instance: its supervision state and dial-test flag.
func SettlementInstance(ctx context.Context, tx pgx.Tx, instanceID string) (settlement.InstanceState, error) {
	inst := settlement.InstanceState{ID: instanceID}
	err := tx.QueryRow(ctx, `SELECT supervision, test_flag FROM instances WHERE instance_id = $1`, instanceID).
		Scan(&inst.Supervision, &inst.TestFlag)
	if errors.Is(err, pgx.ErrNoRows) {
		return inst, fmt.Errorf("read instance %s: %w", instanceID, ErrNotFound)
	}
	if err != nil {
		return inst, fmt.Errorf("read instance %s: %w", instanceID, err)
	}
	return inst, nil
}

// InstanceIDAfter walks the instances in primary-key order: it returns the id n places after after (n ≥ 1; the
// first id greater than after is 1 place after it), and ok false when there are fewer. Settlement cuts a close
// into batches of instance-id ranges with it.
func InstanceIDAfter(ctx context.Context, tx pgx.Tx, after string, n int) (id string, ok bool, err error) {
	err = tx.QueryRow(ctx, `SELECT instance_id FROM instances WHERE instance_id > $1 ORDER BY instance_id OFFSET $2 LIMIT 1`,
		after, n-1).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("walk instances after %q: %w", after, err)
	}
	return id, true, nil
}

// CountUnknownOrders counts the ids among orderIDs that have no orders row (yet).
func CountUnknownOrders(ctx context.Context, tx pgx.Tx, orderIDs []string) (int, error) {
	var n int
	if err := tx.QueryRow(ctx, `SELECT count(*) FROM unnest($1::text[]) id
		WHERE NOT EXISTS (SELECT 1 FROM orders o WHERE o.order_id = id)`, orderIDs).Scan(&n); err != nil {
		return 0, fmt.Errorf("count unknown orders: %w", err)
	}
	return n, nil
}
