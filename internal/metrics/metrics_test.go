package metrics

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestStepLabelHasNoIDs(t *testing.T) {
	for stage, want := range map[string]string{
		"provision create":                          "provision create",
		"provision release":                         "provision release",
		"provision something-new":                   "provision other",
		"query purchase order CS2411230001":         "query order",
		"query renewal order CS2411230002":          "query order",
		"record in PostgreSQL: record parked stage": "record",
		"": "other",
	} {
		if got := StepLabel(stage); got != want {
			t.Errorf("StepLabel(%q) = %q, want %q", stage, got, want)
		}
	}
}

// TestAPIBoundsLabels: an activity outside the production interface is counted as unknown, and only failed
// verdicts count as authentication failures.
func TestAPIBoundsLabels(t *testing.T) {
	m := NewAPI(nil, func(context.Context) (int64, error) { return 3, nil })
	m.ObserveCall("newInstance", "000004", "ok", time.Millisecond)
	m.ObserveCall("dropTables;--", "000002", "not_checked", time.Millisecond)
	m.ObserveCall("queryInstance", "000001", "stale_timestamp", time.Millisecond)
	if n := testutil.ToFloat64(m.calls.WithLabelValues("unknown", "000002")); n != 1 {
		t.Errorf("unknown activity counted %v times", n)
	}
	if n := testutil.CollectAndCount(m.authFailures); n != 1 {
		t.Errorf("%d auth failure series, want 1", n)
	}
	if err := testutil.GatherAndCompare(m.reg, strings.NewReader(`
# HELP kooflow_inbox_pending newInstance calls accepted whose workflow start has not been confirmed yet.
# TYPE kooflow_inbox_pending gauge
kooflow_inbox_pending 3
`), InboxPending); err != nil {
		t.Error(err)
	}
	var nilAPI *API
	nilAPI.ObserveCall("newInstance", "000000", "ok", 0) // a nil recorder records nothing and does not panic
}

// TestFailedReadIsNoFalseZero: a gauge whose PostgreSQL read fails fails its part of the scrape.
func TestFailedReadIsNoFalseZero(t *testing.T) {
	m, err := NewWorker(nil, &Counts{
		InstancesByLifecycle: func(context.Context) (map[string]int64, error) { return nil, errors.New("database down") },
		ParkedBySteps:        func(context.Context) (map[string]int64, error) { return map[string]int64{}, nil },
		OpenAlerts:           func(context.Context) (map[string]int64, error) { return map[string]int64{"expiry": 2}, nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if _, err := m.reg.Gather(); err == nil || !strings.Contains(err.Error(), "database down") {
		t.Fatalf("gather: %v", err)
	}
}

// TestSettlementFamilies: a close's outcome is counted and each bill's line count replaces the previous one of its
// product type.
func TestSettlementFamilies(t *testing.T) {
	m, err := NewWorker(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	m.ObserveSettlementRun("closed")
	m.ObserveSettlementRun("closed")
	m.ObserveSettlementRun("refused")
	m.ObserveSettlementBill("general", 120)
	m.ObserveSettlementBill("joint-operation", 7)
	m.ObserveSettlementBill("general", 95)
	if n := testutil.ToFloat64(m.settlement.WithLabelValues("closed")); n != 2 {
		t.Errorf("closed runs %v, want 2", n)
	}
	if n := testutil.ToFloat64(m.lines.WithLabelValues("general")); n != 95 {
		t.Errorf("general lines %v, want the latest bill's 95", n)
	}
	if n := testutil.ToFloat64(m.lines.WithLabelValues("joint-operation")); n != 7 {
		t.Errorf("joint-operation lines %v, want 7", n)
	}
	var nilWorker *Worker
	nilWorker.ObserveSettlementBill("general", 1) // a worker without metrics records nothing and does not panic
}
