package bills

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/kooflow/kooflow/internal/ledger/fixture"
	"github.com/kooflow/kooflow/internal/settlement"
)

// TestEstimateIncludesUsage asks the console for the estimate (预估) of the running month and of the month before:
// accepted pay-per-use usage counts in the month its window starts in, and the running month's estimate also holds
// the earlier month's usage that no bill has settled yet, as a close would.
func TestEstimateIncludesUsage(t *testing.T) {
	a, store := start(t)
	ctx := context.Background()
	if err := fixture.Instance(ctx, store.Pool, settlement.InstanceState{ID: "i-ppu"}, "OFFI-KOOFLOW-API-PPU"); err != nil {
		t.Fatal(err)
	}
	running := settlement.PeriodOf(time.Now())
	// estimate returns the general estimate of a period ("" for the running month).
	estimate := func(period string) map[string]any {
		t.Helper()
		var est struct {
			Kind         string
			ProductTypes []map[string]any
		}
		var body any
		if period != "" {
			body = map[string]any{"period": period}
		}
		a.json(http.MethodPost, "/bills/estimate", body, http.StatusOK, &est)
		for _, pt := range est.ProductTypes {
			if pt["productType"] == "general" {
				return pt
			}
		}
		t.Fatalf("no general estimate in %+v", est)
		return nil
	}
	// added is what usage added to an estimate's figure.
	added := func(after, before map[string]any, field string) string {
		t.Helper()
		return fixture.Amount(after[field].(string)).Sub(fixture.Amount(before[field].(string))).StringFixed(2)
	}
	prevBefore, runBefore := estimate(running.Prev().String()), estimate("")
	for _, u := range []struct {
		hour  time.Time
		value string
	}{
		{running.Start().Add(-time.Hour), "100.0001"}, // the last hour of the month before
		{running.Start(), "20.0003"},                  // the first hour of the running month
	} {
		if err := fixture.Usage(ctx, store.Pool, "i-ppu", u.hour, 1, u.value, "accepted", ""); err != nil {
			t.Fatal(err)
		}
	}
	// 100.0001 × 0.50 = 50.00005 → 50.00; fee 2.50; settlement 47.50
	if g := estimate(running.Prev().String()); g["usageLines"] != float64(1) || g["usageQuantity"] != "100.0001" ||
		added(g, prevBefore, "revenue") != "50.00" || added(g, prevBefore, "settlement") != "47.50" {
		t.Fatalf("estimate of %s: %+v (before usage %+v)", running.Prev(), g, prevBefore)
	}
	// + 20.0003 × 0.50 = 10.00015 → 10.00; fee 0.50; settlement 9.50
	if g := estimate(""); g["usageLines"] != float64(2) || g["usageQuantity"] != "120.0004" ||
		added(g, runBefore, "revenue") != "60.00" || added(g, runBefore, "settlement") != "57.00" {
		t.Fatalf("estimate of the running month: %+v (before usage %+v)", g, runBefore)
	}
}
