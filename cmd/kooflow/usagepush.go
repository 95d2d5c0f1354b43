package main

import (
	"context"

	"github.com/kooflow/kooflow/internal/app"
	"github.com/kooflow/kooflow/worker"
)

// ensureUsagePushSchedule keeps the hourly usage push schedule unless KOOFLOW_USAGE_PUSH_SCHEDULE is off.
func ensureUsagePushSchedule(ctx context.Context, d app.Deps) error {
	if !d.Config.UsagePush.Schedule {
		return nil
	}
	if err := worker.EnsureUsagePushSchedule(ctx, d.Temporal, d.Config.TaskQueue, d.Config.UsagePush.Minute); err != nil {
		return err
	}
	d.Log.Info("usage push schedule ensured", "schedule_id", worker.UsagePushScheduleID, "minute", d.Config.UsagePush.Minute)
	return nil
}
