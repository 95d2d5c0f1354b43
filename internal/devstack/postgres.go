package devstack

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// PostgresInstallHint is what to do when no PostgreSQL server binaries are found.
const PostgresInstallHint = "install the PostgreSQL server (Debian/Ubuntu: apt-get install -y postgresql; " +
	"Fedora: dnf install postgresql-server; macOS: brew install postgresql@15), or set DATABASE_URL to an existing server"

// FindPostgresBin returns a directory holding initdb and postgres: from PATH, from `pg_config --bindir`, or the
// newest /usr/lib/postgresql/*/bin (Debian keeps server binaries off PATH).
func FindPostgresBin() (string, error) {
	var candidates []string
	if p, err := exec.LookPath("initdb"); err == nil {
		candidates = append(candidates, filepath.Dir(p))
	}
	if out, err := exec.Command("pg_config", "--bindir").Output(); err == nil {
		candidates = append(candidates, strings.TrimSpace(string(out)))
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return pgMajor(dirs[i]) > pgMajor(dirs[j]) })
	candidates = append(candidates, dirs...)
	for _, d := range candidates {
		if fileExists(filepath.Join(d, "initdb")) && fileExists(filepath.Join(d, "postgres")) {
			return d, nil
		}
	}
	return "", fmt.Errorf("no PostgreSQL server binaries (initdb, postgres) found on PATH, via pg_config, or in /usr/lib/postgresql/*/bin: %s", PostgresInstallHint)
}

func pgMajor(dir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(dir)))
	return n
}

// PostgresOptions configures a private cluster.
type PostgresOptions struct {
	Dir      string // cluster state; created on first start, reused afterwards
	Port     int
	Database string // created if missing
	Output   io.Writer
	Fsync    bool // off for throwaway test clusters
}

// Postgres is a running private cluster listening on 127.0.0.1 and on a socket inside its directory.
type Postgres struct {
	Proc     *Proc
	Port     int
	password string
	Database string
	// Dir holds the cluster (data/ and the socket): PostgresOptions.Dir, unless the account the server runs as
	// cannot reach that (see Relocation).
	Dir string
	// Relocation is empty when Dir is the requested directory, else why the cluster lives elsewhere.
	Relocation string
	// Owner is the OS account the server runs as.
	Owner string

	requested string
}

// URL is the connection string for database db (the cluster's own database when empty).
func (p *Postgres) URL(db string) string {
	if db == "" {
		db = p.Database
	}
	return fmt.Sprintf("postgres://kooflow:%s@127.0.0.1:%d/%s?sslmode=disable", p.password, p.Port, db)
}

// StartPostgres initialises the cluster in o.Dir on first use and starts it. initdb and postgres refuse to run as
// root, so when kooflow runs as root the cluster is owned by and run as the unprivileged "postgres" account (or
// "nobody" when that does not exist). When that account cannot reach o.Dir (a checkout under /root, a private
// $TMPDIR), the cluster lives in a directory of its own instead (see placeCluster and Postgres.Dir), and o.Dir
// keeps only the password and a "cluster" link to it. Authentication is scram-sha-256 with a password generated
// at initdb time and kept in o.Dir (mode 0600).
func StartPostgres(ctx context.Context, o PostgresOptions) (*Postgres, error) {
	bin, err := FindPostgresBin()
	if err != nil {
		return nil, err
	}
	requested, err := filepath.Abs(o.Dir)
	if err != nil {
		return nil, fmt.Errorf("cluster directory %s: %w", o.Dir, err)
	}
	cred, owner, err := runAs()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(requested, 0o755); err != nil {
		return nil, fmt.Errorf("create %s: %w", requested, err)
	}
	place, err := placeCluster(requested, cred, owner)
	if err != nil {
		return nil, fmt.Errorf("place the PostgreSQL cluster of %s: %w", requested, err)
	}
	dir := place.dir
	data := filepath.Join(dir, "data")
	pwFile := filepath.Join(requested, "password")
	if place.why != "" {
		if o.Output != nil {
			fmt.Fprintf(o.Output, "PostgreSQL cluster of %s lives in %s: %s\n", requested, dir, place.why)
		}
		if fileExists(filepath.Join(data, "PG_VERSION")) && !fileExists(pwFile) {
			// The state directory was reset but its cluster, elsewhere, was not: start afresh, as in place.
			if err := os.RemoveAll(data); err != nil {
				return nil, fmt.Errorf("remove the cluster of reset %s: %w", requested, err)
			}
		}
	}
	if !fileExists(filepath.Join(data, "PG_VERSION")) {
		if err := initCluster(ctx, bin, dir, data, pwFile, cred, owner, o.Fsync, o.Output); err != nil {
			return nil, err
		}
	}
	pw, err := os.ReadFile(pwFile)
	if err != nil {
		return nil, fmt.Errorf("read cluster password: %w", err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", o.Port)
	if err := portFree(addr); err != nil {
		return nil, err
	}
	args := []string{"-D", data, "-p", strconv.Itoa(o.Port), "-c", "listen_addresses=127.0.0.1",
		"-c", "unix_socket_directories=" + dir, "-c", "max_connections=200", "-c", "shared_buffers=128MB",
		"-c", "logging_collector=off", "-c", "log_min_messages=warning"}
	if !o.Fsync {
		args = append(args, "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off")
	}
	cmd := exec.Command(filepath.Join(bin, "postgres"), args...)
	cmd.Dir = dir // the account may not be able to enter our working directory
	cmd.Stdout, cmd.Stderr = o.Output, o.Output
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	// SIGINT is PostgreSQL's "fast shutdown": roll back sessions, checkpoint, exit cleanly.
	proc, err := StartProc("postgres", cmd, syscall.SIGINT)
	if err != nil {
		return nil, err
	}
	pg := &Postgres{Proc: proc, Port: o.Port, password: strings.TrimSpace(string(pw)), Database: o.Database,
		Dir: dir, Relocation: place.why, Owner: owner, requested: requested}
	readyCtx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	err = waitFor(readyCtx, proc, "PostgreSQL", func(ctx context.Context) error {
		conn, err := pgx.Connect(ctx, pg.URL("postgres"))
		if err != nil {
			return err
		}
		return conn.Close(ctx)
	})
	if err != nil {
		_ = proc.Stop(syscall.SIGKILL, time.Second)
		return nil, err
	}
	if o.Database != "" {
		if err := pg.CreateDatabase(ctx, o.Database, ""); err != nil && !strings.Contains(err.Error(), "already exists") {
			_ = pg.Stop()
			return nil, err
		}
	}
	return pg, nil
}

func initCluster(ctx context.Context, bin, dir, data, pwFile string, cred *syscall.Credential, owner string, fsync bool, out io.Writer) error {
	buf := make([]byte, 18)
	if _, err := rand.Read(buf); err != nil {
		return fmt.Errorf("generate cluster password: %w", err)
	}
	if err := writeNewFile(pwFile, []byte(hex.EncodeToString(buf)+"\n"), 0o600); err != nil {
		return fmt.Errorf("write cluster password: %w", err)
	}
	// initdb reads the password file as the cluster owner; hand it a copy it can read, in the cluster directory
	// (which placeCluster made reachable, and which is the owner's alone), then remove it.
	tmpPw := filepath.Join(dir, "initdb-password")
	if err := writeNewFile(tmpPw, []byte(hex.EncodeToString(buf)+"\n"), 0o600); err != nil {
		return fmt.Errorf("write initdb's password file: %w", err)
	}
	defer os.Remove(tmpPw)
	if err := os.MkdirAll(data, 0o700); err != nil {
		return fmt.Errorf("create %s: %w", data, err)
	}
	if cred != nil {
		for _, p := range []string{dir, data, tmpPw} {
			if err := os.Chown(p, int(cred.Uid), int(cred.Gid)); err != nil {
				return fmt.Errorf("give %s to %s: %w", p, owner, err)
			}
		}
	}
	args := []string{"-D", data, "-U", "kooflow", "--auth=scram-sha-256", "--pwfile=" + tmpPw, "-E", "UTF8",
		"--locale=C", "--no-instructions"}
	if !fsync {
		args = append(args, "--no-sync") // a throwaway cluster need not survive a crash, only start quickly
	}
	cmd := exec.CommandContext(ctx, filepath.Join(bin, "initdb"), args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	cmd.Dir = dir
	if o, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("initdb %s (as %s): %w\n%s", data, owner, err, o)
	}
	if out != nil {
		fmt.Fprintf(out, "initialised PostgreSQL cluster in %s (owner %s)\n", data, owner)
	}
	return nil
}

// runAs returns the credential to run PostgreSQL with: nil (the current user) unless we are root.
func runAs() (*syscall.Credential, string, error) {
	if os.Geteuid() != 0 {
		u, _ := user.Current()
		name := "current user"
		if u != nil {
			name = u.Username
		}
		return nil, name, nil
	}
	for _, name := range []string{"postgres", "nobody"} {
		u, err := user.Lookup(name)
		if err != nil {
			continue
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, name, nil
	}
	return nil, "", fmt.Errorf("running as root, and initdb refuses root; no 'postgres' or 'nobody' account exists to run the cluster as (create one: useradd -r postgres)")
}

// CreateDatabase creates db, optionally from a template database.
func (p *Postgres) CreateDatabase(ctx context.Context, db, template string) error {
	conn, err := pgx.Connect(ctx, p.URL("postgres"))
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	sql := "CREATE DATABASE " + pgx.Identifier{db}.Sanitize()
	if template != "" {
		sql += " TEMPLATE " + pgx.Identifier{template}.Sanitize()
	}
	if _, err := conn.Exec(ctx, sql); err != nil {
		return fmt.Errorf("create database %s: %w", db, err)
	}
	return nil
}

// Stop shuts the cluster down (fast shutdown).
func (p *Postgres) Stop() error { return p.Proc.Stop(syscall.SIGINT, 30*time.Second) }

// Discard stops a throwaway cluster and deletes it: the requested directory and, when the cluster was relocated,
// its directory elsewhere, which removing the requested directory alone would leave behind until a later
// relocation notices the orphan.
func (p *Postgres) Discard() error {
	err := p.Stop()
	for _, d := range []string{p.Dir, p.requested} {
		if rerr := os.RemoveAll(d); rerr != nil && err == nil {
			err = fmt.Errorf("remove cluster directory: %w", rerr)
		}
	}
	return err
}
