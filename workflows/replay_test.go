package workflows

import (
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
)

// The histories in testdata/ were recorded from the real dev server by the integration tests of api/console
// (KOOFLOW_RECORD_HISTORIES=$PWD/workflows/testdata go test ./api/console/). Replaying them against the current
// code fails when a change would break workflows already running in production: such a change needs
// workflow.GetVersion, not a re-recording.

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

func TestReplayRecordedHistories(t *testing.T) {
	files, err := filepath.Glob("testdata/*.json")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 5 {
		t.Fatalf("found %d recorded histories in testdata/, want the 5 main paths", len(files))
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			r := worker.NewWorkflowReplayer()
			registerForTest(r, LifecycleConfig{})
			if err := r.ReplayWorkflowHistory(nil, loadHistory(t, f)); err != nil {
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
			by["search attributes"]++
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

// TestBillableActionsOfTheStandardPath counts the actions of the standard path (new purchase, not supervised,
// one renewal, freeze, release) from its recorded histories. A change that adds actions to this path must
// update the figure here on purpose.
func TestBillableActionsOfTheStandardPath(t *testing.T) {
	total := 0
	sum := map[string]int{}
	for _, f := range []string{"testdata/standard-run1-purchase-renewal.json", "testdata/standard-run2-freeze-release.json"} {
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
	const want = 22
	if total != want {
		t.Fatalf("the standard path takes %d billable actions, want %d", total, want)
	}
}
