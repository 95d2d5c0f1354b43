package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/kooflow/kooflow/emulator/clock"
	"github.com/kooflow/kooflow/emulator/console"
	"github.com/kooflow/kooflow/emulator/deliver"
	"github.com/kooflow/kooflow/emulator/dial"
	"github.com/kooflow/kooflow/emulator/ledger"
	"github.com/kooflow/kooflow/emulator/market"
	"github.com/kooflow/kooflow/emulator/scenario"
	"github.com/kooflow/kooflow/internal/catalog"
	"github.com/kooflow/kooflow/internal/config"
	"github.com/kooflow/kooflow/internal/logging"
	"github.com/kooflow/kooflow/usageclient"
)

// errFailed makes the process exit non-zero after a report that found problems.
var errFailed = errors.New("the emulator found mismatches or contract breaches (see the report)")

func newEmulatorCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "emulator",
		Short: "The KooGallery marketplace on loopback: open APIs, customers, faults, dial tests",
		Long: `emulator plays Huawei Cloud KooGallery against a kooflow (or any seller) on this machine.

  serve  the marketplace's open APIs (order query, usage push) over HTTPS with a private CA
  run    drive N customers through mixed lifecycles, with faults, and compare the result with kooflow's console
  dial   the marketplace's dial test: every activity with testFlag "1", with a pass/fail report
  kit    a joint-operation purchase, then its Kit sync calls (tenant, application, users, org), checked
  bill   the marketplace's bill detail of a period (CSV or XLSX), the file kooflow recon import reads

Every setting comes from the environment kooflow itself reads (KOOGALLERY_ACCESS_KEY, KOOGALLERY_AK/SK,
KOOGALLERY_API_ENDPOINT, KOOGALLERY_API_CA_FILE, KOOFLOW_HTTP_ADDR, KOOGALLERY_PRODUCTION_PATH,
KOOFLOW_CONSOLE_TOKENS); what is unset takes ` + "`kooflow dev`" + `'s development value, so next to a running
` + "`kooflow dev`" + ` no flag is needed:

  kooflow emulator run --orders 200 --faults all
  kooflow emulator dial`,
	}
	cmd.AddCommand(newEmulatorServeCmd(), newEmulatorRunCmd(), newEmulatorDialCmd(), newEmulatorBillCmd())
	cmd.AddCommand(newEmulatorKitCmd())
	return cmd
}

func newEmulatorServeCmd() *cobra.Command {
	var addr, certDir string
	var q market.QueryFaults
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Serve the marketplace's order query and usage push APIs (and the emulator's control API)",
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, log, err := emulatorSetup()
			if err != nil {
				return err
			}
			if err := cfg.Require(config.EnvMarketAK, config.EnvMarketSK); err != nil {
				return err
			}
			if addr == "" {
				u, err := url.Parse(cfg.MarketEndpoint)
				if err != nil || u.Host == "" || u.Hostname() == "mkt.myhuaweicloud.com" {
					addr = "127.0.0.1:8090"
				} else {
					addr = u.Host
				}
			}
			cat, _, err := catalog.Open(cfg.CatalogFile)
			if err != nil {
				return err
			}
			m, err := market.New(market.Options{AK: cfg.MarketAK.Reveal(), SK: cfg.MarketSK.Reveal(),
				SellerKey: cfg.AccessKey.Reveal(), Log: log, Catalog: cat})
			if err != nil {
				return err
			}
			m.SetQueryFaults(q)
			srv, err := m.StartTLS(addr, certDir)
			if err != nil {
				return err
			}
			log.Info("KooGallery emulator serving", "url", srv.URL, "ca_file", srv.CAFile,
				"hint", config.EnvMarketEndpoint+"="+srv.URL+" "+config.EnvMarketCAFile+"="+srv.CAFile)
			select {
			case <-cmd.Context().Done():
				return srv.Close()
			case err := <-srv.Done():
				return err
			}
		},
	}
	f := cmd.Flags()
	f.StringVar(&addr, "addr", "", "listen address (default: the host of "+config.EnvMarketEndpoint+", else 127.0.0.1:8090)")
	f.StringVar(&certDir, "cert-dir", filepath.Join(".kooflow", "emulator"), "where the private CA and server certificate are kept")
	f.Float64Var(&q.ErrorRate, "query-5xx", 0, "rate of order queries answered 500")
	f.Float64Var(&q.TimeoutRate, "query-timeout", 0, "rate of order queries left hanging")
	f.DurationVar(&q.Hang, "query-hang", 15*time.Second, "how long a hanging order query hangs")
	return cmd
}

// emulatorSetup reads the configuration like every kooflow command, except that settings the environment
// leaves unset take `kooflow dev`'s development values: the emulator's usual partner is a local kooflow dev,
// and this way `kooflow emulator run` needs no environment at all next to it.
func emulatorSetup() (config.Config, *slog.Logger, error) {
	dev := devEnv(devOptions{})
	cfg, err := config.FromEnv(func(k string) (string, bool) {
		if v, ok := os.LookupEnv(k); ok && strings.TrimSpace(v) != "" {
			return v, true
		}
		v, ok := dev[k]
		return v, ok
	})
	if err != nil {
		return cfg, nil, err
	}
	log, err := logging.New(os.Stderr, cfg.LogFormat, cfg.LogLevel)
	if err != nil {
		return cfg, nil, err
	}
	return cfg, log, nil
}

// target is where the emulator finds the seller and the market.
type target struct {
	sellerURL    string
	consoleURL   string
	consoleToken string
	customerTok  string
	marketURL    string
	marketListen string
	certDir      string
	stateDir     string
	window       time.Duration
}

func (t *target) flags(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&t.sellerURL, "seller", "", "the seller's production URL (default http://$"+config.EnvHTTPAddr+"$"+config.EnvProductionPath+")")
	f.StringVar(&t.consoleURL, "console", "", "the seller's console API (default http://$"+config.EnvHTTPAddr+"/console/v1)")
	f.StringVar(&t.consoleToken, "console-token", "", "console bearer token (default: the first of "+config.EnvConsoleTokens+")")
	f.StringVar(&t.customerTok, "customer-token", "", "console token for the customer's steps and refund requests (default: another token of "+config.EnvConsoleTokens+" with the customer scope)")
	f.StringVar(&t.marketURL, "market", "", "a running emulator market to place orders in (default "+config.EnvMarketEndpoint+")")
	f.StringVar(&t.marketListen, "market-listen", "", "serve the market in this process on this address instead of using a running one")
	f.StringVar(&t.certDir, "cert-dir", filepath.Join(".kooflow", "emulator"), "with --market-listen: where the CA and certificate are kept")
	f.StringVar(&t.stateDir, "state-dir", ".kooflow", "kooflow dev's state directory: its emulator CA is trusted when "+config.EnvMarketCAFile+" is unset")
	f.DurationVar(&t.window, "seller-window", 0, "the seller's signature window, for stale-delivery faults (default "+config.EnvSignatureWindow+" or 60s)")
}

// resolve fills the defaults from kooflow's own configuration.
func (t *target) resolve(cfg config.Config) error {
	addr := cfg.HTTPAddr
	if t.sellerURL == "" {
		t.sellerURL = "http://" + addr + cfg.ProductionPath
	}
	if t.consoleURL == "" {
		t.consoleURL = "http://" + addr + "/console/v1"
	}
	if t.consoleToken == "" || t.customerTok == "" {
		toks, err := cfg.ParseConsoleTokens()
		if err != nil {
			return err
		}
		seller, customer := consoleTokens(toks, t.consoleToken)
		if t.consoleToken == "" {
			t.consoleToken = seller
		}
		if t.customerTok == "" {
			t.customerTok = customer
		}
	}
	if t.marketURL == "" && t.marketListen == "" {
		t.marketURL = cfg.MarketEndpoint
	}
	if t.window == 0 {
		t.window = cfg.SignatureSkew
	}
	if cfg.AccessKey == "" {
		return fmt.Errorf("set %s: the emulator signs production-interface calls with the seller's access key", config.EnvAccessKey)
	}
	return cfg.Require(config.EnvMarketAK, config.EnvMarketSK)
}

// places connects to (or starts) the market. The returned stop function ends an in-process market.
func (t *target) places(cfg config.Config, log *slog.Logger) (market.Places, func(), error) {
	if t.marketListen != "" {
		cat, _, err := catalog.Open(cfg.CatalogFile)
		if err != nil {
			return nil, nil, err
		}
		m, err := market.New(market.Options{AK: cfg.MarketAK.Reveal(), SK: cfg.MarketSK.Reveal(), SellerKey: cfg.AccessKey.Reveal(),
			Log: log, Catalog: cat})
		if err != nil {
			return nil, nil, err
		}
		srv, err := m.StartTLS(t.marketListen, t.certDir)
		if err != nil {
			return nil, nil, err
		}
		log.Info("emulator market serving in this process; point the seller's worker at it",
			config.EnvMarketEndpoint, srv.URL, config.EnvMarketCAFile, srv.CAFile)
		return market.Local{M: m}, func() { _ = srv.Close() }, nil
	}
	pool := x509.NewCertPool()
	if cfg.MarketCAFile == "" {
		if p := filepath.Join(t.stateDir, "emulator", market.CAFileName); fileExists(p) {
			cfg.MarketCAFile = p
		}
	}
	if cfg.MarketCAFile != "" {
		pem, err := os.ReadFile(cfg.MarketCAFile)
		if err != nil {
			return nil, nil, fmt.Errorf("read %s: %w", config.EnvMarketCAFile, err)
		}
		pool.AppendCertsFromPEM(pem)
	} else if sys, err := x509.SystemCertPool(); err == nil {
		pool = sys
	}
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
	r := market.Remote{URL: t.marketURL, AK: cfg.MarketAK.Reveal(), SK: cfg.MarketSK.Reveal(), HTTP: hc}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := r.Stats(ctx); err != nil {
		return nil, nil, fmt.Errorf("no emulator market answers at %s (start kooflow dev, or `kooflow emulator serve`, or pass --market-listen): %w", t.marketURL, err)
	}
	return r, func() {}, nil
}

func newEmulatorRunCmd() *cobra.Command {
	var t target
	var orders, usageCustomers int
	var mix, faults, ledgerCSV, reportJSON string
	var seed uint64
	var scale float64
	var duration, spread, horizon, converge, interval time.Duration
	var forever bool
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Drive customers through mixed lifecycles against a running kooflow and report every mismatch",
		Long: `run plays the marketplace for --orders customers, each on a lifecycle path drawn from --mix:
` + strings.Join(scenario.Paths(), ", ") + `.

It places the orders in the emulator's market, sends the signed production-interface calls with the
marketplace's retry windows and the chosen --faults, runs expiry (FREEZE) and the 15-day retention (release) on a
clock running --scale times real time, plays the customer and the seller's operator on kooflow's console
(supervision, refunds), then waits for kooflow's read model to converge and compares it with what the marketplace
believes: instance state, expiry, appInfo, supervision, refunds, orders. The exit status is non-zero on any
mismatch or contract breach.

--faults: none | all | a list of dup=RATE copies=N reorder=DUR delay=RATE delay-by=DUR drop=RATE query-5xx=RATE
query-timeout=RATE query-hang=DUR ("all,drop=0.3" overrides one).`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, log, err := emulatorSetup()
			if err != nil {
				return err
			}
			if err := t.resolve(cfg); err != nil {
				return err
			}
			m, err := scenario.ParseMix(mix)
			if err != nil {
				return err
			}
			fs, err := scenario.ParseFaults(faults, t.window)
			if err != nil {
				return err
			}
			cat, err := catalog.Load(cfg.CatalogFile)
			if err != nil {
				return err
			}
			if cfg.CatalogFile == "" {
				if cat, err = catalog.Parse(catalog.DevCatalog); err != nil {
					return err
				}
			}
			places, stop, err := t.places(cfg, log)
			if err != nil {
				return err
			}
			defer stop()
			if spread == 0 {
				spread = 10 * 24 * time.Hour
			}
			if horizon == 0 {
				horizon = spread + 75*24*time.Hour
			}
			if scale == 0 {
				scale = float64(horizon) / float64(max(duration, time.Second))
			}
			clk := clock.New(time.Now(), scale)
			client := deliver.NewClient(t.sellerURL, cfg.AccessKey.Reveal())
			client.HTTP = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
			disp := deliver.NewDispatcher(client, clk, seed)
			led := ledger.New()
			r, err := scenario.New(scenario.Config{Orders: orders, Mix: m, Faults: fs, Seed: seed, Spread: spread,
				Horizon: horizon, Converge: converge, Forever: forever, Interval: interval},
				scenario.Deps{Catalog: cat, Clock: clk, Dispatcher: disp, Market: places,
					Seller: console.New(t.consoleURL, t.consoleToken, t.customerTok, nil), Ledger: led, Log: log})
			if err != nil {
				return err
			}
			rep, err := r.Run(cmd.Context())
			if forever {
				if errors.Is(err, context.Canceled) {
					return nil
				}
				return err
			}
			if err != nil {
				return err
			}
			rep.Print(os.Stdout)
			if usageCustomers > 0 {
				urep, err := runUsageCustomers(cmd.Context(), usageCustomers, cat, places, led, t, cfg, log)
				if err != nil {
					return err
				}
				urep.Print(os.Stdout)
				if urep.Failed() {
					return errFailed
				}
			}
			if ledgerCSV != "" {
				if err := writeFile(ledgerCSV, func(f *os.File) error { return led.WriteCSV(f) }); err != nil {
					return err
				}
			}
			if reportJSON != "" {
				if err := writeFile(reportJSON, func(f *os.File) error {
					enc := json.NewEncoder(f)
					enc.SetIndent("", "  ")
					return enc.Encode(rep)
				}); err != nil {
					return err
				}
			}
			if rep.Failed() {
				return errFailed
			}
			return nil
		},
	}
	t.flags(cmd)
	f := cmd.Flags()
	f.IntVar(&orders, "orders", 50, "number of customers (one purchase each)")
	f.StringVar(&mix, "mix", "all", "path weights, e.g. buy=3,renew=2,supervised=1 (all: every path)")
	f.StringVar(&faults, "faults", "none", "faults to inject: none, all, or a list (see above)")
	f.Uint64Var(&seed, "seed", 0, "random seed (0: random; the report prints it)")
	f.Float64Var(&scale, "scale", 0, "marketplace seconds per wall second (0: derived from --duration)")
	f.DurationVar(&duration, "duration", 2*time.Minute, "wall time the customers' marketplace horizon should take")
	f.DurationVar(&spread, "spread", 0, "marketplace time over which purchases arrive (default 240h)")
	f.DurationVar(&horizon, "horizon", 0, "marketplace time after which customers stop (default spread + 1800h)")
	f.DurationVar(&converge, "converge", 3*time.Minute, "how long to wait for kooflow's read model to match")
	f.BoolVar(&forever, "forever", false, "keep adding customers until interrupted; no report (what kooflow dev --emulator runs)")
	f.DurationVar(&interval, "interval", 3*time.Second, "with --forever: wall time between new customers")
	f.IntVar(&usageCustomers, "usage-customers", 0, "then this many pay-per-use customers: usage through kooflow's intake (console token with the usage scope), pushed, charged, released")
	f.StringVar(&ledgerCSV, "ledger-csv", "", "write the marketplace's ledger here (CSV), to compare with a settlement")
	f.StringVar(&reportJSON, "report-json", "", "write the report here as JSON")
	return cmd
}

// runUsageCustomers runs pay-per-use customers of the catalog's first pay-per-use product after the lifecycles:
// their purchases go in the run's ledger (and the market's), their usage through kooflow's intake with the seller's
// console token, so the month's bill has usage lines.
func runUsageCustomers(ctx context.Context, n int, cat *catalog.Catalog, places market.Places, led *ledger.Ledger, t target,
	cfg config.Config, log *slog.Logger) (scenario.UsageReport, error) {
	var product catalog.Product
	for _, p := range cat.Products() {
		if p.ChargingMode == catalog.ChargingOnDemand && len(p.SKUs) > 0 {
			product = p
			break
		}
	}
	if product.ProductID == "" {
		return scenario.UsageReport{}, fmt.Errorf("--usage-customers: the catalog has no pay-per-use (ON_DEMAND) product")
	}
	var usage market.UsageControl
	switch m := places.(type) {
	case market.Local:
		usage = market.LocalUsage(m)
	case market.Remote:
		usage = m
	default:
		return scenario.UsageReport{}, fmt.Errorf("--usage-customers: the market does not take usage")
	}
	return scenario.RunUsage(ctx, scenario.UsageConfig{Customers: n, Hours: 1, RecordsPerHour: 20, DuplicateRate: 0.2,
		ProductID: product.ProductID, SKUCode: product.SKUs[0].SKUCode},
		scenario.UsageDeps{Client: deliver.NewClient(t.sellerURL, cfg.AccessKey.Reveal()), Market: places, Usage: usage,
			Intake: &usageclient.Client{BaseURL: strings.TrimSuffix(t.consoleURL, "/console/v1"), Token: t.consoleToken},
			Log:    log, Ledger: led})
}

func newEmulatorDialCmd() *cobra.Command {
	var t target
	var every time.Duration
	var withKit bool
	cmd := &cobra.Command{
		Use:   "dial",
		Short: "Run the marketplace's dial test (every activity with testFlag \"1\") and report pass/fail",
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, log, err := emulatorSetup()
			if err != nil {
				return err
			}
			if err := t.resolve(cfg); err != nil {
				return err
			}
			places, stop, err := t.places(cfg, log)
			if err != nil {
				return err
			}
			defer stop()
			d := &dial.Runner{Client: deliver.NewClient(t.sellerURL, cfg.AccessKey.Reveal()), Market: places}
			if d.Kit, err = dialKit(withKit, cfg); err != nil {
				return err
			}
			for {
				rep := d.Run(cmd.Context())
				rep.Print(os.Stdout)
				if every == 0 {
					if !rep.Passed() {
						return errors.New("dial test failed")
					}
					return nil
				}
				if !rep.Passed() {
					log.Error("dial test failed; a product failing its dial tests persistently is delisted")
				}
				select {
				case <-cmd.Context().Done():
					return nil
				case <-time.After(every):
				}
			}
		},
	}
	t.flags(cmd)
	cmd.Flags().DurationVar(&every, "every", 0, "repeat at this interval (the marketplace dials twice a day: 12h); 0 runs once")
	cmd.Flags().BoolVar(&withKit, "kit", false, "add the joint-operation Kit cases (the seller's public key from "+config.EnvKitPrivateKey+")")
	return cmd
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

func writeFile(path string, write func(*os.File) error) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := write(f); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	return f.Close()
}

// consoleTokens picks the emulator's console tokens from KOOFLOW_CONSOLE_TOKENS: the seller's is the given one or
// the first; the customer's is another token with the customer scope, preferring one limited to it, so that a
// refund the customer requests is approved by a different name (four eyes). "" when there is none.
func consoleTokens(toks []config.ConsoleToken, seller string) (string, string) {
	if seller == "" && len(toks) > 0 {
		seller = toks[0].Token.Reveal()
	}
	customer := ""
	for _, t := range toks {
		if t.Token.Reveal() == seller || !t.Has(config.ScopeCustomer) {
			continue
		}
		if t.Scopes != nil {
			return seller, t.Token.Reveal()
		}
		if customer == "" {
			customer = t.Token.Reveal()
		}
	}
	return seller, customer
}
