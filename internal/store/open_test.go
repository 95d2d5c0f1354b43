package store_test

import (
	"context"
	"strings"
	"testing"

	"github.com/kooflow/kooflow/internal/store"
	"github.com/kooflow/kooflow/internal/testenv"
)

// TestOpenTakesPoolAndSessionSettingsFromTheURL: each process sets its pool size and its sessions' timeouts in
// DATABASE_URL (pool_max_conns, statement_timeout, idle_in_transaction_session_timeout), as docs/security.md
// tells an operator to.
func TestOpenTakesPoolAndSessionSettingsFromTheURL(t *testing.T) {
	url := testenv.DatabaseURL(t)
	sep := "?"
	if strings.Contains(url, "?") {
		sep = "&"
	}
	pool, err := store.Open(context.Background(), url+sep+"pool_max_conns=3&statement_timeout=5000&idle_in_transaction_session_timeout=10000")
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	if n := pool.Config().MaxConns; n != 3 {
		t.Errorf("pool_max_conns: %d", n)
	}
	for setting, want := range map[string]string{"statement_timeout": "5s", "idle_in_transaction_session_timeout": "10s", "TimeZone": "UTC"} {
		var got string
		if err := pool.QueryRow(context.Background(), "SHOW "+setting).Scan(&got); err != nil || got != want {
			t.Errorf("%s = %q (%v), want %q", setting, got, err, want)
		}
	}
}
