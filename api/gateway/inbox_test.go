package gateway

import (
	"context"
	"errors"
	"testing"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/kooflow/kooflow/internal/store"
	"github.com/kooflow/kooflow/internal/testenv"
)

// refusingClient is a Temporal client whose every workflow start fails, as during an outage.
type refusingClient struct{ client.Client }

func (refusingClient) ExecuteWorkflow(context.Context, client.StartWorkflowOptions, any, ...any) (client.WorkflowRun, error) {
	return nil, errors.New("temporal is unavailable")
}

// TestDispatchBacksOffByAttempts: each failed start of a recorded newInstance doubles the wait before the next
// (1 s, 2 s, 4 s, …), and the failure is recorded on the row.
func TestDispatchBacksOffByAttempts(t *testing.T) {
	pool := testenv.Pool(t)
	in := &Inbox{Store: &store.Store{Pool: pool}, Client: refusingClient{}, TaskQueue: "unused", Log: testenv.Logger(t)}
	ctx := context.Background()
	id := "inbox-backoff-1"
	if _, _, err := in.Accept(ctx, id, NewInstanceCall{OrderID: "CS1", OrderLineID: "CS1-000001", BusinessID: "b-1",
		ReceivedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	for i, want := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second} {
		if err := in.Dispatch(ctx, id); err == nil {
			t.Fatalf("dispatch %d succeeded with Temporal refusing every start", i+1)
		}
		var attempts int
		var lastError string
		var wait float64
		if err := pool.QueryRow(ctx, `SELECT attempts, last_error, extract(epoch FROM next_attempt_at - now())::float8
			FROM koogallery_inbox WHERE instance_id = $1`, id).Scan(&attempts, &lastError, &wait); err != nil {
			t.Fatal(err)
		}
		if attempts != i+1 || lastError == "" {
			t.Fatalf("after dispatch %d: attempts %d, last error %q", i+1, attempts, lastError)
		}
		// The row was updated a moment before this look, so the wait left is a little less than the backoff.
		if got := time.Duration(wait * float64(time.Second)); got > want || got < want-time.Second {
			t.Fatalf("after dispatch %d the next attempt is in %s, want about %s", i+1, got, want)
		}
	}
}

// startRecorder is a Temporal client that records when each workflow start was asked for.
type startRecorder struct {
	client.Client
	started chan string
}

func (r startRecorder) ExecuteWorkflow(_ context.Context, o client.StartWorkflowOptions, _ any, _ ...any) (client.WorkflowRun, error) {
	r.started <- o.ID
	return nil, nil
}

// TestDispatchWaitsForTheCallsInFlight: a kicked start waits while the gateway answers calls and goes as soon as
// none is in flight; a gateway that never goes idle delays each start by at most Yield.
func TestDispatchWaitsForTheCallsInFlight(t *testing.T) {
	pool := testenv.Pool(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// run starts an inbox with its own dispatcher; accept records a newInstance in it and kicks the dispatcher.
	run := func(yield time.Duration) (calls *Calls, started chan string, accept func()) {
		calls, started = &Calls{}, make(chan string, 4)
		in := &Inbox{Store: &store.Store{Pool: pool}, Client: startRecorder{started: started}, TaskQueue: "unused",
			Log: testenv.Logger(t), Calls: calls, Yield: yield, Workers: 1}
		go in.Run(ctx, time.Hour)
		return calls, started, func() {
			t.Helper()
			id, order := testenv.Unique("inbox-yield"), testenv.Unique("CY")
			c := NewInstanceCall{OrderID: order, OrderLineID: order + "-000001", BusinessID: "b-1", ReceivedAt: time.Now()}
			if _, _, err := in.Accept(ctx, id, c); err != nil {
				t.Fatal(err)
			}
			in.KickNew(id, c)
		}
	}

	calls, started, accept := run(time.Hour)
	end := calls.Begin()
	accept()
	select {
	case got := <-started:
		t.Fatalf("workflow %s started while a call was in flight", got)
	case <-time.After(200 * time.Millisecond):
	}
	end()
	select {
	case <-started:
	case <-time.After(5 * time.Second):
		t.Fatal("not started after the call ended")
	}

	calls, started, accept = run(100 * time.Millisecond)
	defer calls.Begin()() // a gateway that stays busy for the rest of the test
	sent := time.Now()
	accept()
	select {
	case <-started:
		if waited := time.Since(sent); waited < 100*time.Millisecond {
			t.Fatalf("started after %s with a call in flight, before Yield", waited)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a busy gateway held the start back for more than Yield")
	}
}
