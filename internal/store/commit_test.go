package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/kooflow/kooflow/internal/store"
)

// TestRelaxedCommitStaysInItsTransaction: the writes a call makes before its message log entry commit without
// waiting for the disk, and the setting that does it ends with their transaction, so the next user of the pooled
// connection (a worker's read-model write, the message log) commits synchronously as before.
func TestRelaxedCommitStaysInItsTransaction(t *testing.T) {
	// The test servers run with synchronous_commit off for speed; this store's connections turn it on, as in
	// production, so that both checks below could fail.
	ctx := context.Background()
	base := newStore(t)
	cfg := base.Pool.Config()
	cfg.ConnConfig.RuntimeParams["synchronous_commit"] = "on"
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	s := &store.Store{Pool: pool, Keys: base.Keys}

	tx, err := s.Pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var inside string
	if err := tx.QueryRow(ctx, `SELECT current_setting('synchronous_commit') FROM `+store.RelaxedCommit).Scan(&inside); err != nil {
		t.Fatal(err)
	}
	if inside != "off" {
		t.Fatalf("inside the statement's transaction synchronous_commit = %q, want off", inside)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}

	// Every relaxed write, then every connection of the pool: none keeps the setting.
	for i := range 20 {
		if _, err := s.ClaimNonce(ctx, "relaxed-"+string(rune('a'+i))); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := s.AcceptInbox(ctx, store.InboxRow{InstanceID: "relaxed-i", OrderID: "CS1", OrderLineID: "CS1-1",
		ReceivedAt: time.Now()}, time.Second); err != nil {
		t.Fatal(err)
	}
	if err := s.InboxDispatched(ctx, "relaxed-i"); err != nil {
		t.Fatal(err)
	}
	conns := s.Pool.AcquireAllIdle(ctx)
	if len(conns) == 0 {
		t.Fatal("the pool has no idle connection to inspect")
	}
	for _, c := range conns {
		var after string
		err := c.QueryRow(ctx, `SHOW synchronous_commit`).Scan(&after)
		c.Release()
		if err != nil {
			t.Fatal(err)
		}
		if after != "on" {
			t.Fatalf("a pooled connection kept synchronous_commit = %q after a relaxed write, want on", after)
		}
	}
}
