package clock

import (
	"context"
	"sync"
	"testing"
	"time"
)

type fakeWall struct {
	mu sync.Mutex
	t  time.Time
}

func (f *fakeWall) now() time.Time      { f.mu.Lock(); defer f.mu.Unlock(); return f.t }
func (f *fakeWall) add(d time.Duration) { f.mu.Lock(); defer f.mu.Unlock(); f.t = f.t.Add(d) }

func TestScaleAdvancePause(t *testing.T) {
	w := &fakeWall{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	start := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	c := newWithWall(start, 3600, w.now)
	w.add(time.Second)
	if got := c.Now(); !got.Equal(start.Add(time.Hour)) {
		t.Fatalf("after 1 s at 3600x: %s", got)
	}
	c.Advance(24 * time.Hour)
	if got := c.Now(); !got.Equal(start.Add(25 * time.Hour)) {
		t.Fatalf("after advance: %s", got)
	}
	c.SetScale(0)
	w.add(time.Hour)
	if got := c.Now(); !got.Equal(start.Add(25 * time.Hour)) {
		t.Fatalf("paused clock moved: %s", got)
	}
	c.SetScale(0.5) // slower than real time is raised to real time
	w.add(time.Second)
	if got := c.Now(); !got.Equal(start.Add(25*time.Hour + time.Second)) {
		t.Fatalf("real-time clock: %s", got)
	}
	if c.WallDuration(time.Minute) != time.Minute {
		t.Fatal("wall duration at 1x")
	}
}

func TestUntilWakesOnTimeAndOnAdvance(t *testing.T) {
	c := New(time.Now(), 36000) // 10 hours per wall second
	ctx := context.Background()
	start := time.Now()
	if err := c.Sleep(ctx, time.Hour); err != nil { // 100 ms of wall time
		t.Fatal(err)
	}
	if el := time.Since(start); el < 80*time.Millisecond || el > 2*time.Second {
		t.Fatalf("an emulated hour took %s", el)
	}
	c.SetScale(0)
	done := make(chan error, 1)
	target := c.Now().Add(48 * time.Hour)
	go func() { done <- c.Until(ctx, target) }()
	select {
	case <-done:
		t.Fatal("a paused clock reached a future time")
	case <-time.After(50 * time.Millisecond):
	}
	c.Advance(48 * time.Hour)
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("Advance did not wake the waiter")
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := c.Sleep(cctx, time.Hour); err == nil {
		t.Fatal("a cancelled sleep returned nil")
	}
}
