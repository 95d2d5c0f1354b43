package store_test

import (
	"context"
	"sync"
	"testing"
	"time"
)

func TestClaimNonceOnce(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	at := time.Date(2026, 11, 29, 8, 0, 0, 0, time.UTC)
	if fresh, err := s.ClaimNonce(ctx, "n-1", at); err != nil || !fresh {
		t.Fatalf("first claim: fresh %v, %v", fresh, err)
	}
	// A replay is refused whenever it comes, and whichever time it claims.
	for _, again := range []time.Time{at, at.Add(time.Second), at.Add(-time.Hour)} {
		if fresh, err := s.ClaimNonce(ctx, "n-1", again); err != nil || fresh {
			t.Fatalf("claim again at %s: fresh %v, %v", again, fresh, err)
		}
	}
	if fresh, err := s.ClaimNonce(ctx, "n-2", at); err != nil || !fresh {
		t.Fatalf("another nonce: fresh %v, %v", fresh, err)
	}
}

// TestClaimNonceRace: API processes claiming one nonce at once; exactly one of them finds it fresh.
func TestClaimNonceRace(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	const claimers = 8
	var wg sync.WaitGroup
	results := make(chan bool, claimers)
	for range claimers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			fresh, err := s.ClaimNonce(ctx, "raced", time.Now())
			if err != nil {
				t.Error(err)
			}
			results <- fresh
		}()
	}
	wg.Wait()
	close(results)
	fresh := 0
	for f := range results {
		if f {
			fresh++
		}
	}
	if fresh != 1 {
		t.Fatalf("%d of %d concurrent claims found the nonce fresh, want 1", fresh, claimers)
	}
}

func TestPurgeNonces(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	t0 := time.Date(2026, 11, 29, 8, 0, 0, 0, time.UTC)
	for nonce, at := range map[string]time.Time{"old": t0, "cutoff": t0.Add(time.Minute), "new": t0.Add(2 * time.Minute)} {
		if _, err := s.ClaimNonce(ctx, nonce, at); err != nil {
			t.Fatal(err)
		}
	}
	n, err := s.PurgeNonces(ctx, t0.Add(time.Minute))
	if err != nil || n != 1 {
		t.Fatalf("purge deleted %d (%v), want 1: only the nonce seen before the cutoff", n, err)
	}
	for nonce, wantFresh := range map[string]bool{"old": true, "cutoff": false, "new": false} {
		if fresh, err := s.ClaimNonce(ctx, nonce, t0.Add(3*time.Minute)); err != nil || fresh != wantFresh {
			t.Errorf("claim %q after the purge: fresh %v (%v), want %v", nonce, fresh, err, wantFresh)
		}
	}
}
