package worker

import (
	"context"
	"fmt"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"github.com/kooflow/kooflow/activities"
	"github.com/kooflow/kooflow/internal/app"
	"github.com/kooflow/kooflow/internal/config"
	"github.com/kooflow/kooflow/internal/koogallery/usagedata"
	"github.com/kooflow/kooflow/internal/usagepush"
	"github.com/kooflow/kooflow/workflows"
)

// UsagePushScheduleID is the Temporal Schedule that starts the hourly usage push.
const UsagePushScheduleID = "kooflow-usage-push"

// usagePushActivities builds the usage push's activities: the client signs with KOOGALLERY_ACCESS_KEY and pushes to
// KOOGALLERY_API_ENDPOINT. Without a key the activities still plan, and every push fails saying what to set.
func usagePushActivities(d app.Deps) (*activities.UsagePush, error) {
	st := &usagepush.Store{Pool: d.Pool}
	a := &activities.UsagePush{Store: st, Log: d.Log}
	if d.Config.AccessKey == "" {
		d.Log.Warn("the usage push is not configured: pay-per-use usage is planned but not pushed", "set", config.EnvAccessKey)
		return a, nil
	}
	c, err := usagedata.NewClient(usagedata.Options{Endpoint: d.Config.MarketEndpoint, SellerKey: d.Config.AccessKey,
		CAFile: d.Config.MarketCAFile})
	if err != nil {
		return nil, err
	}
	a.Pusher = &usagepush.Pusher{Store: st, Client: c, Log: d.Log, Worker: Identity()}
	return a, nil
}

// UsagePushScheduleSpec runs the push every hour at the given minute, UTC.
func UsagePushScheduleSpec(minute int) client.ScheduleSpec {
	return client.ScheduleSpec{
		Calendars: []client.ScheduleCalendarSpec{{
			Second:     []client.ScheduleRange{{Start: 0}},
			Minute:     []client.ScheduleRange{{Start: minute}},
			Hour:       []client.ScheduleRange{{Start: 0, End: 23}},
			DayOfMonth: []client.ScheduleRange{{Start: 1, End: 31}},
			Month:      []client.ScheduleRange{{Start: 1, End: 12}},
			DayOfWeek:  []client.ScheduleRange{{Start: 0, End: 6}},
			Comment:    fmt.Sprintf("every hour at :%02d UTC: push the usage of the hour that closed", minute),
		}},
		TimeZoneName: "UTC",
	}
}

func usagePushAction(taskQueue string) *client.ScheduleWorkflowAction {
	return &client.ScheduleWorkflowAction{
		ID:                 "usage-push",
		Workflow:           workflows.UsagePushWorkflowType,
		Args:               []any{workflows.UsagePushInput{}},
		TaskQueue:          taskQueue,
		WorkflowRunTimeout: 2 * time.Hour,
		StaticSummary:      "hourly usage push: plan the closed windows and push them to KooGallery",
	}
}

func usagePushPolicy() *client.SchedulePolicies {
	return &client.SchedulePolicies{
		// A push still draining makes the next one redundant: the running one pushes what is pending, and the
		// next run plans every window closed by then, those it skipped included.
		Overlap:       enumspb.SCHEDULE_OVERLAP_POLICY_SKIP,
		CatchupWindow: time.Hour,
	}
}

// EnsureUsagePushSchedule creates the hourly usage push schedule or brings its calendar, action and policies up to
// date, leaving its state alone (a paused schedule stays paused).
func EnsureUsagePushSchedule(ctx context.Context, c client.Client, taskQueue string, minute int) error {
	return ensureSchedule(ctx, c, UsagePushScheduleID, UsagePushScheduleSpec(minute), usagePushAction(taskQueue), usagePushPolicy())
}
