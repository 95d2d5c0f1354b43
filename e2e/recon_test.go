package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"os"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/kooflow/kooflow/emulator/clock"
	"github.com/kooflow/kooflow/emulator/console"
	"github.com/kooflow/kooflow/emulator/deliver"
	"github.com/kooflow/kooflow/emulator/ledger"
	"github.com/kooflow/kooflow/emulator/market"
	"github.com/kooflow/kooflow/emulator/scenario"
	"github.com/kooflow/kooflow/internal/catalog"
	"github.com/kooflow/kooflow/internal/config"
	"github.com/kooflow/kooflow/internal/logging"
	"github.com/kooflow/kooflow/internal/recon"
	"github.com/kooflow/kooflow/internal/settlement"
	"github.com/kooflow/kooflow/internal/testenv"
	"github.com/kooflow/kooflow/internal/teststack"
	"github.com/kooflow/kooflow/usageclient"
	"github.com/kooflow/kooflow/workflows"
)

// reconThreshold is the bill threshold on both sides: low, so a small month of orders is billed.
const reconThreshold = "100"

// reconMix is the month the emulator's customers live through: period purchases, a no-reason refund, supervised
// purchases accepted and refunded inside the guarantee period, credit-paid purchases repaid and not, and a dial
// test. Every path is taken at least once.
var reconMix = map[string]float64{
	scenario.PathBuy: 2, scenario.PathUnsubscribe: 1, scenario.PathSupervised: 1, scenario.PathSupervisedRefund: 1,
	scenario.PathCredit: 1, scenario.PathCreditUnpaid: 1, scenario.PathDialTest: 1,
}

// TestReconciliationThroughTheStack drives a month of mixed orders through kooflow's production interface with the
// emulator's customers (and a pay-per-use customer's usage through the usage intake and push), closes the month
// in kooflow, exports the marketplace's own bill of it through the emulator's control API, imports it through
// kooflow's console and requires zero unexplained differences; then each bill fault (a dropped line, a changed
// usage amount, an added line) is reported as exactly that difference, and the bill is followed to paid after
// an overdue alert.
func TestReconciliationThroughTheStack(t *testing.T) {
	testenv.SkipShort(t, "the stack")
	// kooflow stamps effective times with its wall clock; a run across a Beijing month end would split the month,
	// so a run starting in a month's last minutes waits for the next.
	if left := time.Until(settlement.PeriodOf(time.Now()).End()); left < 5*time.Minute {
		time.Sleep(left + 5*time.Second)
	}
	period := settlement.PeriodOf(time.Now())
	lvl, out := "error", io.Discard
	if v := os.Getenv("E2E_LOG"); v != "" {
		lvl, out = v, io.Writer(os.Stderr)
	}
	log, err := logging.New(out, "text", lvl)
	if err != nil {
		t.Fatal(err)
	}
	// kooflow's clock: the wall clock while the month's orders go through, then moved past the month's end to close
	// it and past the payment's due date to see it overdue.
	var shift atomic.Int64
	now := func() time.Time { return time.Now().Add(time.Duration(shift.Load())) }
	moveTo := func(at time.Time) { shift.Store(int64(time.Until(at))) }
	cfg, m, msrv := teststack.WithMarket(t, teststack.Keys{AccessKey: accessKey, MarketAK: marketAK, MarketSK: marketSK},
		market.Options{Log: log}, map[string]string{
			config.EnvTaskQueue:           testenv.TaskQueue(t),
			config.EnvConsoleTokens:       "e2e:" + consoleToken + ",buyer:" + customerToken + ":customer+read,meter:" + meterToken + ":usage",
			config.EnvProvisionerSecret:   "e2e-provisioner-secret",
			config.EnvSettlementThreshold: reconThreshold,
			config.EnvLogLevel:            lvl,
		})
	st := teststack.Start(t, cfg, teststack.Options{Log: log, Now: now})
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	sellerURL := st.URL + cfg.ProductionPath

	// The month: the customers' lifecycles on a clock running five marketplace days in about 20 seconds (what the
	// marketplace's bill reads is stamped on the wall clock, as kooflow's is).
	cat, err := catalog.Parse(catalog.DevCatalog)
	if err != nil {
		t.Fatal(err)
	}
	horizon := 5 * 24 * time.Hour
	clk := clock.New(time.Now(), float64(horizon)/float64(20*time.Second))
	r, err := scenario.New(scenario.Config{Orders: 8, Mix: reconMix, Seed: 7, Spread: 12 * time.Hour, Horizon: horizon,
		Converge: time.Minute},
		scenario.Deps{Catalog: cat, Clock: clk, Dispatcher: deliver.NewDispatcher(deliver.NewClient(sellerURL, accessKey), clk, 7),
			Market: market.Local{M: m}, Seller: console.New(st.URL+"/console/v1", consoleToken, customerToken, nil),
			Ledger: m.Ledger(), Log: log})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := r.Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var printed bytes.Buffer
	rep.Print(&printed)
	t.Log("\n" + printed.String())
	if rep.Failed() {
		t.Fatalf("%d mismatches between the marketplace and kooflow", len(rep.Mismatches))
	}
	// A pay-per-use customer: usage through kooflow's intake, pushed by kooflow and charged by the marketplace.
	urep, err := scenario.RunUsage(ctx, scenario.UsageConfig{Customers: 1, Hours: 1, RecordsPerHour: 12, DuplicateRate: 0.3,
		ProductID: ppuProduct, SKUCode: "api-ppu", Seed: 7},
		scenario.UsageDeps{Client: deliver.NewClient(sellerURL, accessKey), Market: market.Local{M: m}, Usage: market.LocalUsage{M: m},
			Intake: &usageclient.Client{BaseURL: st.URL, Token: meterToken}, Log: log, Ledger: m.Ledger()})
	if err != nil {
		t.Fatal(err)
	}
	if urep.Failed() || len(urep.Instances) != 1 || !urep.Instances[0].Charged.IsPositive() {
		t.Fatalf("pay-per-use: %+v", urep)
	}

	api := func(method, path, contentType string, body []byte) (int, []byte) {
		t.Helper()
		req, err := http.NewRequestWithContext(ctx, method, st.URL+"/console/v1"+path, bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+consoleToken)
		if contentType != "" {
			req.Header.Set("Content-Type", contentType)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}

	// kooflow closes the month, once it has ended by kooflow's clock.
	moveTo(period.End().Add(time.Hour))
	if code, out := api(http.MethodPost, "/bills/close", "application/json", []byte(`{"period":"`+period.String()+`"}`)); code != http.StatusAccepted {
		t.Fatalf("close: %d %s", code, out)
	}
	if err := st.Temporal.GetWorkflow(ctx, workflows.SettlementWorkflowID(period), "").Get(ctx, nil); err != nil {
		t.Fatal(err)
	}

	// The marketplace's bill detail, through the emulator's control API, imported through kooflow's console.
	ctl := market.Remote{URL: msrv.URL, AK: marketAK, SK: marketSK, HTTP: msrv.Client}
	threshold := decimal.RequireFromString(reconThreshold)
	export := func(typ, format string, f ledger.BillFaults) []byte {
		t.Helper()
		b, err := ctl.BillDetail(ctx, market.BillQuery{Period: period.String(), ProductType: typ, Format: format, Threshold: &threshold, Faults: f})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	importBill := func(typ, name string, file []byte) (recon.Summary, []recon.DiffLine) {
		t.Helper()
		var body bytes.Buffer
		mw := multipart.NewWriter(&body)
		fw, _ := mw.CreateFormFile("file", name)
		_, _ = fw.Write(file)
		_ = mw.Close()
		code, out := api(http.MethodPost, "/bills/recon/imports?period="+period.String()+"&productType="+typ, mw.FormDataContentType(), body.Bytes())
		if code != http.StatusCreated {
			t.Fatalf("import: %d %s", code, out)
		}
		var res struct{ Diff recon.Summary }
		if err := json.Unmarshal(out, &res); err != nil {
			t.Fatal(err)
		}
		code, out = api(http.MethodGet, fmt.Sprintf("/bills/recon/diffs/%d", res.Diff.DiffID), "", nil)
		var page struct{ Lines []recon.DiffLine }
		if code != http.StatusOK || json.Unmarshal(out, &page) != nil {
			t.Fatalf("diff lines: %d %s", code, out)
		}
		return res.Diff, page.Lines
	}

	// What the marketplace billed, by its own rules: the usage, a refund netted with its purchase, the accepted
	// supervised purchase and the repaid credit purchase; no dial test and no unpaid credit purchase.
	bill, err := m.Bill(market.BillQuery{Period: period.String(), Threshold: &threshold})
	if err != nil {
		t.Fatal(err)
	}
	joint, err := m.Bill(market.BillQuery{Period: period.String(), ProductType: ledger.TypeJointOperation, Threshold: &threshold})
	if err != nil {
		t.Fatal(err)
	}
	billed := map[string]ledger.BillLine{}
	var usageLine ledger.BillLine
	for _, l := range append(bill.Lines, joint.Lines...) {
		billed[l.OrderID] = l
		if l.UsageMonth != "" {
			usageLine = l
		}
	}
	kinds := map[string]bool{}
	for _, e := range m.Ledger().Entries() {
		_, in := billed[e.OrderID]
		switch {
		case e.TestFlag && in, e.Credit && e.RepaidAt == nil && in:
			t.Errorf("the marketplace billed order %s (dial test %t, credit unpaid)", e.OrderID, e.TestFlag)
		case e.TestFlag:
			kinds["dial test held"] = true
		case e.Credit && e.RepaidAt == nil:
			kinds["credit unpaid held"] = true
		case e.Credit && in:
			kinds["credit repaid billed"] = true
		case e.OrderType == market.TypeUnsubscribe && in:
			kinds["refund billed"] = true
		case e.Supervised && e.Supervision == scenario.SupCompleted && in:
			kinds["supervised billed"] = true
		}
	}
	if len(kinds) != 5 || usageLine.UsageMonth == "" || bill.Carried {
		t.Fatalf("the month does not have every kind of line (%v, usage %+v, carried %t)", kinds, usageLine, bill.Carried)
	}

	for _, typ := range []string{ledger.TypeGeneral, ledger.TypeJointOperation} {
		sum, lines := importBill(typ, "账单明细.xlsx", export(typ, "xlsx", ledger.BillFaults{}))
		if sum.UnexplainedCount != 0 || !sum.MarketplaceTotal.Equal(sum.KooflowTotal) {
			t.Fatalf("the marketplace's %s bill does not reconcile: %+v %+v", typ, sum, lines)
		}
		if typ == ledger.TypeGeneral && (len(lines) != 0 || sum.MatchedCount != int64(len(bill.Lines))) {
			t.Fatalf("the general bill: %d of %d lines matched, differences %+v", sum.MatchedCount, len(bill.Lines), lines)
		}
	}

	// Each fault is reported as exactly that difference.
	var dropped ledger.BillLine
	for _, l := range bill.Lines {
		if l.UsageMonth == "" && l.OrderType == market.TypeNew && l.Settlement.IsPositive() {
			dropped = l
			break
		}
	}
	var sum recon.Summary
	for _, tc := range []struct {
		name   string
		faults ledger.BillFaults
		want   string
	}{
		{"drop", ledger.BillFaults{Drop: []string{dropped.Key()}},
			dropped.OrderID + " " + dropped.OrderLineID + " KOOFLOW_ONLY false " + dropped.Settlement.Neg().StringFixed(2)},
		{"change usage", ledger.BillFaults{Change: map[string]decimal.Decimal{usageLine.Key(): decimal.RequireFromString("0.01")}},
			usageLine.OrderID + " usage:" + usageLine.InstanceID + ":" + usageLine.UsageMonth + ":" + period.String() + " AMOUNT false 0.01"},
		{"add", ledger.BillFaults{Add: []ledger.BillLine{{OrderID: "E-GHOST", OrderLineID: "E-GHOST-1", OrderType: "NEW",
			Revenue: decimal.NewFromInt(10), PlatformFee: decimal.RequireFromString("0.50"), Settlement: decimal.RequireFromString("9.50")}}},
			"E-GHOST E-GHOST-1 MARKETPLACE_ONLY false 9.50"},
	} {
		var lines []recon.DiffLine
		sum, lines = importBill(ledger.TypeGeneral, "账单明细-"+tc.name+".csv", export(ledger.TypeGeneral, "csv", tc.faults))
		var got []string
		for _, l := range lines {
			got = append(got, fmt.Sprintf("%s %s %s %t %s", l.OrderID, l.OrderLineID, l.Kind, l.Explained, l.Difference.StringFixed(2)))
		}
		sort.Strings(got)
		if strings.Join(got, "\n") != tc.want || sum.UnexplainedCount != 1 {
			t.Errorf("%s: got %v (unexplained %d), want %s", tc.name, got, sum.UnexplainedCount, tc.want)
		}
	}

	// The bill to paid: invoiced after the bill date, unpaid past its payment date (an alert), then paid.
	end := period.End().In(settlement.Beijing)
	day := func(d int) string { return end.AddDate(0, 0, d).Format(time.DateOnly) }
	moveTo(period.End().AddDate(0, 0, 30))
	for _, s := range []string{"待会签", "会签中", "待申付", "申付审核", "申付处理中"} {
		if code, out := api(http.MethodPut, "/bills/recon/bill/"+period.String()+"/general/state", "application/json", []byte(`{"state":"`+s+`"}`)); code != http.StatusOK {
			t.Fatalf("state %s: %d %s", s, code, out)
		}
	}
	if code, out := api(http.MethodPost, "/bills/recon/bill/"+period.String()+"/general/invoice", "application/json",
		[]byte(`{"number":"E-INV-1","issuedOn":"`+day(10)+`","amount":"`+sum.MarketplaceTotal.StringFixed(2)+`"}`)); code != http.StatusCreated {
		t.Fatalf("invoice: %d %s", code, out)
	}
	if code, out := api(http.MethodPost, "/bills/recon/check", "", nil); code != http.StatusOK || !strings.Contains(string(out), `"overdue":true`) {
		t.Fatalf("check: %d %s", code, out)
	}
	if code, out := api(http.MethodGet, "/alerts", "", nil); code != http.StatusOK || !strings.Contains(string(out), recon.AlertOverdue) {
		t.Fatalf("the overdue payment is not among the alerts: %d %s", code, out)
	}
	// The marketplace pays what its latest bill detail says (the last import above added a line).
	general := func() (recon.Receivable, bool) {
		t.Helper()
		var rv struct{ Receivables []recon.Receivable }
		code, out := api(http.MethodGet, "/bills/recon/receivables", "", nil)
		if code != http.StatusOK || json.Unmarshal(out, &rv) != nil {
			t.Fatalf("receivables: %d %s", code, out)
		}
		for _, r := range rv.Receivables {
			if r.ProductType == ledger.TypeGeneral {
				return r, true
			}
		}
		return recon.Receivable{}, false
	}
	due, ok := general()
	if !ok || due.BilledFrom != "marketplace" || !due.Overdue || !due.Outstanding.Equal(sum.MarketplaceTotal) {
		t.Fatalf("the general bill's receivable: %+v (listed %t), want %s overdue", due, ok, sum.MarketplaceTotal)
	}
	if code, out := api(http.MethodPost, "/bills/recon/bill/"+period.String()+"/general/receipts", "application/json",
		[]byte(`{"receivedOn":"`+day(28)+`","amount":"`+due.Outstanding.StringFixed(2)+`","reference":"E-TX-1"}`)); code != http.StatusCreated {
		t.Fatalf("receipt: %d %s", code, out)
	}
	if code, out := api(http.MethodPut, "/bills/recon/bill/"+period.String()+"/general/state", "application/json", []byte(`{"state":"支付"}`)); code != http.StatusOK {
		t.Fatalf("paid: %d %s", code, out)
	}
	if code, out := api(http.MethodPost, "/bills/recon/check", "", nil); code != http.StatusOK || strings.Contains(string(out), `"overdue":true`) {
		t.Fatalf("check after payment: %d %s", code, out)
	}
	if r, listed := general(); listed {
		t.Fatalf("the paid general bill is still receivable: %+v", r)
	}
}
