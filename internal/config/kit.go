package config

import (
	"fmt"
	"net/url"
	"strings"
	"time"
)

// Environment of the joint-operation Kit interfaces (docs/koogallery.md, "Kit interfaces").
const (
	EnvKitPath           = "KOOGALLERY_KIT_PATH"
	EnvKitPaths          = "KOOGALLERY_KIT_PATHS"
	EnvKitPrivateKey     = "KOOGALLERY_KIT_PRIVATE_KEY"
	EnvKitPrivateKeyFile = "KOOGALLERY_KIT_PRIVATE_KEY_FILE"
	EnvSSOAppURL         = "KOOFLOW_SSO_APP_URL"
	EnvSSOKey            = "KOOFLOW_SSO_KEY"
	EnvSSOAuthURL        = "KOOFLOW_SSO_AUTH_URL"
	EnvSSOTTL            = "KOOFLOW_SSO_TTL"

	DefaultKitPath = "/koogallery/kit"
)

// KitCalls are the Kit endpoints' names, the last segment of each default path.
var KitCalls = []string{"tenantSync", "applicationSync", "authSync", "singleOrgSync", "allOrgSync"}

// KitConfig configures the Kit endpoints.
type KitConfig struct {
	// Paths maps each call of KitCalls to the path it is served on: <KOOGALLERY_KIT_PATH>/<call> unless
	// KOOGALLERY_KIT_PATHS names another ("tenantSync=/produceAPI/v2/tenantSync,…").
	Paths map[string]string
	// PrivateKey is the seller's RSA key the marketplace encrypts client secrets for (PEM or Base64 PKCS#8), from
	// KOOGALLERY_KIT_PRIVATE_KEY; PrivateKeyFile names a file holding it instead.
	PrivateKey     Secret
	PrivateKeyFile string

	// Unified login (docs/koogallery.md, "Unified login"). SSOAppURL is the seller's application the verified user
	// is handed to, SSOKey the HS256 key (≥ 32 bytes) that signs the assertion, SSOAuthURL a fixed auth-centre
	// base URL (empty: the tenant's domainName), SSOTTL the assertion's lifetime.
	SSOAppURL  string
	SSOKey     Secret
	SSOAuthURL string
	SSOTTL     time.Duration
}

func kitFromEnv(get func(name, def string) string, productionPath string, errs *[]string) KitConfig {
	base := strings.TrimRight(get(EnvKitPath, DefaultKitPath), "/")
	if !strings.HasPrefix(base, "/") {
		*errs = append(*errs, fmt.Sprintf("%s=%q must start with /", EnvKitPath, base))
	}
	k := KitConfig{
		Paths:          make(map[string]string, len(KitCalls)),
		PrivateKey:     Secret(get(EnvKitPrivateKey, "")),
		PrivateKeyFile: get(EnvKitPrivateKeyFile, ""),
	}
	for _, c := range KitCalls {
		k.Paths[c] = base + "/" + c
	}
	if v := get(EnvKitPaths, ""); v != "" {
		for _, pair := range strings.Split(v, ",") {
			name, path, ok := strings.Cut(strings.TrimSpace(pair), "=")
			if _, known := k.Paths[name]; !ok || !known || !strings.HasPrefix(path, "/") {
				*errs = append(*errs, fmt.Sprintf("%s: %q must be call=/path with call one of %s", EnvKitPaths, pair, strings.Join(KitCalls, ", ")))
				continue
			}
			k.Paths[name] = path
		}
	}
	seen := map[string]string{productionPath: "the production interface"}
	for _, c := range KitCalls {
		if other, dup := seen[k.Paths[c]]; dup {
			*errs = append(*errs, fmt.Sprintf("%s and %s are both served on %s", other, c, k.Paths[c]))
		}
		seen[k.Paths[c]] = c
	}
	k.SSOAppURL, k.SSOKey, k.SSOAuthURL = get(EnvSSOAppURL, ""), Secret(get(EnvSSOKey, "")), strings.TrimRight(get(EnvSSOAuthURL, ""), "/")
	k.SSOTTL = 2 * time.Minute
	if v := get(EnvSSOTTL, ""); v != "" {
		if d, err := time.ParseDuration(v); err != nil || d <= 0 || d > time.Hour {
			*errs = append(*errs, fmt.Sprintf("%s=%q must be a duration from 1s to 1h", EnvSSOTTL, v))
		} else {
			k.SSOTTL = d
		}
	}
	for _, u := range []struct{ name, val string }{{EnvSSOAppURL, k.SSOAppURL}, {EnvSSOAuthURL, k.SSOAuthURL}} {
		if u.val == "" {
			continue
		}
		if p, err := url.Parse(u.val); err != nil || (p.Scheme != "https" && p.Scheme != "http") || p.Host == "" {
			*errs = append(*errs, fmt.Sprintf("%s=%q must be an absolute http(s) URL", u.name, u.val))
		}
	}
	if (k.SSOAppURL == "") != (k.SSOKey == "") {
		*errs = append(*errs, fmt.Sprintf("set both %s and %s to enable unified login, or neither", EnvSSOAppURL, EnvSSOKey))
	} else if k.SSOKey != "" && len(k.SSOKey) < 32 {
		*errs = append(*errs, fmt.Sprintf("%s must be at least 32 characters", EnvSSOKey))
	}
	if k.PrivateKey != "" && k.PrivateKeyFile != "" {
		*errs = append(*errs, fmt.Sprintf("set only one of %s and %s", EnvKitPrivateKey, EnvKitPrivateKeyFile))
	}
	return k
}
