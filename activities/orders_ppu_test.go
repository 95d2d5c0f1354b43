package activities

import (
	"strings"
	"testing"

	"github.com/kooflow/kooflow/internal/koogallery/orderquery"
)

// TestOrderLineProductsAreReadWhole: the instance's product is picked from every productInfo of its line, by the
// productId newInstance named for pay-per-use, and a line that cannot be read whole is refused with the reason.
func TestOrderLineProductsAreReadWhole(t *testing.T) {
	a := &Lifecycle{Catalog: devCatalog(t)}
	two := []orderquery.ProductInfo{{ProductID: "OFFI-KOOFLOW-API-PPU", SKUCode: "api-ppu", LinearValue: 1},
		{ProductID: "OFFI-KOOFLOW-STORAGE-PKG", SKUCode: "storage-pkg-10000", LinearValue: 2}}
	order := func(mode string, products []orderquery.ProductInfo) *orderquery.OrderInfo {
		return &orderquery.OrderInfo{OrderID: "CS1", OrderType: "NEW", OrderLine: []orderquery.OrderLine{
			{OrderLineID: "CS1-000001", ChargingMode: mode, ProductInfo: products}}}
	}
	in := QueryOrderInput{OrderID: "CS1", OrderLineID: "CS1-000001"}

	// Each billing item of a line is its own instance when newInstance names it.
	for _, p := range two {
		in.ProductID = p.ProductID
		f, err := a.orderFacts(in, order("ON_DEMAND", two))
		if err != nil || f.Product.ProductID != p.ProductID || f.Product.SKUCode != p.SKUCode || f.Product.Quantity != p.LinearValue ||
			f.Product.ChargingMode != "ON_DEMAND" || !f.Product.Known {
			t.Fatalf("%s: %+v %v", p.ProductID, f.Product, err)
		}
	}
	for _, tc := range []struct {
		productID, mode string
		products        []orderquery.ProductInfo
		want            string
	}{
		{"OFFI-OTHER", "ON_DEMAND", two, "which order line CS1-000001 does not bill"},
		{"", "ON_DEMAND", two, "newInstance named none of them"},
		{"", "ON_DEMAND_PKG", two, "newInstance named none of them"},
		{"", "ON_DEMAND", []orderquery.ProductInfo{two[0], two[0]}, "twice"},
		{"", "PERIOD", []orderquery.ProductInfo{two[0], {SKUCode: "x"}}, "productInfo #2 has no productId"},
		{"", "ON_DEMAND", nil, "names no product"},
	} {
		in.ProductID = tc.productID
		if _, err := a.orderFacts(in, order(tc.mode, tc.products)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s %s %v: %v, want %q", tc.productID, tc.mode, tc.products, err, tc.want)
		}
	}
	// No productId and one product: the line is the billing item.
	in.ProductID = ""
	if f, err := a.orderFacts(in, order("ON_DEMAND", two[:1])); err != nil || f.Product.ProductID != two[0].ProductID {
		t.Fatalf("%+v %v", f.Product, err)
	}
}
