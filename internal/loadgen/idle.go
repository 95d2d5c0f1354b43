package loadgen

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"
)

// On one machine the API shares its cores with Temporal and the worker, which go on provisioning a run's
// purchases for a minute or more after its last call: a run started meanwhile measures that work as much as the
// gateway. IdleWait waits for the machine to calm down first, so runs back to back measure the same thing.

// IdleWait configures waiting for idle CPUs before the measured calls.
type IdleWait struct {
	// Idle is the share of CPU time (0–1) that must be idle over one Window, e.g. 0.9.
	Idle float64
	// Window is how long each reading lasts (default 2 s).
	Window time.Duration
	// Max bounds the wait; when it passes the run starts anyway, and the report says so.
	Max time.Duration
	// Stat opens the kernel's CPU counters; nil opens /proc/stat.
	Stat func() (io.ReadCloser, error)
}

// cpuTimes is the first line of /proc/stat: the whole machine's CPU time, in clock ticks.
type cpuTimes struct{ idle, total uint64 }

// parseCPUTimes reads the aggregate "cpu" line of /proc/stat. Idle time counts idle and iowait, as a CPU
// waiting for the disk would run a ready task.
func parseCPUTimes(r io.Reader) (cpuTimes, error) {
	line, err := bufio.NewReader(r).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return cpuTimes{}, fmt.Errorf("read cpu times: %w", err)
	}
	f := strings.Fields(line)
	if len(f) < 5 || f[0] != "cpu" {
		return cpuTimes{}, fmt.Errorf("unexpected cpu times line %q", strings.TrimSpace(line))
	}
	var t cpuTimes
	for i, s := range f[1:] {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return cpuTimes{}, fmt.Errorf("cpu times field %d: %w", i+1, err)
		}
		t.total += v
		if i == 3 || i == 4 { // idle, iowait
			t.idle += v
		}
	}
	return t, nil
}

func (w IdleWait) read() (cpuTimes, error) {
	open := w.Stat
	if open == nil {
		open = func() (io.ReadCloser, error) { return os.Open("/proc/stat") }
	}
	f, err := open()
	if err != nil {
		return cpuTimes{}, fmt.Errorf("open cpu times: %w", err)
	}
	defer f.Close()
	return parseCPUTimes(f)
}

// Wait returns once one Window has been at least Idle idle (idle true), or when Max has passed (idle false),
// with the time it waited.
func (w IdleWait) Wait(ctx context.Context) (waited time.Duration, idle bool, err error) {
	window := w.Window
	if window <= 0 {
		window = 2 * time.Second
	}
	start := time.Now()
	prev, err := w.read()
	if err != nil {
		return 0, false, err
	}
	t := time.NewTimer(window)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return time.Since(start), false, ctx.Err()
		case <-t.C:
		}
		cur, err := w.read()
		if err != nil {
			return time.Since(start), false, err
		}
		if d := cur.total - prev.total; d > 0 && float64(cur.idle-prev.idle) >= w.Idle*float64(d) {
			return time.Since(start), true, nil
		}
		if time.Since(start) >= w.Max {
			return time.Since(start), false, nil
		}
		prev = cur
		t.Reset(window)
	}
}
