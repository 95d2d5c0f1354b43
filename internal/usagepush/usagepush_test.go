package usagepush

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/shopspring/decimal"

	"github.com/kooflow/kooflow/emulator/market"
	"github.com/kooflow/kooflow/internal/config"
	"github.com/kooflow/kooflow/internal/koogallery/usagedata"
	"github.com/kooflow/kooflow/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

const sellerKey = "usagepush-test-seller-key"

func TestMeteringSNIsTheSameInGoAndSQL(t *testing.T) {
	pool := testenv.Pool(t)
	ctx := context.Background()
	hour := time.Date(2026, 11, 29, 7, 0, 0, 0, time.UTC)
	addInstance(t, pool, "inst-sn")
	addRecord(t, pool, "r1", "inst-sn", hour, "1.25", "")
	st := &Store{Pool: pool}
	if _, err := st.PlanWindows(ctx, Plan{Cutoff: hour.Add(2 * time.Hour), RecordTime: hour.Add(2 * time.Hour)}); err != nil {
		t.Fatal(err)
	}
	var sn string
	if err := pool.QueryRow(ctx, `SELECT metering_sn FROM usage_pushes WHERE instance_id = 'inst-sn'`).Scan(&sn); err != nil {
		t.Fatal(err)
	}
	if want := MeteringSN("inst-sn", hour, "", 1); sn != want || len(sn) > 64 {
		t.Fatalf("metering_sn %q, want %q (≤ 64 characters)", sn, want)
	}
}

func addInstance(t *testing.T, pool *pgxpool.Pool, id string) {
	t.Helper()
	_, err := pool.Exec(context.Background(), `INSERT INTO instances (instance_id, workflow_id, order_id, order_line_id,
		charging_mode, lifecycle) VALUES ($1, 'instance/' || $1, 'O-' || $1, 'O-' || $1 || '-000001', 'ON_DEMAND', 'ACTIVE')`, id)
	if err != nil {
		t.Fatal(err)
	}
}

func addRecord(t *testing.T, pool *pgxpool.Pool, id, inst string, hour time.Time, v, pkg string) {
	t.Helper()
	var p *string
	if pkg != "" {
		p = &pkg
	}
	_, err := pool.Exec(context.Background(), `INSERT INTO usage_records (record_id, instance_id, value, usage_hour, package_instance_id)
		VALUES ($1, $2, $3, $4, $5)`, id, inst, v, hour, p)
	if err != nil {
		t.Fatal(err)
	}
}

func startMarket(t *testing.T) (*market.Market, *usagedata.Client) {
	t.Helper()
	m, srv, err := market.Serve(market.Options{AK: "ak", SK: "sk", SellerKey: sellerKey, Seed: 7}, "127.0.0.1:0", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	c, err := usagedata.NewClient(usagedata.Options{Endpoint: srv.URL, SellerKey: config.Secret(sellerKey), CAFile: srv.CAFile,
		Timeout: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return m, c
}

// TestPushClosedWindowsRevisionsAndCodes drives the push through its cases against the emulator: closed windows
// only, batches, a re-run that adds nothing, a late record pushed as the window's next revision, a push that fails
// as a whole and is retried with the same metering_sn, a duplicate (005) taken as charged, a parked instance and its
// resumption, and a refused record with its alert. At the end what was ingested equals what the marketplace
// charged, to the cent of a cent.
func TestPushClosedWindowsRevisionsAndCodes(t *testing.T) {
	pool := testenv.Pool(t)
	ctx := context.Background()
	m, client := startMarket(t)
	st := &Store{Pool: pool}
	p := &Pusher{Store: st, Client: client, BatchSize: 3, Worker: "test"}

	now := time.Now().UTC()
	h0 := now.Truncate(time.Hour).Add(-3 * time.Hour)
	ids := []string{"ppu-a", "ppu-b", "ppu-c"}
	for _, id := range ids {
		addInstance(t, pool, id)
		m.PutInstance(market.Instance{InstanceID: id, ChargingMode: market.ChargingOnDemand, Status: "NORMAL"})
	}
	for i, id := range ids {
		for h := 0; h < 3; h++ {
			addRecord(t, pool, fmt.Sprintf("%s-%d-x", id, h), id, h0.Add(time.Duration(h)*time.Hour), fmt.Sprintf("%d.0001", i+1), "")
			addRecord(t, pool, fmt.Sprintf("%s-%d-y", id, h), id, h0.Add(time.Duration(h)*time.Hour), "0.5", "")
		}
		// The current hour is open: not pushed by the hourly run.
		addRecord(t, pool, id+"-open", id, now.Truncate(time.Hour), "9", "")
	}
	plan := func(cutoff time.Time) Planned {
		t.Helper()
		pl, err := st.PlanWindows(ctx, Plan{Cutoff: cutoff, RecordTime: cutoff})
		if err != nil {
			t.Fatal(err)
		}
		return pl
	}
	if pl := plan(now); pl.Records != 9 || !pl.Value.Equal(decimal.RequireFromString("22.5009")) {
		t.Fatalf("planned %+v, want 9 windows worth 22.5009", pl)
	}
	if pl := plan(now); pl.Records != 0 {
		t.Fatalf("a second planning added %+v", pl)
	}

	// The first push fails as a whole; its records go again with the same metering_sn.
	m.SetUsageFaults(market.UsageFaults{FailNext: 1})
	if _, err := p.Drain(ctx, "", 0, nil); err == nil {
		t.Fatal("an injected 500 did not fail the drain")
	}
	m.SetUsageFaults(market.UsageFaults{})
	d, err := p.Drain(ctx, "", 0, nil)
	if err != nil || d.Accepted != 9 || d.Batches != 3 {
		t.Fatalf("drain: %v %+v, want 9 accepted in 3 batches", err, d)
	}

	// A late record for the oldest window: revision 2 carries only the difference.
	addRecord(t, pool, "ppu-a-late", "ppu-a", h0, "0.0007", "")
	if pl := plan(now); pl.Records != 1 || !pl.Value.Equal(decimal.RequireFromString("0.0007")) {
		t.Fatalf("late record planned as %+v", pl)
	}
	// Replanning revision 1 as if it had never been answered: the marketplace says 005, and it counts as charged.
	if _, err := pool.Exec(ctx, `UPDATE usage_pushes SET status = 'pending' WHERE metering_sn = $1`, MeteringSN("ppu-b", h0, "", 1)); err != nil {
		t.Fatal(err)
	}
	// ppu-c is unknown to the marketplace now: its push parks, with an alert.
	m.SetUsageFaults(market.UsageFaults{RecordCodes: map[string]string{"ppu-c": "013"}})
	addRecord(t, pool, "ppu-c-late", "ppu-c", h0, "1", "")
	plan(now)
	d, err = p.Drain(ctx, "", 0, nil)
	if err != nil || d.Accepted != 1 || d.Duplicates != 1 || d.Parked != 1 {
		t.Fatalf("drain: %v %+v, want 1 accepted, 1 duplicate, 1 parked", err, d)
	}
	var alerts int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM instance_alerts WHERE instance_id = 'ppu-c' AND kind = $1 AND resolved_at IS NULL`,
		AlertParked).Scan(&alerts); err != nil || alerts != 1 {
		t.Fatalf("parked alerts of ppu-c: %d %v", alerts, err)
	}
	tc, err := st.InstanceTotals(ctx, "ppu-c")
	if err != nil || !tc.Parked || tc.Pending != 1 {
		t.Fatalf("ppu-c totals %+v %v, want parked with 1 pending", tc, err)
	}
	// Resumed, it is pushed.
	m.SetUsageFaults(market.UsageFaults{})
	if was, err := st.Resume(ctx, "ppu-c"); err != nil || !was {
		t.Fatalf("resume: %v %v", was, err)
	}
	if d, err := p.Drain(ctx, "", 0, nil); err != nil || d.Accepted != 1 {
		t.Fatalf("after resume: %v %+v", err, d)
	}

	// A refused record (007, too old) is closed with an alert and not retried.
	addRecord(t, pool, "ppu-b-old", "ppu-b", h0.Add(time.Hour), "2", "")
	plan(now)
	m.SetUsageFaults(market.UsageFaults{RecordCodes: map[string]string{"ppu-b": "007"}})
	if d, err := p.Drain(ctx, "", 0, nil); err != nil || d.Refused != 1 {
		t.Fatalf("refused: %v %+v", err, d)
	}
	m.SetUsageFaults(market.UsageFaults{})
	if pl := plan(now); pl.Records != 0 {
		t.Fatalf("a refused record was planned again: %+v", pl)
	}

	// The final flush of ppu-a at release pushes the open window up to the release time.
	addRecord(t, pool, "ppu-a-open-2", "ppu-a", now.Truncate(time.Hour), "0.25", "")
	if _, err := st.PlanWindows(ctx, Plan{Cutoff: now, Partial: true, InstanceID: "ppu-a", RecordTime: now}); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Drain(ctx, "ppu-a", 0, nil); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"ppu-a", "ppu-c"} {
		tot, err := st.InstanceTotals(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		charged := m.Charged(id).Value
		want := tot.Ingested
		if id == "ppu-c" { // its open window is not closed yet
			want = want.Sub(decimal.NewFromInt(9))
		}
		if !tot.Pushed.Equal(want) || !charged.Equal(want) || tot.Pending != 0 {
			t.Fatalf("%s: ingested %s (closed %s), pushed %s, charged %s, pending %d", id, tot.Ingested, want, tot.Pushed, charged, tot.Pending)
		}
	}
	var logged, failed int
	if err := pool.QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE failed) FROM koogallery_outbound WHERE api = 'usage-data'`).
		Scan(&logged, &failed); err != nil || failed != 1 || logged < 7 {
		t.Fatalf("outbound log: %d pushes, %d failed, %v", logged, failed, err)
	}
	var refusals string
	if err := pool.QueryRow(ctx, `SELECT refusals::text FROM koogallery_outbound WHERE refusals @> '[{"code":"007"}]'`).Scan(&refusals); err != nil {
		t.Fatalf("the 007 answer is not in the outbound log: %v", err)
	}
}
