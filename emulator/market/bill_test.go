package market

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/kooflow/kooflow/emulator/ledger"
)

// TestBillThroughTheControlAPI puts a runner's ledger lines and charged usage in the market and exports the bill
// detail through the control API, as `kooflow emulator bill` does: the development catalog's terms apply (5 %
// on the general CRM product, the API product's usage price), a fault shows in the file, and the XLSX export is
// a workbook.
func TestBillThroughTheControlAPI(t *testing.T) {
	m, srv := startMarket(t)
	ctx := context.Background()
	r := Remote{URL: srv.URL, AK: testAK, SK: testSK, HTTP: srv.Client}
	eff := time.Date(2026, 9, 5, 2, 0, 0, 0, time.UTC)
	if err := r.PutLedger(ctx, []ledger.Entry{
		{OrderID: "B-1", OrderLineID: "B-1-1", OrderType: "NEW", InstanceID: "b1", ProductID: "OFFI-KOOFLOW-CRM-MONTHLY",
			Amount: decimal.NewFromInt(1200), EffectiveAt: &eff},
		{OrderID: "P-1", OrderLineID: "P-1-1", OrderType: "NEW", InstanceID: "p1", ProductID: "OFFI-KOOFLOW-API-PPU",
			Amount: decimal.Zero, EffectiveAt: &eff},
	}); err != nil {
		t.Fatal(err)
	}
	m.UsageLedger().Charge(ledger.UsageCharge{MeteringSN: "sn-1", InstanceID: "p1", BeginTime: eff, Value: decimal.RequireFromString("10")})
	zero := decimal.Zero
	csv, err := r.BillDetail(ctx, BillQuery{Period: "2026-09", Threshold: &zero,
		Faults: ledger.BillFaults{Change: map[string]decimal.Decimal{"B-1/B-1-1": decimal.RequireFromString("0.01")}}})
	if err != nil {
		t.Fatal(err)
	}
	p, _ := m.opts.Catalog.Lookup("OFFI-KOOFLOW-API-PPU")
	rev := decimal.NewFromInt(10).Mul(p.Usage.UnitPrice).Round(2)
	for _, want := range []string{"202609,B-1,B-1-1,NEW,1200.00,59.99,1140.01,待会签,b1,,",
		"202609,P-1,P-1-1,USAGE," + rev.StringFixed(2)} {
		if !strings.Contains(string(csv), want) {
			t.Errorf("the bill detail has no line %q:\n%s", want, csv)
		}
	}
	// A ledger larger than one control request holds arrives whole.
	var many []ledger.Entry
	for i := range 2*ledgerBatch + 7 {
		many = append(many, ledger.Entry{OrderID: fmt.Sprintf("M-%04d", i), OrderLineID: "1", OrderType: "NEW", InstanceID: fmt.Sprint("m", i),
			ProductID: "OFFI-KOOFLOW-CRM-MONTHLY", Amount: decimal.NewFromInt(100), EffectiveAt: &eff})
	}
	if err := r.PutLedger(ctx, many); err != nil {
		t.Fatal(err)
	}
	if n := len(m.Ledger().Entries()); n != 2+len(many) {
		t.Fatalf("the market's ledger has %d lines, want %d", n, 2+len(many))
	}
	x, err := r.BillDetail(ctx, BillQuery{Period: "2026-09", Format: "xlsx", Threshold: &zero})
	if err != nil || !strings.HasPrefix(string(x), "PK\x03\x04") {
		t.Fatalf("xlsx: %v (%d bytes)", err, len(x))
	}
	if _, err := r.BillDetail(ctx, BillQuery{Period: "2026-13"}); err == nil || !strings.Contains(err.Error(), "HTTP 400") {
		t.Fatalf("a wrong period: %v", err)
	}
}
