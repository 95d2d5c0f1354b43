package usagebench

import (
	"context"
	"testing"
	"time"

	"github.com/kooflow/kooflow/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// TestRunStoresEveryAcceptedRecord runs the benchmark briefly on the test database: every accepted record is
// stored once and the report adds up.
func TestRunStoresEveryAcceptedRecord(t *testing.T) {
	rep, err := Run(context.Background(), Options{Clients: 4, Duration: 2 * time.Second, Warmup: 500 * time.Millisecond,
		Batch: 200, Instances: 50, DatabaseURL: testenv.DatabaseURL(t)})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Records == 0 || rep.Records != rep.Calls*200 || rep.Stored != rep.Sent || rep.Sent < rep.Records || rep.RecordsPerSec <= 0 {
		t.Fatalf("report %+v", rep)
	}
	t.Logf("%.0f records/s at 4 clients, 200 records per call (test database, not a measurement)", rep.RecordsPerSec)
}
