package store_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/kooflow/kooflow/internal/store"
)

func TestRecordSelfCheckOnce(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	requested := time.Date(2026, 11, 29, 8, 0, 0, 123000, time.UTC)
	run := store.SelfCheckRun{RunID: "0b6c2f52-6f4f-4a53-8f7e-0d0a0a0a0a01", RequestedBy: "tester", RequestedAt: requested,
		Worker: "worker-a"}
	first, err := s.RecordSelfCheck(ctx, run)
	if err != nil {
		t.Fatal(err)
	}
	if first.RunID != run.RunID || first.RequestedBy != "tester" || !first.RequestedAt.Equal(requested) ||
		first.Worker != "worker-a" || time.Since(first.WrittenAt) > time.Minute {
		t.Fatalf("first write returned %+v", first)
	}
	// A retry, even from another worker, finds the row the first attempt wrote.
	run.Worker = "worker-b"
	again, err := s.RecordSelfCheck(ctx, run)
	if err != nil {
		t.Fatal(err)
	}
	if again.Worker != "worker-a" || !again.WrittenAt.Equal(first.WrittenAt) {
		t.Fatalf("retry returned %+v, want the first row %+v", again, first)
	}
	read, err := s.SelfCheck(ctx, run.RunID)
	if err != nil {
		t.Fatal(err)
	}
	if read.RunID != first.RunID || read.RequestedBy != first.RequestedBy || !read.RequestedAt.Equal(first.RequestedAt) ||
		!read.WrittenAt.Equal(first.WrittenAt) || read.Worker != first.Worker {
		t.Fatalf("read back %+v, want %+v", read, first)
	}
	if _, err := s.SelfCheck(ctx, "0b6c2f52-6f4f-4a53-8f7e-0d0a0a0a0a02"); !errors.Is(err, store.ErrNoSelfCheckRun) {
		t.Fatalf("unknown run: %v, want ErrNoSelfCheckRun", err)
	}
}
