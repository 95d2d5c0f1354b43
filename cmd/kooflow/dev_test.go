package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kooflow/kooflow/internal/devstack"
	"github.com/kooflow/kooflow/internal/testenv"
)

// TestDevStack runs `kooflow dev` as a newcomer would (a real binary, real child processes), waits for its
// banner, starts a workflow through the API, finds it in the Temporal web UI's API, then sends Ctrl-C (SIGINT) and
// checks that every process it started is gone. A second run on the same state directory finds the first run's
// row. The state directory is under t.TempDir, which is private (0700): as root, the cluster must be placed
// outside it, and the banner must say where.
func TestDevStack(t *testing.T) {
	testenv.SkipShort(t, "the kooflow binary with its Temporal dev server and PostgreSQL")
	bin := filepath.Join(t.TempDir(), "kooflow")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	state := filepath.Join(t.TempDir(), "state")
	var clusters []string
	ports := make([]int, 4)
	for i := range ports {
		ports[i], _ = devstack.FreePort()
	}
	httpAddr := fmt.Sprintf("127.0.0.1:%d", ports[3])

	run := func(previous string) (runID string) {
		cmd := exec.Command(bin, "dev", "--state-dir", state, "--bin-dir", filepath.Join(testenv.RepoRoot(), "bin"),
			"--temporal-port", strconv.Itoa(ports[0]), "--ui-port", strconv.Itoa(ports[1]),
			"--pg-port", strconv.Itoa(ports[2]), "--http-addr", httpAddr)
		cmd.Env = cleanEnv()
		stderr, _ := cmd.StderrPipe()
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		defer func() { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }()
		banner := make(chan string, 1)
		go func() {
			sc := bufio.NewScanner(stderr)
			var seen strings.Builder
			for sc.Scan() {
				seen.WriteString(sc.Text() + "\n")
				if strings.Contains(sc.Text(), "Try it:") {
					banner <- seen.String()
				}
			}
			_, _ = io.Copy(io.Discard, stderr)
		}()
		var out string
		select {
		case out = <-banner:
		case <-time.After(90 * time.Second):
			t.Fatal("no banner within 90 s")
		}
		for _, want := range []string{"http://" + httpAddr, fmt.Sprintf("http://127.0.0.1:%d", ports[1]), "Bearer " + devConsoleToken,
			"http://" + httpAddr + "/metrics (API)", "/metrics (worker)"} {
			if !strings.Contains(out, want) {
				t.Fatalf("banner lacks %q:\n%s", want, out)
			}
		}
		cluster := bannerValue(out, "PostgreSQL cluster")
		if cluster == "" || !filepath.IsAbs(cluster) {
			t.Fatalf("banner does not say where the PostgreSQL cluster is:\n%s", out)
		}
		if os.Geteuid() == 0 {
			t.Cleanup(func() { _ = os.RemoveAll(cluster) })
			if strings.HasPrefix(cluster, state+"/") || !strings.Contains(out, "outside the state directory") {
				t.Fatalf("as root, with the state directory private, the cluster must be elsewhere; banner:\n%s", out)
			}
		} else if cluster != filepath.Join(state, "postgres") {
			t.Fatalf("cluster at %s, want in the state directory", cluster)
		}
		if len(clusters) > 0 && clusters[0] != cluster {
			t.Fatalf("second run's cluster %s differs from the first's %s", cluster, clusters[0])
		}
		clusters = append(clusters, cluster)
		children := descendants(cmd.Process.Pid)
		if len(children) < 4 { // temporal, postgres (+ its workers), worker, api
			t.Fatalf("expected at least 4 child processes, found %v", children)
		}

		req, _ := http.NewRequest(http.MethodPost, "http://"+httpAddr+"/console/v1/selfcheck", nil)
		req.Header.Set("Authorization", "Bearer "+devConsoleToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var body map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("selfcheck %d %v", resp.StatusCode, body)
		}
		wfID := body["workflowId"].(string)
		runID = body["runId"].(string)

		if previous != "" { // a second run on the same state directory keeps the first run's data
			req, _ := http.NewRequest(http.MethodGet, "http://"+httpAddr+"/console/v1/selfcheck/"+previous, nil)
			req.Header.Set("Authorization", "Bearer "+devConsoleToken)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("first run's self-check row %s not found in the second run: %d", previous, resp.StatusCode)
			}
		}

		// The web UI lists the workflow started through kooflow's API.
		uiList := fmt.Sprintf("http://127.0.0.1:%d/api/v1/namespaces/default/workflows", ports[1])
		if !eventually(10*time.Second, func() bool {
			r, err := http.Get(uiList)
			if err != nil {
				return false
			}
			b, _ := io.ReadAll(r.Body)
			r.Body.Close()
			return strings.Contains(string(b), wfID) && strings.Contains(string(b), "COMPLETED")
		}) {
			t.Fatalf("workflow %s not listed as completed by the web UI at %s", wfID, uiList)
		}

		// Ctrl-C: SIGINT to kooflow dev; it must stop everything it started and exit 0.
		_ = cmd.Process.Signal(syscall.SIGINT)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("kooflow dev exited with %v after Ctrl-C", err)
			}
		case <-time.After(60 * time.Second):
			t.Fatal("kooflow dev did not stop within 60 s of Ctrl-C")
		}
		if !eventually(5*time.Second, func() bool { return len(alive(children)) == 0 }) {
			t.Fatalf("processes left behind after Ctrl-C: %v", alive(children))
		}
		return runID
	}

	first := run("")
	run(first)
}

// bannerValue is the first word after label on the banner line that starts with it.
func bannerValue(banner, label string) string {
	for _, l := range strings.Split(banner, "\n") {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(l), label); ok {
			if f := strings.Fields(rest); len(f) > 0 {
				return f[0]
			}
		}
	}
	return ""
}

func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "DATABASE_URL=") || strings.HasPrefix(kv, "TEMPORAL_ADDRESS=") {
			continue
		}
		env = append(env, kv)
	}
	return env
}

// descendants lists every process below pid (children, grandchildren, ...), from /proc.
func descendants(pid int) []int {
	parent := map[int]int{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		s := string(b)
		rest := s[strings.LastIndexByte(s, ')')+2:]
		fields := strings.Fields(rest)
		if len(fields) > 1 {
			parent[p], _ = strconv.Atoi(fields[1])
		}
	}
	var out []int
	frontier := []int{pid}
	for len(frontier) > 0 {
		cur := frontier[0]
		frontier = frontier[1:]
		for p, pp := range parent {
			if pp == cur {
				out = append(out, p)
				frontier = append(frontier, p)
			}
		}
	}
	return out
}

func alive(pids []int) []int {
	var out []int
	for _, p := range pids {
		if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p)); err == nil && !strings.Contains(string(b), ") Z ") {
			out = append(out, p)
		}
	}
	return out
}

func eventually(d time.Duration, f func() bool) bool {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if f() {
			return true
		}
		time.Sleep(200 * time.Millisecond)
	}
	return false
}
