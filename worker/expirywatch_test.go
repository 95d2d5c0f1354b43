package worker

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kooflow/kooflow/internal/instance"
	"github.com/kooflow/kooflow/internal/store"
	"github.com/kooflow/kooflow/internal/testenv"
)

// checks is an Updater that records the expiry checks sent and answers each with the action of its instance.
type checks struct {
	mu     sync.Mutex
	sent   []string // instance:updateID
	answer map[string]string
	fail   map[string]error
}

func (c *checks) Update(_ context.Context, instanceID, name, updateID string, arg, out any) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if name != instance.UpdateCheckExpiry {
		return fmt.Errorf("unexpected update %s", name)
	}
	if _, ok := arg.(instance.ExpiryCheck); !ok {
		return fmt.Errorf("argument %T", arg)
	}
	c.sent = append(c.sent, instanceID+" "+updateID)
	if err := c.fail[instanceID]; err != nil {
		return err
	}
	a := c.answer[instanceID]
	if a == "" {
		a = "alert"
	}
	*out.(*instance.ExpiryCheckResult) = instance.ExpiryCheckResult{Action: a}
	return nil
}

// TestExpiryWatchRound: a round sends the check to the instances still usable past expiry + grace with no expiry
// alert since that expiry, and to no other; it counts what the workflows acted on, skips released workflows, and
// reports a check it could not deliver without stopping at it. Later rounds leave out for an hour the instances
// whose check changed nothing.
func TestExpiryWatchRound(t *testing.T) {
	pool := testenv.Pool(t)
	ctx := context.Background()
	now := time.Date(2026, 12, 10, 12, 0, 0, 0, time.UTC)
	grace := 24 * time.Hour
	add := func(id, lifecycle string, expire *time.Time) {
		t.Helper()
		if _, err := pool.Exec(ctx, `INSERT INTO instances (instance_id, workflow_id, order_id, order_line_id, lifecycle, expire_time)
			VALUES ($1, $2, $1, $1 || '-1', $3, $4)`, id, instance.WorkflowID(id), lifecycle, expire); err != nil {
			t.Fatal(err)
		}
	}
	alert := func(id string, at time.Time) {
		t.Helper()
		if _, err := pool.Exec(ctx, `INSERT INTO instance_alerts (instance_id, alert_key, kind, raised_at, message)
			VALUES ($1, 'expiry:' || $2::text, 'expiry', $3, 'expired')`, id, at.Format(time.RFC3339), at); err != nil {
			t.Fatal(err)
		}
	}
	at := func(d time.Duration) *time.Time { v := now.Add(d); return &v }
	add("due-active", "ACTIVE", at(-25*time.Hour))
	add("due-provisioning", "PROVISIONING", at(-48*time.Hour))
	add("in-grace", "ACTIVE", at(-23*time.Hour))
	add("frozen", "FROZEN", at(-72*time.Hour))
	add("released", "RELEASED", at(-72*time.Hour))
	add("no-expiry", "ACTIVE", nil)
	add("alerted", "ACTIVE", at(-30*time.Hour))
	alert("alerted", now.Add(-5*time.Hour))
	// Alerted for the expiry before a renewal that has expired again since: due once more.
	add("alerted-before-renewal", "ACTIVE", at(-26*time.Hour))
	alert("alerted-before-renewal", now.Add(-40*24*time.Hour))
	add("gone", "ACTIVE", at(-25*time.Hour))
	add("unreachable", "ACTIVE", at(-25*time.Hour))
	add("handled", "ACTIVE", at(-25*time.Hour))

	c := &checks{answer: map[string]string{"due-provisioning": "alert and freeze", "handled": "nothing"},
		fail: map[string]error{"gone": fmt.Errorf("closed: %w", instance.ErrNoWorkflow), "unreachable": errors.New("temporal unavailable")}}
	w := &ExpiryWatch{Store: &store.Store{Pool: pool}, Instances: c, Grace: grace, Log: testenv.Logger(t), Now: func() time.Time { return now }}
	acted, err := w.Round(ctx)
	if err == nil || err.Error() != "temporal unavailable" {
		t.Fatalf("round error %v, want the undelivered check's", err)
	}
	if acted != 3 {
		t.Fatalf("%d acted on, want 3 (due-active, due-provisioning, alerted-before-renewal)", acted)
	}
	want := []string{"due-provisioning", "alerted-before-renewal", "due-active", "gone", "handled", "unreachable"}
	for _, s := range c.sent {
		var id, upd string
		if _, err := fmt.Sscan(s, &id, &upd); err != nil {
			t.Fatal(err)
		}
		if exp := s[len(s)-len("2026-12-09T11:00:00Z"):]; upd != instance.UpdateID("expiry", id, exp) {
			t.Fatalf("update id %s for %s", upd, id)
		}
	}
	if got := sentTo(t, c); !slices.Equal(got, sorted(want)) {
		t.Fatalf("checks sent to %v, want %v", got, sorted(want))
	}

	// The next round leaves out, for an hour, the instances whose check changed nothing or that have no
	// workflow, so they cannot fill every batch; the others are asked again.
	c.sent = nil
	if _, err := w.Round(ctx); err == nil {
		t.Fatal("the undelivered check did not fail the second round")
	}
	if got, want := sentTo(t, c), sorted([]string{"due-provisioning", "alerted-before-renewal", "due-active", "unreachable"}); !slices.Equal(got, want) {
		t.Fatalf("second round sent to %v, want %v", got, want)
	}
	c.sent = nil
	now = now.Add(quietFor + time.Second)
	if _, err := w.Round(ctx); err == nil {
		t.Fatal("the undelivered check did not fail the third round")
	}
	if got := sentTo(t, c); !slices.Contains(got, "handled") || !slices.Contains(got, "gone") {
		t.Fatalf("an hour later the round sent to %v, without handled and gone", got)
	}
}

// sentTo lists the instances c was sent checks to, sorted, checking each check's Update ID.
func sentTo(t *testing.T, c *checks) []string {
	t.Helper()
	got := make([]string, 0, len(c.sent))
	for _, s := range c.sent {
		var id, upd string
		if _, err := fmt.Sscan(s, &id, &upd); err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(upd, "expiry:"+id+":") {
			t.Fatalf("update id %s for %s", upd, id)
		}
		got = append(got, id)
	}
	return sorted(got)
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}
