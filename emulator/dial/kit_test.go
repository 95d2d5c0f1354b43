package dial

import (
	"bytes"
	"context"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"strings"
	"testing"

	"github.com/kooflow/kooflow/emulator/deliver"
	"github.com/kooflow/kooflow/emulator/kit"
	"github.com/kooflow/kooflow/emulator/market"
	"github.com/kooflow/kooflow/internal/config"
	kitkey "github.com/kooflow/kooflow/internal/kit"
	"github.com/kooflow/kooflow/internal/testenv"
	"github.com/kooflow/kooflow/internal/teststack"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// TestDialKitCasesAgainstKooflow runs the dial test with its Kit cases against a real kooflow (router, worker,
// PostgreSQL, Temporal): every production-interface case and every Kit sync call (testFlag 1: tenant,
// application with an RSA-encrypted secret, users, organisation units, each repeated and deleted twice, a delete
// for an unknown instance, a forged x-sign) passes.
func TestDialKitCasesAgainstKooflow(t *testing.T) {
	const accessKey = "dial-kit-access-key-0123456789"
	kp, err := kitkey.GenerateKey(kitkey.MinKeyBits)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := base64.StdEncoding.DecodeString(kp.PublicBase64)
	pub, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		t.Fatal(err)
	}
	cfg, m, _ := teststack.WithMarket(t, teststack.Keys{AccessKey: accessKey, MarketAK: "DIALKITAK000000000", MarketSK: "dial-kit-market-sk-0123456789",
		ConsoleToken: "dial-kit-console-token"}, market.Options{}, map[string]string{config.EnvKitPrivateKey: kp.PrivatePEM})
	cfg.TaskQueue = testenv.TaskQueue(t)
	st := teststack.Start(t, cfg, teststack.Options{})
	r := &Runner{Client: deliver.NewClient(st.URL+config.DefaultProductionPath, accessKey), Market: market.Local{M: m},
		Kit: &kit.Syncer{BaseURL: st.URL + config.DefaultKitPath, AccessKey: accessKey, SellerKey: pub.(*rsa.PublicKey), Attempts: 20}}
	rep := r.Run(context.Background())
	var out bytes.Buffer
	rep.Print(&out)
	if !rep.Passed() {
		t.Fatalf("kooflow failed the dial test:\n%s", out.String())
	}
	for _, call := range []string{"tenantSync", "applicationSync", "authSync", "singleOrgSync", "allOrgSync"} {
		if !strings.Contains(out.String(), call) {
			t.Errorf("no case for %s:\n%s", call, out.String())
		}
	}
	for _, name := range []string{"a forged x-sign is refused", "tenantSync delete for an instance that does not exist", "authSync add again"} {
		if !strings.Contains(out.String(), name) {
			t.Errorf("no case %q", name)
		}
	}
	t.Log("\n" + out.String())
}
