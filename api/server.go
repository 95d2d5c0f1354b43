// Package api is kooflow's HTTP server: the KooGallery production interface, the seller's console API, and the
// health endpoints. Handlers turn requests into Temporal Updates and read the PostgreSQL read model; they never
// change workflow state themselves.
package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
	"go.temporal.io/sdk/client"

	"github.com/kooflow/kooflow/api/gateway"
	"github.com/kooflow/kooflow/api/httpx"
	"github.com/kooflow/kooflow/api/kit"
	"github.com/kooflow/kooflow/api/sso"
	"github.com/kooflow/kooflow/internal/app"
	"github.com/kooflow/kooflow/internal/config"
	"github.com/kooflow/kooflow/internal/metrics"
	"github.com/kooflow/kooflow/internal/store"
)

// New builds the router with every route mounted. inbox (gateway.NewInbox) receives the newInstance calls; the
// caller runs its dispatcher (inbox.Run) while it serves, so no background work starts here.
func New(d app.Deps, inbox *gateway.Inbox) (*gin.Engine, error) {
	tokens, err := d.Config.ParseConsoleTokens()
	if err != nil {
		return nil, err
	}
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	r.ContextWithFallback = true
	r.HandleMethodNotAllowed = true
	// The client's address comes from X-Forwarded-For only when a configured proxy sent it; otherwise anyone
	// could pick the address that per-source limits and logs see.
	if err := r.SetTrustedProxies(d.Config.TrustedProxies); err != nil {
		return nil, fmt.Errorf("%s: %w", config.EnvTrustedProxies, err)
	}
	r.Use(httpx.RequestContext(d.Log), httpx.Recover())
	r.NoRoute(func(c *gin.Context) {
		httpx.WriteProblem(c, http.StatusNotFound, "no such endpoint: "+c.Request.Method+" "+c.Request.URL.Path)
	})
	r.NoMethod(func(c *gin.Context) {
		httpx.WriteProblem(c, http.StatusMethodNotAllowed, c.Request.Method+" is not allowed on "+c.Request.URL.Path)
	})

	r.GET("/healthz", func(c *gin.Context) { c.JSON(http.StatusOK, gin.H{"status": "ok"}) })
	r.GET("/readyz", readyz(d))
	// This router's own registry: a second router in the same process (tests) counts apart.
	m := metrics.NewAPI(d.Log, (&store.Store{Pool: d.Pool}).InboxPendingCount)
	d.APIMetrics = m
	r.GET("/metrics", gin.WrapH(m.Handler()))

	// Console requests are counted before authentication, so refused ones count too.
	console := httpx.NewConsole(r.Group("", consoleMetrics(m)), "/console/v1", tokens)
	if len(tokens) == 0 {
		d.Log.Warn("no console tokens configured: every console request will be refused", "set", config.EnvConsoleTokens)
	}
	mountSelfCheck(console, d)
	mountRoutes(r, console, d, inbox)
	mountUsage(r, m, tokens, d)
	// The joint-operation Kit endpoints and unified login; a Kit key that cannot be read stops the start.
	if err := kit.Mount(r, console, d); err != nil {
		return nil, err
	}
	if err := sso.Mount(r, d); err != nil {
		return nil, err
	}
	return r, nil
}

// consoleMetrics counts console requests by route template and status, refused ones included.
func consoleMetrics(m *metrics.API) gin.HandlerFunc {
	return func(c *gin.Context) {
		c.Next()
		m.ObserveConsole(c.FullPath(), c.Writer.Status())
	}
}

func readyz(d app.Deps) gin.HandlerFunc {
	return func(c *gin.Context) {
		ctx, cancel := context.WithTimeout(c.Request.Context(), 2*time.Second)
		defer cancel()
		// The answer says ok or failing per dependency; the driver's error, which can name hosts, users and
		// databases, goes to the log only (the endpoint is unauthenticated).
		checks := gin.H{}
		errs := map[string]string{}
		ok := true
		if err := d.Pool.Ping(ctx); err != nil {
			checks["postgres"], errs["postgres"] = "failing", err.Error()
			ok = false
		} else {
			checks["postgres"] = "ok"
		}
		if _, err := d.Temporal.CheckHealth(ctx, &client.CheckHealthRequest{}); err != nil {
			checks["temporal"], errs["temporal"] = "failing", err.Error()
			ok = false
		} else {
			checks["temporal"] = "ok"
		}
		status := http.StatusOK
		if !ok {
			status = http.StatusServiceUnavailable
			httpx.Log(c).Warn("not ready", "errors", errs)
		}
		c.JSON(status, gin.H{"ready": ok, "checks": checks})
	}
}

// Serve listens on addr until ctx ends, then stops accepting, lets in-flight requests finish (up to 10 s), and
// returns. ready, if not nil, receives the bound address once listening.
func Serve(ctx context.Context, addr string, h http.Handler, log *slog.Logger, ready func(net.Addr)) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", addr, err)
	}
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
	}
	if ready != nil {
		ready(ln.Addr())
	}
	log.Info("API listening", "addr", ln.Addr().String())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	log.Info("API shutting down: draining in-flight requests")
	shCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(shCtx); err != nil {
		return fmt.Errorf("graceful shutdown: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
