package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/kooflow/kooflow/internal/alerts"
	"github.com/kooflow/kooflow/internal/config"
)

// alertSink is `kooflow dev --alerts-log`: a local webhook that prints each alert the worker pushes, so a
// newcomer sees one fire without configuring a bot.
type alertSink struct {
	w  io.Writer
	mu *sync.Mutex
}

func (s alertSink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var m alerts.Message
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&m); err != nil {
		http.Error(w, "not an alert: "+err.Error(), http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	fmt.Fprintf(s.w, "alert %-8s %-16s instance %s: %s\n", m.Event, m.Kind, m.InstanceID, m.Message)
	s.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

// startAlertSink serves the sink on loopback and points the worker's alert pusher at it (json format), unless
// KOOFLOW_ALERT_WEBHOOK_URL is already set. stop shuts it down.
func startAlertSink(env map[string]string, w io.Writer, mu *sync.Mutex) (stop func() error, err error) {
	if env[config.EnvAlertWebhookURL] != "" {
		return func() error { return nil }, nil
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("alert sink: %w", err)
	}
	srv := &http.Server{Handler: alertSink{w: w, mu: mu}, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	env[config.EnvAlertWebhookURL] = "http://" + ln.Addr().String() + "/alerts"
	env[config.EnvAlertWebhookFormat] = string(alerts.FormatJSON)
	return func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("alert sink: %w", err)
		}
		return nil
	}, nil
}
