package sso_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/golang-jwt/jwt/v5"

	"github.com/kooflow/kooflow/api/httpx"
	"github.com/kooflow/kooflow/api/sso"
	kitcall "github.com/kooflow/kooflow/internal/kit"
	"github.com/kooflow/kooflow/internal/store"
	"github.com/kooflow/kooflow/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

const (
	appURL   = "https://app.seller.example/sso"
	signKey  = "sso-test-signing-key-0123456789abcdef"
	clientID = "client-1"
	secret   = "client-secret-plain"
)

// authCentre plays the unified-login auth centre: single-use codes bound to a user, the token endpoint (form,
// client credentials in the parameters) and userinfo.
type authCentre struct {
	mu     sync.Mutex
	codes  map[string]string // code → userName
	tokens map[string]string // access token → userName
	tenant string
}

func (a *authCentre) issue(code, user string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.codes[code] = user
}

func (a *authCentre) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	defer a.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	switch r.URL.Path {
	case "/api/v1/oauth2/token":
		if r.Method != http.MethodPost || r.FormValue("grant_type") != "authorization_code" ||
			r.FormValue("client_id") != clientID || r.FormValue("client_secret") != secret {
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = io.WriteString(w, `{"error":"invalid_client","error_description":"bad client credentials"}`)
			return
		}
		user, ok := a.codes[r.FormValue("code")]
		if !ok {
			w.WriteHeader(http.StatusBadRequest)
			_, _ = io.WriteString(w, `{"error":"invalid_grant","error_description":"code expired or used"}`)
			return
		}
		delete(a.codes, r.FormValue("code")) // single use
		tok := "at-" + r.FormValue("code")
		a.tokens[tok] = user
		_ = json.NewEncoder(w).Encode(map[string]any{"access_token": tok, "token_type": "Bearer", "expires_in": 7200, "refresh_token": "rt", "scope": "get_user_info"})
	case "/api/v1/oauth2/userinfo":
		user, ok := a.tokens[strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")]
		if !ok {
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = io.WriteString(w, `{"error":"unauthorized","error_description":"token invalid"}`)
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]string{"userName": user, "name": "User " + user, "role": "user", "tenant": a.tenant})
	default:
		http.NotFound(w, r)
	}
}

type fixture struct {
	t     *testing.T
	url   string
	store *store.Store
	auth  *authCentre
	inst  string
}

// setup stores, as the Kit calls would, a tenant whose domainName is the fake auth centre, its application with
// a secret encrypted the marketplace's way, and two users, one of them with authorisation cancelled.
func setup(t *testing.T, lifecycle string) *fixture {
	t.Helper()
	ctx := context.Background()
	kp, err := kitcall.GenerateKey(kitcall.MinKeyBits)
	if err != nil {
		t.Fatal(err)
	}
	st := &store.Store{Pool: testenv.Pool(t)}
	ac := &authCentre{codes: map[string]string{}, tokens: map[string]string{}, tenant: "tenant-1"}
	auth := httptest.NewServer(ac)
	t.Cleanup(auth.Close)
	inst := "inst-sso"
	row := &store.InstanceRow{InstanceID: inst, WorkflowID: "instance/" + inst, Version: 1, OrderID: "CS-sso",
		OrderLineID: "CS-sso-000001", Lifecycle: lifecycle, ProductKnown: true, Supervision: "NOT_INVOLVED"}
	if err := st.Apply(ctx, store.Write{Summary: "instance", Instance: row}); err != nil {
		t.Fatal(err)
	}
	key := store.KitKey{InstanceID: inst, TenantID: "tenant-1"}
	now := time.Now()
	if _, err := st.UpsertKitTenant(ctx, store.KitTenant{KitKey: key, TenantCode: "acme", Name: "Acme", DomainName: auth.URL, SyncedAt: now}); err != nil {
		t.Fatal(err)
	}
	ct, err := kitcall.EncryptSecret(&kp.Key.PublicKey, secret)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.UpsertKitApplication(ctx, store.KitApplication{KitKey: key, AppID: "app-1", ClientID: clientID, ClientSecret: ct, SyncedAt: now}); err != nil {
		t.Fatal(err)
	}
	users := []store.KitUser{
		{KitKey: key, AppID: "app-1", UserName: "alice", Name: "Alice", Role: "admin", Enabled: true, SyncedAt: now},
		{KitKey: key, AppID: "app-1", UserName: "bob", Name: "Bob", Role: "user", Enabled: true, SyncedAt: now},
	}
	if _, err := st.UpsertKitUsers(ctx, users); err != nil {
		t.Fatal(err)
	}
	if _, err := st.CancelKitUsers(ctx, key, "app-1", []string{"bob"}, now.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	h := &sso.Handler{Store: st, Key: kp.Key, AppURL: appURL, SignKey: []byte(signKey), TTL: time.Minute}
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	r.Use(httpx.RequestContext(slog.New(slog.NewTextHandler(io.Discard, nil))))
	r.GET("/sso/callback", h.Callback)
	r.GET("/sso/logout", h.Logout)
	r.GET("/sso/login", h.Login)
	r.GET("/sso/refresh", h.Refresh)
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	return &fixture{t: t, url: srv.URL, store: st, auth: ac, inst: inst}
}

var noRedirect = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

func (f *fixture) get(path string) (*http.Response, string) {
	f.t.Helper()
	resp, err := noRedirect.Get(f.url + path)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func TestLoginHandsAVerifiedAssertionToTheApplication(t *testing.T) {
	f := setup(t, "ACTIVE")
	f.auth.issue("code-1", "alice")
	resp, _ := f.get("/sso/callback?code=code-1&tenant=tenant-1")
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("HTTP %d", resp.StatusCode)
	}
	loc := resp.Header.Get("Location")
	prefix := appURL + "#assertion="
	if !strings.HasPrefix(loc, prefix) {
		t.Fatalf("Location %q", loc)
	}
	raw, err := url.QueryUnescape(strings.TrimPrefix(loc, prefix))
	if err != nil {
		t.Fatal(err)
	}
	var claims sso.Claims
	tok, err := jwt.ParseWithClaims(raw, &claims, func(*jwt.Token) (any, error) { return []byte(signKey), nil },
		jwt.WithValidMethods([]string{"HS256"}), jwt.WithIssuer(sso.Issuer), jwt.WithAudience(appURL), jwt.WithExpirationRequired())
	if err != nil || !tok.Valid {
		t.Fatalf("assertion: %v", err)
	}
	if claims.Subject != "alice" || claims.Tenant != "tenant-1" || claims.Instance != f.inst || claims.Role != "admin" ||
		claims.ExpiresAt.Sub(claims.IssuedAt.Time) != time.Minute {
		t.Fatalf("claims %+v", claims)
	}
	if _, err := jwt.ParseWithClaims(raw, &sso.Claims{}, func(*jwt.Token) (any, error) { return []byte("another-key-0123456789abcdef0123"), nil }); err == nil {
		t.Fatal("the assertion verifies under another key")
	}
	// The code is single use: the same link again is an expired login.
	resp, body := f.get("/sso/callback?code=code-1&tenant=tenant-1")
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, "expired or was already used") {
		t.Fatalf("reused code: HTTP %d %s", resp.StatusCode, body)
	}
}

func TestLoginRefusals(t *testing.T) {
	f := setup(t, "ACTIVE")
	for name, c := range map[string]struct {
		code, user, query string
		status            int
		text              string
	}{
		"no code":           {query: "tenant=tenant-1", status: http.StatusBadRequest, text: "lacks its code"},
		"unknown tenant":    {code: "c2", user: "alice", query: "code=c2&tenant=nobody", status: http.StatusNotFound, text: "not set up"},
		"expired code":      {query: "code=never-issued&tenant=tenant-1", status: http.StatusUnauthorized, text: "expired"},
		"cancelled user":    {code: "c3", user: "bob", query: "code=c3&tenant=tenant-1", status: http.StatusForbidden, text: "not authorised"},
		"never-synced user": {code: "c4", user: "mallory", query: "code=c4&tenant=tenant-1", status: http.StatusForbidden, text: "not authorised"},
		"logout elsewhere":  {query: "", status: http.StatusBadRequest, text: "not part of this application"},
	} {
		t.Run(name, func(t *testing.T) {
			if c.code != "" {
				f.auth.issue(c.code, c.user)
			}
			path := "/sso/callback?" + c.query
			if name == "logout elsewhere" {
				path = "/sso/logout?tenant=tenant-1&redirect_url=" + url.QueryEscape("https://evil.example/")
			}
			resp, body := f.get(path)
			if resp.StatusCode != c.status || !strings.Contains(body, c.text) || resp.Header.Get("Location") != "" {
				t.Fatalf("HTTP %d %q %s", resp.StatusCode, resp.Header.Get("Location"), body)
			}
		})
	}
	resp, _ := f.get("/sso/logout?tenant=tenant-1&redirect_url=" + url.QueryEscape(appURL+"/bye"))
	if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusFound || !strings.HasSuffix(loc, "/api/v1/logout?redirect_url="+url.QueryEscape(appURL+"/bye")) {
		t.Fatalf("logout: HTTP %d %q", resp.StatusCode, loc)
	}
}

func TestLoginRefusedForAFrozenInstance(t *testing.T) {
	f := setup(t, "FROZEN")
	f.auth.issue("code-1", "alice")
	resp, body := f.get("/sso/callback?code=code-1&tenant=tenant-1")
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "suspended") {
		t.Fatalf("HTTP %d %s", resp.StatusCode, body)
	}
}
