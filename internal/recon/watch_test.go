package recon_test

import (
	"context"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	emuledger "github.com/kooflow/kooflow/emulator/ledger"

	"github.com/kooflow/kooflow/internal/catalog"
	"github.com/kooflow/kooflow/internal/recon"
	"github.com/kooflow/kooflow/internal/settlement"
	"github.com/kooflow/kooflow/internal/store"
)

// Two workers' watches over the same bills: the overdue payment is one open system alert whichever runs, a watch
// does not check again before its interval, and after it the payment in full resolves the alert.
func TestPaymentWatchRaisesOverdueOnceAcrossWorkers(t *testing.T) {
	w := seed(t)
	ctx := context.Background()
	st := &store.Store{Pool: w.pool.Pool}
	w.pool.Alerts = recon.SystemAlerter{Store: st}
	importAndDiff(t, w, csvOf(t, marketplaceBill(t, "general", emuledger.BillFaults{})), catalog.General)
	ref := recon.BillRef{Period: settlement.MustPeriod(period), ProductType: catalog.General}
	if err := w.pool.RecordInvoice(ctx, ref, recon.Invoice{Number: "INV-W", IssuedOn: "2026-11-13", Amount: decimal.RequireFromString("5731.51")}, "ops"); err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 24, 4, 0, 0, 0, time.UTC)
	a := &recon.PaymentWatch{Store: w.pool, Interval: time.Hour}
	b := &recon.PaymentWatch{Store: w.pool, Interval: time.Hour}
	for _, watch := range []*recon.PaymentWatch{a, b, a} {
		if err := watch.Watch(ctx, now); err != nil {
			t.Fatal(err)
		}
	}
	open := func() int {
		t.Helper()
		as, err := st.Alerts(ctx, store.AlertFilter{OpenOnly: true, Kind: recon.AlertOverdue})
		if err != nil {
			t.Fatal(err)
		}
		return len(as)
	}
	if n := open(); n != 1 {
		t.Fatalf("%d open overdue alerts after three checks by two workers, want 1", n)
	}
	if err := w.pool.RecordReceipt(ctx, ref, recon.Receipt{ReceivedOn: "2026-11-24", Amount: decimal.RequireFromString("5731.51"), Reference: "BANK-W"}, "ops"); err != nil {
		t.Fatal(err)
	}
	if err := a.Watch(ctx, now.Add(30*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if n := open(); n != 1 {
		t.Fatalf("the watch checked again before its interval: %d open alerts", n)
	}
	if err := a.Watch(ctx, now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if n := open(); n != 0 {
		t.Fatalf("the payment in full left %d overdue alerts open", n)
	}
}
