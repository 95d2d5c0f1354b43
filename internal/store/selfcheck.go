package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// The self-check rows (selfcheck_runs): one per self-check run, written by the run's activity, proving that API,
// Temporal, worker and PostgreSQL are wired together.

// SelfCheckRun is one self-check run's row.
type SelfCheckRun struct {
	RunID       string
	RequestedBy string
	RequestedAt time.Time
	// WrittenAt is set by the database when the row is first written.
	WrittenAt time.Time
	// Worker names the worker process that wrote the row.
	Worker string
}

// RecordSelfCheck writes run's row once (WrittenAt is ignored) and returns the row as stored: a retry after a
// crash finds the row the first attempt wrote and returns it unchanged.
func (s *Store) RecordSelfCheck(ctx context.Context, run SelfCheckRun) (SelfCheckRun, error) {
	var out SelfCheckRun
	err := s.Pool.QueryRow(ctx, `
		INSERT INTO selfcheck_runs (run_id, requested_by, requested_at, worker)
		VALUES ($1, $2, $3, $4)
		ON CONFLICT (run_id) DO UPDATE SET run_id = EXCLUDED.run_id
		RETURNING run_id, requested_by, requested_at, written_at, worker`,
		run.RunID, run.RequestedBy, run.RequestedAt, run.Worker).
		Scan(&out.RunID, &out.RequestedBy, &out.RequestedAt, &out.WrittenAt, &out.Worker)
	if err != nil {
		return SelfCheckRun{}, fmt.Errorf("record self-check %s: %w", run.RunID, err)
	}
	return out, nil
}

// ErrNoSelfCheckRun is returned by SelfCheck for an unknown run.
var ErrNoSelfCheckRun = errors.New("no such self-check run")

// SelfCheck returns the row of run runID, or ErrNoSelfCheckRun.
func (s *Store) SelfCheck(ctx context.Context, runID string) (SelfCheckRun, error) {
	var out SelfCheckRun
	err := s.Pool.QueryRow(ctx,
		`SELECT run_id, requested_by, requested_at, written_at, worker FROM selfcheck_runs WHERE run_id = $1`, runID).
		Scan(&out.RunID, &out.RequestedBy, &out.RequestedAt, &out.WrittenAt, &out.Worker)
	if errors.Is(err, pgx.ErrNoRows) {
		return SelfCheckRun{}, ErrNoSelfCheckRun
	}
	if err != nil {
		return SelfCheckRun{}, fmt.Errorf("read self-check %s: %w", runID, err)
	}
	return out, nil
}
