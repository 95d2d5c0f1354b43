package store

import "testing"

func TestPoolConfigSizesThePoolForCommits(t *testing.T) {
	cfg, err := poolConfig("postgres://u:p@127.0.0.1:5432/db?sslmode=disable")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.MaxConns != DefaultMaxConns {
		t.Fatalf("pool size %d, want %d", cfg.MaxConns, DefaultMaxConns)
	}
	if cfg.ConnConfig.RuntimeParams["timezone"] != "UTC" || cfg.ConnConfig.RuntimeParams["application_name"] != "kooflow" {
		t.Fatalf("session settings %v", cfg.ConnConfig.RuntimeParams)
	}
	cfg, err = poolConfig("postgres://u:p@127.0.0.1:5432/db?sslmode=disable&pool_max_conns=7")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.MaxConns != 7 {
		t.Fatalf("pool_max_conns in DATABASE_URL gave %d connections, want 7", cfg.MaxConns)
	}
	if _, err := poolConfig("postgres://u:p@127.0.0.1:5432/db?pool_max_conns=x"); err == nil {
		t.Fatal("a malformed pool_max_conns must be refused")
	}
}
