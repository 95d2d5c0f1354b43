package console_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kooflow/kooflow/api/console"
	"github.com/kooflow/kooflow/internal/config"
	"github.com/kooflow/kooflow/internal/instance"
	"github.com/kooflow/kooflow/internal/koogallery"
	"github.com/kooflow/kooflow/internal/testenv"
)

// TestRenewalChangeThroughTheAPI: a renewal that changes the specification. The marketplace first asks
// changeInstanceCheck (answered by the workflow's Query), then sends refreshInstance with scene RENEWAL_CHANGE
// and a RENEW order for another SKU and quantity: the renewal is recorded from the old expiry, the provisioner
// applies the new specification, the instance takes it, and the run continues as new (one renewal per run here).
// The run's history is recorded.
func TestRenewalChangeThroughTheAPI(t *testing.T) {
	s := newStack(t, func(c *config.Config) { c.RenewalsPerRun = 1 })
	orderID := testenv.Unique("RCN")
	exp := time.Now().UTC().Truncate(time.Second).AddDate(0, 1, 0)
	line := s.order(orderID, "NEW", monthly, "crm-basic-month", 1, "100.00", exp)
	id := s.newInstance(orderID, line)
	wfID := instance.WorkflowID(id)
	d := s.waitFor(id, "provisioning", func(d console.InstanceDetail) bool { return d.Lifecycle == "ACTIVE" })
	if d.SKUCode != "crm-basic-month" || d.Quantity != 1 {
		t.Fatalf("instance after provisioning %+v", d.Instance)
	}
	run1 := s.runID(wfID)

	if r := s.mp(map[string]any{"activity": "changeInstanceCheck", "instanceId": id,
		"productInfo": map[string]any{"productId": monthly, "skuCode": "crm-pro-month", "linearValue": 3}}); r.ResultCode != "000000" {
		t.Fatalf("changeInstanceCheck %+v", r)
	}

	renewalID := testenv.Unique("RCH")
	exp2 := exp.AddDate(0, 1, 0)
	rline := s.order(renewalID, "RENEW", monthly, "crm-pro-month", 3, "900.00", exp2)
	if r := s.mp(map[string]any{"activity": "refreshInstance", "instanceId": id, "orderId": renewalID, "orderLineId": rline,
		"scene": instance.SceneRenewalChange, "expireTime": koogallery.FormatTime(exp2)}); r.ResultCode != "000000" {
		t.Fatalf("refreshInstance RENEWAL_CHANGE %+v", r)
	}
	d = s.waitFor(id, "the renewal change", func(d console.InstanceDetail) bool { return len(ordersOfType(d, "RENEW")) == 1 })
	r := ordersOfType(d, "RENEW")[0]
	if r.SKUCode != "crm-pro-month" || r.Quantity != 3 || r.PaidAmount != "900.000" || !r.EffectiveAt.Equal(exp) || !r.ExpireTime.Equal(exp2) {
		t.Fatalf("RENEW order %+v", r)
	}
	if d.SKUCode != "crm-pro-month" || d.Quantity != 3 || !d.ExpireTime.Equal(exp2) || d.Lifecycle != "ACTIVE" {
		t.Fatalf("instance after the renewal change %+v", d.Instance)
	}
	if k := kinds(d); !slices.Equal(k, []string{"accepted", "order", "provisioned", "renewed", "upgraded"}) {
		t.Fatalf("timeline %v", k)
	}
	if e := d.Timeline[len(d.Timeline)-1]; !strings.Contains(e.Summary, "crm-basic-month ×1 → crm-pro-month ×3 (done)") {
		t.Fatalf("the change event says %q", e.Summary)
	}
	s.waitForNewRun(wfID, run1, "the renewal change")
	keepHistory(t, s, wfID, run1, "renewal-change.json")
}
