package api_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/kooflow/kooflow/internal/config"
	"github.com/kooflow/kooflow/internal/testenv"
	"github.com/kooflow/kooflow/internal/teststack"
)

func TestMain(m *testing.M) { testenv.Main(m) }

const consoleToken = "test-console-token-0123456789"

// stack runs the real router and a real worker against the shared dev server and a fresh database.
func stack(t *testing.T) string {
	t.Helper()
	st := teststack.Start(t, teststack.Config(t, map[string]string{
		config.EnvConsoleTokens: "tester:" + consoleToken,
		config.EnvAccessKey:     "test-access-key",
	}), teststack.Options{})
	return st.URL
}

func do(t *testing.T, method, url, token string) (*http.Response, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(method, url, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatalf("%s %s: decode body: %v", method, url, err)
	}
	return resp, body
}

// TestSelfCheckEndToEnd proves the wiring: an HTTP call starts a workflow through Temporal, a worker runs its
// activity, the activity writes a row to PostgreSQL, and the workflow completes.
func TestSelfCheckEndToEnd(t *testing.T) {
	url := stack(t)
	ctx := context.Background()

	resp, body := do(t, http.MethodPost, url+"/console/v1/selfcheck", consoleToken)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("selfcheck: status %d, body %v", resp.StatusCode, body)
	}
	runID, _ := body["runId"].(string)
	wfID, _ := body["workflowId"].(string)
	if runID == "" || !strings.HasPrefix(wfID, "selfcheck/") {
		t.Fatalf("selfcheck answer lacks ids: %v", body)
	}

	// The workflow is closed and completed in Temporal.
	tc := testenv.TemporalClient(t)
	desc, err := tc.DescribeWorkflowExecution(ctx, wfID, "")
	if err != nil {
		t.Fatal(err)
	}
	if got := desc.WorkflowExecutionInfo.Status.String(); got != "Completed" {
		t.Fatalf("workflow status %s, want Completed", got)
	}

	// The row is in PostgreSQL and readable through the API.
	resp, row := do(t, http.MethodGet, url+"/console/v1/selfcheck/"+runID, consoleToken)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("read back: status %d %v", resp.StatusCode, row)
	}
	if row["requestedBy"] != "tester" || !strings.HasPrefix(row["worker"].(string), "kooflow-worker@") {
		t.Fatalf("row = %v", row)
	}
	written, err := time.Parse(time.RFC3339Nano, row["writtenAt"].(string))
	if err != nil || time.Since(written) > time.Minute {
		t.Fatalf("writtenAt %v (%v)", row["writtenAt"], err)
	}
}

func TestHealthAndReadiness(t *testing.T) {
	url := stack(t)
	resp, body := do(t, http.MethodGet, url+"/healthz", "")
	if resp.StatusCode != 200 || body["status"] != "ok" {
		t.Fatalf("healthz %d %v", resp.StatusCode, body)
	}
	resp, body = do(t, http.MethodGet, url+"/readyz", "")
	checks, _ := body["checks"].(map[string]any)
	if resp.StatusCode != 200 || checks["postgres"] != "ok" || checks["temporal"] != "ok" {
		t.Fatalf("readyz %d %v", resp.StatusCode, body)
	}
}

func TestConsoleRefusesWithProblemDetails(t *testing.T) {
	url := stack(t)
	for _, tc := range []struct {
		name, method, path, token string
		status                    int
	}{
		{"no token", http.MethodPost, "/console/v1/selfcheck", "", http.StatusUnauthorized},
		{"wrong token", http.MethodPost, "/console/v1/selfcheck", "not-the-right-token-at-all", http.StatusUnauthorized},
		{"bad run id", http.MethodGet, "/console/v1/selfcheck/not-a-uuid", consoleToken, http.StatusBadRequest},
		{"unknown run", http.MethodGet, "/console/v1/selfcheck/0b6c2f52-6f4f-4a53-8f7e-0d0a0a0a0a0a", consoleToken, http.StatusNotFound},
		{"unknown path", http.MethodGet, "/nowhere", "", http.StatusNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, url+tc.path, nil)
			if tc.token != "" {
				req.Header.Set("Authorization", "Bearer "+tc.token)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.status)
			}
			if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/problem+json") {
				t.Fatalf("content type %q", ct)
			}
			var p map[string]any
			if err := json.NewDecoder(resp.Body).Decode(&p); err != nil {
				t.Fatal(err)
			}
			if int(p["status"].(float64)) != tc.status || p["detail"] == "" || p["requestId"] == "" {
				t.Fatalf("problem = %v", p)
			}
		})
	}
}
