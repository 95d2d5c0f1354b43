package config

import (
	"fmt"
	"time"
)

// Environment of the usage intake (POST /usage/v1/records, docs/koogallery.md, "Usage intake").
const (
	EnvUsageLateWindow = "KOOFLOW_USAGE_LATE_WINDOW"

	// DefaultUsageLateWindow is how old a usage record may be and still be taken: a week, well inside the
	// marketplace's own limit (the older usage API refused records begun more than 21 days ago; the current one
	// answers 007 "record time expired" without saying when), so an accepted record can still be pushed.
	DefaultUsageLateWindow = 7 * 24 * time.Hour
)

// UsageIntakeConfig configures the usage intake.
type UsageIntakeConfig struct {
	// LateWindow bounds how long after its hourly window closed a record is still accepted
	// (KOOFLOW_USAGE_LATE_WINDOW, default 168h).
	LateWindow time.Duration
}

func usageIntakeFromEnv(get func(name, def string) string, errs *[]string) UsageIntakeConfig {
	u := UsageIntakeConfig{LateWindow: DefaultUsageLateWindow}
	if v := get(EnvUsageLateWindow, ""); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < time.Hour || d > 21*24*time.Hour {
			*errs = append(*errs, fmt.Sprintf("%s=%q must be a duration from 1h to 504h (21 days, the marketplace's documented limit)", EnvUsageLateWindow, v))
			return u
		}
		u.LateWindow = d
	}
	return u
}
