package store

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// Counts the worker's metrics read at scrape time (internal/metrics). Each is one grouped query.

// CountInstancesByLifecycle counts the instances per lifecycle state.
func (s *Store) CountInstancesByLifecycle(ctx context.Context) (map[string]int64, error) {
	return s.countBy(ctx, "count instances", `SELECT lifecycle, count(*) FROM instances GROUP BY lifecycle`)
}

// CountParkedBySteps counts the parked instances per parked stage as the workflow named it (the stage may carry
// ids: callers group it before exporting).
func (s *Store) CountParkedBySteps(ctx context.Context) (map[string]int64, error) {
	return s.countBy(ctx, "count parked instances", `SELECT parked_step, count(*) FROM instances WHERE parked GROUP BY parked_step`)
}

// CountOpenAlerts counts the open alerts per kind, instance and system alerts together.
func (s *Store) CountOpenAlerts(ctx context.Context) (map[string]int64, error) {
	return s.countBy(ctx, "count open alerts", `SELECT kind, count(*) FROM instance_alerts WHERE resolved_at IS NULL GROUP BY kind
		UNION ALL SELECT kind, count(*) FROM system_alerts WHERE resolved_at IS NULL GROUP BY kind`)
}

func (s *Store) countBy(ctx context.Context, what, sql string) (map[string]int64, error) {
	rows, err := s.Pool.Query(ctx, sql)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	out := map[string]int64{}
	var k string
	var n int64
	if _, err := pgx.ForEachRow(rows, []any{&k, &n}, func() error { out[k] += n; return nil }); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return out, nil
}
