package webconsole_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/kooflow/kooflow/api/webconsole"
	"github.com/kooflow/kooflow/internal/app"
	"github.com/kooflow/kooflow/internal/catalog"
	"github.com/kooflow/kooflow/internal/config"
	"github.com/kooflow/kooflow/internal/secrets"
	"github.com/kooflow/kooflow/internal/testenv"
)

// TestPageTimesWithAMillionInstances measures the server's time for each page with KOOFLOW_CONSOLE_BENCH
// instances (1,000,000 by default) in the read model, written by one generate_series INSERT, and requires the
// median of each page to stay within 100 ms. It runs only when KOOFLOW_CONSOLE_BENCH is set:
//
//	KOOFLOW_CONSOLE_BENCH=1000000 go test -v -run TestPageTimesWithAMillionInstances ./api/webconsole/
func TestPageTimesWithAMillionInstances(t *testing.T) {
	n, err := strconv.Atoi(os.Getenv("KOOFLOW_CONSOLE_BENCH"))
	if err != nil || n <= 0 {
		t.Skip("set KOOFLOW_CONSOLE_BENCH to the number of instances (e.g. 1000000) to measure page times")
	}
	pool := testenv.Pool(t)
	ctx := context.Background()
	start := time.Now()
	// One statement: instances spread over lifecycles, supervision states, products and 50,000 customers, one in
	// a thousand parked, changed one second apart.
	_, err = pool.Exec(ctx, `
		INSERT INTO instances (instance_id, workflow_id, order_id, order_line_id, product_id, sku_code, customer_id,
		                       charging_mode, period_type, lifecycle, supervision, parked, parked_step, parked_reason,
		                       parked_at, expire_time, provisioned_at, created_at, updated_at)
		SELECT 'bench-' || lpad(g::text, 8, '0'), 'instance/bench-' || lpad(g::text, 8, '0'),
		       'BENCH' || lpad(g::text, 8, '0'), 'BENCH' || lpad(g::text, 8, '0') || '-000001',
		       (ARRAY['OFFI-KOOFLOW-CRM-MONTHLY','OFFI-KOOFLOW-ONBOARDING','OFFI-KOOFLOW-ANALYTICS'])[1 + g % 3], 'sku',
		       'cust-' || (g % 50000), 'PERIOD', 'month',
		       (ARRAY['ACTIVE','ACTIVE','ACTIVE','FROZEN','RELEASED','PROVISIONING'])[1 + g % 6],
		       (ARRAY['NOT_INVOLVED','NOT_INVOLVED','NOT_INVOLVED','AWAITING_REQUIREMENT','AWAITING_CONFIRMATION','IN_SERVICE','AWAITING_ACCEPTANCE','COMPLETED'])[1 + g % 8],
		       g % 1000 = 0, CASE WHEN g % 1000 = 0 THEN 'provision create' ELSE '' END,
		       CASE WHEN g % 1000 = 0 THEN 'tenant quota exceeded' ELSE '' END,
		       CASE WHEN g % 1000 = 0 THEN now() - g * interval '1 second' END,
		       now() + (g % 365) * interval '1 day', now() - g * interval '1 second',
		       now() - g * interval '1 second', now() - g * interval '1 second'
		FROM generate_series(1, $1) g`, n)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `ANALYZE instances`); err != nil {
		t.Fatal(err)
	}
	t.Logf("inserted %d instances in %s", n, time.Since(start).Round(time.Millisecond))

	spec, _ := secrets.NewKeySpec("bench")
	cfg := config.Config{ConsoleTokens: "ops:bench-console-token-0123456789", DataKeys: config.Secret(spec), FourEyes: true}
	keys, err := cfg.Keyring()
	if err != nil {
		t.Fatal(err)
	}
	tokens, _ := cfg.ParseConsoleTokens()
	cat, _, err := catalog.Open("")
	if err != nil {
		t.Fatal(err)
	}
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	if _, err := webconsole.Mount(r, app.Deps{Config: cfg, Keys: keys, Pool: pool, Catalog: cat,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))}, tokens); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(r)
	defer srv.Close()
	b := newBrowser(t, srv)
	b.signIn("bench-console-token-0123456789")

	_, first := b.do("GET", "/console/instances", nil, nil)
	next := regexp.MustCompile(`href="(/console/instances\?[^"]+)" rel="next"`).FindStringSubmatch(first)
	if next == nil {
		t.Fatal("the first page of instances has no link to the next")
	}
	mid := fmt.Sprintf("bench-%08d", n/2)
	pages := []string{
		"/console/instances",
		strings.ReplaceAll(next[1], "&amp;", "&"),
		"/console/instances?lifecycle=FROZEN",
		"/console/instances?supervision=AWAITING_CONFIRMATION",
		"/console/instances?parked=true",
		"/console/instances?customerId=cust-4242",
		"/console/instances?productId=OFFI-KOOFLOW-ONBOARDING",
		"/console/instances?productId=OFFI-KOOFLOW-ONBOARDING&lifecycle=ACTIVE",
		"/console/instances?orderId=" + url.QueryEscape(fmt.Sprintf("BENCH%08d", n/3)),
		"/console/instances/" + mid,
		"/console/supervision",
		"/console/refunds",
		"/console/parked",
		"/console/messages",
		"/console/alerts",
		"/console/bills",
		"/console/recon",
		"/console/recon/receivables",
		"/console/settings",
	}
	const rounds = 15
	var worst float64
	for _, p := range pages {
		var server, wall []float64
		for i := 0; i < rounds; i++ {
			t0 := time.Now()
			resp, body := b.do("GET", p, nil, nil)
			w := float64(time.Since(t0).Microseconds()) / 1000
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("GET %s: %d\n%s", p, resp.StatusCode, body)
			}
			d, err := strconv.ParseFloat(strings.TrimPrefix(resp.Header.Get("Server-Timing"), "app;dur="), 64)
			if err != nil {
				t.Fatalf("GET %s: Server-Timing %q", p, resp.Header.Get("Server-Timing"))
			}
			server, wall = append(server, d), append(wall, w)
		}
		slices.Sort(server)
		slices.Sort(wall)
		med := server[rounds/2]
		worst = max(worst, med)
		t.Logf("%-75s server p50 %6.1f ms  max %6.1f ms   (wall p50 %6.1f ms)", p, med, server[rounds-1], wall[rounds/2])
		if med > 100 {
			t.Errorf("GET %s: median server time %.1f ms, over 100 ms", p, med)
		}
	}
	t.Logf("slowest page median: %.1f ms", worst)
}
