package sso_test

import (
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// TestLoginStartAndStateCheck: /sso/login sends the browser to the tenant's authorize endpoint with a state that
// the HttpOnly cookie it sets also holds; a callback with a state is refused without that cookie, with another
// state, or for another tenant, and passes with the right one.
func TestLoginStartAndStateCheck(t *testing.T) {
	f := setup(t, "ACTIVE")
	resp, body := f.get("/sso/login?tenant=nobody")
	if resp.StatusCode != http.StatusNotFound || !strings.Contains(body, "not set up") {
		t.Fatalf("unknown tenant: HTTP %d %s", resp.StatusCode, body)
	}
	resp, _ = f.get("/sso/login?tenant=tenant-1")
	loc, err := url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusFound || err != nil || loc.Path != "/api/v1/oauth2/authorize" {
		t.Fatalf("login start: HTTP %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	q := loc.Query()
	state := q.Get("state")
	if len(state) != 64 || q.Get("client_id") != clientID || q.Get("response_type") != "code" ||
		q.Get("redirect_uri") != f.url+"/sso/callback" || q.Get("scope") != "get_user_info" {
		t.Fatalf("authorize request %v", q)
	}
	var cookie *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == "kooflow_sso_state" {
			cookie = c
		}
	}
	if cookie == nil || !cookie.HttpOnly || cookie.SameSite != http.SameSiteLaxMode || !strings.HasPrefix(cookie.Value, state+".") ||
		cookie.Path != "/sso/" || cookie.MaxAge <= 0 {
		t.Fatalf("state cookie %+v", cookie)
	}
	callback := func(code, state string, c *http.Cookie) (*http.Response, string) {
		t.Helper()
		f.auth.issue(code, "alice")
		req, _ := http.NewRequest(http.MethodGet, f.url+"/sso/callback?code="+code+"&tenant=tenant-1&state="+state, nil)
		if c != nil {
			req.AddCookie(c)
		}
		resp, err := noRedirect.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	if resp, body := callback("s1", state, nil); resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "not started from this browser") {
		t.Fatalf("no cookie: HTTP %d %s", resp.StatusCode, body)
	}
	if resp, _ := callback("s2", strings.Repeat("0", 64), cookie); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("another state: HTTP %d", resp.StatusCode)
	}
	other := *cookie
	other.Value = state + ".b3RoZXI" // bound to tenant "other"
	if resp, _ := callback("s3", state, &other); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("another tenant's state: HTTP %d", resp.StatusCode)
	}
	resp, _ = callback("s4", state, cookie)
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), appURL+"#assertion=") {
		t.Fatalf("matching state: HTTP %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	var cleared, session bool
	for _, c := range resp.Cookies() {
		cleared = cleared || (c.Name == "kooflow_sso_state" && c.MaxAge < 0)
		session = session || (c.Name == "kooflow_sso_session" && c.HttpOnly && c.Value != "")
	}
	if !cleared || !session {
		t.Fatalf("after the callback: state cleared %v, sealed session set %v: %v", cleared, session, resp.Header.Values("Set-Cookie"))
	}
}

// TestRefreshRefusesAMissingOrForgedSession: /sso/refresh without a session cookie, or with one that does not
// open under the key, is a "Session expired" page that clears the cookie.
func TestRefreshRefusesAMissingOrForgedSession(t *testing.T) {
	f := setup(t, "ACTIVE")
	if resp, body := f.get("/sso/refresh"); resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, "Session expired") {
		t.Fatalf("no session: HTTP %d %s", resp.StatusCode, body)
	}
	req, _ := http.NewRequest(http.MethodGet, f.url+"/sso/refresh", nil)
	req.AddCookie(&http.Cookie{Name: "kooflow_sso_session", Value: "bm90LWEtc2VhbGVkLXNlc3Npb24tY29va2llLWF0LWFsbA"})
	resp, err := noRedirect.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	cleared := false
	for _, c := range resp.Cookies() {
		cleared = cleared || (c.Name == "kooflow_sso_session" && c.MaxAge < 0)
	}
	if resp.StatusCode != http.StatusUnauthorized || !cleared || resp.Header.Get("Location") != "" {
		t.Fatalf("forged session: HTTP %d, cleared %v", resp.StatusCode, cleared)
	}
}
