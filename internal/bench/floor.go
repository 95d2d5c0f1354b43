package bench

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// floorTable is the empty table the write floor fills; it is dropped afterwards.
const floorTable = "bench_write_floor"

// floorInsert writes one ledger-width row per eligible order line, keyed like the ledger (order_id,
// order_line_id), in one INSERT … SELECT: what writing the lines costs with nothing computed per line, no
// batches and no workflow. The values are the order's own, so the rows are as wide as the ledger's.
const floorInsert = `
INSERT INTO ` + floorTable + ` (order_id, order_line_id, bill_id, instance_id, order_type, product_id, sku_code,
    refers_to_order_id, attributed_at, paid_amount, list_amount, product_type, rate, revenue, platform_fee, settlement)
SELECT o.order_id, o.order_line_id, 1, o.instance_id, o.order_type, o.product_id, o.sku_code, o.refers_to_order_id,
       o.effective_at, o.paid_amount, o.list_amount, 'general', 0.05, round(o.paid_amount, 2),
       round(o.paid_amount * 0.05, 2), round(o.paid_amount * 0.95, 2)
FROM orders o JOIN instances i ON i.instance_id = o.instance_id
WHERE o.effective_at < $1 AND NOT o.test_flag AND NOT i.test_flag
  AND i.supervision IN ('NOT_INVOLVED', 'COMPLETED')
  AND o.order_type IN ('NEW', 'TRIAL_TO_FORMAL', 'RENEW', 'CHANGE')`

// writeFloor times floorInsert into a fresh copy of settlement_lines' shape (columns, primary key and block-range
// index), then drops the copy and checkpoints, so the close that follows starts from the same state.
func writeFloor(ctx context.Context, pool *pgxpool.Pool, end time.Time) (time.Duration, int64, error) {
	if _, err := pool.Exec(ctx, `DROP TABLE IF EXISTS `+floorTable); err != nil {
		return 0, 0, fmt.Errorf("write floor: %w", err)
	}
	if _, err := pool.Exec(ctx, `CREATE TABLE `+floorTable+` (LIKE settlement_lines INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING INDEXES)`); err != nil {
		return 0, 0, fmt.Errorf("write floor: create the empty table: %w", err)
	}
	defer func() {
		_, _ = pool.Exec(context.WithoutCancel(ctx), `DROP TABLE IF EXISTS `+floorTable)
		_, _ = pool.Exec(context.WithoutCancel(ctx), `CHECKPOINT`)
	}()
	if _, err := pool.Exec(ctx, `CHECKPOINT`); err != nil {
		return 0, 0, fmt.Errorf("write floor: checkpoint: %w", err)
	}
	start := time.Now()
	tag, err := pool.Exec(ctx, floorInsert, end)
	if err != nil {
		return 0, 0, fmt.Errorf("write floor: insert: %w", err)
	}
	return time.Since(start), tag.RowsAffected(), nil
}
