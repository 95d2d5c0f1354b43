package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/puddle/v2"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/kooflow/kooflow/internal/instance"
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
	Pool      *pgxpool.Pool
	Client    client.Client
	TaskQueue string
	Log       *slog.Logger
	// Grace is how long the re-driver leaves a fresh row to the process that took the call (default 5 s).
	Grace time.Duration
	// Workers is the number of concurrent dispatches (default 4).
	Workers int

	once  sync.Once
	kicks chan string
}

// InboxRow is one recorded newInstance.
type InboxRow struct {
	InstanceID   string     `json:"instanceId"`
	OrderID      string     `json:"orderId"`
	OrderLineID  string     `json:"orderLineId"`
	BusinessID   string     `json:"businessId"`
	TestFlag     bool       `json:"testFlag"`
	ReceivedAt   time.Time  `json:"receivedAt"`
	DispatchedAt *time.Time `json:"dispatchedAt,omitempty"`
	Attempts     int        `json:"attempts"`
	LastError    string     `json:"lastError,omitempty"`
	NextAttempt  time.Time  `json:"nextAttemptAt"`
}

func (in *Inbox) grace() time.Duration {
	if in.Grace <= 0 {
		return 5 * time.Second
	}
	return in.Grace
}

func (in *Inbox) init() {
	in.once.Do(func() { in.kicks = make(chan string, 4096) })
}

// Accept records a newInstance for instance id unless its order is already recorded. retry reports that an
// earlier call recorded it; dispatched that the workflow's start was already confirmed.
func (in *Inbox) Accept(ctx context.Context, id string, c NewInstanceCall) (retry, dispatched bool, err error) {
	var at *time.Time
	err = in.Pool.QueryRow(ctx, `
		INSERT INTO koogallery_inbox (instance_id, order_id, order_line_id, business_id, test_flag, received_at, next_attempt_at)
		VALUES ($1, $2, $3, $4, $5, $6, $6::timestamptz + $7::interval)
		ON CONFLICT (instance_id) DO UPDATE SET instance_id = EXCLUDED.instance_id
		RETURNING xmax <> 0, dispatched_at`,
		id, c.OrderID, c.OrderLineID, c.BusinessID, c.TestFlag, c.ReceivedAt.UTC(), in.grace()).Scan(&retry, &at)
	if err != nil {
		return false, false, fmt.Errorf("record newInstance %s in the inbox: %w", id, err)
	}
	return retry, at != nil, nil
}

// Kick asks this process's dispatchers to start the workflow now. It never blocks: when they are saturated the
// row waits for the re-driver.
func (in *Inbox) Kick(id string) {
	in.init()
	select {
	case in.kicks <- id:
	default:
	}
}

// Accepted reports which of ids newInstance accepted (recorded in the inbox, started or not).
func (in *Inbox) Accepted(ctx context.Context, ids []string) (map[string]bool, error) {
	rows, err := in.Pool.Query(ctx, `SELECT instance_id FROM koogallery_inbox WHERE instance_id = ANY($1)`, ids)
	if err != nil {
		return nil, fmt.Errorf("read the inbox: %w", err)
	}
	found, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("read the inbox: %w", err)
	}
	out := make(map[string]bool, len(found))
	for _, id := range found {
		out[id] = true
	}
	return out, nil
}

// Dispatch starts the workflow recorded for id and marks the row. It is safe to call concurrently and again.
func (in *Inbox) Dispatch(ctx context.Context, id string) error {
	var r InboxRow
	err := in.Pool.QueryRow(ctx, `SELECT instance_id, order_id, order_line_id, business_id, test_flag, received_at, dispatched_at,
			attempts
		FROM koogallery_inbox WHERE instance_id = $1`, id).
		Scan(&r.InstanceID, &r.OrderID, &r.OrderLineID, &r.BusinessID, &r.TestFlag, &r.ReceivedAt, &r.DispatchedAt,
			&r.Attempts)
	if err != nil {
		return fmt.Errorf("read inbox row %s: %w", id, err)
	}
	if r.DispatchedAt != nil {
		return nil
	}
	_, err = in.Client.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
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
		StaticSummary: startSummary(NewInstanceCall{OrderID: r.OrderID, OrderLineID: r.OrderLineID, TestFlag: r.TestFlag}),
	}, instance.WorkflowType, instance.StartInput{
		InstanceID: id, OrderID: r.OrderID, OrderLineID: r.OrderLineID, BusinessID: r.BusinessID,
		TestFlag: r.TestFlag, ReceivedAt: r.ReceivedAt.UTC(),
	})
	if err != nil && !isAlreadyStarted(err) {
		// Each failed start doubles the wait before the re-driver tries again (1 s, 2 s, 4 s, … at most a
		// minute), so rows pending through a Temporal outage do not retry it every tick.
		backoff := min(time.Duration(1<<min(r.Attempts, 6))*time.Second, time.Minute)
		if _, uerr := in.Pool.Exec(context.WithoutCancel(ctx), `UPDATE koogallery_inbox
			SET attempts = attempts + 1, last_error = $2, next_attempt_at = now() + $3::interval
			WHERE instance_id = $1 AND dispatched_at IS NULL`, id, err.Error(), backoff); uerr != nil {
			in.log().Error("record a failed dispatch", "instance_id", id, "err", uerr)
		}
		return fmt.Errorf("start the workflow of instance %s: %w", id, err)
	}
	// Started, or the instance's workflow already ran and closed: either way the order has its workflow.
	if _, err := in.Pool.Exec(context.WithoutCancel(ctx), `UPDATE koogallery_inbox
		SET dispatched_at = now(), attempts = attempts + 1 WHERE instance_id = $1 AND dispatched_at IS NULL`, id); err != nil {
		return fmt.Errorf("mark inbox row %s dispatched: %w", id, err)
	}
	return nil
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
				case id := <-in.kicks:
					dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
					if err := in.Dispatch(dctx, id); err != nil {
						in.log().Warn("newInstance dispatch failed; the re-driver retries", "instance_id", id, "err", err)
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
// not dispatch the same rows at once) and dispatches them; it returns how many started.
func (in *Inbox) Redrive(ctx context.Context, limit int) (int, error) {
	rows, err := in.Pool.Query(ctx, `UPDATE koogallery_inbox SET next_attempt_at = now() + interval '30 seconds'
		WHERE instance_id IN (SELECT instance_id FROM koogallery_inbox
			WHERE dispatched_at IS NULL AND next_attempt_at <= now()
			ORDER BY next_attempt_at LIMIT $1 FOR UPDATE SKIP LOCKED)
		RETURNING instance_id`, limit)
	if err != nil {
		return 0, fmt.Errorf("claim inbox rows: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return 0, fmt.Errorf("claim inbox rows: %w", err)
	}
	started := 0
	for _, id := range ids {
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

// List returns inbox rows for the console, pending ones first.
func (in *Inbox) List(ctx context.Context, pendingOnly bool, limit int) ([]InboxRow, error) {
	rows, err := in.Pool.Query(ctx, `SELECT instance_id, order_id, order_line_id, business_id, test_flag, received_at,
			dispatched_at, attempts, last_error, next_attempt_at
		FROM koogallery_inbox WHERE NOT $1 OR dispatched_at IS NULL
		ORDER BY dispatched_at IS NULL DESC, received_at DESC LIMIT $2`, pendingOnly, limit)
	if err != nil {
		return nil, fmt.Errorf("list the inbox: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (InboxRow, error) {
		var r InboxRow
		err := row.Scan(&r.InstanceID, &r.OrderID, &r.OrderLineID, &r.BusinessID, &r.TestFlag, &r.ReceivedAt,
			&r.DispatchedAt, &r.Attempts, &r.LastError, &r.NextAttempt)
		return r, err
	})
	if err != nil {
		return nil, fmt.Errorf("list the inbox: %w", err)
	}
	return out, nil
}
