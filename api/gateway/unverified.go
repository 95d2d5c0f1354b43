package gateway

import (
	"crypto/sha256"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/kooflow/kooflow/internal/config"
	"github.com/kooflow/kooflow/internal/store"
)

// The production interface and the Kit endpoints face the same internet: anyone can send them anything before
// a signature is checked. The helpers here are what both do with a call until it is verified, and with one
// that never is (docs/security.md, "The production interface under flood").

// UnverifiedKeep is how much of an unverified call's body, query and error detail the message log keeps.
const UnverifiedKeep = 1 << 10

// ReadBody reads a request body of at most limit bytes. A Content-Length above the limit is refused before a
// byte is read; a body without one stops at the limit. The error is then an *http.MaxBytesError.
func ReadBody(c *gin.Context, limit int64) ([]byte, error) {
	if c.Request.ContentLength > limit {
		return nil, &http.MaxBytesError{Limit: limit}
	}
	return io.ReadAll(http.MaxBytesReader(c.Writer, c.Request.Body, limit))
}

// DescribeBody records in m the body's size (the larger of what was read and what Content-Length announced)
// and its SHA-256, which identify a call whose body is not kept whole.
func DescribeBody(m *store.Message, body []byte, contentLength int64) {
	m.BodySize = max(len(body), int(contentLength))
	sum := sha256.Sum256(body)
	m.BodySHA256 = sum[:]
}

// KeepUnverified reduces m, the message log entry of a call that failed verification, to metadata: no headers,
// the first UnverifiedKeep bytes of body, query and error detail, the first 256 bytes of X-Forwarded-For. m's
// BodySize must already be set (DescribeBody). It returns nil when limiter says the source has sent more such
// calls than are recorded: the call is then answered but not logged, and the process log says how many were
// dropped (at 1, 2, 4, 8, … per source, so it stays readable under a flood).
func KeepUnverified(log *slog.Logger, limiter *SourceLimiter, m *store.Message, source string, now time.Time) *store.Message {
	m.Headers = nil
	m.BodyTruncated = len(m.RawBody) > UnverifiedKeep || len(m.RawBody) < m.BodySize
	m.RawBody = m.RawBody[:min(len(m.RawBody), UnverifiedKeep)]
	m.RawQuery = m.RawQuery[:min(len(m.RawQuery), UnverifiedKeep)]
	m.ForwardedFor = m.ForwardedFor[:min(len(m.ForwardedFor), 256)]
	m.ErrorDetail = TruncateDetail(m.ErrorDetail)
	if ok, dropped := limiter.Allow(source, now); !ok {
		if dropped&(dropped-1) == 0 {
			log.Warn("unverified calls from this source exceed "+config.EnvUnverifiedRate+"; answered but not recorded",
				"source", source, "dropped", dropped, "path", m.Path)
		}
		return nil
	}
	return m
}

// TruncateDetail bounds an error detail derived from an unverified call (which may quote the caller's input).
func TruncateDetail(s string) string {
	return s[:min(len(s), UnverifiedKeep)]
}
