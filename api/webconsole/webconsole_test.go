package webconsole_test

import (
	"html"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/kooflow/kooflow/api/webconsole"
	"github.com/kooflow/kooflow/internal/app"
	"github.com/kooflow/kooflow/internal/config"
	"github.com/kooflow/kooflow/internal/secrets"
)

// These tests run the web console's router over real HTTP on pages that need no database: sign-in, the
// session cookie, CSRF and scope refusals, the language switch and the settings page.

const (
	opsToken    = "web-test-ops-token-0123456789"
	buyerToken  = "web-test-buyer-token-0123456789"
	financeTkn  = "web-test-finance-token-012345678"
	secretValue = "market-sk-that-must-never-show"
)

func server(t *testing.T, tls bool, mutate func(*config.Config)) (*httptest.Server, app.Deps) {
	t.Helper()
	spec, err := secrets.NewKeySpec("t1")
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{
		config.EnvConsoleTokens: "ops:" + opsToken + ",buyer:" + buyerToken + ":customer,money:" + financeTkn + ":read+finance",
		config.EnvDataKeys:      spec, config.EnvMarketSK: secretValue,
	}
	cfg, err := config.FromEnv(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	if mutate != nil {
		mutate(&cfg)
	}
	keys, err := cfg.Keyring()
	if err != nil {
		t.Fatal(err)
	}
	tokens, err := cfg.ParseConsoleTokens()
	if err != nil {
		t.Fatal(err)
	}
	d := app.Deps{Config: cfg, Keys: keys, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	if err := r.SetTrustedProxies(cfg.TrustedProxies); err != nil {
		t.Fatal(err)
	}
	if _, err := webconsole.Mount(r, d, tokens); err != nil {
		t.Fatal(err)
	}
	var srv *httptest.Server
	if tls {
		srv = httptest.NewTLSServer(r)
	} else {
		srv = httptest.NewServer(r)
	}
	t.Cleanup(srv.Close)
	return srv, d
}

type browser struct {
	t   *testing.T
	c   *http.Client
	url string
}

func newBrowser(t *testing.T, srv *httptest.Server) *browser {
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Transport: srv.Client().Transport.(*http.Transport).Clone(), Jar: jar}
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &browser{t: t, c: c, url: srv.URL}
}

func (b *browser) do(method, path string, form url.Values, header map[string]string) (*http.Response, string) {
	b.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, b.url+path, body)
	if err != nil {
		b.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp, html.UnescapeString(string(raw))
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func field(t *testing.T, page string) string {
	t.Helper()
	m := csrfField.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no csrf field in the page:\n%s", page)
	}
	return m[1]
}

// signIn signs in with token and returns the session's CSRF token (from the settings page).
func (b *browser) signIn(token string) string {
	b.t.Helper()
	_, page := b.do("GET", "/console/signin", nil, nil)
	resp, body := b.do("POST", "/console/signin", url.Values{"csrf": {field(b.t, page)}, "token": {token}, "next": {"/console/settings"}}, nil)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/console/settings" {
		b.t.Fatalf("sign-in answered %d %s: %s", resp.StatusCode, resp.Header.Get("Location"), body)
	}
	return b.sessionCSRF()
}

func (b *browser) sessionCSRF() string {
	b.t.Helper()
	resp, page := b.do("GET", "/console/settings", nil, nil)
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusForbidden {
		b.t.Fatalf("settings answered %d", resp.StatusCode)
	}
	return field(b.t, page)
}

func TestSignInSetsAStrictHttpOnlyCookie(t *testing.T) {
	srv, _ := server(t, false, nil)
	b := newBrowser(t, srv)
	resp, _ := b.do("GET", "/console/settings", nil, nil)
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/console/signin?next=") {
		t.Fatalf("a page without a session answered %d %q, want a redirect to sign in", resp.StatusCode, resp.Header.Get("Location"))
	}
	_, page := b.do("GET", "/console/signin", nil, nil)
	// A wrong token is refused and opens no session.
	resp, body := b.do("POST", "/console/signin", url.Values{"csrf": {field(t, page)}, "token": {"not-a-token-at-all-xxxx"}}, nil)
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, "令牌无效") {
		t.Fatalf("a wrong token answered %d", resp.StatusCode)
	}
	for _, c := range resp.Cookies() {
		if c.Name == "kooflow_console" && c.Value != "" {
			t.Fatal("a failed sign-in set a session cookie")
		}
	}
	resp, _ = b.do("POST", "/console/signin", url.Values{"csrf": {field(t, page)}, "token": {opsToken}}, nil)
	var session *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == "kooflow_console" {
			session = c
		}
	}
	if session == nil {
		t.Fatalf("sign-in answered %d without a session cookie", resp.StatusCode)
	}
	if !session.HttpOnly || session.SameSite != http.SameSiteStrictMode || session.Path != "/console" || session.Secure {
		t.Fatalf("session cookie flags: HttpOnly=%v SameSite=%v Path=%q Secure=%v; want HttpOnly, Strict, /console, not Secure over plain HTTP",
			session.HttpOnly, session.SameSite, session.Path, session.Secure)
	}
	if strings.Contains(session.Value, opsToken) || strings.Contains(session.Value, "ops") {
		t.Fatal("the session cookie shows the token or its name in clear")
	}
	resp, page = b.do("GET", "/console/settings", nil, nil)
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, "KOOGALLERY_SK") {
		t.Fatalf("settings after sign-in answered %d", resp.StatusCode)
	}
	if strings.Contains(page, secretValue) || strings.Contains(page, opsToken) {
		t.Fatal("the settings page shows a secret")
	}
	if resp.Header.Get("Content-Security-Policy") == "" || resp.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("pages lack their security headers: %v", resp.Header)
	}
	if !strings.Contains(resp.Header.Get("Server-Timing"), "app;dur=") {
		t.Fatalf("no Server-Timing header: %v", resp.Header)
	}
	// A forged cookie is no session.
	b.c.Jar.SetCookies(mustURL(t, srv.URL+"/console"), []*http.Cookie{{Name: "kooflow_console", Value: "t1.AAAA" + session.Value[8:], Path: "/console"}})
	if resp, _ := b.do("GET", "/console/settings", nil, nil); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("a changed session cookie answered %d, want a redirect to sign in", resp.StatusCode)
	}
}

func TestCookieIsSecureOverTLSAndBehindATrustedProxy(t *testing.T) {
	srv, _ := server(t, true, nil)
	b := newBrowser(t, srv)
	_, page := b.do("GET", "/console/signin", nil, nil)
	resp, _ := b.do("POST", "/console/signin", url.Values{"csrf": {field(t, page)}, "token": {opsToken}}, nil)
	if !secureCookie(resp) {
		t.Fatal("over TLS the session cookie is not Secure")
	}

	proxied, _ := server(t, false, func(c *config.Config) { c.TrustedProxies = []string{"127.0.0.1"} })
	b = newBrowser(t, proxied)
	fwd := map[string]string{"X-Forwarded-Proto": "https"}
	_, page = b.do("GET", "/console/signin", nil, fwd)
	resp, _ = b.do("POST", "/console/signin", url.Values{"csrf": {field(t, page)}, "token": {opsToken}}, fwd)
	if !secureCookie(resp) {
		t.Fatal("behind a trusted proxy saying https the session cookie is not Secure")
	}

	untrusted, _ := server(t, false, nil)
	b = newBrowser(t, untrusted)
	_, page = b.do("GET", "/console/signin", nil, fwd)
	resp, _ = b.do("POST", "/console/signin", url.Values{"csrf": {field(t, page)}, "token": {opsToken}}, fwd)
	if secureCookie(resp) {
		t.Fatal("X-Forwarded-Proto from an untrusted peer made the cookie Secure")
	}
}

func secureCookie(resp *http.Response) bool {
	for _, c := range resp.Cookies() {
		if c.Name == "kooflow_console" {
			return c.Secure
		}
	}
	return false
}

func mustURL(t *testing.T, s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func TestFormsWithoutTheSessionCSRFTokenAreRefused(t *testing.T) {
	srv, _ := server(t, false, nil)
	b := newBrowser(t, srv)
	csrf := b.signIn(opsToken)
	for _, form := range []url.Values{
		{"action": {"resume"}},
		{"action": {"resume"}, "csrf": {"forged"}},
	} {
		resp, body := b.do("POST", "/console/instances/inst-1/operator", form, nil)
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "CSRF") {
			t.Fatalf("an action without the CSRF token answered %d", resp.StatusCode)
		}
	}
	// Another session's token does not do either.
	other := newBrowser(t, srv)
	otherCSRF := other.signIn(opsToken)
	if otherCSRF == csrf {
		t.Fatal("two sessions share a CSRF token")
	}
	if resp, _ := b.do("POST", "/console/instances/inst-1/operator", url.Values{"action": {"resume"}, "csrf": {otherCSRF}}, nil); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("another session's CSRF token answered %d", resp.StatusCode)
	}
	// Sign-out needs it too, and then ends the session.
	if resp, _ := b.do("POST", "/console/signout", url.Values{}, nil); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("sign-out without the CSRF token answered %d", resp.StatusCode)
	}
	if resp, _ := b.do("POST", "/console/signout", url.Values{"csrf": {csrf}}, nil); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign-out answered %d", resp.StatusCode)
	}
	if resp, _ := b.do("GET", "/console/settings", nil, nil); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("after sign-out a page answered %d, want a redirect to sign in", resp.StatusCode)
	}
	// The sign-in form has its own token.
	if resp, _ := b.do("POST", "/console/signin", url.Values{"token": {opsToken}}, nil); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("a sign-in without the form's token answered %d", resp.StatusCode)
	}
}

func TestPagesAndActionsCheckTheTokensScope(t *testing.T) {
	srv, _ := server(t, false, nil)
	b := newBrowser(t, srv)
	csrf := b.signIn(buyerToken) // customer only: no read
	resp, page := b.do("GET", "/console/settings", nil, nil)
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(page, `"read"`) || !strings.Contains(page, `"buyer"`) {
		t.Fatalf("a page without its scope answered %d:\n%s", resp.StatusCode, page)
	}
	resp, page = b.do("POST", "/console/instances/inst-1/operator", url.Values{"action": {"resume"}, "csrf": {csrf}}, nil)
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(page, `"operate"`) {
		t.Fatalf("an operator action without operate answered %d:\n%s", resp.StatusCode, page)
	}
	f := newBrowser(t, srv)
	csrf = f.signIn(financeTkn)
	resp, page = f.do("POST", "/console/instances/inst-1/supervision", url.Values{"step": {"confirmRequirement"}, "csrf": {csrf}}, nil)
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(page, `"operate"`) {
		t.Fatalf("a seller's supervision step without operate answered %d:\n%s", resp.StatusCode, page)
	}
}

func TestLanguageSwitch(t *testing.T) {
	srv, _ := server(t, false, nil)
	b := newBrowser(t, srv)
	csrf := b.signIn(opsToken)
	_, page := b.do("GET", "/console/settings", nil, nil)
	if !strings.Contains(page, `<html lang="zh-CN">`) || !strings.Contains(page, "服务监管") || !strings.Contains(page, "生产接口消息") {
		t.Fatal("the default language is not zh-CN with the marketplace's terms")
	}
	if resp, _ := b.do("POST", "/console/lang", url.Values{"lang": {"en"}, "return": {"/console/settings"}}, nil); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("a language switch without the CSRF token answered %d", resp.StatusCode)
	}
	if resp, _ := b.do("POST", "/console/lang", url.Values{"lang": {"fr"}, "csrf": {csrf}}, nil); resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("an unknown language answered %d", resp.StatusCode)
	}
	resp, _ := b.do("POST", "/console/lang", url.Values{"lang": {"en"}, "csrf": {csrf}, "return": {"/console/settings"}}, nil)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/console/settings" {
		t.Fatalf("the language switch answered %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	_, page = b.do("GET", "/console/settings", nil, nil)
	if !strings.Contains(page, `<html lang="en">`) || !strings.Contains(page, "Sign out") || strings.Contains(page, "退出登录") {
		t.Fatal("after switching, the page is not in English")
	}
	// An open redirect through return is not possible.
	resp, _ = b.do("POST", "/console/lang", url.Values{"lang": {"zh-CN"}, "csrf": {csrf}, "return": {"//evil.example/"}}, nil)
	if loc := resp.Header.Get("Location"); loc != "/console/instances" {
		t.Fatalf("return=//evil.example redirected to %q", loc)
	}
}

func TestSigninLinkWorksOnce(t *testing.T) {
	srv, d := server(t, false, nil)
	tokens, _ := d.Config.ParseConsoleTokens()
	link, err := webconsole.SigninLink(d.Keys, tokens[0], time.Now())
	if err != nil {
		t.Fatal(err)
	}
	b := newBrowser(t, srv)
	resp, _ := b.do("GET", link, nil, nil)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/console/instances" {
		t.Fatalf("the sign-in link answered %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if resp, _ := b.do("GET", "/console/settings", nil, nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("after the link, settings answered %d", resp.StatusCode)
	}
	if resp, _ := newBrowser(t, srv).do("GET", link, nil, nil); resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("the link used a second time answered %d", resp.StatusCode)
	}
	old, _ := webconsole.SigninLink(d.Keys, tokens[0], time.Now().Add(-time.Hour))
	if resp, _ := newBrowser(t, srv).do("GET", old, nil, nil); resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("an expired link answered %d", resp.StatusCode)
	}
}

// A filter the read model does not know is refused on the page, in the user's language, before anything is read
// (this console has no database).
func TestBadFiltersAreRefusedOnThePage(t *testing.T) {
	srv, _ := server(t, false, nil)
	b := newBrowser(t, srv)
	b.signIn(opsToken)
	resp, page := b.do("GET", "/console/instances?lifecycle=SLEEPING&parked=maybe", nil, nil)
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(page, "筛选条件无效") || !strings.Contains(page, "lifecycle") ||
		!strings.Contains(page, "parked") {
		t.Fatalf("a bad filter answered %d:\n%s", resp.StatusCode, page)
	}
	resp, page = b.do("GET", "/console/messages/abc", nil, nil)
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(page, "没有这条消息") {
		t.Fatalf("a bad message id answered %d", resp.StatusCode)
	}
	if resp, _ := b.do("GET", "/console/alerts?state=sometimes", nil, nil); resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("a bad alert state answered %d", resp.StatusCode)
	}
	if resp, _ := b.do("GET", "/console/bills/2026-13/general", nil, nil); resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("a bad period answered %d", resp.StatusCode)
	}
}
