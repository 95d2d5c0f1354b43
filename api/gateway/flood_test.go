package gateway_test

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kooflow/kooflow/internal/config"
	"github.com/kooflow/kooflow/internal/koogallery"
)

// floodBody is a newInstance body of size bytes padded with random Base64, which PostgreSQL cannot compress
// (a repeated character would be stored compressed and hide what a real flood costs).
func floodBody(t *testing.T, size int) string {
	t.Helper()
	raw := make([]byte, size)
	if _, err := rand.Read(raw); err != nil {
		t.Fatal(err)
	}
	head := `{"activity":"newInstance","orderId":"FLOOD","orderLineId":"FLOOD-1","pad":"`
	return head + base64.StdEncoding.EncodeToString(raw)[:size-len(head)-2] + `"}`
}

// flood sends n unsigned POSTs of body from clients goroutines and returns when all are answered.
func (e *env) flood(n int, body string, clients int) {
	e.t.Helper()
	var wg sync.WaitGroup
	next := make(chan int)
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: clients}}
	for range clients {
		wg.Go(func() {
			for range next {
				resp, err := hc.Post(e.url+"/koogallery/v2?signature=00&timestamp=1&nonce=x", "application/json", strings.NewReader(body))
				if err != nil {
					e.t.Error(err)
					return
				}
				resp.Body.Close()
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
}

func (e *env) dbSize() int64 {
	e.t.Helper()
	var n int64
	if err := e.pool.QueryRow(context.Background(), `SELECT pg_database_size(current_database())`).Scan(&n); err != nil {
		e.t.Fatal(err)
	}
	return n
}

// TestUnsignedFloodCannotFillTheDatabase sends 3,000 unsigned 60 KiB calls with the per-source limit off (as if
// each came from its own address, the worst case), and measures what the database grew by: each is kept as
// metadata and its first 1 KiB. Meanwhile signed calls keep answering within a second.
func TestUnsignedFloodCannotFillTheDatabase(t *testing.T) {
	e := newEnvWith(t, true, 0, func(c *config.Config) { c.UnverifiedPerMinute = 0 })
	e.call(`{"activity":"queryInstance","instanceId":"warm-up"}`)
	before := e.dbSize()

	done := make(chan struct{})
	var latencies []time.Duration
	go func() {
		defer close(done)
		for {
			start := time.Now()
			e.call(`{"activity":"queryInstance","instanceId":"signed-during-flood"}`).want(t, koogallery.ResultNotFound)
			latencies = append(latencies, time.Since(start))
			if len(latencies) >= 20 {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	}()
	body := floodBody(t, 60<<10)
	start := time.Now()
	e.flood(3000, body, 16)
	took := time.Since(start)
	<-done
	grew := e.dbSize() - before
	slices.Sort(latencies)
	t.Logf("3000 unsigned 60 KiB calls in %s: database grew %.2f MiB (%d → %d bytes); signed calls meanwhile: %d, p50 %s, max %s",
		took.Round(time.Millisecond), float64(grew)/(1<<20), before, before+grew, len(latencies),
		latencies[len(latencies)/2].Round(time.Millisecond), latencies[len(latencies)-1].Round(time.Millisecond))
	if grew > 16<<20 {
		t.Errorf("the database grew %d bytes, over 16 MiB", grew)
	}
	if max := latencies[len(latencies)-1]; max > time.Second {
		t.Errorf("a signed call took %s during the flood", max)
	}

	// Each unverified call is kept as metadata: size, hash, the first 1 KiB, no headers.
	var rows, whole int
	var size, kept, headers int
	var sum []byte
	err := e.pool.QueryRow(context.Background(), `
		SELECT count(*), count(*) FILTER (WHERE NOT body_truncated), max(body_size), max(length(raw_body)),
			max(jsonb_array_length(jsonb_path_query_array(headers, '$.*'))), (array_agg(body_sha256))[1]
		FROM koogallery_messages WHERE verification <> 'ok'`).Scan(&rows, &whole, &size, &kept, &headers, &sum)
	if err != nil {
		t.Fatal(err)
	}
	want := sha256.Sum256([]byte(body))
	if rows != 3000 || whole != 0 || size != len(body) || kept != 1024 || headers != 0 || string(sum) != string(want[:]) {
		t.Fatalf("unverified rows %d (whole %d), body_size %d, kept %d, headers %d, sha %x", rows, whole, size, kept, headers, sum)
	}
	// Signed calls are kept whole, headers included.
	var signedHeaders int
	if err := e.pool.QueryRow(context.Background(), `SELECT min(jsonb_array_length(jsonb_path_query_array(headers, '$.*')))
		FROM koogallery_messages WHERE verification = 'ok'`).Scan(&signedHeaders); err != nil || signedHeaders == 0 {
		t.Fatalf("signed calls' headers: %d %v", signedHeaders, err)
	}
}

// TestUnverifiedCallsAreRateLimitedPerSource: with the default budget (60 a minute per source) the same flood from
// one address leaves about 60 rows; the rest are answered but not recorded, and a signed call from the same
// source is still recorded.
func TestUnverifiedCallsAreRateLimitedPerSource(t *testing.T) {
	e := newEnv(t, true, 0)
	if e.cfg.UnverifiedPerMinute != 60 {
		t.Fatalf("default budget %d", e.cfg.UnverifiedPerMinute)
	}
	e.call(`{"activity":"queryInstance","instanceId":"warm-up"}`)
	before := e.dbSize()
	start := time.Now()
	e.flood(3000, floodBody(t, 60<<10), 16)
	took := time.Since(start)
	e.call(`{"activity":"queryInstance","instanceId":"after-flood"}`).want(t, koogallery.ResultNotFound)
	grew := e.dbSize() - before
	var unverified, signed int
	if err := e.pool.QueryRow(context.Background(), `SELECT count(*) FILTER (WHERE verification <> 'ok'),
		count(*) FILTER (WHERE verification = 'ok') FROM koogallery_messages`).Scan(&unverified, &signed); err != nil {
		t.Fatal(err)
	}
	t.Logf("3000 unsigned 60 KiB calls from one address in %s: %d recorded, database grew %.2f MiB", took.Round(time.Millisecond),
		unverified, float64(grew)/(1<<20))
	// The burst, plus one a second of refill while the flood ran.
	if maxRows := 60 + int(took.Seconds()) + 1; unverified < 60 || unverified > maxRows || signed != 2 {
		t.Fatalf("recorded %d unverified (want 60..%d) and %d signed", unverified, maxRows, signed)
	}
}

// TestOversizedBodyRefusedUnread: a Content-Length over the limit is answered 000002 without reading the body.
func TestOversizedBodyRefusedUnread(t *testing.T) {
	e := newEnv(t, false, 0)
	r := e.send("signature=00&timestamp=1&nonce=x", strings.Repeat(" ", koogallery.MaxBodyBytes+1))
	r.want(t, koogallery.ResultInvalidParams)
	var size, kept int
	if err := e.pool.QueryRow(context.Background(), `SELECT body_size, length(raw_body) FROM koogallery_messages`).Scan(&size, &kept); err != nil {
		t.Fatal(err)
	}
	if size != koogallery.MaxBodyBytes+1 || kept != 0 {
		t.Fatalf("body_size %d, kept %d", size, kept)
	}
}
