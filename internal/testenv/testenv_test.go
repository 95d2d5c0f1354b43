package testenv

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// private is a 0700 directory that $TMPDIR points into for this package's tests, as on a machine where root's
// temporary directory is under /root: the shared cluster must still start, and t.TempDir lands in there too.
var private string

func TestMain(m *testing.M) {
	var err error
	if private, err = os.MkdirTemp("", "kooflow-testenv-private-"); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	tmp := filepath.Join(private, "tmp")
	if err := os.Mkdir(tmp, 0o700); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Setenv("TMPDIR", tmp)
	code := m.Run()
	var clusterDir string
	if shared.pg != nil {
		clusterDir = shared.pg.Dir
	}
	shared.stop()
	if clusterDir != "" {
		if _, err := os.Stat(clusterDir); !os.IsNotExist(err) {
			fmt.Fprintf(os.Stderr, "the shared cluster's directory %s outlived the tests (%v)\n", clusterDir, err)
			code = 1
		}
	}
	_ = os.RemoveAll(private)
	os.Exit(code)
}

// TestPoolUnderPrivateTempDir gets a migrated database while every temporary directory is under a 0700
// directory. As root, PostgreSQL runs as another account, which cannot enter it, so the cluster must have been
// placed elsewhere, and the private directory left as it was.
func TestPoolUnderPrivateTempDir(t *testing.T) {
	if os.Getenv("DATABASE_URL") != "" {
		t.Skip("DATABASE_URL is set: the tests use that server, not a private cluster")
	}
	if d := t.TempDir(); !strings.HasPrefix(d, private+"/") {
		t.Fatalf("t.TempDir %s is not under the private %s", d, private)
	}
	pool := Pool(t)
	var n int
	if err := pool.QueryRow(context.Background(), "SELECT count(*) FROM settlement_bills").Scan(&n); err != nil {
		t.Fatalf("migrated database: %v", err)
	}
	if !strings.HasPrefix(shared.tmp, private+"/") {
		t.Fatalf("the shared state directory %s is not under the private %s", shared.tmp, private)
	}
	fi, err := os.Stat(private)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o700 {
		t.Errorf("%s is now mode %04o; the tests must not open it up", private, fi.Mode().Perm())
	}
	if os.Geteuid() == 0 {
		if shared.pg.Relocation == "" || strings.HasPrefix(shared.pg.Dir, private+"/") {
			t.Errorf("as root the cluster must live outside %s, found %s (%q)", private, shared.pg.Dir, shared.pg.Relocation)
		}
	}
}
