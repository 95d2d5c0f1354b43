package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// The message log is partitioned by month of received_at, UTC (migration 00020). Partitions are created ahead
// by the worker's retention job (internal/retention) and on demand by AppendMessage; whole months older than the
// retention are dropped by the job. No row is ever updated or deleted.

// EnsureMessagePartitions creates the message log's partitions for the month of from and the ahead months after
// it, unless they exist, and returns their names.
func (s *Store) EnsureMessagePartitions(ctx context.Context, from time.Time, ahead int) ([]string, error) {
	var names []string
	first := time.Date(from.UTC().Year(), from.UTC().Month(), 1, 0, 0, 0, 0, time.UTC)
	for i := 0; i <= ahead; i++ {
		var name string
		if err := s.Pool.QueryRow(ctx, `SELECT koogallery_messages_ensure_partition($1::date)`,
			first.AddDate(0, i, 0)).Scan(&name); err != nil {
			return names, fmt.Errorf("create the message log partition for %s: %w", first.AddDate(0, i, 0).Format("2006-01"), err)
		}
		names = append(names, name)
	}
	return names, nil
}

// DropExpiredMessagePartitions drops the message log's monthly partitions whose every row was received more than
// keepMonths months before now, and returns their names.
func (s *Store) DropExpiredMessagePartitions(ctx context.Context, keepMonths int, now time.Time) ([]string, error) {
	if keepMonths < 1 {
		return nil, fmt.Errorf("drop message log partitions: keep at least 1 month, not %d", keepMonths)
	}
	var dropped []string
	err := pgx.BeginFunc(ctx, s.Pool, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT koogallery_messages_drop_partitions($1, $2)`, keepMonths, now)
		if err != nil {
			return err
		}
		dropped, err = pgx.CollectRows(rows, pgx.RowTo[string])
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("drop expired message log partitions: %w", err)
	}
	return dropped, nil
}

// MessagePartitions lists the message log's partitions, oldest first.
func (s *Store) MessagePartitions(ctx context.Context) ([]string, error) {
	rows, err := s.Pool.Query(ctx, `SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
		WHERE i.inhparent = 'koogallery_messages'::regclass ORDER BY c.relname`)
	if err != nil {
		return nil, fmt.Errorf("list message log partitions: %w", err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("list message log partitions: %w", err)
	}
	return names, nil
}

// noPartition reports PostgreSQL's refusal of a row that no partition holds.
func noPartition(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23514" && strings.HasPrefix(pe.Message, "no partition of relation")
}
