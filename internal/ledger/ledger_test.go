package ledger

import (
	"context"
	"fmt"
	"math/rand"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/shopspring/decimal"

	"github.com/kooflow/kooflow/internal/catalog"
	"github.com/kooflow/kooflow/internal/ledger/fixture"
	"github.com/kooflow/kooflow/internal/refusal"
	"github.com/kooflow/kooflow/internal/settlement"
	"github.com/kooflow/kooflow/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

var terms = map[string]settlement.Terms{
	"CRM":       {Type: catalog.General, Rate: decimal.RequireFromString("0.05")},
	"ANALYTICS": {Type: catalog.JointOperation, Rate: decimal.RequireFromString("0.70")},
}

func product(id string) (settlement.Terms, bool) { t, ok := terms[id]; return t, ok }

// closePeriod runs a close the way the workflow does: prepare, apply every batch, finalize.
func closePeriod(t *testing.T, s *Store, period string, threshold string, batchSize int, types ...catalog.ProductType) []BillSummary {
	t.Helper()
	return closePeriodTerms(t, s, terms, period, threshold, batchSize, types...)
}

// closePeriodTerms is closePeriod with the given catalog terms.
func closePeriodTerms(t *testing.T, s *Store, terms map[string]settlement.Terms, period string, threshold string, batchSize int,
	types ...catalog.ProductType) []BillSummary {
	t.Helper()
	ctx := context.Background()
	plan, err := s.Prepare(ctx, CloseRequest{Period: settlement.MustPeriod(period), Types: types, WorkflowID: "settlement/" + period,
		RunID: fmt.Sprintf("run-%s-%d", period, time.Now().UnixNano()), Threshold: decimal.RequireFromString(threshold),
		BatchSize: batchSize, Terms: terms})
	if err != nil {
		t.Fatalf("prepare %s: %v", period, err)
	}
	if plan.CloseID == 0 {
		bills, err := s.Verify(ctx, settlement.MustPeriod(period), plan.Verify)
		if err != nil {
			t.Fatalf("verify %s: %v", period, err)
		}
		return bills
	}
	for {
		r, err := s.ApplyNextBatch(ctx, plan.CloseID)
		if err != nil {
			t.Fatalf("batch: %v", err)
		}
		if r.Done {
			break
		}
	}
	bills, err := s.Finalize(ctx, plan.CloseID)
	if err != nil {
		t.Fatalf("finalize %s: %v", period, err)
	}
	return bills
}

type lineKey = settlement.Key

type storedLine struct {
	billPeriod  string
	productType string
	attributed  time.Time
	revenue     decimal.Decimal
	fee         decimal.Decimal
	settlement  decimal.Decimal
}

func storedLines(t *testing.T, pool *pgxpool.Pool) map[lineKey]storedLine {
	t.Helper()
	rows, err := pool.Query(context.Background(), `SELECT l.order_id, l.order_line_id, b.period, l.product_type, l.attributed_at,
		l.revenue::text, l.platform_fee::text, l.settlement::text FROM settlement_lines l JOIN settlement_bills b USING (bill_id)`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[lineKey]storedLine{}
	for rows.Next() {
		var k lineKey
		var l storedLine
		var rev, fee, set string
		if err := rows.Scan(&k.OrderID, &k.OrderLineID, &l.billPeriod, &l.productType, &l.attributed, &rev, &fee, &set); err != nil {
			t.Fatal(err)
		}
		l.revenue, l.fee, l.settlement = decimal.RequireFromString(rev), decimal.RequireFromString(fee), decimal.RequireFromString(set)
		out[k] = l
	}
	return out
}

// world is a random set of instances, orders and payments, kept in memory for the Go rules.
type world struct {
	instances []settlement.InstanceState
	rows      map[string][]settlement.OrderRow // by instance
	payments  map[string]settlement.Payment
}

func randomWorld(r *rand.Rand, n int) world {
	w := world{rows: map[string][]settlement.OrderRow{}, payments: map[string]settlement.Payment{}}
	base := time.Date(2023, 11, 20, 0, 0, 0, 0, time.UTC)
	randTime := func() *time.Time {
		if r.Intn(8) == 0 {
			return nil
		}
		t := base.Add(time.Duration(r.Intn(140*24)) * time.Hour).Add(time.Duration(r.Intn(3600)) * time.Second)
		return &t
	}
	sup := []string{"NOT_INVOLVED", "NOT_INVOLVED", "COMPLETED", "IN_SERVICE", "AWAITING_ACCEPTANCE"}
	types := []string{"NEW", "NEW", "RENEW", "RENEW", "CHANGE", "TRIAL", "TRIAL_TO_FORMAL"}
	products := []string{"CRM", "CRM", "ANALYTICS", "ANALYTICS", "UNKNOWN"}
	for i := 0; i < n; i++ {
		inst := settlement.InstanceState{ID: fmt.Sprintf("inst-%04d", i), Supervision: sup[r.Intn(len(sup))], TestFlag: r.Intn(25) == 0}
		w.instances = append(w.instances, inst)
		var charges []settlement.OrderRow
		for j := 0; j < 1+r.Intn(4); j++ {
			id := fmt.Sprintf("O%04d%d", i, j)
			paid := decimal.New(int64(r.Intn(300000)), -3) // up to 300 yuan with 3 decimals
			typ := types[r.Intn(len(types))]
			if typ == "TRIAL" {
				paid = decimal.Zero
			}
			row := settlement.OrderRow{Key: settlement.Key{OrderID: id, OrderLineID: id + "-1"}, InstanceID: inst.ID,
				OrderType: typ, ProductID: products[r.Intn(len(products))], SKUCode: "sku", PaidAmount: paid,
				ListAmount: paid, EffectiveAt: randTime(), TestFlag: r.Intn(30) == 0, Quantity: 1}
			charges = append(charges, row)
			switch r.Intn(6) {
			case 0:
				w.payments[id] = settlement.Payment{Credit: true}
			case 1:
				w.payments[id] = settlement.Payment{Credit: true, RepaidAt: randTime()}
			}
		}
		rows := append([]settlement.OrderRow(nil), charges...)
		for j := 0; j < r.Intn(3); j++ {
			orig := charges[r.Intn(len(charges))]
			amount := orig.PaidAmount.Neg()
			if r.Intn(2) == 0 {
				amount = decimal.New(-int64(r.Intn(100000)), -3)
			}
			refersTo := orig.OrderID
			if r.Intn(10) == 0 {
				refersTo = "MISSING-" + orig.OrderID
			}
			id := fmt.Sprintf("U%04d%d", i, j)
			typ := "UNSUBSCRIBE"
			if r.Intn(2) == 0 {
				typ = "REFUND"
			}
			rows = append(rows, settlement.OrderRow{Key: settlement.Key{OrderID: id, OrderLineID: id + "-1"}, InstanceID: inst.ID,
				OrderType: typ, PaidAmount: amount, RefersTo: refersTo, EffectiveAt: randTime(), TestFlag: r.Intn(30) == 0})
		}
		w.rows[inst.ID] = rows
	}
	return w
}

func (w world) insert(t *testing.T, pool *pgxpool.Pool) {
	t.Helper()
	ctx := context.Background()
	for _, inst := range w.instances {
		if err := fixture.Instance(ctx, pool, inst, ""); err != nil {
			t.Fatal(err)
		}
		for _, r := range w.rows[inst.ID] {
			if err := fixture.Order(ctx, pool, r); err != nil {
				t.Fatal(err)
			}
		}
	}
	for id, p := range w.payments {
		if _, err := pool.Exec(ctx, `INSERT INTO settlement_payments (order_id, credit, repaid_at, source, updated_by)
			VALUES ($1, $2, $3, 'console', 'test')`, id, p.Credit, p.RepaidAt); err != nil {
			t.Fatal(err)
		}
	}
}

// expect applies the Go rules to the world for a close ending at end, given what is settled already.
func (w world) expect(end time.Time, settled map[lineKey]storedLine, types []catalog.ProductType) map[lineKey]settlement.Verdict {
	out := map[lineKey]settlement.Verdict{}
	for _, inst := range w.instances {
		s := map[settlement.Key]settlement.SettledLine{}
		for _, r := range w.rows[inst.ID] {
			if l, ok := settled[r.Key]; ok {
				rate := terms["CRM"].Rate
				if catalog.ProductType(l.productType) == catalog.JointOperation {
					rate = terms["ANALYTICS"].Rate
				}
				s[r.Key] = settlement.SettledLine{Period: l.billPeriod, Type: catalog.ProductType(l.productType), Status: "final", Rate: rate}
			}
		}
		for _, v := range settlement.Evaluate(settlement.Input{End: end, Types: types, Instance: inst, Rows: w.rows[inst.ID],
			Settled: s, Payments: w.payments, Product: product}) {
			if v.Eligible {
				out[v.Row.Key] = v
			}
		}
	}
	return out
}

// TestSQLAppliesTheGoRules closes random data month after month with the SQL, in small batches, and checks every
// settled line against settlement.Evaluate on the same rows: same lines, same attribution, same amounts.
func TestSQLAppliesTheGoRules(t *testing.T) {
	pool := testenv.Pool(t)
	s := &Store{Pool: pool}
	seed := time.Now().UnixNano()
	t.Logf("seed %d", seed)
	w := randomWorld(rand.New(rand.NewSource(seed)), 150)
	w.insert(t, pool)

	settled := map[lineKey]storedLine{}
	for i, period := range []string{"2023-11", "2023-12", "2024-01", "2024-02", "2024-03"} {
		var types []catalog.ProductType
		if i == 2 {
			types = []catalog.ProductType{catalog.JointOperation} // one close for one product type only
		}
		p := settlement.MustPeriod(period)
		want := w.expect(p.End(), settled, types)

		est, err := s.Estimate(context.Background(), EstimateRequest{Period: p, AsOf: p.End(), Terms: terms, Threshold: decimal.Zero})
		if err != nil {
			t.Fatal(err)
		}
		closePeriod(t, s, period, "0", 7, types...)
		after := storedLines(t, pool)
		got := map[lineKey]storedLine{}
		for k, l := range after {
			if _, before := settled[k]; !before {
				got[k] = l
			}
		}
		if len(got) != len(want) {
			t.Errorf("%s: SQL settled %d lines, the rules %d", period, len(got), len(want))
		}
		totals := map[string]decimal.Decimal{}
		for k, v := range want {
			l, ok := got[k]
			if !ok {
				t.Errorf("%s: %s eligible by the rules (%s, attributed %v) but not settled", period, k, v.Row.OrderType, v.AttributedAt)
				continue
			}
			if l.billPeriod != period || l.productType != string(v.Terms.Type) || !l.attributed.Equal(*v.AttributedAt) ||
				!l.revenue.Equal(v.Amounts.Revenue) || !l.fee.Equal(v.Amounts.PlatformFee) || !l.settlement.Equal(v.Amounts.Settlement) {
				t.Errorf("%s: %s SQL %+v, rules %s %v %+v", period, k, l, v.Terms.Type, v.AttributedAt, v.Amounts)
			}
			totals[string(v.Terms.Type)] = totals[string(v.Terms.Type)].Add(v.Amounts.Settlement)
		}
		for k := range got {
			if _, ok := want[k]; !ok {
				t.Errorf("%s: %s settled by SQL but not eligible by the rules", period, k)
			}
		}
		for _, e := range est.Types {
			if len(types) > 0 && e.ProductType != types[0] {
				continue
			}
			if !e.Settlement.Equal(totals[string(e.ProductType)]) {
				t.Errorf("%s: estimate for %s is %s, the close settled %s", period, e.ProductType, e.Settlement, totals[string(e.ProductType)])
			}
		}
		for k, l := range got {
			settled[k] = l
		}
		t.Logf("%s: %d lines", period, len(got))
	}
	if len(settled) < 50 {
		t.Fatalf("only %d lines settled over five months: the random world is too sparse to test anything", len(settled))
	}
}

func TestRoundingInSQLMatchesGo(t *testing.T) {
	pool := testenv.Pool(t)
	r := rand.New(rand.NewSource(1))
	xs := []string{"0.125", "0.135", "-0.125", "-0.135", "2.675", "0.005", "-0.005", "1000.005", "1.9999", "-7.7750"}
	for i := 0; i < 2000; i++ {
		// Many exact halves: values with three decimals ending in 5, and products with rates.
		xs = append(xs, decimal.New(r.Int63n(2_000_000)-1_000_000, -3).String(),
			decimal.New(r.Int63n(200_000), -2).Mul(decimal.RequireFromString("0.05")).String(),
			decimal.New(r.Int63n(200_000), -2).Mul(decimal.RequireFromString("0.7")).String())
	}
	rows, err := pool.Query(context.Background(), `SELECT x::text, settlement_round(x::numeric)::text FROM unnest($1::text[]) x`, xs)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		var x, got string
		if err := rows.Scan(&x, &got); err != nil {
			t.Fatal(err)
		}
		if want := settlement.Round(decimal.RequireFromString(x)); !want.Equal(decimal.RequireFromString(got)) {
			t.Errorf("settlement_round(%s) = %s, settlement.Round = %s", x, got, want)
		}
		n++
	}
	if n != len(xs) {
		t.Fatalf("%d results for %d inputs", n, len(xs))
	}
}

func TestFinalBillsAndTheirLinesAreImmutable(t *testing.T) {
	pool := testenv.Pool(t)
	ctx := context.Background()
	s := &Store{Pool: pool}
	inst := settlement.InstanceState{ID: "inst-1"}
	eff := time.Date(2026, 9, 10, 0, 0, 0, 0, time.UTC)
	if err := fixture.Instance(ctx, pool, inst, "CRM"); err != nil {
		t.Fatal(err)
	}
	if err := fixture.Order(ctx, pool, settlement.OrderRow{Key: settlement.Key{OrderID: "O1", OrderLineID: "O1-1"}, InstanceID: "inst-1",
		OrderType: "NEW", ProductID: "CRM", PaidAmount: fixture.Amount("1200"), ListAmount: fixture.Amount("1200"), EffectiveAt: &eff}); err != nil {
		t.Fatal(err)
	}
	bills := closePeriod(t, s, "2026-09", "1000", 100)
	if bills[0].Status != StatusFinal || bills[0].LineCount != 1 {
		t.Fatalf("bills %+v", bills)
	}
	for _, q := range []string{
		`UPDATE settlement_lines SET settlement = 0`,
		`DELETE FROM settlement_lines`,
		`UPDATE settlement_bills SET amount_due = 0 WHERE status = 'final'`,
		`DELETE FROM settlement_bills WHERE status = 'final'`,
	} {
		if _, err := pool.Exec(ctx, q); err == nil {
			t.Errorf("%s: accepted on a final bill", q)
		}
	}
	// Settled once: a second insert of the same order line is refused by the key.
	_, err := pool.Exec(ctx, `INSERT INTO settlement_lines SELECT order_id, order_line_id, bill_id, instance_id, order_type, product_id,
		sku_code, refers_to_order_id, attributed_at, paid_amount, list_amount, product_type, rate, revenue, platform_fee, settlement
		FROM settlement_lines`)
	if err == nil {
		t.Error("an order line was settled twice")
	}
}

func TestPeriodsCloseInOrderAndNotBeforeTheyEnd(t *testing.T) {
	pool := testenv.Pool(t)
	ctx := context.Background()
	s := &Store{Pool: pool}
	closePeriod(t, s, "2026-09", "0", 100)
	_, err := s.Prepare(ctx, CloseRequest{Period: settlement.MustPeriod("2026-08"), RunID: "r1", WorkflowID: "w", Terms: terms})
	if r, ok := refusal.As(err); !ok || r.Code != CodeOutOfOrder {
		t.Fatalf("closing August after September: %v", err)
	}
	now := time.Date(2026, 10, 15, 0, 0, 0, 0, time.UTC)
	_, err = s.Prepare(ctx, CloseRequest{Period: settlement.MustPeriod("2026-10"), RunID: "r2", WorkflowID: "w", Terms: terms, Now: now})
	if r, ok := refusal.As(err); !ok || r.Code != CodePeriodNotEnded {
		t.Fatalf("closing the running month: %v", err)
	}
	var n int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM settlement_bills`).Scan(&n); err != nil || n != 2 {
		t.Fatalf("refusals changed the bills: %d %v", n, err)
	}
}

func TestVerifyDetectsAChangedLine(t *testing.T) {
	pool := testenv.Pool(t)
	ctx := context.Background()
	s := &Store{Pool: pool}
	eff := time.Date(2026, 9, 10, 0, 0, 0, 0, time.UTC)
	for i := 0; i < 3; i++ {
		id := fmt.Sprintf("inst-%d", i)
		if err := fixture.Instance(ctx, pool, settlement.InstanceState{ID: id}, "CRM"); err != nil {
			t.Fatal(err)
		}
		o := fmt.Sprintf("O%d", i)
		if err := fixture.Order(ctx, pool, settlement.OrderRow{Key: settlement.Key{OrderID: o, OrderLineID: o + "-1"}, InstanceID: id,
			OrderType: "NEW", ProductID: "CRM", PaidAmount: fixture.Amount("500.125"), ListAmount: fixture.Amount("600"), EffectiveAt: &eff}); err != nil {
			t.Fatal(err)
		}
	}
	first := closePeriod(t, s, "2026-09", "1000", 2)
	again := closePeriod(t, s, "2026-09", "1000", 2) // a re-run verifies
	if first[0].ContentHash == "" || first[0].ContentHash != again[0].ContentHash {
		t.Fatalf("re-run hash %q, first %q", again[0].ContentHash, first[0].ContentHash)
	}
	// Change one figure behind the ledger's back (the immutability trigger switched off): Verify must notice.
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{`ALTER TABLE settlement_lines DISABLE TRIGGER USER`,
		`UPDATE settlement_lines SET list_amount = 600.001 WHERE order_id = 'O1'`,
		`ALTER TABLE settlement_lines ENABLE TRIGGER USER`} {
		if _, err := tx.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	_, err = s.Verify(ctx, settlement.MustPeriod("2026-09"), []catalog.ProductType{catalog.General})
	if r, ok := refusal.As(err); !ok || r.Code != CodeContentChanged {
		t.Fatalf("verify after tampering: %v", err)
	}
}

func TestCarryForwardAndAdjustments(t *testing.T) {
	pool := testenv.Pool(t)
	ctx := context.Background()
	s := &Store{Pool: pool}
	add := func(inst, order, paid string, eff time.Time) {
		t.Helper()
		if err := fixture.Instance(ctx, pool, settlement.InstanceState{ID: inst}, "ANALYTICS"); err != nil {
			t.Fatal(err)
		}
		if err := fixture.Order(ctx, pool, settlement.OrderRow{Key: settlement.Key{OrderID: order, OrderLineID: order + "-1"}, InstanceID: inst,
			OrderType: "NEW", ProductID: "ANALYTICS", PaidAmount: fixture.Amount(paid), ListAmount: fixture.Amount(paid), EffectiveAt: &eff}); err != nil {
			t.Fatal(err)
		}
	}
	add("i1", "O1", "1000", time.Date(2026, 8, 5, 0, 0, 0, 0, time.UTC)) // 700 to the seller: below 1000
	bills := closePeriod(t, s, "2026-08", "1000", 10, catalog.JointOperation)
	if b := bills[0]; b.Status != StatusCarriedForward || b.LineCount != 0 || b.CarriedLineCount != 1 || !b.CarriedTotal.Equal(fixture.Amount("700")) {
		t.Fatalf("August: %+v", b)
	}
	// An adjustment recorded in September counts towards September's threshold and is included in its bill.
	if _, err := pool.Exec(ctx, `INSERT INTO settlement_adjustments (product_type, amount, reason, created_by, created_at)
		VALUES ('joint-operation', 250.00, 'August support credit', 'test', '2026-09-02T00:00:00Z')`); err != nil {
		t.Fatal(err)
	}
	add("i2", "O2", "100", time.Date(2026, 9, 5, 0, 0, 0, 0, time.UTC)) // +70: 700 + 70 + 250 = 1020
	bills = closePeriod(t, s, "2026-09", "1000", 10, catalog.JointOperation)
	b := bills[0]
	if b.Status != StatusFinal || b.LineCount != 2 || !b.Settlement.Equal(fixture.Amount("770")) || b.AdjustmentCount != 1 ||
		!b.AmountDue.Equal(fixture.Amount("1020")) {
		t.Fatalf("September: %+v", b)
	}
	lines := storedLines(t, pool)
	if lines[settlement.Key{OrderID: "O1", OrderLineID: "O1-1"}].billPeriod != "2026-09" {
		t.Fatalf("the carried line was not settled in September: %+v", lines)
	}
	// The adjustment is part of a final bill now: it cannot be edited.
	if _, err := pool.Exec(ctx, `UPDATE settlement_adjustments SET amount = 1`); err == nil {
		t.Fatal("an included adjustment was edited")
	}
}
