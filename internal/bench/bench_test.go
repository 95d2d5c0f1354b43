package bench

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/kooflow/kooflow/internal/settlement"
	"github.com/kooflow/kooflow/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// TestBenchmarkRunsTheRealClose runs the benchmark small: it must close every generated order through the
// workflow, cross-check the bills against the rows, and re-run to the same content hashes.
func TestBenchmarkRunsTheRealClose(t *testing.T) {
	rep, err := Run(context.Background(), Options{
		Orders: 3000, Period: settlement.PeriodOf(time.Now()).Prev(), Parallelism: 2, BatchSize: 700,
		DatabaseURL: testenv.DatabaseURL(t), TemporalAddress: testenv.TemporalAddress(t),
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Lines != 3000 || rep.PlainCount != 3000 || !rep.RerunSameHash || rep.HistoryEvents >= 200 || rep.Batches != 5 ||
		len(rep.Bills) != 2 || rep.Close <= 0 || rep.PlainQuery <= 0 || rep.WriteFloorRows != 3000 || rep.WriteFloor <= 0 ||
		rep.FloorRatio <= 0 {
		t.Fatalf("report %+v", rep)
	}
	t.Logf("3000 orders: plain %s, write floor %s, close %s (%.1f× the query, %.1f× the floor), %d history events",
		rep.PlainQuery, rep.WriteFloor, rep.Close, rep.Ratio, rep.FloorRatio, rep.HistoryEvents)
}
