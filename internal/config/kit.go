package config

import (
	"fmt"
	"strings"
)

// Environment of the joint-operation Kit interfaces (docs/koogallery.md, "Kit interfaces").
const (
	EnvKitPath           = "KOOGALLERY_KIT_PATH"
	EnvKitPaths          = "KOOGALLERY_KIT_PATHS"
	EnvKitPrivateKey     = "KOOGALLERY_KIT_PRIVATE_KEY"
	EnvKitPrivateKeyFile = "KOOGALLERY_KIT_PRIVATE_KEY_FILE"

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
	if k.PrivateKey != "" && k.PrivateKeyFile != "" {
		*errs = append(*errs, fmt.Sprintf("set only one of %s and %s", EnvKitPrivateKey, EnvKitPrivateKeyFile))
	}
	return k
}
