package rounds

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestRunRoundsUntilTheContextEnds(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	calls, failures := 0, 0
	done := make(chan struct{})
	go func() {
		defer close(done)
		Run(ctx, 5*time.Millisecond, func(context.Context) error {
			calls++
			if calls == 2 {
				return errors.New("round 2 failed")
			}
			if calls == 4 {
				cancel()
				return errors.New("stopped mid-round")
			}
			return nil
		}, func(err error) {
			failures++
			if err.Error() != "round 2 failed" {
				t.Errorf("failed got %v", err)
			}
		})
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
	if calls != 4 || failures != 1 {
		t.Fatalf("%d rounds, %d failures reported; want 4 rounds and only round 2's failure", calls, failures)
	}
}

func TestRunStartsWithARound(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	start := time.Now()
	Run(ctx, time.Hour, func(context.Context) error { cancel(); return nil }, func(error) {})
	if waited := time.Since(start); waited > time.Second {
		t.Fatalf("the first round came after %s, not at once", waited)
	}
}
