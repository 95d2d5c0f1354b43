package scenario_test

import (
	"bytes"
	"context"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/kooflow/kooflow/emulator/clock"
	"github.com/kooflow/kooflow/emulator/deliver"
	"github.com/kooflow/kooflow/emulator/internal/fakeseller"
	"github.com/kooflow/kooflow/emulator/ledger"
	"github.com/kooflow/kooflow/emulator/market"
	. "github.com/kooflow/kooflow/emulator/scenario"
	"github.com/kooflow/kooflow/internal/catalog"
)

const testKey = "scenario-test-access-key"

func runAgainstFake(t *testing.T, orders int, faults Faults, tweak func(*fakeseller.Seller)) (*Report, *ledger.Ledger) {
	t.Helper()
	m, err := market.New(market.Options{AK: "AK", SK: "SK", Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	seller := fakeseller.New(testKey, m)
	if tweak != nil {
		tweak(seller)
	}
	srv := httptest.NewServer(seller)
	t.Cleanup(srv.Close)
	// 85 days of marketplace time in about four seconds.
	clk := clock.New(time.Now(), 85*24*3600/4)
	disp := deliver.NewDispatcher(deliver.NewClient(srv.URL, testKey), clk, 11)
	disp.MinGap = 5 * time.Millisecond
	cat, _ := catalog.Parse(catalog.DevCatalog)
	led := ledger.New()
	r, err := New(Config{Orders: orders, Faults: faults, Seed: 42, Converge: 5 * time.Second},
		Deps{Catalog: cat, Clock: clk, Dispatcher: disp, Market: market.Local{M: m}, Seller: seller, Ledger: led,
			Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	rep, err := r.Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return rep, led
}

func TestScenarioAgainstACorrectSellerWithEveryFault(t *testing.T) {
	if testing.Short() {
		t.Skip("a 120-instance scenario; skipped with -short")
	}
	rep, led := runAgainstFake(t, 120, AllFaults(60*time.Second), nil)
	var out bytes.Buffer
	rep.Print(&out)
	t.Log("\n" + out.String())
	if rep.Failed() {
		t.Fatal("a correct seller was reported as failing")
	}
	for _, p := range Paths() {
		if rep.Paths[p].Customers == 0 {
			t.Errorf("path %s was not exercised by 120 customers", p)
		}
	}
	d := rep.Deliveries
	if d.Copies == 0 || d.Delayed == 0 || d.Dropped == 0 || d.Retries == 0 || d.GaveUp == 0 {
		t.Fatalf("faults were not exercised: %+v", d)
	}
	if got := rep.Paths[PathUndeliverable].Ended[StateFailed]; got != rep.Paths[PathUndeliverable].Customers {
		t.Fatalf("undeliverable purchases ended %v", rep.Paths[PathUndeliverable].Ended)
	}
	if rep.Paths[PathExpireRelease].Ended[StateReleased] != rep.Paths[PathExpireRelease].Customers {
		t.Fatalf("expire-release customers ended %v", rep.Paths[PathExpireRelease].Ended)
	}
	tot := led.Totals()
	if !tot.Paid.IsPositive() || !tot.Refunded.IsPositive() {
		t.Fatalf("ledger totals %+v", tot)
	}
	// What the marketplace's bill reads: dial tests flagged, credit payments with and without their repayment,
	// effective times on what was delivered, none on a supervised purchase before acceptance.
	var tests, credits, repaid, effective int
	for _, e := range led.Entries() {
		if e.TestFlag {
			tests++
		}
		if e.Credit {
			credits++
			if e.RepaidAt != nil {
				repaid++
			}
		}
		if e.EffectiveAt != nil {
			effective++
			if e.Delivery == ledger.Failed {
				t.Errorf("order %s took effect although it never reached the seller", e.OrderID)
			}
		}
		if e.Supervised && e.OrderType == market.TypeNew && e.EffectiveAt != nil && e.Supervision != SupCompleted {
			t.Errorf("supervised order %s took effect in %s", e.OrderID, e.Supervision)
		}
	}
	if tests == 0 || credits == 0 || repaid == 0 || repaid == credits || effective == 0 {
		t.Fatalf("ledger: %d dial-test lines, %d credit-paid (%d repaid), %d effective", tests, credits, repaid, effective)
	}
}

func TestScenarioCatchesASellerThatIgnoresRenewals(t *testing.T) {
	if testing.Short() {
		t.Skip("a 40-instance scenario over simulated months; skipped with -short")
	}
	rep, _ := runAgainstFake(t, 40, Faults{}, func(f *fakeseller.Seller) { f.BreakExpiry = true })
	found := false
	for _, m := range rep.Mismatches {
		if m.Field == "expireTime" {
			found = true
		}
	}
	if !found || !rep.Failed() {
		var out bytes.Buffer
		rep.Print(&out)
		t.Fatalf("a seller that ignores refreshInstance's expireTime was not caught:\n%s", out.String())
	}
}

func TestParseMixAndFaults(t *testing.T) {
	m, err := ParseMix("buy=2,renew,supervised=0.5")
	if err != nil || m[PathBuy] != 2 || m[PathRenew] != 1 || m[PathSupervised] != 0.5 || len(m) != 3 {
		t.Fatalf("%v %v", m, err)
	}
	for _, bad := range []string{"nope=1", "buy=-1", "buy=0"} {
		if _, err := ParseMix(bad); err == nil {
			t.Errorf("mix %q accepted", bad)
		}
	}
	f, err := ParseFaults("all,drop=0.5,query-timeout=0", 60*time.Second)
	if err != nil || f.Delivery.DropResponse != 0.5 || f.Query.TimeoutRate != 0 || f.Delivery.Duplicate == 0 {
		t.Fatalf("%+v %v", f, err)
	}
	f, err = ParseFaults("delay=0.2", 5*time.Second)
	if err != nil || f.Delivery.DelayBy != 35*time.Second {
		t.Fatalf("%+v %v", f, err)
	}
	for _, bad := range []string{"dup=2", "reorder=soon", "copies=4", "query-5xx=0.7,query-timeout=0.7", "wat=1", "dup"} {
		if _, err := ParseFaults(bad, time.Minute); err == nil {
			t.Errorf("faults %q accepted", bad)
		}
	}
	if s := (Faults{}).String(); s != "none" || !strings.Contains(AllFaults(time.Minute).String(), "dup=0.3") {
		t.Fatalf("String: %q", s)
	}
}
