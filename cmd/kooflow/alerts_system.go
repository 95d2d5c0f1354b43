package main

import (
	"github.com/kooflow/kooflow/internal/alerts"
	"github.com/kooflow/kooflow/internal/app"
	"github.com/kooflow/kooflow/internal/store"
)

// systemWatchers are the watchers of the alerts about no single instance: the marketplace's order query
// (order-query-failing) and the settlement workflows (settlement-failed, read from Temporal).
func systemWatchers(d app.Deps, st *store.Store) []alerts.Watcher {
	ws := []alerts.Watcher{&alerts.OrderQueryWatch{Store: st, After: d.Config.OrderQueryAlertAfter}}
	if d.Temporal != nil {
		ws = append(ws, &alerts.SettlementWatch{Store: st, Temporal: d.Temporal})
	}
	return ws
}
