package testenv

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/api/temporalproto"
	"go.temporal.io/sdk/client"
)

// EnvRecordHistories names the directory RecordHistory writes histories to: workflows/testdata, where the replay
// tests of workflows/ read them (workflows/replay_test.go says which tests record which history, and how).
const EnvRecordHistories = "KOOFLOW_RECORD_HISTORIES"

// History fetches the full history of one run of a workflow from Temporal; an empty runID means the
// latest run.
func History(t testing.TB, c client.Client, workflowID, runID string) *historypb.History {
	t.Helper()
	it := c.GetWorkflowHistory(context.Background(), workflowID, runID, false, 0)
	h := &historypb.History{}
	for it.HasNext() {
		e, err := it.Next()
		if err != nil {
			t.Fatalf("history of %s (run %q): %v", workflowID, runID, err)
		}
		h.Events = append(h.Events, e)
	}
	if len(h.Events) == 0 {
		t.Fatalf("history of %s (run %q) is empty", workflowID, runID)
	}
	return h
}

// RecordHistory writes h to $KOOFLOW_RECORD_HISTORIES/name, in the JSON that client.HistoryFromJSON reads, when
// that variable is set; otherwise it does nothing. h must be the history as the server returned it: a history that
// was replayed (rather than a ReplayCopy of it) no longer is.
func RecordHistory(t testing.TB, h *historypb.History, name string) {
	t.Helper()
	dir := os.Getenv(EnvRecordHistories)
	if dir == "" {
		return
	}
	b, err := temporalproto.CustomJSONMarshalOptions{Indent: "  "}.Marshal(h)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name), append(b, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("recorded %s (%d events)", name, len(h.Events))
}

// ReplayCopy returns a copy of h to hand to a WorkflowReplayer. The replayer merges every search attribute the
// workflow upserts into the search attributes of the history's WorkflowExecutionStarted event, in place: a
// history replayed and then recorded would start with the run's final search attributes, and replaying it would
// then take other branches than the run did.
func ReplayCopy(t testing.TB, h *historypb.History) *historypb.History {
	t.Helper()
	b, err := h.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	c := &historypb.History{}
	if err := c.Unmarshal(b); err != nil {
		t.Fatal(err)
	}
	return c
}
