// Package catalog maps the marketplace's productId/skuCode to what kooflow needs to know about a product: its
// name, whether it is under service supervision, its product type for settlement (general 通用 or
// joint-operation 联营) with the platform fee rate or revenue share, and where it is provisioned.
//
// The catalog is loaded from a JSON file at start. A product the file does not know gets a safe default
// (supervised, so nothing is settled before a person looks; general type; built-in provisioner) and Lookup
// reports it as unknown so callers can raise a visible warning.
package catalog

import (
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/shopspring/decimal"
)

// ProductType is the settlement category of a product.
type ProductType string

const (
	General        ProductType = "general"         // 通用商品: sales revenue minus the platform fee
	JointOperation ProductType = "joint-operation" // 联营商品: settled by the agreed revenue share
)

// Product is one catalog entry. SKUs may override the name and the provisioning target.
type Product struct {
	ProductID  string      `json:"productId"`
	Name       string      `json:"name"`
	Type       ProductType `json:"type"`
	Supervised bool        `json:"supervised"`
	// PlatformFeeRate is the share of sales revenue the platform keeps for general products (e.g. "0.05").
	PlatformFeeRate decimal.Decimal `json:"platformFeeRate"`
	// RevenueShare is the seller's share of sales revenue for joint-operation products (e.g. "0.70").
	RevenueShare decimal.Decimal `json:"revenueShare"`
	// Provisioning names the target: "builtin" (made-up access data, for demos), "webhook"
	// (KOOFLOW_PROVISIONER_URL), or "" for none named: the webhook when one is set, else KOOFLOW_PROVISIONER
	// decides (the default parks the order for a person).
	Provisioning string `json:"provisioning"`
	SKUs         []SKU  `json:"skus,omitempty"`
	// ChargingMode is how the product is sold, as the marketplace's order lines name it: PERIOD, ONE_TIME,
	// ON_DEMAND (pay-per-use, 按需) or ON_DEMAND_PKG (pay-per-use package, 按需套餐包). Empty means period or
	// one-time, as each SKU's period says.
	ChargingMode string `json:"chargingMode,omitempty"`
	// Usage is what a pay-per-use product or package meters; required for both, refused for the others.
	Usage *Usage `json:"usage,omitempty"`
	// Package is a pay-per-use package's quota and what happens when it is used up; required for packages only.
	Package *Package `json:"package,omitempty"`
}

// Charging modes (the order line's chargingMode).
const (
	ChargingPeriod      = "PERIOD"
	ChargingOneTime     = "ONE_TIME"
	ChargingOnDemand    = "ON_DEMAND"
	ChargingOnDemandPkg = "ON_DEMAND_PKG"
)

// Usage describes the metered usage of a pay-per-use product.
type Usage struct {
	// Unit names what one unit of usage is (e.g. "GB", "API call"); usage records count in it.
	Unit string `json:"unit"`
	// UnitPrice is the price of one unit in yuan, exact (at most 6 decimals); pay-per-use products only: a
	// package's price is its SKU's.
	UnitPrice decimal.Decimal `json:"unitPrice"`
}

// What a pay-per-use package does once its quota is used up.
const (
	// WhenUsedUpStop stops the service (用完即停): usage is deducted from the package, which is named on each
	// pushed record (relate_pkg_instance).
	WhenUsedUpStop = "stop"
	// WhenUsedUpSpillOver bills further usage to the related pay-per-use instance of SpillOverTo.
	WhenUsedUpSpillOver = "spill-over"
)

// Package describes a pay-per-use package.
type Package struct {
	// Quota is how many usage units the package holds, exact (at most 4 decimals, as usage values).
	Quota decimal.Decimal `json:"quota"`
	// WhenUsedUp is WhenUsedUpStop or WhenUsedUpSpillOver.
	WhenUsedUp string `json:"whenUsedUp"`
	// SpillOverTo is the pay-per-use product further usage is billed to (spill-over only); it must meter the
	// same unit.
	SpillOverTo string `json:"spillOverTo,omitempty"`
}

// PayPerUse says whether the product is sold by usage: pay-per-use or a pay-per-use package.
func (p Product) PayPerUse() bool {
	return p.ChargingMode == ChargingOnDemand || p.ChargingMode == ChargingOnDemandPkg
}

// SKU is one specification of a product.
type SKU struct {
	SKUCode   string          `json:"skuCode"`
	Name      string          `json:"name"`
	UnitPrice decimal.Decimal `json:"unitPrice"` // list price per period unit, yuan
	Period    string          `json:"period"`    // month, year, day, once
}

// Catalog is an immutable set of products, safe for concurrent use.
type Catalog struct {
	products map[string]Product
}

// File is the JSON document a catalog is loaded from.
type File struct {
	Products []Product `json:"products"`
}

// Load reads a catalog file; an empty path yields an empty catalog (every product gets the default).
func Load(path string) (*Catalog, error) {
	if path == "" {
		return New(nil)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read catalog: %w", err)
	}
	return Parse(b)
}

// DevSource is the Source that Open reports for the embedded development catalog.
const DevSource = "embedded development catalog"

// Open loads the catalog a process runs with: the file at path (KOOFLOW_CATALOG_FILE), or the embedded development
// catalog when path is empty. source says which, for logs and the console's catalog view. Every process loads
// its catalog once at start through Open and hands it to the parts that need it.
func Open(path string) (c *Catalog, source string, err error) {
	if path == "" {
		c, err = Parse(DevCatalog)
		return c, DevSource, err
	}
	c, err = Load(path)
	return c, path, err
}

// Parse reads a catalog document.
func Parse(b []byte) (*Catalog, error) {
	var f File
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("parse catalog: %w", err)
	}
	return New(f.Products)
}

// New validates products and builds a catalog.
func New(products []Product) (*Catalog, error) {
	c := &Catalog{products: map[string]Product{}}
	for i, p := range products {
		if p.ProductID == "" {
			return nil, fmt.Errorf("catalog product #%d: productId is empty", i+1)
		}
		if _, dup := c.products[p.ProductID]; dup {
			return nil, fmt.Errorf("catalog product %s: listed twice", p.ProductID)
		}
		if p.Type == "" {
			p.Type = General
		}
		if p.Type != General && p.Type != JointOperation {
			return nil, fmt.Errorf("catalog product %s: type %q must be %q or %q", p.ProductID, p.Type, General, JointOperation)
		}
		one := decimal.NewFromInt(1)
		if p.PlatformFeeRate.IsNegative() || p.PlatformFeeRate.GreaterThan(one) {
			return nil, fmt.Errorf("catalog product %s: platformFeeRate %s must be within [0, 1]", p.ProductID, p.PlatformFeeRate)
		}
		if p.RevenueShare.IsNegative() || p.RevenueShare.GreaterThan(one) {
			return nil, fmt.Errorf("catalog product %s: revenueShare %s must be within [0, 1]", p.ProductID, p.RevenueShare)
		}
		if p.Type == JointOperation && p.RevenueShare.IsZero() {
			return nil, fmt.Errorf("catalog product %s: joint-operation products need a revenueShare", p.ProductID)
		}
		if p.Provisioning != "" && p.Provisioning != "builtin" && p.Provisioning != "webhook" {
			return nil, fmt.Errorf("catalog product %s: provisioning %q must be builtin or webhook (or left out)", p.ProductID, p.Provisioning)
		}
		if err := checkCharging(p); err != nil {
			return nil, fmt.Errorf("catalog product %s: %w", p.ProductID, err)
		}
		c.products[p.ProductID] = p
	}
	// Spill-over targets are checked once every product is known.
	for _, p := range c.products {
		if p.Package == nil || p.Package.WhenUsedUp != WhenUsedUpSpillOver {
			continue
		}
		t, ok := c.products[p.Package.SpillOverTo]
		switch {
		case !ok:
			return nil, fmt.Errorf("catalog product %s: package.spillOverTo names %s, which the catalog does not list", p.ProductID, p.Package.SpillOverTo)
		case t.ChargingMode != ChargingOnDemand:
			return nil, fmt.Errorf("catalog product %s: package.spillOverTo names %s, which is not a pay-per-use (%s) product", p.ProductID, t.ProductID, ChargingOnDemand)
		case t.Usage.Unit != p.Usage.Unit:
			return nil, fmt.Errorf("catalog product %s: package.spillOverTo names %s, which meters %q, not %q", p.ProductID, t.ProductID, t.Usage.Unit, p.Usage.Unit)
		}
	}
	return c, nil
}

// checkCharging validates a product's charging mode against its usage and package declarations.
func checkCharging(p Product) error {
	switch p.ChargingMode {
	case "", ChargingPeriod, ChargingOneTime:
		if p.Usage != nil || p.Package != nil {
			return fmt.Errorf("usage and package are for %s and %s products only; chargingMode is %q", ChargingOnDemand, ChargingOnDemandPkg, p.ChargingMode)
		}
		return nil
	case ChargingOnDemand, ChargingOnDemandPkg:
	default:
		return fmt.Errorf("chargingMode %q must be %s, %s, %s or %s (or left out)", p.ChargingMode, ChargingPeriod, ChargingOneTime, ChargingOnDemand, ChargingOnDemandPkg)
	}
	if p.Usage == nil || strings.TrimSpace(p.Usage.Unit) == "" {
		return fmt.Errorf("a %s product needs usage.unit, the unit its usage is counted in", p.ChargingMode)
	}
	if p.ChargingMode == ChargingOnDemand {
		if p.Package != nil {
			return fmt.Errorf("package is for %s products only", ChargingOnDemandPkg)
		}
		if !p.Usage.UnitPrice.IsPositive() {
			return fmt.Errorf("usage.unitPrice %s must be a price in yuan greater than 0", p.Usage.UnitPrice)
		}
		if !p.Usage.UnitPrice.Equal(p.Usage.UnitPrice.Truncate(6)) {
			return fmt.Errorf("usage.unitPrice %s has more than 6 decimals", p.Usage.UnitPrice)
		}
		return nil
	}
	if !p.Usage.UnitPrice.IsZero() {
		return fmt.Errorf("usage.unitPrice is for %s products; a package is priced by its SKUs", ChargingOnDemand)
	}
	pk := p.Package
	if pk == nil {
		return fmt.Errorf("a %s product needs package: its quota and whenUsedUp", ChargingOnDemandPkg)
	}
	if !pk.Quota.IsPositive() || !pk.Quota.Equal(pk.Quota.Truncate(4)) {
		return fmt.Errorf("package.quota %s must be greater than 0 with at most 4 decimals", pk.Quota)
	}
	switch pk.WhenUsedUp {
	case WhenUsedUpStop:
		if pk.SpillOverTo != "" {
			return fmt.Errorf("package.spillOverTo is for whenUsedUp %q; this package stops when used up", WhenUsedUpSpillOver)
		}
	case WhenUsedUpSpillOver:
		if pk.SpillOverTo == "" {
			return fmt.Errorf("package.whenUsedUp %q needs spillOverTo, the pay-per-use product further usage is billed to", WhenUsedUpSpillOver)
		}
	default:
		return fmt.Errorf("package.whenUsedUp %q must be %q (用完即停) or %q", pk.WhenUsedUp, WhenUsedUpStop, WhenUsedUpSpillOver)
	}
	return nil
}

// Default is what an unknown product is treated as: supervised (so it is not settled before a person has looked),
// general, no platform fee configured, no provisioning named (so never the made-up access data of the built-in
// provisioner unless KOOFLOW_PROVISIONER=builtin says so).
func Default(productID string) Product {
	return Product{ProductID: productID, Name: "unknown product " + productID, Type: General, Supervised: true}
}

// Lookup returns the product; known is false when the catalog does not list it and the default was used.
func (c *Catalog) Lookup(productID string) (p Product, known bool) {
	if p, ok := c.products[productID]; ok {
		return p, true
	}
	return Default(productID), false
}

// SKU returns a product's SKU entry, if listed.
func (p Product) SKU(code string) (SKU, bool) {
	for _, s := range p.SKUs {
		if s.SKUCode == code {
			return s, true
		}
	}
	return SKU{}, false
}

// Products lists the catalog sorted by productId.
func (c *Catalog) Products() []Product {
	out := make([]Product, 0, len(c.products))
	for _, p := range c.products {
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ProductID < out[j].ProductID })
	return out
}
