// Package httpx holds what every kooflow HTTP handler shares: RFC 9457 problem details for the console, request
// ids, access logging, and console bearer-token authentication that records who acted.
package httpx

import (
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/kooflow/kooflow/internal/instance"
)

// Problem is an RFC 9457 problem details body.
type Problem struct {
	Type      string `json:"type"`
	Title     string `json:"title"`
	Status    int    `json:"status"`
	Detail    string `json:"detail,omitempty"`
	Instance  string `json:"instance,omitempty"`
	RequestID string `json:"requestId,omitempty"`
	// Errors lists field-level problems for 400s.
	Errors []FieldError `json:"errors,omitempty"`
}

// FieldError names one invalid input field.
type FieldError struct {
	Field  string `json:"field"`
	Detail string `json:"detail"`
}

// WriteProblem answers with a problem document, logs it, and aborts the chain. Detail is written for the
// person reading the console, in its terms.
func WriteProblem(c *gin.Context, status int, detail string, fields ...FieldError) {
	p := Problem{
		Type:      "https://kooflow.dev/problems/" + strings.ReplaceAll(strings.ToLower(http.StatusText(status)), " ", "-"),
		Title:     http.StatusText(status),
		Status:    status,
		Detail:    detail,
		Instance:  c.Request.URL.Path,
		RequestID: RequestID(c),
		Errors:    fields,
	}
	Log(c).Warn("request refused", "status", status, "detail", detail, "fields", fields)
	c.Header("Content-Type", "application/problem+json")
	c.AbortWithStatusJSON(status, p)
	// AbortWithStatusJSON sets application/json; restore the problem media type.
	c.Writer.Header().Set("Content-Type", "application/problem+json")
}

const (
	keyRequestID = "kooflow.requestID"
	keyLogger    = "kooflow.logger"
	keyActor     = "kooflow.actor"
)

// RequestID returns the request's id (from X-Request-Id, or generated).
func RequestID(c *gin.Context) string { return c.GetString(keyRequestID) }

// Log returns the request-scoped logger (carries the request id).
func Log(c *gin.Context) *slog.Logger {
	if l, ok := c.Get(keyLogger); ok {
		return l.(*slog.Logger)
	}
	return slog.Default()
}

// RequestContext assigns a request id, a request-scoped logger, and writes one access-log line per request.
func RequestContext(base *slog.Logger) gin.HandlerFunc {
	return func(c *gin.Context) {
		id := c.GetHeader("X-Request-Id")
		if id == "" || len(id) > 64 {
			b := make([]byte, 8)
			_, _ = rand.Read(b)
			id = hex.EncodeToString(b)
		}
		c.Set(keyRequestID, id)
		c.Header("X-Request-Id", id)
		l := base.With("request_id", id)
		c.Set(keyLogger, l)
		start := time.Now()
		c.Next()
		l.Info("http request", "method", c.Request.Method, "path", c.Request.URL.Path,
			"status", c.Writer.Status(), "bytes", c.Writer.Size(), "duration", time.Since(start),
			"remote", c.ClientIP())
	}
}

// Recover turns a panic into a logged 500 problem instead of a dropped connection.
func Recover() gin.HandlerFunc {
	return gin.CustomRecoveryWithWriter(nil, func(c *gin.Context, err any) {
		Log(c).Error("handler panicked", "panic", err)
		WriteProblem(c, http.StatusInternalServerError, "internal error; see the server log for request "+RequestID(c))
	})
}

// ActorName is the console user (token name) acting on this request.
func ActorName(c *gin.Context) string { return c.GetString(keyActor) }

// Actor builds the acting party for a workflow update: party is "seller", "customer" or "operator".
func Actor(c *gin.Context, party string) instance.Actor {
	return instance.Actor{Party: party, Name: ActorName(c)}
}
