package ledger

import (
	"testing"
	"time"

	"github.com/shopspring/decimal"
)

func TestUsageChargesEachMeteringSNOnce(t *testing.T) {
	u := NewUsage()
	at := time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC)
	if !u.Charge(UsageCharge{MeteringSN: "a", InstanceID: "i1", BeginTime: at, Value: decimal.RequireFromString("1.2345")}) {
		t.Fatal("first charge refused")
	}
	if u.Charge(UsageCharge{MeteringSN: "a", InstanceID: "i1", BeginTime: at, Value: decimal.RequireFromString("9")}) {
		t.Fatal("a repeated metering_sn was charged again")
	}
	u.Charge(UsageCharge{MeteringSN: "b", InstanceID: "i1", BeginTime: at.Add(-time.Hour), Value: decimal.RequireFromString("0.0005")})
	u.Charge(UsageCharge{MeteringSN: "c", InstanceID: "i2", BeginTime: at, Value: decimal.RequireFromString("7")})
	tot := u.Total("i1")
	if tot.Records != 2 || !tot.Value.Equal(decimal.RequireFromString("1.235")) {
		t.Fatalf("total of i1 = %+v, want 2 records worth 1.235", tot)
	}
	if cs := u.Charges("i1"); len(cs) != 2 || cs[0].MeteringSN != "b" {
		t.Fatalf("charges of i1 = %+v, want b then a", cs)
	}
}
