package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/puddle/v2"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/kooflow/kooflow/internal/instance"
	"github.com/kooflow/kooflow/internal/store"
)

// Inbox makes newInstance durable before it is answered and starts the instance's workflow from it.
//
// The marketplace gives a seller 5 s and then retries for hours, so the answer to newInstance must not wait for
// anything slower than one PostgreSQL insert. Starting a workflow is a durable write in Temporal that, on a busy
// server, queues behind every other start; measured on a two-core machine at 20 concurrent newInstance calls it
// put the gateway's p99 at 0.4–0.65 s. The inbox takes it off the answer's path: Accept records the order (one
// row per instanceId, so retries find it), the caller answers 000004, and the start is dispatched right after by
// this process (Kick) or, if this process dies first, by the re-driver of any API process (Run). Dispatching is
// idempotent — the workflow ID is derived from the order and the conflict policy is USE_EXISTING — so a start
// dispatched twice is one workflow.
type Inbox struct {
	Store     *store.Store
	Client    client.Client
	TaskQueue string
	Log       *slog.Logger
	// Grace is how long the re-driver leaves a fresh row to the process that took the call (default 5 s).
	Grace time.Duration
	// Workers is the number of concurrent dispatches (default 4).
	Workers int
	// Calls, when set, counts the production-interface calls in flight. Each dispatch first waits, up to Yield,
	// for a spell of Quiet with none in flight (see Calls), so a burst of calls is answered before the
	// purchases' workflows start. A gateway answering a few calls a second has such spells all the time.
	Calls *Calls
	// Quiet is the spell without calls a dispatch waits for (default 5 ms). A gap between two calls of a burst is
	// shorter; the idle time of a gateway with spare capacity is longer.
	Quiet time.Duration
	// Yield is the longest a dispatch waits for the gateway to be quiet (default 1 s; negative: never waits).
	// While calls never stop, each dispatcher still starts one workflow per Yield.
	Yield time.Duration

	once  sync.Once
	kicks chan kick
}

// kick is a dispatch request: the instance, and its inbox row when the caller has just written it (so the
// dispatcher need not read it back).
type kick struct {
	id  string
	row *store.InboxRow
}

func (in *Inbox) grace() time.Duration {
	if in.Grace <= 0 {
		return 5 * time.Second
	}
	return in.Grace
}

func (in *Inbox) yield() time.Duration {
	switch {
	case in.Yield < 0:
		return 0
	case in.Yield == 0:
		return time.Second
	}
	return in.Yield
}

func (in *Inbox) quiet() time.Duration {
	if in.Quiet <= 0 {
		return 5 * time.Millisecond
	}
	return in.Quiet
}

// redriveLease is how long a re-driver holds the rows it claimed before another process may claim them.
const redriveLease = 30 * time.Second

func (in *Inbox) init() {
	in.once.Do(func() { in.kicks = make(chan kick, 4096) })
}

// Accept records a newInstance for instance id unless its order is already recorded. retry reports that an
// earlier call recorded it; dispatched that the workflow's start was already confirmed.
func (in *Inbox) Accept(ctx context.Context, id string, c NewInstanceCall) (retry, dispatched bool, err error) {
	return in.Store.AcceptInbox(ctx, inboxRow(id, c), in.grace())
}

// inboxRow is the row Accept records for a first newInstance call.
func inboxRow(id string, c NewInstanceCall) store.InboxRow {
	return store.InboxRow{InstanceID: id, OrderID: c.OrderID, OrderLineID: c.OrderLineID, ProductID: c.ProductID,
		BusinessID: c.BusinessID, TestFlag: c.TestFlag, ReceivedAt: c.ReceivedAt}
}

// Kick asks this process's dispatchers to start the workflow now. It never blocks: when they are saturated the
// row waits for the re-driver.
func (in *Inbox) Kick(id string) { in.kick(kick{id: id}) }

// KickNew is Kick for the call that has just recorded instance id (Accept's retry was false): the dispatcher
// starts the workflow from the call itself instead of reading its row back.
func (in *Inbox) KickNew(id string, c NewInstanceCall) {
	r := inboxRow(id, c)
	in.kick(kick{id: id, row: &r})
}

func (in *Inbox) kick(k kick) {
	in.init()
	select {
	case in.kicks <- k:
	default:
	}
}

// Accepted reports which of ids newInstance accepted (recorded in the inbox, started or not).
func (in *Inbox) Accepted(ctx context.Context, ids []string) (map[string]bool, error) {
	return in.Store.InboxAccepted(ctx, ids)
}

// Dispatch starts the workflow recorded for id and marks the row. It is safe to call concurrently and again.
func (in *Inbox) Dispatch(ctx context.Context, id string) error {
	r, err := in.Store.InboxEntry(ctx, id)
	if err != nil {
		return err
	}
	return in.dispatch(ctx, r)
}

// dispatch starts the workflow of inbox row r unless r says it was started, and marks the row.
func (in *Inbox) dispatch(ctx context.Context, r store.InboxRow) error {
	id := r.InstanceID
	if r.DispatchedAt != nil {
		return nil
	}
	_, err := in.Client.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID:                       instance.WorkflowID(id),
		TaskQueue:                in.TaskQueue,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
		// A released instance's workflow is closed and must never run again for the same order.
		WorkflowIDReusePolicy: enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE,
		TypedSearchAttributes: temporal.NewSearchAttributes(
			instance.SAOrderID.ValueSet(r.OrderID),
			instance.SAInstanceID.ValueSet(id),
			instance.SALifecycleState.ValueSet(string(instance.LifecycleProvisioning)),
			instance.SATestFlag.ValueSet(r.TestFlag),
		),
		StaticSummary: startSummary(NewInstanceCall{OrderID: r.OrderID, OrderLineID: r.OrderLineID, ProductID: r.ProductID, TestFlag: r.TestFlag}),
	}, instance.WorkflowType, instance.StartInput{
		InstanceID: id, OrderID: r.OrderID, OrderLineID: r.OrderLineID, ProductID: r.ProductID, BusinessID: r.BusinessID,
		TestFlag: r.TestFlag, ReceivedAt: r.ReceivedAt.UTC(),
	})
	if err != nil && !isAlreadyStarted(err) {
		// Each failed start doubles the wait before the re-driver tries again (1 s, 2 s, 4 s, … at most a
		// minute), so rows pending through a Temporal outage do not retry it every tick.
		backoff := min(time.Duration(1<<min(r.Attempts, 6))*time.Second, time.Minute)
		if uerr := in.Store.InboxDispatchFailed(context.WithoutCancel(ctx), id, err.Error(), backoff); uerr != nil {
			in.log().Error("record a failed dispatch", "instance_id", id, "err", uerr)
		}
		return fmt.Errorf("start the workflow of instance %s: %w", id, err)
	}
	// Started, or the instance's workflow already ran and closed: either way the order has its workflow.
	return in.Store.InboxDispatched(context.WithoutCancel(ctx), id)
}

func (in *Inbox) log() *slog.Logger {
	if in.Log == nil {
		return slog.Default()
	}
	return in.Log
}

// Run dispatches kicked rows and re-drives rows left behind until ctx ends or the pool is closed.
func (in *Inbox) Run(ctx context.Context, every time.Duration) {
	in.init()
	workers := in.Workers
	if workers <= 0 {
		workers = 4
	}
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-ctx.Done():
					return
				case k := <-in.kicks:
					in.Calls.WaitIdle(ctx, in.quiet(), in.yield())
					dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
					var err error
					if k.row != nil {
						err = in.dispatch(dctx, *k.row)
					} else {
						err = in.Dispatch(dctx, k.id)
					}
					if err != nil {
						in.log().Warn("newInstance dispatch failed; the re-driver retries", "instance_id", k.id, "err", err)
					}
					cancel()
				}
			}
		}()
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			wg.Wait()
			return
		case <-t.C:
		}
		n, err := in.Redrive(ctx, 100)
		switch {
		case errors.Is(err, puddle.ErrClosedPool):
			return
		case err != nil && ctx.Err() == nil:
			in.log().Warn("inbox re-drive", "err", err)
		case n > 0:
			in.log().Info("inbox re-drive dispatched left-behind newInstance calls", "count", n)
		}
	}
}

// Redrive claims up to limit rows whose grace or backoff has passed (leasing them for 30 s, so API processes do
// not dispatch the same rows at once) and dispatches them; it returns how many started. Like the dispatchers
// it lets calls in flight be answered first; once half the lease has gone that way it stops, and the rows it
// did not reach are claimed again when their lease ends.
func (in *Inbox) Redrive(ctx context.Context, limit int) (int, error) {
	claimed := time.Now()
	ids, err := in.Store.ClaimInbox(ctx, limit, redriveLease)
	if err != nil {
		return 0, err
	}
	started := 0
	for _, id := range ids {
		if time.Since(claimed) > redriveLease/2 {
			break
		}
		in.Calls.WaitIdle(ctx, in.quiet(), in.yield())
		dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		err := in.Dispatch(dctx, id)
		cancel()
		if err != nil {
			in.log().Warn("re-drive of newInstance failed; retried with backoff", "instance_id", id, "err", err)
			continue
		}
		started++
	}
	return started, nil
}
