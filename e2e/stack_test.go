// Package e2e runs kooflow end to end against the KooGallery emulator: a real Temporal dev server, a real
// PostgreSQL, kooflow's real worker and real API served over HTTP, and the emulator's market (TLS, verified by
// kooflow's order-query client) and customers. Nothing is faked on either side of the wire.
package e2e

import (
	"io"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/kooflow/kooflow/emulator/market"
	"github.com/kooflow/kooflow/internal/config"
	"github.com/kooflow/kooflow/internal/logging"
	"github.com/kooflow/kooflow/internal/testenv"
	"github.com/kooflow/kooflow/internal/teststack"
)

func TestMain(m *testing.M) { testenv.Main(m) }

const (
	accessKey     = "e2e-access-key-0123456789abcdef"
	marketAK      = "E2EMARKETAK0000000001"
	marketSK      = "e2e-market-secret-key-0123456789"
	consoleToken  = "e2e-console-token-0123456789"
	customerToken = "e2e-customer-token-0123456789"
)

// stack is one kooflow (API + worker) wired to one emulator market.
type stack struct {
	cfg        config.Config
	market     *market.Market
	marketSrv  *market.Server
	apiURL     string
	sellerURL  string
	consoleURL string
	log        *slog.Logger
}

// startStack starts the emulator's market and a kooflow on a fresh database and task queue. window is the
// gateway's signature window.
func startStack(t *testing.T, window time.Duration) *stack {
	t.Helper()
	// The injected faults make the worker log activity errors by design; E2E_LOG=warn (or info) shows them.
	lvl, out := "error", io.Discard
	if v := os.Getenv("E2E_LOG"); v != "" {
		lvl, out = v, io.Writer(os.Stderr)
	}
	log, err := logging.New(out, "text", lvl)
	if err != nil {
		t.Fatal(err)
	}

	cfg, m, msrv := teststack.WithMarket(t, teststack.Keys{AccessKey: accessKey, MarketAK: marketAK, MarketSK: marketSK},
		market.Options{Log: log}, map[string]string{
			config.EnvTaskQueue:         testenv.TaskQueue(t),
			config.EnvSignatureWindow:   window.String(),
			config.EnvConsoleTokens:     "e2e:" + consoleToken + ",buyer:" + customerToken + ":customer+read",
			config.EnvProvisionerSecret: "e2e-provisioner-secret",
			config.EnvLogLevel:          lvl,
		})
	st := teststack.Start(t, cfg, teststack.Options{Log: log})
	return &stack{cfg: cfg, market: m, marketSrv: msrv, apiURL: st.URL, sellerURL: st.URL + cfg.ProductionPath,
		consoleURL: st.URL + "/console/v1", log: log}
}
