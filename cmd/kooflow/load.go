package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/shopspring/decimal"
	"github.com/spf13/cobra"

	"github.com/kooflow/kooflow/emulator/market"
	"github.com/kooflow/kooflow/internal/config"
	"github.com/kooflow/kooflow/internal/loadgen"
)

type loadOptions struct {
	url         string
	accessKey   string
	concurrency int
	requests    int
	duration    time.Duration
	warmup      int
	testFlag    bool
	prefix      string
	timeout     time.Duration
	maxP99      time.Duration
	place       bool
	marketURL   string
	marketCA    string
	rate        float64
	waitIdle    time.Duration
}

func newLoadCmd() *cobra.Command {
	var o loadOptions
	cmd := &cobra.Command{
		Use:   "load",
		Short: "Send signed newInstance calls from N concurrent clients to a running kooflow and report latency",
		Long: `load plays the marketplace under load: -c clients each send signed newInstance calls for fresh orders, one
after another, to the production interface at --url, and it prints p50/p90/p99/max latency, throughput and the
result codes. Every answer's Body-Sign is checked.

Against ` + "`kooflow dev`" + ` the defaults work as they are (the dev access key, http://127.0.0.1:8080). With
--place-orders each order is first placed in the dev stack's emulated marketplace (outside the measured time),
so the workflows provision it instead of parking on an unknown order.

Run back to back on one machine, a run also measures the previous one's provisioning, which the worker and
Temporal carry on for a minute or more after its last call. --wait-idle waits after the warm-up, until the CPUs
have been 90% idle over 2 s (Linux), so every run starts from the same quiet machine.

  kooflow load -c 20 -n 2000
  kooflow load -c 20 --duration 60s --place-orders --market-ca .kooflow/emulator/emulator-ca.pem`,
		RunE: func(cmd *cobra.Command, _ []string) error { return runLoad(cmd, o) },
	}
	f := cmd.Flags()
	f.StringVar(&o.url, "url", "", "production interface URL (default http://$KOOFLOW_HTTP_ADDR$KOOGALLERY_PRODUCTION_PATH)")
	f.StringVar(&o.accessKey, "access-key", "", "access key that signs the calls (default $"+config.EnvAccessKey+", else kooflow dev's)")
	f.IntVarP(&o.concurrency, "concurrency", "c", 20, "concurrent clients")
	f.IntVarP(&o.requests, "requests", "n", 0, "measured calls in total (default 1000 unless --duration is set)")
	f.DurationVar(&o.duration, "duration", 0, "measure for this long instead of (or as well as) -n")
	f.IntVar(&o.warmup, "warmup", 40, "calls sent first and left out of the figures")
	f.BoolVar(&o.testFlag, "test-flag", false, `send the calls as dial tests (testFlag "1")`)
	f.StringVar(&o.prefix, "order-prefix", "LOAD", "prefix of the generated order ids")
	f.DurationVar(&o.timeout, "timeout", 10*time.Second, "per-call timeout")
	f.DurationVar(&o.maxP99, "max-p99", 0, "exit with an error if p99 latency exceeds this (0: report only)")
	f.BoolVar(&o.place, "place-orders", false, "place each order in the emulated marketplace first (kooflow dev)")
	f.StringVar(&o.marketURL, "market-url", "", "emulated marketplace URL (default $"+config.EnvMarketEndpoint+")")
	f.StringVar(&o.marketCA, "market-ca", "", "CA file of the emulated marketplace (default $"+config.EnvMarketCAFile+", else .kooflow/emulator/emulator-ca.pem)")
	f.DurationVar(&o.waitIdle, "wait-idle", 0, "after the warm-up, wait up to this long for the CPUs to be 90% idle over 2 s before measuring (0: do not wait)")
	f.Float64Var(&o.rate, "rate", 0, "open loop: start this many calls per second on a fixed schedule, whatever the latency (orders are placed first; latency counts from each call's slot)")
	return cmd
}

// target fills the production interface's URL and access key the flags left unset: from the configuration,
// else the development stack's key.
func (o *loadOptions) target(cfg config.Config) {
	if o.url == "" {
		o.url = "http://" + cfg.HTTPAddr + cfg.ProductionPath
	}
	if o.accessKey == "" {
		o.accessKey = cfg.AccessKey.Reveal()
	}
	if o.accessKey == "" {
		o.accessKey = devAccessKey
	}
}

func runLoad(cmd *cobra.Command, o loadOptions) error {
	cfg, err := config.FromEnv(config.OSLookup)
	if err != nil {
		return err
	}
	o.target(cfg)
	if o.requests == 0 && o.duration == 0 {
		o.requests = 1000
	}
	lo := loadgen.Options{
		URL: o.url, AccessKey: o.accessKey, Concurrency: o.concurrency, Requests: o.requests, Duration: o.duration,
		Warmup: o.warmup, TestFlag: o.testFlag, OrderPrefix: o.prefix, Timeout: o.timeout,
	}
	if o.waitIdle > 0 {
		lo.Settle = &loadgen.IdleWait{Idle: 0.9, Max: o.waitIdle}
	}
	if o.place {
		place, err := marketPlacer(cfg, o)
		if err != nil {
			return err
		}
		lo.Place = place
	}
	out := cmd.OutOrStdout()
	if o.rate > 0 {
		return runOpenLoad(cmd.Context(), out, lo, o)
	}
	fmt.Fprintf(out, "target %s, %d clients", o.url, o.concurrency)
	if o.requests > 0 {
		fmt.Fprintf(out, ", %d calls", o.requests)
	}
	if o.duration > 0 {
		fmt.Fprintf(out, ", for %s", o.duration)
	}
	fmt.Fprintf(out, " (+%d warm-up)\n", o.warmup)
	rep, err := loadgen.Run(cmd.Context(), lo)
	if err != nil {
		return err
	}
	rep.Write(out)
	if rep.Answered() == 0 {
		return errors.New("no call was answered")
	}
	if o.maxP99 > 0 && rep.Quantile(0.99) > o.maxP99 {
		return fmt.Errorf("p99 latency %s exceeds --max-p99 %s", rep.Quantile(0.99), o.maxP99)
	}
	return nil
}

// marketPlacer places each generated order in the emulated marketplace as a one-month purchase of the dev
// catalog's basic CRM plan.
func marketPlacer(cfg config.Config, o loadOptions) (func(ctx context.Context, orderID, lineID string) error, error) {
	if o.marketURL == "" {
		o.marketURL = cfg.MarketEndpoint
	}
	if o.marketCA == "" {
		o.marketCA = cfg.MarketCAFile
	}
	if o.marketCA == "" {
		o.marketCA = filepath.Join(".kooflow", "emulator", market.CAFileName)
	}
	pem, err := os.ReadFile(o.marketCA)
	if err != nil {
		return nil, fmt.Errorf("--place-orders needs the emulated marketplace's CA file (--market-ca): %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s holds no PEM certificate", o.marketCA)
	}
	ak, sk := cfg.MarketAK.Reveal(), cfg.MarketSK.Reveal()
	if ak == "" {
		ak, sk = devMarketAK, devMarketSK
	}
	remote := market.Remote{URL: o.marketURL, AK: ak, SK: sk, HTTP: &http.Client{Timeout: 10 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}, MaxIdleConnsPerHost: o.concurrency}}}
	return func(ctx context.Context, orderID, lineID string) error {
		now := time.Now().UTC()
		return remote.PutOrder(ctx, market.Order{
			OrderID: orderID, OrderType: market.TypeNew, CreateTime: now,
			Lines: []market.Line{{
				OrderLineID: lineID, ChargingMode: market.ChargingPeriod, PeriodType: "month", PeriodNumber: 1,
				ExpireTime: now.AddDate(0, 1, 0), ProductID: "OFFI-KOOFLOW-CRM-MONTHLY", SKUCode: "crm-basic-month",
				LinearValue: 1, ProductName: "Kooflow CRM (monthly)",
				ListAmount: decimal.RequireFromString("100.00"), PaidAmount: decimal.RequireFromString("100.00"),
			}},
			Buyer: &market.Buyer{CustomerID: "load-" + orderID, CustomerName: "load"},
		})
	}, nil
}
