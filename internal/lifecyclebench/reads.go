package lifecyclebench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/kooflow/kooflow/internal/koogallery"
)

// ReadsOptions configure the read benchmark: queryInstance of many ids and the console's instance list against
// a read model holding Rows instances.
type ReadsOptions struct {
	URL, AccessKey string // production interface
	ConsoleURL     string // e.g. http://127.0.0.1:8080/console/v1
	ConsoleToken   string
	Pool           *pgxpool.Pool // the read model the target serves from
	Rows           int           // instance rows the read model must hold (synthetic rows are added up to it)
	IDs            int           // ids per queryInstance (at most 100)
	Calls          int           // measured calls of each kind
}

// ReadsReport holds the read benchmark's figures.
type ReadsReport struct {
	Rows, Added     int
	Fill            time.Duration
	Query, List     []time.Duration // sorted
	QueryCodes      map[string]int
	ListStatus      map[int]int
	IDsPerQuery     int
	InfoPerQuery    int // instances the last answer reported
	ListPageEntries int
}

// Write prints the report.
func (r *ReadsReport) Write(w io.Writer) {
	fmt.Fprintf(w, "read model:      %d instance rows (%d synthetic rows added in %s)\n", r.Rows, r.Added, r.Fill.Round(time.Millisecond))
	fmt.Fprintf(w, "queryInstance:   %d ids per call, %d calls: p50 %s   p99 %s   max %s (codes %v, %d instances in the last answer)\n",
		r.IDsPerQuery, len(r.Query), ms(Quantile(r.Query, 0.5)), ms(Quantile(r.Query, 0.99)), ms(Quantile(r.Query, 1)), r.QueryCodes, r.InfoPerQuery)
	fmt.Fprintf(w, "console list:    %d calls: p50 %s   p99 %s   max %s (HTTP %v)\n", len(r.List),
		ms(Quantile(r.List, 0.5)), ms(Quantile(r.List, 0.99)), ms(Quantile(r.List, 1)), r.ListStatus)
}

// fillSQL adds synthetic active instances numbered from $1 to $2. Their ids are UUIDs derived from the number,
// their orders are BENCHROWS…, and no workflow exists for them: they stand for the fleet in reads only.
const fillSQL = `
INSERT INTO instances (instance_id, workflow_id, order_id, order_line_id, product_id, sku_code, quantity, lifecycle,
                       supervision, expire_time)
SELECT md5('kooflow-bench-instance-' || g)::uuid::text, 'instance-' || md5('kooflow-bench-instance-' || g)::uuid::text,
       'BENCHROWS' || lpad(g::text, 9, '0'), 'BENCHROWS' || lpad(g::text, 9, '0') || '-000001',
       'OFFI-KOOFLOW-CRM-MONTHLY', 'crm-basic-month', 1, 'ACTIVE', 'NOT_INVOLVED', now() + interval '30 days'
FROM generate_series($1::bigint, $2::bigint) g
ON CONFLICT (instance_id) DO NOTHING`

// RunReads fills the read model up to Rows, then times queryInstance calls of IDs random existing ids and
// console instance list pages.
func RunReads(ctx context.Context, o ReadsOptions) (*ReadsReport, error) {
	if o.URL == "" || o.AccessKey == "" || o.Pool == nil {
		return nil, errors.New("lifecyclebench: the URL, the access key and the database are required")
	}
	o.IDs = min(max(o.IDs, 1), koogallery.MaxQueryInstances)
	o.Calls = max(o.Calls, 1)
	rep := &ReadsReport{QueryCodes: map[string]int{}, ListStatus: map[int]int{}, IDsPerQuery: o.IDs}
	var have int
	if err := o.Pool.QueryRow(ctx, `SELECT count(*) FROM instances`).Scan(&have); err != nil {
		return nil, fmt.Errorf("count instances: %w", err)
	}
	start := time.Now()
	if have < o.Rows {
		var from int
		if err := o.Pool.QueryRow(ctx, `SELECT count(*) FROM instances WHERE order_id LIKE 'BENCHROWS%'`).Scan(&from); err != nil {
			return nil, err
		}
		const chunk = 100_000
		for lo := from + 1; lo <= from+o.Rows-have; lo += chunk {
			hi := min(lo+chunk-1, from+o.Rows-have)
			tag, err := o.Pool.Exec(ctx, fillSQL, lo, hi)
			if err != nil {
				return nil, fmt.Errorf("add synthetic instances: %w", err)
			}
			rep.Added += int(tag.RowsAffected())
		}
		if _, err := o.Pool.Exec(ctx, `ANALYZE instances`); err != nil {
			return nil, err
		}
	}
	rep.Fill = time.Since(start)
	if err := o.Pool.QueryRow(ctx, `SELECT count(*) FROM instances`).Scan(&rep.Rows); err != nil {
		return nil, err
	}
	// A sample of ids to ask for, spread over the table.
	pct := min(100, 20000*100/float64(max(rep.Rows, 1)))
	rows, err := o.Pool.Query(ctx, `SELECT instance_id FROM instances TABLESAMPLE BERNOULLI ($1) LIMIT 20000`, pct)
	if err != nil {
		return nil, err
	}
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return nil, err
		}
		ids = append(ids, id)
	}
	rows.Close()
	if len(ids) < o.IDs {
		return nil, fmt.Errorf("only %d instance ids sampled, need %d", len(ids), o.IDs)
	}
	g := &gateway{url: o.URL, key: o.AccessKey, http: &http.Client{}, calls: map[string]int{}}
	for range o.Calls {
		rand.Shuffle(len(ids), func(i, j int) { ids[i], ids[j] = ids[j], ids[i] })
		b := body(map[string]string{"activity": koogallery.ActivityQueryInstance, "instanceId": strings.Join(ids[:o.IDs], ",")})
		t0 := time.Now()
		r, err := g.call(ctx, koogallery.ActivityQueryInstance, b)
		if err != nil {
			return nil, err
		}
		rep.Query = append(rep.Query, time.Since(t0))
		rep.QueryCodes[r.ResultCode]++
		rep.InfoPerQuery = len(r.Info)
	}
	if o.ConsoleURL != "" {
		hc := &http.Client{Timeout: 10 * time.Second}
		for range o.Calls {
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, o.ConsoleURL+"/instances?limit=50", nil)
			if err != nil {
				return nil, err
			}
			req.Header.Set("Authorization", "Bearer "+o.ConsoleToken)
			t0 := time.Now()
			resp, err := hc.Do(req)
			if err != nil {
				return nil, fmt.Errorf("console list: %w", err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			rep.List = append(rep.List, time.Since(t0))
			rep.ListStatus[resp.StatusCode]++
		}
	}
	sort.Slice(rep.Query, func(i, j int) bool { return rep.Query[i] < rep.Query[j] })
	sort.Slice(rep.List, func(i, j int) bool { return rep.List[i] < rep.List[j] })
	return rep, nil
}
