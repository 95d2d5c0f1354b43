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

// AuthCentre is the unified-login auth centre of one tenant: a login page (reached directly, as from the
// workbench, or through /api/v1/oauth2/authorize from a login the seller started, whose state and redirect_uri it
// carries back), single-use codes that expire, the token endpoint (form; client credentials as parameters;
// authorization_code and refresh_token grants, refresh tokens rotated on use) and userinfo, and logout.
type AuthCentre struct {
	Tenant       string
	ClientID     string
	ClientSecret string
	// Callback is the seller's redirect URL (its /sso/callback).
	Callback string
	// CodeTTL is how long a code may be exchanged; 0 means one minute.
	CodeTTL time.Duration

	mu       sync.Mutex
	users    map[string]User
	codes    map[string]issued
	tokens   map[string]string
	refreshs map[string]string // refresh token → user
}

type issued struct {
	user     string
	at       time.Time
	redirect string // the redirect_uri of the authorisation request, which the exchange must repeat
}

// RemoveUser closes an account: its refresh tokens stop working.
func (a *AuthCentre) RemoveUser(userName string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.users, userName)
	for rt, u := range a.refreshs {
		if u == userName {
			delete(a.refreshs, rt)
		}
	}
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
<input type="hidden" name="state" value="{{.State}}"><input type="hidden" name="redirect_uri" value="{{.Redirect}}">
<button type="submit" id="login">Log in</button></form></body></html>
`))

// IssueCode logs userName in and returns a fresh code, as the login form does.
func (a *AuthCentre) IssueCode(userName string) (string, bool) {
	return a.issue(userName, "")
}

func (a *AuthCentre) issue(userName, redirect string) (string, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if _, ok := a.users[userName]; !ok {
		return "", false
	}
	a.init()
	c := token()
	a.codes[c] = issued{user: userName, at: time.Now(), redirect: redirect}
	return c, true
}

func (a *AuthCentre) init() {
	if a.codes == nil {
		a.codes, a.tokens, a.refreshs = map[string]issued{}, map[string]string{}, map[string]string{}
	}
}

// authorize is GET /api/v1/oauth2/authorize: the login page of a login the seller started, for its client and
// its registered callback only.
func (a *AuthCentre) authorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if q.Get("response_type") != "code" || q.Get("client_id") != a.ClientID {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_request", "error_description": "unknown client or response type"})
		return
	}
	if red := q.Get("redirect_uri"); red != "" && a.Callback != "" && red != a.Callback {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_request", "error_description": "redirect_uri is not the registered callback"})
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_ = loginPage.Execute(w, struct{ State, Redirect string }{q.Get("state"), q.Get("redirect_uri")})
}

func (a *AuthCentre) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/login":
		if r.Method == http.MethodGet {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			_ = loginPage.Execute(w, struct{ State, Redirect string }{})
			return
		}
		redirect := r.FormValue("redirect_uri")
		code, ok := a.issue(r.FormValue("user"), redirect)
		if !ok {
			http.Error(w, "unknown user", http.StatusUnauthorized)
			return
		}
		back := a.Callback
		if redirect != "" {
			back = redirect
		}
		target := back + "?code=" + url.QueryEscape(code) + "&tenant=" + url.QueryEscape(a.Tenant)
		if st := r.FormValue("state"); st != "" {
			target += "&state=" + url.QueryEscape(st)
		}
		http.Redirect(w, r, target, http.StatusFound)
	case "/api/v1/oauth2/authorize":
		a.authorize(w, r)
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
	grant := r.FormValue("grant_type")
	if r.Method != http.MethodPost || (grant != "authorization_code" && grant != "refresh_token") {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "unsupported_grant_type"})
		return
	}
	if r.FormValue("client_id") != a.ClientID || r.FormValue("client_secret") != a.ClientSecret {
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "invalid_client", "error_description": "client authentication failed"})
		return
	}
	if grant == "refresh_token" {
		a.refresh(w, r.FormValue("refresh_token"))
		return
	}
	ttl := a.CodeTTL
	if ttl <= 0 {
		ttl = time.Minute
	}
	a.mu.Lock()
	a.init()
	c, ok := a.codes[r.FormValue("code")]
	delete(a.codes, r.FormValue("code")) // single use, whatever happens
	var tok, rt string
	if ok && time.Since(c.at) <= ttl && c.redirect == r.FormValue("redirect_uri") {
		tok, rt = token(), token()
		a.tokens[tok], a.refreshs[rt] = c.user, c.user
	}
	a.mu.Unlock()
	if tok == "" {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_grant", "error_description": "the code is expired or was already used"})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"access_token": tok, "token_type": "Bearer", "expires_in": 7200,
		"scope": "get_user_info", "refresh_token": rt})
}

// refresh answers the refresh_token grant: new access and refresh tokens for a refresh token issued and not used
// yet, of an account that still exists; the old refresh token stops working.
func (a *AuthCentre) refresh(w http.ResponseWriter, rt string) {
	a.mu.Lock()
	a.init()
	user, ok := a.refreshs[rt]
	delete(a.refreshs, rt)
	_, exists := a.users[user]
	var tok, next string
	if ok && exists {
		tok, next = token(), token()
		a.tokens[tok], a.refreshs[next] = user, user
	}
	a.mu.Unlock()
	if tok == "" {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_grant", "error_description": "the refresh token is invalid or was already used"})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"access_token": tok, "token_type": "Bearer", "expires_in": 7200,
		"scope": "get_user_info", "refresh_token": next})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
