// Package store owns kooflow's PostgreSQL tables other than the ledger's, and every query on them: the instance
// read model (instances, orders, instance_events, refunds, instance_alerts, instance_parkings), the production
// interface's inbox (koogallery_inbox), message log (koogallery_messages) and replay cache (koogallery_nonces),
// the joint-operation Kit rows (kit_tenants, kit_applications, kit_users, kit_orgs; written by api/kit, see
// kit.go), and the self-check rows (selfcheck_runs). Other packages call its typed methods; none writes SQL on these
// tables. It also opens the pool and applies the migrations.
//
// # One writer per instance
//
// Only an instance's own workflow writes that instance's read-model rows, through Store.Apply in a local
// activity, so rows never race. Every part of a write is idempotent (keyed inserts, a projection ordered by
// state_version), so a retried or late write leaves the rows as the newest state says.
//
// # The orders table: the contract between the lifecycle and settlement
//
// The lifecycle writes orders (Store.Apply, from the instance's workflow); settlement reads them and never
// writes them. It is the one exception to "every query here": a period's close decides millions of order lines
// in one set-based statement per batch (internal/ledger's candidatesSQL), which must join orders and instances
// with the ledger's own tables in a single query, so internal/ledger reads the columns below directly, read
// only. One row per marketplace order line, keyed (order_id, order_line_id), written once and never updated
// except effective_at:
//
//   - instance_id: the instance the line belongs to; an order line belongs to exactly one instance.
//   - order_type: the marketplace's orderType (NEW, RENEW, CHANGE, UNSUBSCRIBE, …) as recorded; a refund line
//     (unsubscribe, renewal refund) has paid_amount negative and refers_to_order_id naming the order it refunds.
//   - product_id, sku_code, charging_mode, period_type, period_number, quantity: what was bought.
//   - list_amount, paid_amount: exact NUMERIC yuan; paid_amount is what the customer paid (negative for refunds).
//   - placed_at: when the marketplace created the order; effective_at: when it started to count for settlement
//     (a purchase at provisioning, a supervised purchase at acceptance, a renewal when recorded), NULL until then,
//     set once; expire_time: the service end the order bought.
//   - test_flag: a dial-test order, never settled. raw: the marketplace's order as queried (credentials removed).
//
// Settlement also reads instances.supervision, instances.test_flag and the primary key order of instance_id
// (batches are ranges of instance ids). Changing any of these columns' meaning is a change of the contract.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"

	"github.com/kooflow/kooflow/internal/secrets"
	"github.com/kooflow/kooflow/migrations"
)

// Open connects a pool and checks the connection, so a wrong DATABASE_URL fails at start, not on first use.
func Open(ctx context.Context, url string) (*pgxpool.Pool, error) {
	return open(ctx, url, nil)
}

func open(ctx context.Context, url string, adjust func(*pgxpool.Config)) (*pgxpool.Pool, error) {
	cfg, err := poolConfig(url)
	if err != nil {
		return nil, err
	}
	if adjust != nil {
		adjust(cfg)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("create pool: %w", err)
	}
	pingCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := pool.Ping(pingCtx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("connect to PostgreSQL at %s: %w", redact(cfg.ConnConfig), err)
	}
	return pool, nil
}

// DefaultMaxConns is the pool size when DATABASE_URL sets no pool_max_conns. pgx's own default is the number of
// CPUs (at least 4), sized for CPU-bound work; kooflow's connections mostly wait on commits (every gateway call
// commits the nonce, the message and the inbox row before it answers), and with 4 connections on a two-core
// machine 200 newInstance calls/s queued behind each other for the pool until they hit their deadline. More
// connections let PostgreSQL group the commits' flushes.
const DefaultMaxConns = 24

// poolConfig parses DATABASE_URL and applies kooflow's session settings and pool default.
func poolConfig(url string) (*pgxpool.Config, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("parse DATABASE_URL: %w", err)
	}
	cfg.ConnConfig.RuntimeParams["timezone"] = "UTC"
	cfg.ConnConfig.RuntimeParams["application_name"] = "kooflow"
	if !strings.Contains(url, "pool_max_conns") {
		cfg.MaxConns = DefaultMaxConns
	}
	return cfg, nil
}

// Store runs the queries on the tables this package owns. It is safe for concurrent use.
type Store struct {
	Pool *pgxpool.Pool
	// Keys seal the credentials the store keeps (appInfo); storing or reading them fails without.
	Keys *secrets.Keyring
}

func redact(c *pgx.ConnConfig) string {
	return fmt.Sprintf("%s:%d/%s", c.Host, c.Port, c.Database)
}

// Migrate applies every pending migration embedded in the binary, under goose's own lock table, and returns the
// schema version reached.
func Migrate(ctx context.Context, url string, log *slog.Logger) (int64, error) {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return 0, fmt.Errorf("parse DATABASE_URL: %w", err)
	}
	db := stdlib.OpenDB(*cfg)
	defer db.Close()
	return migrateDB(ctx, db, log)
}

func migrateDB(ctx context.Context, db *sql.DB, log *slog.Logger) (int64, error) {
	provider, err := goose.NewProvider(goose.DialectPostgres, db, migrations.FS)
	if err != nil {
		return 0, fmt.Errorf("load migrations: %w", err)
	}
	results, err := provider.Up(ctx)
	for _, r := range results {
		log.Info("migration applied", "version", r.Source.Version, "file", r.Source.Path, "duration", r.Duration)
	}
	if err != nil {
		return 0, fmt.Errorf("apply migrations: %w", err)
	}
	v, err := provider.GetDBVersion(ctx)
	if err != nil {
		return 0, fmt.Errorf("read schema version: %w", err)
	}
	return v, nil
}

// IsUniqueViolation reports whether err is PostgreSQL's unique_violation, the signal every idempotent insert
// relies on.
func IsUniqueViolation(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "23505"
}
