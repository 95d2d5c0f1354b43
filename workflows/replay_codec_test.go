package workflows

import (
	"path/filepath"
	"testing"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"

	"github.com/kooflow/kooflow/internal/secrets"
	"github.com/kooflow/kooflow/internal/temporalconn"
)

// TestReplayRecordedHistoriesWithThePayloadCodec replays every recorded history (all written before payloads
// were encrypted) with the converters a worker uses once KOOFLOW_DATA_KEYS is set: plain payloads must pass
// through the codec, so workflows running at the upgrade carry on (docs/security.md, "Temporal payloads").
func TestReplayRecordedHistoriesWithThePayloadCodec(t *testing.T) {
	keys, err := secrets.Generate("replay")
	if err != nil {
		t.Fatal(err)
	}
	var o client.Options
	temporalconn.Encrypt(&o, keys)
	for _, rh := range recordedHistories {
		f := filepath.Join("testdata", rh.file)
		t.Run(rh.file, func(t *testing.T) {
			h := loadHistory(t, f)
			r, err := worker.NewWorkflowReplayerWithOptions(worker.WorkflowReplayerOptions{
				DataConverter: o.DataConverter, FailureConverter: o.FailureConverter})
			if err != nil {
				t.Fatal(err)
			}
			registerForTest(r, LifecycleConfig{})
			if err := r.ReplayWorkflowHistory(nil, h); err != nil {
				t.Fatalf("with the payload codec, the current code cannot replay %s: %v", f, err)
			}
		})
	}
}
