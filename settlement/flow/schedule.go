package flow

import (
	"context"
	"errors"
	"fmt"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/kooflow/kooflow/settlement"
)

// ScheduleID is the Temporal Schedule that starts the settlement tick.
const ScheduleID = "kooflow-settlement"

// tickWorkflowID is the prefix of the ticks' workflow IDs; the schedule appends the scheduled time.
const tickWorkflowID = "settlement-tick"

// holidayMargin is how many days after the latest configured bill day the schedule still fires: the longest
// Chinese public-holiday run with its weekends is 9 days; ticks on the days after catch up anything missed.
const holidayMargin = 14

// ScheduleConfig is what the schedule is built from.
type ScheduleConfig struct {
	TaskQueue string
	Hour      int   // Beijing time
	Days      []int // the configured bill days (e.g. 3 and 7)
}

// ScheduleSpec is the schedule's calendar: at Hour:00 Asia/Shanghai on every day from the earliest configured
// bill day to holidayMargin days after the latest one. Temporal cannot skip holidays, so the tick decides.
func ScheduleSpec(c ScheduleConfig) client.ScheduleSpec {
	first, last := 28, 1
	for _, d := range c.Days {
		first, last = min(first, d), max(last, d)
	}
	if len(c.Days) == 0 {
		first, last = 3, 3
	}
	end := min(last+holidayMargin, 31)
	return client.ScheduleSpec{
		Calendars: []client.ScheduleCalendarSpec{{
			Second:     []client.ScheduleRange{{Start: 0}},
			Minute:     []client.ScheduleRange{{Start: 0}},
			Hour:       []client.ScheduleRange{{Start: c.Hour}},
			DayOfMonth: []client.ScheduleRange{{Start: first, End: end}},
			Month:      []client.ScheduleRange{{Start: 1, End: 12}},
			DayOfWeek:  []client.ScheduleRange{{Start: 0, End: 6}},
			Comment: fmt.Sprintf("candidate bill days %d–%d at %02d:00 Beijing time; the tick checks the holiday calendar",
				first, end, c.Hour),
		}},
		TimeZoneName: settlement.TimeZoneName,
	}
}

func scheduleAction(c ScheduleConfig) *client.ScheduleWorkflowAction {
	return &client.ScheduleWorkflowAction{
		ID:                 tickWorkflowID,
		Workflow:           TickWorkflowName,
		TaskQueue:          c.TaskQueue,
		WorkflowRunTimeout: 24 * time.Hour,
		StaticSummary:      "monthly settlement: close the bills that are due today",
	}
}

func schedulePolicy() *client.SchedulePolicies {
	return &client.SchedulePolicies{
		// A tick still closing a large period makes the next one unnecessary: it would find nothing due.
		Overlap: enumspb.SCHEDULE_OVERLAP_POLICY_SKIP,
		// After an outage, run one late tick (not one per missed day); it catches up every due period.
		CatchupWindow: 24 * time.Hour,
	}
}

// EnsureSchedule creates the settlement schedule, or brings an existing one's calendar, action and policies up
// to date. Its state is left alone: a schedule an operator paused stays paused, with its note.
func EnsureSchedule(ctx context.Context, c client.Client, cfg ScheduleConfig) error {
	sc := c.ScheduleClient()
	_, err := sc.Create(ctx, client.ScheduleOptions{
		ID:            ScheduleID,
		Spec:          ScheduleSpec(cfg),
		Action:        scheduleAction(cfg),
		Overlap:       schedulePolicy().Overlap,
		CatchupWindow: schedulePolicy().CatchupWindow,
		Note:          "created by the kooflow worker",
	})
	if err == nil {
		return nil
	}
	if !errors.Is(err, temporal.ErrScheduleAlreadyRunning) {
		return fmt.Errorf("create schedule %s: %w", ScheduleID, err)
	}
	err = sc.GetHandle(ctx, ScheduleID).Update(ctx, client.ScheduleUpdateOptions{
		DoUpdate: func(in client.ScheduleUpdateInput) (*client.ScheduleUpdate, error) {
			s := in.Description.Schedule
			spec := ScheduleSpec(cfg)
			s.Spec = &spec
			s.Action = scheduleAction(cfg)
			s.Policy = schedulePolicy()
			return &client.ScheduleUpdate{Schedule: &s}, nil
		},
	})
	if err != nil {
		return fmt.Errorf("update schedule %s: %w", ScheduleID, err)
	}
	return nil
}
