package workflows

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/worker"

	"github.com/kooflow/kooflow/internal/instance"
)

// The histories in testdata/ were recorded from the real dev server (started by the tests through
// internal/testenv) by the integration tests that drive kooflow through its production paths: the lifecycle
// through the real gateway and console with a real worker (api/console), settlement through the real worker
// registration, the period workflow started as the console and the CLI start it and the tick started by the
// settlement schedule (worker). Replaying them against the current code fails when a change would break
// workflows already running in production: such a change needs workflow.GetVersion, not a re-recording.
//
// To record them, run the recording tests of each package with KOOFLOW_RECORD_HISTORIES naming this directory
// (from the repository root; without the variable the same tests only replay the runs they produce):
//
//	KOOFLOW_RECORD_HISTORIES=$PWD/workflows/testdata go test ./api/console/ -count=1 -run '^(TestTrialUpgradeUnsubscribeAndDialTestThroughTheAPI|TestRenewalChangeThroughTheAPI)$'
//	KOOFLOW_RECORD_HISTORIES=$PWD/workflows/testdata go test ./worker/ -count=1 -run '^TestSettlementHistoriesThroughTheWorker$'
//	KOOFLOW_RECORD_HISTORIES=$PWD/workflows/testdata go test ./e2e/ -count=1 -run '^TestPayPerUseUsageEndToEnd$'
//
// Some histories below are kept as committed (kept says why), since their test no longer produces them: those
// recorded when the gateway still sent newInstance as an Update-With-Start, the only histories holding that
// Update, which the workflow still accepts; the standard path as it ran before fewerActionsChange, in two
// runs; and the standard path as it ran before expiryWatchChange, with its expiry timers. The api/console tests that produced the first kind still replay their runs, and would overwrite them in
// record mode with runs that lack the Update; TestReplayRecordedHistories then fails until they are restored
// (git checkout -- workflows/testdata).

// recordedHistories is the set testdata/ must hold, one or more per step kind a workflow can be in the middle
// of, with the test that records each and what its run must contain: accepted Updates ("refreshInstance:SCENE"
// for a refresh), "signal:" signals, "activity:" activities and "child:" child workflows. A re-recording that no
// longer covers its step therefore fails here as well.
var recordedHistories = []struct {
	file, pkg, test, workflowType string
	contains                      []string
	kept                          string
}{
	{"standard-run1-purchase-renewal.json", "./api/console/", "TestStandardPathThroughTheAPI", instance.WorkflowType,
		[]string{"newInstance", "refreshInstance:RENEWAL"}, beforeInbox},
	{"standard-run2-freeze-release.json", "./api/console/", "TestStandardPathThroughTheAPI", instance.WorkflowType,
		[]string{"updateInstanceStatus", "releaseInstance"}, beforeInbox},
	{"standard-inbox-run1-purchase-renewal.json", "./api/console/", "TestStandardPathThroughTheAPI", instance.WorkflowType,
		[]string{"activity:Provision", "refreshInstance:RENEWAL"}, beforeFewerActions},
	{"standard-inbox-run2-freeze-release.json", "./api/console/", "TestStandardPathThroughTheAPI", instance.WorkflowType,
		[]string{"updateInstanceStatus", "releaseInstance"}, beforeFewerActions},
	{"standard-path-timer.json", "./api/console/", "TestStandardPathThroughTheAPI", instance.WorkflowType,
		[]string{"refreshInstance:RENEWAL", "activity:QueryOrder", "updateInstanceStatus", "activity:Provision", "releaseInstance"}, beforeExpiryWatch},
	{"standard-path.json", "./api/console/", "TestStandardPathThroughTheAPI", instance.WorkflowType,
		[]string{"refreshInstance:RENEWAL", "activity:QueryOrder", "updateInstanceStatus", "activity:Provision", "releaseInstance"}, ""},
	{"supervision-refund-release.json", "./api/console/", "TestSupervisionAndRefundsThroughTheConsole", instance.WorkflowType,
		[]string{"newInstance", "refund", "supervision", "releaseInstance"}, beforeInbox},
	{"parking-resume-by-update-and-signal.json", "./api/console/", "TestParkingThroughTheConsole", instance.WorkflowType,
		[]string{"newInstance", "operatorAction", "signal:operator"}, beforeInbox},
	{"expiry-policy-freeze-then-renewal.json", "./api/console/", "TestExpirySafetyNetAndRenewalThroughTheAPI", instance.WorkflowType,
		[]string{"newInstance", "refreshInstance:RENEWAL"}, beforeInbox},
	{"expiry-watch-freeze-then-renewal.json", "./api/console/", "TestExpirySafetyNetAndRenewalThroughTheAPI", instance.WorkflowType,
		[]string{"checkExpiry", "refreshInstance:RENEWAL"}, ""},
	{"trial-run1-purchase-conversion.json", "./api/console/", "TestTrialUpgradeUnsubscribeAndDialTestThroughTheAPI", instance.WorkflowType,
		[]string{"activity:Provision", "refreshInstance:TRIAL_TO_FORMAL"}, ""},
	{"trial-run2-upgrade-renewal.json", "./api/console/", "TestTrialUpgradeUnsubscribeAndDialTestThroughTheAPI", instance.WorkflowType,
		[]string{"upgradeInstance", "refreshInstance:RENEWAL"}, ""},
	{"trial-run3-renewal-refund-unsubscribe-release.json", "./api/console/", "TestTrialUpgradeUnsubscribeAndDialTestThroughTheAPI", instance.WorkflowType,
		[]string{"refreshInstance:UNSUBSCRIBE_RENEWAL_PERIOD", "releaseInstance"}, ""},
	{"renewal-change.json", "./api/console/", "TestRenewalChangeThroughTheAPI", instance.WorkflowType,
		[]string{"activity:Provision", "refreshInstance:RENEWAL_CHANGE"}, ""},
	{"settlement-period-close.json", "./worker/", "TestSettlementHistoriesThroughTheWorker", SettlementPeriodWorkflowType,
		[]string{"activity:SettlementPrepare", "activity:SettlementApplyBatches", "activity:SettlementFinalize"}, ""},
	{"settlement-period-rerun-verify.json", "./worker/", "TestSettlementHistoriesThroughTheWorker", SettlementPeriodWorkflowType,
		[]string{"activity:SettlementPrepare", "activity:SettlementVerify"}, ""},
	{"settlement-tick.json", "./worker/", "TestSettlementHistoriesThroughTheWorker", SettlementTickWorkflowType,
		[]string{"activity:SettlementDue", "child:" + SettlementPeriodWorkflowType}, ""},
	{"usage-release-final-flush.json", "./e2e/", "TestPayPerUseUsageEndToEnd", instance.WorkflowType,
		[]string{"activity:QueryOrder", "releaseInstance", "activity:UsagePushFlush"}, ""},
	{"settlement-tick-period-close.json", "./worker/", "TestSettlementHistoriesThroughTheWorker", SettlementPeriodWorkflowType,
		[]string{"activity:SettlementPrepare", "activity:SettlementApplyBatches", "activity:SettlementFinalize"}, ""},
}

// Why a history is kept as committed.
const (
	beforeInbox        = "it was recorded when newInstance came as an Update-With-Start; a re-recording would not hold that Update"
	beforeFewerActions = "it was recorded before fewerActionsChange, when every renewal continued as new; the test now records standard-path.json"
	beforeExpiryWatch  = "it was recorded before expiryWatchChange, when the expiry safety net was a timer per deadline; the test now records standard-path.json"
)

// howToRestore says how to bring back a history that is missing or no longer covers its step.
func howToRestore(file, pkg, test, kept string) string {
	if kept != "" {
		return fmt.Sprintf("restore it with git checkout -- workflows/testdata/%s (%s)", file, kept)
	}
	return fmt.Sprintf("record it from the repository root with\n\tKOOFLOW_RECORD_HISTORIES=$PWD/workflows/testdata go test %s -count=1 -run '^%s$'", pkg, test)
}

func loadHistory(t *testing.T, path string) *historypb.History {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h, err := client.HistoryFromJSON(f, client.HistoryJSONOptions{})
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return h
}

// historyContents lists what a history shows happened, in the notation of recordedHistories.
func historyContents(t *testing.T, h *historypb.History) []string {
	t.Helper()
	var out []string
	for _, e := range h.Events {
		if a := e.GetWorkflowExecutionUpdateAcceptedEventAttributes(); a != nil {
			in := a.GetAcceptedRequest().GetInput()
			name := in.GetName()
			if name == instance.UpdateRefreshInstance {
				var req instance.RefreshRequest
				if err := converter.GetDefaultDataConverter().FromPayloads(in.GetArgs(), &req); err != nil {
					t.Fatalf("decode a %s Update: %v", name, err)
				}
				name += ":" + req.Scene
			}
			out = append(out, name)
		}
		if a := e.GetWorkflowExecutionSignaledEventAttributes(); a != nil {
			out = append(out, "signal:"+a.GetSignalName())
		}
		if a := e.GetActivityTaskScheduledEventAttributes(); a != nil {
			out = append(out, "activity:"+a.GetActivityType().GetName())
		}
		if a := e.GetStartChildWorkflowExecutionInitiatedEventAttributes(); a != nil {
			out = append(out, "child:"+a.GetWorkflowType().GetName())
		}
	}
	return out
}

func TestReplayRecordedHistories(t *testing.T) {
	files, err := filepath.Glob("testdata/*.json")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{}
	for _, rh := range recordedHistories {
		want[rh.file] = true
		if _, err := os.Stat(filepath.Join("testdata", rh.file)); err != nil {
			t.Errorf("testdata/%s is missing (%v); %s", rh.file, err, howToRestore(rh.file, rh.pkg, rh.test, rh.kept))
		}
	}
	for _, f := range files {
		if !want[filepath.Base(f)] {
			t.Errorf("%s is not in recordedHistories: add it there with the test that records it and what it covers", f)
		}
	}
	for _, rh := range recordedHistories {
		f := filepath.Join("testdata", rh.file)
		if _, err := os.Stat(f); err != nil {
			continue // reported above
		}
		t.Run(rh.file, func(t *testing.T) {
			h := loadHistory(t, f)
			if got := h.Events[0].GetWorkflowExecutionStartedEventAttributes().GetWorkflowType().GetName(); got != rh.workflowType {
				t.Fatalf("%s is a history of %q, want %q", f, got, rh.workflowType)
			}
			got := historyContents(t, h)
			for _, c := range rh.contains {
				if !slices.Contains(got, c) {
					t.Fatalf("%s does not contain %s (it shows %v); %s", f, c, got, howToRestore(rh.file, rh.pkg, rh.test, rh.kept))
				}
			}
			r := worker.NewWorkflowReplayer()
			registerForTest(r, LifecycleConfig{})
			if err := r.ReplayWorkflowHistory(nil, h); err != nil {
				t.Fatalf("the current code cannot replay %s: %v", f, err)
			}
		})
	}
}

// billableActions counts the Temporal Cloud actions a run's history shows, per Temporal's pricing rules
// (documentation: cloud/actions): a workflow start or Continue-As-New; each accepted Update; each activity
// scheduled and each of its retries; all local activities of one workflow task together; each timer; each
// search-attribute upsert; each signal. Side-effect markers are free. Not in history, so not counted here:
// rejected Updates and Queries (each also one action).
func billableActions(h *historypb.History) (int, map[string]int) {
	by := map[string]int{}
	laTasks := map[int64]bool{}
	var lastCompletedTask int64
	for _, e := range h.Events {
		switch e.EventType {
		case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
			by["start"]++
		case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED:
			by["update"]++
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
			by["activity"]++
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_STARTED:
			if a := e.GetActivityTaskStartedEventAttributes().GetAttempt(); a > 1 {
				by["activity retry"] += int(a - 1)
			}
		case enumspb.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
			lastCompletedTask = e.EventId
		case enumspb.EVENT_TYPE_MARKER_RECORDED:
			if e.GetMarkerRecordedEventAttributes().GetMarkerName() == "LocalActivity" && !laTasks[lastCompletedTask] {
				laTasks[lastCompletedTask] = true
				by["local activities (per workflow task)"]++
			}
		case enumspb.EVENT_TYPE_TIMER_STARTED:
			by["timer"]++
		case enumspb.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES:
			if !onlyChangeVersion(e.GetUpsertWorkflowSearchAttributesEventAttributes().GetSearchAttributes().GetIndexedFields()) {
				by["search attributes"]++
			}
		case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED:
			by["signal"]++
		}
	}
	n := 0
	for _, v := range by {
		n += v
	}
	return n, by
}

// onlyChangeVersion reports an upsert that only records workflow.GetVersion's TemporalChangeVersion, which
// Temporal does not bill.
func onlyChangeVersion(fields map[string]*commonpb.Payload) bool {
	if len(fields) == 0 {
		return false
	}
	for k := range fields {
		if k != "TemporalChangeVersion" {
			return false
		}
	}
	return true
}

// standardPathActions sums the actions of the runs of one standard path.
func standardPathActions(t *testing.T, files ...string) int {
	t.Helper()
	total := 0
	sum := map[string]int{}
	for _, f := range files {
		n, by := billableActions(loadHistory(t, f))
		total += n
		for k, v := range by {
			sum[k] += v
		}
		t.Logf("%s: %d actions %v", filepath.Base(f), n, by)
	}
	keys := make([]string, 0, len(sum))
	for k := range sum {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, k+"="+strconv.Itoa(sum[k]))
	}
	t.Logf("standard path: %d billable actions (%s)", total, strings.Join(parts, ", "))
	return total
}

// TestBillableActionsOfTheStandardPath counts the actions of the standard path (new purchase, not supervised,
// one renewal, freeze, release) from its recorded histories: the current path, recorded with time passing
// between the steps (the renewal before the expiry, the purchase's expiry and grace passing before the freeze)
// and, for comparison, the path as it ran before expiryWatchChange (its expiry timer re-armed once after the
// renewal), before fewerActionsChange (two runs, no time passing, so without the timer the second run would
// start at its Continue-As-New) and when newInstance came as an Update-With-Start. A change that adds actions
// to the current path must update the figure here on purpose.
func TestBillableActionsOfTheStandardPath(t *testing.T) {
	if n := standardPathActions(t, "testdata/standard-run1-purchase-renewal.json", "testdata/standard-run2-freeze-release.json"); n != 22 {
		t.Fatalf("the standard path as recorded before the inbox takes %d billable actions, want 22", n)
	}
	if n := standardPathActions(t, "testdata/standard-inbox-run1-purchase-renewal.json", "testdata/standard-inbox-run2-freeze-release.json"); n != 19 {
		t.Fatalf("the standard path as recorded before fewerActionsChange takes %d billable actions, want 19", n)
	}
	if n := standardPathActions(t, "testdata/standard-path-timer.json"); n != 14 {
		t.Fatalf("the standard path as recorded before expiryWatchChange takes %d billable actions, want 14", n)
	}
	const want = 12
	if n := standardPathActions(t, "testdata/standard-path.json"); n != want {
		t.Fatalf("the standard path takes %d billable actions, want %d", n, want)
	}
}
