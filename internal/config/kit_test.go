package config

import (
	"fmt"
	"strings"
	"testing"
)

func TestKitPaths(t *testing.T) {
	c, err := FromEnv(env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.Kit.Paths["tenantSync"] != "/koogallery/kit/tenantSync" || c.Kit.Paths["allOrgSync"] != "/koogallery/kit/allOrgSync" || len(c.Kit.Paths) != 5 {
		t.Fatalf("default paths %v", c.Kit.Paths)
	}
	c, err = FromEnv(env(map[string]string{EnvKitPath: "/produceAPI/v2/", EnvKitPaths: "authSync=/sync/users"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.Kit.Paths["tenantSync"] != "/produceAPI/v2/tenantSync" || c.Kit.Paths["authSync"] != "/sync/users" {
		t.Fatalf("configured paths %v", c.Kit.Paths)
	}
	for name, vars := range map[string]map[string]string{
		"relative base":  {EnvKitPath: "kit"},
		"unknown call":   {EnvKitPaths: "userSync=/x"},
		"relative path":  {EnvKitPaths: "authSync=x"},
		"two on one":     {EnvKitPaths: "authSync=/x,tenantSync=/x"},
		"on production":  {EnvKitPaths: "authSync=/koogallery/v2"},
		"key twice over": {EnvKitPrivateKey: "k", EnvKitPrivateKeyFile: "/f"},
	} {
		if _, err := FromEnv(env(vars)); err == nil {
			t.Errorf("%s: accepted", name)
		} else if !strings.Contains(err.Error(), "KOOGALLERY_KIT") && !strings.Contains(err.Error(), "served on") {
			t.Errorf("%s: %v does not say what to fix", name, err)
		}
	}
	c, _ = FromEnv(env(map[string]string{EnvKitPrivateKey: "-----BEGIN PRIVATE KEY-----"}))
	if s := fmt.Sprint(c.Kit); strings.Contains(s, "BEGIN") {
		t.Fatalf("the Kit key prints: %s", s)
	}
}

func TestSSOSettings(t *testing.T) {
	c, err := FromEnv(env(map[string]string{EnvSSOAppURL: "https://app.example/sso", EnvSSOKey: strings.Repeat("k", 32), EnvSSOTTL: "90s"}))
	if err != nil || c.Kit.SSOAppURL != "https://app.example/sso" || c.Kit.SSOTTL.Seconds() != 90 {
		t.Fatalf("%+v, %v", c.Kit, err)
	}
	for name, vars := range map[string]map[string]string{
		"key without URL": {EnvSSOKey: strings.Repeat("k", 32)},
		"short key":       {EnvSSOAppURL: "https://app.example", EnvSSOKey: "short"},
		"relative URL":    {EnvSSOAppURL: "/sso", EnvSSOKey: strings.Repeat("k", 32)},
		"long TTL":        {EnvSSOAppURL: "https://app.example", EnvSSOKey: strings.Repeat("k", 32), EnvSSOTTL: "2h"},
	} {
		if _, err := FromEnv(env(vars)); err == nil || !strings.Contains(err.Error(), "KOOFLOW_SSO") {
			t.Errorf("%s: %v", name, err)
		}
	}
}
