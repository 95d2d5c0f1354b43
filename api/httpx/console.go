package httpx

import (
	"crypto/subtle"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/kooflow/kooflow/internal/config"
)

const keyToken = "kooflow.token"

// Console is the console's route group. Every route is mounted with the scopes it needs (any one of them lets
// the request in; a handler may then ask for a narrower one with RequireScope), and the group's authentication
// refuses a request whose route declared none, so a route added without a scope fails closed.
type Console struct {
	g     *gin.RouterGroup
	rules map[string][]config.Scope // "METHOD /full/path" → scopes, shared by subgroups
}

// NewConsole mounts the console's group at prefix on r: "Authorization: Bearer <token>" must match one of tokens
// (compared in constant time), the token's name becomes the acting user, and the route's scope must be granted.
func NewConsole(r gin.IRouter, prefix string, tokens []config.ConsoleToken) *Console {
	c := &Console{rules: map[string][]config.Scope{}}
	c.g = r.Group(prefix, c.auth(tokens))
	return c
}

// Group returns a subgroup sharing the scope rules.
func (c *Console) Group(rel string) *Console {
	return &Console{g: c.g.Group(rel), rules: c.rules}
}

// GET, POST, PUT and DELETE mount a route that a token with scope may use.
func (c *Console) GET(path string, scope config.Scope, h ...gin.HandlerFunc) {
	c.Handle(http.MethodGet, path, []config.Scope{scope}, h...)
}

// POST mounts a POST route; see GET.
func (c *Console) POST(path string, scope config.Scope, h ...gin.HandlerFunc) {
	c.Handle(http.MethodPost, path, []config.Scope{scope}, h...)
}

// PUT mounts a PUT route; see GET.
func (c *Console) PUT(path string, scope config.Scope, h ...gin.HandlerFunc) {
	c.Handle(http.MethodPut, path, []config.Scope{scope}, h...)
}

// Handle mounts a route that a token with any of anyOf may reach; the handler narrows it with RequireScope
// when the scope depends on the request (a supervision step's party).
func (c *Console) Handle(method, path string, anyOf []config.Scope, h ...gin.HandlerFunc) {
	if len(anyOf) == 0 {
		panic("console route " + method + " " + path + " declares no scope")
	}
	full := strings.TrimRight(c.g.BasePath(), "/") + "/" + strings.TrimLeft(path, "/")
	full = strings.TrimRight(full, "/")
	c.rules[method+" "+full] = slices.Clone(anyOf)
	c.g.Handle(method, path, h...)
}

// Scopes returns what each mounted route ("METHOD /full/path") needs, for tests and documentation.
func (c *Console) Scopes() map[string][]config.Scope {
	out := make(map[string][]config.Scope, len(c.rules))
	for k, v := range c.rules {
		out[k] = slices.Clone(v)
	}
	return out
}

func (c *Console) auth(tokens []config.ConsoleToken) gin.HandlerFunc {
	return func(ctx *gin.Context) {
		h := ctx.GetHeader("Authorization")
		tok, ok := strings.CutPrefix(h, "Bearer ")
		if !ok || tok == "" {
			ctx.Header("WWW-Authenticate", `Bearer realm="kooflow console"`)
			WriteProblem(ctx, http.StatusUnauthorized, "send the console token as 'Authorization: Bearer <token>' (KOOFLOW_CONSOLE_TOKENS)")
			return
		}
		var found *config.ConsoleToken
		for i := range tokens {
			// Compare with every token, so the time taken does not tell which one matched.
			if subtle.ConstantTimeCompare([]byte(tok), []byte(tokens[i].Token.Reveal())) == 1 {
				found = &tokens[i]
			}
		}
		if found == nil {
			ctx.Header("WWW-Authenticate", `Bearer realm="kooflow console", error="invalid_token"`)
			WriteProblem(ctx, http.StatusUnauthorized, "authentication failed")
			return
		}
		ctx.Set(keyActor, found.Name)
		ctx.Set(keyToken, *found)
		anyOf, declared := c.rules[ctx.Request.Method+" "+strings.TrimRight(ctx.FullPath(), "/")]
		if !declared {
			Log(ctx).Error("console route declares no scope; refused", "method", ctx.Request.Method, "route", ctx.FullPath())
			WriteProblem(ctx, http.StatusForbidden, "this endpoint declares no scope, so no token may use it")
			return
		}
		if !slices.ContainsFunc(anyOf, found.Has) {
			forbidden(ctx, *found, anyOf)
			return
		}
		ctx.Next()
	}
}

// RequireScope answers 403 naming the scope and returns false unless the request's token grants s.
func RequireScope(c *gin.Context, s config.Scope) bool {
	t, ok := c.Get(keyToken)
	if ok && t.(config.ConsoleToken).Has(s) {
		return true
	}
	var tok config.ConsoleToken
	if ok {
		tok = t.(config.ConsoleToken)
	}
	forbidden(c, tok, []config.Scope{s})
	return false
}

func forbidden(c *gin.Context, t config.ConsoleToken, need []config.Scope) {
	names := make([]string, len(need))
	for i, s := range need {
		names[i] = fmt.Sprintf("%q", s)
	}
	WriteProblem(c, http.StatusForbidden, fmt.Sprintf(
		"the console token %q lacks the scope %s that %s %s needs; grant it in KOOFLOW_CONSOLE_TOKENS (name:token:scope+scope)",
		t.Name, strings.Join(names, " or "), c.Request.Method, c.FullPath()))
}

// Token is the console token the request was authenticated with (the zero token, which grants nothing, when
// none was).
func Token(c *gin.Context) config.ConsoleToken {
	t, _ := c.Get(keyToken)
	tok, _ := t.(config.ConsoleToken)
	return tok
}
