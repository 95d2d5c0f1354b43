package ledger

import (
	"context"
	"fmt"
	"math/rand"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/kooflow/kooflow/internal/catalog"
	"github.com/kooflow/kooflow/internal/ledger/fixture"
	"github.com/kooflow/kooflow/internal/refusal"
	"github.com/kooflow/kooflow/internal/settlement"
	"github.com/kooflow/kooflow/internal/testenv"
)

// usageTerms add a pay-per-use product (general, 5 % fee) at 1.234567 yuan per unit to the test catalog.
func usageTerms() map[string]settlement.Terms {
	out := map[string]settlement.Terms{"METER": {Type: catalog.General, Rate: decimal.RequireFromString("0.05"),
		UnitPrice: decimal.RequireFromString("1.234567")}}
	for id, t := range terms {
		out[id] = t
	}
	return out
}

type usageLine struct {
	bill                       string
	month                      string
	quantity, unitPrice        decimal.Decimal
	revenue, fee, settlementAm decimal.Decimal
}

func usageLines(t *testing.T, s *Store) map[string]usageLine {
	t.Helper()
	rows, err := s.Pool.Query(context.Background(), `SELECT l.order_line_id, b.period, l.usage_month, l.usage_quantity::text,
			l.unit_price::text, l.revenue::text, l.platform_fee::text, l.settlement::text
		FROM settlement_lines l JOIN settlement_bills b USING (bill_id) WHERE l.order_type = 'USAGE'`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]usageLine{}
	for rows.Next() {
		var key, q, p, r, f, st string
		var l usageLine
		if err := rows.Scan(&key, &l.bill, &l.month, &q, &p, &r, &f, &st); err != nil {
			t.Fatal(err)
		}
		if err := decimals(&l.quantity, q, &l.unitPrice, p, &l.revenue, r, &l.fee, f, &l.settlementAm, st); err != nil {
			t.Fatal(err)
		}
		out[key] = l
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func wantUsageLine(t *testing.T, got map[string]usageLine, key, bill, month, qty, rev, fee, set string) {
	t.Helper()
	l, ok := got[key]
	if !ok {
		t.Fatalf("no usage line %s in %+v", key, got)
	}
	if l.bill != bill || l.month != month || !l.quantity.Equal(fixture.Amount(qty)) || !l.unitPrice.Equal(fixture.Amount("1.234567")) ||
		!l.revenue.Equal(fixture.Amount(rev)) || !l.fee.Equal(fixture.Amount(fee)) || !l.settlementAm.Equal(fixture.Amount(set)) {
		t.Fatalf("usage line %s = %+v, want bill %s month %s quantity %s revenue %s fee %s settlement %s",
			key, l, bill, month, qty, rev, fee, set)
	}
}

// Accepted usage is billed by the Beijing month of its window, once: a re-run of a closed period verifies the
// same bill, usage accepted after its month was billed is billed by the next bill as the difference, and usage
// not accepted, deducted from a package or of a dial-test instance is never billed.
func TestUsageIsBilledByConsumptionMonthOnce(t *testing.T) {
	pool := testenv.Pool(t)
	ctx := context.Background()
	s := &Store{Pool: pool}
	ut := usageTerms()
	for _, in := range []settlement.InstanceState{{ID: "P1"}, {ID: "T1", TestFlag: true}} {
		if err := fixture.Instance(ctx, pool, in, "METER"); err != nil {
			t.Fatal(err)
		}
	}
	use := func(inst string, hour time.Time, rev int, value, status, pkg string) {
		t.Helper()
		if err := fixture.Usage(ctx, pool, inst, hour, rev, value, status, pkg); err != nil {
			t.Fatal(err)
		}
	}
	utc := func(m time.Month, d, h int) time.Time { return time.Date(2026, m, d, h, 0, 0, 0, time.UTC) }
	use("P1", utc(9, 30, 15), 1, "100.1234", "accepted", "") // 2026-09-30 23:00 Beijing: September
	use("P1", utc(9, 30, 16), 1, "50.5", "accepted", "")     // 2026-10-01 00:00 Beijing: October
	use("P1", utc(10, 15, 3), 1, "40", "accepted", "")
	use("P1", utc(10, 15, 3), 2, "9.3766", "accepted", "")   // a later revision of the same window
	use("P1", utc(10, 16, 3), 1, "1000", "pending", "")      // not accepted (yet): not billed
	use("P1", utc(10, 17, 3), 1, "7", "refused", "")         // never charged by the marketplace
	use("P1", utc(10, 18, 3), 1, "300", "accepted", "PKG-1") // deducted from a package: paid with it
	use("T1", utc(9, 10, 3), 1, "10000", "accepted", "")     // dial test

	bills := closePeriodTerms(t, s, ut, "2026-09", "0", 10, catalog.General)
	if b := bills[0]; b.Status != StatusFinal || b.LineCount != 1 || !b.Settlement.Equal(fixture.Amount("117.43")) {
		t.Fatalf("September: %+v", b)
	}
	got := usageLines(t, s)
	// 100.1234 × 1.234567 = 123.6090455678 → 123.61; fee 6.1805 → 6.18
	wantUsageLine(t, got, "usage:P1:2026-09:2026-09", "2026-09", "2026-09", "100.1234", "123.61", "6.18", "117.43")
	if len(got) != 1 {
		t.Fatalf("September billed %d usage lines, want 1: %+v", len(got), got)
	}

	// A re-run of the closed period verifies the same bill and writes nothing.
	again := closePeriodTerms(t, s, ut, "2026-09", "0", 10, catalog.General)
	if again[0].ContentHash != bills[0].ContentHash || again[0].LineCount != 1 {
		t.Fatalf("re-run: %+v, first run %+v", again[0], bills[0])
	}
	if n := len(usageLines(t, s)); n != 1 {
		t.Fatalf("re-run left %d usage lines", n)
	}

	// September usage the marketplace accepted after September was billed goes into October's bill.
	use("P1", utc(9, 20, 3), 1, "2.5", "accepted", "")
	// A close interrupted after its batches and re-run by a new run computes the draft again from scratch.
	plan, err := s.Prepare(ctx, CloseRequest{Period: settlement.MustPeriod("2026-10"), Types: []catalog.ProductType{catalog.General},
		WorkflowID: "settlement/2026-10", RunID: "interrupted", Threshold: decimal.Zero, BatchSize: 10, Terms: ut})
	if err != nil {
		t.Fatal(err)
	}
	for r, err := s.ApplyNextBatch(ctx, plan.CloseID); !r.Done; r, err = s.ApplyNextBatch(ctx, plan.CloseID) {
		if err != nil {
			t.Fatal(err)
		}
	}
	bills = closePeriodTerms(t, s, ut, "2026-10", "0", 10, catalog.General)
	if b := bills[0]; b.Status != StatusFinal || b.LineCount != 2 || !b.Revenue.Equal(fixture.Amount("126.39")) ||
		!b.Settlement.Equal(fixture.Amount("120.08")) {
		t.Fatalf("October: %+v", b)
	}
	got = usageLines(t, s)
	// 2.5 × 1.234567 = 3.0864175 → 3.09; fee 0.1545 → 0.15
	wantUsageLine(t, got, "usage:P1:2026-09:2026-10", "2026-10", "2026-09", "2.5", "3.09", "0.15", "2.94")
	// 50.5 + 40 + 9.3766 = 99.8766 × 1.234567 = 123.3043544322 → 123.30; fee 6.165 → 6.16 (half to even)
	wantUsageLine(t, got, "usage:P1:2026-10:2026-10", "2026-10", "2026-10", "99.8766", "123.30", "6.16", "117.14")
	if len(got) != 3 {
		t.Fatalf("%d usage lines after October, want 3: %+v", len(got), got)
	}
	// Everything accepted outside packages is billed, exactly once, to 4 decimals.
	var billed, accepted string
	if err := pool.QueryRow(ctx, `SELECT (SELECT sum(usage_quantity) FROM settlement_lines WHERE instance_id = 'P1')::text,
			(SELECT sum(value) FROM usage_pushes WHERE instance_id = 'P1' AND status = 'accepted' AND package_instance_id = '')::text`).
		Scan(&billed, &accepted); err != nil {
		t.Fatal(err)
	}
	if !fixture.Amount(billed).Equal(fixture.Amount("202.5000")) || !fixture.Amount(billed).Equal(fixture.Amount(accepted)) {
		t.Fatalf("billed %s units, accepted %s", billed, accepted)
	}
	if _, err := s.Verify(ctx, settlement.MustPeriod("2026-10"), []catalog.ProductType{catalog.General}); err != nil {
		t.Fatalf("verify October: %v", err)
	}

	// The explanation of a usage line says what it bills; the instance's order lists its usage lines.
	cat, err := catalog.Parse(catalog.DevCatalog)
	if err != nil {
		t.Fatal(err)
	}
	es, err := s.Explain(ctx, "first-P1", "usage:P1:2026-10:2026-10", utc(11, 10, 0), cat)
	if err != nil {
		t.Fatal(err)
	}
	if len(es) != 1 || es[0].Settled == nil || es[0].Settled.Period != "2026-10" || es[0].Settled.Line.Usage == nil ||
		!strings.Contains(es[0].Summary, "99.8766 units × 1.234567 yuan = revenue 123.30") {
		t.Fatalf("explanation of the October usage line: %+v", es)
	}
	if _, err := s.Explain(ctx, "first-P1", "usage:P1:2026-08:2026-08", utc(11, 10, 0), cat); err == nil {
		t.Fatal("a usage line never billed was explained")
	} else if r, ok := refusal.As(err); !ok || r.Code != CodeNotFound {
		t.Fatalf("explaining a usage line never billed: %v", err)
	}
	if err := fixture.Order(ctx, pool, settlement.OrderRow{Key: settlement.Key{OrderID: "first-P1", OrderLineID: "first-P1"},
		InstanceID: "P1", OrderType: "NEW", ProductID: "METER", PaidAmount: decimal.Zero, ListAmount: decimal.Zero,
		EffectiveAt: fixture.Beijing("2026-09-01 00:00")}); err != nil {
		t.Fatal(err)
	}
	if es, err = s.Explain(ctx, "first-P1", "", utc(11, 10, 0), cat); err != nil {
		t.Fatal(err)
	}
	if len(es) != 1 || len(es[0].Usage) != 3 || es[0].Usage[0].Line.Usage.Month != "2026-09" {
		t.Fatalf("the order's explanation lists %d usage lines: %+v", len(es[0].Usage), es)
	}

	// The estimate of the running month includes its usage so far.
	use("P1", utc(11, 2, 3), 1, "10", "accepted", "")
	est, err := s.Estimate(ctx, EstimateRequest{Period: settlement.MustPeriod("2026-11"), AsOf: utc(11, 10, 0), Terms: ut,
		Threshold: decimal.Zero})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range est.Types {
		if e.ProductType != catalog.General {
			continue
		}
		// 10 × 1.234567 = 12.34567 → 12.35; fee 0.6175 → 0.62. The other line is the instance's order (0.00).
		if e.UsageLines != 1 || e.Lines != 2 || !e.UsageQuantity.Equal(fixture.Amount("10")) ||
			!e.Revenue.Equal(fixture.Amount("12.35")) || !e.Settlement.Equal(fixture.Amount("11.73")) {
			t.Fatalf("November estimate: %+v", e)
		}
		return
	}
	t.Fatalf("no general estimate in %+v", est)
}

// Usage below the threshold is carried forward like every line: nothing is settled, and the next bill that
// reaches the threshold bills each month's usage as its own line.
func TestUsageIsCarriedForwardBelowTheThreshold(t *testing.T) {
	pool := testenv.Pool(t)
	ctx := context.Background()
	s := &Store{Pool: pool}
	ut := usageTerms()
	if err := fixture.Instance(ctx, pool, settlement.InstanceState{ID: "P2"}, "METER"); err != nil {
		t.Fatal(err)
	}
	// 500 × 1.234567 = 617.2835 → 617.28; fee 30.864 → 30.86; settlement 586.42 < 1000
	if err := fixture.Usage(ctx, pool, "P2", time.Date(2026, 8, 10, 0, 0, 0, 0, time.UTC), 1, "500", "accepted", ""); err != nil {
		t.Fatal(err)
	}
	bills := closePeriodTerms(t, s, ut, "2026-08", "1000", 10, catalog.General)
	if b := bills[0]; b.Status != StatusCarriedForward || b.CarriedLineCount != 1 || !b.CarriedTotal.Equal(fixture.Amount("586.42")) {
		t.Fatalf("August: %+v", b)
	}
	if n := len(usageLines(t, s)); n != 0 {
		t.Fatalf("a carried-forward bill kept %d usage lines", n)
	}
	// 400 × 1.234567 = 493.8268 → 493.83; fee 24.6915 → 24.69; settlement 469.14; 586.42 + 469.14 = 1055.56
	if err := fixture.Usage(ctx, pool, "P2", time.Date(2026, 9, 10, 0, 0, 0, 0, time.UTC), 1, "400", "accepted", ""); err != nil {
		t.Fatal(err)
	}
	bills = closePeriodTerms(t, s, ut, "2026-09", "1000", 10, catalog.General)
	if b := bills[0]; b.Status != StatusFinal || b.LineCount != 2 || !b.AmountDue.Equal(fixture.Amount("1055.56")) {
		t.Fatalf("September: %+v", b)
	}
	got := usageLines(t, s)
	wantUsageLine(t, got, "usage:P2:2026-08:2026-09", "2026-09", "2026-08", "500", "617.28", "30.86", "586.42")
	wantUsageLine(t, got, "usage:P2:2026-09:2026-09", "2026-09", "2026-09", "400", "493.83", "24.69", "469.14")
}

// The close's usage arithmetic in SQL gives settlement.ComputeUsage's answers, to the fen, over random quantities
// (4 decimals) and unit prices (6 decimals), for both product types, half-cent cases included.
func TestUsageAmountsInSQLMatchGo(t *testing.T) {
	pool := testenv.Pool(t)
	ctx := context.Background()
	s := &Store{Pool: pool}
	r := rand.New(rand.NewSource(12))
	ut := map[string]settlement.Terms{}
	type want struct {
		quantity decimal.Decimal
		amounts  settlement.Amounts
	}
	wants := map[string]want{}
	for i := 0; i < 200; i++ {
		product := fmt.Sprintf("PPU-%d", i)
		tt := settlement.Terms{Type: catalog.General, Rate: decimal.New(int64(r.Intn(31)), -2),
			UnitPrice: decimal.New(int64(1+r.Intn(9_999_999)), -6)}
		if i%2 == 1 {
			tt = settlement.Terms{Type: catalog.JointOperation, Rate: decimal.New(int64(50+r.Intn(41)), -2), UnitPrice: tt.UnitPrice}
		}
		if i%10 == 0 {
			tt.UnitPrice = decimal.RequireFromString("0.5") // with an odd number of hundredths below: half a cent
		}
		ut[product] = tt
		inst := fmt.Sprintf("R%03d", i)
		if err := fixture.Instance(ctx, pool, settlement.InstanceState{ID: inst}, product); err != nil {
			t.Fatal(err)
		}
		total := decimal.Zero
		hours := 1 + r.Intn(4)
		if i%10 == 0 {
			hours = 1
		}
		for h := 0; h < hours; h++ {
			v := decimal.New(int64(1+r.Intn(99_999_999)), -4)
			if i%10 == 0 {
				v = decimal.New(int64(2*r.Intn(5000)+1), -2) // k × 0.01 with k odd: × 0.5 ends in exactly 0.005
			}
			if err := fixture.Usage(ctx, pool, inst, time.Date(2026, 10, 1+h, 3, 0, 0, 0, time.UTC), 1, v.String(), "accepted", ""); err != nil {
				t.Fatal(err)
			}
			total = total.Add(v)
		}
		wants["usage:"+inst+":2026-10:2026-10"] = want{total, settlement.ComputeUsage(total, tt.UnitPrice, tt)}
	}
	closePeriodTerms(t, s, ut, "2026-10", "0", 7)
	got := usageLines(t, s)
	if len(got) != len(wants) {
		t.Fatalf("%d usage lines, want %d", len(got), len(wants))
	}
	for key, w := range wants {
		l := got[key]
		if !l.quantity.Equal(w.quantity) || !l.revenue.Equal(w.amounts.Revenue) || !l.fee.Equal(w.amounts.PlatformFee) ||
			!l.settlementAm.Equal(w.amounts.Settlement) {
			t.Errorf("%s: SQL %s → %s %s %s, Go %s → %s %s %s", key, l.quantity, l.revenue, l.fee, l.settlementAm,
				w.quantity, w.amounts.Revenue, w.amounts.PlatformFee, w.amounts.Settlement)
		}
	}
}
