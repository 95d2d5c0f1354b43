// Package retention is the worker's message log retention job: every round it creates the message log's
// monthly partitions for this month and the next ones (so a write never waits on DDL), and drops the months
// older than KOOFLOW_MESSAGE_RETENTION (docs/security.md, "Message log retention"). Every worker process runs
// it; the database serialises the rounds, so running several is harmless.
package retention

import (
	"context"
	"log/slog"
	"time"

	"github.com/kooflow/kooflow/internal/rounds"
)

// Store is what the job changes; store.Store satisfies it.
type Store interface {
	EnsureMessagePartitions(ctx context.Context, from time.Time, ahead int) ([]string, error)
	DropExpiredMessagePartitions(ctx context.Context, keepMonths int, now time.Time) ([]string, error)
}

// Ahead is how many months after the current one have a partition ready.
const Ahead = 2

// Job keeps the message log's partitions.
type Job struct {
	Store Store
	// KeepMonths is the retention in months; 0 keeps every month (partitions are still created).
	KeepMonths int
	Log        *slog.Logger
	// Interval between rounds; 0 means every 6 hours.
	Interval time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Round creates the partitions ahead and drops the expired ones; it returns the names dropped.
func (j *Job) Round(ctx context.Context) ([]string, error) {
	now := time.Now()
	if j.Now != nil {
		now = j.Now()
	}
	if _, err := j.Store.EnsureMessagePartitions(ctx, now, Ahead); err != nil {
		return nil, err
	}
	if j.KeepMonths <= 0 {
		return nil, nil
	}
	dropped, err := j.Store.DropExpiredMessagePartitions(ctx, j.KeepMonths, now)
	if err != nil {
		return nil, err
	}
	if len(dropped) > 0 {
		j.Log.Info("message log months past the retention dropped", "partitions", dropped, "keep_months", j.KeepMonths)
	}
	return dropped, nil
}

// Run runs a round at once and then every Interval until ctx ends; a failed round is logged and retried at the
// next one (a write for a month without a partition still succeeds: the store creates it).
func (j *Job) Run(ctx context.Context) {
	interval := j.Interval
	if interval <= 0 {
		interval = 6 * time.Hour
	}
	rounds.Run(ctx, interval, func(ctx context.Context) error {
		_, err := j.Round(ctx)
		return err
	}, func(err error) { j.Log.Warn("message log retention round failed", "err", err) })
}
