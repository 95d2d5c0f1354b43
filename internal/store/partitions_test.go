package store_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kooflow/kooflow/internal/koogallery"
	"github.com/kooflow/kooflow/internal/store"
)

func logged(t *testing.T, s *store.Store, at time.Time) int64 {
	t.Helper()
	m := &store.Message{ReceivedAt: at, Method: "POST", Path: "/koogallery/v2", RawBody: []byte(`{}`),
		Verification: koogallery.VerdictOK, ResultCode: "000000", HTTPStatus: 200, ResponseBody: []byte(`{}`)}
	if err := s.AppendMessage(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	return m.ID
}

// TestMessageLogRetentionByPartitions: a message for a month without a partition is still written (its
// partition is created on demand); partitions are created ahead; dropping expired months removes exactly the
// months older than the retention; rows stay append-only (UPDATE and DELETE refused).
func TestMessageLogRetentionByPartitions(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	now := time.Date(2026, 11, 29, 23, 0, 0, 0, time.UTC)
	old := logged(t, s, time.Date(2025, 9, 30, 23, 59, 59, 0, time.UTC))   // 14 months before: dropped
	edge := logged(t, s, time.Date(2025, 10, 31, 23, 59, 59, 0, time.UTC)) // kept until its month is 13 months past
	kept := logged(t, s, time.Date(2025, 11, 1, 0, 0, 0, 0, time.UTC))
	recent := logged(t, s, now)
	parts, err := s.MessagePartitions(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"koogallery_messages_2025_09", "koogallery_messages_2025_10", "koogallery_messages_2025_11", "koogallery_messages_2026_11"} {
		if !slices.Contains(parts, want) {
			t.Fatalf("partitions %v lack %s", parts, want)
		}
	}
	ahead, err := s.EnsureMessagePartitions(ctx, now, 2)
	if err != nil || !slices.Equal(ahead, []string{"koogallery_messages_2026_11", "koogallery_messages_2026_12", "koogallery_messages_2027_01"}) {
		t.Fatalf("ahead: %v %v", ahead, err)
	}
	if _, err := s.Pool.Exec(ctx, `DELETE FROM koogallery_messages WHERE id = $1`, old); err == nil || !strings.Contains(err.Error(), "append-only") {
		t.Fatalf("DELETE: %v", err)
	}
	if _, err := s.Pool.Exec(ctx, `UPDATE koogallery_messages SET result_code = 'x' WHERE id = $1`, recent); err == nil || !strings.Contains(err.Error(), "append-only") {
		t.Fatalf("UPDATE: %v", err)
	}

	dropped, err := s.DropExpiredMessagePartitions(ctx, 13, now)
	if err != nil {
		t.Fatal(err)
	}
	// September 2025 ended before now − 13 months (2025-10-29 23:00); October 2025 did not: its newest rows may
	// be younger than 13 months, so it stays.
	if !slices.Equal(dropped, []string{"koogallery_messages_2025_09"}) {
		t.Fatalf("dropped %v", dropped)
	}
	var ids []int64
	rows, _ := s.Pool.Query(ctx, `SELECT id FROM koogallery_messages ORDER BY id`)
	for rows.Next() {
		var id int64
		_ = rows.Scan(&id)
		ids = append(ids, id)
	}
	if rows.Err() != nil || !slices.Equal(ids, []int64{edge, kept, recent}) {
		t.Fatalf("left %v (%v), want %v", ids, rows.Err(), []int64{edge, kept, recent})
	}
	// A month later, October 2025 goes too; running again drops nothing more.
	if dropped, err = s.DropExpiredMessagePartitions(ctx, 13, now.AddDate(0, 0, 3)); err != nil || !slices.Equal(dropped, []string{"koogallery_messages_2025_10"}) {
		t.Fatalf("dropped %v %v", dropped, err)
	}
	if dropped, err = s.DropExpiredMessagePartitions(ctx, 13, now.AddDate(0, 0, 3)); err != nil || len(dropped) != 0 {
		t.Fatalf("second run dropped %v %v", dropped, err)
	}
	if _, err := s.DropExpiredMessagePartitions(ctx, 0, now); err == nil {
		t.Fatal("a retention of 0 months dropped partitions")
	}
	// The console still finds a message by id.
	if _, err := s.GetMessage(ctx, recent); err != nil {
		t.Fatalf("read by id: %v", err)
	}
}
