package catalog

import (
	"strings"
	"testing"

	"github.com/shopspring/decimal"
)

func TestShippedCatalogsSellPayPerUse(t *testing.T) {
	for _, path := range []string{"", "../../deploy/catalog.json"} {
		c, source, err := Open(path)
		if err != nil {
			t.Fatalf("%s: %v", source, err)
		}
		ppu, ok := c.Lookup("OFFI-KOOFLOW-API-PPU")
		if !ok || ppu.ChargingMode != ChargingOnDemand || !ppu.PayPerUse() || !ppu.Usage.UnitPrice.Equal(decimal.RequireFromString("0.5")) {
			t.Errorf("%s: pay-per-use product %+v", source, ppu)
		}
		pkg, ok := c.Lookup("OFFI-KOOFLOW-API-PKG")
		if !ok || pkg.ChargingMode != ChargingOnDemandPkg || pkg.Package.WhenUsedUp != WhenUsedUpSpillOver || pkg.Package.SpillOverTo != ppu.ProductID {
			t.Errorf("%s: package %+v", source, pkg)
		}
		stop, ok := c.Lookup("OFFI-KOOFLOW-STORAGE-PKG")
		if !ok || stop.Package.WhenUsedUp != WhenUsedUpStop || !stop.Package.Quota.Equal(decimal.NewFromInt(10000)) {
			t.Errorf("%s: stop package %+v", source, stop)
		}
		if crm, _ := c.Lookup("OFFI-KOOFLOW-CRM-MONTHLY"); crm.PayPerUse() {
			t.Errorf("%s: the monthly CRM plan reads as pay-per-use", source)
		}
	}
}

func TestChargingDeclarationsAreValidated(t *testing.T) {
	const ppu = `{"productId":"P","chargingMode":"ON_DEMAND","usage":{"unit":"GB","unitPrice":"0.01"}}`
	for doc, want := range map[string]string{
		`{"productId":"X","chargingMode":"HOURLY"}`:                                                                                                  `chargingMode "HOURLY" must be`,
		`{"productId":"X","chargingMode":"ON_DEMAND"}`:                                                                                               "needs usage.unit",
		`{"productId":"X","chargingMode":"ON_DEMAND","usage":{"unit":"GB"}}`:                                                                         "unitPrice 0 must be",
		`{"productId":"X","chargingMode":"ON_DEMAND","usage":{"unit":"GB","unitPrice":"-1"}}`:                                                        "greater than 0",
		`{"productId":"X","chargingMode":"ON_DEMAND","usage":{"unit":"GB","unitPrice":"0.0000001"}}`:                                                 "more than 6 decimals",
		`{"productId":"X","chargingMode":"ON_DEMAND","usage":{"unit":"GB","unitPrice":1,"per":"h"}}`:                                                 "unknown field",
		`{"productId":"X","usage":{"unit":"GB","unitPrice":"1"}}`:                                                                                    "for ON_DEMAND and ON_DEMAND_PKG products only",
		`{"productId":"X","chargingMode":"PERIOD","package":{"quota":"1","whenUsedUp":"stop"}}`:                                                      "for ON_DEMAND and ON_DEMAND_PKG products only",
		`{"productId":"X","chargingMode":"ON_DEMAND_PKG","usage":{"unit":"GB"}}`:                                                                     "needs package",
		`{"productId":"X","chargingMode":"ON_DEMAND_PKG","usage":{"unit":"GB","unitPrice":"1"},"package":{"quota":"1","whenUsedUp":"stop"}}`:         "priced by its SKUs",
		`{"productId":"X","chargingMode":"ON_DEMAND_PKG","usage":{"unit":"GB"},"package":{"quota":"0","whenUsedUp":"stop"}}`:                         "package.quota 0",
		`{"productId":"X","chargingMode":"ON_DEMAND_PKG","usage":{"unit":"GB"},"package":{"quota":"1.00001","whenUsedUp":"stop"}}`:                   "at most 4 decimals",
		`{"productId":"X","chargingMode":"ON_DEMAND_PKG","usage":{"unit":"GB"},"package":{"quota":"1","whenUsedUp":"overdraw"}}`:                     `"overdraw" must be`,
		`{"productId":"X","chargingMode":"ON_DEMAND_PKG","usage":{"unit":"GB"},"package":{"quota":"1","whenUsedUp":"stop","spillOverTo":"P"}}`:       "this package stops",
		`{"productId":"X","chargingMode":"ON_DEMAND_PKG","usage":{"unit":"GB"},"package":{"quota":"1","whenUsedUp":"spill-over"}}`:                   "needs spillOverTo",
		`{"productId":"X","chargingMode":"ON_DEMAND_PKG","usage":{"unit":"GB"},"package":{"quota":"1","whenUsedUp":"spill-over","spillOverTo":"Q"}}`: "does not list",
		`{"productId":"X","chargingMode":"ON_DEMAND_PKG","usage":{"unit":"TB"},"package":{"quota":"1","whenUsedUp":"spill-over","spillOverTo":"P"}}`: `meters "GB", not "TB"`,
		`{"productId":"X","chargingMode":"ON_DEMAND_PKG","usage":{"unit":"GB"},"package":{"quota":"1","whenUsedUp":"spill-over","spillOverTo":"X"}}`: "not a pay-per-use",
		`{"productId":"X","chargingMode":"ON_DEMAND","usage":{"unit":"GB","unitPrice":"1"},"package":{"quota":"1","whenUsedUp":"stop"}}`:             "package is for ON_DEMAND_PKG",
	} {
		_, err := Parse([]byte(`{"products":[` + ppu + `,` + doc + `]}`))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", doc, err, want)
		}
	}
	c, err := Parse([]byte(`{"products":[` + ppu + `,{"productId":"K","chargingMode":"ON_DEMAND_PKG","usage":{"unit":"GB"},"package":{"quota":"5.5","whenUsedUp":"spill-over","spillOverTo":"P"}}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if k, _ := c.Lookup("K"); !k.PayPerUse() || !k.Package.Quota.Equal(decimal.RequireFromString("5.5")) {
		t.Fatalf("package %+v", k)
	}
}
