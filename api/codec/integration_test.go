package codec_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/kooflow/kooflow/internal/config"
	"github.com/kooflow/kooflow/internal/payloadcodec"
	"github.com/kooflow/kooflow/internal/secrets"
	"github.com/kooflow/kooflow/internal/temporalconn"
	"github.com/kooflow/kooflow/internal/testenv"
	"github.com/kooflow/kooflow/internal/teststack"
	"github.com/kooflow/kooflow/workflows"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// payloadsOf collects every Payload in a history event, wherever it sits.
func payloadsOf(m protoreflect.Message, out *[]*commonpb.Payload) {
	if p, ok := m.Interface().(*commonpb.Payload); ok {
		*out = append(*out, p)
		return
	}
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		switch {
		case fd.IsList() && fd.Message() != nil:
			for i := range v.List().Len() {
				payloadsOf(v.List().Get(i).Message(), out)
			}
		case fd.IsMap() && fd.MapValue().Message() != nil:
			v.Map().Range(func(_ protoreflect.MapKey, mv protoreflect.Value) bool {
				payloadsOf(mv.Message(), out)
				return true
			})
		case fd.Message() != nil && !fd.IsList() && !fd.IsMap():
			payloadsOf(v.Message(), out)
		}
		return true
	})
}

// TestEncryptedHistoryThroughTheRealStack runs the self-check (API → Temporal → worker → PostgreSQL) with
// payloads sealed, as every production process does; reads the history with a plain client (what Temporal's
// database and UI hold): every payload but the search attributes is sealed and shows no plaintext; the codec
// endpoint decodes them for a console token; and the history replays with the worker's converters.
func TestEncryptedHistoryThroughTheRealStack(t *testing.T) {
	if testing.Short() {
		t.Skip("needs PostgreSQL and Temporal")
	}
	const token = "codec-test-token-0123456789"
	cfg := teststack.Config(t, map[string]string{config.EnvConsoleTokens: "ops:" + token})
	st := teststack.Start(t, cfg, teststack.Options{EncryptPayloads: true})

	req, _ := http.NewRequest(http.MethodPost, st.URL+"/console/v1/selfcheck", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var out struct{ RunID, WorkflowID, TemporalRunID string }
	_ = json.NewDecoder(resp.Body).Decode(&out)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("self-check: HTTP %d", resp.StatusCode)
	}

	ctx := context.Background()
	it := testenv.TemporalClient(t).GetWorkflowHistory(ctx, out.WorkflowID, out.TemporalRunID, false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	h := &historypb.History{}
	var sealed []*commonpb.Payload
	for it.HasNext() {
		e, err := it.Next()
		if err != nil {
			t.Fatal(err)
		}
		h.Events = append(h.Events, e)
		var ps []*commonpb.Payload
		payloadsOf(proto.Clone(e).ProtoReflect(), &ps)
		if e.GetWorkflowExecutionStartedEventAttributes() != nil {
			// Search attributes are indexed by Temporal and are never encoded (they carry no personal data).
			for _, sa := range e.GetWorkflowExecutionStartedEventAttributes().GetSearchAttributes().GetIndexedFields() {
				ps = slicesDelete(ps, sa)
			}
		}
		for _, p := range ps {
			if string(p.Metadata[converter.MetadataEncoding]) != payloadcodec.Encoding {
				t.Errorf("event %d (%s) holds a plain payload: %s %s", e.EventId, e.EventType, p.Metadata, p.Data)
			}
			if bytes.Contains(p.Data, []byte(out.RunID)) {
				t.Errorf("event %d shows the run id in plain", e.EventId)
			}
		}
		sealed = append(sealed, ps...)
	}
	if len(sealed) < 3 {
		t.Fatalf("only %d payloads in the history", len(sealed))
	}

	// The codec endpoint (what the web UI calls) opens them.
	plain, err := remote(st.URL+"/codec", token).Decode(sealed)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, p := range plain {
		found = found || strings.Contains(string(p.Data), out.RunID)
	}
	if !found {
		t.Fatalf("no decoded payload holds the self-check's run id %s", out.RunID)
	}

	// The encrypted history replays with the worker's converters.
	var o client.Options
	temporalconn.Encrypt(&o, mustKeys(t, cfg))
	r, err := worker.NewWorkflowReplayerWithOptions(worker.WorkflowReplayerOptions{DataConverter: o.DataConverter, FailureConverter: o.FailureConverter})
	if err != nil {
		t.Fatal(err)
	}
	r.RegisterWorkflowWithOptions(workflows.SelfCheck, workflowOptions(workflows.SelfCheckWorkflowType))
	if err := r.ReplayWorkflowHistory(nil, h); err != nil {
		t.Fatalf("replay the encrypted history: %v", err)
	}
}

func slicesDelete(ps []*commonpb.Payload, p *commonpb.Payload) []*commonpb.Payload {
	out := ps[:0]
	for _, q := range ps {
		if !proto.Equal(q, p) {
			out = append(out, q)
		}
	}
	return out
}

func mustKeys(t *testing.T, cfg config.Config) *secrets.Keyring {
	t.Helper()
	k, err := cfg.Keyring()
	if err != nil || k == nil {
		t.Fatalf("data keys: %v", err)
	}
	return k
}

func workflowOptions(name string) workflow.RegisterOptions {
	return workflow.RegisterOptions{Name: name}
}
