package worker

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/kooflow/kooflow/internal/app"
	"github.com/kooflow/kooflow/internal/instance"
	"github.com/kooflow/kooflow/internal/rounds"
	"github.com/kooflow/kooflow/internal/store"
)

// ExpiryWatch is the lifecycle's expiry safety net: it finds instances the read model shows still usable after
// expireTime + KOOFLOW_EXPIRY_GRACE, with no expiry alert since, and sends each its workflow's
// UpdateCheckExpiry. The workflow decides from its own state (the read model may lag it by a write) and raises
// the alert, and under KOOFLOW_EXPIRY_POLICY=freeze freezes the instance.
//
// It replaces a timer per deadline in every lifecycle (see workflows.expiryWatchChange): every timer is a
// billed Temporal action, and the marketplace freezes nearly every instance itself, so the watch costs an
// action only when the marketplace did not. Every worker process runs one; two sending the same check share its
// Update ID, which Temporal deduplicates.
type ExpiryWatch struct {
	Store *store.Store
	// Instances sends the Updates; instance.Client does.
	Instances Updater
	// Grace is KOOFLOW_EXPIRY_GRACE, the same the workflows use.
	Grace time.Duration
	// Interval between rounds (KOOFLOW_EXPIRY_WATCH_INTERVAL); 0 means 1 min.
	Interval time.Duration
	Log      *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time

	// quiet holds, per instance, until when rounds leave out an instance whose workflow answered that it has
	// nothing to do (the read model behind it, or its own deadline later) or that has no workflow. Without it
	// such instances, oldest expiry first, could fill every round's batch and starve the others.
	quiet map[string]time.Time
}

// quietFor is how long an instance whose check changed nothing is left out; its check, asked again after, is
// answered from Temporal's deduplication at no cost.
const quietFor = time.Hour

// Updater sends one Update to an instance's workflow and waits for its result (instance.Client.Update).
type Updater interface {
	Update(ctx context.Context, instanceID, name, updateID string, arg, out any) error
}

// watchBatch bounds the instances one round sends checks to; the rest wait for the next round.
const watchBatch = 200

// NewExpiryWatch builds the watch of a worker process from its configuration.
func NewExpiryWatch(d app.Deps) *ExpiryWatch {
	return &ExpiryWatch{Store: &store.Store{Pool: d.Pool}, Instances: instance.Client{Temporal: d.Temporal},
		Grace: d.Config.ExpiryGrace, Interval: d.Config.ExpiryWatchInterval, Log: d.Log}
}

// Run watches every Interval until ctx ends. A failed round is logged and the next one tries again.
func (w *ExpiryWatch) Run(ctx context.Context) {
	interval := w.Interval
	if interval <= 0 {
		interval = time.Minute
	}
	rounds.Run(ctx, interval, func(ctx context.Context) error {
		_, err := w.Round(ctx)
		return err
	}, func(err error) { w.Log.Warn("expiry watch round failed; the next round tries again", "err", err) })
}

// Round checks the instances due now and returns how many the workflows acted on (alert, or alert and freeze).
// Rounds of one watch must not run concurrently.
func (w *ExpiryWatch) Round(ctx context.Context) (acted int, err error) {
	now := time.Now()
	if w.Now != nil {
		now = w.Now()
	}
	if w.quiet == nil {
		w.quiet = map[string]time.Time{}
	}
	skip := make([]string, 0, len(w.quiet))
	for id, until := range w.quiet {
		if now.Before(until) {
			skip = append(skip, id)
		} else {
			delete(w.quiet, id)
		}
	}
	due, err := w.Store.ExpiredNotFrozen(ctx, now.Add(-w.Grace), skip, watchBatch)
	if err != nil {
		return 0, err
	}
	var failed error
	for _, e := range due {
		exp := e.ExpireTime.UTC().Format(time.RFC3339)
		var res instance.ExpiryCheckResult
		err := w.Instances.Update(ctx, e.InstanceID, instance.UpdateCheckExpiry, instance.UpdateID("expiry", e.InstanceID, exp),
			instance.ExpiryCheck{ExpireTime: e.ExpireTime.UTC()}, &res)
		switch {
		case errors.Is(err, instance.ErrNoWorkflow):
			// Released meanwhile; the read model catches up.
			w.quiet[e.InstanceID] = now.Add(quietFor)
			continue
		case err != nil:
			if ctx.Err() != nil {
				return acted, ctx.Err()
			}
			w.Log.Warn("expiry check not delivered; the next round tries again", "instance_id", e.InstanceID, "expire_time", exp, "err", err)
			failed = err
			continue
		}
		switch {
		case res.Action != "nothing":
			acted++
			w.Log.Info("expiry safety net", "instance_id", e.InstanceID, "expire_time", exp, "action", res.Action)
		case res.DueAt != nil:
			w.quiet[e.InstanceID] = now.Add(quietFor)
			w.Log.Info("expiry checked before the workflow's own grace ended; the workflow keeps its deadline with a timer",
				"instance_id", e.InstanceID, "expire_time", exp, "due_at", res.DueAt.UTC().Format(time.RFC3339), "grace", w.Grace)
		default:
			w.quiet[e.InstanceID] = now.Add(quietFor)
		}
	}
	return acted, failed
}
