package bills

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/shopspring/decimal"
	"github.com/xuri/excelize/v2"
	"go.temporal.io/sdk/client"
	sdkworker "go.temporal.io/sdk/worker"
	"golang.org/x/text/encoding/simplifiedchinese"

	"github.com/kooflow/kooflow/activities"
	"github.com/kooflow/kooflow/api/httpx"
	"github.com/kooflow/kooflow/internal/app"
	"github.com/kooflow/kooflow/internal/catalog"
	"github.com/kooflow/kooflow/internal/config"
	"github.com/kooflow/kooflow/internal/ledger"
	"github.com/kooflow/kooflow/internal/ledger/fixture"
	"github.com/kooflow/kooflow/internal/settlement"
	"github.com/kooflow/kooflow/internal/testenv"
	"github.com/kooflow/kooflow/worker"
	"github.com/kooflow/kooflow/workflows"
)

func TestMain(m *testing.M) { testenv.Main(m) }

const token = "bills-test-token-0123456789"

type api struct {
	t   *testing.T
	url string
	tc  client.Client
}

func (a api) do(method, path, contentType string, body []byte, headers ...string) (*http.Response, []byte) {
	a.t.Helper()
	req, err := http.NewRequest(method, a.url+"/console/v1"+path, bytes.NewReader(body))
	if err != nil {
		a.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		a.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		a.t.Fatal(err)
	}
	return resp, b
}

func (a api) json(method, path string, in any, wantStatus int, out any, headers ...string) {
	a.t.Helper()
	var body []byte
	if in != nil {
		var err error
		if body, err = json.Marshal(in); err != nil {
			a.t.Fatal(err)
		}
	}
	resp, b := a.do(method, path, "application/json", body, headers...)
	if resp.StatusCode != wantStatus {
		a.t.Fatalf("%s %s: %d %s, want %d", method, path, resp.StatusCode, b, wantStatus)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			a.t.Fatalf("%s %s: %v in %s", method, path, err, b)
		}
	}
}

// problem checks an RFC 9457 answer.
func (a api) problem(resp *http.Response, b []byte, status int, mention string) {
	a.t.Helper()
	var p httpx.Problem
	if resp.StatusCode != status || resp.Header.Get("Content-Type") != "application/problem+json" || json.Unmarshal(b, &p) != nil ||
		!strings.Contains(string(b), mention) {
		a.t.Fatalf("want a %d problem mentioning %q, got %d %s %s", status, mention, resp.StatusCode, resp.Header.Get("Content-Type"), b)
	}
}

func start(t *testing.T) (api, *ledger.Store) {
	t.Helper()
	pool := testenv.Pool(t)
	tc := testenv.TemporalClient(t)
	tq := testenv.TaskQueue(t)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	cfg := config.Config{TaskQueue: tq, SettlementThreshold: decimal.NewFromInt(1000), ConsoleTokens: config.Secret("ops:" + token)}
	cat, err := catalog.Parse(catalog.DevCatalog)
	if err != nil {
		t.Fatal(err)
	}
	store := &ledger.Store{Pool: pool}
	w := sdkworker.New(tc, tq, sdkworker.Options{})
	worker.RegisterWorkflows(w, workflows.LifecycleConfig{})
	w.RegisterActivity(&activities.Settlement{Store: store, Catalog: cat, Log: log,
		Settings: activities.SettlementSettings{Threshold: cfg.SettlementThreshold, BatchSize: 3}})
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Stop)

	tokens, err := cfg.ParseConsoleTokens()
	if err != nil {
		t.Fatal(err)
	}
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	r.Use(httpx.RequestContext(log), httpx.Recover())
	console := httpx.NewConsole(r, "/console/v1", tokens)
	Mount(console, app.Deps{Config: cfg, Log: log, Pool: pool, Temporal: tc, Catalog: cat})
	MountRecon(console, app.Deps{Config: cfg, Log: log, Pool: pool, Temporal: tc, Catalog: cat})
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)

	ctx := context.Background()
	add := func(inst, id, typ, product, paid string, eff *time.Time, refersTo string, sup string) {
		t.Helper()
		var exists bool
		if err := pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM instances WHERE instance_id = $1)`, inst).Scan(&exists); err != nil {
			t.Fatal(err)
		}
		if !exists {
			if err := fixture.Instance(ctx, pool, settlement.InstanceState{ID: inst, Supervision: sup}, product); err != nil {
				t.Fatal(err)
			}
		}
		line := id + "-1"
		if refersTo != "" {
			line = refersTo + "-1"
		}
		if err := fixture.Order(ctx, pool, settlement.OrderRow{Key: settlement.Key{OrderID: id, OrderLineID: line}, InstanceID: inst,
			OrderType: typ, ProductID: product, SKUCode: "crm-basic-month", PeriodType: "month", PeriodNum: 12, Quantity: 1,
			PaidAmount: fixture.Amount(paid), ListAmount: fixture.Amount("1200"), RefersTo: refersTo, EffectiveAt: eff}); err != nil {
			t.Fatal(err)
		}
	}
	crm := "OFFI-KOOFLOW-CRM-MONTHLY"
	add("i-seed", "O-SEED", "NEW", crm, "1200", fixture.Beijing("2026-09-05 10:00"), "", "")
	add("i-seed", "U-SEED", "UNSUBSCRIBE", crm, "-1200", fixture.Beijing("2026-09-07 10:00"), "O-SEED", "")
	add("i-a", "O-A", "NEW", crm, "1500", fixture.Beijing("2026-09-10 10:00"), "", "")
	add("i-credit", "O-CREDIT", "NEW", crm, "800", fixture.Beijing("2026-09-11 10:00"), "", "")
	add("i-sup", "O-SUP", "NEW", "OFFI-KOOFLOW-ONBOARDING", "2000", nil, "", "AWAITING_ACCEPTANCE")
	if _, _, err := store.SetPayment(ctx, "O-CREDIT", true, nil, "test", time.Now()); err != nil {
		t.Fatal(err)
	}
	return api{t: t, url: srv.URL, tc: tc}, store
}

func TestBillsOverHTTP(t *testing.T) {
	a, _ := start(t)
	ctx := context.Background()

	// An operator closes September from the console; the workflow runs on the worker.
	var started struct {
		WorkflowID string `json:"workflowId"`
		RunID      string `json:"runId"`
	}
	a.json(http.MethodPost, "/bills/close", map[string]any{"period": "2026-09"}, http.StatusAccepted, &started)
	if err := a.tc.GetWorkflow(ctx, started.WorkflowID, started.RunID).Get(ctx, nil); err != nil {
		t.Fatal(err)
	}
	resp, b := a.do(http.MethodPost, "/bills/close", "application/json", []byte(`{"period":"2099-01"}`))
	a.problem(resp, b, http.StatusBadRequest, "has not ended")

	var list struct{ Bills []BillJSON }
	a.json(http.MethodGet, "/bills?period=2026-09", nil, http.StatusOK, &list)
	if len(list.Bills) != 2 {
		t.Fatalf("bills %+v", list)
	}
	var show struct {
		Bill      BillJSON
		Lines     []LineJSON
		NextAfter string
	}
	a.json(http.MethodGet, "/bills/2026-09/general?limit=2", nil, http.StatusOK, &show)
	if show.Bill.Status != "final" || show.Bill.LineCount != 3 || show.Bill.AmountDue != "1425.00" || len(show.Lines) != 2 ||
		show.NextAfter != "O-SEED/O-SEED-1" || show.Lines[1].Settlement != "1140.00" {
		t.Fatalf("bill %+v", show)
	}
	var page2 struct{ Lines []LineJSON }
	a.json(http.MethodGet, "/bills/2026-09/general?limit=2&after="+show.NextAfter, nil, http.StatusOK, &page2)
	if len(page2.Lines) != 1 || page2.Lines[0].OrderID != "U-SEED" || page2.Lines[0].Settlement != "-1140.00" {
		t.Fatalf("second page %+v", page2)
	}

	// CSV: the bill's lines, the same bytes every time, with the content hash in a header.
	resp, csv1 := a.do(http.MethodGet, "/bills/2026-09/general/export.csv", "", nil)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("X-Bill-Content-Hash") != show.Bill.ContentHash ||
		!strings.HasPrefix(resp.Header.Get("Content-Type"), "text/csv") {
		t.Fatalf("csv: %d %v", resp.StatusCode, resp.Header)
	}
	recs, err := csv.NewReader(bytes.NewReader(csv1)).ReadAll()
	if err != nil || len(recs) != 4 || recs[0][0] != "line_kind" || recs[3][3] != "U-SEED" || recs[3][16] != "-1140.00" {
		t.Fatalf("csv records %v %v", recs, err)
	}
	if _, csv2 := a.do(http.MethodGet, "/bills/2026-09/general/export.csv", "", nil); !bytes.Equal(csv1, csv2) {
		t.Fatal("two exports of a closed bill differ")
	}
	// XLSX: a summary and the lines, amounts as numbers.
	resp, xb := a.do(http.MethodGet, "/bills/2026-09/general/export.xlsx", "", nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("xlsx: %d %s", resp.StatusCode, xb)
	}
	x, err := excelize.OpenReader(bytes.NewReader(xb))
	if err != nil {
		t.Fatal(err)
	}
	rows, err := x.GetRows("Lines")
	if err != nil || len(rows) != 4 || rows[1][3] != "O-A" {
		t.Fatalf("xlsx lines %v %v", rows, err)
	}
	if v, _ := x.GetCellValue("Lines", "Q2"); v != "1425.00" && v != "1,425.00" {
		t.Errorf("xlsx settlement of O-A: %q", v)
	}
	if typ, _ := x.GetCellType("Lines", "Q2"); typ != excelize.CellTypeNumber && typ != excelize.CellTypeUnset {
		t.Errorf("xlsx amounts must be numbers, got cell type %v", typ)
	}
	summary, _ := x.GetRows("Summary")
	if !strings.Contains(fmt.Sprint(summary), show.Bill.ContentHash) {
		t.Errorf("xlsx summary lacks the content hash: %v", summary)
	}
	resp, b = a.do(http.MethodGet, "/bills/2026-08/general/export.csv", "", nil)
	a.problem(resp, b, http.StatusNotFound, "no general bill for 2026-08")
	resp, b = a.do(http.MethodGet, "/bills/2026-13/general", "", nil)
	a.problem(resp, b, http.StatusBadRequest, "period")

	// Explain: settled, not repaid, and supervision.
	var ex struct {
		Lines []ledger.Explanation
	}
	a.json(http.MethodGet, "/bills/orders/O-SEED/explain", nil, http.StatusOK, &ex)
	if len(ex.Lines) != 1 || ex.Lines[0].Settled == nil || ex.Lines[0].Settled.Period != "2026-09" {
		t.Fatalf("explain O-SEED %+v", ex)
	}
	ex.Lines = nil
	a.json(http.MethodGet, "/bills/orders/O-CREDIT/explain", nil, http.StatusOK, &ex)
	if e := ex.Lines[0]; e.Settled != nil || !hasReason(e, settlement.ReasonUnpaid) || !strings.Contains(e.Summary, "回款") {
		t.Fatalf("explain O-CREDIT %+v", e)
	}
	ex.Lines = nil
	a.json(http.MethodGet, "/bills/orders/O-SUP/explain", nil, http.StatusOK, &ex)
	if e := ex.Lines[0]; !hasReason(e, settlement.ReasonSupervision) {
		t.Fatalf("explain O-SUP %+v", e)
	}
	resp, b = a.do(http.MethodGet, "/bills/orders/NOPE/explain", "", nil)
	a.problem(resp, b, http.StatusNotFound, "NOPE")

	// The repayment arrives: the order becomes eligible for the running month, as the estimate shows.
	var rep struct {
		Payment PaymentJSON
		Changed bool
	}
	a.json(http.MethodPost, "/bills/repayments", map[string]any{"orderId": "O-CREDIT"}, http.StatusOK, &rep)
	if !rep.Changed || !rep.Payment.Credit || rep.Payment.RepaidAt == nil {
		t.Fatalf("repayment %+v", rep)
	}
	a.json(http.MethodPost, "/bills/repayments", map[string]any{"orderId": "O-CREDIT", "repaidAt": rep.Payment.RepaidAt}, http.StatusOK, &rep)
	if rep.Changed {
		t.Fatal("recording the same repayment twice changed something")
	}
	resp, b = a.do(http.MethodPut, "/bills/payments/O-X", "application/json", []byte(`{"credit":false,"repaidAt":"2026-10-01T00:00:00Z"}`))
	a.problem(resp, b, http.StatusBadRequest, "credit-paid")
	var est struct {
		Kind         string
		ProductTypes []map[string]any
	}
	a.json(http.MethodPost, "/bills/estimate", nil, http.StatusOK, &est)
	if est.Kind != "estimate" || est.ProductTypes[0]["productType"] != "general" || est.ProductTypes[0]["settlement"] != "760.00" ||
		est.ProductTypes[0]["wouldBill"] != false {
		t.Fatalf("estimate %+v", est)
	}
	var bills int
	if err := testenvCount(a, &bills); err != nil || bills != 2 {
		t.Fatalf("the estimate wrote something: %d bills %v", bills, err)
	}

	// Adjustments: idempotent by key; bad input changes nothing.
	var adj AdjustmentJSON
	body := map[string]any{"productType": "general", "amount": "-12.50", "reason": "September support credit", "correctsPeriod": "2026-09"}
	a.json(http.MethodPost, "/bills/adjustments", body, http.StatusCreated, &adj, "Idempotency-Key", "adj-1")
	var again AdjustmentJSON
	a.json(http.MethodPost, "/bills/adjustments", body, http.StatusOK, &again, "Idempotency-Key", "adj-1")
	if again.ID != adj.ID || adj.Amount != "-12.50" {
		t.Fatalf("adjustments %+v %+v", adj, again)
	}
	body["amount"] = "-13.00"
	resp, b = a.do(http.MethodPost, "/bills/adjustments", "application/json", mustJSON(body), "Idempotency-Key", "adj-1")
	a.problem(resp, b, http.StatusConflict, "different adjustment")
	resp, b = a.do(http.MethodPost, "/bills/adjustments", "application/json", []byte(`{"productType":"general","amount":"1.234","reason":""}`))
	a.problem(resp, b, http.StatusBadRequest, "amount")
	var pending struct{ Pending []AdjustmentJSON }
	a.json(http.MethodGet, "/bills/adjustments", nil, http.StatusOK, &pending)
	if len(pending.Pending) != 1 {
		t.Fatalf("pending adjustments %+v", pending)
	}

	resp, _ = http.Get(a.url + "/console/v1/bills")
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("no token: %d", resp.StatusCode)
	}
}

func hasReason(e ledger.Explanation, code settlement.ReasonCode) bool {
	for _, p := range e.Periods {
		for _, r := range p.Reasons {
			if r.Code == code {
				return true
			}
		}
	}
	return false
}

func mustJSON(v any) []byte {
	b, _ := json.Marshal(v)
	return b
}

func testenvCount(a api, n *int) error {
	var list struct{ Bills []BillJSON }
	a.json(http.MethodGet, "/bills", nil, http.StatusOK, &list)
	*n = len(list.Bills)
	return nil
}

func TestImportTransactionDetails(t *testing.T) {
	a, store := start(t)
	ctx := context.Background()
	file := "\xef\xbb\xbf订单号,商品名称,支付方式,回款状态,回款时间\n" +
		"O-CREDIT,CRM,信用支付,已回款,2026-10-08 11:00:00\n" +
		"O-A,CRM,信用支付,未回款,\n" +
		"O-CASH,CRM,余额支付,已回款,2026-09-01 00:00:00\n"
	resp, b := a.do(http.MethodPost, "/bills/transactions/import?filename=detail.csv", "text/csv", []byte(file))
	var res ledger.ImportResult
	if resp.StatusCode != http.StatusCreated || json.Unmarshal(b, &res) != nil || res.Rows != 3 || res.CreditOrders != 2 ||
		res.RepaidOrders != 1 || res.Changed != 2 || res.UnknownOrders != 1 {
		t.Fatalf("import: %d %s", resp.StatusCode, b)
	}
	p, err := store.Payment(ctx, "O-CREDIT")
	if err != nil || !p.Credit || p.RepaidAt == nil || !p.RepaidAt.Equal(*fixture.Beijing("2026-10-08 11:00")) || len(p.History) != 2 {
		t.Fatalf("O-CREDIT after import: %+v %v", p, err)
	}
	if p, _ := store.Payment(ctx, "O-A"); !p.Credit || p.RepaidAt != nil {
		t.Fatalf("O-A after import: %+v", p)
	}
	if p, _ := store.Payment(ctx, "O-CASH"); p.Recorded {
		t.Fatalf("a cash order got a payment record: %+v", p)
	}
	// The same file again changes nothing.
	resp, b = a.do(http.MethodPost, "/bills/transactions/import", "text/csv", []byte(file))
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(b), `"alreadyImported":true`) {
		t.Fatalf("re-import: %d %s", resp.StatusCode, b)
	}
	// A file with one bad row is refused whole, naming the row.
	bad := "订单号,支付方式,回款状态,回款时间\nO-B,信用支付,未回款,\nO-A,信用支付,已回款,yesterday\n"
	resp, b = a.do(http.MethodPost, "/bills/transactions/import", "text/csv", []byte(bad))
	a.problem(resp, b, http.StatusBadRequest, "line 3")
	if p, _ := store.Payment(ctx, "O-B"); p.Recorded {
		t.Fatal("a refused import changed a payment")
	}
	resp, b = a.do(http.MethodPost, "/bills/transactions/import", "text/csv", []byte("金额,时间\n1,2\n"))
	a.problem(resp, b, http.StatusBadRequest, "订单号")
	// GB18030, as exported for Excel, through a multipart upload.
	gbk, err := simplifiedchinese.GB18030.NewEncoder().Bytes([]byte("订单号,支付方式,回款状态,回款时间\nO-GBK,信用支付,未回款,\n"))
	if err != nil {
		t.Fatal(err)
	}
	var mp bytes.Buffer
	boundary := "kooflowboundary"
	fmt.Fprintf(&mp, "--%s\r\nContent-Disposition: form-data; name=\"file\"; filename=\"明细.csv\"\r\nContent-Type: text/csv\r\n\r\n", boundary)
	mp.Write(gbk)
	fmt.Fprintf(&mp, "\r\n--%s--\r\n", boundary)
	resp, b = a.do(http.MethodPost, "/bills/transactions/import", "multipart/form-data; boundary="+boundary, mp.Bytes())
	if resp.StatusCode != http.StatusCreated || !strings.Contains(string(b), "明细.csv") {
		t.Fatalf("GB18030 multipart import: %d %s", resp.StatusCode, b)
	}
	if p, _ := store.Payment(ctx, "O-GBK"); !p.Credit {
		t.Fatalf("O-GBK after the GB18030 import: %+v", p)
	}
	// An upload over the cap is refused before it is parsed, with or without a Content-Length.
	var huge bytes.Buffer
	fmt.Fprintf(&huge, "--%s\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.csv\"\r\n\r\n", boundary)
	huge.WriteString("订单号,支付方式,回款状态,回款时间\n")
	huge.Write(bytes.Repeat([]byte("O-BIG,信用支付,已回款,2026-10-01 00:00:00\n"), (33<<20)/40))
	fmt.Fprintf(&huge, "\r\n--%s--\r\n", boundary)
	resp, b = a.do(http.MethodPost, "/bills/transactions/import", "multipart/form-data; boundary="+boundary, huge.Bytes())
	a.problem(resp, b, http.StatusRequestEntityTooLarge, "larger than 32 MiB")
	req, _ := http.NewRequest(http.MethodPost, a.url+"/console/v1/bills/transactions/import", io.MultiReader(bytes.NewReader(huge.Bytes())))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "multipart/form-data; boundary="+boundary)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	a.problem(resp, b, http.StatusRequestEntityTooLarge, "larger than 32 MiB")
	if p, _ := store.Payment(ctx, "O-BIG"); p.Recorded || p.Credit {
		t.Fatalf("a refused upload recorded a payment: %+v", p)
	}
}
