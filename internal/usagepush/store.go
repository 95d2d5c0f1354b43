// Package usagepush turns the usage the seller's systems report (usage_records) into the records kooflow pushes to
// the marketplace (usage_pushes), pushes them in batches, and keeps what the marketplace answered: which records
// were charged, which instances' pushes are parked, the alerts a person must see, and every push in the outbound
// message log. docs/koogallery.md ("Usage push") describes the design.
package usagepush

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/shopspring/decimal"

	"github.com/kooflow/kooflow/internal/koogallery/usagedata"
)

// receivedMargin is how far back each planning re-reads records by their arrival time: a record inserted by a
// transaction that committed late carries an earlier received_at than records the previous planning already saw.
const receivedMargin = 15 * time.Minute

// Alert kinds in instance_alerts.
const (
	AlertParked  = "usage-push-parked"  // the marketplace does not accept the instance's usage; its push waits
	AlertRefused = "usage-push-refused" // a record the marketplace will never take: usage not charged
)

// Store is the usage push's SQL.
type Store struct {
	Pool *pgxpool.Pool
}

// Plan is one planning: which windows and which instance.
type Plan struct {
	// Cutoff: windows are planned when they are closed by it (usage_hour + 1 h ≤ Cutoff), or, with Partial, when
	// they started before it; a partial window's record ends at Cutoff (the final flush at release).
	Cutoff  time.Time
	Partial bool
	// InstanceID limits the planning to one instance (the final flush); empty plans every instance and moves the
	// cursor.
	InstanceID string
	// RecordTime is the record_time of the planned records.
	RecordTime time.Time
}

// Planned is what a planning added.
type Planned struct {
	Records int             `json:"records"`
	Value   decimal.Decimal `json:"value"`
}

// PlanWindows adds, for every window in scope whose usage_records sum exceeds what was planned for it, one record
// of the difference at the window's next revision, in one set-based statement. Planning again with nothing new
// adds nothing; two plannings racing for the same revision add it once (the loser's difference is planned by the
// next run).
func (s *Store) PlanWindows(ctx context.Context, p Plan) (Planned, error) {
	var out Planned
	cutoff, rt := p.Cutoff.UTC(), p.RecordTime.UTC()
	err := pgx.BeginFunc(ctx, s.Pool, func(tx pgx.Tx) error {
		// The candidate windows: for one instance all of its windows; for the hourly run the windows that closed
		// since the last run and those that records received since then touched (all windows on the first run).
		var closedSince, receivedSince *time.Time
		if p.InstanceID == "" {
			var c, r time.Time
			err := tx.QueryRow(ctx, `SELECT closed_through, received_through FROM usage_push_cursor FOR UPDATE`).Scan(&c, &r)
			if err == nil {
				c, r = c.Add(-time.Hour), r.Add(-receivedMargin)
				closedSince, receivedSince = &c, &r
			} else if !errors.Is(err, pgx.ErrNoRows) {
				return fmt.Errorf("read the usage push cursor: %w", err)
			}
		}
		var started time.Time
		if err := tx.QueryRow(ctx, `SELECT statement_timestamp()`).Scan(&started); err != nil {
			return err
		}
		err := tx.QueryRow(ctx, `
			WITH candidates AS (
				SELECT DISTINCT instance_id, usage_hour FROM usage_records
				WHERE $4::timestamptz IS NULL AND ($3 = '' OR instance_id = $3)
				UNION
				SELECT DISTINCT instance_id, usage_hour FROM usage_records
				WHERE $4::timestamptz IS NOT NULL AND (usage_hour >= $4 OR received_at >= $5)
			), ingested AS (
				SELECT r.instance_id, r.usage_hour, coalesce(r.package_instance_id, '') AS pkg, sum(r.value) AS total
				FROM usage_records r JOIN candidates c USING (instance_id, usage_hour)
				WHERE CASE WHEN $2 THEN r.usage_hour < $1 ELSE r.usage_hour + interval '1 hour' <= $1 END
				GROUP BY 1, 2, 3
			), planned AS (
				SELECT p.instance_id, p.usage_hour, p.package_instance_id AS pkg, sum(p.value) AS total, max(p.revision) AS rev
				FROM usage_pushes p JOIN candidates c USING (instance_id, usage_hour)
				GROUP BY 1, 2, 3
			), delta AS (
				SELECT i.instance_id, i.usage_hour, i.pkg, i.total - coalesce(p.total, 0) AS value,
					coalesce(p.rev, 0) + 1 AS revision
				FROM ingested i LEFT JOIN planned p USING (instance_id, usage_hour, pkg)
				WHERE i.total > coalesce(p.total, 0)
			), added AS (
				INSERT INTO usage_pushes (metering_sn, instance_id, usage_hour, package_instance_id, revision, value,
					begin_at, end_at, record_time)
				SELECT `+meteringSNSQL+`, d.instance_id, d.usage_hour, d.pkg, d.revision, d.value,
					d.usage_hour, least(d.usage_hour + interval '1 hour', $1), $6
				FROM delta d
				ON CONFLICT DO NOTHING
				RETURNING value
			)
			SELECT count(*), coalesce(sum(value), 0) FROM added`,
			cutoff, p.Partial, p.InstanceID, closedSince, receivedSince, rt).Scan(&out.Records, &out.Value)
		if err != nil {
			return fmt.Errorf("plan usage windows: %w", err)
		}
		if p.InstanceID == "" {
			_, err = tx.Exec(ctx, `
				INSERT INTO usage_push_cursor (closed_through, received_through) VALUES ($1, $2)
				ON CONFLICT (id) DO UPDATE SET closed_through = greatest(usage_push_cursor.closed_through, $1),
					received_through = greatest(usage_push_cursor.received_through, $2)`, cutoff, started)
			if err != nil {
				return fmt.Errorf("move the usage push cursor: %w", err)
			}
		}
		return nil
	})
	return out, err
}

// meteringSNSQL derives a record's metering_sn from its window alone: the window's UTC hour and the revision,
// readable, then 40 hex digits of SHA-256 over (instance, hour, package, revision); at most 64 characters.
const meteringSNSQL = `to_char(d.usage_hour AT TIME ZONE 'UTC', 'YYYYMMDDHH24') || '-r' || d.revision || '-' ||
	left(encode(sha256(convert_to(d.instance_id || '|' || to_char(d.usage_hour AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24') ||
		'|' || d.pkg || '|' || d.revision, 'UTF8')), 'hex'), 40)`

// MeteringSN is the metering_sn PlanWindows gives a window's revision (the same derivation in Go, for tests and
// for operators matching the marketplace's records to kooflow's).
func MeteringSN(instanceID string, hour time.Time, pkg string, revision int) string {
	hour = hour.UTC()
	sum := sha256Hex(instanceID + "|" + hour.Format("2006-01-02T15") + "|" + pkg + "|" + fmt.Sprint(revision))
	return hour.Format("2006010215") + "-r" + fmt.Sprint(revision) + "-" + sum[:40]
}

// Claim leases up to limit pending records of instances whose push is not parked, oldest window first, for lease.
func (s *Store) Claim(ctx context.Context, instanceID string, limit int, lease time.Duration) ([]usagedata.Record, error) {
	rows, err := s.Pool.Query(ctx, `
		UPDATE usage_pushes u SET lease_until = now() + $3::interval, attempts = u.attempts + 1
		FROM (
			SELECT metering_sn FROM usage_pushes p
			WHERE p.status = 'pending' AND ($1 = '' OR p.instance_id = $1)
				AND (p.lease_until IS NULL OR p.lease_until < now())
				AND NOT EXISTS (SELECT 1 FROM usage_push_parked k WHERE k.instance_id = p.instance_id)
			ORDER BY p.usage_hour, p.instance_id, p.revision
			LIMIT $2
			FOR UPDATE SKIP LOCKED
		) c
		WHERE u.metering_sn = c.metering_sn
		RETURNING u.instance_id, u.metering_sn, u.value, u.begin_at, u.end_at, u.record_time, u.package_instance_id, u.usage_hour`,
		instanceID, limit, lease)
	if err != nil {
		return nil, fmt.Errorf("claim usage records: %w", err)
	}
	type row struct {
		rec  usagedata.Record
		hour time.Time
	}
	got, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (row, error) {
		var x row
		err := r.Scan(&x.rec.InstanceID, &x.rec.MeteringSN, &x.rec.Value, &x.rec.BeginTime, &x.rec.EndTime,
			&x.rec.RecordTime, &x.rec.RelatePkgInstance, &x.hour)
		return x, err
	})
	if err != nil {
		return nil, fmt.Errorf("claim usage records: %w", err)
	}
	// RETURNING does not keep the subquery's order.
	sortRows(got, func(a, b row) int {
		if c := a.hour.Compare(b.hour); c != 0 {
			return c
		}
		if a.rec.InstanceID != b.rec.InstanceID {
			return cmpString(a.rec.InstanceID, b.rec.InstanceID)
		}
		return cmpString(a.rec.MeteringSN, b.rec.MeteringSN)
	})
	out := make([]usagedata.Record, len(got))
	for i, x := range got {
		out[i] = x.rec
	}
	return out, nil
}

// Release gives claimed records back unanswered (the push got no usable answer), so the next attempt sends them.
func (s *Store) Release(ctx context.Context, sns []string) error {
	_, err := s.Pool.Exec(ctx, `UPDATE usage_pushes SET lease_until = NULL WHERE metering_sn = ANY($1) AND status = 'pending'`, sns)
	if err != nil {
		return fmt.Errorf("release usage records: %w", err)
	}
	return nil
}

// Verdict is what happened to one pushed record.
type Verdict struct {
	MeteringSN string
	InstanceID string
	Outcome    Outcome
	Code       string
	Message    string
}

// Outcome of one record's push.
type Outcome int

const (
	Accepted  Outcome = iota // charged now
	Duplicate                // 005: charged by an earlier push of the same metering_sn
	Parked                   // the instance's push waits for a person; the record stays pending
	Refused                  // never chargeable; a person must look
)

// Outcomes counts verdicts.
type Outcomes struct {
	Accepted   int `json:"accepted"`
	Duplicates int `json:"duplicates"`
	Parked     int `json:"parked"`
	Refused    int `json:"refused"`
}

// Add counts one verdict.
func (o *Outcomes) Add(v Outcome) {
	switch v {
	case Accepted:
		o.Accepted++
	case Duplicate:
		o.Duplicates++
	case Parked:
		o.Parked++
	case Refused:
		o.Refused++
	}
}

// Apply records the verdicts of one push in one transaction: accepted and duplicate records are done, refused
// ones are closed with an alert each, and the instances of parked ones are parked with an alert (their records stay
// pending, unleased). The push itself is in ex, which goes to the outbound log in the same transaction.
func (s *Store) Apply(ctx context.Context, ex *usagedata.Exchange, verdicts []Verdict, worker string) error {
	return pgx.BeginFunc(ctx, s.Pool, func(tx pgx.Tx) error {
		if err := appendOutbound(ctx, tx, ex, nil, worker); err != nil {
			return err
		}
		var done, refusedSN, refusedCode, refusedMsg, parkSN, parkInst, parkCode, parkMsg, doneCode []string
		for _, v := range verdicts {
			switch v.Outcome {
			case Accepted, Duplicate:
				done = append(done, v.MeteringSN)
				doneCode = append(doneCode, v.Code)
			case Refused:
				refusedSN, refusedCode, refusedMsg = append(refusedSN, v.MeteringSN), append(refusedCode, v.Code), append(refusedMsg, v.Message)
			case Parked:
				parkSN, parkInst = append(parkSN, v.MeteringSN), append(parkInst, v.InstanceID)
				parkCode, parkMsg = append(parkCode, v.Code), append(parkMsg, v.Message)
			}
		}
		if _, err := tx.Exec(ctx, `
			UPDATE usage_pushes u SET status = 'accepted', code = d.code, message = '', pushed_at = now(), lease_until = NULL
			FROM unnest($1::text[], $2::text[]) AS d(sn, code) WHERE u.metering_sn = d.sn`, done, doneCode); err != nil {
			return fmt.Errorf("mark usage records charged: %w", err)
		}
		if _, err := tx.Exec(ctx, `
			UPDATE usage_pushes u SET status = 'refused', code = d.code, message = d.msg, pushed_at = now(), lease_until = NULL
			FROM unnest($1::text[], $2::text[], $3::text[]) AS d(sn, code, msg) WHERE u.metering_sn = d.sn`,
			refusedSN, refusedCode, refusedMsg); err != nil {
			return fmt.Errorf("mark usage records refused: %w", err)
		}
		if _, err := tx.Exec(ctx, `
			INSERT INTO instance_alerts (instance_id, alert_key, kind, raised_at, message, detail)
			SELECT u.instance_id, 'usage-refused:' || u.metering_sn, $4, now(),
				format('the marketplace refused usage record %s (%s, window %s, revision %s): %s %s; this usage is not charged',
					u.metering_sn, u.value, to_char(u.usage_hour AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:00 "UTC"'), u.revision, d.code, d.msg),
				jsonb_build_object('meteringSn', u.metering_sn, 'code', d.code, 'value', u.value, 'usageHour', u.usage_hour)
			FROM unnest($1::text[], $2::text[], $3::text[]) AS d(sn, code, msg) JOIN usage_pushes u ON u.metering_sn = d.sn
			ON CONFLICT DO NOTHING`, refusedSN, refusedCode, refusedMsg, AlertRefused); err != nil {
			return fmt.Errorf("alert refused usage records: %w", err)
		}
		if _, err := tx.Exec(ctx, `
			UPDATE usage_pushes u SET code = d.code, message = d.msg, lease_until = NULL
			FROM unnest($1::text[], $2::text[], $3::text[]) AS d(sn, code, msg) WHERE u.metering_sn = d.sn`,
			parkSN, parkCode, parkMsg); err != nil {
			return fmt.Errorf("mark usage records parked: %w", err)
		}
		if _, err := tx.Exec(ctx, `
			WITH p AS (
				SELECT DISTINCT ON (inst) inst, sn, code, msg
				FROM unnest($1::text[], $2::text[], $3::text[], $4::text[]) AS d(inst, sn, code, msg) ORDER BY inst, sn
			), parked AS (
				INSERT INTO usage_push_parked (instance_id, code, message, metering_sn)
				SELECT inst, code, msg, sn FROM p ON CONFLICT DO NOTHING
				RETURNING instance_id, code, message, metering_sn, parked_at
			)
			INSERT INTO instance_alerts (instance_id, alert_key, kind, raised_at, message, detail)
			SELECT instance_id, 'usage-push-parked:' || to_char(parked_at AT TIME ZONE 'UTC', 'YYYYMMDD"T"HH24MISS.US'), $5, parked_at,
				format('the marketplace refused the usage of this instance (%s %s, record %s): its usage push is parked until resumed',
					code, message, metering_sn),
				jsonb_build_object('meteringSn', metering_sn, 'code', code)
			FROM parked
			ON CONFLICT DO NOTHING`, parkInst, parkSN, parkCode, parkMsg, AlertParked); err != nil {
			return fmt.Errorf("park usage pushes: %w", err)
		}
		return nil
	})
}

// LogFailedPush keeps a push that got no usable answer in the outbound log.
func (s *Store) LogFailedPush(ctx context.Context, ex *usagedata.Exchange, cause error, worker string) error {
	return pgx.BeginFunc(ctx, s.Pool, func(tx pgx.Tx) error { return appendOutbound(ctx, tx, ex, cause, worker) })
}

// Resume un-parks an instance's push and resolves its parked alerts; its pending records go with the next push.
// It reports whether the push was parked.
func (s *Store) Resume(ctx context.Context, instanceID string) (bool, error) {
	var was bool
	err := pgx.BeginFunc(ctx, s.Pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM usage_push_parked WHERE instance_id = $1`, instanceID)
		if err != nil {
			return err
		}
		was = tag.RowsAffected() > 0
		_, err = tx.Exec(ctx, `UPDATE instance_alerts SET resolved_at = now()
			WHERE instance_id = $1 AND kind = $2 AND resolved_at IS NULL`, instanceID, AlertParked)
		return err
	})
	if err != nil {
		return false, fmt.Errorf("resume the usage push of %s: %w", instanceID, err)
	}
	return was, nil
}

// Totals compares an instance's usage as ingested with what was planned, charged (accepted) and refused, and says
// whether anything is still pending.
type Totals struct {
	Ingested decimal.Decimal `json:"ingested"`
	Planned  decimal.Decimal `json:"planned"`
	Pushed   decimal.Decimal `json:"pushed"`
	Refused  decimal.Decimal `json:"refused"`
	Pending  int             `json:"pending"`
	Parked   bool            `json:"parked"`
}

// InstanceTotals reads an instance's Totals.
func (s *Store) InstanceTotals(ctx context.Context, instanceID string) (Totals, error) {
	var t Totals
	err := s.Pool.QueryRow(ctx, `
		SELECT (SELECT coalesce(sum(value), 0) FROM usage_records WHERE instance_id = $1),
			coalesce(sum(value), 0),
			coalesce(sum(value) FILTER (WHERE status = 'accepted'), 0),
			coalesce(sum(value) FILTER (WHERE status = 'refused'), 0),
			count(*) FILTER (WHERE status = 'pending'),
			EXISTS (SELECT 1 FROM usage_push_parked WHERE instance_id = $1)
		FROM usage_pushes WHERE instance_id = $1`, instanceID).
		Scan(&t.Ingested, &t.Planned, &t.Pushed, &t.Refused, &t.Pending, &t.Parked)
	if err != nil {
		return t, fmt.Errorf("usage totals of %s: %w", instanceID, err)
	}
	return t, nil
}

// PendingCount is how many records wait for a push, parked instances' included.
func (s *Store) PendingCount(ctx context.Context, instanceID string) (int, error) {
	var n int
	err := s.Pool.QueryRow(ctx, `SELECT count(*) FROM usage_pushes WHERE status = 'pending' AND ($1 = '' OR instance_id = $1)`,
		instanceID).Scan(&n)
	return n, err
}

func appendOutbound(ctx context.Context, tx pgx.Tx, ex *usagedata.Exchange, cause error, worker string) error {
	if ex == nil {
		return nil
	}
	headers, err := json.Marshal(ex.Headers)
	if err != nil {
		return err
	}
	refusals := ex.Refusals
	if refusals == nil {
		refusals = []usagedata.Refusal{}
	}
	rj, err := json.Marshal(refusals)
	if err != nil {
		return err
	}
	ids, n := instancesOf(ex.RequestBody)
	detail := ""
	if cause != nil {
		detail = cause.Error()
	}
	resp := ex.ResponseBody
	if resp == nil {
		resp = []byte{}
	}
	_, err = tx.Exec(ctx, `
		INSERT INTO koogallery_outbound (sent_at, api, method, url, headers, request_body, record_count, instance_ids,
			http_status, response_body, result_code, result_msg, refusals, error_detail, failed, latency_us, worker)
		VALUES ($1, 'usage-data', 'POST', $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)`,
		ex.SentAt, ex.URL, headers, ex.RequestBody, n, ids, ex.HTTPStatus, resp, ex.Code, ex.Message, rj, detail,
		cause != nil, ex.Latency.Microseconds(), worker)
	if err != nil {
		return fmt.Errorf("append the usage push to the outbound log: %w", err)
	}
	return nil
}

// instancesOf lists the distinct instances and counts the records of a push body.
func instancesOf(body []byte) ([]string, int) {
	var req struct {
		UsageRecords []struct {
			InstanceID string `json:"instance_id"`
		} `json:"usage_records"`
	}
	if json.Unmarshal(body, &req) != nil {
		return []string{}, 0
	}
	seen := map[string]bool{}
	ids := []string{}
	for _, r := range req.UsageRecords {
		if !seen[r.InstanceID] {
			seen[r.InstanceID] = true
			ids = append(ids, r.InstanceID)
		}
	}
	return ids, len(req.UsageRecords)
}

// Parking is why an instance's usage push is parked.
type Parking struct {
	Code       string    `json:"code"`
	Message    string    `json:"message"`
	MeteringSN string    `json:"meteringSn"`
	ParkedAt   time.Time `json:"parkedAt"`
}

// Window is one hourly window of an instance's usage: what the seller's systems reported, and what was pushed
// for it by status.
type Window struct {
	Hour     time.Time       `json:"hour"`
	Ingested decimal.Decimal `json:"ingested"`
	Accepted decimal.Decimal `json:"accepted"`
	Pending  decimal.Decimal `json:"pending"`
	Refused  decimal.Decimal `json:"refused"`
}

// Usage is an instance's usage as the console shows it: the totals, why its push is parked, and its latest windows.
type Usage struct {
	Totals
	Parking *Parking `json:"parking,omitempty"`
	Windows []Window `json:"windows"`
}

// InstanceUsage reads an instance's Usage with its latest windows (at most windows of them), newest first.
func (s *Store) InstanceUsage(ctx context.Context, instanceID string, windows int) (Usage, error) {
	var u Usage
	var err error
	if u.Totals, err = s.InstanceTotals(ctx, instanceID); err != nil {
		return u, err
	}
	var p Parking
	err = s.Pool.QueryRow(ctx, `SELECT code, message, metering_sn, parked_at FROM usage_push_parked WHERE instance_id = $1`, instanceID).
		Scan(&p.Code, &p.Message, &p.MeteringSN, &p.ParkedAt)
	switch {
	case err == nil:
		p.ParkedAt = p.ParkedAt.UTC()
		u.Parking = &p
	case !errors.Is(err, pgx.ErrNoRows):
		return u, fmt.Errorf("usage push parking of %s: %w", instanceID, err)
	}
	rows, err := s.Pool.Query(ctx, `
		WITH hours AS (
			SELECT DISTINCT usage_hour FROM usage_records WHERE instance_id = $1
			UNION SELECT DISTINCT usage_hour FROM usage_pushes WHERE instance_id = $1
			ORDER BY usage_hour DESC LIMIT $2)
		SELECT h.usage_hour,
			(SELECT coalesce(sum(value), 0) FROM usage_records r WHERE r.instance_id = $1 AND r.usage_hour = h.usage_hour),
			coalesce(sum(p.value) FILTER (WHERE p.status = 'accepted'), 0),
			coalesce(sum(p.value) FILTER (WHERE p.status = 'pending'), 0),
			coalesce(sum(p.value) FILTER (WHERE p.status = 'refused'), 0)
		FROM hours h LEFT JOIN usage_pushes p ON p.instance_id = $1 AND p.usage_hour = h.usage_hour
		GROUP BY h.usage_hour ORDER BY h.usage_hour DESC`, instanceID, windows)
	if err != nil {
		return u, fmt.Errorf("usage windows of %s: %w", instanceID, err)
	}
	u.Windows, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (Window, error) {
		var w Window
		err := r.Scan(&w.Hour, &w.Ingested, &w.Accepted, &w.Pending, &w.Refused)
		w.Hour = w.Hour.UTC()
		return w, err
	})
	if err != nil {
		return u, fmt.Errorf("usage windows of %s: %w", instanceID, err)
	}
	return u, nil
}
