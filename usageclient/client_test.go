package usageclient_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/shopspring/decimal"

	"github.com/kooflow/kooflow/api"
	"github.com/kooflow/kooflow/api/gateway"
	"github.com/kooflow/kooflow/internal/app"
	"github.com/kooflow/kooflow/internal/config"
	"github.com/kooflow/kooflow/internal/testenv"
	"github.com/kooflow/kooflow/usageclient"
)

func TestMain(m *testing.M) { testenv.Main(m) }

const (
	usageToken = "meter-token-0123456789abcdef"
	readToken  = "read-token-0123456789abcdef"
)

// server is kooflow's real router on a real listener and a fresh database.
func server(t *testing.T, now time.Time) (*httptest.Server, *pgxpool.Pool) {
	t.Helper()
	pool := testenv.Pool(t)
	d := app.Deps{
		Config: config.Config{ProductionPath: "/koogallery/v2", UsageIntake: config.UsageIntakeConfig{LateWindow: 48 * time.Hour},
			ConsoleTokens: config.Secret("meter:" + usageToken + ":usage,viewer:" + readToken + ":read")},
		Pool: pool, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Now: func() time.Time { return now },
	}
	r, err := api.New(d, gateway.NewInbox(d))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	for _, in := range [][3]string{{"ppu-1", "ACTIVE", "ON_DEMAND"}, {"pkg-1", "ACTIVE", "ON_DEMAND_PKG"},
		{"period-1", "ACTIVE", "PERIOD"}, {"gone-1", "RELEASED", "ON_DEMAND"}} {
		if _, err := pool.Exec(context.Background(), `INSERT INTO instances (instance_id, workflow_id, order_id, order_line_id,
			lifecycle, charging_mode) VALUES ($1, 'instance/' || $1, 'O-' || $1, 'O-' || $1 || '-000001', $2, $3)`,
			in[0], in[1], in[2]); err != nil {
			t.Fatal(err)
		}
	}
	return srv, pool
}

func at(t time.Time) *time.Time { return &t }

func TestSendOverHTTP(t *testing.T) {
	now := time.Date(2026, 11, 29, 10, 30, 0, 0, time.UTC)
	srv, pool := server(t, now)
	ctx := context.Background()
	c := &usageclient.Client{BaseURL: srv.URL, Token: usageToken}
	h9 := time.Date(2026, 11, 29, 9, 0, 0, 0, time.UTC)
	batch := []usageclient.Record{
		{ID: "m-1", InstanceID: "ppu-1", Value: decimal.RequireFromString("12.3456"), Time: at(h9.Add(10 * time.Minute))},
		{ID: "m-2", InstanceID: "ppu-1", Value: decimal.RequireFromString("0.0001"), Start: at(h9), End: at(h9.Add(time.Hour))},
		{ID: "m-3", InstanceID: "pkg-1", Value: decimal.RequireFromString("5"), Time: at(h9.Add(-40 * time.Hour))}, // late, within 48 h
		{ID: "m-4", InstanceID: "period-1", Value: decimal.RequireFromString("1"), Time: at(h9)},
		{ID: "m-5", InstanceID: "gone-1", Value: decimal.RequireFromString("1"), Time: at(h9)},
		{ID: "m-6", InstanceID: "nope", Value: decimal.RequireFromString("1"), Time: at(h9)},
		{ID: "m-7", InstanceID: "ppu-1", Value: decimal.RequireFromString("1"), Time: at(h9.Add(-50 * time.Hour))}, // too late
		{ID: "m-8", InstanceID: "ppu-1", Value: decimal.RequireFromString("1.00005"), Time: at(h9)},
	}
	resp, err := c.Send(ctx, batch)
	if err != nil {
		t.Fatal(err)
	}
	want := []usageclient.Status{usageclient.Accepted, usageclient.Accepted, usageclient.Accepted, usageclient.Refused,
		usageclient.Refused, usageclient.Refused, usageclient.Refused, usageclient.Refused}
	for i, w := range want {
		if r := resp.Results[i]; r.ID != batch[i].ID || r.Status != w || (w == usageclient.Refused) != (r.Reason != "") {
			t.Errorf("record %s: %+v, want %s", batch[i].ID, r, w)
		}
	}
	if resp.Accepted != 3 || resp.Refused != 5 {
		t.Errorf("counts %+v", resp)
	}
	// The whole batch again, as after a lost answer: nothing is counted twice, and a changed record is refused.
	batch[0].Value = decimal.RequireFromString("99")
	resp, err = c.Send(ctx, batch[:3])
	if err != nil {
		t.Fatal(err)
	}
	if resp.Results[0].Status != usageclient.Refused || resp.Results[1].Status != usageclient.Duplicate ||
		resp.Results[2].Status != usageclient.Duplicate || resp.Accepted != 0 {
		t.Errorf("resend %+v", resp.Results)
	}
	var sum decimal.Decimal
	var hour time.Time
	if err := pool.QueryRow(ctx, `SELECT sum(value), max(usage_hour) FROM usage_records WHERE instance_id = 'ppu-1'`).Scan(&sum, &hour); err != nil ||
		!sum.Equal(decimal.RequireFromString("12.3457")) || !hour.Equal(h9) {
		t.Fatalf("stored sum %s hour %s (%v)", sum, hour, err)
	}

	// A token without the scope "usage", a missing token, a malformed batch: problems, nothing stored.
	var p *usageclient.Problem
	_, err = (&usageclient.Client{BaseURL: srv.URL, Token: readToken}).Send(ctx, batch[:1])
	if !errors.As(err, &p) || p.Status != http.StatusForbidden || p.Retryable() {
		t.Errorf("read token: %v", err)
	}
	_, err = (&usageclient.Client{BaseURL: srv.URL}).Send(ctx, batch[:1])
	if !errors.As(err, &p) || p.Status != http.StatusUnauthorized {
		t.Errorf("no token: %v", err)
	}
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/usage/v1/records", nil)
	req.Header.Set("Authorization", "Bearer "+usageToken)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusBadRequest || res.Header.Get("Content-Type") != "application/problem+json" {
		t.Errorf("empty body: HTTP %d %s", res.StatusCode, res.Header.Get("Content-Type"))
	}
	if _, err := c.Send(ctx, make([]usageclient.Record, 1001)); err == nil {
		t.Error("1001 records sent")
	}
}

// TestSendFullBatches: 1,000-record batches from several clients at once, all stored, each once.
func TestSendFullBatches(t *testing.T) {
	now := time.Date(2026, 11, 29, 10, 30, 0, 0, time.UTC)
	srv, pool := server(t, now)
	c := &usageclient.Client{BaseURL: srv.URL, Token: usageToken}
	errs := make(chan error, 4)
	for w := range 4 {
		go func() {
			recs := make([]usageclient.Record, usageclient.MaxBatch)
			for i := range recs {
				recs[i] = usageclient.Record{ID: fmt.Sprintf("w%d-%04d", w, i), InstanceID: "ppu-1",
					Value: decimal.RequireFromString("0.25"), Time: at(now.Add(-time.Duration(i) * time.Minute))}
			}
			resp, err := c.Send(context.Background(), recs)
			if err == nil && resp.Accepted != usageclient.MaxBatch {
				err = fmt.Errorf("worker %d: %d accepted", w, resp.Accepted)
			}
			errs <- err
		}()
	}
	for range 4 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	var sum decimal.Decimal
	if err := pool.QueryRow(context.Background(), `SELECT sum(value) FROM usage_records`).Scan(&sum); err != nil || !sum.Equal(decimal.NewFromInt(1000)) {
		t.Fatalf("sum %s (%v)", sum, err)
	}
}
