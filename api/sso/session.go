package sso

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"golang.org/x/oauth2"
)

// Logins kooflow starts, and sessions it refreshes.
//
// GET /sso/login?tenant= sends the browser to the tenant's auth centre (/api/v1/oauth2/authorize) with a random
// state that is also set in an HttpOnly cookie on this browser; the callback refuses a state that does not match
// it, so nobody can make a browser finish a login it did not start (login CSRF). A login the marketplace's
// workbench starts carries no state and is taken as the marketplace sends it.
//
// After a login the auth centre's refresh token is kept in an HttpOnly cookie sealed (AES-256-GCM) under a key
// derived from KOOFLOW_SSO_KEY, never in a database or a log. GET /sso/refresh exchanges it for new tokens,
// checks the user again (still the same user, still authorised, the instance neither frozen nor released) and
// hands the application a fresh assertion, so the application's session can outlive the assertion's few minutes
// without the person logging in again. /sso/logout ends it.

const (
	stateCookie   = "kooflow_sso_state"
	sessionCookie = "kooflow_sso_session"
	cookiePath    = "/sso/"
	// stateTTL bounds how long a started login may take at the auth centre.
	stateTTL = 10 * time.Minute
	// DefaultSessionTTL is how long a session may be refreshed after its login when SessionTTL is not set.
	DefaultSessionTTL = 12 * time.Hour
)

// secure reports whether the browser reached kooflow over HTTPS (directly, or through a proxy that says so),
// so cookies are marked Secure.
func secure(c *gin.Context) bool {
	return c.Request.TLS != nil || strings.EqualFold(c.GetHeader("X-Forwarded-Proto"), "https")
}

func setCookie(c *gin.Context, name, value string, maxAge int) {
	http.SetCookie(c.Writer, &http.Cookie{Name: name, Value: value, Path: cookiePath, MaxAge: maxAge, HttpOnly: true,
		Secure: secure(c), SameSite: http.SameSiteLaxMode})
}

// callbackURL is this kooflow's /sso/callback as the browser reaches it: CallbackURL when configured, else
// from the request (and X-Forwarded-Proto behind a TLS-terminating proxy).
func (h *Handler) callbackURL(c *gin.Context) string {
	if h.CallbackURL != "" {
		return h.CallbackURL
	}
	scheme := "http"
	if secure(c) {
		scheme = "https"
	}
	return scheme + "://" + c.Request.Host + "/sso/callback"
}

// Login: GET /sso/login?tenant=.
func (h *Handler) Login(c *gin.Context) {
	if h.AppURL == "" || h.Key == nil {
		fail(c, http.StatusServiceUnavailable, "Login is not available", "Unified login is not configured for this application yet. Please contact the provider.", "KOOFLOW_SSO_APP_URL or the Kit key is unset")
		return
	}
	tenant := c.Query("tenant")
	if tenant == "" {
		fail(c, http.StatusBadRequest, "Incomplete login link", "The login link does not say which organisation you belong to. Please start the login from your workbench.", "missing tenant")
		return
	}
	t, ok := h.target(c, tenant)
	if !ok {
		return
	}
	conf, ok := h.oauthConfig(c, t)
	if !ok {
		return
	}
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		fail(c, http.StatusInternalServerError, "Login failed", "Something went wrong on our side. Please try again in a moment.", err.Error())
		return
	}
	state := hex.EncodeToString(b)
	setCookie(c, stateCookie, state+"."+base64.RawURLEncoding.EncodeToString([]byte(tenant)), int(stateTTL.Seconds()))
	conf.RedirectURL = h.callbackURL(c)
	c.Header("Cache-Control", "no-store")
	c.Redirect(http.StatusFound, conf.AuthCodeURL(state))
}

// checkState verifies the callback's state against the cookie of the login kooflow started, and clears that
// cookie (a state is good for one callback). A callback without state passes. ok is false when it answered.
func (h *Handler) checkState(c *gin.Context, tenant string) bool {
	state := c.Query("state")
	cookie, _ := c.Cookie(stateCookie)
	if cookie != "" {
		setCookie(c, stateCookie, "", -1)
	}
	if state == "" {
		return true
	}
	want, enc, _ := strings.Cut(cookie, ".")
	bound, _ := base64.RawURLEncoding.DecodeString(enc)
	if cookie == "" || subtle.ConstantTimeCompare([]byte(state), []byte(want)) != 1 || string(bound) != tenant {
		fail(c, http.StatusForbidden, "Login could not be verified",
			"This login was not started from this browser, or it took too long. Please start the login again.",
			fmt.Sprintf("state does not match the login cookie (cookie present %v)", cookie != ""))
		return false
	}
	return true
}

// session is what the session cookie seals.
type session struct {
	Tenant   string `json:"t"`
	Instance string `json:"i"`
	User     string `json:"u"`
	Refresh  string `json:"r"`
	// Until is when the session can no longer be refreshed (Unix seconds), fixed at the login.
	Until int64 `json:"e"`
}

func (h *Handler) sessionAEAD() (cipher.AEAD, error) {
	if len(h.SignKey) == 0 {
		return nil, errors.New("no KOOFLOW_SSO_KEY")
	}
	k := sha256.Sum256(append([]byte("kooflow sso session\x00"), h.SignKey...))
	block, err := aes.NewCipher(k[:])
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// keepSession seals s into the session cookie; without a refresh token there is nothing to keep.
func (h *Handler) keepSession(c *gin.Context, s session) error {
	if s.Refresh == "" {
		h.endSession(c)
		return nil
	}
	now := h.now()
	if s.Until == 0 {
		ttl := h.SessionTTL
		if ttl <= 0 {
			ttl = DefaultSessionTTL
		}
		s.Until = now.Add(ttl).Unix()
	}
	aead, err := h.sessionAEAD()
	if err != nil {
		return fmt.Errorf("seal the session: %w", err)
	}
	plain, err := json.Marshal(s)
	if err != nil {
		return fmt.Errorf("seal the session: %w", err)
	}
	nonce := make([]byte, aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return fmt.Errorf("seal the session: %w", err)
	}
	sealed := aead.Seal(nonce, nonce, plain, []byte(sessionCookie))
	setCookie(c, sessionCookie, base64.RawURLEncoding.EncodeToString(sealed), int(time.Unix(s.Until, 0).Sub(now).Seconds()))
	return nil
}

func (h *Handler) endSession(c *gin.Context) {
	if v, _ := c.Cookie(sessionCookie); v != "" {
		setCookie(c, sessionCookie, "", -1)
	}
}

// openSession reads the session cookie; an absent, tampered or expired one is an error.
func (h *Handler) openSession(c *gin.Context) (session, error) {
	v, err := c.Cookie(sessionCookie)
	if err != nil || v == "" {
		return session{}, errors.New("no session cookie")
	}
	raw, err := base64.RawURLEncoding.DecodeString(v)
	if err != nil {
		return session{}, errors.New("the session cookie is not Base64")
	}
	aead, err := h.sessionAEAD()
	if err != nil {
		return session{}, err
	}
	if len(raw) < aead.NonceSize() {
		return session{}, errors.New("the session cookie is too short")
	}
	plain, err := aead.Open(nil, raw[:aead.NonceSize()], raw[aead.NonceSize():], []byte(sessionCookie))
	if err != nil {
		return session{}, errors.New("the session cookie does not open under this key")
	}
	var s session
	if err := json.Unmarshal(plain, &s); err != nil {
		return session{}, fmt.Errorf("the session cookie's content: %w", err)
	}
	if h.now().Unix() >= s.Until {
		return session{}, errors.New("the session ended")
	}
	return s, nil
}

// Refresh: GET /sso/refresh.
func (h *Handler) Refresh(c *gin.Context) {
	if h.AppURL == "" || h.Key == nil {
		fail(c, http.StatusServiceUnavailable, "Login is not available", "Unified login is not configured for this application yet. Please contact the provider.", "KOOFLOW_SSO_APP_URL or the Kit key is unset")
		return
	}
	s, err := h.openSession(c)
	if err != nil {
		h.endSession(c)
		fail(c, http.StatusUnauthorized, "Session expired", "Your session has ended. Please log in again from your workbench.", err.Error())
		return
	}
	t, ok := h.target(c, s.Tenant)
	if !ok {
		h.endSession(c)
		return
	}
	if t.InstanceID != s.Instance {
		h.endSession(c)
		fail(c, http.StatusUnauthorized, "Session expired", "Your organisation's subscription has changed. Please log in again from your workbench.", "session instance "+s.Instance+", tenant's instance now "+t.InstanceID)
		return
	}
	conf, ok := h.oauthConfig(c, t)
	if !ok {
		return
	}
	octx := context.WithValue(c.Request.Context(), oauth2.HTTPClient, h.client())
	// A token with only its refresh token is expired: the token source refreshes it at the auth centre.
	tok, err := conf.TokenSource(octx, &oauth2.Token{RefreshToken: s.Refresh}).Token()
	if err != nil {
		var re *oauth2.RetrieveError
		if errors.As(err, &re) && re.Response != nil && re.Response.StatusCode < 500 {
			h.endSession(c)
			fail(c, http.StatusUnauthorized, "Session expired", "Your session has ended. Please log in again from your workbench.", err.Error())
			return
		}
		fail(c, http.StatusBadGateway, "Login failed", "The login service could not be reached. Please try again in a moment.", err.Error())
		return
	}
	if tok.RefreshToken == "" {
		tok.RefreshToken = s.Refresh // the auth centre kept the refresh token as it was
	}
	h.admit(c, octx, s.Tenant, t, conf, tok, s)
}
