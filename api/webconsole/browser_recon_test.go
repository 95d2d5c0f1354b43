package webconsole_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/kooflow/kooflow/internal/ledger/fixture"
	"github.com/kooflow/kooflow/internal/settlement"
)

// TestReconAndUsageInABrowser drives the 对账 pages and a pay-per-use instance's usage in headless Chromium
// through the real API and worker: a finance user imports the marketplace's bill detail of September (one line
// kooflow also billed, one it never heard of), reads the diff, moves the bill to 会签中 and opens the
// receivables; an operator sees a pay-per-use instance's usage and resumes its parked push. Each page is saved as
// a screenshot (zh-CN).
func TestReconAndUsageInABrowser(t *testing.T) {
	s := startBrowserStack(t)
	dir := artifacts(t)
	ctx, cancel := chrome(t)
	defer cancel()
	base := s.st.URL + "/console"
	bg := context.Background()

	s.closedBill() // September's general bill: O-WEB-BILL, 1425.00 to the seller
	detail := filepath.Join(t.TempDir(), "详单-2026-09.csv")
	if err := os.WriteFile(detail, []byte("账期,订单号,订单行号,订单类型,伙伴结算金额,账单状态\n"+
		"2026-09,O-WEB-BILL,O-WEB-BILL-1,NEW,1425.00,待会签\n"+
		"2026-09,O-WEB-STRAY,O-WEB-STRAY-1,NEW,99.00,待会签\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// A pay-per-use instance whose usage push the marketplace parked.
	if err := fixture.Instance(bg, s.st.Pool, settlement.InstanceState{ID: "i-web-ppu"}, crmMonthly); err != nil {
		t.Fatal(err)
	}
	hour := time.Now().UTC().Truncate(time.Hour).Add(-2 * time.Hour).Format(time.RFC3339)
	for _, q := range []string{
		`UPDATE instances SET charging_mode = 'ON_DEMAND' WHERE instance_id = 'i-web-ppu'`,
		`INSERT INTO usage_records (record_id, instance_id, value, usage_hour) VALUES ('web-r1', 'i-web-ppu', 12.5, '` + hour + `')`,
		`INSERT INTO usage_pushes (metering_sn, instance_id, usage_hour, revision, value, begin_at, end_at, record_time)
			VALUES ('web-sn-1', 'i-web-ppu', '` + hour + `', 1, 12.5, now(), now(), now())`,
		`INSERT INTO usage_push_parked (instance_id, code, message, metering_sn) VALUES ('i-web-ppu', '009', 'not a pay-per-use instance', 'web-sn-1')`,
	} {
		if _, err := s.st.Pool.Exec(bg, q); err != nil {
			t.Fatal(err)
		}
	}

	var shots []string
	shot := func(name string) chromedp.Action[chromedp.Void] {
		return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			png, err := chromedp.FullScreenshot(100)(ctx, tg)
			if err != nil {
				return err
			}
			p := filepath.Join(dir, name+".png")
			shots = append(shots, p)
			return os.WriteFile(p, png, 0o644)
		})
	}
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatal(err)
	}
	run := func(what string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		rctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		if err := chromedp.Do(rctx, actions...); err != nil {
			hctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			html, _ := chromedp.Run(hctx, chromedp.OuterHTML(chromedp.CSS("main")))
			t.Fatalf("%s: %v\npage: %s", what, err, html)
		}
	}
	signIn := func(token string) {
		run("sign in", chromedp.Navigate(base+"/"), chromedp.WaitVisible(chromedp.ID("#token")),
			chromedp.SendKeys(chromedp.ID("#token"), token), chromedp.Click(chromedp.ID("#signin")),
			chromedp.WaitVisible(chromedp.CSS(`nav[aria-label]`)))
	}

	// Import September's bill detail and open its diff.
	signIn(bFinToken)
	var unexplained, lines string
	run("import the bill detail", chromedp.Navigate(base+"/recon"), chromedp.WaitVisible(chromedp.ID("#upload-form")), shot("16-recon"),
		chromedp.SetValue(chromedp.ID("#upload-period"), "2026-09"), chromedp.SetValue(chromedp.ID("#upload-type"), "general"),
		chromedp.SetUploadFiles(chromedp.ID("#upload-file"), []string{detail}), chromedp.Click(chromedp.ID("#upload-submit")),
		chromedp.WaitVisible(chromedp.ID("#diff-summary")), into(&unexplained, chromedp.Text(chromedp.ID("#sum-unexplained"))),
		into(&lines, chromedp.Text(chromedp.ID("#diff-lines"))), shot("17-recon-diff"))
	if !strings.Contains(unexplained, "1 · 99.00") || !strings.Contains(lines, "O-WEB-STRAY") || strings.Contains(lines, "O-WEB-BILL") {
		t.Fatalf("the diff shows unexplained %q and lines %q", unexplained, lines)
	}

	// The export said 待会签; the finance user records that the countersign is under way.
	var state string
	run("move the bill", chromedp.Click(chromedp.CSS(`a[href="/console/recon/bills/2026-09/general"]`)),
		chromedp.WaitVisible(chromedp.CSS(`button[data-state="COUNTERSIGNING"]`)), shot("18-recon-bill"),
		chromedp.Click(chromedp.CSS(`button[data-state="COUNTERSIGNING"]`)), chromedp.WaitVisible(chromedp.CSS("p.ok")),
		into(&state, chromedp.Text(chromedp.ID("#bill-state"))))
	if !strings.Contains(state, "会签中") {
		t.Fatalf("after the move the bill's state reads %q", state)
	}
	var owed string
	run("receivables", chromedp.Navigate(base+"/recon/receivables"), chromedp.WaitVisible(chromedp.ID("#receivables")),
		into(&owed, chromedp.Text(chromedp.ID("#owed-total"))), shot("19-receivables"))
	if owed != "1524.00" {
		t.Fatalf("the marketplace owes %q, want the bill detail's 1524.00", owed)
	}

	// The operator sees the pay-per-use instance's usage and resumes its parked push.
	run("sign out", chromedp.Click(chromedp.CSS(`form[action="/console/signout"] button`)), chromedp.WaitVisible(chromedp.ID("#token")))
	signIn(bOpsToken)
	var ingested, parked string
	run("usage", chromedp.Navigate(base+"/instances/i-web-ppu"), chromedp.WaitVisible(chromedp.ID("#usage")),
		into(&ingested, chromedp.Text(chromedp.ID("#usage-ingested"))), into(&parked, chromedp.Text(chromedp.ID("#usage-parked"))),
		shot("20-instance-usage"), chromedp.Click(chromedp.ID("#usage-resume")), chromedp.WaitVisible(chromedp.CSS("p.ok")))
	if ingested != "12.5" || !strings.Contains(parked, "009") {
		t.Fatalf("usage shows ingested %q, parked %q", ingested, parked)
	}
	var n int
	if err := s.st.Pool.QueryRow(bg, `SELECT count(*) FROM usage_push_parked WHERE instance_id = 'i-web-ppu'`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("the usage push is still parked after the resume (%d, %v)", n, err)
	}

	t.Logf("screenshots in %s:", dir)
	for _, p := range shots {
		t.Logf("  %s", filepath.Base(p))
	}
}
