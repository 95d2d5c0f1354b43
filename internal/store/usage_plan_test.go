package store_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/kooflow/kooflow/internal/store"
	"github.com/kooflow/kooflow/internal/testenv"
)

// TestStoreUsagePlanProbesByKey: the intake's statement reads stored records by primary key, and only for rows it
// did not insert, never by scanning usage_records, which grows by every record ever taken.
func TestStoreUsagePlanProbesByKey(t *testing.T) {
	pool := testenv.Pool(t)
	ctx := context.Background()
	if _, err := pool.Exec(ctx, `INSERT INTO instances (instance_id, workflow_id, order_id, order_line_id, lifecycle, charging_mode)
		SELECT 'p' || g, 'w' || g, 'o' || g, 'l' || g, 'ACTIVE', 'ON_DEMAND' FROM generate_series(0, 99) g`); err != nil {
		t.Fatal(err)
	}
	var distinct []string
	for i := range 100 {
		distinct = append(distinct, fmt.Sprintf("p%d", i))
	}
	for b := range 3 {
		n := 1000
		ids, insts, values := make([]string, n), make([]string, n), make([]string, n)
		hours, begins, ends := make([]time.Time, n), make([]time.Time, n), make([]time.Time, n)
		at := time.Date(2026, 11, 29, 9, 15, 0, 0, time.UTC)
		for i := range n {
			ids[i], insts[i], values[i] = fmt.Sprintf("b%d-%d", b, i), fmt.Sprintf("p%d", i%100), "1.5"
			hours[i], begins[i], ends[i] = at.Truncate(time.Hour), at, at
		}
		rows, err := pool.Query(ctx, "EXPLAIN (ANALYZE, COSTS OFF) "+store.StoreUsageSQL, ids, insts, values, hours, begins, ends, distinct)
		if err != nil {
			t.Fatal(err)
		}
		var plan []string
		for rows.Next() {
			var line string
			if err := rows.Scan(&line); err != nil {
				t.Fatal(err)
			}
			plan = append(plan, line)
		}
		rows.Close()
		text := strings.Join(plan, "\n")
		if strings.Contains(text, "Seq Scan on usage_records") || !strings.Contains(text, "Index Scan using usage_records_pkey") ||
			!strings.Contains(text, "One-Time Filter") {
			t.Fatalf("batch %d plan:\n%s", b, text)
		}
	}
}
