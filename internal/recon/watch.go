package recon

import (
	"context"
	"time"
)

// PaymentWatch runs CheckPayments from the worker's alert loop (internal/alerts' Watcher), so an overdue or
// short payment raises its alert without anyone running `kooflow recon check`. Every worker may run it: raising
// an alert that is open updates it and resolving one that is not open does nothing, so two workers checking the
// same bills leave the same alerts as one.
type PaymentWatch struct {
	Store *Store
	// Interval is the least time between two checks of this watch (KOOFLOW_RECON_CHECK_INTERVAL); the alert loop
	// calls Watch every few seconds. 0 checks every time.
	Interval time.Duration

	last time.Time
}

// Watch implements the alert loop's Watcher: it checks the payments when Interval has passed since the last
// completed check (the first call always checks). A failed check is tried again at the next call.
func (w *PaymentWatch) Watch(ctx context.Context, now time.Time) error {
	if w.Interval > 0 && !w.last.IsZero() && now.Sub(w.last) < w.Interval {
		return nil
	}
	if _, err := w.Store.CheckPayments(ctx, now); err != nil {
		return err
	}
	w.last = now
	return nil
}
