package main

import (
	"bytes"
	"reflect"
	"sort"
	"strings"
	"testing"
)

// helpSections runs `kooflow <args> --help` and returns, per command section title ("Production commands ...:"),
// the names of the commands listed under it, sorted.
func helpSections(t *testing.T, args ...string) (map[string][]string, string) {
	t.Helper()
	root := newRootCmd()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(append(args, "--help"))
	if err := root.Execute(); err != nil {
		t.Fatalf("kooflow %s --help: %v", strings.Join(args, " "), err)
	}
	sections := map[string][]string{}
	title := ""
	for _, line := range strings.Split(out.String(), "\n") {
		switch {
		case line == "":
			title = ""
		case !strings.HasPrefix(line, " ") && strings.HasSuffix(line, ":"):
			title = ""
			if strings.Contains(strings.ToLower(line), "commands") { // not Usage:, Flags:
				title = line
			}
		case title != "" && strings.HasPrefix(line, "  ") && !strings.HasPrefix(strings.TrimSpace(line), "-"):
			sections[title] = append(sections[title], strings.Fields(line)[0])
		}
	}
	for _, names := range sections {
		sort.Strings(names)
	}
	return sections, out.String()
}

// section returns the commands of the one section whose title starts with prefix.
func section(t *testing.T, sections map[string][]string, help, prefix string) []string {
	t.Helper()
	var found []string
	n := 0
	for title, names := range sections {
		if strings.HasPrefix(title, prefix) {
			found, n = names, n+1
		}
	}
	if n != 1 {
		t.Fatalf("want exactly one section titled %q..., found %d in:\n%s", prefix, n, help)
	}
	return found
}

// TestHelpGroupsProductionApartFromDevelopment reads `kooflow --help` as a newcomer would: what a deployment
// runs under one title, what only belongs on a developer's machine under another, and nothing else left over.
func TestHelpGroupsProductionApartFromDevelopment(t *testing.T) {
	sections, help := helpSections(t)
	for prefix, want := range map[string][]string{
		"Production commands":  {"api", "healthcheck", "keys", "kit", "migrate", "recon", "settle", "usage", "worker"},
		"Development commands": {"bench", "dev", "emulator", "load"},
		"Additional Commands":  {"completion", "help"}, // cobra's own; any kooflow command here lacks a group
	} {
		if got := section(t, sections, help, prefix); !reflect.DeepEqual(got, want) {
			t.Errorf("%s: got %v, want %v\n%s", prefix, got, want, help)
		}
	}
	if len(sections) != 3 {
		t.Errorf("want three command sections, got %d: %v\n%s", len(sections), sections, help)
	}
	if !strings.Contains(help, "not for production") {
		t.Errorf("the development title must warn against production use:\n%s", help)
	}
}

// TestSettleHelpListsOnlyOperatorCommands: settle's own help groups its production subcommands; the benchmark is
// not among them, yet `kooflow settle bench` and `kooflow bench` both still resolve to it.
func TestSettleHelpListsOnlyOperatorCommands(t *testing.T) {
	sections, help := helpSections(t, "settle")
	if got, want := section(t, sections, help, "Production commands"), []string{"close", "estimate", "schedule"}; !reflect.DeepEqual(got, want) {
		t.Errorf("settle's production commands: got %v, want %v\n%s", got, want, help)
	}
	if len(sections) != 1 {
		t.Errorf("settle --help: want only the production section, got %v\n%s", sections, help)
	}
	if !strings.Contains(help, "kooflow bench") {
		t.Errorf("settle --help must point to the benchmark's new place:\n%s", help)
	}
	root := newRootCmd()
	for _, path := range [][]string{{"bench"}, {"settle", "bench"}} {
		c, rest, err := root.Find(path)
		if err != nil || len(rest) != 0 || c.Name() != "bench" || !c.Runnable() || c.Flags().Lookup("orders") == nil {
			t.Errorf("kooflow %s does not resolve to the settlement benchmark: %v %v %v", strings.Join(path, " "), c, rest, err)
		}
	}
	if _, help := helpSections(t, "settle", "bench"); !strings.Contains(help, "--orders") {
		t.Errorf("kooflow settle bench --help:\n%s", help)
	}
}
