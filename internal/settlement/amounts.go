package settlement

import (
	"strings"

	"github.com/shopspring/decimal"

	"github.com/kooflow/kooflow/internal/catalog"
)

// Round is kooflow's one rounding rule for money: round half to even ("banker's rounding") to 0.01 yuan, applied
// to each figure of each bill line; bill totals are sums of rounded line figures and are never rounded again.
//
// Half-even is symmetric (Round(-x) = -Round(x)), so an order and its full refund produce exactly opposite
// lines and net to 0.00 in every column, and it has no upward bias over the many half-cent cases a month of
// fee calculations produces. The SQL function settlement_round in migrations/00004_settlement.sql implements
// the same rule; a test holds the two to the same answers.
func Round(d decimal.Decimal) decimal.Decimal { return d.RoundBank(2) }

// Terms is how one product is settled, as the catalog configures it.
type Terms struct {
	Type catalog.ProductType
	// Rate is the platform fee rate for general products and the seller's revenue share for joint-operation
	// products (both fractions of sales revenue, within [0, 1]).
	Rate decimal.Decimal
	// UnitPrice is the price of one unit of usage (yuan, exact) of a pay-per-use product, zero for every other
	// product: a close bills accepted usage at it, so usage of a product without one is never billed.
	UnitPrice decimal.Decimal
}

// TermsOf reads a catalog product's settlement terms.
func TermsOf(p catalog.Product) Terms {
	t := Terms{Type: catalog.General, Rate: p.PlatformFeeRate}
	if p.Type == catalog.JointOperation {
		t = Terms{Type: catalog.JointOperation, Rate: p.RevenueShare}
	}
	if p.ChargingMode == catalog.ChargingOnDemand && p.Usage != nil {
		t.UnitPrice = p.Usage.UnitPrice
	}
	return t
}

// Amounts are one bill line's figures, each rounded by Round; Revenue = PlatformFee + Settlement exactly.
type Amounts struct {
	// Revenue is the line's sales revenue (产品销售收入): the paid amount of the order line (negative for a
	// refund), see RevenueBase.
	Revenue decimal.Decimal `json:"revenue"`
	// PlatformFee is what the marketplace keeps: the platform fee (平台费) of a general product, or the
	// marketplace's part of a joint-operation product's revenue.
	PlatformFee decimal.Decimal `json:"platformFee"`
	// Settlement is what the seller is paid for the line (伙伴结算金额, tax included).
	Settlement decimal.Decimal `json:"settlement"`
}

// RevenueBase documents which figure of an order line is its sales revenue.
//
// The marketplace's formula is unit price × purchased duration × quantity. kooflow takes that product from the
// order itself, as the amount the customer actually paid for the line (orderLine.currencyAfterDiscount, stored
// as orders.paid_amount), not from the catalog's list unit price and not from the list amount
// (orderLine.currency), because:
//   - it is the marketplace's own unit price × duration × quantity at the price of that sale, after discounts:
//     settling on the list price would pay the seller for a discount the customer never paid;
//   - refunds are recorded in the same terms (a negotiated amount up to the amount paid), so an order and its
//     full refund cancel exactly, as the marketplace's own example requires (1200 − 1200 = 0);
//   - catalog prices change; an order's paid amount is fixed when it is placed.
//
// Each line also carries the list amount, and Explain shows the catalog's unit price × duration × quantity, so
// a discount is visible as list − revenue.
const RevenueBase = "orders.paid_amount (orderLine.currencyAfterDiscount)"

// Compute is the line arithmetic for a paid amount (negative for refunds) under terms t:
//
//	revenue    = Round(paid)
//	general:     fee = Round(revenue × feeRate);      settlement = revenue − fee
//	joint-op.:   settlement = Round(revenue × share);  fee = revenue − settlement
func Compute(paid decimal.Decimal, t Terms) Amounts {
	rev := Round(paid)
	if t.Type == catalog.JointOperation {
		s := Round(rev.Mul(t.Rate))
		return Amounts{Revenue: rev, PlatformFee: rev.Sub(s), Settlement: s}
	}
	fee := Round(rev.Mul(t.Rate))
	return Amounts{Revenue: rev, PlatformFee: fee, Settlement: rev.Sub(fee)}
}

// ComputeUsage is the line arithmetic of a pay-per-use line: the exact quantity × the exact unit price is the
// line's amount, rounded once (Compute); rounding the price or the quantity first would bill a different amount
// than the marketplace's unit price × usage.
func ComputeUsage(quantity, unitPrice decimal.Decimal, t Terms) Amounts {
	return Compute(quantity.Mul(unitPrice), t)
}

// Add sums two sets of amounts.
func (a Amounts) Add(b Amounts) Amounts {
	return Amounts{Revenue: a.Revenue.Add(b.Revenue), PlatformFee: a.PlatformFee.Add(b.PlatformFee),
		Settlement: a.Settlement.Add(b.Settlement)}
}

// MeetsThreshold is the carry-forward rule (docs/koogallery.md, "Settlement rules": "同一商品类型的账单累计出账达到1000元"):
// a product type's bill is produced only when the total seller settlement amount of everything eligible for it,
// including what earlier periods carried forward and pending adjustments, reaches the threshold. Otherwise
// nothing is settled and every line stays eligible for the next period, so the total accumulates month after
// month.
func MeetsThreshold(total, threshold decimal.Decimal) bool {
	return total.GreaterThanOrEqual(threshold)
}

// ListRevenue is the catalog's view of a line: unit price × duration × quantity. It is informational (see
// RevenueBase); ok is false when the order's period cannot be expressed in the SKU's price unit.
func ListRevenue(sku catalog.SKU, periodType string, periodNumber int, quantity int64) (decimal.Decimal, bool) {
	d, ok := Duration(sku.Period, periodType, periodNumber)
	if !ok || sku.UnitPrice.IsZero() {
		return decimal.Zero, false
	}
	if quantity <= 0 {
		quantity = 1
	}
	return sku.UnitPrice.Mul(d).Mul(decimal.NewFromInt(quantity)), true
}

// Duration expresses an order's purchased duration in the unit a SKU is priced by (month, year, day, once).
func Duration(skuPeriod, periodType string, periodNumber int) (decimal.Decimal, bool) {
	sp, pt := strings.ToLower(skuPeriod), strings.ToLower(periodType)
	n := decimal.NewFromInt(int64(periodNumber))
	switch {
	case sp == "once":
		return decimal.NewFromInt(1), true
	case periodNumber <= 0:
		return decimal.Zero, false
	case sp == pt:
		return n, true
	case sp == "month" && pt == "year":
		return n.Mul(decimal.NewFromInt(12)), true
	}
	return decimal.Zero, false
}
