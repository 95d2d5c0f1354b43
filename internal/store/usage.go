package store

import (
	"context"
	"fmt"
	"time"

	"github.com/shopspring/decimal"
)

// The usage of pay-per-use instances (usage_records, migrations/00012_usage.sql): one row per record the seller's
// systems reported through POST /usage/v1/records, keyed by the seller's record id. The intake writes it; the
// hourly usage push and settlement read it.

// UsageRow is one validated usage record to store. Begin and End are the record's window; a record given as one
// point in time has Begin = End. Hour is the UTC hour window it counts in.
type UsageRow struct {
	RecordID   string
	InstanceID string
	Value      decimal.Decimal
	Hour       time.Time
	Begin, End time.Time
}

// UsageStored is what StoreUsage found for one row, in the order the rows were given.
type UsageStored struct {
	// Inserted is true when this call stored the row.
	Inserted bool
	// Existing is the row already stored under the same record id (Inserted false), nil when there was none.
	Existing *UsageRow
	// InstanceFound, Lifecycle and ChargingMode describe the row's instance as the statement saw it.
	InstanceFound bool
	Lifecycle     string
	ChargingMode  string
}

// Pay-per-use charging modes of an order line (docs/koogallery.md, "Order query"): only instances bought with one
// of them take usage.
const (
	ChargingOnDemand    = "ON_DEMAND"
	ChargingOnDemandPkg = "ON_DEMAND_PKG"
)

// StoreUsage stores rows in one statement: a row whose record id is new and whose instance exists, is not
// released and was bought pay-per-use is inserted; every other row is left out and reported with what blocked it
// (the record stored before under its id, or its instance's state), so the caller can answer each record. Record
// ids must be distinct within rows. Either every insertable row is stored or, on error, none.
func (s *Store) StoreUsage(ctx context.Context, rows []UsageRow) ([]UsageStored, error) {
	n := len(rows)
	ids, insts, values := make([]string, n), make([]string, n), make([]string, n)
	hours, begins, ends := make([]time.Time, n), make([]time.Time, n), make([]time.Time, n)
	distinct := make([]string, 0, 16)
	seen := make(map[string]bool, 16)
	for i, r := range rows {
		ids[i], insts[i], values[i] = r.RecordID, r.InstanceID, r.Value.String()
		if !seen[r.InstanceID] {
			seen[r.InstanceID] = true
			distinct = append(distinct, r.InstanceID)
		}
		hours[i], begins[i], ends[i] = r.Hour.UTC(), r.Begin.UTC(), r.End.UTC()
	}
	// The main query sees usage_records as they were before the insert (one snapshot for the statement), so a
	// row it did not insert shows the record stored earlier under that id. A record inserted by a concurrent call
	// that committed after this statement began is neither inserted nor visible; it is read again below.
	q, err := s.Pool.Query(ctx, storeUsageSQL, ids, insts, values, hours, begins, ends, distinct)
	if err != nil {
		return nil, fmt.Errorf("store %d usage records: %w", n, err)
	}
	defer q.Close()
	out := make([]UsageStored, 0, n)
	var missing []int
	for q.Next() {
		var st UsageStored
		var exists bool
		var e UsageRow
		var value string
		if err := q.Scan(&st.Inserted, &st.InstanceFound, &st.Lifecycle, &st.ChargingMode, &exists, &e.InstanceID,
			&value, &e.Hour, &e.Begin, &e.End); err != nil {
			return nil, fmt.Errorf("store usage records: read the outcome: %w", err)
		}
		if exists && !st.Inserted {
			e.RecordID = ids[len(out)]
			if e.Value, err = decimal.NewFromString(value); err != nil {
				return nil, fmt.Errorf("store usage records: stored value %q: %w", value, err)
			}
			st.Existing = &e
		}
		insertable := st.InstanceFound && st.Lifecycle != "RELEASED" &&
			(st.ChargingMode == ChargingOnDemand || st.ChargingMode == ChargingOnDemandPkg)
		if !st.Inserted && st.Existing == nil && insertable {
			missing = append(missing, len(out))
		}
		out = append(out, st)
	}
	if err := q.Err(); err != nil {
		return nil, fmt.Errorf("store %d usage records: %w", n, err)
	}
	if len(missing) > 0 {
		if err := s.readConcurrentUsage(ctx, ids, missing, out); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// storeUsageSQL is StoreUsage's statement: $1–$6 are the rows' columns as arrays, $7 their distinct instance ids
// (so the instances are read by primary key, however many there are).
const storeUsageSQL = `
		WITH input AS (
			SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[], $5::timestamptz[], $6::timestamptz[])
				WITH ORDINALITY AS t(record_id, instance_id, value, usage_hour, begin_at, end_at, ord)
		), inst AS (
			SELECT instance_id, lifecycle, charging_mode FROM instances
			WHERE instance_id = ANY($7::text[])
		), ins AS (
			INSERT INTO usage_records (record_id, instance_id, value, usage_hour, begin_at, end_at)
			SELECT i.record_id, i.instance_id, i.value::numeric(16,4), i.usage_hour, i.begin_at, i.end_at
			FROM input i JOIN inst USING (instance_id)
			WHERE inst.lifecycle <> 'RELEASED' AND inst.charging_mode IN ('ON_DEMAND', 'ON_DEMAND_PKG')
			ORDER BY i.record_id
			ON CONFLICT (record_id) DO NOTHING
			RETURNING record_id
		)
		SELECT ins.record_id IS NOT NULL, inst.instance_id IS NOT NULL, coalesce(inst.lifecycle, ''),
			coalesce(inst.charging_mode, ''), u.record_id IS NOT NULL, coalesce(u.instance_id, ''),
			coalesce(u.value, 0)::text, coalesce(u.usage_hour, 'epoch'), coalesce(u.begin_at, u.usage_hour, 'epoch'),
			coalesce(u.end_at, u.usage_hour, 'epoch')
		FROM input i
		LEFT JOIN inst USING (instance_id)
		LEFT JOIN ins USING (record_id)
		-- Only rows not inserted look for the record stored before, one primary-key probe each.
		LEFT JOIN LATERAL (SELECT * FROM usage_records r WHERE r.record_id = i.record_id AND ins.record_id IS NULL LIMIT 1) u ON true
		ORDER BY i.ord`

// readConcurrentUsage fills Existing for rows a concurrent call stored while StoreUsage's statement ran.
func (s *Store) readConcurrentUsage(ctx context.Context, ids []string, missing []int, out []UsageStored) error {
	want := make([]string, len(missing))
	at := make(map[string]int, len(missing))
	for k, i := range missing {
		want[k] = ids[i]
		at[ids[i]] = i
	}
	rows, err := s.Pool.Query(ctx, `SELECT record_id, instance_id, value::text, usage_hour,
			coalesce(begin_at, usage_hour), coalesce(end_at, usage_hour)
		FROM usage_records WHERE record_id = ANY($1)`, want)
	if err != nil {
		return fmt.Errorf("read concurrently stored usage records: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var e UsageRow
		var value string
		if err := rows.Scan(&e.RecordID, &e.InstanceID, &value, &e.Hour, &e.Begin, &e.End); err != nil {
			return fmt.Errorf("read concurrently stored usage records: %w", err)
		}
		if e.Value, err = decimal.NewFromString(value); err != nil {
			return fmt.Errorf("read concurrently stored usage records: value %q: %w", value, err)
		}
		out[at[e.RecordID]].Existing = &e
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read concurrently stored usage records: %w", err)
	}
	for _, i := range missing {
		if out[i].Existing == nil {
			// ON CONFLICT skipped it, so the conflicting row was committed; only a deletion could hide it now.
			return fmt.Errorf("usage record %s was neither stored nor found stored", ids[i])
		}
	}
	return nil
}

// UsageTotal is what queryInstance reports of a pay-per-use instance or package: the sum of the usage taken for it,
// the end of the latest usage counted (nil when none), and for a package the pay-per-use instance of its order.
type UsageTotal struct {
	InstanceID   string
	ChargingMode string
	Value        decimal.Decimal
	Through      *time.Time
	Related      string
}

// UsageTotals reads the usage totals of the pay-per-use instances and packages among ids, in one statement
// whatever the number of ids; other instances are left out. A record counts up to its end (a point record at its
// time).
func (s *Store) UsageTotals(ctx context.Context, ids []string) ([]UsageTotal, error) {
	rows, err := s.Pool.Query(ctx, `
		SELECT i.instance_id, i.charging_mode, coalesce(a.total, 0)::text, a.through,
			coalesce(CASE WHEN i.charging_mode = 'ON_DEMAND_PKG' THEN (SELECT min(r.instance_id) FROM instances r
				WHERE r.order_id = i.order_id AND r.charging_mode = 'ON_DEMAND') END, '')
		FROM instances i
		LEFT JOIN LATERAL (SELECT sum(u.value) AS total, max(coalesce(u.end_at, u.usage_hour)) AS through
			FROM usage_records u WHERE u.instance_id = i.instance_id) a ON true
		WHERE i.instance_id = ANY($1) AND i.charging_mode IN ('ON_DEMAND', 'ON_DEMAND_PKG')`, ids)
	if err != nil {
		return nil, fmt.Errorf("read usage totals: %w", err)
	}
	defer rows.Close()
	var out []UsageTotal
	for rows.Next() {
		var u UsageTotal
		var total string
		if err := rows.Scan(&u.InstanceID, &u.ChargingMode, &total, &u.Through, &u.Related); err != nil {
			return nil, fmt.Errorf("read usage totals: %w", err)
		}
		if u.Value, err = decimal.NewFromString(total); err != nil {
			return nil, fmt.Errorf("read usage totals: %q: %w", total, err)
		}
		out = append(out, u)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read usage totals: %w", err)
	}
	return out, nil
}
