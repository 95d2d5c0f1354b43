// Package orderquery is the client of the marketplace's order query API (docs/koogallery.md, "Order query"): an
// AK/SK-signed GET that tells the seller what was bought, since V2 production-interface calls carry no commercial
// data.
package orderquery

import (
	"context"
	"time"
)

// Response is the body of GET /api/mkp-openapi-public/global/v1/order/query.
type Response struct {
	ResultCode string     `json:"resultCode"`
	ResultMsg  string     `json:"resultMsg"`
	OrderInfo  *OrderInfo `json:"orderInfo,omitempty"`
}

// OrderInfo is one order. createTime is when the order was placed, not when it took effect.
type OrderInfo struct {
	OrderID      string        `json:"orderId"`
	OrderType    string        `json:"orderType"`
	CreateTime   string        `json:"createTime"` // yyyyMMddHHmmss, UTC
	OrderLine    []OrderLine   `json:"orderLine"`
	BuyerInfo    *BuyerInfo    `json:"buyerInfo,omitempty"`
	ExtendParams []ExtendParam `json:"extendParams,omitempty"`
}

// OrderLine is one line of an order.
type OrderLine struct {
	OrderLineID  string        `json:"orderLineId"`
	ChargingMode string        `json:"chargingMode"`
	PeriodType   string        `json:"periodType,omitempty"` // year, month, day, hour
	PeriodNumber int           `json:"periodNumber,omitempty"`
	ExpireTime   string        `json:"expireTime,omitempty"` // yyyyMMddHHmmss, UTC
	ProductInfo  []ProductInfo `json:"productInfo"`
	ExtendParams []ExtendParam `json:"extendParams,omitempty"`
	// Currency is, despite its name, the list amount as a decimal string ("100"); CurrencyAfterDiscount is
	// the amount payable after discount.
	Currency              string `json:"currency,omitempty"`
	CurrencyAfterDiscount string `json:"currencyAfterDiscount,omitempty"`
}

// ProductInfo names what a line bought; LinearValue is the quantity.
type ProductInfo struct {
	ProductID   string `json:"productId"`
	SKUCode     string `json:"skuCode"`
	LinearValue int64  `json:"linearValue"`
	ProductName string `json:"productName,omitempty"`
}

// BuyerInfo identifies the customer. It is personal data: keep it out of logs and search attributes.
type BuyerInfo struct {
	MobilePhone      *string `json:"mobilePhone"`
	Email            *string `json:"email"`
	CustomerID       string  `json:"customerId"`
	CustomerName     string  `json:"customerName,omitempty"`
	CustomerRealName string  `json:"customerRealName,omitempty"`
	CustomerType     int     `json:"customerType"`
	UserID           *string `json:"userId"`
	UserName         *string `json:"userName"`
}

// ExtendParam is a name/value pair.
type ExtendParam struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// Querier is what the lifecycle activities need from the order query API. Errors are classified: a *Error with
// Retryable false is terminal (unknown order, refused credentials); anything else may be retried.
type Querier interface {
	QueryOrder(ctx context.Context, orderID, orderLineID string) (*OrderInfo, error)
}

// Error is a marketplace error response, classified by the numeric suffix of its code (MKT.xxxx or CBC.xxxx).
type Error struct {
	HTTPStatus int
	Code       string
	Message    string
	Retryable  bool
}

func (e *Error) Error() string {
	return "order query: " + e.Code + " " + e.Message
}

// TimeLayout is the marketplace's yyyyMMddHHmmss time format (UTC).
const TimeLayout = "20060102150405"

// ParseTime parses a 14-digit (or 17-digit, with milliseconds) marketplace time as UTC.
func ParseTime(s string) (time.Time, error) {
	if len(s) == 17 {
		return time.ParseInLocation("20060102150405.000", s[:14]+"."+s[14:], time.UTC)
	}
	return time.ParseInLocation(TimeLayout, s, time.UTC)
}
