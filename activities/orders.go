package activities

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/kooflow/kooflow/internal/metrics"

	"github.com/shopspring/decimal"

	"github.com/kooflow/kooflow/internal/instance"
	"github.com/kooflow/kooflow/internal/koogallery/orderquery"
)

// QueryOrderInput names the order to query and the order types the calling step expects.
type QueryOrderInput struct {
	InstanceID  string `json:"instanceId"`
	OrderID     string `json:"orderId"`
	OrderLineID string `json:"orderLineId"`
	// ProductID picks the pay-per-use billing item of the line the instance is for (newInstance named it);
	// empty reads the line's only product.
	ProductID string   `json:"productId,omitempty"`
	Expect    []string `json:"expect"` // acceptable orderType values
	// Record, when set, is the step's read-model write, applied once the order is queried (OrderRecord).
	Record *OrderRecord `json:"record,omitempty"`
}

// OrderFacts is what the workflow needs from one order line. It carries no personal data: of the buyer only the
// marketplace's customer id is kept.
type OrderFacts struct {
	OrderID      string           `json:"orderId"`
	OrderLineID  string           `json:"orderLineId"`
	OrderType    string           `json:"orderType"`
	ChargingMode string           `json:"chargingMode"`
	PeriodType   string           `json:"periodType,omitempty"`
	PeriodNumber int              `json:"periodNumber,omitempty"`
	Product      instance.Product `json:"product"`
	ExpireTime   *time.Time       `json:"expireTime,omitempty"`
	PlacedAt     *time.Time       `json:"placedAt,omitempty"`
	ListAmount   decimal.Decimal  `json:"listAmount"`
	PaidAmount   decimal.Decimal  `json:"paidAmount"`
	CustomerID   string           `json:"customerId,omitempty"`
	// Raw is the order as the marketplace answered it, minus the buyer's personal data, for orders.raw.
	Raw json.RawMessage `json:"raw,omitempty"`
	// Recorded says the query applied QueryOrderInput.Record.
	Recorded bool `json:"recorded,omitempty"`
}

// QueryOrder asks the marketplace what an order bought (docs/koogallery.md, "Order query"). Transport failures
// and the marketplace's retryable codes are returned as they are, so Temporal retries them with backoff; a
// terminal marketplace answer (unknown order, refused credentials) or an order that does not fit the step needs a
// person.
func (a *Lifecycle) QueryOrder(ctx context.Context, in QueryOrderInput) (facts OrderFacts, err error) {
	defer func() { a.Metrics.ObserveOrderQuery(queryOutcome(err)) }()
	if a.Orders == nil {
		return OrderFacts{}, needsPerson("the marketplace order query is not configured: set KOOGALLERY_AK, KOOGALLERY_SK and KOOGALLERY_API_ENDPOINT", nil)
	}
	info, err := a.queryOrder(ctx, in)
	a.recordQueryHealth(ctx, err)
	if err != nil {
		var qe *orderquery.Error
		if errors.As(err, &qe) && !qe.Retryable {
			return OrderFacts{}, needsPerson(fmt.Sprintf("the marketplace refused the query of order %s: %s %s", in.OrderID, qe.Code, qe.Message), err)
		}
		return OrderFacts{}, fmt.Errorf("query order %s: %w", in.OrderID, err)
	}
	facts, err = a.orderFacts(in, info)
	if err != nil {
		return OrderFacts{}, needsPerson(err.Error(), nil)
	}
	a.log().InfoContext(ctx, "order queried", "instance_id", in.InstanceID, "order_id", facts.OrderID,
		"order_type", facts.OrderType, "product_id", facts.Product.ProductID, "known_product", facts.Product.Known)
	facts.Recorded = a.recordOrder(ctx, in.InstanceID, &facts, in.Record)
	return facts, nil
}

// queryOutcome is the outcome label of an order query.
func queryOutcome(err error) string {
	switch {
	case err == nil:
		return metrics.OutcomeOK
	case IsNeedsPerson(err):
		return metrics.OutcomeNeedsPerson
	}
	return metrics.OutcomeRetryable
}

// orderFacts checks the answer against the step's expectations and extracts the order line.
func (a *Lifecycle) orderFacts(in QueryOrderInput, info *orderquery.OrderInfo) (OrderFacts, error) {
	if info == nil {
		return OrderFacts{}, fmt.Errorf("the marketplace answered the query of order %s without orderInfo", in.OrderID)
	}
	if info.OrderID != "" && info.OrderID != in.OrderID {
		return OrderFacts{}, fmt.Errorf("asked for order %s, the marketplace answered with order %s", in.OrderID, info.OrderID)
	}
	if len(in.Expect) > 0 && !slices.Contains(in.Expect, info.OrderType) {
		return OrderFacts{}, fmt.Errorf("order %s is a %s order, but this step expects %s", in.OrderID, info.OrderType, strings.Join(in.Expect, " or "))
	}
	var line *orderquery.OrderLine
	for i := range info.OrderLine {
		if info.OrderLine[i].OrderLineID == in.OrderLineID {
			line = &info.OrderLine[i]
		}
	}
	if line == nil && in.OrderLineID == "" && len(info.OrderLine) == 1 {
		line = &info.OrderLine[0]
	}
	if line == nil {
		return OrderFacts{}, fmt.Errorf("order %s has no order line %q (it has %d lines)", in.OrderID, in.OrderLineID, len(info.OrderLine))
	}
	pi, err := lineProduct(line, in.ProductID)
	if err != nil {
		return OrderFacts{}, err
	}
	paid, err := amount(line.CurrencyAfterDiscount)
	if err != nil {
		return OrderFacts{}, fmt.Errorf("order line %s: currencyAfterDiscount: %w", line.OrderLineID, err)
	}
	list, err := amount(line.Currency)
	if err != nil {
		return OrderFacts{}, fmt.Errorf("order line %s: currency: %w", line.OrderLineID, err)
	}
	f := OrderFacts{
		OrderID: in.OrderID, OrderLineID: line.OrderLineID, OrderType: info.OrderType,
		ChargingMode: line.ChargingMode, PeriodType: line.PeriodType, PeriodNumber: line.PeriodNumber,
		ListAmount: list, PaidAmount: paid,
	}
	if line.ExpireTime != "" {
		t, err := orderquery.ParseTime(line.ExpireTime)
		if err != nil {
			return OrderFacts{}, fmt.Errorf("order line %s: expireTime %q: %w", line.OrderLineID, line.ExpireTime, err)
		}
		f.ExpireTime = &t
	}
	if info.CreateTime != "" {
		if t, err := orderquery.ParseTime(info.CreateTime); err == nil {
			f.PlacedAt = &t
		}
	}
	p, known := a.Catalog.Lookup(pi.ProductID)
	name := p.Name
	if !known && pi.ProductName != "" {
		name = pi.ProductName
	}
	if sku, ok := p.SKU(pi.SKUCode); ok && sku.Name != "" {
		name = p.Name + " — " + sku.Name
	}
	qty := pi.LinearValue
	if qty <= 0 {
		qty = 1
	}
	f.Product = instance.Product{
		ProductID: pi.ProductID, SKUCode: pi.SKUCode, Quantity: qty, Name: name,
		ChargingMode: line.ChargingMode, PeriodType: line.PeriodType,
		Known: known, Supervised: p.Supervised, Provisioning: p.Provisioning,
	}
	if !known {
		f.Product.Provisioning = "" // the activity picks the webhook when configured, else the built-in one
	}
	if info.BuyerInfo != nil {
		f.CustomerID = info.BuyerInfo.CustomerID
	}
	f.Raw, err = redactedOrder(info)
	if err != nil {
		return OrderFacts{}, err
	}
	return f, nil
}

// amount parses the marketplace's decimal strings; empty means zero (trial lines).
func amount(s string) (decimal.Decimal, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return decimal.Zero, nil
	}
	d, err := decimal.NewFromString(s)
	if err != nil {
		return decimal.Zero, fmt.Errorf("%q is not a decimal amount", s)
	}
	return d, nil
}

// redactedOrder is the order without the buyer's personal data (phone, e-mail, names), so it can be kept in
// workflow history and orders.raw.
func redactedOrder(info *orderquery.OrderInfo) (json.RawMessage, error) {
	c := *info
	if info.BuyerInfo != nil {
		c.BuyerInfo = &orderquery.BuyerInfo{CustomerID: info.BuyerInfo.CustomerID, CustomerType: info.BuyerInfo.CustomerType}
	}
	b, err := json.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("encode order %s: %w", info.OrderID, err)
	}
	return b, nil
}

// lineProduct picks the product of an order line the instance is for. Every productInfo of the line is read: a
// line naming a product twice, or one without a productId, is refused rather than half read. A pay-per-use
// instance created for productID (newInstance named it) takes that product; otherwise the line must name one
// product, or several of a period or one-time line bought together, of which the first is the instance's (the
// marketplace sends one newInstance per period line, so kooflow provisions it as one instance).
func lineProduct(line *orderquery.OrderLine, productID string) (orderquery.ProductInfo, error) {
	if len(line.ProductInfo) == 0 {
		return orderquery.ProductInfo{}, fmt.Errorf("order line %s names no product", line.OrderLineID)
	}
	seen := make(map[string]bool, len(line.ProductInfo))
	for i, p := range line.ProductInfo {
		if p.ProductID == "" {
			return orderquery.ProductInfo{}, fmt.Errorf("order line %s: productInfo #%d has no productId", line.OrderLineID, i+1)
		}
		if seen[p.ProductID] {
			return orderquery.ProductInfo{}, fmt.Errorf("order line %s names product %s twice", line.OrderLineID, p.ProductID)
		}
		seen[p.ProductID] = true
	}
	if productID != "" {
		for _, p := range line.ProductInfo {
			if p.ProductID == productID {
				return p, nil
			}
		}
		return orderquery.ProductInfo{}, fmt.Errorf("newInstance named product %s, which order line %s does not bill (it bills %s)",
			productID, line.OrderLineID, productIDs(line.ProductInfo))
	}
	if len(line.ProductInfo) > 1 && (line.ChargingMode == chargingOnDemand || line.ChargingMode == chargingOnDemandPkg) {
		return orderquery.ProductInfo{}, fmt.Errorf("pay-per-use order line %s bills %d items (%s) but newInstance named none of them; "+
			"each item is its own instance, keyed by orderId + productId", line.OrderLineID, len(line.ProductInfo), productIDs(line.ProductInfo))
	}
	return line.ProductInfo[0], nil
}

// Pay-per-use charging modes of an order line.
const (
	chargingOnDemand    = "ON_DEMAND"
	chargingOnDemandPkg = "ON_DEMAND_PKG"
)

func productIDs(ps []orderquery.ProductInfo) string {
	ids := make([]string, len(ps))
	for i, p := range ps {
		ids[i] = p.ProductID
	}
	return strings.Join(ids, ", ")
}
