package kit_test

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kooflow/kooflow/internal/config"
	kitcall "github.com/kooflow/kooflow/internal/kit"
)

// TestUnsignedKitFloodCannotFillTheDatabase sends 3,000 unsigned 60 KiB tenantSync calls with the per-source
// limit off (the worst case: every call from its own address) and measures what the database grew by: each call
// is kept as metadata and its first 1 KiB, like the production interface's.
func TestUnsignedKitFloodCannotFillTheDatabase(t *testing.T) {
	if testing.Short() {
		t.Skip("needs PostgreSQL and Temporal")
	}
	e := startWith(t, map[string]string{config.EnvUnverifiedRate: "0"})
	ctx := context.Background()
	size := func() int64 {
		var n int64
		if err := e.store.Pool.QueryRow(ctx, `SELECT pg_database_size(current_database())`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	pad := make([]byte, 60<<10)
	if _, err := rand.Read(pad); err != nil {
		t.Fatal(err)
	}
	head := `{"instanceId":"FLOOD","tenantId":"t","flag":1,"pad":"`
	body := head + base64.StdEncoding.EncodeToString(pad)[:60<<10-len(head)-2] + `"}`
	url := e.url + config.DefaultKitPath + "/" + kitcall.KindTenant

	before := size()
	start := time.Now()
	var wg sync.WaitGroup
	next := make(chan int)
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
	for range 16 {
		wg.Go(func() {
			for range next {
				req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
				req.Header.Set("x-sign", "00")
				req.Header.Set("x-timestamp", "1")
				req.Header.Set("x-nonce", "x")
				resp, err := hc.Do(req)
				if err != nil {
					t.Error(err)
					return
				}
				resp.Body.Close()
			}
		})
	}
	for i := range 3000 {
		next <- i
	}
	close(next)
	wg.Wait()
	grew := size() - before
	t.Logf("3000 unsigned 60 KiB Kit calls in %s: database grew %.2f MiB (%d → %d bytes)",
		time.Since(start).Round(time.Millisecond), float64(grew)/(1<<20), before, before+grew)
	if grew > 16<<20 {
		t.Errorf("the database grew %d bytes, over 16 MiB", grew)
	}
	var rows, whole, bodySize, kept int
	var sum []byte
	if err := e.store.Pool.QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE NOT body_truncated), max(body_size),
		max(length(raw_body)), (array_agg(body_sha256))[1]
		FROM koogallery_messages WHERE path LIKE '%/tenantSync' AND verification <> 'ok'`).Scan(&rows, &whole, &bodySize, &kept, &sum); err != nil {
		t.Fatal(err)
	}
	want := sha256.Sum256([]byte(body))
	if rows != 3000 || whole != 0 || bodySize != len(body) || kept != 1024 || string(sum) != string(want[:]) {
		t.Fatalf("unverified rows %d (whole %d), body_size %d, kept %d, sha %x", rows, whole, bodySize, kept, sum)
	}
}
