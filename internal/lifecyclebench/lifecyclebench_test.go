package lifecyclebench

import (
	"bytes"
	"strings"
	"sync"
	"testing"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"
)

func TestReportRatesAndRatio(t *testing.T) {
	r := &Report{N: 100, C: 10, Lifecycles: 10 * time.Second, LifecycleFailures: 20, Bare: 5 * time.Second,
		ToProvisioned: []time.Duration{time.Millisecond, 2 * time.Millisecond, 3 * time.Millisecond, 100 * time.Millisecond}}
	if got := r.LifecycleRate(); got != 8 {
		t.Fatalf("lifecycle rate %v, want 8 (80 completed in 10 s)", got)
	}
	if got := r.BareRate(); got != 20 {
		t.Fatalf("bare rate %v, want 20", got)
	}
	if got := r.Ratio(); got != 0.4 {
		t.Fatalf("ratio %v, want 0.4", got)
	}
	if q := Quantile(r.ToProvisioned, 0.5); q != 2*time.Millisecond {
		t.Fatalf("p50 %v", q)
	}
	if q := Quantile(r.ToProvisioned, 0.99); q != 100*time.Millisecond {
		t.Fatalf("p99 %v", q)
	}
	var b bytes.Buffer
	r.Write(&b)
	for _, want := range []string{"8.0/s", "20.0/s", "ratio:           0.40", "20 failed"} {
		if !strings.Contains(b.String(), want) {
			t.Fatalf("report lacks %q:\n%s", want, b.String())
		}
	}
	if (&Report{N: 1, Lifecycles: time.Second}).Ratio() != 0 {
		t.Fatal("a run without the bare phase must report no ratio")
	}
}

func TestEachCallsEveryIndexOnce(t *testing.T) {
	var mu sync.Mutex
	seen := map[int]int{}
	each(1000, 7, func(i int) {
		mu.Lock()
		seen[i]++
		mu.Unlock()
	})
	if len(seen) != 1000 {
		t.Fatalf("%d distinct indexes, want 1000", len(seen))
	}
	for i, n := range seen {
		if n != 1 || i < 0 || i >= 1000 {
			t.Fatalf("index %d called %d times", i, n)
		}
	}
}

func TestBareWorkflowRunsThreeActivities(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	env.RegisterWorkflowWithOptions(BareThreeSteps, workflow.RegisterOptions{Name: BareWorkflowType})
	env.RegisterActivityWithOptions(benchStep, activity.RegisterOptions{Name: "BenchStep"})
	env.ExecuteWorkflow(BareWorkflowType, "w1")
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	var out string
	if err := env.GetWorkflowResult(&out); err != nil {
		t.Fatal(err)
	}
	if out != "w1|reserve|charge|notify" {
		t.Fatalf("result %q", out)
	}
}
