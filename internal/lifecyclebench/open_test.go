package lifecyclebench

import (
	"strings"
	"testing"
)

// The worker's memory is read from Prometheus' text format: labelled samples of one metric are summed, comments
// and other metrics are skipped.
func TestParseMetricsSumsLabelledSamples(t *testing.T) {
	text := `# HELP process_resident_memory_bytes Resident memory size in bytes.
# TYPE process_resident_memory_bytes gauge
process_resident_memory_bytes 1.2345678e+08
go_memstats_heap_inuse_bytes 4.2e+07
temporal_sticky_cache_size{namespace="default",task_queue="kooflow"} 1500
temporal_sticky_cache_size{namespace="default",task_queue="other"} 500
temporal_sticky_cache_hit{namespace="default"} 7
`
	got, err := parseMetrics(strings.NewReader(text), "process_resident_memory_bytes", "go_memstats_heap_inuse_bytes", "temporal_sticky_cache_size")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]float64{"process_resident_memory_bytes": 123456780, "go_memstats_heap_inuse_bytes": 42e6, "temporal_sticky_cache_size": 2000}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
	if _, ok := got["temporal_sticky_cache_hit"]; ok {
		t.Error("a metric that was not asked for was returned")
	}
}

func TestPerInstanceRSSUsesTheCachedExecutions(t *testing.T) {
	r := &OpenReport{N: 3000, Before: WorkerMemory{RSS: 100 << 20, StickyCache: 0}, After: WorkerMemory{RSS: 130 << 20, StickyCache: 1000}}
	if got, want := r.PerInstanceRSS(), float64(30<<20)/1000; got != want {
		t.Fatalf("per instance %v, want %v (the growth over the 1,000 cached executions, not the 3,000 instances)", got, want)
	}
}
