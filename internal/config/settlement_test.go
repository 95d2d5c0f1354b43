package config

import (
	"strings"
	"testing"
)

func TestSettlementDefaultsAndErrors(t *testing.T) {
	c, err := FromEnv(env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.SettlementDay != 3 || c.SettlementDayGeneral != 7 || c.SettlementHour != 10 || c.SettlementHolidays != "" ||
		c.SettlementThreshold.String() != "1000" || !c.SettlementSchedule {
		t.Fatalf("settlement defaults: %+v", c)
	}
	c, err = FromEnv(env(map[string]string{EnvSettlementDay: "5", EnvSettlementThreshold: "2500.50", EnvSettlementSchedule: "off",
		EnvSettlementHolidays: "/etc/kooflow/holidays.txt"}))
	if err != nil || c.SettlementDay != 5 || c.SettlementThreshold.String() != "2500.5" || c.SettlementSchedule ||
		c.SettlementHolidays != "/etc/kooflow/holidays.txt" {
		t.Fatalf("settlement overrides: %+v %v", c, err)
	}
	_, err = FromEnv(env(map[string]string{EnvSettlementDay: "31", EnvSettlementHour: "24", EnvSettlementThreshold: "-1",
		EnvSettlementSchedule: "sometimes", EnvSettlementDayGeneral: "seventh"}))
	for _, name := range []string{EnvSettlementDay, EnvSettlementHour, EnvSettlementThreshold, EnvSettlementSchedule, EnvSettlementDayGeneral} {
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("error %v does not name %s", err, name)
		}
	}
}
