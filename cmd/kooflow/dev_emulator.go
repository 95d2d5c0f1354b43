package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"

	"github.com/kooflow/kooflow/emulator/market"
	"github.com/kooflow/kooflow/internal/catalog"
	"github.com/kooflow/kooflow/internal/config"
)

// startDevMarket serves the KooGallery emulator's open APIs (order query, usage push) inside the `kooflow dev`
// process, at the address KOOGALLERY_API_ENDPOINT names, whenever that is a loopback address — which it is
// unless the developer pointed kooflow at a real marketplace. The worker queries every order there, so this runs
// before the worker starts. The emulator's CA file goes into the state directory and KOOGALLERY_API_CA_FILE
// tells the worker to trust it; certificate verification stays on.
func startDevMarket(env map[string]string, stateDir string, log *slog.Logger) (stop func() error, err error) {
	u, err := url.Parse(env[config.EnvMarketEndpoint])
	if err != nil || u.Scheme != "https" {
		return nil, fmt.Errorf("%s=%q: want an https URL", config.EnvMarketEndpoint, env[config.EnvMarketEndpoint])
	}
	if ip := net.ParseIP(u.Hostname()); u.Hostname() != "localhost" && (ip == nil || !ip.IsLoopback()) {
		log.Info("using the marketplace at "+u.Host+"; the local emulator is not started", "endpoint", u.String())
		return func() error { return nil }, nil
	}
	addr := u.Host
	if u.Port() == "" {
		addr = net.JoinHostPort(u.Hostname(), "443")
	}
	cat, _, err := catalog.Open(env[config.EnvCatalogFile])
	if err != nil {
		return nil, err
	}
	m, err := market.New(market.Options{
		AK: env[config.EnvMarketAK], SK: env[config.EnvMarketSK], SellerKey: env[config.EnvAccessKey],
		Log: log, Catalog: cat,
	})
	if err != nil {
		return nil, err
	}
	certDir := filepath.Join(stateDir, "emulator")
	srv, err := m.StartTLS(addr, certDir)
	if err != nil && os.Getenv(config.EnvMarketEndpoint) == "" {
		// The default port is taken (another kooflow dev, say) and nobody asked for it: any free loopback port
		// does, since the worker learns the endpoint from the environment set here.
		log.Warn("the emulator's default address is in use; picking a free port", "addr", addr, "err", err)
		srv, err = m.StartTLS(net.JoinHostPort(u.Hostname(), "0"), certDir)
	}
	if err != nil {
		return nil, fmt.Errorf("start the KooGallery emulator's APIs on %s (set %s to another loopback address): %w",
			addr, config.EnvMarketEndpoint, err)
	}
	env[config.EnvMarketEndpoint] = srv.URL
	env[config.EnvMarketCAFile] = srv.CAFile
	log.Info("KooGallery emulator: order query and usage APIs", "url", srv.URL, "ca_file", srv.CAFile)
	return srv.Close, nil
}

// emulatorDevExtra is the `kooflow dev --emulator` part: once the API is ready, a separate `kooflow emulator run
// --forever` process plays customers buying, renewing, upgrading and unsubscribing, so orders flow into the
// Temporal web UI within a minute of starting. It places its orders in the market startDevMarket serves, through
// the emulator's control API.
func emulatorDevExtra(_ context.Context, o devOptions, env map[string]string, start func(name string, args ...string) error) error {
	if !o.emulator {
		return nil
	}
	return start("emulator", "emulator", "run", "--forever", "--orders", "0", "--scale", "8640", "--interval", "3s")
}
