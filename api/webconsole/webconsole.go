// Package webconsole is the seller's console as web pages (/console/): instances, supervision (服务监管), refund
// requests, parked steps, the production interface's message log (生产接口消息), alerts, bills (账单),
// reconciliation with the marketplace's bill (对账) and the settings in effect, in Chinese and English. Pages are rendered on the server with html/template and work
// without JavaScript; the vendored htmx only makes links and forms swap the page in place.
//
// It reads the same store queries as the JSON console API and takes actions through the same functions
// (console.Actions), behind a sealed session cookie opened with a console token, with the token's scopes
// checked on every page and action and a CSRF token on every form.
package webconsole

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/kooflow/kooflow/api/bills"
	"github.com/kooflow/kooflow/api/console"
	"github.com/kooflow/kooflow/api/httpx"
	"github.com/kooflow/kooflow/internal/app"
	"github.com/kooflow/kooflow/internal/config"
	"github.com/kooflow/kooflow/internal/ledger"
	"github.com/kooflow/kooflow/internal/recon"
	"github.com/kooflow/kooflow/internal/store"
	"github.com/kooflow/kooflow/internal/usagepush"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Prefix is where the web console is served.
const Prefix = "/console"

// Console serves the web console's pages.
type Console struct {
	d       app.Deps
	tokens  []config.ConsoleToken
	trusted []*net.IPNet
	store   *store.Store
	ledger  *ledger.Store
	actions *console.Actions
	// recon is nil when reconciliation could not be set up (its pages are then not mounted).
	recon *recon.Store
	usage *usagepush.Store
	pages map[string]*template.Template
	loc   *time.Location
	cats  map[string]Catalog
	now   func() time.Time

	// usedLinks remembers the sign-in links already used (they are one-time) until they expire.
	mu        sync.Mutex
	usedLinks map[string]time.Time
}

// Mount adds the web console to r; tokens are the parsed KOOFLOW_CONSOLE_TOKENS. It needs the data keys
// (d.Keys), which seal its session cookies; without them it serves a page saying so.
func Mount(r gin.IRouter, d app.Deps, tokens []config.ConsoleToken) (*Console, error) {
	c, err := New(d, tokens)
	if err != nil {
		return nil, err
	}
	c.mount(r)
	return c, nil
}

// New builds the console without mounting it.
func New(d app.Deps, tokens []config.ConsoleToken) (*Console, error) {
	loc, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		return nil, fmt.Errorf("web console: time zone Asia/Shanghai: %w", err)
	}
	nets, err := parseTrusted(d.Config.TrustedProxies)
	if err != nil {
		return nil, err
	}
	c := &Console{d: d, tokens: tokens, trusted: nets, store: &store.Store{Pool: d.Pool}, ledger: &ledger.Store{Pool: d.Pool},
		actions: console.NewActions(d), usage: &usagepush.Store{Pool: d.Pool}, loc: loc, cats: Catalogs(), now: d.Clock(), usedLinks: map[string]time.Time{}}
	if c.pages, err = parsePages(c.funcs()); err != nil {
		return nil, err
	}
	return c, nil
}

func (c *Console) mount(r gin.IRouter) {
	g := r.Group(Prefix)
	g.Use(securityHeaders)
	static, _ := fs.Sub(staticFS, "static")
	g.StaticFS("/static", http.FS(static))
	g.GET("/", func(ctx *gin.Context) { ctx.Redirect(http.StatusSeeOther, Prefix+"/instances") })
	g.GET("/signin", c.signinPage)
	g.POST("/signin", c.signin)
	g.GET("/signin/link", c.signinLink)
	g.POST("/signout", c.signout)
	g.POST("/lang", c.setLang)

	read := config.ScopeRead
	c.page(g, "/instances", read, c.instances)
	c.page(g, "/instances/:id", read, c.instance)
	c.page(g, "/supervision", read, c.supervisionQueue)
	c.page(g, "/refunds", read, c.refunds)
	c.page(g, "/parked", read, c.parked)
	c.page(g, "/messages", read, c.messages)
	c.page(g, "/messages/:id", read, c.message)
	c.page(g, "/alerts", read, c.alerts)
	c.page(g, "/bills", read, c.bills)
	c.page(g, "/bills/:period/:productType", read, c.bill)
	c.page(g, "/explain", read, c.explain)
	c.page(g, "/settings", read, c.settings)
	csv, xlsx := bills.Exports(c.d)
	c.page(g, "/bills/:period/:productType/export.csv", read, csv)
	c.page(g, "/bills/:period/:productType/export.xlsx", read, xlsx)

	// Actions: each checks its own scope (console.Actions), after the session and the CSRF token.
	g.POST("/instances/:id/supervision", c.authed(nil, c.csrf(c.supervise)))
	g.POST("/instances/:id/refunds/:refundId/decision", c.authed(nil, c.csrf(c.decideRefund)))
	g.POST("/instances/:id/operator", c.authed(nil, c.csrf(c.operate)))
	operate := config.ScopeOperate
	g.POST("/instances/:id/usage/resume", c.authed(&operate, c.csrf(c.resumeUsage)))
	c.mountRecon(g)
}

// page mounts a GET page that needs scope.
func (c *Console) page(g *gin.RouterGroup, path string, scope config.Scope, h gin.HandlerFunc) {
	s := scope
	g.GET(path, c.authed(&s, h))
}

// securityHeaders keeps the pages out of frames and other origins' scripts, and out of caches.
func securityHeaders(ctx *gin.Context) {
	ctx.Set(keyStart, time.Now())
	h := ctx.Writer.Header()
	h.Set("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "+
		"form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
	if !strings.HasPrefix(ctx.Request.URL.Path, Prefix+"/static/") {
		h.Set("Cache-Control", "no-store")
	}
	ctx.Next()
}

const (
	keySession = "kooflow.web.session"
	keyToken   = "kooflow.web.token"
)

// lang is the request's language: the cookie's, else zh-CN.
func (c *Console) lang(ctx *gin.Context) string {
	if v, err := ctx.Cookie(langCookie); err == nil {
		if _, ok := c.cats[v]; ok {
			return v
		}
	}
	return LangZH
}

// currentSession opens the session cookie and finds its token; ok is false when there is no valid session.
func (c *Console) currentSession(ctx *gin.Context) (session, config.ConsoleToken, bool) {
	var s session
	v, err := ctx.Cookie(sessionCookie)
	if err != nil || c.d.Keys == nil {
		return s, config.ConsoleToken{}, false
	}
	if unseal(c.d.Keys, v, sessionContext, &s) != nil || time.Unix(s.Expires, 0).Before(c.now()) {
		return s, config.ConsoleToken{}, false
	}
	for _, t := range c.tokens {
		if t.Name == s.Name && sameToken(tokenDigest(t), s.Digest) {
			return s, t, true
		}
	}
	return s, config.ConsoleToken{}, false
}

// authed runs h for a signed-in user whose token has scope (nil: any signed-in user); otherwise it sends the
// browser to sign in, or answers a page naming the missing scope.
func (c *Console) authed(scope *config.Scope, h gin.HandlerFunc) gin.HandlerFunc {
	return func(ctx *gin.Context) {
		s, tok, ok := c.currentSession(ctx)
		if !ok {
			if ctx.Request.Method == http.MethodGet {
				ctx.Redirect(http.StatusSeeOther, Prefix+"/signin?next="+url.QueryEscape(ctx.Request.URL.RequestURI()))
			} else {
				c.fail(ctx, http.StatusUnauthorized, c.cat(ctx).T("err.signedOut"))
			}
			ctx.Abort()
			return
		}
		ctx.Set(keySession, s)
		ctx.Set(keyToken, tok)
		if scope != nil && !tok.Has(*scope) {
			httpx.Log(ctx).Warn("web console page refused: scope missing", "token", tok.Name, "scope", *scope, "path", ctx.Request.URL.Path)
			c.fail(ctx, http.StatusForbidden, fmt.Sprintf(c.cat(ctx).T("err.scope"), tok.Name, *scope))
			ctx.Abort()
			return
		}
		h(ctx)
	}
}

// csrf refuses a form whose csrf field is not the session's token.
func (c *Console) csrf(h gin.HandlerFunc) gin.HandlerFunc {
	return func(ctx *gin.Context) {
		s := ctx.MustGet(keySession).(session)
		if !sameToken(ctx.PostForm("csrf"), csrfToken(s)) {
			httpx.Log(ctx).Warn("web console form refused: CSRF token missing or wrong", "path", ctx.Request.URL.Path)
			c.fail(ctx, http.StatusForbidden, c.cat(ctx).T("err.csrf"))
			ctx.Abort()
			return
		}
		h(ctx)
	}
}

func (c *Console) cat(ctx *gin.Context) Catalog { return c.cats[c.lang(ctx)] }

func token(ctx *gin.Context) config.ConsoleToken {
	t, _ := ctx.Get(keyToken)
	tok, _ := t.(config.ConsoleToken)
	return tok
}

// view is what every page template gets.
type view struct {
	M      Catalog
	Lang   string
	User   string
	CSRF   string
	Active string
	Title  string
	Path   string
	Can    map[string]bool
	Done   string // the action just taken, as a catalog key
	Error  string
	Data   any
}

func (c *Console) view(ctx *gin.Context, active string, data any) view {
	v := view{M: c.cat(ctx), Lang: c.lang(ctx), Active: active, Path: ctx.Request.URL.RequestURI(), Data: data,
		Can: map[string]bool{}}
	if s, ok := ctx.Get(keySession); ok {
		v.CSRF = csrfToken(s.(session))
		tok := token(ctx)
		v.User = tok.Name
		for _, sc := range config.AllScopes {
			v.Can[string(sc)] = tok.Has(sc)
		}
	}
	if d := ctx.Query("done"); d != "" && v.M.Has("done."+d) {
		v.Done = "done." + d
	}
	return v
}

// render executes a page into a buffer first, so a template error becomes a 500 page and not half a page; the
// Server-Timing header reports the server's time for the request.
func (c *Console) render(ctx *gin.Context, status int, page string, v view) {
	t, ok := c.pages[page]
	if !ok {
		panic("web console: no page template " + page)
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "base", v); err != nil {
		httpx.Log(ctx).Error("render web console page", "page", page, "err", err)
		ctx.Data(http.StatusInternalServerError, "text/plain; charset=utf-8", []byte("the page could not be rendered; see the server log for request "+httpx.RequestID(ctx)))
		return
	}
	if start, ok := ctx.Get(keyStart); ok {
		ctx.Header("Server-Timing", "app;dur="+strconv.FormatFloat(float64(time.Since(start.(time.Time)).Microseconds())/1000, 'f', 1, 64))
	}
	ctx.Data(status, "text/html; charset=utf-8", buf.Bytes())
}

const keyStart = "kooflow.web.start"

// fail answers a page explaining why the request was refused, logged like every refusal.
func (c *Console) fail(ctx *gin.Context, status int, detail string) {
	httpx.Log(ctx).Warn("web console request refused", "status", status, "detail", detail)
	v := c.view(ctx, "", nil)
	v.Error = detail
	v.Title = http.StatusText(status)
	c.render(ctx, status, "error", v)
}

// internal logs err and answers a 500 page.
func (c *Console) internal(ctx *gin.Context, what string, err error) {
	httpx.Log(ctx).Error("web console: "+what, "err", err)
	c.fail(ctx, http.StatusInternalServerError, fmt.Sprintf(c.cat(ctx).T("err.internal"), httpx.RequestID(ctx)))
}

// actionFailed answers an action's refusal in the action's own terms.
func (c *Console) actionFailed(ctx *gin.Context, err error) {
	var ae *console.ActionError
	if !errors.As(err, &ae) {
		c.internal(ctx, "console action", err)
		return
	}
	if ae.Err != nil {
		httpx.Log(ctx).Error("web console action failed", "err", ae.Err)
	}
	detail := ae.Detail
	for _, f := range ae.Fields {
		detail += "; " + f.Field + " " + f.Detail
	}
	c.fail(ctx, ae.Status, detail)
}

// back redirects after an action to the page it came from (a console path only), saying what was done.
func back(ctx *gin.Context, fallback, done string) {
	to := ctx.PostForm("return")
	if !strings.HasPrefix(to, Prefix+"/") || strings.HasPrefix(to, "//") || strings.Contains(to, "\\") {
		to = fallback
	}
	u, err := url.Parse(to)
	if err != nil {
		u, _ = url.Parse(fallback)
	}
	q := u.Query()
	q.Set("done", done)
	u.RawQuery = q.Encode()
	ctx.Redirect(http.StatusSeeOther, u.RequestURI())
}
