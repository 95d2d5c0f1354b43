package testenv

import (
	"os"
	"os/exec"
	"testing"
)

// Chromium returns the path of a Chromium (or Chrome) binary for browser tests: KOOFLOW_CHROMIUM when set (scripts/test
// sets it after installing Debian's chromium), otherwise the first one found on PATH. Browser tests are skipped under
// -short and when no browser is installed; scripts/test installs one, so CI always runs them.
func Chromium(t testing.TB) string {
	t.Helper()
	skipShort(t, "a headless Chromium")
	if p := os.Getenv("KOOFLOW_CHROMIUM"); p != "" {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("KOOFLOW_CHROMIUM=%s: %v", p, err)
		}
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Skip("no Chromium on this machine: ./scripts/test installs it (or set KOOFLOW_CHROMIUM)")
	return ""
}

// ChromiumFlags are the flags every headless browser test passes: no sandbox (tests may run as root), no GPU and no
// background traffic to the internet.
func ChromiumFlags() []string {
	return []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"}
}
