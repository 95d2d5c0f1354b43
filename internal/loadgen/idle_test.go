package loadgen

import (
	"context"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"
)

func TestParseCPUTimesCountsIdleAndIOWait(t *testing.T) {
	got, err := parseCPUTimes(strings.NewReader("cpu  100 5 50 800 40 0 5 0 0 0\ncpu0 50 2 25 400 20 0 2 0 0 0\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got.idle != 840 || got.total != 1000 {
		t.Fatalf("got idle %d total %d, want 840 of 1000", got.idle, got.total)
	}
	for _, bad := range []string{"", "intr 1 2 3\n", "cpu 1 2 x 4 5\n"} {
		if _, err := parseCPUTimes(strings.NewReader(bad)); err == nil {
			t.Errorf("%q: want an error", bad)
		}
	}
}

// stat plays successive /proc/stat readings, each adding busy and idle ticks to the last.
type stat struct {
	busy, idle []uint64
	i          int
	u, id      uint64
}

func (s *stat) open() (io.ReadCloser, error) {
	if s.i < len(s.busy) {
		s.u += s.busy[s.i]
		s.id += s.idle[s.i]
		s.i++
	}
	return io.NopCloser(strings.NewReader(fmt.Sprintf("cpu %d 0 0 %d 0 0 0 0 0 0\n", s.u, s.id))), nil
}

func TestIdleWaitReturnsOnceAWindowIsIdleEnough(t *testing.T) {
	// Readings: baseline, then a busy window (50% idle), then an idle one (95%).
	s := &stat{busy: []uint64{0, 100, 5}, idle: []uint64{0, 100, 95}}
	w := IdleWait{Idle: 0.9, Window: time.Millisecond, Max: time.Minute, Stat: s.open}
	_, idle, err := w.Wait(context.Background())
	if err != nil || !idle {
		t.Fatalf("idle %v, err %v; want idle", idle, err)
	}
	if s.i != 3 {
		t.Fatalf("read %d times, want 3 (the busy window must not count)", s.i)
	}
}

func TestIdleWaitGivesUpAtMax(t *testing.T) {
	s := &stat{busy: []uint64{0, 100, 100, 100, 100, 100, 100}, idle: []uint64{0, 1, 1, 1, 1, 1, 1}}
	w := IdleWait{Idle: 0.9, Window: time.Millisecond, Max: 3 * time.Millisecond, Stat: s.open}
	waited, idle, err := w.Wait(context.Background())
	if err != nil || idle {
		t.Fatalf("idle %v, err %v; want not idle, no error", idle, err)
	}
	if waited < 3*time.Millisecond {
		t.Fatalf("waited %s, want at least Max", waited)
	}
}

func TestRunWaitsForIdleCPUsAfterTheWarmUp(t *testing.T) {
	srv, seen := target(t, false, 0)
	calls := func() int {
		n := 0
		seen.Range(func(any, any) bool { n++; return true })
		return n
	}
	warmedUp := -1
	s := &stat{busy: []uint64{0, 100, 1}, idle: []uint64{0, 0, 99}}
	open := func() (io.ReadCloser, error) {
		if warmedUp < 0 {
			warmedUp = calls()
		}
		return s.open()
	}
	rep, err := Run(context.Background(), Options{URL: srv.URL, AccessKey: key, Concurrency: 2, Requests: 10, Warmup: 4,
		Settle: &IdleWait{Idle: 0.9, Window: time.Millisecond, Max: time.Minute, Stat: open}})
	if err != nil {
		t.Fatal(err)
	}
	if warmedUp != 4 {
		t.Fatalf("the wait began after %d calls, want after the 4 warm-up calls", warmedUp)
	}
	if rep.Settled == nil || !rep.Settled.Idle || rep.Answered() != 10 {
		t.Fatalf("settled %+v, answered %d; want an idle wait and 10 measured calls", rep.Settled, rep.Answered())
	}
	var out strings.Builder
	rep.Write(&out)
	if !strings.Contains(out.String(), "for the CPUs to be 90% idle") {
		t.Fatalf("the report does not say it waited:\n%s", out.String())
	}
}
