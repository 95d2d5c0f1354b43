package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/kooflow/kooflow/emulator/ledger"
	"github.com/kooflow/kooflow/emulator/market"
	"github.com/kooflow/kooflow/internal/config"
	"github.com/kooflow/kooflow/internal/ledger/fixture"
	"github.com/kooflow/kooflow/internal/recon"
	"github.com/kooflow/kooflow/internal/settlement"
	"github.com/kooflow/kooflow/internal/testenv"
	"github.com/kooflow/kooflow/internal/teststack"
	"github.com/kooflow/kooflow/workflows"
)

// reconOrder is one order line of the month, as the marketplace's ledger and kooflow's orders both hold it.
type reconOrder struct {
	instance, id, typ, paid, refersTo string
	effective                         *time.Time
	supervision                       string
	test, credit                      bool
	repaid                            *time.Time
}

const reconProduct = "OFFI-KOOFLOW-CRM-MONTHLY" // general, 5 % platform fee in the development catalog

var reconMonth = []reconOrder{
	{instance: "e-plain", id: "E-PLAIN", typ: "NEW", paid: "1200", effective: fixture.Beijing("2026-09-05 10:00")},
	{instance: "e-refund", id: "E-REF", typ: "NEW", paid: "1200", effective: fixture.Beijing("2026-09-06 10:00")},
	{instance: "e-refund", id: "E-UNSUB", typ: "UNSUBSCRIBE", paid: "-1200", refersTo: "E-REF", effective: fixture.Beijing("2026-09-08 10:00")},
	{instance: "e-sup", id: "E-SUP", typ: "NEW", paid: "2000", supervision: "IN_SERVICE"},
	{instance: "e-sup-done", id: "E-SUPDONE", typ: "NEW", paid: "999.90", supervision: "COMPLETED", effective: fixture.Beijing("2026-09-20 10:00")},
	{instance: "e-credit", id: "E-CREDIT", typ: "NEW", paid: "800", effective: fixture.Beijing("2026-09-11 10:00"), credit: true, repaid: fixture.Beijing("2026-09-15 10:00")},
	{instance: "e-credit-open", id: "E-CREDITNO", typ: "NEW", paid: "700", effective: fixture.Beijing("2026-09-12 10:00"), credit: true},
	{instance: "e-dial", id: "E-DIAL", typ: "NEW", paid: "100", effective: fixture.Beijing("2026-09-02 10:00"), test: true},
}

// TestReconciliationThroughTheStack closes a month of mixed orders through kooflow's API and worker, has the
// emulated marketplace bill the same month by its own rules, imports its bill detail through the console and
// requires zero unexplained differences; then each bill fault is reported as exactly that difference, and the
// bill is followed to paid after an overdue alert.
func TestReconciliationThroughTheStack(t *testing.T) {
	testenv.SkipShort(t, "the stack")
	cfg, _, _ := teststack.WithMarket(t, teststack.Keys{AccessKey: accessKey, MarketAK: marketAK, MarketSK: marketSK, ConsoleToken: consoleToken},
		market.Options{}, map[string]string{config.EnvTaskQueue: testenv.TaskQueue(t)})
	st := teststack.Start(t, cfg, teststack.Options{})
	ctx := context.Background()

	// kooflow's side: the orders as the lifecycle records them, and the payment state finance records.
	seen := map[string]bool{}
	for _, o := range reconMonth {
		if !seen[o.instance] {
			seen[o.instance] = true
			if err := fixture.Instance(ctx, st.Pool, settlement.InstanceState{ID: o.instance, Supervision: o.supervision, TestFlag: o.test}, reconProduct); err != nil {
				t.Fatal(err)
			}
		}
		if err := fixture.Order(ctx, st.Pool, settlement.OrderRow{Key: settlement.Key{OrderID: o.id, OrderLineID: o.id + "-1"},
			InstanceID: o.instance, OrderType: o.typ, ProductID: reconProduct, SKUCode: "crm-basic-month", PeriodType: "month", PeriodNum: 1,
			PaidAmount: fixture.Amount(o.paid), ListAmount: fixture.Amount(o.paid), RefersTo: o.refersTo, EffectiveAt: o.effective, TestFlag: o.test}); err != nil {
			t.Fatal(err)
		}
	}
	console := func(method, path, contentType string, body []byte) (int, []byte) {
		t.Helper()
		req, err := http.NewRequest(method, st.URL+"/console/v1"+path, bytes.NewReader(body))
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
	for _, o := range reconMonth {
		if !o.credit {
			continue
		}
		body := map[string]any{"credit": true}
		if o.repaid != nil {
			body["repaidAt"] = o.repaid.Format(time.RFC3339)
		}
		b, _ := json.Marshal(body)
		if code, out := console(http.MethodPut, "/bills/payments/"+o.id, "application/json", b); code != http.StatusOK {
			t.Fatalf("payment of %s: %d %s", o.id, code, out)
		}
	}
	// kooflow closes September through the settlement workflow.
	if code, out := console(http.MethodPost, "/bills/close", "application/json", []byte(`{"period":"2026-09"}`)); code != http.StatusAccepted {
		t.Fatalf("close: %d %s", code, out)
	}
	if err := st.Temporal.GetWorkflow(ctx, workflows.SettlementWorkflowID(settlement.MustPeriod("2026-09")), "").Get(ctx, nil); err != nil {
		t.Fatal(err)
	}

	// The marketplace's side: its own ledger and bill.
	bill := func(f ledger.BillFaults) []byte {
		l := ledger.New()
		for _, o := range reconMonth {
			if err := l.Add(ledger.Entry{OrderID: o.id, OrderLineID: o.id + "-1", OrderType: o.typ, InstanceID: o.instance, ProductID: reconProduct,
				Amount: fixture.Amount(o.paid), RefersTo: o.refersTo, EffectiveAt: o.effective, TestFlag: o.test, Credit: o.credit,
				RepaidAt: o.repaid, Supervision: o.supervision}); err != nil {
				t.Fatal(err)
			}
		}
		b, err := l.Bill(ledger.BillRequest{Period: "2026-09", End: settlement.MustPeriod("2026-09").End(), ProductType: ledger.TypeGeneral,
			Threshold: decimal.NewFromInt(1000), Faults: f, Terms: func(id string) (ledger.Terms, bool) {
				return ledger.Terms{Type: ledger.TypeGeneral, Rate: decimal.RequireFromString("0.05")}, id == reconProduct
			}})
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		if err := b.WriteDetailXLSX(&buf); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	}
	type result struct {
		Diff recon.Summary
	}
	importBill := func(file []byte) (recon.Summary, []recon.DiffLine) {
		t.Helper()
		var body bytes.Buffer
		mw := multipart.NewWriter(&body)
		fw, _ := mw.CreateFormFile("file", "账单明细.xlsx")
		_, _ = fw.Write(file)
		_ = mw.Close()
		code, out := console(http.MethodPost, "/bills/recon/imports?period=2026-09&productType=general", mw.FormDataContentType(), body.Bytes())
		if code != http.StatusCreated {
			t.Fatalf("import: %d %s", code, out)
		}
		var r result
		if err := json.Unmarshal(out, &r); err != nil {
			t.Fatal(err)
		}
		code, out = console(http.MethodGet, fmt.Sprintf("/bills/recon/diffs/%d", r.Diff.DiffID), "", nil)
		var page struct{ Lines []recon.DiffLine }
		if code != http.StatusOK || json.Unmarshal(out, &page) != nil {
			t.Fatalf("diff lines: %d %s", code, out)
		}
		return r.Diff, page.Lines
	}

	sum, lines := importBill(bill(ledger.BillFaults{}))
	if sum.UnexplainedCount != 0 || len(lines) != 0 || sum.MatchedCount != 5 || !sum.MarketplaceTotal.Equal(sum.KooflowTotal) {
		t.Fatalf("the marketplace's bill does not reconcile: %+v %+v", sum, lines)
	}
	for _, tc := range []struct {
		name   string
		faults ledger.BillFaults
		want   string
	}{
		{"drop", ledger.BillFaults{Drop: []string{"E-PLAIN/E-PLAIN-1"}}, "E-PLAIN KOOFLOW_ONLY false -1140.00"},
		{"change", ledger.BillFaults{Change: map[string]decimal.Decimal{"E-CREDIT/E-CREDIT-1": decimal.RequireFromString("0.01")}}, "E-CREDIT AMOUNT false 0.01"},
		{"add", ledger.BillFaults{Add: []ledger.BillLine{{OrderID: "E-GHOST", OrderLineID: "E-GHOST-1", OrderType: "NEW",
			Revenue: decimal.NewFromInt(10), PlatformFee: decimal.RequireFromString("0.50"), Settlement: decimal.RequireFromString("9.50")}}}, "E-GHOST MARKETPLACE_ONLY false 9.50"},
	} {
		sum, lines := importBill(bill(tc.faults))
		var got []string
		for _, l := range lines {
			got = append(got, fmt.Sprintf("%s %s %t %s", l.OrderID, l.Kind, l.Explained, l.Difference.StringFixed(2)))
		}
		if strings.Join(got, "\n") != tc.want || sum.UnexplainedCount != 1 {
			t.Errorf("%s: got %v (unexplained %d), want %s", tc.name, got, sum.UnexplainedCount, tc.want)
		}
	}

	// The bill to paid: invoiced in October, unpaid past its date (an alert), then paid.
	for _, st := range []string{"待会签", "会签中", "待申付", "申付审核", "申付处理中"} {
		if code, out := console(http.MethodPut, "/bills/recon/bill/2026-09/general/state", "application/json", []byte(`{"state":"`+st+`"}`)); code != http.StatusOK {
			t.Fatalf("state %s: %d %s", st, code, out)
		}
	}
	if code, out := console(http.MethodPost, "/bills/recon/bill/2026-09/general/invoice", "application/json",
		[]byte(`{"number":"E-INV-1","issuedOn":"2026-10-12","amount":"`+sum.MarketplaceTotal.StringFixed(2)+`"}`)); code != http.StatusCreated {
		t.Fatalf("invoice: %d %s", code, out)
	}
	if code, out := console(http.MethodPost, "/bills/recon/check", "", nil); code != http.StatusOK || !strings.Contains(string(out), `"overdue":true`) {
		t.Fatalf("check: %d %s", code, out)
	}
	if code, out := console(http.MethodGet, "/alerts", "", nil); code != http.StatusOK || !strings.Contains(string(out), recon.AlertOverdue) {
		t.Fatalf("the overdue payment is not among the alerts: %d %s", code, out)
	}
	// The marketplace pays what its latest bill detail says (the last import above added a line).
	var rv struct{ Receivables []recon.Receivable }
	if code, out := console(http.MethodGet, "/bills/recon/receivables", "", nil); code != http.StatusOK || json.Unmarshal(out, &rv) != nil ||
		len(rv.Receivables) != 1 || rv.Receivables[0].BilledFrom != "marketplace" || !rv.Receivables[0].Overdue {
		t.Fatalf("receivables: %d %s", code, out)
	}
	if code, out := console(http.MethodPost, "/bills/recon/bill/2026-09/general/receipts", "application/json",
		[]byte(`{"receivedOn":"2026-10-21","amount":"`+rv.Receivables[0].Outstanding.StringFixed(2)+`","reference":"E-TX-1"}`)); code != http.StatusCreated {
		t.Fatalf("receipt: %d %s", code, out)
	}
	if code, out := console(http.MethodPut, "/bills/recon/bill/2026-09/general/state", "application/json", []byte(`{"state":"支付"}`)); code != http.StatusOK {
		t.Fatalf("paid: %d %s", code, out)
	}
	if code, out := console(http.MethodPost, "/bills/recon/check", "", nil); code != http.StatusOK || strings.Contains(string(out), `"overdue":true`) {
		t.Fatalf("check after payment: %d %s", code, out)
	}
	if code, out := console(http.MethodGet, "/bills/recon/receivables", "", nil); code != http.StatusOK || !strings.Contains(string(out), `"outstandingTotal":"0.00"`) {
		t.Fatalf("receivables after payment: %d %s", code, out)
	}
}
