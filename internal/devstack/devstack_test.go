package devstack

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/sdk/client"
)

func repoBin() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(filepath.Dir(file)), "bin")
}

// TestPostgresKeepsDataAcrossRestarts is what `kooflow dev` promises: the second run finds the first run's data.
func TestPostgresKeepsDataAcrossRestarts(t *testing.T) {
	skipShort(t)
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "pg")
	port, _ := FreePort()
	pg, err := StartPostgres(ctx, PostgresOptions{Dir: dir, Port: port, Database: "kooflow", Output: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(pg.Dir) }) // relocated when root: t.TempDir is private
	conn, err := pgx.Connect(ctx, pg.URL(""))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "CREATE TABLE kept (v text); INSERT INTO kept VALUES ('first run')"); err != nil {
		t.Fatal(err)
	}
	conn.Close(ctx)
	if err := pg.Stop(); err != nil {
		t.Fatal(err)
	}

	pg, err = StartPostgres(ctx, PostgresOptions{Dir: dir, Port: port, Database: "kooflow", Output: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	defer pg.Stop()
	conn, err = pgx.Connect(ctx, pg.URL(""))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var v string
	if err := conn.QueryRow(ctx, "SELECT v FROM kept").Scan(&v); err != nil || v != "first run" {
		t.Fatalf("after restart: %q %v", v, err)
	}
	// Password authentication is on: a wrong password is refused.
	bad := strings.Replace(pg.URL(""), pg.password, "wrong", 1)
	if c, err := pgx.Connect(ctx, bad); err == nil {
		c.Close(ctx)
		t.Fatal("wrong password accepted")
	}
}

// TestTemporalDevServerWithUI starts the real CLI dev server the way `kooflow dev` does and checks the frontend,
// the registered search attributes and the web UI, then that stopping it leaves no process.
func TestTemporalDevServerWithUI(t *testing.T) {
	skipShort(t)
	ctx := context.Background()
	cli, err := EnsureTemporalCLI(ctx, repoBin(), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	port, _ := FreePort()
	uiPort, _ := FreePort()
	tmp, err := StartTemporal(ctx, TemporalOptions{CLIPath: cli, Port: port, UIPort: uiPort,
		DBFile: filepath.Join(t.TempDir(), "temporal.db"), Output: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.Dial(client.Options{HostPort: tmp.Address, Logger: discardLogger{}})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.OperatorService().ListSearchAttributes(ctx, &operatorListSA)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"OrderId", "LifecycleState", "Parked", "ExpireTime"} {
		if _, ok := resp.CustomAttributes[name]; !ok {
			t.Errorf("search attribute %s not registered", name)
		}
	}
	c.Close()
	var uiErr error
	for i := 0; i < 50; i++ {
		var r *http.Response
		r, uiErr = http.Get(tmp.UIURL + "/")
		if uiErr == nil {
			b, _ := io.ReadAll(r.Body)
			r.Body.Close()
			if r.StatusCode == 200 && strings.Contains(strings.ToLower(string(b)), "<!doctype html>") {
				break
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	if uiErr != nil {
		t.Fatalf("web UI: %v", uiErr)
	}
	pid := tmp.Proc.PID()
	if err := tmp.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(pid, 0); err == nil {
		t.Fatalf("temporal process %d still alive after Stop", pid)
	}
}

func TestPrefixWriterKeepsLinesWhole(t *testing.T) {
	var sb strings.Builder
	var mu sync.Mutex
	w := NewPrefixWriter(&sb, "api", &mu)
	_, _ = w.Write([]byte("one\ntw"))
	_, _ = w.Write([]byte("o\n"))
	if got := sb.String(); got != "[api] one\n[api] two\n" {
		t.Fatalf("got %q", got)
	}
}

func TestFindPostgresBin(t *testing.T) {
	dir, err := FindPostgresBin()
	if err != nil {
		if !strings.Contains(err.Error(), "apt-get install") {
			t.Fatalf("the error must say what to install: %v", err)
		}
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "initdb")); err != nil {
		t.Fatal(err)
	}
}

var operatorListSA = operatorservice.ListSearchAttributesRequest{Namespace: "default"}

func TestNicedChildRunsAtLowerPriority(t *testing.T) {
	out, err := Niced(exec.Command("sh", "-c", "cat /proc/self/stat"), 7).Output()
	if err != nil {
		t.Fatal(err)
	}
	s := string(out)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	// After the command name: state is field 3, nice is field 19 (1-based in proc(5)).
	if fields[16] != "7" {
		t.Fatalf("child nice = %s, want 7 (stat %q)", fields[16], s)
	}
	if c := Niced(exec.Command("true"), 0); filepath.Base(c.Path) != "true" {
		t.Fatalf("nice 0 must leave the command alone, got %s", c.Path)
	}
}

// skipShort skips a test that starts a real PostgreSQL cluster or Temporal dev server when the tests run with
// -short, the fast loop of tests that need neither.
func skipShort(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("starts a real server; skipped with -short")
	}
}
