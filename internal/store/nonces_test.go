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
	if fresh, err := s.ClaimNonce(ctx, "n-1"); err != nil || !fresh {
		t.Fatalf("first claim: fresh %v, %v", fresh, err)
	}
	// A replay is refused whenever it comes.
	for range 2 {
		if fresh, err := s.ClaimNonce(ctx, "n-1"); err != nil || fresh {
			t.Fatalf("claim again: fresh %v, %v", fresh, err)
		}
	}
	if fresh, err := s.ClaimNonce(ctx, "n-2"); err != nil || !fresh {
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
			fresh, err := s.ClaimNonce(ctx, "raced")
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

// TestPurgeNonces: ages are measured by the database's clock, whatever the caller's clock says.
func TestPurgeNonces(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	for nonce, age := range map[string]string{"old": "3 minutes", "recent": "30 seconds", "new": "0 seconds"} {
		if _, err := s.Pool.Exec(ctx, `INSERT INTO koogallery_nonces (nonce, seen_at) VALUES ($1, now() - $2::interval)`, nonce, age); err != nil {
			t.Fatal(err)
		}
	}
	n, err := s.PurgeNonces(ctx, 2*time.Minute)
	if err != nil || n != 1 {
		t.Fatalf("purge deleted %d (%v), want 1: only the nonce seen more than 2 minutes ago", n, err)
	}
	for nonce, wantFresh := range map[string]bool{"old": true, "recent": false, "new": false} {
		if fresh, err := s.ClaimNonce(ctx, nonce); err != nil || fresh != wantFresh {
			t.Errorf("claim %q after the purge: fresh %v (%v), want %v", nonce, fresh, err, wantFresh)
		}
	}
}
