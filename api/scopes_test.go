package api_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/kooflow/kooflow/api"
	"github.com/kooflow/kooflow/api/gateway"
	"github.com/kooflow/kooflow/api/httpx"
	"github.com/kooflow/kooflow/internal/app"
	"github.com/kooflow/kooflow/internal/config"
	"go.temporal.io/sdk/client"
)

// routeScopes is the console's access table, as docs/security.md gives it. Every console route must be here, and
// a token without the route's scope must be refused before the handler runs.
var routeScopes = map[string][]config.Scope{
	"GET /console/v1/instances":                                 {config.ScopeRead},
	"GET /console/v1/instances/:id":                             {config.ScopeRead},
	"GET /console/v1/instances/:id/kit":                         {config.ScopeRead},
	"POST /console/v1/instances/:id/supervision":                {config.ScopeCustomer, config.ScopeOperate},
	"POST /console/v1/instances/:id/refunds":                    {config.ScopeCustomer},
	"POST /console/v1/instances/:id/refunds/:refundId/decision": {config.ScopeFinance},
	"POST /console/v1/instances/:id/operator":                   {config.ScopeOperate},
	"GET /console/v1/alerts":                                    {config.ScopeRead},
	"GET /console/v1/catalog":                                   {config.ScopeRead},
	"GET /console/v1/koogallery/messages":                       {config.ScopeRead},
	"GET /console/v1/koogallery/messages/:id":                   {config.ScopeRead},
	"GET /console/v1/koogallery/inbox":                          {config.ScopeRead},
	"POST /console/v1/selfcheck":                                {config.ScopeOperate},
	"GET /console/v1/selfcheck/:runId":                          {config.ScopeRead},
	"GET /console/v1/bills":                                     {config.ScopeRead},
	"GET /console/v1/bills/:period/:productType":                {config.ScopeRead},
	"GET /console/v1/bills/:period/:productType/export.csv":     {config.ScopeRead},
	"GET /console/v1/bills/:period/:productType/export.xlsx":    {config.ScopeRead},
	"GET /console/v1/bills/orders/:orderId/explain":             {config.ScopeRead},
	"POST /console/v1/bills/estimate":                           {config.ScopeRead},
	"POST /console/v1/bills/close":                              {config.ScopeFinance},
	"GET /console/v1/bills/payments/:orderId":                   {config.ScopeRead},
	"PUT /console/v1/bills/payments/:orderId":                   {config.ScopeFinance},
	"POST /console/v1/bills/repayments":                         {config.ScopeFinance},
	"POST /console/v1/bills/transactions/import":                {config.ScopeFinance},
	"GET /console/v1/bills/adjustments":                         {config.ScopeRead},
	"POST /console/v1/bills/adjustments":                        {config.ScopeFinance},
	"POST /usage/v1/records":                                    {config.ScopeUsage},
}

// TestEveryConsoleRouteDeclaresItsScope builds the real router and holds each console route to the table: a token
// with every scope except the route's is refused 403 with a problem naming the missing scope, an unknown or
// forged token 401, and no route is left without a declared scope.
func TestEveryConsoleRouteDeclaresItsScope(t *testing.T) {
	cfg := config.Config{ConsoleTokens: config.Secret("readonly:readonly-token-0123456789:read"), ProductionPath: "/koogallery/v2"}
	d := app.Deps{Config: cfg, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	r, err := api.New(d, gateway.NewInbox(d))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(r)
	defer srv.Close()

	seen := map[string]bool{}
	for _, ri := range r.Routes() {
		if !strings.HasPrefix(ri.Path, "/console/") && !strings.HasPrefix(ri.Path, "/usage/") {
			continue
		}
		key := ri.Method + " " + ri.Path
		seen[key] = true
		need, ok := routeScopes[key]
		if !ok {
			t.Errorf("%s is mounted but has no scope in the access table", key)
			continue
		}
		path := strings.NewReplacer(":id", "i-1", ":refundId", "r-1", ":runId", "x", ":period", "2026-10",
			":productType", "general", ":orderId", "o-1").Replace(ri.Path)
		// A token that holds none of the scopes the route accepts.
		var lacking []string
		for _, s := range config.AllScopes {
			if !slices.Contains(need, s) {
				lacking = append(lacking, string(s))
			}
		}
		tok := "lacking-0123456789abcdef"
		cfg2 := cfg
		cfg2.ConsoleTokens = config.Secret("lacking:" + tok + ":" + strings.Join(lacking, "+"))
		if len(lacking) == 0 {
			t.Fatalf("%s accepts every scope", key)
		}
		d2 := d
		d2.Config = cfg2
		r2, err := api.New(d2, gateway.NewInbox(d2))
		if err != nil {
			t.Fatal(err)
		}
		code, p := serve(r2, ri.Method, path, tok)
		if code != http.StatusForbidden {
			t.Errorf("%s without %v: HTTP %d, want 403", key, need, code)
			continue
		}
		for _, s := range need {
			if !strings.Contains(p.Detail, `"`+string(s)+`"`) {
				t.Errorf("%s: the 403 detail %q does not name the scope %q", key, p.Detail, s)
			}
		}
		if code, _ := serve(r, ri.Method, path, "forged-token-0123456789"); code != http.StatusUnauthorized {
			t.Errorf("%s with a forged token: HTTP %d, want 401", key, code)
		}
	}
	for key := range routeScopes {
		if !seen[key] {
			t.Errorf("the access table names %s, which is not mounted", key)
		}
	}
	// The read-only token may not close a period, and the answer says which scope is missing.
	if code, p := serve(r, http.MethodPost, "/console/v1/bills/close", "readonly-token-0123456789"); code != http.StatusForbidden ||
		!strings.Contains(p.Detail, `"finance"`) || !strings.Contains(p.Detail, `"readonly"`) {
		t.Errorf("read-only close: HTTP %d %q", code, p.Detail)
	}
}

func serve(h http.Handler, method, path, token string) (int, httpx.Problem) {
	req := httptest.NewRequest(method, path, strings.NewReader(`{}`))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	var p httpx.Problem
	_ = json.Unmarshal(w.Body.Bytes(), &p)
	return w.Code, p
}

// TestForwardedForOnlyFromTrustedProxies: without KOOFLOW_TRUSTED_PROXIES the client's address is the TCP peer's,
// whatever X-Forwarded-For says; with the peer listed as a proxy, the header names the client.
func TestForwardedForOnlyFromTrustedProxies(t *testing.T) {
	for _, tc := range []struct {
		proxies []string
		want    string
	}{{nil, "192.0.2.1"}, {[]string{"192.0.2.0/24"}, "203.0.113.9"}} {
		d := app.Deps{Config: config.Config{ProductionPath: "/koogallery/v2", TrustedProxies: tc.proxies},
			Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
		r, err := api.New(d, gateway.NewInbox(d))
		if err != nil {
			t.Fatal(err)
		}
		r.GET("/whoami", func(c *gin.Context) { c.String(http.StatusOK, c.ClientIP()) })
		req := httptest.NewRequest(http.MethodGet, "/whoami", nil)
		req.RemoteAddr = "192.0.2.1:5000"
		req.Header.Set("X-Forwarded-For", "203.0.113.9")
		w := httptest.NewRecorder()
		r.ServeHTTP(w, req)
		if got := w.Body.String(); got != tc.want {
			t.Errorf("proxies %v: client %q, want %q", tc.proxies, got, tc.want)
		}
	}
}

// TestReadyzHidesDriverErrors: with PostgreSQL and Temporal unreachable, /readyz answers 503 with "failing" per
// dependency and nothing of the drivers' errors (addresses, users, databases).
func TestReadyzHidesDriverErrors(t *testing.T) {
	pool, err := pgxpool.New(context.Background(), "postgres://kooflow-secret-user@127.0.0.1:1/kooflowdb?connect_timeout=1")
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	tc, err := client.NewLazyClient(client.Options{HostPort: "127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	d := app.Deps{Config: config.Config{ProductionPath: "/koogallery/v2"}, Pool: pool, Temporal: tc,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	r, err := api.New(d, gateway.NewInbox(d))
	if err != nil {
		t.Fatal(err)
	}
	w := httptest.NewRecorder()
	r.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/readyz", nil))
	body := w.Body.String()
	if w.Code != http.StatusServiceUnavailable || !strings.Contains(body, `"postgres":"failing"`) || !strings.Contains(body, `"temporal":"failing"`) {
		t.Fatalf("readyz %d %s", w.Code, body)
	}
	for _, leak := range []string{"127.0.0.1", "secret-user", "kooflowdb", "dial", "connect"} {
		if strings.Contains(body, leak) {
			t.Errorf("readyz shows %q: %s", leak, body)
		}
	}
}

// TestSplitListeners: with KOOFLOW_CONSOLE_ADDR the marketplace's listener serves only the production interface
// (and health), the console's only the console (and health).
func TestSplitListeners(t *testing.T) {
	d := app.Deps{Config: config.Config{ProductionPath: "/koogallery/v2", ConsoleTokens: "ops:ops-token-0123456789abcdef"},
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	r, err := api.New(d, gateway.NewInbox(d))
	if err != nil {
		t.Fatal(err)
	}
	market, console := api.Split(r, d.Config.ProductionPath)
	get := func(h http.Handler, method, path string) int {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(method, path, strings.NewReader(`{}`)))
		return w.Code
	}
	for _, c := range []struct {
		h            http.Handler
		name, method string
		path         string
		want         int
	}{
		{market, "market", http.MethodGet, "/healthz", http.StatusOK},
		{market, "market", http.MethodPost, "/koogallery/v2", http.StatusServiceUnavailable}, // reached: no access key here
		{market, "market", http.MethodGet, "/console/v1/instances", http.StatusNotFound},
		{market, "market", http.MethodGet, "/console", http.StatusNotFound},
		{console, "console", http.MethodGet, "/healthz", http.StatusOK},
		{console, "console", http.MethodGet, "/console/v1/instances", http.StatusUnauthorized}, // reached: no token sent
		{console, "console", http.MethodPost, "/koogallery/v2", http.StatusNotFound},
	} {
		if got := get(c.h, c.method, c.path); got != c.want {
			t.Errorf("%s listener %s %s: HTTP %d, want %d", c.name, c.method, c.path, got, c.want)
		}
	}
}
