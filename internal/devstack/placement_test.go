package devstack

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/jackc/pgx/v5"
)

// TestReachableDecision checks the permission rule on a synthetic tree: the first directory that denies search
// is named, owner bits win over group and other bits, and the target's own permissions are checked only when
// asked for.
func TestReachableDecision(t *testing.T) {
	const pg, pgGroup = 101, 104
	tree := map[string]dirStat{
		"/":                        {0, 0, fs.ModeDir | 0o755},
		"/root":                    {0, 0, fs.ModeDir | 0o700},
		"/root/kooflow":            {0, 0, fs.ModeDir | 0o755},
		"/home":                    {0, 0, fs.ModeDir | 0o755},
		"/home/ann":                {1000, 1000, fs.ModeDir | 0o750},
		"/home/ann/kooflow":        {1000, 1000, fs.ModeDir | 0o755},
		"/srv":                     {0, pgGroup, fs.ModeDir | 0o710},
		"/srv/kooflow":             {0, 0, fs.ModeDir | 0o755},
		"/opt":                     {pg, 0, fs.ModeDir | 0o077}, // owner bits deny although others allow
		"/opt/kooflow":             {0, 0, fs.ModeDir | 0o755},
		"/tmp":                     {0, 0, fs.ModeDir | fs.ModeSticky | 0o777},
		"/tmp/kooflow":             {0, 0, fs.ModeDir | 0o711},
		"/var":                     {0, 0, fs.ModeDir | 0o755},
		"/var/lib":                 {0, 0, fs.ModeDir | 0o755},
		"/var/lib/kooflow":         {0, 0, fs.ModeDir | 0o755},
		"/var/lib/kooflow/abc":     {pg, pgGroup, fs.ModeDir | 0o700},
		"/var/lib/kooflow/rootown": {0, 0, fs.ModeDir | 0o700},
	}
	stat := func(p string) (dirStat, error) {
		if st, ok := tree[p]; ok {
			return st, nil
		}
		return dirStat{}, fs.ErrNotExist
	}
	for _, c := range []struct {
		dir     string
		uid     uint32
		want    uint32
		blocked string // "" when reachable
	}{
		{"/root/kooflow", pg, 0, "/root"},
		{"/root/kooflow", 0, 7, ""}, // root itself
		{"/home/ann/kooflow", pg, 0, "/home/ann"},
		{"/home/ann/kooflow", 1000, 7, ""},
		{"/srv/kooflow", pg, 0, ""}, // through the group bits
		{"/srv/kooflow", 1000, 0, "/srv"},
		{"/opt/kooflow", pg, 0, "/opt"},
		{"/opt/kooflow", 1000, 0, ""},
		{"/tmp/kooflow", pg, 1, ""},
		{"/tmp/kooflow", pg, 7, "/tmp/kooflow"}, // searchable, not writable
		{"/var/lib/kooflow/abc", pg, 7, ""},
		{"/var/lib/kooflow/rootown", pg, 0, ""},
		{"/var/lib/kooflow/rootown", pg, 1, "/var/lib/kooflow/rootown"},
	} {
		gid := c.uid // each account's own group
		if c.uid == pg {
			gid = pgGroup
		}
		err := reachable(c.dir, c.uid, gid, c.want, stat)
		var ue *UnreachableError
		switch {
		case c.blocked == "" && err != nil:
			t.Errorf("%s for uid %d want %o: unexpected %v", c.dir, c.uid, c.want, err)
		case c.blocked != "" && !errors.As(err, &ue):
			t.Errorf("%s for uid %d want %o: got %v, want blocked at %s", c.dir, c.uid, c.want, err, c.blocked)
		case c.blocked != "" && ue.Dir != c.blocked:
			t.Errorf("%s for uid %d want %o: blocked at %s, want %s", c.dir, c.uid, c.want, ue.Dir, c.blocked)
		}
	}
	if err := reachable("/nowhere/kooflow", pg, pgGroup, 0, stat); err == nil || errors.As(err, new(*UnreachableError)) {
		t.Errorf("a missing directory is an error of its own, got %v", err)
	}
	if err := reachable("relative", pg, pgGroup, 0, stat); err == nil {
		t.Error("a relative path must be refused")
	}
}

// TestReachableOnDisk applies the rule to real directories, for an account that owns none of them.
func TestReachableOnDisk(t *testing.T) {
	const nobody = 65534
	// Not t.TempDir: its parent is private. This directory is the test's own, opened up so that only the
	// directory made private below is in the way.
	top, err := os.MkdirTemp("", "kooflow-reach-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(top) })
	if err := os.Chmod(top, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := Reachable(top, nobody, nobody, 1); err != nil {
		t.Skipf("the temporary directory is private here: %v", err)
	}
	private := filepath.Join(top, "private")
	inner := filepath.Join(private, "checkout", ".kooflow")
	if err := os.MkdirAll(inner, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(private, 0o700); err != nil {
		t.Fatal(err)
	}
	err = Reachable(inner, nobody, nobody, 0)
	var ue *UnreachableError
	if !errors.As(err, &ue) || ue.Dir != private {
		t.Fatalf("%s must be unreachable for uid %d because of the 0700 %s; got %v", inner, nobody, private, err)
	}
	if !strings.Contains(err.Error(), "mode 0700") || !strings.Contains(err.Error(), "cannot search "+private) {
		t.Errorf("the error must say what is in the way and why: %v", err)
	}
	if err := os.Chmod(private, 0o711); err != nil {
		t.Fatal(err)
	}
	if err := Reachable(inner, nobody, nobody, 0); err != nil {
		t.Fatalf("search permission on %s is enough: %v", private, err)
	}
	if err := Reachable(inner, nobody, nobody, 7); err == nil {
		t.Fatal("a 0755 directory owned by someone else must not count as writable")
	}
	link := filepath.Join(top, "link")
	if err := os.Symlink(inner, link); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(private, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := Reachable(link, nobody, nobody, 0); !errors.As(err, &ue) || ue.Dir != private {
		t.Fatalf("a link is judged by the directories of its target: %v", err)
	}
}

// TestRemoveOrphans checks that only kooflow's relocated clusters whose requested directory is gone, and whose
// server is not running, are removed.
func TestRemoveOrphans(t *testing.T) {
	base := t.TempDir()
	existing := t.TempDir()
	gone := filepath.Join(t.TempDir(), "removed-checkout")
	running := filepath.Join(t.TempDir(), "removed-while-running")
	mk := func(origin string, name string) string {
		if name == "" {
			name = clusterKey(origin)
		}
		d := filepath.Join(base, name)
		if err := os.MkdirAll(filepath.Join(d, "data"), 0o700); err != nil {
			t.Fatal(err)
		}
		if origin != "" {
			if err := os.WriteFile(filepath.Join(d, originFile), []byte(origin+"\n"), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		return d
	}
	orphan := mk(gone, "")
	kept := mk(existing, "")
	foreign := mk("", "not-kooflows")
	mismatched := mk(gone, "0123456789ab")
	live := mk(running, "")
	if err := os.WriteFile(filepath.Join(live, "data", "postmaster.pid"), []byte(strconv.Itoa(os.Getpid())+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	self := mk(filepath.Join(t.TempDir(), "gone-but-current"), "")

	removeOrphans(base, self)
	for d, want := range map[string]bool{orphan: false, kept: true, foreign: true, mismatched: true, live: true, self: true} {
		if got := fileExists(d); got != want {
			t.Errorf("%s: exists=%v, want %v", d, got, want)
		}
	}
}

// TestPostgresRelocatesOutOfPrivateDir is `./scripts/dev` from a clone under /root: the requested directory is
// behind a 0700 directory, so the cluster must live elsewhere, be the postgres account's alone, keep its data
// across restarts, start afresh when the requested directory is reset, and leave the user's directories as they
// were.
func TestPostgresRelocatesOutOfPrivateDir(t *testing.T) {
	skipShort(t)
	if os.Geteuid() != 0 {
		t.Skip("relocation happens only when running as root, where PostgreSQL runs as another account")
	}
	ctx := context.Background()
	// A directory of the test's own, open like /, holding one like /root.
	top, err := os.MkdirTemp("", "kooflow-relocate-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(top) })
	if err := os.Chmod(top, 0o755); err != nil {
		t.Fatal(err)
	}
	private := filepath.Join(top, "private")
	if err := os.Mkdir(private, 0o700); err != nil {
		t.Fatal(err)
	}
	blocker := private
	if cred, _, err := runAs(); err != nil {
		t.Fatal(err)
	} else if err := Reachable(top, cred.Uid, cred.Gid, 1); err != nil {
		blocker = err.(*UnreachableError).Dir // $TMPDIR is private itself
	}
	requested := filepath.Join(private, "checkout", ".kooflow", "postgres")
	modes := func() map[string]fs.FileMode {
		m := map[string]fs.FileMode{}
		for p := private; p != "/"; p = filepath.Dir(p) {
			fi, err := os.Stat(p)
			if err != nil {
				t.Fatal(err)
			}
			m[p] = fi.Mode()
		}
		return m
	}
	before := modes()
	port, _ := FreePort()
	var out bytes.Buffer
	start := func() *Postgres {
		t.Helper()
		pg, err := StartPostgres(ctx, PostgresOptions{Dir: requested, Port: port, Database: "kooflow", Output: &out})
		if err != nil {
			t.Fatalf("%v\n%s", err, out.String())
		}
		t.Cleanup(func() { _ = pg.Discard() })
		return pg
	}
	pg := start()
	if pg.Relocation == "" || strings.HasPrefix(pg.Dir, private+"/") {
		t.Fatalf("cluster at %s (relocation %q): must be outside %s", pg.Dir, pg.Relocation, private)
	}
	if !strings.Contains(pg.Relocation, "cannot search "+blocker+" ") || !strings.Contains(out.String(), pg.Dir) {
		t.Errorf("the reason must name the directory in the way, and the output the new place: %q\n%s", pg.Relocation, out.String())
	}
	owner, err := user.Lookup(pg.Owner)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(pg.Dir)
	if err != nil {
		t.Fatal(err)
	}
	if st := fi.Sys().(*syscall.Stat_t); strconv.Itoa(int(st.Uid)) != owner.Uid || fi.Mode().Perm() != 0o700 {
		t.Errorf("%s: uid %d mode %04o, want %s's and 0700", pg.Dir, st.Uid, fi.Mode().Perm(), pg.Owner)
	}
	if fileExists(filepath.Join(pg.Dir, "initdb-password")) {
		t.Error("initdb's copy of the password must be removed after initdb")
	}
	if fi, err := os.Stat(filepath.Join(requested, "password")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("password kept in the requested directory, mode 0600: %v %v", fi, err)
	}
	if l, err := os.Readlink(filepath.Join(requested, "cluster")); err != nil || l != pg.Dir {
		t.Errorf("cluster link: %q %v, want %s", l, err, pg.Dir)
	}
	if after := modes(); !equalModes(before, after) {
		t.Errorf("permissions of the user's directories changed: %v -> %v", before, after)
	}

	exec := func(pg *Postgres, sql string) error {
		conn, err := pgx.Connect(ctx, pg.URL(""))
		if err != nil {
			return err
		}
		defer conn.Close(ctx)
		_, err = conn.Exec(ctx, sql)
		return err
	}
	if err := exec(pg, "CREATE TABLE kept (v text)"); err != nil {
		t.Fatal(err)
	}
	if err := pg.Stop(); err != nil {
		t.Fatal(err)
	}
	again := start()
	if again.Dir != pg.Dir {
		t.Fatalf("second run placed the cluster at %s, first at %s", again.Dir, pg.Dir)
	}
	if err := exec(again, "SELECT * FROM kept"); err != nil {
		t.Fatalf("second run lost the first run's data: %v", err)
	}
	if err := again.Stop(); err != nil {
		t.Fatal(err)
	}

	// rm -rf .kooflow: the next run starts a new cluster in the same place rather than failing on a lost password.
	if err := os.RemoveAll(filepath.Dir(requested)); err != nil {
		t.Fatal(err)
	}
	fresh := start()
	if fresh.Dir != pg.Dir {
		t.Fatalf("after a reset the cluster moved from %s to %s", pg.Dir, fresh.Dir)
	}
	if err := exec(fresh, "SELECT * FROM kept"); err == nil {
		t.Fatal("a reset state directory must get a fresh cluster")
	}
	if err := fresh.Discard(); err != nil {
		t.Fatal(err)
	}
	if fileExists(pg.Dir) {
		t.Fatalf("Discard left %s", pg.Dir)
	}
}

// TestPostgresStaysInPlaceWhenReachable: with every directory above it searchable, the cluster stays where it
// was asked to be, as it always has.
func TestPostgresStaysInPlaceWhenReachable(t *testing.T) {
	skipShort(t)
	if os.Geteuid() != 0 {
		t.Skip("as a regular user the cluster always stays in place; this checks the root case")
	}
	top, err := os.MkdirTemp("", "kooflow-reachable-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(top) })
	if err := os.Chmod(top, 0o755); err != nil { // the test's own directory
		t.Fatal(err)
	}
	cred, _, err := runAs()
	if err != nil {
		t.Fatal(err)
	}
	if err := Reachable(top, cred.Uid, cred.Gid, 1); err != nil {
		t.Skipf("the temporary directory itself is private here: %v", err)
	}
	port, _ := FreePort()
	dir := filepath.Join(top, "pg")
	pg, err := StartPostgres(context.Background(), PostgresOptions{Dir: dir, Port: port, Output: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	defer pg.Discard() //nolint:errcheck // best effort
	if pg.Dir != dir || pg.Relocation != "" {
		t.Fatalf("cluster at %s (%q), want in place at %s", pg.Dir, pg.Relocation, dir)
	}
	if fileExists(filepath.Join(dir, "cluster")) {
		t.Error("no cluster link when the cluster is in place")
	}
}

func equalModes(a, b map[string]fs.FileMode) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}
