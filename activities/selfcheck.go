package activities

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"go.temporal.io/sdk/activity"
)

// SelfCheck holds the self-check activity's dependencies.
type SelfCheck struct {
	Pool   *pgxpool.Pool
	Worker string // the worker's identity, recorded so an operator sees which process ran the check
}

// SelfCheckInput identifies one self-check run.
type SelfCheckInput struct {
	RunID       string    `json:"runId"`
	RequestedBy string    `json:"requestedBy"`
	RequestedAt time.Time `json:"requestedAt"`
}

// SelfCheckResult is the row the activity wrote.
type SelfCheckResult struct {
	RunID     string    `json:"runId"`
	WrittenAt time.Time `json:"writtenAt"`
	Worker    string    `json:"worker"`
}

// RecordSelfCheck writes the run's row once; a retry after a crash finds the row and returns it.
func (s *SelfCheck) RecordSelfCheck(ctx context.Context, in SelfCheckInput) (SelfCheckResult, error) {
	worker := s.Worker
	if worker == "" {
		worker = activity.GetInfo(ctx).TaskQueue
	}
	var out SelfCheckResult
	err := s.Pool.QueryRow(ctx, `
		INSERT INTO selfcheck_runs (run_id, requested_by, requested_at, worker)
		VALUES ($1, $2, $3, $4)
		ON CONFLICT (run_id) DO UPDATE SET run_id = EXCLUDED.run_id
		RETURNING run_id, written_at, worker`,
		in.RunID, in.RequestedBy, in.RequestedAt, worker).Scan(&out.RunID, &out.WrittenAt, &out.Worker)
	if err != nil {
		return out, fmt.Errorf("record self-check %s: %w", in.RunID, err)
	}
	return out, nil
}
