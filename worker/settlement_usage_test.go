package worker

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/kooflow/kooflow/internal/catalog"
	"github.com/kooflow/kooflow/internal/ledger"
	"github.com/kooflow/kooflow/internal/ledger/fixture"
	"github.com/kooflow/kooflow/internal/settlement"
)

// ppu is the development catalog's pay-per-use product: general, platform fee 5 %, 0.50 yuan per unit.
const ppu = "OFFI-KOOFLOW-API-PPU"

// TestUsageIsSettledThroughTheWorkflow closes two months with pay-per-use usage through the real workflow: usage
// is billed in the Beijing month its window starts in (the last hour of September UTC+8 and the first of October
// are 16:00 UTC apart by one hour), a re-run verifies the same bill, and dial tests are never billed.
func TestUsageIsSettledThroughTheWorkflow(t *testing.T) {
	r := startRig(t)
	ctx := context.Background()
	for _, in := range []settlement.InstanceState{{ID: "i-ppu"}, {ID: "i-ppu-test", TestFlag: true}} {
		if err := fixture.Instance(ctx, r.pool, in, ppu); err != nil {
			t.Fatal(err)
		}
	}
	r.order(t, "i-ppu-dial", "O-PPU-DIAL", "NEW", ppu, "0", fixture.Beijing("2026-09-01 10:00"), testOrder)
	use := func(inst string, utc string, value string) {
		t.Helper()
		h, err := time.Parse("2006-01-02 15:04", utc)
		if err != nil {
			t.Fatal(err)
		}
		if err := fixture.Usage(ctx, r.pool, inst, h, 1, value, "accepted", ""); err != nil {
			t.Fatal(err)
		}
	}
	use("i-ppu", "2026-09-12 02:00", "1200.0001")
	use("i-ppu", "2026-09-30 15:00", "1000")      // 23:00 on 30 September, Beijing time
	use("i-ppu", "2026-09-30 16:00", "3000.0003") // 00:00 on 1 October, Beijing time
	use("i-ppu-test", "2026-09-12 02:00", "10000")
	use("i-ppu-dial", "2026-09-12 02:00", "10000")

	sep, _ := r.close(t, "2026-09")
	gen := bill(t, sep, catalog.General)
	// 2200.0001 × 0.50 = 1100.00005 → 1100.00; fee 55.00; settlement 1045.00 (≥ 1000: billed)
	if gen.Status != ledger.StatusFinal || gen.LineCount != 1 || !gen.Revenue.Equal(amount("1100")) || !gen.AmountDue.Equal(amount("1045")) {
		t.Fatalf("general September: %+v", gen)
	}
	l, ok := r.lineKeys(t, gen)["first-i-ppu"]
	if !ok || l.OrderType != "USAGE" || l.OrderLineID != "usage:i-ppu:2026-09:2026-09" || l.Usage == nil ||
		!l.Usage.Quantity.Equal(amount("2200.0001")) || !l.Usage.UnitPrice.Equal(amount("0.5")) || l.Usage.Month != "2026-09" {
		t.Fatalf("September usage line: %+v (usage %+v)", l, l.Usage)
	}
	firstCSV := r.csv(t, gen)
	if !strings.Contains(string(firstCSV), "usage of 2026-09: 2200.0001 units × 0.5 yuan") {
		t.Fatalf("the export does not say what the usage line bills:\n%s", firstCSV)
	}

	again, _ := r.close(t, "2026-09")
	if g := bill(t, again, catalog.General); g.ContentHash != gen.ContentHash || !bytes.Equal(r.csv(t, g), firstCSV) {
		t.Fatalf("re-run changed the bill: hash %s → %s", gen.ContentHash, g.ContentHash)
	}

	oct, _ := r.close(t, "2026-10")
	gen10 := bill(t, oct, catalog.General)
	// 3000.0003 × 0.50 = 1500.00015 → 1500.00; fee 75.00; settlement 1425.00
	if gen10.Status != ledger.StatusFinal || gen10.LineCount != 1 || !gen10.AmountDue.Equal(amount("1425")) {
		t.Fatalf("general October: %+v", gen10)
	}
	var billed string
	var dial int
	if err := r.pool.QueryRow(ctx, `SELECT coalesce(sum(usage_quantity), 0)::text,
			(SELECT count(*) FROM settlement_lines WHERE instance_id IN ('i-ppu-test', 'i-ppu-dial'))
		FROM settlement_lines WHERE instance_id = 'i-ppu'`).Scan(&billed, &dial); err != nil {
		t.Fatal(err)
	}
	if !amount(billed).Equal(amount("5200.0004")) || dial != 0 {
		t.Fatalf("billed %s units of i-ppu (want 5200.0004) and %d lines of dial tests", billed, dial)
	}
}
