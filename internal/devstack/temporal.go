package devstack

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/kooflow/kooflow/internal/instance"
)

// TemporalCLIVersion is the Temporal CLI kooflow installs. It is the newest release that builds from the Go module
// proxy (later releases use a nested module the proxy cannot serve).
const TemporalCLIVersion = "v1.5.1"

// TemporalCLIPackage is what `go install` builds.
const TemporalCLIPackage = "github.com/temporalio/cli/cmd/temporal"

// EnvTemporalCLI names an existing Temporal CLI binary to use instead of the project-local one.
const EnvTemporalCLI = "KOOFLOW_TEMPORAL_CLI"

// EnsureTemporalCLI returns the path of a Temporal CLI binary: $KOOFLOW_TEMPORAL_CLI if set, else binDir/temporal,
// building it there with `go install` when missing (a few minutes, once).
func EnsureTemporalCLI(ctx context.Context, binDir string, log *slog.Logger) (string, error) {
	if p := os.Getenv(EnvTemporalCLI); p != "" {
		if !fileExists(p) {
			return "", fmt.Errorf("%s=%s: no such file", EnvTemporalCLI, p)
		}
		return p, nil
	}
	abs, err := filepath.Abs(binDir)
	if err != nil {
		return "", err
	}
	path := filepath.Join(abs, "temporal")
	if fileExists(path) {
		return path, nil
	}
	if err := os.MkdirAll(abs, 0o755); err != nil {
		return "", fmt.Errorf("create %s: %w", abs, err)
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("the Temporal CLI is missing at %s and the go command is not on PATH to build it: %w", path, err)
	}
	log.Info("building the Temporal CLI once (takes a few minutes)", "version", TemporalCLIVersion, "into", abs)
	start := time.Now()
	cmd := exec.CommandContext(ctx, goBin, "install", "-ldflags=-s -w", TemporalCLIPackage+"@"+TemporalCLIVersion)
	cmd.Env = append(os.Environ(), "GOBIN="+abs, "GOFLAGS=-buildvcs=false")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go install %s@%s: %w\n%s", TemporalCLIPackage, TemporalCLIVersion, err, out)
	}
	log.Info("Temporal CLI built", "path", path, "took", time.Since(start).Round(time.Second))
	return path, nil
}

// TemporalOptions configures a dev server.
type TemporalOptions struct {
	CLIPath   string
	Port      int    // frontend gRPC port
	UIPort    int    // web UI port; 0 disables the UI
	DBFile    string // SQLite file; empty keeps state in memory
	Namespace string
	LogLevel  string
	Output    io.Writer
	// Nice lowers the server's CPU priority (see Niced); 0 leaves it.
	Nice int
	// CodecEndpoint is the payload codec the web UI decodes payloads with (kooflow's /codec); empty for none.
	CodecEndpoint string
}

// Temporal is a running dev server.
type Temporal struct {
	Proc    *Proc
	Address string
	UIURL   string
}

// StartTemporal starts `temporal server start-dev` bound to 127.0.0.1 with kooflow's search attributes and the
// SQLite pragmas that make a file-backed server about 3x faster, and waits until the namespace answers.
func StartTemporal(ctx context.Context, o TemporalOptions) (*Temporal, error) {
	if o.Namespace == "" {
		o.Namespace = "default"
	}
	if o.LogLevel == "" {
		o.LogLevel = "warn"
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(o.Port))
	if err := portFree(addr); err != nil {
		return nil, err
	}
	args := []string{"server", "start-dev",
		"--ip", "127.0.0.1", "--port", strconv.Itoa(o.Port),
		"--namespace", o.Namespace,
		"--log-level", o.LogLevel,
		"--dynamic-config-value", "frontend.enableUpdateWorkflowExecution=true",
		"--dynamic-config-value", "frontend.enableExecuteMultiOperation=true",
	}
	if o.UIPort > 0 {
		uiAddr := net.JoinHostPort("127.0.0.1", strconv.Itoa(o.UIPort))
		if err := portFree(uiAddr); err != nil {
			return nil, err
		}
		args = append(args, "--ui-ip", "127.0.0.1", "--ui-port", strconv.Itoa(o.UIPort))
		if o.CodecEndpoint != "" {
			args = append(args, "--ui-codec-endpoint", o.CodecEndpoint)
		}
	} else {
		args = append(args, "--headless")
	}
	if o.DBFile != "" {
		if err := os.MkdirAll(filepath.Dir(o.DBFile), 0o755); err != nil {
			return nil, err
		}
		args = append(args, "--db-filename", o.DBFile,
			"--sqlite-pragma", "journal_mode=wal", "--sqlite-pragma", "synchronous=normal")
	}
	for _, sa := range instance.SearchAttributes() {
		args = append(args, "--search-attribute", sa.Name+"="+sa.Type)
	}
	cmd := Niced(exec.Command(o.CLIPath, args...), o.Nice)
	cmd.Stdout, cmd.Stderr = o.Output, o.Output
	p, err := StartProc("temporal", cmd, syscall.SIGINT)
	if err != nil {
		return nil, err
	}
	t := &Temporal{Proc: p, Address: addr}
	if o.UIPort > 0 {
		t.UIURL = fmt.Sprintf("http://127.0.0.1:%d", o.UIPort)
	}
	readyCtx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	err = waitFor(readyCtx, p, "Temporal dev server", func(ctx context.Context) error {
		c, err := client.DialContext(ctx, client.Options{HostPort: addr, Namespace: o.Namespace, Logger: discardLogger{}})
		if err != nil {
			return err
		}
		defer c.Close()
		_, err = c.CheckHealth(ctx, &client.CheckHealthRequest{})
		return err
	})
	if err != nil {
		_ = p.Stop(syscall.SIGKILL, time.Second)
		return nil, err
	}
	return t, nil
}

// Stop stops the dev server gracefully.
func (t *Temporal) Stop() error { return t.Proc.Stop(syscall.SIGINT, 15*time.Second) }

func portFree(addr string) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("%s is already in use (another kooflow dev or Temporal running?): %w", addr, err)
	}
	return l.Close()
}

// FreePort asks the kernel for an unused loopback port.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

type discardLogger struct{}

func (discardLogger) Debug(string, ...any) {}
func (discardLogger) Info(string, ...any)  {}
func (discardLogger) Warn(string, ...any)  {}
func (discardLogger) Error(string, ...any) {}
