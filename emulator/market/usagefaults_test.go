package market

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"
)

// TestUsageControlRemote sets usage faults through the control API and reads back what was pushed and charged:
// a record refused by an injected code counts as pushed, not charged; a failed push counts as neither.
func TestUsageControlRemote(t *testing.T) {
	m, srv := startMarket(t)
	ctx := context.Background()
	r := Remote{URL: srv.URL, AK: testAK, SK: testSK, HTTP: srv.Client}
	m.PutInstance(Instance{InstanceID: "inst-a", ChargingMode: ChargingOnDemand, Status: "NORMAL"})
	m.PutInstance(Instance{InstanceID: "inst-b", ChargingMode: ChargingOnDemand, Status: "NORMAL"})
	ft := func(d time.Duration) string { return time.Now().UTC().Add(d).Format(usageTimeLayout) }
	rec := func(inst, sn, v string) string {
		return `{"begin_time":"` + ft(-2*time.Hour) + `","end_time":"` + ft(-time.Hour) + `","instance_id":"` + inst +
			`","metering_sn":"` + sn + `","record_time":"` + ft(-time.Minute) + `","usage_value":` + v + `}`
	}

	if err := r.SetUsageFaults(ctx, UsageFaults{FailNext: 1, RecordCodes: map[string]string{"inst-b": "013"}}); err != nil {
		t.Fatal(err)
	}
	body := `{"usage_records":[` + rec("inst-a", "a-1", "1.25") + `,` + rec("inst-b", "b-1", "2") + `]}`
	if status, resp := pushUsage(t, srv, body, testSellerKey, nil); status != 500 || resp.ErrorCode != "MKT.0999" {
		t.Fatalf("the injected failure: %d %+v", status, resp)
	}
	status, resp := pushUsage(t, srv, body, testSellerKey, nil)
	if status != 200 || len(resp.FailRecords) != 1 || resp.FailRecords[0].ErrorCode != "013" {
		t.Fatalf("after the failure: %d %+v", status, resp)
	}
	for id, want := range map[string][2]string{"inst-a": {"1.25", "1.25"}, "inst-b": {"2", "0"}} {
		p, err := r.Pushed(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		c, err := r.Charged(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if !p.Value.Equal(decimal.RequireFromString(want[0])) || !c.Value.Equal(decimal.RequireFromString(want[1])) {
			t.Errorf("%s: pushed %s charged %s, want %s and %s", id, p.Value, c.Value, want[0], want[1])
		}
	}
	if err := r.SetUsageFaults(ctx, UsageFaults{ErrorRate: 0.7, TimeoutRate: 0.7}); err == nil || !strings.Contains(err.Error(), "400") {
		t.Fatalf("rates above 1: %v", err)
	}
	if _, err := r.Charged(ctx, ""); err == nil {
		t.Fatal("a charge query without instanceId was answered")
	}
}
