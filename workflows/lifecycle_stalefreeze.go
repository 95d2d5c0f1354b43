package workflows

import (
	"fmt"
	"time"

	"go.temporal.io/sdk/workflow"

	"github.com/kooflow/kooflow/internal/lifecycle"
	"github.com/kooflow/kooflow/internal/store"
)

// staleFreezeChange marks the change after which a FREEZE that a renewal has overtaken (lifecycle.StaleFreeze)
// raises an alert instead of freezing; runs recorded before it keep freezing on replay.
const staleFreezeChange = "stale-freeze-alert"

// alertStaleFreeze records, without freezing, that the marketplace delivered a FREEZE after the renewal that
// ended the expiry: a person checks the marketplace and freezes by hand if the freeze was meant. The marketplace
// is answered success, so it stops retrying.
func (r *run) alertStaleFreeze(ctx workflow.Context, now time.Time) {
	exp := r.s.ExpireTime.UTC().Format(time.RFC3339)
	key := "stale-freeze:" + exp
	msg := fmt.Sprintf("the marketplace sent FREEZE at %s, after a renewal had already extended the instance to %s; "+
		"it was not frozen (a late retry of the expiry's freeze); check the order in the marketplace",
		now.UTC().Format(time.RFC3339), exp)
	w := r.write("raise stale freeze alert", r.event(ctx, key, "stale-freeze-alert", lifecycle.Marketplace, msg, nil))
	w.Alerts = []store.AlertRow{{Key: key, Kind: store.AlertFreezeAfterRenewal, At: now, Message: msg}}
	r.enqueue(w)
}
