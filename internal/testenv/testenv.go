// Package testenv gives integration tests real infrastructure: one Temporal dev server (the project's Temporal
// CLI, started with testsuite.StartDevServer) and one private PostgreSQL cluster per test binary, with a fresh,
// fully migrated database per test. Nothing is mocked and nothing is downloaded beyond the Go module proxy.
//
// A package that uses it declares
//
//	func TestMain(m *testing.M) { testenv.Main(m) }
//
// so the servers stop when its tests end. Set DATABASE_URL or TEMPORAL_ADDRESS to point tests at servers that
// already run instead (a database per test is still created on the PostgreSQL server).
package testenv

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/testsuite"

	"github.com/kooflow/kooflow/internal/devstack"
	"github.com/kooflow/kooflow/internal/instance"
	"github.com/kooflow/kooflow/internal/logging"
	"github.com/kooflow/kooflow/internal/store"
)

type env struct {
	pgOnce   sync.Once
	pg       *devstack.Postgres
	adminURL string // superuser connection to the "postgres" database
	template string
	pgErr    error

	tOnce   sync.Once
	dev     *testsuite.DevServer
	address string
	tErr    error

	tmp string
	seq atomic.Int64
}

var shared env

// Main runs the package's tests and stops the servers they started.
func Main(m *testing.M) {
	code := m.Run()
	shared.stop()
	os.Exit(code)
}

func (e *env) stop() {
	if e.dev != nil {
		_ = e.dev.Stop()
	}
	if e.pg != nil {
		_ = e.pg.Discard() // also its directory outside e.tmp, if it had to be placed there
	}
	if e.tmp != "" {
		_ = os.RemoveAll(e.tmp)
	}
}

// skipShort skips a test that needs real infrastructure when the tests run with -short, the fast loop that runs
// only the tests that need neither Temporal nor PostgreSQL.
func skipShort(t testing.TB, what string) {
	t.Helper()
	if testing.Short() {
		t.Skipf("needs %s; skipped with -short", what)
	}
}

// SkipShort skips a test that starts real infrastructure itself (a cluster, a dev server, the kooflow binary)
// when the tests run with -short.
func SkipShort(t testing.TB, what string) { skipShort(t, what) }

// RepoRoot is the directory holding go.mod, found from this source file.
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..") // internal/testenv/testenv.go
}

// Logger returns a logger that writes through t.Log, so output appears with the failing test.
func Logger(t testing.TB) *slog.Logger {
	l, _ := logging.New(tWriter{t}, "text", "warn")
	return l
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(b []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimRight(string(b), "\n"))
	return len(b), nil
}

func (e *env) tempDir() (string, error) {
	if e.tmp != "" {
		return e.tmp, nil
	}
	// Private (0700), like $TMPDIR may be: when the postgres account cannot reach it, StartPostgres places the
	// cluster where it can.
	d, err := os.MkdirTemp("", "kooflow-test-")
	if err != nil {
		return "", fmt.Errorf("create the test state directory: %w", err)
	}
	e.tmp = d
	return d, nil
}

func (e *env) startPostgres() {
	ctx := context.Background()
	if url := os.Getenv("DATABASE_URL"); url != "" {
		e.adminURL = url
	} else {
		dir, err := e.tempDir()
		if err != nil {
			e.pgErr = err
			return
		}
		port, err := devstack.FreePort()
		if err != nil {
			e.pgErr = err
			return
		}
		pg, err := devstack.StartPostgres(ctx, devstack.PostgresOptions{
			Dir: filepath.Join(dir, "pg"), Port: port, Output: io.Discard})
		if err != nil {
			e.pgErr = err
			return
		}
		e.pg = pg
		e.adminURL = pg.URL("postgres")
	}
	// Migrate a template once; each test clones it, which is much faster than migrating per test.
	e.template = fmt.Sprintf("kooflow_tpl_%d_%d", os.Getpid(), time.Now().UnixNano()%1e6)
	if err := e.exec(ctx, "CREATE DATABASE "+e.template); err != nil {
		e.pgErr = err
		return
	}
	if _, err := store.Migrate(ctx, withDatabase(e.adminURL, e.template), slog.New(slog.NewTextHandler(io.Discard, nil))); err != nil {
		e.pgErr = err
	}
}

func (e *env) exec(ctx context.Context, sql string) error {
	conn, err := pgx.Connect(ctx, e.adminURL)
	if err != nil {
		return fmt.Errorf("connect to test PostgreSQL: %w", err)
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, sql)
	return err
}

func withDatabase(url, db string) string {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return url
	}
	// Rebuild the URL with the new database; keep host, port, user and password.
	return fmt.Sprintf("postgres://%s:%s@%s:%d/%s?sslmode=disable", cfg.User, cfg.Password, cfg.Host, cfg.Port, db)
}

// DatabaseURL creates a fresh, migrated database for this test and returns its URL. The database is dropped
// when the test ends.
func DatabaseURL(t testing.TB) string {
	t.Helper()
	skipShort(t, "PostgreSQL")
	shared.pgOnce.Do(shared.startPostgres)
	if shared.pgErr != nil {
		t.Fatalf("test PostgreSQL: %v", shared.pgErr)
	}
	name := fmt.Sprintf("t_%d_%d", os.Getpid(), shared.seq.Add(1))
	ctx := context.Background()
	if err := shared.exec(ctx, fmt.Sprintf("CREATE DATABASE %s TEMPLATE %s", name, shared.template)); err != nil {
		t.Fatalf("create test database: %v", err)
	}
	t.Cleanup(func() {
		_ = shared.exec(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
	})
	return withDatabase(shared.adminURL, name)
}

// Pool returns a pgx pool on a fresh, migrated database, closed when the test ends.
func Pool(t testing.TB) *pgxpool.Pool {
	t.Helper()
	url := DatabaseURL(t)
	pool, err := store.Open(context.Background(), url)
	if err != nil {
		t.Fatalf("open test database: %v", err)
	}
	t.Cleanup(pool.Close)
	return pool
}

func (e *env) startTemporal() {
	if addr := os.Getenv("TEMPORAL_ADDRESS"); addr != "" {
		e.address = addr
		return
	}
	cli, err := devstack.EnsureTemporalCLI(context.Background(), filepath.Join(RepoRoot(), "bin"),
		slog.New(slog.NewTextHandler(os.Stderr, nil)))
	if err != nil {
		e.tErr = err
		return
	}
	port, err := devstack.FreePort()
	if err != nil {
		e.tErr = err
		return
	}
	args := []string{}
	for _, sa := range instance.SearchAttributes() {
		args = append(args, "--search-attribute", sa.Name+"="+sa.Type)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	dev, err := testsuite.StartDevServer(context.Background(), testsuite.DevServerOptions{
		ExistingPath:  cli,
		ClientOptions: &client.Options{HostPort: addr, Namespace: "default", Logger: quiet{}},
		LogLevel:      "error",
		ExtraArgs:     args,
		Stdout:        io.Discard,
		Stderr:        io.Discard,
	})
	if err != nil {
		e.tErr = fmt.Errorf("start Temporal dev server %s: %w", cli, err)
		return
	}
	e.dev = dev
	e.address = dev.FrontendHostPort()
}

// TemporalAddress returns the host:port of the shared Temporal dev server, starting it on first use.
func TemporalAddress(t testing.TB) string {
	t.Helper()
	skipShort(t, "a Temporal server")
	shared.tOnce.Do(shared.startTemporal)
	if shared.tErr != nil {
		t.Fatalf("test Temporal: %v", shared.tErr)
	}
	return shared.address
}

// TemporalClient dials the shared dev server; the client is closed when the test ends.
func TemporalClient(t testing.TB) client.Client {
	t.Helper()
	c, err := client.Dial(client.Options{HostPort: TemporalAddress(t), Namespace: "default",
		Logger: logging.Temporal(Logger(t))})
	if err != nil {
		t.Fatalf("dial Temporal: %v", err)
	}
	t.Cleanup(c.Close)
	return c
}

// TaskQueue returns a task queue name unique to this test, so tests sharing one server never steal each
// other's tasks.
func TaskQueue(t testing.TB) string {
	return fmt.Sprintf("test-%s-%d", strings.ReplaceAll(t.Name(), "/", "-"), shared.seq.Add(1))
}

// Unique returns a short string unique within this test binary run, for order ids and the like.
func Unique(prefix string) string {
	return fmt.Sprintf("%s%d%04d", prefix, time.Now().UnixNano()%1e9, shared.seq.Add(1))
}

type quiet struct{}

func (quiet) Debug(string, ...any) {}
func (quiet) Info(string, ...any)  {}
func (quiet) Warn(string, ...any)  {}
func (quiet) Error(string, ...any) {}
