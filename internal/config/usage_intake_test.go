package config

import (
	"strings"
	"testing"
	"time"
)

func TestUsageLateWindow(t *testing.T) {
	from := func(v string) (Config, error) {
		return FromEnv(func(k string) (string, bool) {
			if k == EnvUsageLateWindow && v != "" {
				return v, true
			}
			return "", false
		})
	}
	c, err := from("")
	if err != nil || c.UsageIntake.LateWindow != 7*24*time.Hour {
		t.Fatalf("default %v (%v)", c.UsageIntake.LateWindow, err)
	}
	if c, err = from("72h"); err != nil || c.UsageIntake.LateWindow != 72*time.Hour {
		t.Fatalf("72h: %v (%v)", c.UsageIntake.LateWindow, err)
	}
	for _, bad := range []string{"30m", "600h", "a week"} {
		if _, err := from(bad); err == nil || !strings.Contains(err.Error(), EnvUsageLateWindow) {
			t.Errorf("%s: %v", bad, err)
		}
	}
}
