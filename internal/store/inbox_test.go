package store_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/kooflow/kooflow/internal/store"
)

func inboxRow(id string, receivedAt time.Time) store.InboxRow {
	return store.InboxRow{InstanceID: id, OrderID: "CS-" + id, OrderLineID: "CS-" + id + "-000001", BusinessID: "b-" + id,
		ReceivedAt: receivedAt}
}

func TestAcceptInboxIsIdempotent(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	received := time.Date(2026, 11, 29, 8, 0, 0, 0, time.UTC)
	r := inboxRow("i-1", received)
	r.TestFlag = true
	retry, dispatched, err := s.AcceptInbox(ctx, r, 5*time.Second)
	if err != nil || retry || dispatched {
		t.Fatalf("first accept: retry %v dispatched %v (%v)", retry, dispatched, err)
	}
	// A marketplace retry finds the row and changes nothing in it.
	changed := r
	changed.BusinessID = "b-other"
	changed.ReceivedAt = received.Add(time.Minute)
	retry, dispatched, err = s.AcceptInbox(ctx, changed, time.Hour)
	if err != nil || !retry || dispatched {
		t.Fatalf("retry: retry %v dispatched %v (%v)", retry, dispatched, err)
	}
	got, err := s.InboxEntry(ctx, "i-1")
	if err != nil {
		t.Fatal(err)
	}
	if got.OrderID != r.OrderID || got.OrderLineID != r.OrderLineID || got.BusinessID != r.BusinessID || !got.TestFlag ||
		!got.ReceivedAt.Equal(received) || got.DispatchedAt != nil || got.Attempts != 0 ||
		!got.NextAttempt.Equal(received.Add(5*time.Second)) {
		t.Fatalf("row after a retry: %+v", got)
	}
	if err := s.InboxDispatched(ctx, "i-1"); err != nil {
		t.Fatal(err)
	}
	retry, dispatched, err = s.AcceptInbox(ctx, r, 5*time.Second)
	if err != nil || !retry || !dispatched {
		t.Fatalf("retry after the start: retry %v dispatched %v (%v)", retry, dispatched, err)
	}

	accepted, err := s.InboxAccepted(ctx, []string{"i-1", "i-unknown"})
	if err != nil || !accepted["i-1"] || accepted["i-unknown"] || len(accepted) != 1 {
		t.Fatalf("accepted %v (%v)", accepted, err)
	}
	if _, err := s.InboxEntry(ctx, "i-unknown"); !errors.Is(err, pgx.ErrNoRows) {
		t.Fatalf("unknown row: %v, want pgx.ErrNoRows", err)
	}
}

// TestAcceptInboxRace: concurrent deliveries of one newInstance record one row; exactly one is not a retry.
func TestAcceptInboxRace(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	const callers = 8
	var wg sync.WaitGroup
	firsts := make(chan bool, callers)
	for range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			retry, _, err := s.AcceptInbox(ctx, inboxRow("i-raced", time.Now()), time.Second)
			if err != nil {
				t.Error(err)
			}
			firsts <- !retry
		}()
	}
	wg.Wait()
	close(firsts)
	n := 0
	for first := range firsts {
		if first {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("%d of %d concurrent accepts recorded the row, want 1", n, callers)
	}
}

func TestInboxDispatchBookkeeping(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	if _, _, err := s.AcceptInbox(ctx, inboxRow("i-1", time.Now()), 0); err != nil {
		t.Fatal(err)
	}
	before := time.Now()
	if err := s.InboxDispatchFailed(ctx, "i-1", "temporal is unavailable", time.Hour); err != nil {
		t.Fatal(err)
	}
	r, err := s.InboxEntry(ctx, "i-1")
	if err != nil {
		t.Fatal(err)
	}
	if r.Attempts != 1 || r.LastError != "temporal is unavailable" || r.DispatchedAt != nil ||
		r.NextAttempt.Before(before.Add(time.Hour-time.Minute)) || r.NextAttempt.After(time.Now().Add(time.Hour+time.Minute)) {
		t.Fatalf("after a failed dispatch: %+v", r)
	}
	if err := s.InboxDispatched(ctx, "i-1"); err != nil {
		t.Fatal(err)
	}
	first, err := s.InboxEntry(ctx, "i-1")
	if err != nil {
		t.Fatal(err)
	}
	if first.DispatchedAt == nil || first.Attempts != 2 {
		t.Fatalf("after the start: %+v", first)
	}
	// Once dispatched, later marks and failures (a concurrent dispatcher's) change nothing.
	if err := s.InboxDispatched(ctx, "i-1"); err != nil {
		t.Fatal(err)
	}
	if err := s.InboxDispatchFailed(ctx, "i-1", "late failure", time.Minute); err != nil {
		t.Fatal(err)
	}
	again, err := s.InboxEntry(ctx, "i-1")
	if err != nil {
		t.Fatal(err)
	}
	if !again.DispatchedAt.Equal(*first.DispatchedAt) || again.Attempts != 2 || again.LastError != first.LastError ||
		!again.NextAttempt.Equal(first.NextAttempt) {
		t.Fatalf("a dispatched row changed: %+v, was %+v", again, first)
	}
}

func TestClaimInbox(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	now := time.Now()
	// Due rows, oldest due first: due-1, due-2, due-3. Not due: later. Dispatched: done.
	for id, r := range map[string]struct {
		received time.Time
		grace    time.Duration
	}{
		"due-1": {now.Add(-3 * time.Minute), 0},
		"due-2": {now.Add(-2 * time.Minute), 0},
		"due-3": {now.Add(-time.Minute), 0},
		"later": {now, time.Hour},
		"done":  {now.Add(-time.Hour), 0},
	} {
		if _, _, err := s.AcceptInbox(ctx, inboxRow(id, r.received), r.grace); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.InboxDispatched(ctx, "done"); err != nil {
		t.Fatal(err)
	}
	ids, err := s.ClaimInbox(ctx, 2, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(ids)
	if !slices.Equal(ids, []string{"due-1", "due-2"}) {
		t.Fatalf("claimed %v, want the two oldest due rows", ids)
	}
	r, err := s.InboxEntry(ctx, "due-1")
	if err != nil {
		t.Fatal(err)
	}
	if lease := time.Until(r.NextAttempt); lease < 20*time.Second || lease > 31*time.Second {
		t.Fatalf("claimed row leased for %s, want about 30 s", lease)
	}
	// Leased rows are not claimed again; the one left is.
	ids, err = s.ClaimInbox(ctx, 10, 30*time.Second)
	if err != nil || !slices.Equal(ids, []string{"due-3"}) {
		t.Fatalf("second claim %v (%v), want [due-3]", ids, err)
	}
	ids, err = s.ClaimInbox(ctx, 10, 30*time.Second)
	if err != nil || len(ids) != 0 {
		t.Fatalf("third claim %v (%v), want none", ids, err)
	}
}

// TestClaimInboxRace: re-drivers in several processes claiming at once never claim the same row twice.
func TestClaimInboxRace(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	const rows, claimers = 40, 4
	for i := range rows {
		id := "due-" + string(rune('A'+i/26)) + string(rune('a'+i%26))
		if _, _, err := s.AcceptInbox(ctx, inboxRow(id, time.Now().Add(-time.Minute)), 0); err != nil {
			t.Fatal(err)
		}
	}
	var mu sync.Mutex
	claimed := map[string]int{}
	var wg sync.WaitGroup
	for range claimers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				ids, err := s.ClaimInbox(ctx, 3, time.Minute)
				if err != nil {
					t.Error(err)
					return
				}
				if len(ids) == 0 {
					return
				}
				mu.Lock()
				for _, id := range ids {
					claimed[id]++
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(claimed) != rows {
		t.Fatalf("%d distinct rows claimed, want %d", len(claimed), rows)
	}
	for id, n := range claimed {
		if n != 1 {
			t.Errorf("row %s claimed %d times", id, n)
		}
	}
}

func TestListInbox(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	t0 := time.Date(2026, 11, 29, 8, 0, 0, 0, time.UTC)
	for i, id := range []string{"a", "b", "c", "d"} {
		if _, _, err := s.AcceptInbox(ctx, inboxRow(id, t0.Add(time.Duration(i)*time.Minute)), time.Second); err != nil {
			t.Fatal(err)
		}
	}
	for _, id := range []string{"b", "d"} {
		if err := s.InboxDispatched(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	list := func(pendingOnly bool, limit int) []string {
		t.Helper()
		rows, err := s.ListInbox(ctx, pendingOnly, limit)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, r := range rows {
			ids = append(ids, r.InstanceID)
		}
		return ids
	}
	// Pending first, newest first.
	if got := list(false, 10); !slices.Equal(got, []string{"c", "a", "d", "b"}) {
		t.Fatalf("all: %v", got)
	}
	if got := list(true, 10); !slices.Equal(got, []string{"c", "a"}) {
		t.Fatalf("pending: %v", got)
	}
	if got := list(false, 3); !slices.Equal(got, []string{"c", "a", "d"}) {
		t.Fatalf("limit 3: %v", got)
	}
	rows, err := s.ListInbox(ctx, false, 1)
	if err != nil {
		t.Fatal(err)
	}
	if r := rows[0]; r.OrderID != "CS-c" || r.BusinessID != "b-c" || !r.ReceivedAt.Equal(t0.Add(2*time.Minute)) ||
		!r.NextAttempt.Equal(t0.Add(2*time.Minute+time.Second)) || r.DispatchedAt != nil {
		t.Fatalf("row %+v", r)
	}
}
