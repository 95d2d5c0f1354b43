package gateway_test

import (
	"context"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/kooflow/kooflow/emulator/market"
	"github.com/kooflow/kooflow/internal/instance"
	"github.com/kooflow/kooflow/internal/koogallery"
	"github.com/kooflow/kooflow/internal/testenv"
	"github.com/kooflow/kooflow/usageclient"
)

const (
	ppuProduct = "OFFI-KOOFLOW-API-PPU"
	pkgProduct = "OFFI-KOOFLOW-API-PKG"
)

func ppuLine(lineID, mode, product, sku string) market.Line {
	return market.Line{OrderLineID: lineID, ChargingMode: mode, ProductID: product, SKUCode: sku, LinearValue: 1,
		ListAmount: decimal.Zero, PaidAmount: decimal.Zero}
}

// instanceFacts reads what the read model says of a pay-per-use instance.
func (s *stack) instanceFacts(id string) (lifecycle, mode, product string, ok bool) {
	err := s.pool.QueryRow(context.Background(), `SELECT lifecycle, charging_mode, product_id FROM instances WHERE instance_id = $1`, id).
		Scan(&lifecycle, &mode, &product)
	return lifecycle, mode, product, err == nil
}

// TestPayPerUsePurchaseThroughTheGateway: an order billing a pay-per-use item and a package, each announced by a
// newInstance naming its productId, becomes one instance per item (keyed orderId + productId, however often the
// call is delivered); a newInstance naming no productId is keyed by its order line. The instances record their
// chargingMode, take usage, and freeze, unfreeze and release like any other.
func TestPayPerUsePurchaseThroughTheGateway(t *testing.T) {
	s := newStack(t)
	order := testenv.Unique("CS")
	if err := s.market.PutOrder(market.Order{OrderID: order, OrderType: market.TypeNew, CreateTime: time.Now().UTC().Add(-time.Minute),
		Lines: []market.Line{
			ppuLine(order+"-000001", market.ChargingOnDemand, ppuProduct, "api-ppu"),
			ppuLine(order+"-000002", market.ChargingOnDemandPkg, pkgProduct, "api-pkg-1000"),
		},
		Buyer: &market.Buyer{CustomerID: "cust-" + order}}); err != nil {
		t.Fatal(err)
	}
	ppuID, pkgID := instance.PayPerUseID(order, ppuProduct), instance.PayPerUseID(order, pkgProduct)
	for i := 0; i < 3; i++ {
		for _, c := range []struct{ line, product, want string }{{"-000001", ppuProduct, ppuID}, {"-000002", pkgProduct, pkgID}} {
			body := string(koogallery.NewPayPerUseInstanceBody(order, order+c.line, c.product, koogallery.NewNonce()[:32], false))
			r := s.call(body)
			if r.resp.InstanceID != c.want || (r.resp.ResultCode != koogallery.ResultInProgress && r.resp.ResultCode != koogallery.ResultSuccess) {
				t.Fatalf("newInstance for %s, delivery %d: %s", c.product, i+1, r.raw)
			}
		}
	}
	for id, want := range map[string][2]string{ppuID: {market.ChargingOnDemand, ppuProduct}, pkgID: {market.ChargingOnDemandPkg, pkgProduct}} {
		s.eventually("instance "+id+" provisioned", func() bool {
			lc, mode, product, ok := s.instanceFacts(id)
			return ok && lc == "ACTIVE" && mode == want[0] && product == want[1]
		})
		if n := s.runs(id); n != 1 {
			t.Fatalf("%d runs of %s", n, id)
		}
	}
	if n := s.count(`SELECT count(*) FROM instances WHERE order_id = $1`, order); n != 2 {
		t.Fatalf("%d instances for the order, want one per billing item", n)
	}

	// The other reading: a newInstance without productId (the mock MOCKONDEMAND shape) is keyed by its line.
	mock := testenv.Unique("OD")
	if err := s.market.PutOrder(market.Order{OrderID: mock, OrderType: market.TypeNew, CreateTime: time.Now().UTC().Add(-time.Minute),
		Lines: []market.Line{ppuLine(mock+"-000001", market.ChargingOnDemand, ppuProduct, "api-ppu")}}); err != nil {
		t.Fatal(err)
	}
	lineID := instance.ID(mock, mock+"-000001")
	for i := 0; i < 2; i++ {
		if r := s.call(newInstanceBody(mock, mock+"-000001")); r.resp.InstanceID != lineID {
			t.Fatalf("newInstance without productId: %s", r.raw)
		}
	}
	s.eventually("the line-keyed instance provisioned", func() bool {
		lc, mode, product, ok := s.instanceFacts(lineID)
		return ok && lc == "ACTIVE" && mode == market.ChargingOnDemand && product == ppuProduct
	})

	// Usage: taken for the pay-per-use instances, through the console listener's intake.
	usage := &usageclient.Client{BaseURL: s.url, Token: consoleToken}
	now := time.Now().UTC()
	resp, err := usage.Send(context.Background(), []usageclient.Record{
		{ID: order + "-u1", InstanceID: ppuID, Value: decimal.RequireFromString("2.5"), Time: &now},
		{ID: order + "-u2", InstanceID: lineID, Value: decimal.RequireFromString("1"), Time: &now},
	})
	if err != nil || resp.Accepted != 2 {
		t.Fatalf("usage: %+v %v", resp, err)
	}

	// queryInstance reports the usage: cumulative for pay-per-use, used amount and the related pay-per-use instance
	// for the package, in one answer for all three.
	q := s.call(`{"activity":"queryInstance","instanceId":"`+ppuID+`,`+pkgID+`,`+lineID+`"}`).want(t, koogallery.ResultSuccess)
	if len(q.resp.Info) != 3 {
		t.Fatalf("queryInstance: %s", q.raw)
	}
	wantUsage := map[string][3]string{
		ppuID:  {"2.5", koogallery.FormatStatisticalTime(now.Truncate(time.Microsecond)), ""},
		lineID: {"1", koogallery.FormatStatisticalTime(now.Truncate(time.Microsecond)), ""},
		pkgID:  {"0", "", ppuID},
	}
	for _, info := range q.resp.Info {
		w := wantUsage[info.InstanceID]
		if len(info.UsageInfo) != 1 || info.AppInfo == nil {
			t.Fatalf("%s: %s", info.InstanceID, q.raw)
		}
		u := info.UsageInfo[0]
		if string(u.UsageValue) != w[0] || (w[1] != "" && u.StatisticalTime != w[1]) || len(u.StatisticalTime) != 17 || u.RelatedInstanceID != w[2] {
			t.Errorf("%s usageInfo %+v, want %v", info.InstanceID, u, w)
		}
	}

	// Freeze, unfreeze, release as for any product; released, the instance takes no more usage.
	freeze := `{"activity":"updateInstanceStatus","instanceId":"` + ppuID + `","status":"FREEZE"}`
	s.call(freeze).want(t, koogallery.ResultSuccess)
	s.eventually("frozen", func() bool { lc, _, _, _ := s.instanceFacts(ppuID); return lc == "FROZEN" })
	s.call(`{"activity":"updateInstanceStatus","instanceId":"`+ppuID+`","status":"UNFREEZE"}`).want(t, koogallery.ResultSuccess)
	s.eventually("active again", func() bool { lc, _, _, _ := s.instanceFacts(ppuID); return lc == "ACTIVE" })
	s.call(`{"activity":"releaseInstance","instanceId":"`+ppuID+`"}`).want(t, koogallery.ResultSuccess)
	s.eventually("released", func() bool { lc, _, _, _ := s.instanceFacts(ppuID); return lc == "RELEASED" })
	resp, err = usage.Send(context.Background(), []usageclient.Record{
		{ID: order + "-u3", InstanceID: ppuID, Value: decimal.RequireFromString("1"), Time: &now},
		{ID: order + "-u1", InstanceID: ppuID, Value: decimal.RequireFromString("2.5"), Time: &now},
	})
	if err != nil || resp.Results[0].Status != usageclient.Refused || resp.Results[1].Status != usageclient.Duplicate {
		t.Fatalf("usage after release: %+v %v", resp, err)
	}
	// The package instance is untouched by its sibling's release.
	if lc, _, _, _ := s.instanceFacts(pkgID); lc != "ACTIVE" {
		t.Fatalf("package instance %s", lc)
	}
}
