package main

import (
	"time"

	"github.com/kooflow/kooflow/internal/alerts"
	"github.com/kooflow/kooflow/internal/app"
	"github.com/kooflow/kooflow/internal/recon"
	"github.com/kooflow/kooflow/internal/store"
)

// systemWatchers are the watchers of the alerts about no single instance: the marketplace's order query
// (order-query-failing), the settlement workflows (settlement-failed, read from Temporal) and, every
// KOOFLOW_RECON_CHECK_INTERVAL, the marketplace's payments (recon-payment-overdue, recon-payment-short).
func systemWatchers(d app.Deps, st *store.Store) []alerts.Watcher {
	ws := []alerts.Watcher{&alerts.OrderQueryWatch{Store: st, After: d.Config.OrderQueryAlertAfter}}
	if d.Temporal != nil {
		ws = append(ws, &alerts.SettlementWatch{Store: st, Temporal: d.Temporal, MinInterval: time.Minute})
	}
	if d.Config.ReconCheckInterval > 0 {
		rs, err := recon.NewStore(d)
		if err != nil {
			// The settlement schedule refuses to start on the same broken calendar; the other watchers still run.
			d.Log.Error("the marketplace's payments are not checked", "err", err)
		} else {
			ws = append(ws, &recon.PaymentWatch{Store: rs, Interval: d.Config.ReconCheckInterval})
		}
	}
	return ws
}
