// Package logging builds the one slog handler every kooflow process uses, and routes the Temporal SDK's logger
// through it so that workflow, activity and HTTP logs share one format and one level.
package logging

import (
	"fmt"
	"io"
	"log/slog"
	"strings"

	tlog "go.temporal.io/sdk/log"
)

// New returns a logger writing to w in format "text" or "json" at the named level.
func New(w io.Writer, format, level string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(strings.ToUpper(level))); err != nil {
		return nil, fmt.Errorf("log level %q: %w", level, err)
	}
	opts := &slog.HandlerOptions{Level: lv}
	var h slog.Handler
	switch format {
	case "json":
		h = slog.NewJSONHandler(w, opts)
	default:
		h = slog.NewTextHandler(w, opts)
	}
	return slog.New(h), nil
}

// Temporal adapts l for the Temporal SDK (client, worker, workflow and activity loggers).
func Temporal(l *slog.Logger) tlog.Logger {
	return tlog.NewStructuredLogger(l.With("component", "temporal"))
}
