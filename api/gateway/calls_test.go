package gateway

import (
	"context"
	"testing"
	"time"
)

func TestCallsWaitIdle(t *testing.T) {
	ctx := context.Background()
	var c Calls
	if !c.WaitIdle(ctx, 0, time.Hour) {
		t.Fatal("no call in flight, yet WaitIdle did not see the gateway idle")
	}
	end1, end2 := c.Begin(), c.Begin()
	if n := c.InFlight(); n != 2 {
		t.Fatalf("%d in flight, want 2", n)
	}
	start := time.Now()
	if c.WaitIdle(ctx, 0, 30*time.Millisecond) {
		t.Fatal("WaitIdle saw the gateway idle with two calls in flight")
	}
	if waited := time.Since(start); waited < 30*time.Millisecond {
		t.Fatalf("WaitIdle gave up after %s, before its maximum", waited)
	}

	seen := make(chan bool, 1)
	go func() { seen <- c.WaitIdle(ctx, 0, time.Hour) }()
	end1()
	end1() // a second end of the same call changes nothing
	select {
	case <-seen:
		t.Fatal("WaitIdle returned with a call still in flight")
	case <-time.After(30 * time.Millisecond):
	}
	end2()
	select {
	case ok := <-seen:
		if !ok {
			t.Fatal("WaitIdle did not report the gateway idle")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("WaitIdle still waiting after the last call ended")
	}
	if n := c.InFlight(); n != 0 {
		t.Fatalf("%d in flight after both calls ended", n)
	}

	// A later burst waits on a fresh signal, not the one the first burst closed.
	end3 := c.Begin()
	if c.WaitIdle(ctx, 0, 10*time.Millisecond) {
		t.Fatal("WaitIdle saw the gateway idle during a second burst")
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if c.WaitIdle(cctx, 0, time.Hour) {
		t.Fatal("WaitIdle reported idle for an ended context")
	}
	end3()
}

// TestCallsQuietSpell: a call that begins and ends during the quiet spell starts the spell again.
func TestCallsQuietSpell(t *testing.T) {
	var c Calls
	const quiet = 60 * time.Millisecond
	start := time.Now()
	seen := make(chan time.Duration, 1)
	go func() {
		if c.WaitIdle(context.Background(), quiet, time.Hour) {
			seen <- time.Since(start)
		}
	}()
	time.Sleep(20 * time.Millisecond)
	c.Begin()()
	select {
	case waited := <-seen:
		if waited < 20*time.Millisecond+quiet {
			t.Fatalf("quiet after %s, though a call came 20 ms in and the spell is %s", waited, quiet)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("never quiet")
	}

	end := c.Begin()
	if c.WaitIdle(context.Background(), quiet, 2*quiet) {
		t.Fatal("quiet with a call in flight")
	}
	end()
}

func TestNilCallsNeverWait(t *testing.T) {
	var c *Calls
	end := c.Begin()
	end()
	if c.InFlight() != 0 || !c.WaitIdle(context.Background(), time.Second, time.Hour) {
		t.Fatal("a nil Calls counted or waited")
	}
}
