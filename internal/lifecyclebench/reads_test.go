package lifecyclebench

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/kooflow/kooflow/internal/koogallery"
	"github.com/kooflow/kooflow/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

const readsKey = "reads-test-key"

// TestRunReadsFillsTheReadModelAndTimesBothReads runs the read benchmark small against a real PostgreSQL and a
// target that verifies each call's signature and answers for the ids it was asked.
func TestRunReadsFillsTheReadModelAndTimesBothReads(t *testing.T) {
	if testing.Short() {
		t.Skip("needs PostgreSQL")
	}
	pool := testenv.Pool(t)
	v := koogallery.Verifier{AccessKey: readsKey, Window: time.Minute}
	var listed int
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/console/v1/instances") {
			if r.Header.Get("Authorization") != "Bearer tok" {
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
			listed++
			_, _ = w.Write([]byte(`{"instances":[]}`))
			return
		}
		raw, _ := io.ReadAll(r.Body)
		b, err := koogallery.ParseBody(raw)
		resp := koogallery.Response{ResultCode: koogallery.ResultAuthFailed}
		if err == nil {
			if _, err := v.Verify(r.URL.RawQuery, b); err == nil {
				req, _ := b.Request()
				resp.ResultCode = koogallery.ResultSuccess
				for _, id := range req.InstanceIDs {
					resp.Info = append(resp.Info, koogallery.InstanceInfo{InstanceID: id})
				}
			}
		}
		out := koogallery.Encode(resp)
		w.Header().Set(koogallery.BodySignHeaderName, koogallery.BodySignHeader(readsKey, out))
		_, _ = w.Write(out)
	}))
	defer srv.Close()
	rep, err := RunReads(context.Background(), ReadsOptions{URL: srv.URL + "/koogallery/v2", AccessKey: readsKey,
		ConsoleURL: srv.URL + "/console/v1", ConsoleToken: "tok", Pool: pool, Rows: 3000, IDs: 100, Calls: 5})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Rows != 3000 || rep.Added != 3000 || len(rep.Query) != 5 || rep.QueryCodes["000000"] != 5 ||
		rep.InfoPerQuery != 100 || len(rep.List) != 5 || rep.ListStatus[200] != 5 || listed != 5 {
		t.Fatalf("report %+v", rep)
	}
	// A second run finds the rows there and adds none.
	rep, err = RunReads(context.Background(), ReadsOptions{URL: srv.URL + "/koogallery/v2", AccessKey: readsKey,
		Pool: pool, Rows: 3000, IDs: 10, Calls: 1})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Added != 0 || rep.Rows != 3000 {
		t.Fatalf("second run added %d rows (now %d)", rep.Added, rep.Rows)
	}
}
