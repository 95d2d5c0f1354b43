package store_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/kooflow/kooflow/internal/store"
)

func addInstance(t *testing.T, s *store.Store, id, lifecycle, mode string) {
	t.Helper()
	if _, err := s.Pool.Exec(context.Background(), `INSERT INTO instances (instance_id, workflow_id, order_id, order_line_id,
		lifecycle, charging_mode) VALUES ($1, 'instance/' || $1, 'O-' || $1, 'O-' || $1 || '-000001', $2, $3)`, id, lifecycle, mode); err != nil {
		t.Fatal(err)
	}
}

func usageRow(id, inst, value string, at time.Time) store.UsageRow {
	return store.UsageRow{RecordID: id, InstanceID: inst, Value: decimal.RequireFromString(value), Hour: at.Truncate(time.Hour), Begin: at, End: at}
}

func TestStoreUsageOneStatement(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	addInstance(t, s, "ppu", "ACTIVE", store.ChargingOnDemand)
	addInstance(t, s, "pkg", "FROZEN", store.ChargingOnDemandPkg)
	addInstance(t, s, "period", "ACTIVE", "PERIOD")
	addInstance(t, s, "new", "PROVISIONING", "")
	addInstance(t, s, "gone", "RELEASED", store.ChargingOnDemand)
	at := time.Date(2026, 11, 29, 9, 15, 0, 123456000, time.UTC)
	got, err := s.StoreUsage(ctx, []store.UsageRow{
		usageRow("r1", "ppu", "1.2345", at), usageRow("r2", "pkg", "2", at), usageRow("r3", "period", "1", at),
		usageRow("r4", "new", "1", at), usageRow("r5", "gone", "1", at), usageRow("r6", "nowhere", "1", at),
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		inserted, found bool
		mode            string
	}{{true, true, store.ChargingOnDemand}, {true, true, store.ChargingOnDemandPkg}, {false, true, "PERIOD"},
		{false, true, ""}, {false, true, store.ChargingOnDemand}, {false, false, ""}}
	for i, w := range want {
		if g := got[i]; g.Inserted != w.inserted || g.InstanceFound != w.found || g.ChargingMode != w.mode || g.Existing != nil {
			t.Errorf("row %d: %+v, want %+v", i, g, w)
		}
	}
	if got[4].Lifecycle != "RELEASED" {
		t.Errorf("released instance reported as %q", got[4].Lifecycle)
	}
	// Again, with r1 changed: nothing is inserted and both stored rows come back as they were stored.
	again, err := s.StoreUsage(ctx, []store.UsageRow{usageRow("r1", "ppu", "9", at), usageRow("r2", "pkg", "2", at)})
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range []string{"1.2345", "2"} {
		e := again[i].Existing
		if again[i].Inserted || e == nil || !e.Value.Equal(decimal.RequireFromString(v)) || !e.Begin.Equal(at) || !e.End.Equal(at) ||
			!e.Hour.Equal(at.Truncate(time.Hour)) || e.InstanceID != []string{"ppu", "pkg"}[i] {
			t.Errorf("again %d: %+v %+v", i, again[i], e)
		}
	}
	var n int
	var sum decimal.Decimal
	if err := s.Pool.QueryRow(ctx, `SELECT count(*), sum(value) FROM usage_records`).Scan(&n, &sum); err != nil || n != 2 ||
		!sum.Equal(decimal.RequireFromString("3.2345")) {
		t.Fatalf("stored %d rows, sum %s (%v)", n, sum, err)
	}
}

// TestStoreUsageConcurrentRepeats: the same records sent by several callers at once are stored once, and every
// caller learns each record is stored (by itself or by another).
func TestStoreUsageConcurrentRepeats(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	addInstance(t, s, "ppu", "ACTIVE", store.ChargingOnDemand)
	at := time.Date(2026, 11, 29, 9, 0, 0, 0, time.UTC)
	var rows []store.UsageRow
	for i := range 500 {
		rows = append(rows, usageRow(fmt.Sprintf("c-%03d", i), "ppu", "0.5", at))
	}
	var wg sync.WaitGroup
	inserted := make([]int, 6)
	errs := make([]error, 6)
	for c := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out, err := s.StoreUsage(ctx, rows)
			errs[c] = err
			for _, o := range out {
				switch {
				case o.Inserted:
					inserted[c]++
				case o.Existing == nil:
					errs[c] = fmt.Errorf("a row neither inserted nor found stored: %+v", o)
				}
			}
		}()
	}
	wg.Wait()
	total := 0
	for c := range 6 {
		if errs[c] != nil {
			t.Fatal(errs[c])
		}
		total += inserted[c]
	}
	var n int
	if err := s.Pool.QueryRow(ctx, `SELECT count(*) FROM usage_records`).Scan(&n); err != nil || n != 500 || total != 500 {
		t.Fatalf("stored %d rows, %d reported inserted (%v)", n, total, err)
	}
}

// TestPayPerUseItemsShareTheirOrderLine: two instances of one pay-per-use order line (one per billing item) record
// the line once, without the conflict a period line recorded for two instances is.
func TestPayPerUseItemsShareTheirOrderLine(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	apply := func(id, product, mode string) error {
		return s.Apply(ctx, store.Write{Summary: "purchase " + id,
			Instance: &store.InstanceRow{InstanceID: id, WorkflowID: "instance/" + id, OrderID: "CS-PPU", OrderLineID: "CS-PPU-000001",
				ProductID: product, ChargingMode: mode, Lifecycle: "PROVISIONING", Supervision: "NOT_INVOLVED", Version: 1},
			Orders: []store.OrderRow{{OrderID: "CS-PPU", OrderLineID: "CS-PPU-000001", InstanceID: id, OrderType: "NEW",
				ProductID: product, ChargingMode: mode}}})
	}
	if err := apply("ppu-a", "P-A", store.ChargingOnDemand); err != nil {
		t.Fatal(err)
	}
	if err := apply("ppu-b", "P-B", store.ChargingOnDemand); err != nil {
		t.Fatalf("second billing item of the line: %v", err)
	}
	var instances, orders int
	if err := s.Pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM instances WHERE order_id = 'CS-PPU'),
		(SELECT count(*) FROM orders WHERE order_id = 'CS-PPU')`).Scan(&instances, &orders); err != nil || instances != 2 || orders != 1 {
		t.Fatalf("%d instances, %d order rows (%v)", instances, orders, err)
	}
	// A period line claimed by another instance is still a conflict for a person.
	if err := apply("period-x", "P-X", "PERIOD"); err == nil {
		t.Fatal("a period order line recorded for a second instance")
	}
}
