package recon

import (
	"context"
	"log/slog"
	"strings"
	"time"

	"github.com/kooflow/kooflow/internal/store"
)

// Alert kinds reconciliation raises. They are not tied to an instance: they concern a bill of a period and
// product type, named by Key ("recon/2026-10/general").
const (
	AlertUnexplained = "recon-unexplained-difference"
	AlertOverdue     = "recon-payment-overdue"
	AlertShort       = "recon-payment-short"
)

// Alert is one condition a person must look at.
type Alert struct {
	Kind    string
	Key     string
	Summary string
}

// Alerter raises and resolves alerts. Raising the same kind and key again updates the open alert; resolving one
// that is not open does nothing.
type Alerter interface {
	Raise(ctx context.Context, a Alert) error
	Resolve(ctx context.Context, kind, key string) error
}

// LogAlerter writes alerts to a logger; it is what runs when no alert store is wired.
type LogAlerter struct{ Log *slog.Logger }

// Raise logs the alert as a warning.
func (l LogAlerter) Raise(_ context.Context, a Alert) error {
	l.logger().Warn("alert raised", "kind", a.Kind, "key", a.Key, "summary", a.Summary)
	return nil
}

// Resolve logs the resolution.
func (l LogAlerter) Resolve(_ context.Context, kind, key string) error {
	l.logger().Info("alert resolved", "kind", kind, "key", key)
	return nil
}

func (l LogAlerter) logger() *slog.Logger {
	if l.Log == nil {
		return slog.Default()
	}
	return l.Log
}

func (s *Store) alerter() Alerter {
	if s.Alerts == nil {
		return LogAlerter{}
	}
	return s.Alerts
}

// SystemAlerter raises reconciliation's alerts as system alerts (alerts about no single instance), which the
// alert pusher delivers and the console lists with the others. The dedupe key is kind and bill, so an alert is
// raised once while its cause lasts and again if it comes back after it was resolved.
type SystemAlerter struct {
	Store *store.Store
	Now   func() time.Time
}

func (a SystemAlerter) now() time.Time {
	if a.Now == nil {
		return time.Now()
	}
	return a.Now()
}

// Raise raises the system alert of the alert's kind and bill.
func (a SystemAlerter) Raise(ctx context.Context, al Alert) error {
	_, err := a.Store.RaiseSystemAlert(ctx, store.SystemAlert{Kind: al.Kind, Key: al.Kind + ":" + al.Key,
		Subject: "marketplace bill " + strings.ReplaceAll(strings.TrimPrefix(al.Key, "recon/"), "/", " "), Message: al.Summary}, a.now())
	return err
}

// Resolve resolves it.
func (a SystemAlerter) Resolve(ctx context.Context, kind, key string) error {
	_, err := a.Store.ResolveSystemAlert(ctx, kind+":"+key, a.now())
	return err
}
