package store_test

import (
	"context"
	"database/sql"
	"testing"

	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"

	"github.com/kooflow/kooflow/internal/testenv"
	"github.com/kooflow/kooflow/migrations"
)

// TestPartitioningKeepsExistingMessages undoes the migration that partitions the message log (00020's Down), writes messages in three months, applies it again, and finds every row, in its month's
// partition, with ids continuing from the same sequence.
func TestPartitioningKeepsExistingMessages(t *testing.T) {
	ctx := context.Background()
	db, err := sql.Open("pgx", testenv.DatabaseURL(t))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	_ = stdlib.GetDefaultDriver()
	p, err := goose.NewProvider(goose.DialectPostgres, db, migrations.FS)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.ApplyVersion(ctx, 20, false); err != nil {
		t.Fatal(err)
	}
	var kind string
	if err := db.QueryRowContext(ctx, `SELECT relkind::text FROM pg_class WHERE relname = 'koogallery_messages'`).Scan(&kind); err != nil || kind != "r" {
		t.Fatalf("after Down the table is %q (%v), want a plain table", kind, err)
	}
	for _, at := range []string{"2026-09-30 23:59:59+00", "2026-10-01 00:00:00+00", "2026-11-15 08:00:00+08"} {
		if _, err := db.ExecContext(ctx, `INSERT INTO koogallery_messages (received_at, method, path, raw_body, verification,
			result_code, http_status, response_body, latency_us) VALUES ($1, 'POST', '/p', '\x7b7d', 'ok', '000000', 200, '', 1)`, at); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := p.ApplyVersion(ctx, 20, true); err != nil {
		t.Fatal(err)
	}
	rows, err := db.QueryContext(ctx, `SELECT tableoid::regclass::text, count(*), max(id) FROM koogallery_messages GROUP BY 1 ORDER BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	var maxID int64
	for rows.Next() {
		var part string
		var n int
		var id int64
		if err := rows.Scan(&part, &n, &id); err != nil {
			t.Fatal(err)
		}
		got[part] = n
		maxID = max(maxID, id)
	}
	if len(got) != 3 || got["koogallery_messages_2026_09"] != 1 || got["koogallery_messages_2026_10"] != 1 || got["koogallery_messages_2026_11"] != 1 {
		t.Fatalf("rows by partition %v", got)
	}
	var next int64
	if err := db.QueryRowContext(ctx, `INSERT INTO koogallery_messages (received_at, method, path, raw_body, verification,
		result_code, http_status, response_body, latency_us) VALUES (now(), 'POST', '/p', '', 'ok', '000000', 200, '', 1) RETURNING id`).Scan(&next); err != nil || next <= maxID {
		t.Fatalf("next id %d after %d: %v", next, maxID, err)
	}
	var kept int
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM pg_indexes WHERE tablename = 'koogallery_messages'`).Scan(&kept); err != nil || kept < 5 {
		t.Fatalf("indexes on the partitioned table: %d %v", kept, err)
	}
}
