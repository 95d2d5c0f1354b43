package gateway

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// PGNonces is the replay cache in PostgreSQL, so that a nonce accepted by one API process is refused by every
// other. A nonce is claimed with one insert; the primary key decides races between processes.
type PGNonces struct {
	Pool *pgxpool.Pool
	// Retain is how long a nonce is remembered: twice the signature window, since a request's timestamp may be
	// up to one window ahead of or behind the clock, so a replay can only be accepted within two windows of the
	// original.
	Retain time.Duration
	Log    *slog.Logger

	lastPurge atomic.Int64 // unix nanoseconds of the last purge this process started
}

// Claim records nonce as seen at at and reports whether it was new.
func (n *PGNonces) Claim(ctx context.Context, nonce string, at time.Time) (bool, error) {
	tag, err := n.Pool.Exec(ctx,
		`INSERT INTO koogallery_nonces (nonce, seen_at) VALUES ($1, $2) ON CONFLICT (nonce) DO NOTHING`, nonce, at.UTC())
	if err != nil {
		return false, fmt.Errorf("record nonce: %w", err)
	}
	n.maybePurge(at)
	return tag.RowsAffected() == 1, nil
}

// maybePurge deletes expired nonces at most once per half retention period per process, in the background so
// the call that triggers it does not wait.
func (n *PGNonces) maybePurge(at time.Time) {
	last := n.lastPurge.Load()
	if at.UnixNano()-last < int64(n.Retain/2) || !n.lastPurge.CompareAndSwap(last, at.UnixNano()) {
		return
	}
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := n.Purge(ctx, at); err != nil && n.Log != nil {
			n.Log.Warn("purge expired nonces", "err", err)
		}
	}()
}

// Purge deletes nonces older than the retention period before now and returns how many it deleted.
func (n *PGNonces) Purge(ctx context.Context, now time.Time) (int64, error) {
	tag, err := n.Pool.Exec(ctx, `DELETE FROM koogallery_nonces WHERE seen_at < $1`, now.Add(-n.Retain).UTC())
	if err != nil {
		return 0, fmt.Errorf("purge nonces: %w", err)
	}
	return tag.RowsAffected(), nil
}
