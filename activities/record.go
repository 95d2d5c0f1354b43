package activities

import (
	"context"
	"errors"

	"github.com/kooflow/kooflow/internal/store"
	"github.com/kooflow/kooflow/internal/tracing"
)

// Record applies one read-model write of the instance's workflow (see store.Store.Apply). It runs as a local
// activity: the workflow is the only writer of its instance's rows, and writes are short. A write that cannot
// succeed by retrying (an order already recorded for another instance, a write naming no instance) needs a
// person.
func (a *Lifecycle) Record(ctx context.Context, w store.Write) error {
	ctx, span := recordSpan(ctx, w)
	err := a.writes().Apply(ctx, w)
	tracing.End(span, err)
	var conflict *store.OrderConflictError
	switch {
	case errors.As(err, &conflict):
		return needsPerson(conflict.Error(), nil)
	case errors.Is(err, store.ErrNoInstance):
		return needsPerson(err.Error(), nil)
	}
	return err
}
