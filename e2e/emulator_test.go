package e2e

import (
	"bytes"
	"context"
	"net/http"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/kooflow/kooflow/emulator/clock"
	"github.com/kooflow/kooflow/emulator/console"
	"github.com/kooflow/kooflow/emulator/deliver"
	"github.com/kooflow/kooflow/emulator/dial"
	"github.com/kooflow/kooflow/emulator/ledger"
	"github.com/kooflow/kooflow/emulator/market"
	"github.com/kooflow/kooflow/emulator/scenario"
	"github.com/kooflow/kooflow/internal/catalog"
)

// TestDialTest runs the marketplace's dial test against kooflow: every activity with testFlag "1", repeated
// where the documents require idempotency, and the refusals (forged signature, stale timestamp, replayed nonce,
// unknown activity, unknown instance).
func TestDialTest(t *testing.T) {
	s := startStack(t, 60*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	d := &dial.Runner{Client: deliver.NewClient(s.sellerURL, accessKey), Market: market.Local{M: s.market}}
	rep := d.Run(ctx)
	var out bytes.Buffer
	rep.Print(&out)
	t.Log("\n" + out.String())
	if !rep.Passed() {
		t.Fatal("kooflow fails the marketplace's dial test")
	}
}

// TestLifecyclesWithEveryFault drives mixed lifecycles through kooflow with every fault on — duplicated,
// reordered, stale and unanswered deliveries, failing and hanging order queries — and requires the marketplace's
// view and kooflow's read model to agree on every instance, with no contract breach. E2E_ORDERS overrides the
// number of customers (at least 50).
func TestLifecyclesWithEveryFault(t *testing.T) {
	orders := 60
	if n, err := strconv.Atoi(os.Getenv("E2E_ORDERS")); err == nil && n > orders {
		orders = n
	}
	// A short signature window keeps stale deliveries cheap to fake; the fault backdates past it.
	window := 10 * time.Second
	s := startStack(t, window)
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()

	cat, err := catalog.Parse(catalog.DevCatalog)
	if err != nil {
		t.Fatal(err)
	}
	spread, horizon := 10*24*time.Hour, 85*24*time.Hour
	clk := clock.New(time.Now(), float64(horizon)/float64(75*time.Second))
	client := deliver.NewClient(s.sellerURL, accessKey)
	client.HTTP = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	disp := deliver.NewDispatcher(client, clk, 0)
	led := ledger.New()
	faults := scenario.AllFaults(window)
	faults.Query.Hang = 12 * time.Second // past the order-query client's 10-second timeout
	r, err := scenario.New(scenario.Config{Orders: orders, Faults: faults, Spread: spread, Horizon: horizon,
		Converge: 2 * time.Minute},
		scenario.Deps{Catalog: cat, Clock: clk, Dispatcher: disp, Market: market.Local{M: s.market},
			Seller: console.New(s.consoleURL, consoleToken, customerToken, nil), Ledger: led, Log: s.log})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := r.Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	rep.Print(&out)
	t.Log("\n" + out.String())

	for _, p := range scenario.Paths() {
		if rep.Paths[p].Customers == 0 && orders >= 50 {
			t.Errorf("path %s was not exercised", p)
		}
	}
	d := rep.Deliveries
	if d.Copies == 0 || d.Delayed == 0 || d.Dropped == 0 || d.Retries == 0 || rep.Queries.QueriesFailed == 0 {
		t.Errorf("not every fault was exercised: deliveries %+v, order queries %+v", d, rep.Queries)
	}
	if rep.Failed() {
		t.Fatalf("%d mismatches and %d contract breaches between the marketplace and kooflow", len(rep.Mismatches), len(rep.Violations))
	}
}
