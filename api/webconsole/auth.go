package webconsole

import (
	"crypto/subtle"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/kooflow/kooflow/api/httpx"
	"github.com/kooflow/kooflow/internal/config"
)

// setCookie writes a console cookie: HttpOnly, SameSite=Strict, path /console, Secure when the browser came
// over TLS (directly or through a trusted proxy). maxAge < 0 deletes it.
func (c *Console) setCookie(ctx *gin.Context, name, value string, maxAge int) {
	http.SetCookie(ctx.Writer, &http.Cookie{Name: name, Value: value, Path: Prefix, MaxAge: maxAge, HttpOnly: true,
		Secure: secureRequest(ctx.Request, c.trusted), SameSite: http.SameSiteStrictMode})
}

// signinForm returns the sign-in form's CSRF value: before there is a session, a random value in a cookie that
// the form must repeat (double submit; the cookie is SameSite=Strict, so another site can neither read nor send it).
func (c *Console) signinForm(ctx *gin.Context) string {
	if v, err := ctx.Cookie(signinCookie); err == nil && len(v) >= 20 {
		return v
	}
	v := randomID()
	c.setCookie(ctx, signinCookie, v, int(time.Hour/time.Second))
	return v
}

type signinData struct {
	Next   string
	Signin string // the double-submit value
}

func safeNext(next string) string {
	if strings.HasPrefix(next, Prefix+"/") && !strings.HasPrefix(next, "//") && !strings.Contains(next, "\\") &&
		!strings.HasPrefix(next, Prefix+"/signin") {
		return next
	}
	return Prefix + "/instances"
}

func (c *Console) signinPage(ctx *gin.Context) {
	v := c.view(ctx, "", signinData{Next: safeNext(ctx.Query("next")), Signin: c.signinForm(ctx)})
	if c.d.Keys == nil {
		v.Error = v.M.T("err.noKeys")
	}
	c.render(ctx, http.StatusOK, "signin", v)
}

// signin: POST /console/signin with the console token.
func (c *Console) signin(ctx *gin.Context) {
	m := c.cat(ctx)
	cookie, _ := ctx.Cookie(signinCookie)
	if !sameToken(ctx.PostForm("csrf"), cookie) {
		c.fail(ctx, http.StatusForbidden, m.T("err.csrf"))
		return
	}
	if c.d.Keys == nil {
		c.fail(ctx, http.StatusServiceUnavailable, m.T("err.noKeys"))
		return
	}
	given := strings.TrimSpace(ctx.PostForm("token"))
	var found *config.ConsoleToken
	for i := range c.tokens {
		// Compare with every token, so the time taken does not tell which one matched.
		if subtle.ConstantTimeCompare([]byte(given), []byte(c.tokens[i].Token.Reveal())) == 1 {
			found = &c.tokens[i]
		}
	}
	if given == "" || found == nil {
		httpx.Log(ctx).Warn("web console sign-in failed")
		v := c.view(ctx, "", signinData{Next: safeNext(ctx.PostForm("next")), Signin: c.signinForm(ctx)})
		v.Error = m.T("signin.failed")
		c.render(ctx, http.StatusUnauthorized, "signin", v)
		return
	}
	if err := c.startSession(ctx, *found); err != nil {
		c.internal(ctx, "start a session", err)
		return
	}
	ctx.Redirect(http.StatusSeeOther, safeNext(ctx.PostForm("next")))
}

func (c *Console) startSession(ctx *gin.Context, t config.ConsoleToken) error {
	s := session{Name: t.Name, Digest: tokenDigest(t), ID: randomID(), Expires: c.now().Add(sessionTTL).Unix()}
	v, err := seal(c.d.Keys, s, sessionContext)
	if err != nil {
		return err
	}
	c.setCookie(ctx, sessionCookie, v, int(sessionTTL/time.Second))
	c.setCookie(ctx, signinCookie, "", -1)
	httpx.Log(ctx).Info("web console sign-in", "token", t.Name)
	return nil
}

// signinLink: GET /console/signin/link?t=… signs in with a one-time link (kooflow dev prints one).
func (c *Console) signinLink(ctx *gin.Context) {
	m := c.cat(ctx)
	var l signinLink
	if c.d.Keys == nil || unseal(c.d.Keys, ctx.Query("t"), signinLinkPrefix, &l) != nil {
		c.fail(ctx, http.StatusBadRequest, m.T("err.badLink"))
		return
	}
	now := c.now()
	if time.Unix(l.Expires, 0).Before(now) {
		c.fail(ctx, http.StatusBadRequest, m.T("err.badLink"))
		return
	}
	c.mu.Lock()
	for k, exp := range c.usedLinks {
		if exp.Before(now) {
			delete(c.usedLinks, k)
		}
	}
	_, used := c.usedLinks[l.Nonce]
	if !used {
		c.usedLinks[l.Nonce] = time.Unix(l.Expires, 0)
	}
	c.mu.Unlock()
	if used {
		c.fail(ctx, http.StatusBadRequest, m.T("err.badLink"))
		return
	}
	for _, t := range c.tokens {
		if t.Name == l.Name && sameToken(tokenDigest(t), l.Digest) {
			if err := c.startSession(ctx, t); err != nil {
				c.internal(ctx, "start a session", err)
				return
			}
			ctx.Redirect(http.StatusSeeOther, Prefix+"/instances")
			return
		}
	}
	c.fail(ctx, http.StatusBadRequest, m.T("err.badLink"))
}

// signout: POST /console/signout (with the session's CSRF token) deletes the session cookie.
func (c *Console) signout(ctx *gin.Context) {
	s, _, ok := c.currentSession(ctx)
	if ok && !sameToken(ctx.PostForm("csrf"), csrfToken(s)) {
		c.fail(ctx, http.StatusForbidden, c.cat(ctx).T("err.csrf"))
		return
	}
	c.setCookie(ctx, sessionCookie, "", -1)
	ctx.Redirect(http.StatusSeeOther, Prefix+"/signin")
}

// setLang: POST /console/lang switches the language (a cookie kept a year). The form carries the session's
// CSRF token, or the sign-in form's before there is a session.
func (c *Console) setLang(ctx *gin.Context) {
	want := ctx.PostForm("csrf")
	if s, _, ok := c.currentSession(ctx); ok {
		if !sameToken(want, csrfToken(s)) {
			c.fail(ctx, http.StatusForbidden, c.cat(ctx).T("err.csrf"))
			return
		}
	} else if cookie, _ := ctx.Cookie(signinCookie); !sameToken(want, cookie) {
		c.fail(ctx, http.StatusForbidden, c.cat(ctx).T("err.csrf"))
		return
	}
	lang := ctx.PostForm("lang")
	if _, ok := c.cats[lang]; !ok {
		c.fail(ctx, http.StatusBadRequest, c.cat(ctx).T("err.lang"))
		return
	}
	c.setCookie(ctx, langCookie, lang, 365*24*3600)
	to := ctx.PostForm("return")
	if !strings.HasPrefix(to, Prefix+"/") || strings.HasPrefix(to, "//") || strings.Contains(to, "\\") {
		to = Prefix + "/instances"
	}
	ctx.Redirect(http.StatusSeeOther, to)
}
