package retention_test

import (
	"context"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/kooflow/kooflow/internal/koogallery"
	"github.com/kooflow/kooflow/internal/retention"
	"github.com/kooflow/kooflow/internal/store"
	"github.com/kooflow/kooflow/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// TestJobOnRealPostgreSQL: with a 13-month retention, the job keeps partitions ahead and drops a month once it
// is 13 months past, on a real database.
func TestJobOnRealPostgreSQL(t *testing.T) {
	st := &store.Store{Pool: testenv.Pool(t)}
	ctx := context.Background()
	now := time.Date(2027, 3, 10, 0, 0, 0, 0, time.UTC)
	for _, at := range []time.Time{time.Date(2026, 1, 15, 0, 0, 0, 0, time.UTC), time.Date(2026, 2, 15, 0, 0, 0, 0, time.UTC)} {
		if err := st.AppendMessage(ctx, &store.Message{ReceivedAt: at, Method: "POST", Path: "/p", Verification: koogallery.VerdictOK,
			ResultCode: "000000", HTTPStatus: 200}); err != nil {
			t.Fatal(err)
		}
	}
	j := &retention.Job{Store: st, KeepMonths: 13, Log: slog.New(slog.DiscardHandler), Now: func() time.Time { return now }}
	dropped, err := j.Round(ctx)
	if err != nil || !slices.Equal(dropped, []string{"koogallery_messages_2026_01"}) {
		t.Fatalf("dropped %v %v", dropped, err)
	}
	parts, err := st.MessagePartitions(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"koogallery_messages_2026_02", "koogallery_messages_2027_03", "koogallery_messages_2027_04", "koogallery_messages_2027_05"} {
		if !slices.Contains(parts, want) {
			t.Errorf("partitions %v lack %s", parts, want)
		}
	}
	var n int
	if err := st.Pool.QueryRow(ctx, `SELECT count(*) FROM koogallery_messages`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("rows left %d %v", n, err)
	}
	j.KeepMonths = 0
	if dropped, err := j.Round(ctx); err != nil || len(dropped) != 0 {
		t.Fatalf("retention off dropped %v %v", dropped, err)
	}
}
