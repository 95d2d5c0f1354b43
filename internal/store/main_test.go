package store_test

import (
	"testing"

	"github.com/kooflow/kooflow/internal/secrets"
	"github.com/kooflow/kooflow/internal/store"
	"github.com/kooflow/kooflow/internal/testenv"
)

// The store's SQL is tested against a real PostgreSQL: each test gets a fresh, migrated database.
func TestMain(m *testing.M) { testenv.Main(m) }

func newStore(t *testing.T) *store.Store {
	t.Helper()
	keys, err := secrets.Generate("test")
	if err != nil {
		t.Fatal(err)
	}
	return &store.Store{Pool: testenv.Pool(t), Keys: keys}
}
