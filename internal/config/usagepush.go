package config

import (
	"fmt"
	"strconv"
	"strings"
)

// Env names of the usage push.
const (
	EnvUsagePushSchedule = "KOOFLOW_USAGE_PUSH_SCHEDULE"
	EnvUsagePushMinute   = "KOOFLOW_USAGE_PUSH_MINUTE"
)

// UsagePushConfig configures the hourly usage push (docs/koogallery.md, "Usage push"). The push signs with
// KOOGALLERY_ACCESS_KEY and goes to KOOGALLERY_API_ENDPOINT (trusting KOOGALLERY_API_CA_FILE).
type UsagePushConfig struct {
	// Schedule: the worker keeps the hourly Temporal Schedule (KOOFLOW_USAGE_PUSH_SCHEDULE, default true).
	Schedule bool
	// Minute past each hour (UTC) the push runs at (KOOFLOW_USAGE_PUSH_MINUTE, default 5): records of the hour
	// that just closed have a few minutes to arrive, and later ones go as a further revision.
	Minute int
}

func usagePushFromEnv(get func(name, def string) string, errs *[]string) UsagePushConfig {
	u := UsagePushConfig{Schedule: true, Minute: 5}
	switch v := strings.ToLower(get(EnvUsagePushSchedule, "true")); v {
	case "true", "on", "1", "yes":
	case "false", "off", "0", "no":
		u.Schedule = false
	default:
		*errs = append(*errs, fmt.Sprintf("%s=%q must be true or false", EnvUsagePushSchedule, v))
	}
	m, err := strconv.Atoi(get(EnvUsagePushMinute, "5"))
	if err != nil || m < 0 || m > 59 {
		*errs = append(*errs, fmt.Sprintf("%s must be a minute from 0 to 59", EnvUsagePushMinute))
	} else {
		u.Minute = m
	}
	return u
}
