package worker

import (
	"context"
	"errors"
	"fmt"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/kooflow/kooflow/internal/config"
	"github.com/kooflow/kooflow/internal/settlement"
	"github.com/kooflow/kooflow/workflows"
)

// SettlementScheduleID is the Temporal Schedule that starts the settlement tick.
const SettlementScheduleID = "kooflow-settlement"

// tickWorkflowID is the prefix of the ticks' workflow IDs; the schedule appends the scheduled time.
const tickWorkflowID = "settlement-tick"

// holidayMargin is how many days after the latest configured bill day the schedule still fires: the longest
// Chinese public-holiday run with its weekends is 9 days; ticks on the days after catch up anything missed.
const holidayMargin = 14

// SettlementScheduleConfig is what the schedule is built from.
type SettlementScheduleConfig struct {
	TaskQueue string
	Hour      int   // Beijing time
	Days      []int // the configured bill days (e.g. 3 and 7)
}

// SettlementScheduleSpec is the schedule's calendar: at Hour:00 Asia/Shanghai on every day from the earliest configured
// bill day to holidayMargin days after the latest one. Temporal cannot skip holidays, so the tick decides.
func SettlementScheduleSpec(c SettlementScheduleConfig) client.ScheduleSpec {
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

func scheduleAction(c SettlementScheduleConfig) *client.ScheduleWorkflowAction {
	return &client.ScheduleWorkflowAction{
		ID:                 tickWorkflowID,
		Workflow:           workflows.SettlementTickWorkflowType,
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

// EnsureSettlementSchedule creates the settlement schedule, or brings an existing one's calendar, action and policies up
// to date. Its state is left alone: a schedule an operator paused stays paused, with its note.
func EnsureSettlementSchedule(ctx context.Context, c client.Client, cfg SettlementScheduleConfig) error {
	return ensureSchedule(ctx, c, SettlementScheduleID, SettlementScheduleSpec(cfg), scheduleAction(cfg), schedulePolicy())
}

// ensureSchedule creates the schedule id, or, when it exists, replaces its spec, action and policies with these,
// leaving its state (paused, note) alone. Every Schedule kooflow owns is kept up to date this way at start.
func ensureSchedule(ctx context.Context, c client.Client, id string, spec client.ScheduleSpec,
	action *client.ScheduleWorkflowAction, policy *client.SchedulePolicies) error {
	sc := c.ScheduleClient()
	_, err := sc.Create(ctx, client.ScheduleOptions{
		ID:            id,
		Spec:          spec,
		Action:        action,
		Overlap:       policy.Overlap,
		CatchupWindow: policy.CatchupWindow,
		Note:          "created by the kooflow worker",
	})
	if err == nil {
		return nil
	}
	if !errors.Is(err, temporal.ErrScheduleAlreadyRunning) {
		return fmt.Errorf("create schedule %s: %w", id, err)
	}
	err = sc.GetHandle(ctx, id).Update(ctx, client.ScheduleUpdateOptions{
		DoUpdate: func(in client.ScheduleUpdateInput) (*client.ScheduleUpdate, error) {
			s := in.Description.Schedule
			s.Spec = &spec
			s.Action = action
			s.Policy = policy
			return &client.ScheduleUpdate{Schedule: &s}, nil
		},
	})
	if err != nil {
		return fmt.Errorf("update schedule %s: %w", id, err)
	}
	return nil
}

// SettlementScheduleFrom builds the schedule's configuration from kooflow's: the task queue, the hour of day and
// the bill days of both product types.
func SettlementScheduleFrom(cfg config.Config) SettlementScheduleConfig {
	return SettlementScheduleConfig{TaskQueue: cfg.TaskQueue, Hour: cfg.SettlementHour,
		Days: []int{cfg.SettlementDay, cfg.SettlementDayGeneral}}
}
