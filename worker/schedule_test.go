package worker

import "testing"

func TestScheduleSpecCoversEveryCandidateDay(t *testing.T) {
	spec := SettlementScheduleSpec(SettlementScheduleConfig{TaskQueue: "q", Hour: 10, Days: []int{3, 7}})
	c := spec.Calendars[0]
	if spec.TimeZoneName != "Asia/Shanghai" || c.Hour[0].Start != 10 || c.DayOfMonth[0].Start != 3 || c.DayOfMonth[0].End != 21 {
		t.Fatalf("spec %+v", spec)
	}
	late := SettlementScheduleSpec(SettlementScheduleConfig{Hour: 0, Days: []int{28}})
	if late.Calendars[0].DayOfMonth[0].End != 31 {
		t.Fatalf("days past the month's end: %+v", late.Calendars[0].DayOfMonth)
	}
}
