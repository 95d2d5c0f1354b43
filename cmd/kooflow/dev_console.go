package main

import (
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/kooflow/kooflow/api/webconsole"
	"github.com/kooflow/kooflow/internal/config"
)

// printConsoleSignin prints the web console's address and a one-time sign-in link for the first console token
// (the developer's), valid for ten minutes: opening it signs the browser in.
func printConsoleSignin(w io.Writer, mu *sync.Mutex, env map[string]string, log *slog.Logger) {
	link, err := devSigninLink(env, time.Now())
	if err != nil {
		log.Warn("no web console sign-in link", "err", err)
		return
	}
	mu.Lock()
	defer mu.Unlock()
	fmt.Fprintln(w, "  Web console          "+consoleBase(env)+"/console/")
	fmt.Fprintln(w, "  Sign in (once, 10 min) "+consoleBase(env)+link)
	fmt.Fprintln(w, "")
}

// consoleBase is the console listener's URL: KOOFLOW_CONSOLE_ADDR when set, else the API's.
func consoleBase(env map[string]string) string {
	addr := env[config.EnvConsoleAddr]
	if addr == "" {
		addr = env[config.EnvHTTPAddr]
	}
	if strings.HasPrefix(addr, ":") {
		addr = "127.0.0.1" + addr
	}
	return "http://" + addr
}

// devSigninLink seals a sign-in link for the first token of env's KOOFLOW_CONSOLE_TOKENS with env's data keys,
// which the API process opens with the same keys.
func devSigninLink(env map[string]string, now time.Time) (string, error) {
	cfg, err := config.FromEnv(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		return "", err
	}
	tokens, err := cfg.ParseConsoleTokens()
	if err != nil {
		return "", err
	}
	if len(tokens) == 0 {
		return "", fmt.Errorf("no console token configured (%s)", config.EnvConsoleTokens)
	}
	keys, err := cfg.Keyring()
	if err != nil {
		return "", err
	}
	return webconsole.SigninLink(keys, tokens[0], now)
}
