package recon_test

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	emuledger "github.com/kooflow/kooflow/emulator/ledger"
	"github.com/kooflow/kooflow/internal/catalog"
	"github.com/kooflow/kooflow/internal/ledger"
	"github.com/kooflow/kooflow/internal/ledger/fixture"
	"github.com/kooflow/kooflow/internal/recon"
	"github.com/kooflow/kooflow/internal/settlement"
	"github.com/kooflow/kooflow/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

const (
	crm       = "CRM"       // general, 5 % platform fee
	analytics = "ANALYTICS" // joint-operation, 70 % to the seller
)

var kooflowTerms = map[string]settlement.Terms{
	crm:       {Type: catalog.General, Rate: decimal.RequireFromString("0.05")},
	analytics: {Type: catalog.JointOperation, Rate: decimal.RequireFromString("0.70")},
}

func testCatalog(t *testing.T) *catalog.Catalog {
	c, err := catalog.New([]catalog.Product{
		{ProductID: crm, Name: "CRM", Type: catalog.General, PlatformFeeRate: decimal.RequireFromString("0.05")},
		{ProductID: analytics, Name: "Analytics", Type: catalog.JointOperation, RevenueShare: decimal.RequireFromString("0.70")},
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// order is one order line of the month, as both sides know it.
type order struct {
	instance, id, typ, product, paid, refersTo string
	effective                                  *time.Time
	supervision                                string
	test, credit                               bool
	repaidAt                                   *time.Time
}

// month is a month of mixed orders: period orders, a refund in the guarantee period, supervised orders (one
// complete, one not), credit-paid orders with and without repayment, a dial test, a renewal effective next month
// and a joint-operation order.
var month = []order{
	{instance: "i-plain", id: "O-PLAIN", typ: "NEW", product: crm, paid: "1200", effective: fixture.Beijing("2026-10-05 10:00")},
	{instance: "i-refund", id: "O-REF", typ: "NEW", product: crm, paid: "1200", effective: fixture.Beijing("2026-10-05 10:00")},
	{instance: "i-refund", id: "U-REF", typ: "UNSUBSCRIBE", product: crm, paid: "-1200", refersTo: "O-REF", effective: fixture.Beijing("2026-10-07 10:00")},
	{instance: "i-partial", id: "O-PART", typ: "NEW", product: crm, paid: "999.90", effective: fixture.Beijing("2026-10-06 10:00")},
	{instance: "i-partial", id: "U-PART", typ: "UNSUBSCRIBE", product: crm, paid: "-300.05", refersTo: "O-PART", effective: fixture.Beijing("2026-10-09 10:00")},
	{instance: "i-sup-open", id: "O-SUPOPEN", typ: "NEW", product: crm, paid: "2000", supervision: "IN_SERVICE"},
	{instance: "i-sup-done", id: "O-SUPDONE", typ: "NEW", product: crm, paid: "3333.33", supervision: "COMPLETED", effective: fixture.Beijing("2026-10-20 10:00")},
	{instance: "i-credit-paid", id: "O-CREDITOK", typ: "NEW", product: crm, paid: "800", effective: fixture.Beijing("2026-10-11 10:00"), credit: true, repaidAt: fixture.Beijing("2026-10-15 09:00")},
	{instance: "i-credit-open", id: "O-CREDITNO", typ: "NEW", product: crm, paid: "700", effective: fixture.Beijing("2026-10-12 10:00"), credit: true},
	{instance: "i-dial", id: "O-DIAL", typ: "NEW", product: crm, paid: "100", effective: fixture.Beijing("2026-10-02 10:00"), test: true},
	{instance: "i-plain", id: "R-LATER", typ: "RENEW", product: crm, paid: "1200", effective: fixture.Beijing("2026-11-05 00:00")},
	{instance: "i-joint", id: "O-JOINT", typ: "NEW", product: analytics, paid: "1500.01", effective: fixture.Beijing("2026-10-08 10:00")},
}

const period = "2026-10"

type world struct {
	pool  *recon.Store
	bills *ledger.Store
	cat   *catalog.Catalog
}

// seed writes the month into kooflow's tables and closes the period the way the settlement workflow does.
func seed(t *testing.T) world {
	t.Helper()
	ctx := context.Background()
	pool := testenv.Pool(t)
	bills := &ledger.Store{Pool: pool}
	seen := map[string]bool{}
	for _, o := range month {
		if !seen[o.instance] {
			seen[o.instance] = true
			if err := fixture.Instance(ctx, pool, settlement.InstanceState{ID: o.instance, Supervision: o.supervision, TestFlag: o.test}, o.product); err != nil {
				t.Fatal(err)
			}
		}
		if err := fixture.Order(ctx, pool, settlement.OrderRow{Key: settlement.Key{OrderID: o.id, OrderLineID: o.id + "-1"},
			InstanceID: o.instance, OrderType: o.typ, ProductID: o.product, SKUCode: "S", PeriodType: "month", PeriodNum: 1,
			PaidAmount: fixture.Amount(o.paid), ListAmount: fixture.Amount(o.paid), RefersTo: o.refersTo, EffectiveAt: o.effective,
			TestFlag: o.test}); err != nil {
			t.Fatal(err)
		}
		if o.credit {
			if _, _, err := bills.SetPayment(ctx, o.id, true, o.repaidAt, "test", time.Now()); err != nil {
				t.Fatal(err)
			}
		}
	}
	plan, err := bills.Prepare(ctx, ledger.CloseRequest{Period: settlement.MustPeriod(period), WorkflowID: "settlement/" + period,
		RunID: fmt.Sprintf("run-%d", time.Now().UnixNano()), Threshold: decimal.NewFromInt(100), Terms: kooflowTerms})
	if err != nil {
		t.Fatal(err)
	}
	for {
		r, err := bills.ApplyNextBatch(ctx, plan.CloseID)
		if err != nil {
			t.Fatal(err)
		}
		if r.Done {
			break
		}
	}
	if _, err := bills.Finalize(ctx, plan.CloseID); err != nil {
		t.Fatal(err)
	}
	return world{pool: &recon.Store{Pool: pool}, bills: bills, cat: testCatalog(t)}
}

// marketplaceBill is the emulator's bill of the month, computed by its own rules from its own ledger.
func marketplaceBill(t *testing.T, productType string, faults emuledger.BillFaults) emuledger.Bill {
	t.Helper()
	l := emuledger.New()
	for _, o := range month {
		e := emuledger.Entry{OrderID: o.id, OrderLineID: o.id + "-1", OrderType: o.typ, InstanceID: o.instance, ProductID: o.product,
			Amount: fixture.Amount(o.paid), RefersTo: o.refersTo, EffectiveAt: o.effective, TestFlag: o.test, Credit: o.credit,
			RepaidAt: o.repaidAt, Supervision: o.supervision}
		if err := l.Add(e); err != nil {
			t.Fatal(err)
		}
	}
	b, err := l.Bill(emuledger.BillRequest{Period: period, End: settlement.MustPeriod(period).End(), ProductType: productType,
		Threshold: decimal.NewFromInt(100), Faults: faults, Terms: func(id string) (emuledger.Terms, bool) {
			switch id {
			case crm:
				return emuledger.Terms{Type: emuledger.TypeGeneral, Rate: decimal.RequireFromString("0.05")}, true
			case analytics:
				return emuledger.Terms{Type: emuledger.TypeJointOperation, Rate: decimal.RequireFromString("0.70")}, true
			}
			return emuledger.Terms{}, false
		}})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// recorder is an Alerter that keeps what it was told.
type recorder struct {
	mu   sync.Mutex
	open map[string]recon.Alert
}

func (r *recorder) Raise(_ context.Context, a recon.Alert) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.open == nil {
		r.open = map[string]recon.Alert{}
	}
	r.open[a.Kind+" "+a.Key] = a
	return nil
}

func (r *recorder) Resolve(_ context.Context, kind, key string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.open, kind+" "+key)
	return nil
}

func (r *recorder) has(kind, key string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, ok := r.open[kind+" "+key]
	return ok
}

func importAndDiff(t *testing.T, w world, data []byte, pt catalog.ProductType) (recon.Summary, []recon.DiffLine) {
	t.Helper()
	ctx := context.Background()
	im, err := w.pool.Import(ctx, recon.ImportRequest{Data: data, Filename: "bill.csv", Period: settlement.MustPeriod(period),
		ProductType: pt, Mapping: recon.DefaultMapping(), Actor: "test"})
	if err != nil {
		t.Fatalf("import: %v", err)
	}
	sum, err := w.pool.Diff(ctx, im.ImportID, "test", w.cat)
	if err != nil {
		t.Fatalf("diff: %v", err)
	}
	lines, err := w.pool.DiffLines(ctx, sum.DiffID, recon.DiffFilter{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	return sum, lines
}

func csvOf(t *testing.T, b emuledger.Bill) []byte {
	var buf bytes.Buffer
	if err := b.WriteDetailCSV(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestMarketplaceBillReconcilesWithKooflow(t *testing.T) {
	w := seed(t)
	alerts := &recorder{}
	w.pool.Alerts = alerts
	for _, tc := range []struct {
		pt   catalog.ProductType
		xlsx bool
	}{{catalog.General, false}, {catalog.JointOperation, true}} {
		b := marketplaceBill(t, string(tc.pt), emuledger.BillFaults{})
		data := csvOf(t, b)
		if tc.xlsx {
			var buf bytes.Buffer
			if err := b.WriteDetailXLSX(&buf); err != nil {
				t.Fatal(err)
			}
			data = buf.Bytes()
		}
		sum, lines := importAndDiff(t, w, data, tc.pt)
		if sum.UnexplainedCount != 0 || sum.ExplainedCount != 0 || len(lines) != 0 {
			t.Fatalf("%s: want no differences, got %+v %+v", tc.pt, sum, lines)
		}
		if !sum.MarketplaceTotal.Equal(sum.KooflowTotal) || sum.MatchedCount != int64(len(b.Lines)) || sum.MatchedCount == 0 {
			t.Fatalf("%s: totals differ or nothing matched: %+v", tc.pt, sum)
		}
	}
	// The general bill: 1140 + (1140 − 1140) + (949.90 − 285.05) + 3166.66 + 760 = 5731.51 (hand-computed from the
	// rules in docs/settlement.md: 999.90 × 5 % = 49.995 → 50.00, −300.05 × 5 % = −15.0025 → −15.00,
	// 3333.33 × 5 % = 166.6665 → 166.67).
	sum, err := w.pool.Latest(context.Background(), period, catalog.General)
	if err != nil {
		t.Fatal(err)
	}
	if !sum.KooflowTotal.Equal(decimal.RequireFromString("5731.51")) {
		t.Fatalf("general bill total %s, want 5731.51", sum.KooflowTotal)
	}
	if len(alerts.open) != 0 {
		t.Fatalf("alerts raised for matching bills: %v", alerts.open)
	}
}

func TestEachBillFaultIsReportedExactly(t *testing.T) {
	w := seed(t)
	alerts := &recorder{}
	w.pool.Alerts = alerts
	key := "recon/" + period + "/general"
	cases := []struct {
		name        string
		faults      emuledger.BillFaults
		want        []string // kind reason explained difference, per differing line
		unexplained bool
	}{
		{name: "dropped line", faults: emuledger.BillFaults{Drop: []string{"O-PLAIN/O-PLAIN-1"}},
			want: []string{"O-PLAIN KOOFLOW_ONLY  false -1140.00"}, unexplained: true},
		{name: "changed amount", faults: emuledger.BillFaults{Change: map[string]decimal.Decimal{"O-SUPDONE/O-SUPDONE-1": decimal.RequireFromString("-0.01")}},
			want: []string{"O-SUPDONE AMOUNT  false -0.01"}, unexplained: true},
		{name: "added unknown line", faults: emuledger.BillFaults{Add: []emuledger.BillLine{{OrderID: "O-GHOST", OrderLineID: "O-GHOST-1", OrderType: "NEW",
			Revenue: decimal.NewFromInt(50), PlatformFee: decimal.RequireFromString("2.50"), Settlement: decimal.RequireFromString("47.50")}}},
			want: []string{"O-GHOST MARKETPLACE_ONLY UNKNOWN_ORDER false 47.50"}, unexplained: true},
		{name: "added line kooflow holds for repayment", faults: emuledger.BillFaults{Add: []emuledger.BillLine{{OrderID: "O-CREDITNO", OrderLineID: "O-CREDITNO-1",
			OrderType: "NEW", Revenue: decimal.NewFromInt(700), PlatformFee: decimal.NewFromInt(35), Settlement: decimal.NewFromInt(665)}}},
			want: []string{"O-CREDITNO MARKETPLACE_ONLY NOT_REPAID true 665.00"}},
		{name: "added supervised line", faults: emuledger.BillFaults{Add: []emuledger.BillLine{{OrderID: "O-SUPOPEN", OrderLineID: "O-SUPOPEN-1",
			OrderType: "NEW", Revenue: decimal.NewFromInt(2000), PlatformFee: decimal.NewFromInt(100), Settlement: decimal.NewFromInt(1900)}}},
			want: []string{"O-SUPOPEN MARKETPLACE_ONLY SUPERVISION true 1900.00"}},
		{name: "added dial test", faults: emuledger.BillFaults{Add: []emuledger.BillLine{{OrderID: "O-DIAL", OrderLineID: "O-DIAL-1",
			OrderType: "NEW", Revenue: decimal.NewFromInt(100), PlatformFee: decimal.NewFromInt(5), Settlement: decimal.NewFromInt(95)}}},
			want: []string{"O-DIAL MARKETPLACE_ONLY TEST_ORDER true 95.00"}},
		{name: "added renewal not yet effective", faults: emuledger.BillFaults{Add: []emuledger.BillLine{{OrderID: "R-LATER", OrderLineID: "R-LATER-1",
			OrderType: "RENEW", Revenue: decimal.NewFromInt(1200), PlatformFee: decimal.NewFromInt(60), Settlement: decimal.NewFromInt(1140)}}},
			want: []string{"R-LATER MARKETPLACE_ONLY EFFECTIVE_AFTER_PERIOD true 1140.00"}},
		{name: "order and refund both left out", faults: emuledger.BillFaults{Drop: []string{"O-REF/O-REF-1", "U-REF/U-REF-1"}},
			want: []string{"O-REF KOOFLOW_ONLY REFUND_NETTED true -1140.00", "U-REF KOOFLOW_ONLY REFUND_NETTED true 1140.00"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sum, lines := importAndDiff(t, w, csvOf(t, marketplaceBill(t, "general", tc.faults)), catalog.General)
			var got []string
			for _, l := range lines {
				code := l.ReasonCode
				if !l.Explained && l.Kind != recon.KindMarketplaceOnly {
					code = ""
				}
				got = append(got, fmt.Sprintf("%s %s %s %t %s", l.OrderID, l.Kind, code, l.Explained, l.Difference.StringFixed(2)))
			}
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Fatalf("differences:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
			if (sum.UnexplainedCount > 0) != tc.unexplained || alerts.has(recon.AlertUnexplained, key) != tc.unexplained {
				t.Fatalf("unexplained %d, alert open %t; want unexplained %t", sum.UnexplainedCount, alerts.has(recon.AlertUnexplained, key), tc.unexplained)
			}
			for _, l := range lines {
				if l.Reason == "" {
					t.Fatalf("line %s has no reason", l.OrderID)
				}
			}
		})
	}
}

func TestImportIsIdempotentAndBadFilesNameRowAndColumn(t *testing.T) {
	w := seed(t)
	ctx := context.Background()
	data := csvOf(t, marketplaceBill(t, "general", emuledger.BillFaults{}))
	req := recon.ImportRequest{Data: data, Period: settlement.MustPeriod(period), ProductType: catalog.General, Mapping: recon.DefaultMapping(), Actor: "test"}
	first, err := w.pool.Import(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	again, err := w.pool.Import(ctx, req)
	if err != nil || !again.AlreadyImported || again.ImportID != first.ImportID {
		t.Fatalf("second import: %+v, %v", again, err)
	}
	var n int
	if err := w.bills.Pool.QueryRow(ctx, `SELECT count(*) FROM recon_lines WHERE import_id = $1`, first.ImportID).Scan(&n); err != nil || int64(n) != first.Rows {
		t.Fatalf("kept rows %d, want %d (%v)", n, first.Rows, err)
	}
	bad := strings.Replace(string(data), "1140.00", "11.40.0", 1)
	_, err = w.pool.Import(ctx, recon.ImportRequest{Data: []byte(bad), Period: settlement.MustPeriod(period), ProductType: catalog.General,
		Mapping: recon.DefaultMapping(), Actor: "test"})
	if err == nil || !strings.Contains(err.Error(), "row ") || !strings.Contains(err.Error(), `column "伙伴结算金额(含税)"`) {
		t.Fatalf("bad amount: %v", err)
	}
	wrongPeriod := strings.Replace(string(data), "\n202610,", "\n202609,", 1)
	_, err = w.pool.Import(ctx, recon.ImportRequest{Data: []byte(wrongPeriod), Period: settlement.MustPeriod(period), ProductType: catalog.General,
		Mapping: recon.DefaultMapping(), Actor: "test"})
	if err == nil || !strings.Contains(err.Error(), "row 2") || !strings.Contains(err.Error(), "2026-09") {
		t.Fatalf("wrong period: %v", err)
	}
	if err := w.bills.Pool.QueryRow(ctx, `SELECT count(*) FROM recon_imports`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("refused files were recorded: %d imports (%v)", n, err)
	}
}

func TestBillFollowedToPaidAndOverduePaymentAlerts(t *testing.T) {
	w := seed(t)
	ctx := context.Background()
	alerts := &recorder{}
	w.pool.Alerts = alerts
	// The export says 待会签, so the import moves the bill there.
	importAndDiff(t, w, csvOf(t, marketplaceBill(t, "general", emuledger.BillFaults{})), catalog.General)
	ref := recon.BillRef{Period: settlement.MustPeriod(period), ProductType: catalog.General}
	hist, err := w.pool.History(ctx, ref)
	if err != nil || len(hist) != 1 || hist[0].To != string(recon.StateCountersignPending) || hist[0].Source != recon.SourceImport {
		t.Fatalf("history after import: %+v %v", hist, err)
	}
	if err := w.pool.SetState(ctx, ref, recon.StateCountersignRejected, "ops", ""); err != nil {
		t.Fatal(err)
	}
	if err := w.pool.SetState(ctx, ref, recon.StatePaymentProcessing, "ops", ""); err == nil {
		t.Fatal("a rejected countersign moved straight to payment processing")
	}
	for _, st := range []recon.BillState{recon.StateCountersignPending, recon.StateCountersigning, recon.StatePaymentApplicationPending,
		recon.StatePaymentApplicationReview, recon.StatePaymentProcessing} {
		if err := w.pool.SetState(ctx, ref, st, "ops", ""); err != nil {
			t.Fatalf("to %s: %v", st, err)
		}
	}
	// Invoice on Friday 2026-11-13: six working days later is Monday 2026-11-23.
	if err := w.pool.RecordInvoice(ctx, ref, recon.Invoice{Number: "INV-1", IssuedOn: "2026-11-13", Amount: decimal.RequireFromString("5731.51")}, "ops"); err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 24, 4, 0, 0, 0, time.UTC) // 12:00 Beijing, the day after
	rs, err := w.pool.Receivables(ctx, now, true)
	if err != nil || len(rs) != 2 || rs[0].ProductType != catalog.JointOperation || rs[0].BilledFrom != "kooflow" {
		t.Fatalf("receivables: %+v %v", rs, err)
	}
	r := rs[1]
	if r.BillDate != "2026-11-09" || r.ExpectedPaymentOn != "2026-11-23" || !r.Outstanding.Equal(decimal.RequireFromString("5731.51")) || !r.Overdue || r.DaysOutstanding != 15 {
		t.Fatalf("receivable: %+v", r)
	}
	if _, err := w.pool.CheckPayments(ctx, now); err != nil {
		t.Fatal(err)
	}
	key := "recon/" + period + "/general"
	if !alerts.has(recon.AlertOverdue, key) {
		t.Fatal("overdue payment did not alert")
	}
	// A short payment, then the rest.
	if err := w.pool.RecordReceipt(ctx, ref, recon.Receipt{ReceivedOn: "2026-11-24", Amount: decimal.NewFromInt(5000), Reference: "BANK-1"}, "ops"); err != nil {
		t.Fatal(err)
	}
	if err := w.pool.SetState(ctx, ref, recon.StatePaid, "ops", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := w.pool.CheckPayments(ctx, now); err != nil {
		t.Fatal(err)
	}
	if !alerts.has(recon.AlertShort, key) {
		t.Fatal("short payment did not alert")
	}
	if err := w.pool.RecordReceipt(ctx, ref, recon.Receipt{ReceivedOn: "2026-11-25", Amount: decimal.RequireFromString("731.51"), Reference: "BANK-2"}, "ops"); err != nil {
		t.Fatal(err)
	}
	if err := w.pool.RecordReceipt(ctx, ref, recon.Receipt{ReceivedOn: "2026-11-25", Amount: decimal.RequireFromString("731.51"), Reference: "BANK-2"}, "ops"); err != nil {
		t.Fatalf("the same receipt twice: %v", err)
	}
	if _, err := w.pool.CheckPayments(ctx, now.Add(48*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if alerts.has(recon.AlertShort, key) || alerts.has(recon.AlertOverdue, key) {
		t.Fatalf("alerts stay open after full payment: %v", alerts.open)
	}
	rs, err = w.pool.Receivables(ctx, now, true)
	if err != nil || len(rs) != 1 || rs[0].ProductType != catalog.JointOperation {
		t.Fatalf("a paid bill is still receivable: %+v %v", rs, err)
	}
}
