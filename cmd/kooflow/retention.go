package main

import (
	"context"

	"github.com/kooflow/kooflow/internal/app"
	"github.com/kooflow/kooflow/internal/config"
	"github.com/kooflow/kooflow/internal/retention"
	"github.com/kooflow/kooflow/internal/store"
)

// startRetention runs the message log retention job (internal/retention) in the worker until ctx ends.
func startRetention(ctx context.Context, d app.Deps) {
	months := d.Config.Safety.MessageRetentionMonths
	if months == 0 {
		d.Log.Warn("the message log is kept forever", "set", config.EnvMessageRetention)
	}
	j := &retention.Job{Store: &store.Store{Pool: d.Pool}, KeepMonths: months, Log: d.Log}
	go j.Run(ctx)
}
