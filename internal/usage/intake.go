// Package usage takes the usage of pay-per-use instances from the seller's systems (POST /usage/v1/records) and
// stores it for the hourly push to the marketplace (docs/koogallery.md, "Usage intake"). It validates each record
// on its own, so one bad record in a batch costs only itself, and stores the batch in one statement before the
// answer, so a record answered accepted is durable and a record sent again is never counted twice.
package usage

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/shopspring/decimal"

	"github.com/kooflow/kooflow/internal/store"
	"github.com/kooflow/kooflow/usageclient"
)

// Limits of one record. Values follow the marketplace's usage_value, Double(12,4): at most 4 decimals and 8
// integer digits, so a value taken here can always be pushed.
const (
	MaxIDLen         = 128
	MaxInstanceIDLen = 64
	MaxDecimals      = 4
	// FutureSkew is how far past the intake's clock a record may lie: the reporting system's clock may run ahead.
	FutureSkew = 5 * time.Minute
)

// MaxValue is the largest value a record may carry.
var MaxValue = decimal.RequireFromString("99999999.9999")

// Storer stores validated records; store.Store satisfies it.
type Storer interface {
	StoreUsage(ctx context.Context, rows []store.UsageRow) ([]store.UsageStored, error)
}

// Intake validates and stores batches of usage records.
type Intake struct {
	Store Storer
	// LateWindow is how long after its hour closed a record is still taken (config.DefaultUsageLateWindow if 0).
	LateWindow time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// wireRecord is a record as sent. Value is read from its JSON text (a number or a string) so no digit is lost
// to a float.
type wireRecord struct {
	ID         string          `json:"id"`
	InstanceID string          `json:"instanceId"`
	Value      json.RawMessage `json:"value"`
	Time       *string         `json:"time"`
	Start      *string         `json:"start"`
	End        *string         `json:"end"`
}

// BatchError is a request that cannot be answered record by record (not JSON, no records, too many).
type BatchError struct{ Problem string }

func (e *BatchError) Error() string { return e.Problem }

// Batch is a decoded request: its records, each to be answered on its own.
type Batch struct {
	wire []wireRecord      // every record read in one pass (the usual case)
	raw  []json.RawMessage // or, when some record did not fit, each record's JSON to read on its own
}

// Len is the number of records.
func (b Batch) Len() int { return max(len(b.wire), len(b.raw)) }

// Decode reads a request body: {"records": [...]} with 1 to MaxBatch records. Unknown fields are refused, so a
// misspelt "instanceID" is reported rather than silently dropped. A well-formed batch is read in one pass; when a
// record does not fit the schema, every record is kept as JSON so that only that one is refused.
func Decode(body []byte) (Batch, error) {
	var fast struct {
		Records []wireRecord `json:"records"`
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&fast); err == nil && !dec.More() {
		if err := batchSize(len(fast.Records)); err != nil {
			return Batch{}, err
		}
		return Batch{wire: fast.Records}, nil
	}
	var req struct {
		Records []json.RawMessage `json:"records"`
	}
	dec = json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return Batch{}, &BatchError{"the body must be a JSON object {\"records\": [...]}: " + err.Error()}
	}
	if dec.More() {
		return Batch{}, &BatchError{"the body must hold one JSON object"}
	}
	if err := batchSize(len(req.Records)); err != nil {
		return Batch{}, err
	}
	return Batch{raw: req.Records}, nil
}

func batchSize(n int) error {
	switch {
	case n == 0:
		return &BatchError{"records is empty or missing: send 1 to 1000 records"}
	case n > usageclient.MaxBatch:
		return &BatchError{fmt.Sprintf("%d records in one call; at most %d are allowed", n, usageclient.MaxBatch)}
	}
	return nil
}

func (in *Intake) now() time.Time {
	if in.Now != nil {
		return in.Now()
	}
	return time.Now()
}

func (in *Intake) lateWindow() time.Duration {
	if in.LateWindow <= 0 {
		return 7 * 24 * time.Hour
	}
	return in.LateWindow
}

// Ingest answers each record of a decoded batch and stores those it accepts, in one statement, before it returns.
// An error means nothing of the batch was stored (the caller answers 503 and the seller sends it again).
func (in *Intake) Ingest(ctx context.Context, batch Batch) (usageclient.Response, error) {
	now := in.now().UTC()
	n := batch.Len()
	results := make([]usageclient.Result, n)
	parsed := make([]store.UsageRow, n)
	first := make(map[string]int, n) // record id → index of its first valid occurrence
	later := map[int][]int{}         // index of a first occurrence → indices repeating its id
	var rows []store.UsageRow
	var rowAt []int
	for i := range n {
		var row store.UsageRow
		var id, reason string
		if batch.wire != nil {
			w := batch.wire[i]
			row, id, reason = check(&w, now, in.lateWindow())
		} else {
			row, id, reason = parse(batch.raw[i], now, in.lateWindow())
		}
		results[i] = usageclient.Result{ID: id}
		if reason != "" {
			results[i].Status, results[i].Reason = usageclient.Refused, reason
			continue
		}
		parsed[i] = row
		if j, seen := first[id]; seen {
			results[i].Status, results[i].Reason = repeat(parsed[j], row, "earlier in this batch")
			if results[i].Status == usageclient.Duplicate {
				later[j] = append(later[j], i)
			}
			continue
		}
		first[id] = i
		rows = append(rows, row)
		rowAt = append(rowAt, i)
	}
	if len(rows) > 0 {
		stored, err := in.Store.StoreUsage(ctx, rows)
		if err != nil {
			return usageclient.Response{}, err
		}
		for k, st := range stored {
			i := rowAt[k]
			results[i].Status, results[i].Reason = outcome(rows[k], st)
			// An identical repeat later in the batch shares the fate of the record it repeats when that was refused.
			if results[i].Status == usageclient.Refused {
				for _, j := range later[i] {
					results[j].Status, results[j].Reason = usageclient.Refused, results[i].Reason
				}
			}
		}
	}
	resp := usageclient.Response{Results: results}
	for _, r := range results {
		switch r.Status {
		case usageclient.Accepted:
			resp.Accepted++
		case usageclient.Duplicate:
			resp.Duplicate++
		default:
			resp.Refused++
		}
	}
	return resp, nil
}

// outcome answers one stored (or not stored) row.
func outcome(row store.UsageRow, st store.UsageStored) (usageclient.Status, string) {
	switch {
	case st.Inserted:
		return usageclient.Accepted, ""
	case st.Existing != nil:
		return repeat(*st.Existing, row, "before")
	case !st.InstanceFound:
		return usageclient.Refused, "instance " + row.InstanceID + " does not exist"
	case st.Lifecycle == "RELEASED":
		return usageclient.Refused, "instance " + row.InstanceID + " is released; it takes no more usage"
	case st.ChargingMode == "":
		return usageclient.Refused, "instance " + row.InstanceID + " is still being provisioned (its order has not been read); send the record again shortly"
	default:
		return usageclient.Refused, "instance " + row.InstanceID + " is not a pay-per-use instance (charging mode " + st.ChargingMode + ")"
	}
}

// repeat answers a record whose id was seen (stored, or earlier in the batch): the same content is a duplicate,
// other content under the same id is refused, since counting either would be a guess.
func repeat(have, got store.UsageRow, when string) (usageclient.Status, string) {
	if have.InstanceID == got.InstanceID && have.Value.Equal(got.Value) && have.Hour.Equal(got.Hour) &&
		have.Begin.Equal(got.Begin) && have.End.Equal(got.End) {
		return usageclient.Duplicate, "a record with this id and content was received " + when
	}
	return usageclient.Refused, fmt.Sprintf("id %s was used %s for other content (instance %s, value %s, %s–%s); ids must be unique",
		got.RecordID, when, have.InstanceID, have.Value.String(), have.Begin.UTC().Format(time.RFC3339), have.End.UTC().Format(time.RFC3339))
}

// parse validates one record; reason is empty when it is valid. id is the record's id as far as it could be read.
func parse(raw json.RawMessage, now time.Time, late time.Duration) (row store.UsageRow, id, reason string) {
	var w wireRecord
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&w); err != nil {
		// Read the id alone, so the answer can name the record.
		var probe struct {
			ID any `json:"id"`
		}
		if json.Unmarshal(raw, &probe) == nil {
			if s, ok := probe.ID.(string); ok {
				id = s
			}
		}
		return row, id, "not a usage record {id, instanceId, value, time} or {id, instanceId, value, start, end}: " + err.Error()
	}
	return check(&w, now, late)
}

// check validates one decoded record; reason is empty when it is valid.
func check(w *wireRecord, now time.Time, late time.Duration) (row store.UsageRow, id, reason string) {
	id = w.ID
	if r := text("id", w.ID, MaxIDLen); r != "" {
		return row, id, r
	}
	if r := text("instanceId", w.InstanceID, MaxInstanceIDLen); r != "" {
		return row, id, r
	}
	v, r := value(w.Value)
	if r != "" {
		return row, id, r
	}
	row = store.UsageRow{RecordID: w.ID, InstanceID: w.InstanceID, Value: v}
	switch {
	case w.Time != nil && (w.Start != nil || w.End != nil):
		return row, id, "give either time, or start and end, not both"
	case w.Time != nil:
		t, r := instant("time", *w.Time)
		if r != "" {
			return row, id, r
		}
		row.Begin, row.End = t, t
	case w.Start != nil && w.End != nil:
		s, r := instant("start", *w.Start)
		if r != "" {
			return row, id, r
		}
		e, r := instant("end", *w.End)
		if r != "" {
			return row, id, r
		}
		if e.Before(s) {
			return row, id, "end is before start"
		}
		if hour := s.Truncate(time.Hour); e.After(hour.Add(time.Hour)) {
			return row, id, fmt.Sprintf("start and end span more than the hour window %s–%s: usage is billed by the hour, send one record per hour",
				hour.Format(time.RFC3339), hour.Add(time.Hour).Format(time.RFC3339))
		}
		row.Begin, row.End = s, e
	default:
		return row, id, "time, or start and end, is required"
	}
	row.Hour = row.Begin.Truncate(time.Hour)
	if row.End.After(now.Add(FutureSkew)) {
		return row, id, fmt.Sprintf("the usage lies in the future (after %s, the intake's clock plus %s)", now.Add(FutureSkew).Format(time.RFC3339), FutureSkew)
	}
	if closes := row.Hour.Add(time.Hour); closes.Add(late).Before(now) {
		return row, id, fmt.Sprintf("too late: the hour %s closed more than %s ago, so the marketplace would no longer take it (KOOFLOW_USAGE_LATE_WINDOW)",
			row.Hour.Format(time.RFC3339), late)
	}
	return row, id, ""
}

func text(field, s string, maxLen int) string {
	switch {
	case s == "":
		return field + " is required"
	case len(s) > maxLen:
		return fmt.Sprintf("%s is %d bytes long; at most %d are allowed", field, len(s), maxLen)
	case !utf8.ValidString(s) || strings.IndexFunc(s, func(r rune) bool { return unicode.IsControl(r) || unicode.IsSpace(r) }) >= 0:
		return field + " contains spaces, control characters or invalid UTF-8"
	}
	return ""
}

// value reads an exact decimal from a JSON number or string.
func value(raw json.RawMessage) (decimal.Decimal, string) {
	s := strings.TrimSpace(string(raw))
	if s == "" || s == "null" {
		return decimal.Zero, "value is required"
	}
	if strings.HasPrefix(s, `"`) {
		if err := json.Unmarshal(raw, &s); err != nil {
			return decimal.Zero, "value is not a decimal number"
		}
	}
	if strings.ContainsAny(s, "eE") || s == "" {
		return decimal.Zero, fmt.Sprintf("value %q must be written as a plain decimal number, like 12.5", s)
	}
	d, err := decimal.NewFromString(s)
	if err != nil {
		return decimal.Zero, fmt.Sprintf("value %q is not a decimal number", s)
	}
	switch {
	case !d.IsPositive():
		return decimal.Zero, fmt.Sprintf("value %s must be greater than 0: the marketplace takes no zero or negative usage", s)
	case !d.Equal(d.Truncate(MaxDecimals)):
		return decimal.Zero, fmt.Sprintf("value %s has more than %d decimals", s, MaxDecimals)
	case d.GreaterThan(MaxValue):
		return decimal.Zero, fmt.Sprintf("value %s is larger than %s, the most one record may carry", s, MaxValue)
	}
	return d, ""
}

func instant(field, s string) (time.Time, string) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Sprintf("%s %q is not an RFC 3339 time like 2026-11-29T08:15:00Z", field, s)
	}
	// PostgreSQL keeps microseconds; finer digits would make a repeat look like other content.
	return t.UTC().Truncate(time.Microsecond), ""
}
