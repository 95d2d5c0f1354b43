package console_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kooflow/kooflow/api/console"
	"github.com/kooflow/kooflow/api/gateway"
	"github.com/kooflow/kooflow/internal/koogallery"
	"github.com/kooflow/kooflow/internal/testenv"
)

// TestNoPasswordAtRest buys instances through the real production interface and worker, reads their passwords
// as the marketplace does (queryInstance), and then searches every text, jsonb, array and bytea column of every
// table for each password, raw, Base64 or hex: appInfo is sealed, and the message log keeps its answers
// redacted, with the SHA-256 of the bytes that were sent.
func TestNoPasswordAtRest(t *testing.T) {
	s := newStack(t, nil)
	var passwords []string
	var ids []string
	for i := range 3 {
		orderID := testenv.Unique("SEC" + strconv.Itoa(i))
		line := s.order(orderID, "NEW", monthly, "crm-basic-month", 1, "100.00", time.Now().UTC().AddDate(0, 1, 0))
		id := s.newInstance(orderID, line)
		s.waitFor(id, "provisioning", func(d console.InstanceDetail) bool { return d.Lifecycle == "ACTIVE" })
		q := s.mp(map[string]any{"activity": "queryInstance", "instanceId": id})
		if q.ResultCode != koogallery.ResultSuccess || len(q.Info) != 1 || q.Info[0].AppInfo == nil || len(q.Info[0].AppInfo.Password) < 8 {
			t.Fatalf("queryInstance %+v", q)
		}
		passwords = append(passwords, q.Info[0].AppInfo.Password)
		ids = append(ids, id)
	}
	if passwords[0] == passwords[1] {
		t.Fatal("the built-in provisioner gave two instances the same password")
	}

	ctx := context.Background()
	rows, err := s.pool.Query(ctx, `SELECT table_name, column_name, data_type FROM information_schema.columns
		WHERE table_schema = 'public' AND data_type IN ('text', 'character varying', 'jsonb', 'json', 'bytea', 'ARRAY')
		ORDER BY table_name, column_name`)
	if err != nil {
		t.Fatal(err)
	}
	type col struct{ table, column, typ string }
	var cols []col
	for rows.Next() {
		var c col
		if err := rows.Scan(&c.table, &c.column, &c.typ); err != nil {
			t.Fatal(err)
		}
		cols = append(cols, c)
	}
	rows.Close()
	if len(cols) < 20 {
		t.Fatalf("only %d columns to search", len(cols))
	}
	for _, pw := range passwords {
		b64 := base64.StdEncoding.EncodeToString([]byte(pw))
		needles := []string{pw, b64, hex.EncodeToString([]byte(pw)), hex.EncodeToString([]byte(b64))}
		for _, c := range cols {
			var n int
			q := `SELECT count(*) FROM "` + c.table + `" WHERE strpos(lower("` + c.column + `"::text), lower($1)) > 0 OR
				strpos(lower("` + c.column + `"::text), lower($2)) > 0 OR strpos(lower("` + c.column + `"::text), lower($3)) > 0 OR
				strpos(lower("` + c.column + `"::text), lower($4)) > 0`
			if err := s.pool.QueryRow(ctx, q, needles[0], needles[1], needles[2], needles[3]).Scan(&n); err != nil {
				t.Fatalf("%s.%s: %v", c.table, c.column, err)
			}
			if n > 0 {
				t.Errorf("a password is stored in %s.%s (%d rows)", c.table, c.column, n)
			}
		}
	}
	tables := map[string]bool{}
	for _, c := range cols {
		tables[c.table] = true
	}
	t.Logf("searched %d columns of %d tables for %d passwords in 4 encodings", len(cols), len(tables), len(passwords))
	// The search is not vacuous: the sealed appInfo is there, under the configured key.
	var sealed int
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM instances WHERE app_info_sealed IS NOT NULL AND app_info_key = 'test'
		AND app_info ? 'userName' AND NOT app_info ? 'password'`).Scan(&sealed); err != nil || sealed != 3 {
		t.Fatalf("sealed appInfo rows %d (%v)", sealed, err)
	}

	// The console's message view shows the answer redacted, with the hash of what was sent.
	var page gateway.MessagePage
	if code, p := s.do(http.MethodGet, "/koogallery/messages?activity=queryInstance&instanceId="+ids[0], nil, &page); code != http.StatusOK || len(page.Items) != 1 {
		t.Fatalf("messages: %d %s %+v", code, p.Detail, page)
	}
	var m gateway.MessageDetail
	if code, p := s.do(http.MethodGet, "/koogallery/messages/"+strconv.FormatInt(page.Items[0].ID, 10), nil, &m); code != http.StatusOK {
		t.Fatalf("message: %d %s", code, p.Detail)
	}
	if m.ResponseBody == nil || !strings.Contains(*m.ResponseBody, `"password":"[redacted]"`) || strings.Contains(*m.ResponseBody, passwords[0]) ||
		!strings.Contains(*m.ResponseBody, `"userName"`) || len(m.ResponseSHA256) != 64 {
		t.Fatalf("logged answer %v sha %q", m.ResponseBody, m.ResponseSHA256)
	}
	// The hash is of the real answer: the redacted copy with the password put back hashes to it.
	real := strings.Replace(*m.ResponseBody, `"password":"[redacted]"`, `"password":"`+passwords[0]+`"`, 1)
	if sum := sha256.Sum256([]byte(real)); hex.EncodeToString(sum[:]) != m.ResponseSHA256 {
		t.Fatalf("responseSha256 %s is not the hash of the answer sent", m.ResponseSHA256)
	}
}
