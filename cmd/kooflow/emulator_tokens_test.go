package main

import (
	"testing"

	"github.com/kooflow/kooflow/internal/config"
)

// The emulator acts for customers with another token than the seller's, so four eyes let its refund approvals
// through; kooflow dev's own configuration must give it one.
func TestEmulatorPicksACustomerToken(t *testing.T) {
	env := devEnv(devOptions{})
	cfg, err := config.FromEnv(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	toks, err := cfg.ParseConsoleTokens()
	if err != nil {
		t.Fatal(err)
	}
	seller, customer := consoleTokens(toks, "")
	if seller != devConsoleToken || customer != devCustomerToken {
		t.Fatalf("seller %q customer %q", seller, customer)
	}
	full := []config.ConsoleToken{{Name: "a", Token: "aaaaaaaaaaaaaaaa"}, {Name: "b", Token: "bbbbbbbbbbbbbbbb"},
		{Name: "c", Token: "cccccccccccccccc", Scopes: []config.Scope{config.ScopeCustomer}}}
	if s, c := consoleTokens(full, ""); s != "aaaaaaaaaaaaaaaa" || c != "cccccccccccccccc" {
		t.Fatalf("prefers the customer-only token: %q %q", s, c)
	}
	if s, c := consoleTokens(full[:1], ""); s != "aaaaaaaaaaaaaaaa" || c != "" {
		t.Fatalf("one token: %q %q", s, c)
	}
}
