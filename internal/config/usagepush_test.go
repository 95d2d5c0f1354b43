package config

import (
	"strings"
	"testing"
)

func TestUsagePushFromEnv(t *testing.T) {
	c, err := FromEnv(env(nil))
	if err != nil || !c.UsagePush.Schedule || c.UsagePush.Minute != 5 {
		t.Fatalf("defaults: %+v %v", c.UsagePush, err)
	}
	c, err = FromEnv(env(map[string]string{EnvUsagePushSchedule: "off", EnvUsagePushMinute: "17"}))
	if err != nil || c.UsagePush.Schedule || c.UsagePush.Minute != 17 {
		t.Fatalf("set: %+v %v", c.UsagePush, err)
	}
	_, err = FromEnv(env(map[string]string{EnvUsagePushSchedule: "sometimes", EnvUsagePushMinute: "60"}))
	if err == nil || !strings.Contains(err.Error(), EnvUsagePushSchedule) || !strings.Contains(err.Error(), EnvUsagePushMinute) {
		t.Fatalf("bad values: %v", err)
	}
}
