// Package devstack runs the parts of a local kooflow stack that kooflow does not implement itself: the Temporal
// CLI's dev server (with its web UI) and a private PostgreSQL cluster. `kooflow dev` and the integration-test
// harness both use it, so what a newcomer runs is what the tests run.
package devstack

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// Proc is a child process started in its own process group, so Ctrl-C in a terminal reaches kooflow first and
// kooflow stops its children in order, and so that stopping it also stops anything the child started.
type Proc struct {
	Name string
	cmd  *exec.Cmd
	done chan struct{}
	err  error
	once sync.Once
}

// StartProc starts cmd with its own process group. If the parent dies without stopping it, the kernel sends the
// child stopSignal (Pdeathsig), so no process outlives a killed `kooflow dev`.
func StartProc(name string, cmd *exec.Cmd, stopSignal syscall.Signal) (*Proc, error) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setpgid = true
	cmd.SysProcAttr.Pdeathsig = stopSignal
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &Proc{Name: name, cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// Done is closed when the process has exited.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Err is the process's exit error, valid after Done.
func (p *Proc) Err() error { return p.err }

// PID is the child's process id.
func (p *Proc) PID() int { return p.cmd.Process.Pid }

// Stop sends sig to the process group and waits up to grace, then kills the group.
func (p *Proc) Stop(sig syscall.Signal, grace time.Duration) error {
	var err error
	p.once.Do(func() {
		select {
		case <-p.done:
			return
		default:
		}
		pgid := -p.cmd.Process.Pid
		_ = syscall.Kill(pgid, sig)
		select {
		case <-p.done:
		case <-time.After(grace):
			_ = syscall.Kill(pgid, syscall.SIGKILL)
			<-p.done
			err = fmt.Errorf("%s did not stop within %s after %s; killed", p.Name, grace, sig)
		}
	})
	return err
}

// waitFor polls check until it succeeds, the process exits, or ctx ends.
func waitFor(ctx context.Context, p *Proc, what string, check func(context.Context) error) error {
	var last error
	for {
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		last = check(cctx)
		cancel()
		if last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s not ready: %w (last error: %v)", what, ctx.Err(), last)
		case <-p.Done():
			return fmt.Errorf("%s exited before it was ready: %v", what, p.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// prefixWriter writes each line of a child's output with a name in front, so interleaved logs stay readable.
type prefixWriter struct {
	mu     *sync.Mutex
	w      io.Writer
	prefix []byte
	buf    []byte
}

// NewPrefixWriter returns a writer that prefixes every line with "[name] ". Writers sharing mu never interleave
// within a line.
func NewPrefixWriter(w io.Writer, name string, mu *sync.Mutex) io.Writer {
	return &prefixWriter{mu: mu, w: w, prefix: []byte("[" + name + "] ")}
}

func (p *prefixWriter) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.buf = append(p.buf, b...)
	for {
		i := indexByte(p.buf, '\n')
		if i < 0 {
			break
		}
		line := append(append([]byte{}, p.prefix...), p.buf[:i+1]...)
		if _, err := p.w.Write(line); err != nil {
			return 0, err
		}
		p.buf = p.buf[i+1:]
	}
	return len(b), nil
}

func indexByte(b []byte, c byte) int {
	for i, x := range b {
		if x == c {
			return i
		}
	}
	return -1
}

// fileExists reports whether path names an existing regular file or directory.
func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// Niced returns cmd rewritten to run at CPU niceness n through nice(1), or cmd unchanged when n is 0 or nice is
// not installed. nice execs the program, so the child keeps the same PID (Pdeathsig and process-group stops
// still reach it), and every thread it creates inherits the priority, which renicing a running Go or Temporal
// process (one thread at a time on Linux) would not achieve.
func Niced(cmd *exec.Cmd, n int) *exec.Cmd {
	if n == 0 {
		return cmd
	}
	nice, err := exec.LookPath("nice")
	if err != nil {
		return cmd
	}
	out := exec.Command(nice, append([]string{"-n", fmt.Sprint(n), cmd.Path}, cmd.Args[1:]...)...)
	out.Env, out.Dir, out.Stdin, out.Stdout, out.Stderr, out.SysProcAttr = cmd.Env, cmd.Dir, cmd.Stdin, cmd.Stdout, cmd.Stderr, cmd.SysProcAttr
	return out
}
