// Package rounds runs the background jobs that work in rounds (the alert watcher and pusher, the message log's
// retention, the expiry watch): one round at once, then one every interval, until the process stops.
package rounds

import (
	"context"
	"time"
)

// Run calls round at once and then every interval until ctx ends. A round that fails is passed to failed and
// the next round tries again; an error while ctx is ending is the shutdown's, not the round's, and is dropped.
// Rounds never overlap: a round that outlasts the interval delays the next one.
func Run(ctx context.Context, interval time.Duration, round func(context.Context) error, failed func(error)) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if err := round(ctx); err != nil && ctx.Err() == nil {
			failed(err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
