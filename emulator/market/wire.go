package market

// The marketplace's JSON, written from docs/koogallery.md ("Order query", "Usage push") and kept apart from
// kooflow's own client types (koogallery/orderquery) on purpose: if both sides shared one struct, a wrong field
// name would pass every test.

// queryResponse is the body of GET .../order/query, errors included.
type queryResponse struct {
	ResultCode string         `json:"resultCode"`
	ResultMsg  string         `json:"resultMsg"`
	OrderInfo  *wireOrderInfo `json:"orderInfo,omitempty"`
}

type wireOrderInfo struct {
	OrderID      string          `json:"orderId"`
	OrderType    string          `json:"orderType"`
	CreateTime   string          `json:"createTime"`
	OrderLine    []wireOrderLine `json:"orderLine"`
	BuyerInfo    *wireBuyerInfo  `json:"buyerInfo,omitempty"`
	ExtendParams []wireParam     `json:"extendParams"`
}

type wireOrderLine struct {
	OrderLineID           string            `json:"orderLineId"`
	ChargingMode          string            `json:"chargingMode"`
	PeriodType            string            `json:"periodType,omitempty"`
	PeriodNumber          int               `json:"periodNumber,omitempty"`
	ExpireTime            string            `json:"expireTime,omitempty"`
	ProductInfo           []wireProductInfo `json:"productInfo"`
	ExtendParams          []wireParam       `json:"extendParams"`
	Currency              string            `json:"currency"`
	CurrencyAfterDiscount string            `json:"currencyAfterDiscount"`
}

type wireProductInfo struct {
	ProductID   string `json:"productId"`
	SKUCode     string `json:"skuCode"`
	LinearValue int64  `json:"linearValue"`
	ProductName string `json:"productName"`
}

// wireBuyerInfo has explicit nulls where the captured mock response has them.
type wireBuyerInfo struct {
	MobilePhone      *string `json:"mobilePhone"`
	Email            *string `json:"email"`
	CustomerID       string  `json:"customerId"`
	CustomerName     string  `json:"customerName"`
	CustomerRealName string  `json:"customerRealName"`
	CustomerType     int     `json:"customerType"`
	UserID           *string `json:"userId"`
	UserName         *string `json:"userName"`
}

type wireParam struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// usageRequest is the body of POST .../isv/usage-data.
type usageRequest struct {
	UsageRecords []usageRecord `json:"usage_records"`
}

type usageRecord struct {
	InstanceID        string `json:"instance_id"`
	RecordTime        string `json:"record_time"`
	BeginTime         string `json:"begin_time"`
	EndTime           string `json:"end_time"`
	UsageValue        any    `json:"usage_value"` // a number, or a string (docs/koogallery.md, "Usage push")
	MeteringSN        string `json:"metering_sn"`
	RelatePkgInstance string `json:"relate_pkg_instance,omitempty"`
}

// usageResponse follows the documented error_code/error_msg envelope. The documents list per-record error codes
// but not where they appear; the emulator returns them in fail_records, one entry per refused record.
type usageResponse struct {
	ErrorCode   string       `json:"error_code"`
	ErrorMsg    string       `json:"error_msg"`
	FailRecords []failRecord `json:"fail_records,omitempty"`
}

type failRecord struct {
	MeteringSN string `json:"metering_sn"`
	InstanceID string `json:"instance_id"`
	ErrorCode  string `json:"error_code"`
	ErrorMsg   string `json:"error_msg"`
}
