package bills

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"mime/multipart"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/shopspring/decimal"
	"github.com/xuri/excelize/v2"

	emuledger "github.com/kooflow/kooflow/emulator/ledger"
	"github.com/kooflow/kooflow/internal/ledger/fixture"
	"github.com/kooflow/kooflow/internal/recon"
	"github.com/kooflow/kooflow/internal/settlement"
)

// septemberBill is the emulated marketplace's bill of the orders start() records, by its own rules.
func septemberBill(t *testing.T, faults emuledger.BillFaults) []byte {
	t.Helper()
	l := emuledger.New()
	crm := "OFFI-KOOFLOW-CRM-MONTHLY"
	for _, e := range []emuledger.Entry{
		{OrderID: "O-SEED", OrderLineID: "O-SEED-1", OrderType: "NEW", InstanceID: "i-seed", ProductID: crm, Amount: fixture.Amount("1200"), EffectiveAt: fixture.Beijing("2026-09-05 10:00")},
		{OrderID: "U-SEED", OrderLineID: "O-SEED-1", OrderType: "UNSUBSCRIBE", InstanceID: "i-seed", ProductID: crm, Amount: fixture.Amount("-1200"), RefersTo: "O-SEED", EffectiveAt: fixture.Beijing("2026-09-07 10:00")},
		{OrderID: "O-A", OrderLineID: "O-A-1", OrderType: "NEW", InstanceID: "i-a", ProductID: crm, Amount: fixture.Amount("1500"), EffectiveAt: fixture.Beijing("2026-09-10 10:00")},
		{OrderID: "O-CREDIT", OrderLineID: "O-CREDIT-1", OrderType: "NEW", InstanceID: "i-credit", ProductID: crm, Amount: fixture.Amount("800"), EffectiveAt: fixture.Beijing("2026-09-11 10:00"), Credit: true},
		{OrderID: "O-SUP", OrderLineID: "O-SUP-1", OrderType: "NEW", InstanceID: "i-sup", ProductID: "OFFI-KOOFLOW-ONBOARDING", Amount: fixture.Amount("2000"), Supervision: "AWAITING_ACCEPTANCE"},
	} {
		if err := l.Add(e); err != nil {
			t.Fatal(err)
		}
	}
	b, err := l.Bill(emuledger.BillRequest{Period: "2026-09", End: settlement.MustPeriod("2026-09").End(), ProductType: emuledger.TypeGeneral,
		Threshold: decimal.NewFromInt(1000), Faults: faults, Terms: func(id string) (emuledger.Terms, bool) {
			if id == crm {
				return emuledger.Terms{Type: emuledger.TypeGeneral, Rate: decimal.RequireFromString("0.05")}, true
			}
			return emuledger.Terms{}, false
		}})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := b.WriteDetailCSV(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func upload(t *testing.T, a api, query string, file []byte) (*http.Response, []byte) {
	t.Helper()
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	fw, err := mw.CreateFormFile("file", "bill-detail.csv")
	if err != nil {
		t.Fatal(err)
	}
	_, _ = fw.Write(file)
	if err := mw.Close(); err != nil {
		t.Fatal(err)
	}
	return a.do(http.MethodPost, "/bills/recon/imports?"+query, mw.FormDataContentType(), body.Bytes())
}

func TestReconciliationOverHTTP(t *testing.T) {
	a, ls := start(t)
	ctx := context.Background()
	var started struct {
		WorkflowID string `json:"workflowId"`
		RunID      string `json:"runId"`
	}
	a.json(http.MethodPost, "/bills/close", map[string]any{"period": "2026-09"}, http.StatusAccepted, &started)
	if err := a.tc.GetWorkflow(ctx, started.WorkflowID, started.RunID).Get(ctx, nil); err != nil {
		t.Fatal(err)
	}

	// The marketplace's bill as it is: nothing to report.
	resp, b := upload(t, a, "period=2026-09&productType=general", septemberBill(t, emuledger.BillFaults{}))
	if resp.StatusCode != http.StatusCreated || !strings.Contains(string(b), `"unexplainedCount":0`) || !strings.Contains(string(b), `"explainedCount":0`) ||
		!strings.Contains(string(b), `"matchedCount":3`) {
		t.Fatalf("clean import: %d %s", resp.StatusCode, b)
	}
	resp, b = upload(t, a, "period=2026-09&productType=general", septemberBill(t, emuledger.BillFaults{}))
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(b), `"alreadyImported":true`) {
		t.Fatalf("same file again: %d %s", resp.StatusCode, b)
	}

	// A bill with a line kooflow holds for repayment, a changed amount and a line with a formula for an order id.
	faulty := septemberBill(t, emuledger.BillFaults{
		Change: map[string]decimal.Decimal{"O-A/O-A-1": decimal.RequireFromString("-10")},
		Add: []emuledger.BillLine{
			{OrderID: "O-CREDIT", OrderLineID: "O-CREDIT-1", OrderType: "NEW", Revenue: decimal.NewFromInt(800), PlatformFee: decimal.NewFromInt(40), Settlement: decimal.NewFromInt(760)},
			{OrderID: "=1+2", OrderLineID: "=1+2", OrderType: "NEW", Revenue: decimal.NewFromInt(1), PlatformFee: decimal.Zero, Settlement: decimal.NewFromInt(1)},
		}})
	var res struct {
		Import recon.Import
		Diff   recon.Summary
	}
	resp, b = upload(t, a, "period=2026-09&productType=general", faulty)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("faulty import: %d %s", resp.StatusCode, b)
	}
	if err := jsonUnmarshal(b, &res); err != nil {
		t.Fatal(err)
	}
	if res.Diff.MatchedCount != 2 || res.Diff.ExplainedCount != 1 || res.Diff.UnexplainedCount != 2 ||
		!res.Diff.UnexplainedTotal.Equal(decimal.NewFromInt(-9)) || !res.Diff.ExplainedTotal.Equal(decimal.NewFromInt(760)) {
		t.Fatalf("faulty diff: %+v", res.Diff)
	}
	// The unexplained difference is a system alert, open for the pusher and the console.
	var open int
	if err := ls.Pool.QueryRow(ctx, `SELECT count(*) FROM system_alerts WHERE kind = $1 AND subject = 'marketplace bill 2026-09 general'
		AND resolved_at IS NULL`, recon.AlertUnexplained).Scan(&open); err != nil || open != 1 {
		t.Fatalf("open reconciliation alerts: %d %v", open, err)
	}
	var page struct {
		Lines []recon.DiffLine
	}
	a.json(http.MethodGet, "/bills/recon/diffs/"+itoa(res.Diff.DiffID)+"?explained=true", nil, http.StatusOK, &page)
	if len(page.Lines) != 1 || page.Lines[0].OrderID != "O-CREDIT" || page.Lines[0].ReasonCode != "NOT_REPAID" {
		t.Fatalf("explained lines: %+v", page.Lines)
	}
	resp, out := a.do(http.MethodGet, "/bills/recon/diffs/"+itoa(res.Diff.DiffID)+"/export.csv", "", nil)
	cr := csv.NewReader(bytes.NewReader(out))
	cr.FieldsPerRecord = -1 // the summary rows are shorter than the line rows
	recs, err := cr.ReadAll()
	if resp.StatusCode != http.StatusOK || err != nil || len(recs) != 1+5+3 {
		t.Fatalf("csv export: %d %v %q", resp.StatusCode, err, out)
	}
	if recs[6][0] != "'=1+2" || recs[6][2] != recon.KindMarketplaceOnly || recs[7][0] != "O-A" || recs[7][6] != "-10.00" {
		t.Fatalf("csv export rows: %q", recs[6:])
	}
	resp, xb := a.do(http.MethodGet, "/bills/recon/diffs/"+itoa(res.Diff.DiffID)+"/export.xlsx", "", nil)
	x, err := excelize.OpenReader(bytes.NewReader(xb))
	if resp.StatusCode != http.StatusOK || err != nil {
		t.Fatalf("xlsx export: %d %v", resp.StatusCode, err)
	}
	if v, _ := x.GetCellValue("Differences", "A2"); v != "'=1+2" {
		t.Fatalf("xlsx formula cell: %q", v)
	}
	if f, _ := x.GetCellFormula("Differences", "A2"); f != "" {
		t.Fatalf("xlsx cell holds a formula: %q", f)
	}

	// Bad files change nothing and say where.
	bad := strings.Replace(string(septemberBill(t, emuledger.BillFaults{})), "1425.00", "14.25.00", 1)
	resp, b = upload(t, a, "period=2026-09&productType=general", []byte(bad))
	a.problem(resp, b, http.StatusBadRequest, `column \"伙伴结算金额(含税)\"`)
	resp, b = upload(t, a, "period=2026-13&productType=general", []byte(bad))
	a.problem(resp, b, http.StatusBadRequest, "period")

	// The bill's state and money: invoiced, paid.
	var st struct{ State string }
	a.json(http.MethodPut, "/bills/recon/bill/2026-09/general/state", map[string]string{"state": "会签中"}, http.StatusOK, &st)
	if st.State != string(recon.StateCountersigning) {
		t.Fatalf("state %+v", st)
	}
	resp, b = a.do(http.MethodPut, "/bills/recon/bill/2026-09/general/state", "application/json", []byte(`{"state":"COUNTERSIGN_PENDING"}`))
	a.problem(resp, b, http.StatusConflict, "cannot move")
	a.json(http.MethodPost, "/bills/recon/bill/2026-09/general/invoice", map[string]string{"number": "INV-9", "issuedOn": "2026-10-12", "amount": "1425.00"}, http.StatusCreated, nil)
	var rv struct {
		Receivables      []recon.Receivable
		OutstandingTotal string
	}
	a.json(http.MethodGet, "/bills/recon/receivables", nil, http.StatusOK, &rv)
	if len(rv.Receivables) != 1 || rv.Receivables[0].ExpectedPaymentOn != "2026-10-20" || rv.Receivables[0].BilledFrom != "marketplace" {
		t.Fatalf("receivables %+v", rv)
	}
	// Payment was due on 2026-10-20 and nothing came: the check raises an overdue alert.
	var chk struct{ Alerted []recon.Receivable }
	a.json(http.MethodPost, "/bills/recon/check", nil, http.StatusOK, &chk)
	if len(chk.Alerted) != 1 || !chk.Alerted[0].Overdue {
		t.Fatalf("check: %+v", chk)
	}
	overdue := func() int {
		var n int
		if err := ls.Pool.QueryRow(ctx, `SELECT count(*) FROM system_alerts WHERE kind = $1 AND resolved_at IS NULL`, recon.AlertOverdue).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if overdue() != 1 {
		t.Fatal("no open overdue alert")
	}
	a.json(http.MethodPost, "/bills/recon/bill/2026-09/general/receipts", map[string]string{"receivedOn": "2026-10-20", "amount": rv.Receivables[0].Outstanding.StringFixed(2), "reference": "TX-1"}, http.StatusCreated, nil)
	a.json(http.MethodPut, "/bills/recon/bill/2026-09/general/state", map[string]string{"state": "PAID"}, http.StatusOK, nil)
	a.json(http.MethodGet, "/bills/recon/receivables", nil, http.StatusOK, &rv)
	if len(rv.Receivables) != 0 || rv.OutstandingTotal != "0.00" {
		t.Fatalf("paid bill still receivable: %+v", rv)
	}
	a.json(http.MethodPost, "/bills/recon/check", nil, http.StatusOK, &chk)
	if len(chk.Alerted) != 0 || overdue() != 0 {
		t.Fatalf("overdue alert stays open after payment: %+v", chk)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }
