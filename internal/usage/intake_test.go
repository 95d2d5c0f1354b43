package usage

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/kooflow/kooflow/internal/store"
	"github.com/kooflow/kooflow/usageclient"
)

var now = time.Date(2026, 11, 29, 10, 30, 0, 0, time.UTC)

func TestParseRefusesWithAReason(t *testing.T) {
	for _, tc := range []struct {
		rec  string
		want string // part of the reason; "" for valid
	}{
		{`{"id":"r1","instanceId":"i1","value":"1.5","time":"2026-11-29T10:00:00Z"}`, ""},
		{`{"id":"r1","instanceId":"i1","value":2,"start":"2026-11-29T09:00:00Z","end":"2026-11-29T10:00:00Z"}`, ""},
		{`{"id":"r1","instanceId":"i1","value":"0.0001","time":"2026-11-29T10:00:00+08:00"}`, ""},
		{`{"id":"r1","instanceId":"i1","value":"1.50000","time":"2026-11-29T10:00:00Z"}`, ""},
		{`{"instanceId":"i1","value":"1","time":"2026-11-29T10:00:00Z"}`, "id is required"},
		{`{"id":"r 1","instanceId":"i1","value":"1","time":"2026-11-29T10:00:00Z"}`, "spaces"},
		{`{"id":"r1","value":"1","time":"2026-11-29T10:00:00Z"}`, "instanceId is required"},
		{`{"id":"r1","instanceId":"i1","time":"2026-11-29T10:00:00Z"}`, "value is required"},
		{`{"id":"r1","instanceId":"i1","value":"0","time":"2026-11-29T10:00:00Z"}`, "greater than 0"},
		{`{"id":"r1","instanceId":"i1","value":"-1","time":"2026-11-29T10:00:00Z"}`, "greater than 0"},
		{`{"id":"r1","instanceId":"i1","value":"1.00001","time":"2026-11-29T10:00:00Z"}`, "more than 4 decimals"},
		{`{"id":"r1","instanceId":"i1","value":1e3,"time":"2026-11-29T10:00:00Z"}`, "plain decimal"},
		{`{"id":"r1","instanceId":"i1","value":"abc","time":"2026-11-29T10:00:00Z"}`, "not a decimal"},
		{`{"id":"r1","instanceId":"i1","value":"100000000","time":"2026-11-29T10:00:00Z"}`, "larger than"},
		{`{"id":"r1","instanceId":"i1","value":"1"}`, "time, or start and end, is required"},
		{`{"id":"r1","instanceId":"i1","value":"1","start":"2026-11-29T09:00:00Z"}`, "time, or start and end, is required"},
		{`{"id":"r1","instanceId":"i1","value":"1","time":"2026-11-29T10:00:00Z","start":"2026-11-29T09:00:00Z"}`, "not both"},
		{`{"id":"r1","instanceId":"i1","value":"1","time":"29/11/2026"}`, "RFC 3339"},
		{`{"id":"r1","instanceId":"i1","value":"1","start":"2026-11-29T09:10:00Z","end":"2026-11-29T09:00:00Z"}`, "end is before start"},
		{`{"id":"r1","instanceId":"i1","value":"1","start":"2026-11-29T08:30:00Z","end":"2026-11-29T09:30:00Z"}`, "send one record per hour"},
		{`{"id":"r1","instanceId":"i1","value":"1","time":"2026-11-29T10:40:00Z"}`, "future"},
		{`{"id":"r1","instanceId":"i1","value":"1","time":"2026-11-22T09:59:59Z"}`, "too late"},
		{`{"id":"r1","instanceId":"i1","value":"1","time":"2026-11-22T10:00:00Z"}`, ""}, // its hour closed exactly 7 days ago
		{`{"id":"r1","instanceId":"i1","value":"1","time":"2026-11-29T10:00:00Z","extra":1}`, "unknown field"},
	} {
		_, _, reason := parse(json.RawMessage(tc.rec), now, 7*24*time.Hour)
		if tc.want == "" && reason != "" || tc.want != "" && !strings.Contains(reason, tc.want) {
			t.Errorf("%s: reason %q, want %q", tc.rec, reason, tc.want)
		}
	}
}

func TestParseHourWindow(t *testing.T) {
	row, _, reason := parse(json.RawMessage(`{"id":"r","instanceId":"i","value":"3.25","start":"2026-11-29T17:20:00+08:00","end":"2026-11-29T18:00:00+08:00"}`), now, time.Hour*24)
	if reason != "" {
		t.Fatal(reason)
	}
	if !row.Hour.Equal(time.Date(2026, 11, 29, 9, 0, 0, 0, time.UTC)) || !row.Value.Equal(decimal.RequireFromString("3.25")) ||
		!row.End.Equal(time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC)) {
		t.Fatalf("row %+v", row)
	}
}

func TestDecodeBatch(t *testing.T) {
	for body, want := range map[string]string{
		`nope`:              "JSON object",
		`{"records":[]}`:    "empty",
		`{}`:                "empty",
		`{"recs":[{}]}`:     "unknown field",
		`{"records":[{}]}x`: "one JSON object",
		`{"records":[` + strings.Repeat(`{},`, 1000) + `{}]}`: "at most 1000",
	} {
		_, err := Decode([]byte(body))
		var be *BatchError
		if !errors.As(err, &be) || !strings.Contains(be.Problem, want) {
			t.Errorf("%.40s: %v, want %q", body, err, want)
		}
	}
	if recs, err := Decode([]byte(`{"records":[{"id":"a"},{"id":"b"}]}`)); err != nil || recs.Len() != 2 || recs.wire == nil {
		t.Fatalf("%v %v", recs, err)
	}
	// A record that does not fit the schema sends the batch the slow way, record by record.
	if recs, err := Decode([]byte(`{"records":[{"id":"a"},{"id":7},{"id":"b","x":1}]}`)); err != nil || recs.Len() != 3 || recs.raw == nil {
		t.Fatalf("%v %v", recs, err)
	}
}

// fakeStore stands in for PostgreSQL: it stores rows of instance "ppu" and keeps what it stored.
type fakeStore struct{ rows map[string]store.UsageRow }

func (f *fakeStore) StoreUsage(_ context.Context, rows []store.UsageRow) ([]store.UsageStored, error) {
	out := make([]store.UsageStored, len(rows))
	for i, r := range rows {
		if e, ok := f.rows[r.RecordID]; ok {
			out[i].Existing = &e
			continue
		}
		switch r.InstanceID {
		case "ppu":
			out[i] = store.UsageStored{Inserted: true, InstanceFound: true, Lifecycle: "ACTIVE", ChargingMode: store.ChargingOnDemand}
			f.rows[r.RecordID] = r
		case "period":
			out[i] = store.UsageStored{InstanceFound: true, Lifecycle: "ACTIVE", ChargingMode: "PERIOD"}
		case "gone":
			out[i] = store.UsageStored{InstanceFound: true, Lifecycle: "RELEASED", ChargingMode: store.ChargingOnDemand}
		}
	}
	return out, nil
}

func TestIngestAnswersEachRecord(t *testing.T) {
	f := &fakeStore{rows: map[string]store.UsageRow{}}
	in := &Intake{Store: f, Now: func() time.Time { return now }}
	rec := func(id, inst, v string) json.RawMessage {
		return json.RawMessage(`{"id":"` + id + `","instanceId":"` + inst + `","value":"` + v + `","time":"2026-11-29T10:05:00Z"}`)
	}
	resp, err := in.Ingest(context.Background(), batchOf(t,
		rec("a", "ppu", "1"), rec("b", "period", "1"), rec("c", "gone", "1"), rec("d", "nowhere", "1"),
		rec("a", "ppu", "1"), rec("a", "ppu", "2"), rec("e", "ppu", "0"), rec("f", "period", "1"), rec("f", "period", "1"),
	))
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		status usageclient.Status
		reason string
	}{
		{usageclient.Accepted, ""}, {usageclient.Refused, "not a pay-per-use"}, {usageclient.Refused, "released"},
		{usageclient.Refused, "does not exist"}, {usageclient.Duplicate, "earlier in this batch"},
		{usageclient.Refused, "other content"}, {usageclient.Refused, "greater than 0"},
		{usageclient.Refused, "not a pay-per-use"}, {usageclient.Refused, "not a pay-per-use"},
	}
	for i, w := range want {
		if got := resp.Results[i]; got.Status != w.status || !strings.Contains(got.Reason, w.reason) {
			t.Errorf("record %d: %s %q, want %s %q", i, got.Status, got.Reason, w.status, w.reason)
		}
	}
	if resp.Accepted != 1 || resp.Duplicate != 1 || resp.Refused != 7 {
		t.Errorf("counts %d/%d/%d", resp.Accepted, resp.Duplicate, resp.Refused)
	}
	// Sent again: the stored record is a duplicate, other content under its id refused.
	resp, err = in.Ingest(context.Background(), batchOf(t, rec("a", "ppu", "1"), rec("a", "ppu", "1.5")))
	if err != nil {
		t.Fatal(err)
	}
	if resp.Results[0].Status != usageclient.Duplicate || resp.Results[1].Status != usageclient.Refused || len(f.rows) != 1 {
		t.Fatalf("resend %+v, stored %d", resp.Results, len(f.rows))
	}
}

// batchOf decodes records sent as one body, as the handler does.
func batchOf(t *testing.T, recs ...json.RawMessage) Batch {
	t.Helper()
	body, err := json.Marshal(map[string][]json.RawMessage{"records": recs})
	if err != nil {
		t.Fatal(err)
	}
	b, err := Decode(body)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestIngestMixedBatch: a record that does not fit the schema is refused on its own; the others are answered as
// in a well-formed batch.
func TestIngestMixedBatch(t *testing.T) {
	in := &Intake{Store: &fakeStore{rows: map[string]store.UsageRow{}}, Now: func() time.Time { return now }}
	resp, err := in.Ingest(context.Background(), batchOf(t,
		json.RawMessage(`{"id":"ok","instanceId":"ppu","value":"1","time":"2026-11-29T10:05:00Z"}`),
		json.RawMessage(`{"id":7,"instanceId":"ppu","value":"1","time":"2026-11-29T10:05:00Z"}`),
		json.RawMessage(`{"id":"typo","instance":"ppu","value":"1","time":"2026-11-29T10:05:00Z"}`),
	))
	if err != nil {
		t.Fatal(err)
	}
	if r := resp.Results; r[0].Status != usageclient.Accepted || r[1].Status != usageclient.Refused ||
		r[2].Status != usageclient.Refused || r[2].ID != "typo" || !strings.Contains(r[2].Reason, `unknown field "instance"`) {
		t.Fatalf("%+v", r)
	}
}
