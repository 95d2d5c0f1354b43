package config

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"
)

func env(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestDefaults(t *testing.T) {
	c, err := FromEnv(env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.TemporalAddress != DefaultTemporalAddress || c.TaskQueue != DefaultTaskQueue ||
		c.ProductionPath != DefaultProductionPath || c.Deadline != 4*time.Second || c.SignatureSkew != time.Minute {
		t.Fatalf("defaults: %+v", c)
	}
}

func TestInvalidValuesAreNamed(t *testing.T) {
	_, err := FromEnv(env(map[string]string{EnvDeadline: "soon", EnvExpiryPolicy: "delete", EnvProductionPath: "x"}))
	if err == nil {
		t.Fatal("want error")
	}
	for _, name := range []string{EnvDeadline, EnvExpiryPolicy, EnvProductionPath} {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("error %q does not name %s", err, name)
		}
	}
}

func TestSecretsNeverPrint(t *testing.T) {
	c, err := FromEnv(env(map[string]string{
		EnvDatabaseURL: "postgres://u:hunter2@h/db", EnvAccessKey: "ak-hunter2", EnvMarketSK: "sk-hunter2",
		EnvConsoleTokens: "ops:tok-hunter2-0123456789",
	}))
	if err != nil {
		t.Fatal(err)
	}
	var sb strings.Builder
	slog.New(slog.NewJSONHandler(&sb, nil)).Info("config", "cfg", c, "key", c.AccessKey)
	j, _ := json.Marshal(c)
	for _, out := range []string{fmt.Sprintf("%v", c), fmt.Sprintf("%+v", c), sb.String(), string(j)} {
		if strings.Contains(out, "hunter2") {
			t.Fatalf("secret leaked: %s", out)
		}
	}
	if c.AccessKey.Reveal() != "ak-hunter2" {
		t.Fatal("Reveal must return the value")
	}
}

func TestConsoleTokens(t *testing.T) {
	c, _ := FromEnv(env(map[string]string{EnvConsoleTokens: "ops:0123456789abcdef, seller:fedcba9876543210"}))
	toks, err := c.ParseConsoleTokens()
	if err != nil || len(toks) != 2 || toks[0].Name != "ops" || toks[1].Token.Reveal() != "fedcba9876543210" {
		t.Fatalf("tokens %v err %v", toks, err)
	}
	c, _ = FromEnv(env(map[string]string{EnvConsoleTokens: "ops:short"}))
	if _, err := c.ParseConsoleTokens(); err == nil {
		t.Fatal("short token accepted")
	}
}

func TestScopedConsoleTokens(t *testing.T) {
	c, err := FromEnv(env(map[string]string{EnvConsoleTokens: "ops:0123456789abcdef, money:fedcba9876543210:read+finance, buyer:aaaaaaaaaaaaaaaa:customer"}))
	if err != nil {
		t.Fatal(err)
	}
	toks, err := c.ParseConsoleTokens()
	if err != nil || len(toks) != 3 {
		t.Fatalf("tokens %v err %v", toks, err)
	}
	for _, s := range AllScopes {
		if !toks[0].Has(s) {
			t.Errorf("a name:token entry must have every scope, lacks %s", s)
		}
	}
	if !toks[1].Has(ScopeRead) || !toks[1].Has(ScopeFinance) || toks[1].Has(ScopeOperate) || toks[1].Has(ScopeCustomer) {
		t.Errorf("money scopes %v", toks[1].Scopes)
	}
	if toks[1].Token.Reveal() != "fedcba9876543210" || !toks[2].Has(ScopeCustomer) || toks[2].Has(ScopeRead) {
		t.Errorf("buyer %+v", toks[2])
	}
	if !c.FourEyes {
		t.Error("four eyes must be on by default")
	}
	for in, want := range map[string]string{
		"ops:0123456789abcdef:admin":                `unknown scope "admin"`,
		"ops:0123456789abcdef:read+":                `unknown scope ""`,
		"ops:0123456789abcdef,ops:fedcba9876543210": `"ops" is given twice`,
		":0123456789abcdef":                         "empty name",
		"ops:0123:4567:89abcdef":                    "4 ':'-separated parts",
		"ops:short:read":                            "shorter than 16",
	} {
		c, _ := FromEnv(env(map[string]string{EnvConsoleTokens: in}))
		if _, err := c.ParseConsoleTokens(); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: err %v, want %q", in, err, want)
		}
	}
	c, err = FromEnv(env(map[string]string{EnvFourEyes: "false"}))
	if err != nil || c.FourEyes {
		t.Errorf("KOOFLOW_FOUR_EYES=false: %v %v", c.FourEyes, err)
	}
	if _, err := FromEnv(env(map[string]string{EnvFourEyes: "maybe"})); err == nil || !strings.Contains(err.Error(), EnvFourEyes) {
		t.Errorf("bad KOOFLOW_FOUR_EYES: %v", err)
	}
}

func TestRequireNamesMissing(t *testing.T) {
	c, _ := FromEnv(env(nil))
	err := c.Require(EnvDatabaseURL, EnvAccessKey)
	if err == nil || !strings.Contains(err.Error(), EnvDatabaseURL) || !strings.Contains(err.Error(), EnvAccessKey) {
		t.Fatalf("err = %v", err)
	}
}

func TestGatewayLimits(t *testing.T) {
	c, err := FromEnv(env(nil))
	if err != nil || c.UnverifiedPerMinute != 60 || c.TrustedProxies != nil {
		t.Fatalf("defaults: %d %v %v", c.UnverifiedPerMinute, c.TrustedProxies, err)
	}
	c, err = FromEnv(env(map[string]string{EnvUnverifiedRate: "0", EnvTrustedProxies: "10.0.0.0/8, 192.0.2.7"}))
	if err != nil || c.UnverifiedPerMinute != 0 || len(c.TrustedProxies) != 2 {
		t.Fatalf("set: %d %v %v", c.UnverifiedPerMinute, c.TrustedProxies, err)
	}
	for k, v := range map[string]string{EnvUnverifiedRate: "-1", EnvTrustedProxies: "proxy.example"} {
		if _, err := FromEnv(env(map[string]string{k: v})); err == nil || !strings.Contains(err.Error(), k) {
			t.Errorf("%s=%s: %v", k, v, err)
		}
	}
}

// TestRenewalsPerRun: a year of monthly renewals per run unless set; out of 1–120 is refused by name.
func TestRenewalsPerRun(t *testing.T) {
	c, err := FromEnv(env(nil))
	if err != nil || c.RenewalsPerRun != 12 {
		t.Fatalf("default %d (%v), want 12", c.RenewalsPerRun, err)
	}
	if c, err := FromEnv(env(map[string]string{EnvRenewalsPerRun: "3"})); err != nil || c.RenewalsPerRun != 3 {
		t.Fatalf("3 read as %d (%v)", c.RenewalsPerRun, err)
	}
	for _, v := range []string{"0", "121", "yearly"} {
		if _, err := FromEnv(env(map[string]string{EnvRenewalsPerRun: v})); err == nil || !strings.Contains(err.Error(), EnvRenewalsPerRun) {
			t.Errorf("%s=%q: error %v, want one naming it", EnvRenewalsPerRun, v, err)
		}
	}
}

func TestStickyCacheSize(t *testing.T) {
	c, err := FromEnv(env(nil))
	if err != nil || c.StickyCacheSize != DefaultStickyCacheSize {
		t.Fatalf("default: %d %v", c.StickyCacheSize, err)
	}
	c, err = FromEnv(env(map[string]string{EnvStickyCacheSize: "2500"}))
	if err != nil || c.StickyCacheSize != 2500 {
		t.Fatalf("set: %d %v", c.StickyCacheSize, err)
	}
	for _, v := range []string{"0", "-5", "many"} {
		if _, err := FromEnv(env(map[string]string{EnvStickyCacheSize: v})); err == nil || !strings.Contains(err.Error(), EnvStickyCacheSize) {
			t.Errorf("%s=%s: %v", EnvStickyCacheSize, v, err)
		}
	}
}
