package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/kooflow/kooflow/internal/store"
	"github.com/kooflow/kooflow/internal/testenv"
)

// TestOpenWithBoundsThePool: KOOFLOW_DB_* settings (store.PoolOptions) set the pool size and the sessions'
// timeouts over DATABASE_URL, and a query waiting for a connection of an exhausted pool fails after the acquire
// timeout instead of waiting for its caller's deadline.
func TestOpenWithBoundsThePool(t *testing.T) {
	ctx := context.Background()
	pool, err := store.OpenWith(ctx, testenv.DatabaseURL(t), store.PoolOptions{MaxConns: 1, AcquireTimeout: time.Second,
		StatementTimeout: 4 * time.Second, IdleInTransactionTimeout: 9 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	for setting, want := range map[string]string{"statement_timeout": "4s", "idle_in_transaction_session_timeout": "9s"} {
		var got string
		if err := pool.QueryRow(ctx, "SHOW "+setting).Scan(&got); err != nil || got != want {
			t.Errorf("%s = %q (%v), want %q", setting, got, err, want)
		}
	}
	held, err := pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = pool.Exec(ctx, "SELECT 1")
	took := time.Since(start)
	held.Release()
	if err == nil || took < 900*time.Millisecond || took > 5*time.Second {
		t.Fatalf("query on an exhausted pool: %v after %s", err, took)
	}
	// Once the connection is back, queries run again: the timeout bounded one acquire, not the pool.
	if _, err := pool.Exec(ctx, "SELECT 1"); err != nil {
		t.Fatalf("after release: %v", err)
	}
}
