package kit

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"html/template"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// User is an account of the auth centre.
type User struct {
	UserName string
	Name     string
	Role     string
}

// AuthCentre is the unified-login auth centre of one tenant: a login page, single-use codes that expire, the
// token endpoint (form; client credentials as parameters) and userinfo, and logout.
type AuthCentre struct {
	Tenant       string
	ClientID     string
	ClientSecret string
	// Callback is the seller's redirect URL (its /sso/callback).
	Callback string
	// CodeTTL is how long a code may be exchanged; 0 means one minute.
	CodeTTL time.Duration

	mu     sync.Mutex
	users  map[string]User
	codes  map[string]issued
	tokens map[string]string
}

type issued struct {
	user string
	at   time.Time
}

// AddUser makes an account that can log in.
func (a *AuthCentre) AddUser(u User) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.users == nil {
		a.users = map[string]User{}
	}
	a.users[u.UserName] = u
}

func token() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

var loginPage = template.Must(template.New("login").Parse(`<!doctype html>
<html><head><meta charset="utf-8"><title>Unified login</title></head><body>
<form method="post" action="/login"><label>User <input name="user" id="user"></label>
<button type="submit" id="login">Log in</button></form></body></html>
`))

// IssueCode logs userName in and returns a fresh code, as the login form does.
func (a *AuthCentre) IssueCode(userName string) (string, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if _, ok := a.users[userName]; !ok {
		return "", false
	}
	if a.codes == nil {
		a.codes, a.tokens = map[string]issued{}, map[string]string{}
	}
	c := token()
	a.codes[c] = issued{user: userName, at: time.Now()}
	return c, true
}

func (a *AuthCentre) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/login":
		if r.Method == http.MethodGet {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			_ = loginPage.Execute(w, nil)
			return
		}
		code, ok := a.IssueCode(r.FormValue("user"))
		if !ok {
			http.Error(w, "unknown user", http.StatusUnauthorized)
			return
		}
		http.Redirect(w, r, a.Callback+"?code="+url.QueryEscape(code)+"&tenant="+url.QueryEscape(a.Tenant), http.StatusFound)
	case "/api/v1/oauth2/token":
		a.tokenEndpoint(w, r)
	case "/api/v1/oauth2/userinfo":
		a.mu.Lock()
		user, ok := a.tokens[strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")]
		u := a.users[user]
		a.mu.Unlock()
		if !ok {
			writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "unauthorized", "error_description": "invalid access token"})
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"id": u.UserName, "userName": u.UserName, "name": u.Name, "role": u.Role,
			"tenant": a.Tenant, "userId": u.UserName})
	case "/api/v1/logout":
		http.Redirect(w, r, r.URL.Query().Get("redirect_url"), http.StatusFound)
	default:
		http.NotFound(w, r)
	}
}

func (a *AuthCentre) tokenEndpoint(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.FormValue("grant_type") != "authorization_code" {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "unsupported_grant_type"})
		return
	}
	if r.FormValue("client_id") != a.ClientID || r.FormValue("client_secret") != a.ClientSecret {
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "invalid_client", "error_description": "client authentication failed"})
		return
	}
	ttl := a.CodeTTL
	if ttl <= 0 {
		ttl = time.Minute
	}
	a.mu.Lock()
	c, ok := a.codes[r.FormValue("code")]
	delete(a.codes, r.FormValue("code")) // single use, whatever happens
	var tok string
	if ok && time.Since(c.at) <= ttl {
		tok = token()
		a.tokens[tok] = c.user
	}
	a.mu.Unlock()
	if tok == "" {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_grant", "error_description": "the code is expired or was already used"})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"access_token": tok, "token_type": "Bearer", "expires_in": 7200,
		"scope": "get_user_info", "refresh_token": token()})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
