package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/kooflow/kooflow/internal/config"
	"github.com/kooflow/kooflow/internal/devstack"
	"github.com/kooflow/kooflow/internal/secrets"
	"github.com/kooflow/kooflow/internal/store"
)

// Development defaults. They are only ever used by `kooflow dev`, which binds everything to 127.0.0.1; the banner
// prints the ones a developer types.
const (
	devAccessKey     = "kooflow-dev-access-key-0123456789"
	devConsoleToken  = "kooflow-dev-console-token"
	devCustomerToken = "kooflow-dev-customer-token"
	devMarketAK      = "KOOFLOWDEVAK000000000"
	devMarketSK      = "kooflow-dev-secret-key-0123456789"
	devEmulatorAddr  = "127.0.0.1:8090"
	devProvisionerPW = "kooflow-dev-provisioner-secret"
)

type devOptions struct {
	stateDir     string
	binDir       string
	temporalPort int
	uiPort       int
	pgPort       int
	httpAddr     string
	emulator     bool
	alertsLog    bool
	// backgroundNice is the CPU niceness of the Temporal dev server and the worker.
	backgroundNice int
	// pprofPort, when set, serves the API's profiler on 127.0.0.1:pprofPort and the worker's on the next port.
	pprofPort int
}

func newDevCmd() *cobra.Command {
	var o devOptions
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run the whole stack locally: Temporal dev server + web UI, PostgreSQL, migrations, worker and API",
		Long: `dev starts, on 127.0.0.1 only: a Temporal dev server with its web UI (unless TEMPORAL_ADDRESS is set),
a private PostgreSQL cluster (unless DATABASE_URL is set), applies the migrations, then runs the worker and the
API as separate processes. State lives in --state-dir, so a second run keeps its data. Ctrl-C stops everything.`,
		RunE: func(cmd *cobra.Command, _ []string) error { return runDev(cmd.Context(), o) },
	}
	f := cmd.Flags()
	f.StringVar(&o.stateDir, "state-dir", ".kooflow", "directory holding all local state (Temporal SQLite file, PostgreSQL cluster)")
	f.StringVar(&o.binDir, "bin-dir", "bin", "project-local directory for the Temporal CLI (built there when missing)")
	f.IntVar(&o.temporalPort, "temporal-port", 7233, "Temporal frontend gRPC port")
	f.IntVar(&o.uiPort, "ui-port", 8233, "Temporal web UI port")
	f.IntVar(&o.pgPort, "pg-port", 55432, "private PostgreSQL port")
	f.StringVar(&o.httpAddr, "http-addr", "", "API listen address (default "+config.EnvHTTPAddr+" or "+config.DefaultHTTPAddr+")")
	f.IntVar(&o.backgroundNice, "background-nice", 10, "CPU niceness (0-19) of the Temporal dev server and the worker, so on one machine the API, which must answer the marketplace within 5 s, gets the CPU first; 0 disables")
	f.IntVar(&o.pprofPort, "pprof-port", 0, "serve the API's Go profiler on 127.0.0.1:PORT and the worker's on PORT+1 ("+config.EnvPprofAddr+"); 0 disables")
	f.BoolVar(&o.emulator, "emulator", false, "also run the KooGallery emulator and let it drive orders into kooflow")
	f.BoolVar(&o.alertsLog, "alerts-log", false, "print every alert the worker pushes (a local webhook for "+config.EnvAlertWebhookURL+")")
	return cmd
}

// devEnv fills every unset setting with a working development value and returns the environment the child
// processes get.
func devEnv(o devOptions) map[string]string {
	env := map[string]string{}
	set := func(k, v string) {
		if cur, ok := os.LookupEnv(k); ok && cur != "" {
			env[k] = cur
			return
		}
		env[k] = v
	}
	set(config.EnvTemporalNamespace, config.DefaultTemporalNamespace)
	set(config.EnvTaskQueue, config.DefaultTaskQueue)
	addr := o.httpAddr
	if addr == "" {
		addr = config.DefaultHTTPAddr
	}
	set(config.EnvHTTPAddr, addr)
	set(config.EnvAccessKey, devAccessKey)
	set(config.EnvMarketAK, devMarketAK)
	set(config.EnvMarketSK, devMarketSK)
	set(config.EnvMarketEndpoint, "https://"+devEmulatorAddr)
	// The operator's token has every scope; the customer's lets the emulator and demos act for customers, and
	// approving a refund it requested takes the other token (four eyes).
	set(config.EnvConsoleTokens, "dev:"+devConsoleToken+",customer:"+devCustomerToken+":customer+read,temporal-ui:"+devUIToken+":read+operate")
	set(config.EnvProvisionerSecret, devProvisionerPW)
	// Development delivers made-up access data for products that name no provisioning.
	set(config.EnvProvisioner, "builtin")
	if abs, err := filepath.Abs(filepath.Join(o.stateDir, "data-keys")); err == nil {
		set(config.EnvDataKeysFile, abs)
	}
	set(config.EnvLogLevel, "info")
	devCodecEnv(o, set)
	return env
}

func runDev(ctx context.Context, o devOptions) error {
	_, log, err := setup()
	if err != nil {
		return err
	}
	if o.backgroundNice < 0 || o.backgroundNice > 19 {
		return fmt.Errorf("--background-nice %d: must be within 0..19", o.backgroundNice)
	}
	if err := os.MkdirAll(o.stateDir, 0o755); err != nil {
		return fmt.Errorf("create state dir: %w", err)
	}
	stateDir, _ := filepath.Abs(o.stateDir)
	logDir := filepath.Join(stateDir, "logs")
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		return err
	}
	env := devEnv(o)
	if env[config.EnvDataKeys] == "" {
		path, err := ensureDevDataKey(env[config.EnvDataKeysFile])
		if err != nil {
			return err
		}
		env[config.EnvDataKeysFile] = path
	}
	var outMu sync.Mutex
	var stops []func() error // in start order; stopped in reverse
	stopAll := func() {
		for i := len(stops) - 1; i >= 0; i-- {
			if err := stops[i](); err != nil {
				log.Warn("stop", "err", err)
			}
		}
	}
	defer stopAll()

	// Temporal.
	uiURL := "(external server: see its own UI)"
	if addr := os.Getenv(config.EnvTemporalAddress); addr != "" {
		env[config.EnvTemporalAddress] = addr
	} else {
		cli, err := devstack.EnsureTemporalCLI(ctx, o.binDir, log)
		if err != nil {
			return err
		}
		tlog, err := os.OpenFile(filepath.Join(logDir, "temporal.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
		if err != nil {
			return err
		}
		defer tlog.Close()
		log.Info("starting Temporal dev server", "port", o.temporalPort, "ui_port", o.uiPort, "log", tlog.Name())
		t, err := devstack.StartTemporal(ctx, devstack.TemporalOptions{
			CLIPath: cli, Port: o.temporalPort, UIPort: o.uiPort,
			DBFile: filepath.Join(stateDir, "temporal", "temporal.db"), Namespace: env[config.EnvTemporalNamespace],
			Output: tlog, Nice: o.backgroundNice, CodecEndpoint: devCodecEndpoint(env),
		})
		if err != nil {
			return err
		}
		stops = append(stops, t.Stop)
		env[config.EnvTemporalAddress] = t.Address
		uiURL = t.UIURL
		if env[config.EnvTemporalUIURL] == "" {
			env[config.EnvTemporalUIURL] = t.UIURL // the web console links each instance's workflow there
		}
	}

	// PostgreSQL.
	pgCluster := "(external server)"
	if url := os.Getenv(config.EnvDatabaseURL); url != "" {
		env[config.EnvDatabaseURL] = url
	} else {
		plog, err := os.OpenFile(filepath.Join(logDir, "postgres.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
		if err != nil {
			return err
		}
		defer plog.Close()
		log.Info("starting private PostgreSQL", "port", o.pgPort, "dir", filepath.Join(stateDir, "postgres"))
		pg, err := devstack.StartPostgres(ctx, devstack.PostgresOptions{
			Dir: filepath.Join(stateDir, "postgres"), Port: o.pgPort, Database: "kooflow", Output: plog, Fsync: true})
		if err != nil {
			return err
		}
		stops = append(stops, pg.Stop)
		env[config.EnvDatabaseURL] = pg.URL("")
		pgCluster = pg.Dir + "  (run as " + pg.Owner + ")"
		if pg.Relocation != "" {
			// Root in a private checkout: say where the data went, since it is not under the state directory.
			log.Info("PostgreSQL cluster placed outside the state directory, where its account can reach it",
				"dir", pg.Dir, "owner", pg.Owner, "why", pg.Relocation)
			pgCluster += "\n                       outside the state directory because " + pg.Relocation
		}
	}
	if _, err := store.Migrate(ctx, env[config.EnvDatabaseURL], log); err != nil {
		return err
	}

	// Worker and API, each its own process as in production.
	self, err := os.Executable()
	if err != nil {
		return err
	}
	children := map[string]*devstack.Proc{}
	start := func(name string, args ...string) error {
		cmd := exec.Command(self, args...)
		if name == "worker" {
			cmd = devstack.Niced(cmd, o.backgroundNice)
		}
		cmd.Env = os.Environ()
		for k, v := range env {
			cmd.Env = append(cmd.Env, k+"="+v)
		}
		if port := devPprofPort(o.pprofPort, name); port > 0 {
			cmd.Env = append(cmd.Env, config.EnvPprofAddr+"=127.0.0.1:"+strconv.Itoa(port))
		}
		w := devstack.NewPrefixWriter(os.Stderr, name, &outMu)
		cmd.Stdout, cmd.Stderr = w, w
		p, err := devstack.StartProc(name, cmd, syscall.SIGTERM)
		if err != nil {
			return err
		}
		children[name] = p
		stops = append(stops, func() error { return p.Stop(syscall.SIGTERM, 25*time.Second) })
		return nil
	}
	// The emulator's order-query API answers the worker, so it runs before the worker starts.
	stopMarket, err := startDevMarket(env, stateDir, log)
	if err != nil {
		return err
	}
	stops = append(stops, stopMarket)
	if o.alertsLog {
		stopSink, err := startAlertSink(env, devstack.NewPrefixWriter(os.Stderr, "alerts", &outMu), &sync.Mutex{})
		if err != nil {
			return err
		}
		stops = append(stops, stopSink)
	}
	if err := start("worker", "worker"); err != nil {
		return err
	}
	if err := start("api", "api"); err != nil {
		return err
	}
	apiURL := "http://" + env[config.EnvHTTPAddr]
	if err := waitReady(ctx, apiURL+"/readyz", children["api"]); err != nil {
		return err
	}
	// With --emulator, the marketplace emulator drives customers into the running stack.
	if err := emulatorDevExtra(ctx, o, env, start); err != nil {
		return err
	}
	printBanner(os.Stderr, &outMu, env, uiURL, stateDir, pgCluster)
	printConsoleSignin(os.Stderr, &outMu, env, log)

	// Run until Ctrl-C or until a child dies on its own.
	select {
	case <-ctx.Done():
		log.Info("stopping: API, worker, then Temporal and PostgreSQL")
		return nil
	case <-exited(children):
		for name, p := range children {
			select {
			case <-p.Done():
				return fmt.Errorf("%s exited unexpectedly (%v); stopping the stack", name, p.Err())
			default:
			}
		}
		return errors.New("a child process exited")
	}
}

// devPprofPort is the profiler port of the dev stack's process name: the API's is base, the worker's base+1,
// others none.
func devPprofPort(base int, name string) int {
	switch {
	case base <= 0:
		return 0
	case name == "api":
		return base
	case name == "worker":
		return base + 1
	}
	return 0
}

func exited(children map[string]*devstack.Proc) <-chan struct{} {
	ch := make(chan struct{})
	for _, p := range children {
		go func(p *devstack.Proc) {
			<-p.Done()
			select {
			case ch <- struct{}{}:
			default:
			}
		}(p)
	}
	return ch
}

func waitReady(ctx context.Context, url string, p *devstack.Proc) error {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("API not ready at %s: %w", url, ctx.Err())
		case <-p.Done():
			return fmt.Errorf("API exited before it was ready: %v", p.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func printBanner(w io.Writer, mu *sync.Mutex, env map[string]string, uiURL, stateDir, pgCluster string) {
	mu.Lock()
	defer mu.Unlock()
	api := "http://" + env[config.EnvHTTPAddr]
	token := strings.SplitN(env[config.EnvConsoleTokens], ",", 2)[0]
	if parts := strings.Split(token, ":"); len(parts) > 1 {
		token = parts[1] // name:token or name:token:scopes
	}
	lines := []string{
		"",
		"kooflow is running (Ctrl-C stops everything)",
		"",
		"  API                  " + api,
		"  Production interface " + api + env[config.EnvProductionPath] + "  (POST, signed per KooGallery V2)",
		"  Console API          " + api + "/console/v1   (Authorization: Bearer " + token + ")",
		"  Metrics              " + api + "/metrics (API)  " + workerMetricsURL(env) + " (worker)",
		"  Temporal web UI      " + uiURL,
		"  Temporal frontend    " + env[config.EnvTemporalAddress] + "  namespace " + env[config.EnvTemporalNamespace],
		"  PostgreSQL           " + redactURL(env[config.EnvDatabaseURL]),
		"  Marketplace APIs     " + env[config.EnvMarketEndpoint] + "  (order query; the emulator's, unless set)",
		"  State directory      " + stateDir,
		"  PostgreSQL cluster   " + pgCluster,
		"",
		"  Try it:  curl -s -X POST -H 'Authorization: Bearer " + token + "' " + api + "/console/v1/selfcheck",
		"",
	}
	if env[config.EnvProductionPath] == "" {
		lines[4] = "  Production interface " + api + config.DefaultProductionPath + "  (POST, signed per KooGallery V2)"
	}
	for _, l := range lines {
		fmt.Fprintln(w, l)
	}
}

// workerMetricsURL is where the dev worker serves its metrics (KOOFLOW_WORKER_METRICS_ADDR or its default).
func workerMetricsURL(env map[string]string) string {
	addr := env[config.EnvWorkerMetricsAddr]
	if addr == "" {
		addr = config.DefaultWorkerMetricsAddr
	}
	if addr == "off" {
		return "off"
	}
	return "http://" + addr + "/metrics"
}

// redactURL hides the password of a postgres:// URL.
func redactURL(u string) string {
	at := strings.LastIndex(u, "@")
	scheme := strings.Index(u, "://")
	if at < 0 || scheme < 0 {
		return u
	}
	cred := u[scheme+3 : at]
	if user, _, ok := strings.Cut(cred, ":"); ok {
		return u[:scheme+3] + user + ":****" + u[at:]
	}
	return u
}

// ensureDevDataKey creates the development data key file (mode 0600) with one fresh key unless it exists, so the
// appInfo kooflow dev seals stays readable across runs; it returns the path.
func ensureDevDataKey(path string) (string, error) {
	if _, err := os.Stat(path); err == nil {
		return path, nil
	}
	spec, err := secrets.NewKeySpec("dev-" + time.Now().UTC().Format("20060102"))
	if err != nil {
		return "", err
	}
	content := "# kooflow dev's data key (KOOFLOW_DATA_KEYS_FILE): keyid:base64-of-32-bytes, the first seals\n" + spec + "\n"
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		return "", fmt.Errorf("write the development data key: %w", err)
	}
	return path, nil
}
