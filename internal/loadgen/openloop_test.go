package loadgen

import (
	"context"
	"sync"
	"testing"
	"time"
)

func TestRunOpenKeepsTheScheduleWhateverTheLatency(t *testing.T) {
	// A target slower than the schedule's interval: closed-loop clients would slow down to its pace, the open
	// loop keeps sending, so every slot gets its call and the latency shows the target's delay.
	srv, seen := target(t, false, 50*time.Millisecond)
	var placed sync.Map
	rep, err := RunOpen(context.Background(), OpenOptions{
		Options: Options{URL: srv.URL, AccessKey: key, Concurrency: 4, Requests: 100, OrderPrefix: "O",
			Place: func(_ context.Context, order, _ string) error { placed.Store(order, true); return nil }},
		Rate: 200,
	})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Requests != 100 || rep.Answered() != 100 || rep.Codes["000004"] != 100 {
		t.Fatalf("requests %d answered %d codes %v errors %v", rep.Requests, rep.Answered(), rep.Codes, rep.Errors)
	}
	// 100 calls at 200/s take about 0.5 s plus one call's latency, not 100 × 50 ms / 4 clients = 1.25 s.
	if rep.Elapsed > time.Second {
		t.Fatalf("the run took %s: calls waited for each other", rep.Elapsed)
	}
	if p50 := rep.Quantile(0.5); p50 < 50*time.Millisecond {
		t.Fatalf("p50 %s is below the target's delay", p50)
	}
	n := 0
	seen.Range(func(k, _ any) bool {
		if _, ok := placed.Load(k); !ok {
			t.Errorf("order %v was sent without being placed", k)
		}
		n++
		return true
	})
	if n != 100 {
		t.Fatalf("target saw %d orders", n)
	}
}

func TestRunOpenCountsSlotsItCouldNotSend(t *testing.T) {
	srv, _ := target(t, false, 200*time.Millisecond)
	rep, err := RunOpen(context.Background(), OpenOptions{
		Options: Options{URL: srv.URL, AccessKey: key, Requests: 40},
		Rate:    400, MaxInFlight: 10,
	})
	if err != nil {
		t.Fatal(err)
	}
	// 40 slots 2.5 ms apart, each call holding its place 200 ms: only the first 10 fit.
	if rep.Dropped != 30 || rep.Missed < 30 || rep.Answered() != 10 {
		t.Fatalf("dropped %d missed %d answered %d", rep.Dropped, rep.Missed, rep.Answered())
	}
}

func TestRunOpenRefusesNoRate(t *testing.T) {
	if _, err := RunOpen(context.Background(), OpenOptions{Options: Options{URL: "http://x", AccessKey: key, Requests: 1}}); err == nil {
		t.Fatal("a run without a rate must be refused")
	}
}
