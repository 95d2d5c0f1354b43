// Package sso is the seller's end of KooGallery's unified login (联营 SSO, docs/koogallery.md, "Unified login"):
// the auth centre redirects a logged-in buyer's employee to GET /sso/callback?code=&tenant=; kooflow exchanges
// the single-use code at the tenant's auth centre with the application credential the Kit sync delivered
// (client secret decrypted on use), reads the user, checks the user is authorised for the tenant's instance
// (authSync) and that the instance is neither frozen nor released, and hands the user to the seller's
// application as a short-lived signed assertion (JWT, HS256). GET /sso/logout sends the browser to the auth
// centre's logout.
package sso

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/oauth2"

	"github.com/kooflow/kooflow/api/httpx"
	"github.com/kooflow/kooflow/internal/app"
	kitcall "github.com/kooflow/kooflow/internal/kit"
	"github.com/kooflow/kooflow/internal/store"
)

// Store is what the callback reads; store.Store satisfies it.
type Store interface {
	KitLogin(ctx context.Context, tenantID string) (store.KitLoginTarget, bool, error)
	KitUserByName(ctx context.Context, k store.KitKey, appID, userName string) (store.KitUser, bool, error)
}

// Handler serves the unified-login endpoints.
type Handler struct {
	Store Store
	// Key decrypts the application's client secret.
	Key *rsa.PrivateKey
	// AppURL receives the verified user as #assertion=<JWT>; SignKey signs the JWT (HS256).
	AppURL  string
	SignKey []byte
	// AuthURL is a fixed auth-centre base URL; empty uses the tenant's domainName.
	AuthURL string
	TTL     time.Duration
	// CallbackURL is this kooflow's /sso/callback as browsers reach it, sent as redirect_uri by GET /sso/login;
	// empty derives it from the request.
	CallbackURL string
	// SessionTTL is how long after a login GET /sso/refresh may renew it; 0 means DefaultSessionTTL.
	SessionTTL time.Duration
	// HTTP talks to the auth centre; nil is a client with a 10 s timeout.
	HTTP *http.Client
	Now  func() time.Time
}

// Claims are the assertion's claims.
type Claims struct {
	Tenant   string `json:"tenant"`
	Instance string `json:"instance"`
	Role     string `json:"role"`
	Name     string `json:"name,omitempty"`
	jwt.RegisteredClaims
}

// Issuer is the assertion's iss.
const Issuer = "kooflow"

// Mount adds GET /sso/callback and GET /sso/logout. Without KOOFLOW_SSO_APP_URL they answer a page saying
// unified login is not configured.
func Mount(r gin.IRoutes, d app.Deps) error {
	k := d.Config.Kit
	h := &Handler{Store: &store.Store{Pool: d.Pool}, AppURL: k.SSOAppURL, SignKey: []byte(k.SSOKey.Reveal()),
		AuthURL: k.SSOAuthURL, TTL: k.SSOTTL}
	if k.SSOAppURL != "" {
		key, err := kitcall.LoadKey(k)
		if err != nil {
			return err
		}
		h.Key = key
	}
	r.GET("/sso/callback", h.Callback)
	r.GET("/sso/logout", h.Logout)
	r.GET("/sso/login", h.Login)
	r.GET("/sso/refresh", h.Refresh)
	return nil
}

func (h *Handler) now() time.Time {
	if h.Now != nil {
		return h.Now()
	}
	return time.Now()
}

func (h *Handler) client() *http.Client {
	if h.HTTP != nil {
		return h.HTTP
	}
	return &http.Client{Timeout: 10 * time.Second}
}

var page = template.Must(template.New("sso").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{.Title}}</title></head>
<body><h1>{{.Title}}</h1><p>{{.Message}}</p></body></html>
`))

// fail answers a clear error page for the person in the browser.
func fail(c *gin.Context, status int, title, message, detail string) {
	httpx.Log(c).Warn("unified login refused", "status", status, "title", title, "detail", detail)
	c.Header("Cache-Control", "no-store")
	c.Status(status)
	c.Header("Content-Type", "text/html; charset=utf-8")
	_ = page.Execute(c.Writer, struct{ Title, Message string }{title, message})
	c.Abort()
}

func (h *Handler) authBase(t store.KitLoginTarget) string {
	if h.AuthURL != "" {
		return h.AuthURL
	}
	return strings.TrimRight(t.DomainName, "/")
}

// userInfo is the auth centre's answer at /api/v1/oauth2/userinfo.
type userInfo struct {
	UserName string `json:"userName"`
	Name     string `json:"name"`
	Role     string `json:"role"`
	Tenant   string `json:"tenant"`
}

// Callback: GET /sso/callback?code=&tenant=[&state=]. A login kooflow started (GET /sso/login) comes back with
// its state, which must match the HttpOnly cookie set on this browser when it left; a login the marketplace's
// workbench started carries no state.
func (h *Handler) Callback(c *gin.Context) {
	if h.AppURL == "" || h.Key == nil {
		fail(c, http.StatusServiceUnavailable, "Login is not available", "Unified login is not configured for this application yet. Please contact the provider.", "KOOFLOW_SSO_APP_URL or the Kit key is unset")
		return
	}
	code, tenant := c.Query("code"), c.Query("tenant")
	if code == "" || tenant == "" {
		fail(c, http.StatusBadRequest, "Incomplete login link", "The login link lacks its code or tenant. Please start the login again from your workbench.", "missing code or tenant")
		return
	}
	started := c.Query("state") != ""
	if !h.checkState(c, tenant) {
		return
	}
	ctx := c.Request.Context()
	t, ok := h.target(c, tenant)
	if !ok {
		return
	}
	conf, ok := h.oauthConfig(c, t)
	if !ok {
		return
	}
	if started {
		conf.RedirectURL = h.callbackURL(c) // the redirect_uri the authorisation request named
	}
	octx := context.WithValue(ctx, oauth2.HTTPClient, h.client())
	tok, err := conf.Exchange(octx, code)
	if err != nil {
		var re *oauth2.RetrieveError
		if errors.As(err, &re) && re.Response != nil && re.Response.StatusCode < 500 {
			fail(c, http.StatusUnauthorized, "Login expired", "This login has expired or was already used. Please log in again from your workbench.", err.Error())
			return
		}
		fail(c, http.StatusBadGateway, "Login failed", "The login service could not be reached. Please try again in a moment.", err.Error())
		return
	}
	h.admit(c, octx, tenant, t, conf, tok, session{})
}

// target finds the tenant's application and answers the page for an unknown tenant or an instance that is frozen
// or released; ok is false when it answered.
func (h *Handler) target(c *gin.Context, tenant string) (store.KitLoginTarget, bool) {
	t, found, err := h.Store.KitLogin(c.Request.Context(), tenant)
	if err != nil {
		fail(c, http.StatusInternalServerError, "Login failed", "Something went wrong on our side. Please try again in a moment.", err.Error())
		return t, false
	}
	if !found {
		fail(c, http.StatusNotFound, "Unknown organisation", "Your organisation is not set up for this application. If it was bought recently, please try again in a few minutes.", "unknown tenant "+tenant)
		return t, false
	}
	switch t.Lifecycle {
	case "FROZEN":
		fail(c, http.StatusForbidden, "Subscription suspended", "Your organisation's subscription to this application is suspended. Please renew it in KooGallery.", "instance "+t.InstanceID+" is frozen")
		return t, false
	case "RELEASED":
		fail(c, http.StatusForbidden, "Subscription ended", "Your organisation's subscription to this application has ended.", "instance "+t.InstanceID+" is released")
		return t, false
	}
	return t, true
}

// oauthConfig is the OAuth2 client of the tenant's application, its secret decrypted for this call only.
func (h *Handler) oauthConfig(c *gin.Context, t store.KitLoginTarget) (oauth2.Config, bool) {
	secret, err := kitcall.DecryptSecret(h.Key, t.ClientSecret)
	if err != nil {
		fail(c, http.StatusInternalServerError, "Login failed", "This application's login credential cannot be used. Please contact the provider.", err.Error())
		return oauth2.Config{}, false
	}
	base := h.authBase(t)
	return oauth2.Config{ClientID: t.ClientID, ClientSecret: secret, Scopes: []string{"get_user_info"},
		Endpoint: oauth2.Endpoint{AuthURL: base + "/api/v1/oauth2/authorize", TokenURL: base + "/api/v1/oauth2/token",
			AuthStyle: oauth2.AuthStyleInParams}}, true
}

// admit reads the user behind tok, checks it belongs to the tenant (and is the session's user, when refreshing
// prev) and is authorised, keeps the session for refreshes, and hands the user to the application.
func (h *Handler) admit(c *gin.Context, octx context.Context, tenant string, t store.KitLoginTarget, conf oauth2.Config, tok *oauth2.Token, prev session) {
	wantUser := prev.User
	info, status, err := h.fetchUser(octx, conf, tok, h.authBase(t))
	if err != nil {
		if status == http.StatusUnauthorized {
			fail(c, http.StatusUnauthorized, "Login expired", "This login has expired. Please log in again from your workbench.", err.Error())
			return
		}
		fail(c, http.StatusBadGateway, "Login failed", "Your user details could not be read. Please try again in a moment.", err.Error())
		return
	}
	if info.Tenant != "" && info.Tenant != tenant {
		fail(c, http.StatusForbidden, "Not authorised", "This login belongs to another organisation.", "userinfo tenant "+info.Tenant+" is not "+tenant)
		return
	}
	if wantUser != "" && info.UserName != wantUser {
		h.endSession(c)
		fail(c, http.StatusUnauthorized, "Session expired", "Your session belongs to another account. Please log in again.", "refreshed token is user "+info.UserName+", session user "+wantUser)
		return
	}
	u, found, err := h.Store.KitUserByName(c.Request.Context(), store.KitKey{InstanceID: t.InstanceID, TenantID: tenant}, t.AppID, info.UserName)
	if err != nil {
		fail(c, http.StatusInternalServerError, "Login failed", "Something went wrong on our side. Please try again in a moment.", err.Error())
		return
	}
	if !found || !u.Authorised || !u.Enabled {
		h.endSession(c)
		fail(c, http.StatusForbidden, "Not authorised", "Your account is not authorised to use this application. Please ask your organisation's administrator.", fmt.Sprintf("user %q: found %v, authorised %v, enabled %v", info.UserName, found, u.Authorised, u.Enabled))
		return
	}
	assertion, err := h.sign(tenant, t.InstanceID, u)
	if err != nil {
		fail(c, http.StatusInternalServerError, "Login failed", "Something went wrong on our side. Please try again in a moment.", err.Error())
		return
	}
	if err := h.keepSession(c, session{Tenant: tenant, Instance: t.InstanceID, User: u.UserName, Refresh: tok.RefreshToken,
		Until: prev.Until}); err != nil {
		httpx.Log(c).Warn("unified login: the session for refreshes could not be kept", "err", err)
	}
	event := "unified login"
	if wantUser != "" {
		event = "unified login refreshed"
	}
	httpx.Log(c).Info(event, "tenant", tenant, "instance_id", t.InstanceID, "user", u.UserName)
	c.Header("Cache-Control", "no-store")
	c.Header("Referrer-Policy", "no-referrer")
	// In the fragment, so the assertion is not sent to servers or written to their access logs on the way.
	c.Redirect(http.StatusSeeOther, h.AppURL+"#assertion="+url.QueryEscape(assertion))
}

func (h *Handler) fetchUser(ctx context.Context, conf oauth2.Config, tok *oauth2.Token, base string) (userInfo, int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/api/v1/oauth2/userinfo", nil)
	if err != nil {
		return userInfo{}, 0, fmt.Errorf("build userinfo request: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := conf.Client(ctx, tok).Do(req)
	if err != nil {
		return userInfo{}, 0, fmt.Errorf("userinfo: %w", err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != http.StatusOK {
		return userInfo{}, resp.StatusCode, fmt.Errorf("userinfo answered %d: %.200s", resp.StatusCode, raw)
	}
	var info userInfo
	if err := json.Unmarshal(raw, &info); err != nil || info.UserName == "" {
		return userInfo{}, resp.StatusCode, fmt.Errorf("userinfo answered without a userName: %.200s", raw)
	}
	return info, resp.StatusCode, nil
}

// sign builds the assertion: HS256, issued by kooflow for the application, valid for TTL.
func (h *Handler) sign(tenant, instanceID string, u store.KitUser) (string, error) {
	now := h.now()
	ttl := h.TTL
	if ttl <= 0 {
		ttl = 2 * time.Minute
	}
	id := make([]byte, 16)
	if _, err := rand.Read(id); err != nil {
		return "", fmt.Errorf("assertion id: %w", err)
	}
	claims := Claims{Tenant: tenant, Instance: instanceID, Role: u.Role, Name: u.Name,
		RegisteredClaims: jwt.RegisteredClaims{Issuer: Issuer, Subject: u.UserName, Audience: jwt.ClaimStrings{h.AppURL},
			IssuedAt: jwt.NewNumericDate(now), NotBefore: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
			ID: hex.EncodeToString(id)}}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(h.SignKey)
	if err != nil {
		return "", fmt.Errorf("sign the assertion: %w", err)
	}
	return s, nil
}

// Logout: GET /sso/logout?tenant=&redirect_url= sends the browser to the tenant's auth-centre logout, which
// returns it to redirect_url. Only URLs on the seller application's origin are accepted (no open redirect).
func (h *Handler) Logout(c *gin.Context) {
	if h.AppURL == "" {
		fail(c, http.StatusServiceUnavailable, "Logout is not available", "Unified login is not configured for this application.", "KOOFLOW_SSO_APP_URL is unset")
		return
	}
	tenant := c.Query("tenant")
	back := c.Query("redirect_url")
	if back == "" {
		back = h.AppURL
	}
	app, _ := url.Parse(h.AppURL)
	if u, err := url.Parse(back); err != nil || u.Scheme != app.Scheme || u.Host != app.Host {
		fail(c, http.StatusBadRequest, "Invalid logout link", "The address to return to after logout is not part of this application.", "redirect_url "+back)
		return
	}
	t, found, err := h.Store.KitLogin(c.Request.Context(), tenant)
	if err != nil || !found {
		fail(c, http.StatusNotFound, "Unknown organisation", "Your organisation is not set up for this application.", fmt.Sprintf("tenant %q: %v", tenant, err))
		return
	}
	h.endSession(c)
	c.Redirect(http.StatusFound, h.authBase(t)+"/api/v1/logout?redirect_url="+url.QueryEscape(back))
}
