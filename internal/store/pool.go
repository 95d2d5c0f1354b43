package store

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// PoolOptions bound what one process's pool uses and waits for (docs/security.md, "What to set in production").
// Zero values keep what DATABASE_URL says (pool_max_conns, statement_timeout, …) or the defaults.
type PoolOptions struct {
	// MaxConns is the pool's size.
	MaxConns int32
	// AcquireTimeout bounds how long a query waits for a free connection, so a process whose pool is exhausted
	// fails fast instead of piling requests up until each one's own deadline.
	AcquireTimeout time.Duration
	// StatementTimeout and IdleInTransactionTimeout are set on every session (PostgreSQL's statement_timeout and
	// idle_in_transaction_session_timeout): a runaway query or a transaction left open cannot hold locks forever.
	StatementTimeout         time.Duration
	IdleInTransactionTimeout time.Duration
}

// OpenWith is Open with o applied over what url says.
func OpenWith(ctx context.Context, url string, o PoolOptions) (*pgxpool.Pool, error) {
	return open(ctx, url, func(cfg *pgxpool.Config) {
		if o.MaxConns > 0 {
			cfg.MaxConns = o.MaxConns
			cfg.MinConns = min(cfg.MinConns, o.MaxConns)
		}
		if o.StatementTimeout > 0 {
			cfg.ConnConfig.RuntimeParams["statement_timeout"] = strconv.FormatInt(o.StatementTimeout.Milliseconds(), 10)
		}
		if o.IdleInTransactionTimeout > 0 {
			cfg.ConnConfig.RuntimeParams["idle_in_transaction_session_timeout"] = strconv.FormatInt(o.IdleInTransactionTimeout.Milliseconds(), 10)
		}
		if o.AcquireTimeout > 0 {
			cfg.ConnConfig.Tracer = acquireTimeout{d: o.AcquireTimeout}
		}
	})
}

// acquireTimeout bounds a pool acquire: pgxpool acquires with the context its acquire tracer returns.
type acquireTimeout struct{ d time.Duration }

type acquireCancelKey struct{}

func (a acquireTimeout) TraceAcquireStart(ctx context.Context, _ *pgxpool.Pool, _ pgxpool.TraceAcquireStartData) context.Context {
	ctx, cancel := context.WithTimeoutCause(ctx, a.d, fmt.Errorf("no free database connection within %s (pool exhausted)", a.d))
	return context.WithValue(ctx, acquireCancelKey{}, cancel)
}

func (a acquireTimeout) TraceAcquireEnd(ctx context.Context, _ *pgxpool.Pool, _ pgxpool.TraceAcquireEndData) {
	if cancel, ok := ctx.Value(acquireCancelKey{}).(context.CancelFunc); ok {
		cancel()
	}
}

// TraceQueryStart and TraceQueryEnd make acquireTimeout a pgx.QueryTracer, the type the pool's tracer has.
func (a acquireTimeout) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	return ctx
}

func (a acquireTimeout) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}
