package activities

import (
	"context"
	"time"

	"go.temporal.io/sdk/activity"

	"github.com/kooflow/kooflow/internal/store"
)

// SelfCheck holds the self-check activity's dependencies.
type SelfCheck struct {
	Store  *store.Store
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
	row, err := s.Store.RecordSelfCheck(ctx, store.SelfCheckRun{
		RunID: in.RunID, RequestedBy: in.RequestedBy, RequestedAt: in.RequestedAt, Worker: worker,
	})
	if err != nil {
		return SelfCheckResult{}, err
	}
	return SelfCheckResult{RunID: row.RunID, WrittenAt: row.WrittenAt, Worker: row.Worker}, nil
}
