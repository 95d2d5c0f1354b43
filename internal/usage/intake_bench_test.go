package usage

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/kooflow/kooflow/internal/store"
)

type discard struct{}

func (discard) StoreUsage(_ context.Context, rows []store.UsageRow) ([]store.UsageStored, error) {
	out := make([]store.UsageStored, len(rows))
	for i := range out {
		out[i].Inserted = true
	}
	return out, nil
}

// BenchmarkIngest1000 is the intake's own cost for a full batch: decoding, validating and answering 1,000 records.
func BenchmarkIngest1000(b *testing.B) {
	body := []byte(`{"records":[`)
	for i := range 1000 {
		if i > 0 {
			body = append(body, ',')
		}
		body = fmt.Appendf(body, `{"id":"bench-%d","instanceId":"inst-%d","value":"%d.125","time":"2026-11-29T10:%02d:00Z"}`, i, i%50, i, i%30)
	}
	body = append(body, "]}"...)
	in := &Intake{Store: discard{}, Now: func() time.Time { return now }}
	b.ReportAllocs()
	for b.Loop() {
		raw, err := Decode(body)
		if err != nil {
			b.Fatal(err)
		}
		resp, err := in.Ingest(context.Background(), raw)
		if err != nil || resp.Accepted != 1000 {
			b.Fatal(resp.Refused, err)
		}
	}
}
