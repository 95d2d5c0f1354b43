package main

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/kooflow/kooflow/api/webconsole"
	"github.com/kooflow/kooflow/internal/app"
	"github.com/kooflow/kooflow/internal/config"
	"github.com/kooflow/kooflow/internal/secrets"
)

// The link kooflow dev prints signs a browser in to the API that reads the same data keys, once.
func TestDevSigninLinkSignsInOnce(t *testing.T) {
	spec, err := secrets.NewKeySpec("dev")
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(t.TempDir(), "data-keys")
	if err := os.WriteFile(keyFile, []byte(spec+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{config.EnvConsoleTokens: "dev:" + devConsoleToken + ",customer:" + devCustomerToken + ":customer+read",
		config.EnvDataKeysFile: keyFile, config.EnvHTTPAddr: "127.0.0.1:8080"}
	var out strings.Builder
	printConsoleSignin(&out, &sync.Mutex{}, env, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if !strings.Contains(out.String(), "http://127.0.0.1:8080/console/") || !strings.Contains(out.String(), "/console/signin/link?t=") {
		t.Fatalf("banner lines: %q", out.String())
	}

	// The API process, configured from the same environment.
	cfg, err := config.FromEnv(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	keys, err := cfg.Keyring()
	if err != nil {
		t.Fatal(err)
	}
	tokens, _ := cfg.ParseConsoleTokens()
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	if _, err := webconsole.Mount(r, app.Deps{Config: cfg, Keys: keys, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}, tokens); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(r)
	defer srv.Close()
	link, err := devSigninLink(env, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noRedirect.Get(srv.URL + link)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	var signedIn bool
	for _, c := range resp.Cookies() {
		signedIn = signedIn || (c.Name == "kooflow_console" && c.Value != "")
	}
	if resp.StatusCode != http.StatusSeeOther || !signedIn {
		t.Fatalf("the link answered %d without a session", resp.StatusCode)
	}
	resp, err = noRedirect.Get(srv.URL + link)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("the link opened twice answered %d", resp.StatusCode)
	}
}
