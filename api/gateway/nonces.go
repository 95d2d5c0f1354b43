package gateway

import (
	"context"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/kooflow/kooflow/internal/store"
)

// Nonces is the replay cache shared by every API process (the store's koogallery_nonces), so that a nonce
// accepted by one process is refused by every other, with expired nonces purged in the background.
type Nonces struct {
	Store *store.Store
	// Retain is how long a nonce is remembered: twice the signature window, since a request's timestamp may be
	// up to one window ahead of or behind the clock, so a replay can only be accepted within two windows of the
	// original.
	Retain time.Duration
	Log    *slog.Logger

	lastPurge atomic.Int64 // unix nanoseconds of the last purge this process started
}

// SkewMargin is kept beyond Retain: the signature's timestamp is checked against the API process's clock, the
// nonce's age against the database's, and the two may differ.
const SkewMargin = time.Minute

// ClaimNonce records nonce (as seen by the database's clock) and reports whether it was new; at, the process's
// time of the call, only paces the purge.
func (n *Nonces) ClaimNonce(ctx context.Context, nonce string, at time.Time) (bool, error) {
	fresh, err := n.Store.ClaimNonce(ctx, nonce)
	if err != nil {
		return false, err
	}
	n.maybePurge(at)
	return fresh, nil
}

// maybePurge deletes expired nonces at most once per half retention period per process, in the background so
// the call that triggers it does not wait.
func (n *Nonces) maybePurge(at time.Time) {
	last := n.lastPurge.Load()
	if at.UnixNano()-last < int64(n.Retain/2) || !n.lastPurge.CompareAndSwap(last, at.UnixNano()) {
		return
	}
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := n.Purge(ctx); err != nil && n.Log != nil {
			n.Log.Warn("purge expired nonces", "err", err)
		}
	}()
}

// Purge deletes nonces older than the retention period plus SkewMargin, by the database's clock, and returns how
// many it deleted.
func (n *Nonces) Purge(ctx context.Context) (int64, error) {
	return n.Store.PurgeNonces(ctx, n.Retain+SkewMargin)
}
