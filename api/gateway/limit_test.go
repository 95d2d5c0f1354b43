package gateway

import (
	"fmt"
	"testing"
	"time"
)

func TestSourceLimiterBudgetsEachSource(t *testing.T) {
	l := &SourceLimiter{PerMinute: 3, MaxSources: 2}
	t0 := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	for i := range 3 {
		if ok, _ := l.Allow("a", t0); !ok {
			t.Fatalf("call %d within the burst refused", i)
		}
	}
	if ok, dropped := l.Allow("a", t0); ok || dropped != 1 {
		t.Fatalf("over the burst: ok=%v dropped=%d", ok, dropped)
	}
	for range 3 {
		if ok, _ := l.Allow("b", t0); !ok {
			t.Fatal("another source shares the first one's budget")
		}
	}
	// 20 s later one token (3 a minute) has come back.
	if ok, _ := l.Allow("a", t0.Add(20*time.Second)); !ok {
		t.Fatal("the budget does not refill")
	}
	if ok, dropped := l.Allow("a", t0.Add(20*time.Second)); ok || dropped != 2 {
		t.Fatalf("after the refill: ok=%v dropped=%d", ok, dropped)
	}
	// The table is full (a, b, neither refilled): a third and fourth source share one bucket.
	for i := range 3 {
		if ok, _ := l.Allow(fmt.Sprintf("new-%d", i), t0.Add(20*time.Second)); !ok {
			t.Fatalf("shared bucket refused call %d within its burst", i)
		}
	}
	if ok, _ := l.Allow("new-9", t0.Add(20*time.Second)); ok {
		t.Fatal("many new sources escaped the limit when the table was full")
	}
	if len(l.buckets) > 3 {
		t.Fatalf("%d buckets for MaxSources 2", len(l.buckets))
	}
	// Once buckets have refilled they are forgotten and a new source gets its own.
	if ok, _ := l.Allow("c", t0.Add(5*time.Minute)); !ok || len(l.buckets) > 3 {
		t.Fatalf("after refill: ok=%v buckets=%d", ok, len(l.buckets))
	}
	var off *SourceLimiter
	if ok, _ := off.Allow("x", t0); !ok {
		t.Fatal("a nil limiter must allow")
	}
}
