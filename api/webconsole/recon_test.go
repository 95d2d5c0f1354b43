package webconsole_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"html"
	"io"
	"log/slog"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/shopspring/decimal"

	"github.com/kooflow/kooflow/api/webconsole"
	"github.com/kooflow/kooflow/internal/app"
	"github.com/kooflow/kooflow/internal/catalog"
	"github.com/kooflow/kooflow/internal/config"
	"github.com/kooflow/kooflow/internal/ledger/fixture"
	"github.com/kooflow/kooflow/internal/secrets"
	"github.com/kooflow/kooflow/internal/settlement"
	"github.com/kooflow/kooflow/internal/testenv"
)

// These tests run the 对账 pages and the usage section over real HTTP on real PostgreSQL.

const (
	readerToken   = "web-recon-reader-token-01234567"
	operatorToken = "web-recon-operator-token-0123456"
)

// dbServer is the web console on its own database, with an all-scopes token (ops), a read-only one (reader), a
// read+operate one (operator) and a read+finance one (money).
func dbServer(t *testing.T) (*httptest.Server, *pgxpool.Pool) {
	t.Helper()
	testenv.SkipShort(t, "the reconciliation pages read PostgreSQL")
	spec, err := secrets.NewKeySpec("t1")
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{
		config.EnvConsoleTokens: "ops:" + opsToken + ",buyer:" + buyerToken + ":customer,reader:" + readerToken + ":read,operator:" + operatorToken + ":read+operate,money:" +
			financeTkn + ":read+finance",
		config.EnvDataKeys: spec,
	}
	cfg, err := config.FromEnv(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	keys, err := cfg.Keyring()
	if err != nil {
		t.Fatal(err)
	}
	tokens, err := cfg.ParseConsoleTokens()
	if err != nil {
		t.Fatal(err)
	}
	cat, err := catalog.New([]catalog.Product{{ProductID: "OFFI-CRM", Name: "CRM", Type: catalog.General,
		PlatformFeeRate: decimal.RequireFromString("0.05")}})
	if err != nil {
		t.Fatal(err)
	}
	pool := testenv.Pool(t)
	d := app.Deps{Config: cfg, Keys: keys, Pool: pool, Catalog: cat, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	if _, err := webconsole.Mount(r, d, tokens); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	return srv, pool
}

// uploadForm posts a bill detail as the upload form does.
func (b *browser) uploadForm(csrf, period, productType string, file []byte) (*http.Response, string) {
	b.t.Helper()
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	for k, v := range map[string]string{"csrf": csrf, "period": period, "productType": productType} {
		if csrf == "" && k == "csrf" {
			continue
		}
		_ = mw.WriteField(k, v)
	}
	fw, err := mw.CreateFormFile("file", "详单.csv")
	if err != nil {
		b.t.Fatal(err)
	}
	_, _ = fw.Write(file)
	if err := mw.Close(); err != nil {
		b.t.Fatal(err)
	}
	req, err := http.NewRequest(http.MethodPost, b.url+"/console/recon/imports", &body)
	if err != nil {
		b.t.Fatal(err)
	}
	req.Header.Set("Content-Type", mw.FormDataContentType())
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp, html.UnescapeString(string(raw))
}

// oversizedUpload announces an upload of 300 MB over a raw connection, sends none of it, and returns the status
// line the console answers.
func (b *browser) oversizedUpload() string {
	b.t.Helper()
	u, err := url.Parse(b.url)
	if err != nil {
		b.t.Fatal(err)
	}
	var cookies []string
	for _, c := range b.c.Jar.Cookies(&url.URL{Scheme: "http", Host: u.Host, Path: "/console/"}) {
		cookies = append(cookies, c.Name+"="+c.Value)
	}
	conn, err := net.DialTimeout("tcp", u.Host, 5*time.Second)
	if err != nil {
		b.t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(conn, "POST /console/recon/imports HTTP/1.1\r\nHost: %s\r\nCookie: %s\r\nContent-Type: multipart/form-data; boundary=x\r\n"+
		"Content-Length: 300000000\r\n\r\n", u.Host, strings.Join(cookies, "; "))
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		b.t.Fatalf("no answer to an oversized upload: %v", err)
	}
	return line
}

const goodDetail = "订单号,订单行号,订单类型,伙伴结算金额,账单状态\n" +
	"O-WEB-1,O-WEB-1-1,NEW,950.00,待会签\n" +
	"O-WEB-2,O-WEB-2-1,NEW,=1+2,待会签\n"

func imports(t *testing.T, pool *pgxpool.Pool) int {
	t.Helper()
	var n int
	if err := pool.QueryRow(context.Background(), `SELECT count(*) FROM recon_imports`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestReconPagesImportDiffAndFollowTheBill(t *testing.T) {
	srv, pool := dbServer(t)

	// A read-only token sees the pages but not the upload form, and its upload is refused.
	reader := newBrowser(t, srv)
	rcsrf := reader.signIn(readerToken)
	if resp, page := reader.do("GET", "/console/recon", nil, nil); resp.StatusCode != http.StatusOK || strings.Contains(page, "upload-form") ||
		!strings.Contains(page, "对账") {
		t.Fatalf("reader's recon page: %d\n%s", resp.StatusCode, page)
	}
	if resp, page := reader.uploadForm(rcsrf, "2026-10", "general", []byte(goodDetail)); resp.StatusCode != http.StatusForbidden || !strings.Contains(page, "finance") {
		t.Fatalf("a read-only token's upload answered %d:\n%s", resp.StatusCode, page)
	}
	buyer := newBrowser(t, srv)
	buyer.signIn(buyerToken)
	if resp, _ := buyer.do("GET", "/console/recon/receivables", nil, nil); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("a customer token read the receivables: %d", resp.StatusCode)
	}

	fin := newBrowser(t, srv)
	csrf := fin.signIn(financeTkn)
	// Without the session's CSRF token, nothing is imported.
	if resp, _ := fin.uploadForm("", "2026-10", "general", []byte(goodDetail)); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("an upload without the CSRF token answered %d", resp.StatusCode)
	}
	if resp, _ := fin.uploadForm("wrong", "2026-10", "general", []byte(goodDetail)); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("an upload with a wrong CSRF token answered %d", resp.StatusCode)
	}
	if n := imports(t, pool); n != 0 {
		t.Fatalf("refused uploads imported %d files", n)
	}
	// A body over the cap is refused from its Content-Length, before a byte of it is read.
	if status := fin.oversizedUpload(); !strings.Contains(status, " 413 ") {
		t.Fatalf("an upload over the cap answered %q", status)
	}
	// A file with an unreadable amount is shown back with its row and column, and nothing is imported.
	resp, page := fin.uploadForm(csrf, "2026-10", "general", []byte(goodDetail))
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(page, `row 3, column "伙伴结算金额"`) || !strings.Contains(page, "未导入") ||
		!strings.Contains(page, `value="2026-10"`) {
		t.Fatalf("a bad file answered %d:\n%s", resp.StatusCode, page)
	}
	if n := imports(t, pool); n != 0 {
		t.Fatalf("a bad file imported %d files", n)
	}
	if resp, page := fin.uploadForm(csrf, "2026-13", "general", []byte(goodDetail)); resp.StatusCode != http.StatusBadRequest || !strings.Contains(page, "2026-13") {
		t.Fatalf("a bad period answered %d:\n%s", resp.StatusCode, page)
	}

	// A good file: imported, diffed, and the diff shown. kooflow has no bill for October, so both lines are the
	// marketplace's only, and unexplained (no such orders).
	good := strings.Replace(goodDetail, "=1+2", "50.01", 1)
	resp, _ = fin.uploadForm(csrf, "2026-10", "general", []byte(good))
	loc := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(loc, "/console/recon/diffs/") {
		t.Fatalf("a good file answered %d %s", resp.StatusCode, loc)
	}
	resp, page = fin.do("GET", loc, nil, nil)
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, "详单已导入并完成对账") || !strings.Contains(page, "2 · 1000.01") ||
		!strings.Contains(page, "仅平台有") || !strings.Contains(page, "O-WEB-2") {
		t.Fatalf("diff page: %d\n%s", resp.StatusCode, page)
	}
	diffPath := strings.SplitN(loc, "?", 2)[0]
	if _, page := fin.do("GET", diffPath+"?kind=AMOUNT", nil, nil); strings.Contains(page, "O-WEB-2") || !strings.Contains(page, "没有差异") {
		t.Fatalf("the kind filter kept other kinds:\n%s", page)
	}
	if resp, _ := fin.do("GET", diffPath+"?kind=NOPE", nil, nil); resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("a bad kind answered %d", resp.StatusCode)
	}
	resp, csvBody := fin.do("GET", diffPath+"/export.csv", nil, nil)
	if resp.StatusCode != http.StatusOK || !strings.Contains(csvBody, "O-WEB-1,O-WEB-1-1,MARKETPLACE_ONLY") {
		t.Fatalf("CSV export: %d\n%s", resp.StatusCode, csvBody)
	}
	if resp, _ := fin.do("GET", diffPath+"/export.xlsx", nil, nil); resp.StatusCode != http.StatusOK ||
		!strings.Contains(resp.Header.Get("Content-Type"), "spreadsheetml") {
		t.Fatalf("XLSX export: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	// The same file again is not imported twice.
	resp, _ = fin.uploadForm(csrf, "2026-10", "general", []byte(good))
	if resp.StatusCode != http.StatusSeeOther || !strings.Contains(resp.Header.Get("Location"), "done=recon-already") || imports(t, pool) != 1 {
		t.Fatalf("the same file again: %d %s, %d imports", resp.StatusCode, resp.Header.Get("Location"), imports(t, pool))
	}

	// The export said 待会签, so the bill is there; the page offers the moves the process allows.
	bill := "/console/recon/bills/2026-10/general"
	_, page = fin.do("GET", bill, nil, nil)
	if !strings.Contains(page, "会签 · 待会签") || !strings.Contains(page, `data-state="COUNTERSIGNING"`) || strings.Contains(page, `data-state="BILLED"`) {
		t.Fatalf("bill page:\n%s", page)
	}
	state := func(b *browser, csrf, st string) *http.Response {
		resp, _ := b.do("POST", bill+"/state", url.Values{"csrf": {csrf}, "state": {st}, "return": {bill}}, nil)
		return resp
	}
	if resp := state(reader, rcsrf, "COUNTERSIGNING"); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("a read-only token changed the state: %d", resp.StatusCode)
	}
	if resp := state(fin, "wrong", "COUNTERSIGNING"); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("a state change without the CSRF token answered %d", resp.StatusCode)
	}
	if resp := state(fin, csrf, "COUNTERSIGNING"); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("state change answered %d", resp.StatusCode)
	}
	if resp := state(fin, csrf, "BILLED"); resp.StatusCode != http.StatusConflict {
		t.Fatalf("a move the process does not allow answered %d", resp.StatusCode)
	}
	// Invoice on Friday 2026-11-13; payment expected six working days later; nothing paid on 2026-11-30.
	resp, _ = fin.do("POST", bill+"/invoice", url.Values{"csrf": {csrf}, "number": {"INV-WEB-1"}, "issuedOn": {"2026-11-13"}, "amount": {"1000.01"}}, nil)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("invoice answered %d", resp.StatusCode)
	}
	if resp, page := fin.do("POST", bill+"/receipts", url.Values{"csrf": {csrf}, "receivedOn": {"2026-11-20"}, "amount": {"abc"}, "reference": {"B-1"}}, nil); resp.StatusCode != http.StatusBadRequest ||
		!strings.Contains(page, "金额格式不正确") {
		t.Fatalf("a bad amount answered %d:\n%s", resp.StatusCode, page)
	}
	resp, _ = fin.do("POST", bill+"/receipts", url.Values{"csrf": {csrf}, "receivedOn": {"2026-11-20"}, "amount": {"400"}, "reference": {"B-1"}}, nil)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("receipt answered %d", resp.StatusCode)
	}
	_, page = fin.do("GET", bill, nil, nil)
	for _, want := range []string{"会签 · 会签中", "INV-WEB-1", "2026-11-23", "B-1", "600.01", "详单导入"} {
		if !strings.Contains(page, want) {
			t.Errorf("bill page lacks %q", want)
		}
	}
	_, page = reader.do("GET", "/console/recon/receivables", nil, nil)
	if !strings.Contains(page, "600.01") || !strings.Contains(page, "2026-11-09") {
		t.Fatalf("receivables:\n%s", page)
	}
	if time.Now().After(time.Date(2026, 11, 23, 16, 0, 0, 0, time.UTC)) && !strings.Contains(page, "逾期未付") {
		t.Fatalf("an invoice past its payment date is not marked overdue:\n%s", page)
	}
}

// A pay-per-use instance's page shows its usage; resuming its parked push needs the operate scope and the CSRF
// token, and goes through the same function as `kooflow usage resume`.
func TestUsageOnThePayPerUseInstancePage(t *testing.T) {
	srv, pool := dbServer(t)
	ctx := context.Background()
	if err := fixture.Instance(ctx, pool, settlement.InstanceState{ID: "i-web-ppu"}, "OFFI-CRM"); err != nil {
		t.Fatal(err)
	}
	hour := time.Date(2026, 11, 2, 3, 0, 0, 0, time.UTC)
	for _, q := range []string{
		`UPDATE instances SET charging_mode = 'ON_DEMAND' WHERE instance_id = 'i-web-ppu'`,
		`INSERT INTO usage_records (record_id, instance_id, value, usage_hour) VALUES ('r1', 'i-web-ppu', 1.5, '` + hour.Format(time.RFC3339) + `'),
			('r2', 'i-web-ppu', 2.25, '` + hour.Add(time.Hour).Format(time.RFC3339) + `')`,
		`INSERT INTO usage_pushes (metering_sn, instance_id, usage_hour, revision, value, begin_at, end_at, record_time, status)
			VALUES ('sn-1', 'i-web-ppu', '` + hour.Format(time.RFC3339) + `', 1, 1.5, now(), now(), now(), 'accepted'),
			('sn-2', 'i-web-ppu', '` + hour.Add(time.Hour).Format(time.RFC3339) + `', 1, 2.25, now(), now(), now(), 'pending')`,
		`INSERT INTO usage_push_parked (instance_id, code, message, metering_sn) VALUES ('i-web-ppu', '009', 'instance not pay-per-use', 'sn-2')`,
	} {
		if _, err := pool.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	page := "/console/instances/i-web-ppu"
	ops := newBrowser(t, srv)
	ocsrf := ops.signIn(operatorToken)
	resp, body := ops.do("GET", page, nil, nil)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "按需用量") || !strings.Contains(body, "3.75") ||
		!strings.Contains(body, "009 instance not pay-per-use") || !strings.Contains(body, `id="usage-resume"`) {
		t.Fatalf("instance page: %d\n%s", resp.StatusCode, body)
	}
	reader := newBrowser(t, srv)
	rcsrf := reader.signIn(readerToken)
	if _, body := reader.do("GET", page, nil, nil); strings.Contains(body, `id="usage-resume"`) {
		t.Fatal("a read-only token is offered the resume")
	}
	resume := func(b *browser, csrf string) *http.Response {
		resp, _ := b.do("POST", page+"/usage/resume", url.Values{"csrf": {csrf}, "return": {page}}, nil)
		return resp
	}
	if resp := resume(reader, rcsrf); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("a read-only token resumed: %d", resp.StatusCode)
	}
	if resp := resume(ops, "wrong"); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("a resume without the CSRF token answered %d", resp.StatusCode)
	}
	var parked int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM usage_push_parked`).Scan(&parked); err != nil || parked != 1 {
		t.Fatalf("refused resumes changed the parking: %d %v", parked, err)
	}
	if resp := resume(ops, ocsrf); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("resume answered %d", resp.StatusCode)
	}
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM usage_push_parked`).Scan(&parked); err != nil || parked != 0 {
		t.Fatalf("the push is still parked: %d %v", parked, err)
	}
	if resp := resume(ops, ocsrf); resp.StatusCode != http.StatusConflict {
		t.Fatalf("resuming a push that is not parked answered %d", resp.StatusCode)
	}
	if _, body := ops.do("GET", page, nil, nil); strings.Contains(body, `id="usage-resume"`) || !strings.Contains(body, "1.5") {
		t.Fatalf("after resume:\n%s", body)
	}
}
