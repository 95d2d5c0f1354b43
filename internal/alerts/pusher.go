package alerts

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/kooflow/kooflow/internal/rounds"
	"github.com/kooflow/kooflow/internal/store"
)

// Pusher watches for alerts and pushes them. Run it from the worker process; several processes may run one.
type Pusher struct {
	Store  *store.Store
	URL    string
	Format Format
	Client *http.Client // nil: a client with a 10 s timeout
	Log    *slog.Logger
	// PurchaseAfter raises purchase-failing for a purchase not provisioned this long after its order
	// (KOOFLOW_PURCHASE_ALERT_AFTER).
	PurchaseAfter time.Duration
	// Interval between rounds; 0 means 5 s.
	Interval time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Watchers raise and resolve the alerts of other sources (system alerts: settlement, the order query) each
	// round; one failing is logged and does not stop the others or the pushes.
	Watchers []Watcher
}

// Backoff is the wait after the n-th failed delivery of an alert: 5 s doubling, at most 10 min.
func Backoff(n int) time.Duration {
	d := 5 * time.Second
	for i := 1; i < n && d < 10*time.Minute; i++ {
		d *= 2
	}
	return min(d, 10*time.Minute)
}

const lease = 1 * time.Minute

// Run watches and pushes every Interval until ctx ends. Failures are logged and retried in the next round.
func (p *Pusher) Run(ctx context.Context) {
	interval := p.Interval
	if interval <= 0 {
		interval = 5 * time.Second
	}
	rounds.Run(ctx, interval, func(ctx context.Context) error {
		_, err := p.Round(ctx)
		return err
	}, func(err error) { p.Log.Warn("alert round failed", "err", err) })
}

// Round watches the read model once and pushes the due deliveries; it returns how many were delivered.
func (p *Pusher) Round(ctx context.Context) (int, error) {
	now := p.now()
	if p.PurchaseAfter > 0 {
		if _, _, err := p.Store.WatchAlerts(ctx, now, p.PurchaseAfter); err != nil {
			return 0, err
		}
	}
	for _, w := range p.Watchers {
		if err := w.Watch(ctx, now); err != nil && ctx.Err() == nil {
			p.Log.Warn("alert watcher failed", "watcher", fmt.Sprintf("%T", w), "err", err)
		}
	}
	if p.URL == "" {
		return 0, nil
	}
	due, err := p.Store.ClaimAlertPushes(ctx, now, 50, lease)
	if err != nil {
		return 0, err
	}
	sent := 0
	for _, a := range due {
		if err := p.send(ctx, a); err != nil {
			retry := p.now().Add(Backoff(a.Attempts + 1))
			p.Log.Warn("alert push failed; will retry", "instance_id", a.InstanceID, "subject", a.Subject, "key", a.Key, "kind", a.Kind,
				"attempt", a.Attempts+1, "retry_at", retry, "err", err)
			if err := p.Store.AlertPushFailed(ctx, a, retry, err.Error()); err != nil {
				return sent, err
			}
			continue
		}
		if err := p.Store.AlertPushed(ctx, a); err != nil {
			return sent, err
		}
		sent++
		p.Log.Info("alert pushed", "instance_id", a.InstanceID, "subject", a.Subject, "key", a.Key, "kind", a.Kind, "resolved", a.Resolved)
	}
	return sent, nil
}

func (p *Pusher) now() time.Time {
	if p.Now != nil {
		return p.Now()
	}
	return time.Now()
}

// send delivers one alert: a 2xx whose body the bot does not refuse.
func (p *Pusher) send(ctx context.Context, a store.AlertPush) error {
	body, err := Body(p.Format, a)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.URL, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("build alert request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	c := p.Client
	if c == nil {
		c = &http.Client{Timeout: 10 * time.Second}
	}
	resp, err := c.Do(req)
	if err != nil {
		return fmt.Errorf("post alert: %w", err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("alert webhook answered %d: %s", resp.StatusCode, bytes.TrimSpace(raw[:min(len(raw), 200)]))
	}
	return botError(p.Format, raw)
}
