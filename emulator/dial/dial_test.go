package dial

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/kooflow/kooflow/emulator/deliver"
	"github.com/kooflow/kooflow/emulator/internal/fakeseller"
	"github.com/kooflow/kooflow/emulator/market"
	"github.com/kooflow/kooflow/emulator/sign"
)

const key = "dial-test-access-key"

func TestDialPassesACorrectSeller(t *testing.T) {
	m, _ := market.New(market.Options{AK: "AK", SK: "SK"})
	srv := httptest.NewServer(fakeseller.New(key, m))
	defer srv.Close()
	rep := (&Runner{Client: deliver.NewClient(srv.URL, key), Market: market.Local{M: m}}).Run(context.Background())
	var out bytes.Buffer
	rep.Print(&out)
	if !rep.Passed() || len(rep.Cases) < 20 {
		t.Fatalf("a correct seller failed the dial test:\n%s", out.String())
	}
	for _, act := range []string{deliver.NewInstance, deliver.QueryInstance, deliver.RefreshInstance, deliver.UpdateInstanceStatus,
		deliver.ReleaseInstance, deliver.UpgradeInstance, deliver.ChangeInstanceCheck} {
		if !strings.Contains(out.String(), act) {
			t.Errorf("no case for %s", act)
		}
	}
}

// A seller that signs its answers with the wrong key, or accepts anything, must fail.
func TestDialFailsBrokenSellers(t *testing.T) {
	m, _ := market.New(market.Options{AK: "AK", SK: "SK"})
	good := fakeseller.New(key, m)
	badSign := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := httptest.NewRecorder()
		good.ServeHTTP(rec, r)
		w.Header().Set("Body-Sign", sign.BodySignHeader("another-key", rec.Body.Bytes()))
		_, _ = w.Write(rec.Body.Bytes())
	})
	yesMan := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b := []byte(`{"resultCode":"000000","resultMsg":"ok","instanceId":"i-1","info":[{"instanceId":"i-1","appInfo":{"frontEndUrl":"https://x"}}]}`)
		w.Header().Set("Body-Sign", sign.BodySignHeader(key, b))
		_, _ = w.Write(b)
	})
	for name, h := range map[string]http.Handler{"bad Body-Sign": badSign, "accepts everything": yesMan} {
		srv := httptest.NewServer(h)
		rep := (&Runner{Client: deliver.NewClient(srv.URL, key), Market: market.Local{M: m}}).Run(context.Background())
		srv.Close()
		if rep.Passed() {
			var out bytes.Buffer
			rep.Print(&out)
			t.Errorf("%s passed the dial test:\n%s", name, out.String())
		}
	}
}
