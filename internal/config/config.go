// Package config reads kooflow's configuration from the environment. Every setting has one environment variable
// (documented in README.md); command-line flags may override them. Secrets are held in Secret so that printing a
// Config, logging it or marshalling it never reveals them.
package config

import (
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/shopspring/decimal"

	"github.com/kooflow/kooflow/internal/secrets"
)

// Secret is a string that never prints its value.
type Secret string

func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return "[redacted]"
}

// LogValue keeps secrets out of slog output.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// MarshalText keeps secrets out of JSON and text encodings.
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// Reveal returns the secret's value; call it only where the value is used.
func (s Secret) Reveal() string { return string(s) }

// Config is the whole of kooflow's configuration.
type Config struct {
	DatabaseURL       Secret // DATABASE_URL (may hold a password)
	TemporalAddress   string // TEMPORAL_ADDRESS
	TemporalNamespace string // TEMPORAL_NAMESPACE
	TaskQueue         string // KOOFLOW_TASK_QUEUE
	HTTPAddr          string // KOOFLOW_HTTP_ADDR
	// WorkerMetricsAddr is the worker's Prometheus listener (GET /metrics); "off" disables it.
	WorkerMetricsAddr string // KOOFLOW_WORKER_METRICS_ADDR
	// PprofAddr is the Go runtime profiler's listener (net/http/pprof), off when empty.
	PprofAddr string // KOOFLOW_PPROF_ADDR
	// Alerts pushed to a person (internal/alerts).
	AlertWebhookURL    Secret        // KOOFLOW_ALERT_WEBHOOK_URL: bot URLs carry their access token
	AlertWebhookFormat string        // KOOFLOW_ALERT_WEBHOOK_FORMAT: json, dingtalk, feishu or wecom
	PurchaseAlertAfter time.Duration // KOOFLOW_PURCHASE_ALERT_AFTER: purchase-failing after this without provisioning
	LogLevel           string        // KOOFLOW_LOG_LEVEL
	LogFormat          string        // KOOFLOW_LOG_FORMAT: text or json
	ConsoleAddr        string        // KOOFLOW_CONSOLE_ADDR: the console's own listener; empty serves it on HTTPAddr
	// TemporalUIURL is the Temporal web UI's base URL (KOOFLOW_TEMPORAL_UI_URL); the web console links each
	// instance's workflow there. Empty: no link.
	TemporalUIURL string

	// OrderQueryAlertAfter (KOOFLOW_ORDER_QUERY_ALERT_AFTER): order-query-failing once the marketplace's order
	// query has failed this long with no success.
	OrderQueryAlertAfter time.Duration

	// ReconCheckInterval (KOOFLOW_RECON_CHECK_INTERVAL): how often each worker checks the marketplace's payments
	// (overdue and short ones raise alerts); 0 (off) leaves it to `kooflow recon check`.
	ReconCheckInterval time.Duration

	// StickyCacheSize (KOOFLOW_STICKY_CACHE_SIZE) is how many workflow executions the worker keeps in memory
	// between their tasks. An instance's workflow is open for its whole subscription but is idle almost always,
	// so the worker's memory is set by this cache, not by the number of open instances: an execution evicted
	// from it is replayed from its (short) history on its next task. docs/operations.md, "Sticky cache", gives
	// the measured memory per cached execution the default is sized from.
	StickyCacheSize int

	// The production interface (docs/koogallery.md, "Signatures").
	AccessKey      Secret        // KOOGALLERY_ACCESS_KEY: signs and verifies the production interface
	ProductionPath string        // KOOGALLERY_PRODUCTION_PATH
	Deadline       time.Duration // KOOGALLERY_DEADLINE: the gateway answers within this, whatever happens
	SignatureSkew  time.Duration // KOOGALLERY_SIGNATURE_WINDOW: accepted |now - timestamp|
	// UnverifiedPerMinute bounds, per source address, how many calls that fail verification are recorded in
	// the message log (KOOGALLERY_UNVERIFIED_PER_MINUTE, default 60; 0 records all).
	UnverifiedPerMinute int
	// TrustedProxies are the addresses or CIDRs whose X-Forwarded-For names the client (KOOFLOW_TRUSTED_PROXIES);
	// none by default, so the source of a call is its TCP peer.
	TrustedProxies []string

	// The marketplace's open APIs (order query, usage push).
	MarketAK          Secret // KOOGALLERY_AK
	MarketSK          Secret // KOOGALLERY_SK
	MarketEndpoint    string // KOOGALLERY_API_ENDPOINT
	MarketCAFile      string // KOOGALLERY_API_CA_FILE: extra CA bundle (e.g. the emulator's); verification stays on
	ConsoleTokens     Secret // KOOFLOW_CONSOLE_TOKENS: name:token or name:token:scope+scope, comma separated
	DataKeys          Secret // KOOFLOW_DATA_KEYS: keyid:base64 AES-256 keys sealing credentials at rest; the first seals
	DataKeysFile      string // KOOFLOW_DATA_KEYS_FILE: the same, one a line, read when KOOFLOW_DATA_KEYS is unset
	FourEyes          bool   // KOOFLOW_FOUR_EYES: a refund's approver must be another token than its requester (default true)
	CatalogFile       string // KOOFLOW_CATALOG_FILE
	ProvisionerURL    string // KOOFLOW_PROVISIONER_URL: seller webhook; empty selects the built-in provisioner
	ProvisionerSecret Secret // KOOFLOW_PROVISIONER_SECRET: signs webhook events
	// Provisioner is KOOFLOW_PROVISIONER: "builtin" lets the built-in provisioner serve products that name no
	// provisioning when no webhook is set; "" (default) parks them.
	Provisioner  string
	ExpiryGrace  time.Duration
	ExpiryPolicy string // KOOFLOW_EXPIRY_POLICY: "alert" or "freeze"
	// ExpiryWatchInterval is KOOFLOW_EXPIRY_WATCH_INTERVAL: how often each worker looks for instances past their
	// expiry and grace that are still not frozen (default 1 min; the safety net acts at most this late).
	ExpiryWatchInterval time.Duration
	// RenewalsPerRun is KOOFLOW_RENEWALS_PER_RUN: how many renewals a lifecycle run takes before it continues as
	// new (default 12, a year of monthly renewals). Each Continue-As-New is a billed action; each renewal adds
	// about twenty events to the run's history, which a worker replays when the run is not in its cache.
	RenewalsPerRun int

	// Monthly settlement (docs/koogallery.md, "Settlement rules"). Bill days are days of the month in
	// Asia/Shanghai, moved to the next working day of the holiday calendar; the threshold is per product type, in
	// yuan.
	SettlementDay        int             // KOOFLOW_SETTLEMENT_DAY: bill day for joint-operation products (default 3)
	SettlementDayGeneral int             // KOOFLOW_SETTLEMENT_DAY_GENERAL: bill day for general products (default 7)
	SettlementHour       int             // KOOFLOW_SETTLEMENT_HOUR: hour of the bill day, Asia/Shanghai (default 10)
	SettlementHolidays   string          // KOOFLOW_SETTLEMENT_HOLIDAYS: holiday calendar file (empty: weekends only)
	SettlementThreshold  decimal.Decimal // KOOFLOW_SETTLEMENT_THRESHOLD: cumulative yuan per product type (default 1000)
	SettlementSchedule   bool            // KOOFLOW_SETTLEMENT_SCHEDULE: the worker keeps the Temporal Schedule (default true)

	Kit KitConfig // the joint-operation Kit endpoints (internal/config/kit.go)

	UsagePush   UsagePushConfig   // the hourly usage push (internal/config/usagepush.go)
	UsageIntake UsageIntakeConfig // POST /usage/v1/records (internal/config/usage_intake.go)
	Safety      Safety            // Temporal TLS and API key, codec origins, message retention, database sessions (internal/config/safety.go)
}

// Env names, in one place so docs, dev mode and tests agree.
const (
	EnvDatabaseURL        = "DATABASE_URL"
	EnvTemporalAddress    = "TEMPORAL_ADDRESS"
	EnvTemporalNamespace  = "TEMPORAL_NAMESPACE"
	EnvTaskQueue          = "KOOFLOW_TASK_QUEUE"
	EnvHTTPAddr           = "KOOFLOW_HTTP_ADDR"
	EnvTemporalUIURL      = "KOOFLOW_TEMPORAL_UI_URL"
	EnvWorkerMetricsAddr  = "KOOFLOW_WORKER_METRICS_ADDR"
	EnvPprofAddr          = "KOOFLOW_PPROF_ADDR"
	EnvAlertWebhookURL    = "KOOFLOW_ALERT_WEBHOOK_URL"
	EnvAlertWebhookFormat = "KOOFLOW_ALERT_WEBHOOK_FORMAT"
	EnvPurchaseAlertAfter = "KOOFLOW_PURCHASE_ALERT_AFTER"
	EnvLogLevel           = "KOOFLOW_LOG_LEVEL"
	EnvLogFormat          = "KOOFLOW_LOG_FORMAT"
	EnvAccessKey          = "KOOGALLERY_ACCESS_KEY"
	EnvProductionPath     = "KOOGALLERY_PRODUCTION_PATH"
	EnvDeadline           = "KOOGALLERY_DEADLINE"
	EnvSignatureWindow    = "KOOGALLERY_SIGNATURE_WINDOW"
	EnvMarketAK           = "KOOGALLERY_AK"
	EnvMarketSK           = "KOOGALLERY_SK"
	EnvMarketEndpoint     = "KOOGALLERY_API_ENDPOINT"
	EnvMarketCAFile       = "KOOGALLERY_API_CA_FILE"
	EnvConsoleTokens      = "KOOFLOW_CONSOLE_TOKENS"
	EnvCatalogFile        = "KOOFLOW_CATALOG_FILE"
	EnvProvisionerURL     = "KOOFLOW_PROVISIONER_URL"
	EnvProvisionerSecret  = "KOOFLOW_PROVISIONER_SECRET"
	EnvExpiryGrace        = "KOOFLOW_EXPIRY_GRACE"
	EnvExpiryPolicy       = "KOOFLOW_EXPIRY_POLICY"
	EnvExpiryWatch        = "KOOFLOW_EXPIRY_WATCH_INTERVAL"
	EnvRenewalsPerRun     = "KOOFLOW_RENEWALS_PER_RUN"
	EnvConsoleAddr        = "KOOFLOW_CONSOLE_ADDR"
	EnvUnverifiedRate     = "KOOGALLERY_UNVERIFIED_PER_MINUTE"
	EnvTrustedProxies     = "KOOFLOW_TRUSTED_PROXIES"
	EnvFourEyes           = "KOOFLOW_FOUR_EYES"
	EnvDataKeys           = "KOOFLOW_DATA_KEYS"
	EnvDataKeysFile       = "KOOFLOW_DATA_KEYS_FILE"
	EnvProvisioner        = "KOOFLOW_PROVISIONER"

	EnvSettlementDay        = "KOOFLOW_SETTLEMENT_DAY"
	EnvSettlementDayGeneral = "KOOFLOW_SETTLEMENT_DAY_GENERAL"
	EnvSettlementHour       = "KOOFLOW_SETTLEMENT_HOUR"
	EnvSettlementHolidays   = "KOOFLOW_SETTLEMENT_HOLIDAYS"
	EnvSettlementThreshold  = "KOOFLOW_SETTLEMENT_THRESHOLD"
	EnvSettlementSchedule   = "KOOFLOW_SETTLEMENT_SCHEDULE"
)

// EnvOrderQueryAlertAfter is the setting of Config.OrderQueryAlertAfter.
const EnvOrderQueryAlertAfter = "KOOFLOW_ORDER_QUERY_ALERT_AFTER"

// EnvReconCheckInterval is the setting of Config.ReconCheckInterval.
const EnvReconCheckInterval = "KOOFLOW_RECON_CHECK_INTERVAL"

// EnvStickyCacheSize is the setting of Config.StickyCacheSize.
const EnvStickyCacheSize = "KOOFLOW_STICKY_CACHE_SIZE"

// DefaultStickyCacheSize bounds the worker's cached workflow executions (see Config.StickyCacheSize). An open
// instance held in the cache measured 81 KB of worker RSS (`kooflow bench open -n 2000`), so 4,000 keep the worker
// near 370 MB however many instances are open, under a 500 MB budget with room for in-flight activities; the
// SDK's own default of 10,000 would take it past 850 MB.
const DefaultStickyCacheSize = 4_000

// Defaults for settings that have a sensible value everywhere.
const (
	DefaultTemporalAddress   = "127.0.0.1:7233"
	DefaultTemporalNamespace = "default"
	DefaultTaskQueue         = "kooflow"
	DefaultHTTPAddr          = "127.0.0.1:8080"
	DefaultWorkerMetricsAddr = "127.0.0.1:9464"
	DefaultProductionPath    = "/koogallery/v2"
	DefaultMarketEndpoint    = "https://mkt.myhuaweicloud.com"
)

// FromEnv reads the configuration; lookup is os.LookupEnv in production and a map in tests.
func FromEnv(lookup func(string) (string, bool)) (Config, error) {
	get := func(name, def string) string {
		if v, ok := lookup(name); ok && strings.TrimSpace(v) != "" {
			return strings.TrimSpace(v)
		}
		return def
	}
	var errs []string
	dur := func(name string, def time.Duration) time.Duration {
		v := get(name, "")
		if v == "" {
			return def
		}
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			errs = append(errs, fmt.Sprintf("%s=%q is not a duration like 4s or 36h", name, v))
			return def
		}
		return d
	}
	c := Config{
		DatabaseURL:         Secret(get(EnvDatabaseURL, "")),
		TemporalAddress:     get(EnvTemporalAddress, DefaultTemporalAddress),
		TemporalNamespace:   get(EnvTemporalNamespace, DefaultTemporalNamespace),
		TaskQueue:           get(EnvTaskQueue, DefaultTaskQueue),
		HTTPAddr:            get(EnvHTTPAddr, DefaultHTTPAddr),
		WorkerMetricsAddr:   get(EnvWorkerMetricsAddr, DefaultWorkerMetricsAddr),
		PprofAddr:           get(EnvPprofAddr, ""),
		AlertWebhookURL:     Secret(get(EnvAlertWebhookURL, "")),
		AlertWebhookFormat:  get(EnvAlertWebhookFormat, "json"),
		PurchaseAlertAfter:  dur(EnvPurchaseAlertAfter, 30*time.Minute),
		LogLevel:            get(EnvLogLevel, "info"),
		LogFormat:           get(EnvLogFormat, "text"),
		AccessKey:           Secret(get(EnvAccessKey, "")),
		ProductionPath:      get(EnvProductionPath, DefaultProductionPath),
		Deadline:            dur(EnvDeadline, 4*time.Second),
		SignatureSkew:       dur(EnvSignatureWindow, 60*time.Second),
		MarketAK:            Secret(get(EnvMarketAK, "")),
		MarketSK:            Secret(get(EnvMarketSK, "")),
		MarketEndpoint:      strings.TrimRight(get(EnvMarketEndpoint, DefaultMarketEndpoint), "/"),
		MarketCAFile:        get(EnvMarketCAFile, ""),
		ConsoleTokens:       Secret(get(EnvConsoleTokens, "")),
		CatalogFile:         get(EnvCatalogFile, ""),
		ProvisionerURL:      get(EnvProvisionerURL, ""),
		ProvisionerSecret:   Secret(get(EnvProvisionerSecret, "")),
		ExpiryGrace:         dur(EnvExpiryGrace, 24*time.Hour),
		ExpiryPolicy:        get(EnvExpiryPolicy, "alert"),
		ExpiryWatchInterval: dur(EnvExpiryWatch, time.Minute),
		ConsoleAddr:         get(EnvConsoleAddr, ""),
		TemporalUIURL:       get(EnvTemporalUIURL, ""),
		DataKeys:            Secret(get(EnvDataKeys, "")),
		DataKeysFile:        get(EnvDataKeysFile, ""),
		Provisioner:         get(EnvProvisioner, ""),
	}
	c.OrderQueryAlertAfter = dur(EnvOrderQueryAlertAfter, 15*time.Minute)
	if v := strings.ToLower(get(EnvReconCheckInterval, "")); v == "off" {
		c.ReconCheckInterval = 0
	} else {
		c.ReconCheckInterval = dur(EnvReconCheckInterval, time.Hour)
	}
	boolean := func(name string, def bool) bool {
		switch v := strings.ToLower(get(name, strconv.FormatBool(def))); v {
		case "true", "on", "1", "yes":
			return true
		case "false", "off", "0", "no":
			return false
		default:
			errs = append(errs, fmt.Sprintf("%s=%q must be true or false", name, v))
			return def
		}
	}
	settlementInt := func(name string, def, lo, hi int) int {
		v := get(name, "")
		if v == "" {
			return def
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < lo || n > hi {
			errs = append(errs, fmt.Sprintf("%s=%q must be a whole number from %d to %d", name, v, lo, hi))
			return def
		}
		return n
	}
	c.RenewalsPerRun = settlementInt(EnvRenewalsPerRun, 12, 1, 120)
	// Days stop at 28 so every month has the day.
	c.SettlementDay = settlementInt(EnvSettlementDay, 3, 1, 28)
	c.SettlementDayGeneral = settlementInt(EnvSettlementDayGeneral, 7, 1, 28)
	c.SettlementHour = settlementInt(EnvSettlementHour, 10, 0, 23)
	c.SettlementHolidays = get(EnvSettlementHolidays, "")
	c.SettlementThreshold = decimal.NewFromInt(1000)
	if v := get(EnvSettlementThreshold, ""); v != "" {
		if d, err := decimal.NewFromString(v); err != nil || d.IsNegative() {
			errs = append(errs, fmt.Sprintf("%s=%q must be a non-negative amount in yuan, like 1000 or 1000.00", EnvSettlementThreshold, v))
		} else {
			c.SettlementThreshold = d
		}
	}
	c.FourEyes = boolean(EnvFourEyes, true)
	c.UnverifiedPerMinute = settlementInt(EnvUnverifiedRate, 60, 0, 1_000_000)
	c.StickyCacheSize = settlementInt(EnvStickyCacheSize, DefaultStickyCacheSize, 1, 10_000_000)
	for _, p := range strings.Split(get(EnvTrustedProxies, ""), ",") {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		if _, err := netip.ParsePrefix(p); err != nil {
			if _, err := netip.ParseAddr(p); err != nil {
				errs = append(errs, fmt.Sprintf("%s: %q is neither an IP address nor a CIDR like 10.0.0.0/8", EnvTrustedProxies, p))
				continue
			}
		}
		c.TrustedProxies = append(c.TrustedProxies, p)
	}
	switch v := strings.ToLower(get(EnvSettlementSchedule, "true")); v {
	case "true", "on", "1", "yes":
		c.SettlementSchedule = true
	case "false", "off", "0", "no":
		c.SettlementSchedule = false
	default:
		errs = append(errs, fmt.Sprintf("%s=%q must be true or false", EnvSettlementSchedule, v))
	}
	c.Kit = kitFromEnv(get, c.ProductionPath, &errs)
	c.UsagePush = usagePushFromEnv(get, &errs)
	c.UsageIntake = usageIntakeFromEnv(get, &errs)
	c.Safety = safetyFromEnv(get, &errs)
	if !strings.HasPrefix(c.ProductionPath, "/") {
		errs = append(errs, fmt.Sprintf("%s=%q must start with /", EnvProductionPath, c.ProductionPath))
	}
	if c.Provisioner != "" && c.Provisioner != "builtin" {
		errs = append(errs, fmt.Sprintf("%s=%q must be builtin or unset", EnvProvisioner, c.Provisioner))
	}
	if c.ExpiryPolicy != "alert" && c.ExpiryPolicy != "freeze" {
		errs = append(errs, fmt.Sprintf("%s=%q must be alert or freeze", EnvExpiryPolicy, c.ExpiryPolicy))
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		errs = append(errs, fmt.Sprintf("%s=%q must be text or json", EnvLogFormat, c.LogFormat))
	}
	if len(errs) > 0 {
		return c, fmt.Errorf("configuration: %s", strings.Join(errs, "; "))
	}
	return c, nil
}

// Require reports the settings a process needs but lacks, naming the environment variables to set.
func (c Config) Require(names ...string) error {
	var missing []string
	for _, n := range names {
		var v string
		name := n
		switch n {
		case EnvDatabaseURL:
			v = string(c.DatabaseURL)
		case EnvAccessKey:
			v = string(c.AccessKey)
		case EnvMarketAK:
			v = string(c.MarketAK)
		case EnvMarketSK:
			v = string(c.MarketSK)
		case EnvConsoleTokens:
			v = string(c.ConsoleTokens)
		case EnvDataKeys, EnvDataKeysFile:
			v = string(c.DataKeys) + c.DataKeysFile
			name = EnvDataKeys + " (or " + EnvDataKeysFile + ")"
		default:
			v = "set"
		}
		if v == "" {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("missing required configuration: set %s", strings.Join(missing, ", "))
	}
	return nil
}

// Scope is one area of the console a token may use (docs/security.md, "Console tokens").
type Scope string

// The console scopes. A token without a scope list has all of them.
const (
	ScopeRead     Scope = "read"     // every GET: instances, messages, inbox, alerts, catalog, bills
	ScopeOperate  Scope = "operate"  // supervision as the seller, operator resume/skip, self-check, alerts
	ScopeFinance  Scope = "finance"  // refund decisions, payments, repayments, imports, adjustments, closing periods
	ScopeCustomer Scope = "customer" // the customer's supervision steps and refund requests (emulator and demos)
	ScopeUsage    Scope = "usage"    // usage ingestion
)

// AllScopes lists every scope, in the order the documentation gives them.
var AllScopes = []Scope{ScopeRead, ScopeOperate, ScopeFinance, ScopeCustomer, ScopeUsage}

// ConsoleToken is one named bearer token for the console API with the scopes it grants.
type ConsoleToken struct {
	Name   string
	Token  Secret
	Scopes []Scope // nil: every scope (a "name:token" entry)
}

// Has reports whether the token grants scope s.
func (t ConsoleToken) Has(s Scope) bool {
	return t.Scopes == nil || slices.Contains(t.Scopes, s)
}

// ParseConsoleTokens parses "name:token" (every scope) and "name:token:scope+scope" entries, comma separated. A
// bare token gets the name "console" and every scope. Tokens hold no ':' or ','; names are unique, because the
// name is who acted and four eyes compare names.
func (c Config) ParseConsoleTokens() ([]ConsoleToken, error) {
	var out []ConsoleToken
	seen := map[string]bool{}
	for _, part := range strings.Split(string(c.ConsoleTokens), ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		fields := strings.Split(part, ":")
		var t ConsoleToken
		switch len(fields) {
		case 1:
			t = ConsoleToken{Name: "console", Token: Secret(fields[0])}
		case 2, 3:
			t = ConsoleToken{Name: strings.TrimSpace(fields[0]), Token: Secret(fields[1])}
		default:
			return nil, fmt.Errorf("%s: an entry has %d ':'-separated parts; write name:token or name:token:scope+scope", EnvConsoleTokens, len(fields))
		}
		if t.Name == "" {
			return nil, fmt.Errorf("%s: an entry has an empty name; write name:token", EnvConsoleTokens)
		}
		if seen[t.Name] {
			return nil, fmt.Errorf("%s: the name %q is given twice; each token needs its own name", EnvConsoleTokens, t.Name)
		}
		seen[t.Name] = true
		if len(t.Token) < 16 {
			return nil, fmt.Errorf("%s: the token named %q is shorter than 16 characters", EnvConsoleTokens, t.Name)
		}
		if len(fields) == 3 {
			t.Scopes = []Scope{}
			for _, s := range strings.Split(fields[2], "+") {
				sc := Scope(strings.TrimSpace(s))
				if !slices.Contains(AllScopes, sc) {
					return nil, fmt.Errorf("%s: the token named %q has the unknown scope %q (scopes: read, operate, finance, customer, usage, joined with +)", EnvConsoleTokens, t.Name, s)
				}
				if !slices.Contains(t.Scopes, sc) {
					t.Scopes = append(t.Scopes, sc)
				}
			}
		}
		out = append(out, t)
	}
	return out, nil
}

// Int parses an integer environment variable with a default; used by commands with numeric knobs.
func Int(lookup func(string) (string, bool), name string, def int) int {
	if v, ok := lookup(name); ok {
		if n, err := strconv.Atoi(strings.TrimSpace(v)); err == nil {
			return n
		}
	}
	return def
}

// OSLookup is os.LookupEnv, named for call sites.
var OSLookup = os.LookupEnv

// Keyring loads the data keys from KOOFLOW_DATA_KEYS, or else KOOFLOW_DATA_KEYS_FILE; nil when neither is set.
func (c Config) Keyring() (*secrets.Keyring, error) {
	return secrets.Load(EnvDataKeys, c.DataKeys.Reveal(), EnvDataKeysFile, c.DataKeysFile)
}
