// Package market is the KooGallery emulator's open APIs: the order query (docs/koogallery.md, "Order query") and
// the pay-per-use usage push ("Usage push"), as an http.Handler that verifies the seller's AK/SK signatures
// exactly as the marketplace's API gateway does ("Other signature schemes"). It serves the orders the emulator's
// customers place (PutOrder) plus the marketplace's fixed debugging orders (MOCKPERIODYEARNEW, ...), and can
// inject the failures a real marketplace shows: 5xx answers and hanging requests at a chosen rate.
//
// Use it in-process from tests:
//
//	m, _ := market.New(market.Options{AK: ak, SK: sk, SellerKey: accessKey})
//	srv, _ := m.StartTLS("127.0.0.1:0", t.TempDir())  // KOOGALLERY_API_ENDPOINT=srv.URL, KOOGALLERY_API_CA_FILE=srv.CAFile
//	defer srv.Close()
//	m.PutOrder(market.Order{...})
//
// or as a process with `kooflow emulator serve`. The TLS certificate comes from a private CA whose PEM file the
// seller's client trusts explicitly, so kooflow keeps certificate verification on against the emulator.
package market

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shopspring/decimal"

	"github.com/kooflow/kooflow/emulator/ledger"
	"github.com/kooflow/kooflow/emulator/sign"
	"github.com/kooflow/kooflow/internal/catalog"
)

// API paths on the marketplace's host.
const (
	OrderQueryPath = "/api/mkp-openapi-public/global/v1/order/query"
	UsagePath      = "/api/mkp-openapi-public/global/v1/isv/usage-data"
)

// Order types (orderInfo.orderType).
const (
	TypeNew           = "NEW"
	TypeTrial         = "TRIAL"
	TypeTrialToFormal = "TRIAL_TO_FORMAL"
	TypeRenew         = "RENEW"
	TypeChange        = "CHANGE"
	TypeUnsubscribe   = "UNSUBSCRIBE"
)

// Charging modes (orderLine.chargingMode).
const (
	ChargingPeriod      = "PERIOD"
	ChargingOneTime     = "ONE_TIME"
	ChargingOnDemand    = "ON_DEMAND"
	ChargingOnDemandPkg = "ON_DEMAND_PKG"
)

// TimeLayout is the marketplace's yyyyMMddHHmmss (UTC) used in createTime and expireTime.
const TimeLayout = "20060102150405"

// Options configure a Market.
type Options struct {
	AK string // the seller's access key ID for the open APIs
	SK string // its secret
	// SellerKey is the seller's production-interface key (KOOGALLERY_ACCESS_KEY); the usage push's header
	// signature uses it (docs/koogallery.md, "Usage push"). Empty means usage pushes can only authenticate with
	// AK/SK.
	SellerKey string
	// DateSkew is how far X-Sdk-Date (and the usage push's ts) may be from Now; 15 minutes if zero, as the
	// API gateway allows.
	DateSkew time.Duration
	// Now is the wall clock used for signature freshness; time.Now if nil.
	Now func() time.Time
	// BusinessNow is the emulated marketplace time (usage record windows, mock order times); Now if nil.
	BusinessNow func() time.Time
	// Seed makes fault injection repeatable; 0 picks a random seed.
	Seed uint64
	Log  *slog.Logger
	// Usage is the ledger of charged pay-per-use usage; a fresh one if nil.
	Usage *ledger.Usage
	// Ledger is what the marketplace believes about its orders' money (bill.go bills it); a fresh one if nil.
	Ledger *ledger.Ledger
	// Catalog gives the products' settlement terms and usage prices for the bill; the development catalog if nil.
	Catalog *catalog.Catalog
}

// QueryFaults make the order query misbehave at a rate, as a marketplace under load does. Rates are in [0, 1].
type QueryFaults struct {
	ErrorRate   float64       `json:"errorRate"`   // answer 500 MKT.0999
	TimeoutRate float64       `json:"timeoutRate"` // hold the request for Hang (or until the caller gives up), then answer 504
	Hang        time.Duration `json:"hang"`        // 30 s if zero
}

// Order is one marketplace order, as the marketplace knows it.
type Order struct {
	OrderID      string    `json:"orderId"`
	OrderType    string    `json:"orderType"`
	CreateTime   time.Time `json:"createTime"` // when the customer placed it
	Lines        []Line    `json:"lines"`
	Buyer        *Buyer    `json:"buyer,omitempty"`
	ExtendParams []Param   `json:"extendParams,omitempty"`
}

// Line is one order line.
type Line struct {
	OrderLineID  string          `json:"orderLineId"`
	ChargingMode string          `json:"chargingMode"`
	PeriodType   string          `json:"periodType,omitempty"` // year, month, day, hour; empty for one-time and pay-per-use
	PeriodNumber int             `json:"periodNumber,omitempty"`
	ExpireTime   time.Time       `json:"expireTime,omitzero"` // zero for none
	ProductID    string          `json:"productId"`
	SKUCode      string          `json:"skuCode"`
	LinearValue  int64           `json:"linearValue"` // quantity
	ProductName  string          `json:"productName,omitempty"`
	ListAmount   decimal.Decimal `json:"listAmount"` // "currency" on the wire
	PaidAmount   decimal.Decimal `json:"paidAmount"` // "currencyAfterDiscount" on the wire
	ExtendParams []Param         `json:"extendParams,omitempty"`
}

// Buyer is the customer. MobilePhone and Email may be nil (the mock sends null).
type Buyer struct {
	CustomerID       string  `json:"customerId"`
	CustomerName     string  `json:"customerName,omitempty"`
	CustomerRealName string  `json:"customerRealName,omitempty"`
	CustomerType     int     `json:"customerType"`
	MobilePhone      *string `json:"mobilePhone,omitempty"`
	Email            *string `json:"email,omitempty"`
}

// Param is a name/value pair.
type Param struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// Instance is what the usage push needs to know about a seller instance.
type Instance struct {
	InstanceID   string `json:"instanceId"`
	OrderID      string `json:"orderId"`
	ChargingMode string `json:"chargingMode"`
	Status       string `json:"status"` // NORMAL, FROZEN or RELEASED
}

// UsageRecord is an accepted usage record.
type UsageRecord struct {
	InstanceID        string
	MeteringSN        string
	RecordTime        time.Time
	BeginTime         time.Time
	EndTime           time.Time
	Value             decimal.Decimal
	RelatePkgInstance string
}

// Stats counts what the APIs did.
type Stats struct {
	QueriesServed   int64 // 200 answers
	QueriesRefused  int64 // signature, parameter or unknown-order refusals
	QueriesFailed   int64 // injected 5xx
	QueriesHung     int64 // injected timeouts
	UsagePushes     int64 // authenticated usage requests
	UsageAccepted   int64 // records accepted
	UsageRejected   int64 // records refused with a per-record code
	UsageAuthFailed int64
}

// Market is the emulated marketplace API. It is safe for concurrent use.
type Market struct {
	opts Options
	log  *slog.Logger

	mu        sync.RWMutex
	orders    map[string]Order
	mocks     map[string]Order
	instances map[string]Instance
	usage     map[string]UsageRecord // by metering_sn
	nonces    map[string]time.Time   // usage-push nonces within the skew window
	faults    QueryFaults
	rng       *rand.Rand
	charges   *ledger.Usage
	usageF    UsageFaults
	received  map[string]receivedRecord // every well-formed record pushed, by metering_sn, charged or not

	queriesServed, queriesRefused, queriesFailed, queriesHung  atomic.Int64
	usagePushes, usageAccepted, usageRejected, usageAuthFailed atomic.Int64
}

// New builds a Market.
func New(o Options) (*Market, error) {
	if o.AK == "" || o.SK == "" {
		return nil, errors.New("market: AK and SK are required")
	}
	if o.DateSkew == 0 {
		o.DateSkew = 15 * time.Minute
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.BusinessNow == nil {
		o.BusinessNow = o.Now
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	seed := o.Seed
	if seed == 0 {
		seed = rand.Uint64()
	}
	m := &Market{
		opts:      o,
		log:       o.Log.With("component", "emulator.market"),
		orders:    map[string]Order{},
		instances: map[string]Instance{},
		usage:     map[string]UsageRecord{},
		nonces:    map[string]time.Time{},
		rng:       rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
	}
	m.charges = o.Usage
	if m.charges == nil {
		m.charges = ledger.NewUsage()
	}
	if m.opts.Ledger == nil {
		m.opts.Ledger = ledger.New()
	}
	if m.opts.Catalog == nil {
		c, err := catalog.Parse(catalog.DevCatalog)
		if err != nil {
			return nil, fmt.Errorf("market: the development catalog: %w", err)
		}
		m.opts.Catalog = c
	}
	m.mocks = mockOrders(o.BusinessNow().UTC())
	return m, nil
}

// PutOrder records an order so the order query serves it. Orders are immutable: putting the same ID again with
// different content is an error, putting an identical order is a no-op.
func (m *Market) PutOrder(o Order) error {
	if err := validateOrder(o); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, mock := m.mocks[o.OrderID]; mock {
		return fmt.Errorf("market: order %s: the MOCK* ids are reserved", o.OrderID)
	}
	if old, ok := m.orders[o.OrderID]; ok {
		a, _ := json.Marshal(toWire(old, ""))
		b, _ := json.Marshal(toWire(o, ""))
		if !bytes.Equal(a, b) {
			return fmt.Errorf("market: order %s already exists with other content", o.OrderID)
		}
		return nil
	}
	m.orders[o.OrderID] = o
	return nil
}

// Order returns an order placed with PutOrder or one of the MOCK* orders.
func (m *Market) Order(id string) (Order, bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if o, ok := m.orders[id]; ok {
		return o, true
	}
	o, ok := m.mocks[id]
	return o, ok
}

// Orders lists the orders placed with PutOrder, sorted by ID.
func (m *Market) Orders() []Order {
	m.mu.RLock()
	defer m.mu.RUnlock()
	out := make([]Order, 0, len(m.orders))
	for _, o := range m.orders {
		out = append(out, o)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].OrderID < out[j].OrderID })
	return out
}

// PutInstance tells the usage push about a seller instance (or updates its status).
func (m *Market) PutInstance(in Instance) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.instances[in.InstanceID] = in
}

// Usage returns the accepted usage records of an instance, by record time.
func (m *Market) Usage(instanceID string) []UsageRecord {
	m.mu.RLock()
	defer m.mu.RUnlock()
	var out []UsageRecord
	for _, u := range m.usage {
		if u.InstanceID == instanceID {
			out = append(out, u)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].RecordTime.Before(out[j].RecordTime) })
	return out
}

// SetQueryFaults changes the order query's failure rates; the zero value turns faults off.
func (m *Market) SetQueryFaults(f QueryFaults) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.faults = f
}

// Stats returns the counters.
func (m *Market) Stats() Stats {
	return Stats{
		QueriesServed: m.queriesServed.Load(), QueriesRefused: m.queriesRefused.Load(),
		QueriesFailed: m.queriesFailed.Load(), QueriesHung: m.queriesHung.Load(),
		UsagePushes: m.usagePushes.Load(), UsageAccepted: m.usageAccepted.Load(),
		UsageRejected: m.usageRejected.Load(), UsageAuthFailed: m.usageAuthFailed.Load(),
	}
}

// Handler serves the open APIs. Unknown paths get 404 with a resultCode body.
func (m *Market) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc(OrderQueryPath, m.serveOrderQuery)
	mux.HandleFunc(UsagePath, m.serveUsage)
	mux.Handle(ControlPrefix, m.controlHandler())
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusNotFound, queryResponse{ResultCode: "MKT.0199", ResultMsg: "no such API: " + r.Method + " " + r.URL.Path})
	})
	return mux
}

func (m *Market) serveOrderQuery(w http.ResponseWriter, r *http.Request) {
	refuse := func(status int, code, msg string) {
		m.queriesRefused.Add(1)
		m.log.Warn("order query refused", "code", code, "reason", msg, "remote", r.RemoteAddr)
		writeJSON(w, status, queryResponse{ResultCode: code, ResultMsg: msg})
	}
	if r.Method != http.MethodGet {
		refuse(http.StatusMethodNotAllowed, "MKT.0199", "Request parameter error: the order query is GET only")
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		refuse(http.StatusBadRequest, "MKT.0199", "Request parameter error: unreadable body")
		return
	}
	if err := verifyAKSK(r, body, m.opts.AK, m.opts.SK, m.opts.Now(), m.opts.DateSkew); err != nil {
		var ae *authError
		if errors.As(err, &ae) {
			refuse(http.StatusUnauthorized, ae.code, ae.msg)
			return
		}
		refuse(http.StatusUnauthorized, "MKT.0154", "Illegal token")
		return
	}
	if m.injectFault(w, r) {
		return
	}
	q := r.URL.Query()
	for k := range q {
		if k != "orderId" && k != "orderLineId" {
			refuse(http.StatusBadRequest, "MKT.0101", "Invalid parameter: unknown parameter "+k)
			return
		}
	}
	orderID, lineID := q.Get("orderId"), q.Get("orderLineId")
	if orderID == "" || len(orderID) > 64 || len(lineID) > 64 {
		refuse(http.StatusBadRequest, "MKT.0101", "Invalid parameter: orderId is required (at most 64 characters), orderLineId at most 64")
		return
	}
	o, ok := m.Order(orderID)
	if !ok {
		refuse(http.StatusBadRequest, "MKT.0101", "Invalid parameter: order "+orderID+" does not exist")
		return
	}
	wire := toWire(o, lineID)
	if len(wire.OrderLine) == 0 {
		refuse(http.StatusBadRequest, "MKT.0101", "Invalid parameter: order "+orderID+" has no line "+lineID)
		return
	}
	m.queriesServed.Add(1)
	writeJSON(w, http.StatusOK, queryResponse{ResultCode: "MKT.0000", ResultMsg: "Success", OrderInfo: &wire})
}

// injectFault applies the configured query faults; it reports whether it answered.
func (m *Market) injectFault(w http.ResponseWriter, r *http.Request) bool {
	m.mu.Lock()
	f := m.faults
	x := m.rng.Float64()
	m.mu.Unlock()
	switch {
	case x < f.ErrorRate:
		m.queriesFailed.Add(1)
		writeJSON(w, http.StatusInternalServerError, queryResponse{ResultCode: "MKT.0999", ResultMsg: "System internal error."})
		return true
	case x < f.ErrorRate+f.TimeoutRate:
		m.queriesHung.Add(1)
		hang := f.Hang
		if hang == 0 {
			hang = 30 * time.Second
		}
		t := time.NewTimer(hang)
		defer t.Stop()
		select {
		case <-r.Context().Done():
		case <-t.C:
		}
		writeJSON(w, http.StatusGatewayTimeout, queryResponse{ResultCode: "MKT.0999", ResultMsg: "System internal error: timed out."})
		return true
	}
	return false
}

func toWire(o Order, onlyLine string) wireOrderInfo {
	w := wireOrderInfo{
		OrderID:      o.OrderID,
		OrderType:    o.OrderType,
		CreateTime:   o.CreateTime.UTC().Format(TimeLayout),
		OrderLine:    []wireOrderLine{},
		ExtendParams: wireParams(o.ExtendParams),
	}
	if o.Buyer != nil {
		w.BuyerInfo = &wireBuyerInfo{
			MobilePhone: o.Buyer.MobilePhone, Email: o.Buyer.Email,
			CustomerID: o.Buyer.CustomerID, CustomerName: o.Buyer.CustomerName,
			CustomerRealName: o.Buyer.CustomerRealName, CustomerType: o.Buyer.CustomerType,
		}
	}
	for _, l := range o.Lines {
		if onlyLine != "" && l.OrderLineID != onlyLine {
			continue
		}
		wl := wireOrderLine{
			OrderLineID:  l.OrderLineID,
			ChargingMode: l.ChargingMode,
			PeriodType:   l.PeriodType,
			PeriodNumber: l.PeriodNumber,
			ProductInfo: []wireProductInfo{{
				ProductID: l.ProductID, SKUCode: l.SKUCode, LinearValue: l.LinearValue, ProductName: l.ProductName,
			}},
			ExtendParams:          wireParams(l.ExtendParams),
			Currency:              l.ListAmount.String(),
			CurrencyAfterDiscount: l.PaidAmount.String(),
		}
		if !l.ExpireTime.IsZero() {
			wl.ExpireTime = l.ExpireTime.UTC().Format(TimeLayout)
		}
		w.OrderLine = append(w.OrderLine, wl)
	}
	return w
}

func wireParams(ps []Param) []wireParam {
	out := make([]wireParam, 0, len(ps))
	for _, p := range ps {
		out = append(out, wireParam(p))
	}
	return out
}

func validateOrder(o Order) error {
	if o.OrderID == "" || len(o.OrderID) > 64 {
		return fmt.Errorf("market: order id %q must be 1 to 64 characters", o.OrderID)
	}
	switch o.OrderType {
	case TypeNew, TypeTrial, TypeTrialToFormal, TypeRenew, TypeChange, TypeUnsubscribe:
	default:
		return fmt.Errorf("market: order %s: unknown order type %q", o.OrderID, o.OrderType)
	}
	if o.CreateTime.IsZero() {
		return fmt.Errorf("market: order %s: createTime is required", o.OrderID)
	}
	if len(o.Lines) == 0 {
		return fmt.Errorf("market: order %s has no lines", o.OrderID)
	}
	seen := map[string]bool{}
	for _, l := range o.Lines {
		if l.OrderLineID == "" || len(l.OrderLineID) > 64 || seen[l.OrderLineID] {
			return fmt.Errorf("market: order %s: line id %q is empty, too long or repeated", o.OrderID, l.OrderLineID)
		}
		seen[l.OrderLineID] = true
		switch l.ChargingMode {
		case ChargingPeriod, ChargingOneTime, ChargingOnDemand, ChargingOnDemandPkg:
		default:
			return fmt.Errorf("market: order %s line %s: unknown charging mode %q", o.OrderID, l.OrderLineID, l.ChargingMode)
		}
		if l.ProductID == "" {
			return fmt.Errorf("market: order %s line %s: productId is required", o.OrderID, l.OrderLineID)
		}
		if l.ListAmount.IsNegative() || l.PaidAmount.IsNegative() {
			return fmt.Errorf("market: order %s line %s: amounts are never negative (a refund is an UNSUBSCRIBE order)", o.OrderID, l.OrderLineID)
		}
	}
	return nil
}

// mockOrders are the marketplace's fixed debugging orders (docs/koogallery.md, "Order query"), placed at now with
// line <id>-000001.
func mockOrders(now time.Time) map[string]Order {
	now = now.Truncate(time.Second)
	endOfDay := func(t time.Time) time.Time {
		return time.Date(t.Year(), t.Month(), t.Day(), 23, 59, 59, 0, time.UTC)
	}
	mk := func(id, typ, mode, period string, n int, expire time.Time, amount string) Order {
		a := decimal.RequireFromString(amount)
		return Order{
			OrderID: id, OrderType: typ, CreateTime: now,
			Lines: []Line{{
				OrderLineID: id + "-000001", ChargingMode: mode, PeriodType: period, PeriodNumber: n, ExpireTime: expire,
				ProductID: "OFFIMOCK" + strings.ToUpper(mode), SKUCode: "mock-sku-" + strings.ToLower(mode), LinearValue: 50,
				ProductName: "MOCK测试商品," + id, ListAmount: a, PaidAmount: a,
				ExtendParams: []Param{{"emailDomainName", "test.xxxx.com"}, {"ip", "127.0.0.1"}},
			}},
			Buyer: &Buyer{CustomerID: "68cbc86abc2018ab880d92f36422fa0e", CustomerName: "mock-customer",
				CustomerRealName: "MOCK", CustomerType: 0},
		}
	}
	list := []Order{
		mk("MOCKPERIODYEARNEW", TypeNew, ChargingPeriod, "year", 1, endOfDay(now.AddDate(1, 0, 0)), "100"),
		mk("MOCKONETIMENEW", TypeNew, ChargingOneTime, "", 0, time.Time{}, "100"),
		mk("MOCKONDEMAND", TypeNew, ChargingOnDemand, "", 0, time.Time{}, "0"),
		mk("MOCKONDEMANDPKG", TypeNew, ChargingOnDemandPkg, "", 0, endOfDay(now.AddDate(0, 1, 0)), "100"),
		mk("MOCKPERIODDAYTRIAL", TypeTrial, ChargingPeriod, "day", 7, endOfDay(now.AddDate(0, 0, 7)), "0"),
		mk("MOCKMONTYTRIALTOFORMAL", TypeTrialToFormal, ChargingPeriod, "month", 1, endOfDay(now.AddDate(0, 1, 0)), "100"),
		mk("MOCKMONTYUNSUBSCRIBE", TypeUnsubscribe, ChargingPeriod, "month", 1, endOfDay(now.AddDate(0, 1, 0)), "100"),
		mk("MOCKMONTYRENEW", TypeRenew, ChargingPeriod, "month", 1, endOfDay(now.AddDate(0, 2, 0)), "100"),
		mk("MOCKMONTYCHANGE", TypeChange, ChargingPeriod, "month", 1, endOfDay(now.AddDate(0, 1, 0)), "100"),
	}
	out := map[string]Order{}
	for _, o := range list {
		out[o.OrderID] = o
	}
	return out
}

// MockOrderIDs lists the fixed debugging order IDs the marketplace serves.
func MockOrderIDs() []string {
	return []string{"MOCKPERIODYEARNEW", "MOCKONETIMENEW", "MOCKONDEMAND", "MOCKONDEMANDPKG", "MOCKPERIODDAYTRIAL",
		"MOCKMONTYTRIALTOFORMAL", "MOCKMONTYUNSUBSCRIBE", "MOCKMONTYRENEW", "MOCKMONTYCHANGE"}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	w.WriteHeader(status)
	_, _ = w.Write(bytes.TrimRight(b.Bytes(), "\n"))
}

// ---- usage push ----

const usageTimeLayout = "20060102T150405Z"

func (m *Market) serveUsage(w http.ResponseWriter, r *http.Request) {
	fail := func(status int, code, msg string) {
		m.log.Warn("usage push refused", "code", code, "reason", msg, "remote", r.RemoteAddr)
		writeJSON(w, status, usageResponse{ErrorCode: code, ErrorMsg: msg})
	}
	if r.Method != http.MethodPost {
		fail(http.StatusMethodNotAllowed, "MKT.0199", "Request parameter error: the usage push is POST only")
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 4<<20))
	if err != nil {
		fail(http.StatusBadRequest, "MKT.0199", "Request parameter error: unreadable body")
		return
	}
	if status, code, msg := m.authenticateUsage(r, body); code != "" {
		m.usageAuthFailed.Add(1)
		fail(status, code, msg)
		return
	}
	m.usagePushes.Add(1)
	if m.injectUsageFault(w, r) {
		return
	}
	var req usageRequest
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		fail(http.StatusBadRequest, "MKT.0101", "Invalid parameter: "+err.Error())
		return
	}
	if len(req.UsageRecords) == 0 {
		fail(http.StatusBadRequest, "MKT.0199", "Request parameter error: usage_records is empty")
		return
	}
	if len(req.UsageRecords) > 1000 {
		fail(http.StatusInternalServerError, "MKT.9003", "Usage records extends size limit.")
		return
	}
	now := m.opts.BusinessNow().UTC()
	var fails []failRecord
	m.mu.Lock()
	inRequest := map[string]bool{}
	for _, rec := range req.UsageRecords {
		m.noteReceived(rec)
		code, msg, accepted := m.checkRecord(rec, now, inRequest)
		if code != "" {
			fails = append(fails, failRecord{MeteringSN: rec.MeteringSN, InstanceID: rec.InstanceID, ErrorCode: code, ErrorMsg: msg})
			continue
		}
		inRequest[rec.MeteringSN] = true
		m.usage[rec.MeteringSN] = accepted
		m.charges.Charge(ledger.UsageCharge{MeteringSN: accepted.MeteringSN, InstanceID: accepted.InstanceID,
			BeginTime: accepted.BeginTime, EndTime: accepted.EndTime, Value: accepted.Value,
			RelatePkgInstance: accepted.RelatePkgInstance, ChargedAt: now})
	}
	m.mu.Unlock()
	m.usageAccepted.Add(int64(len(req.UsageRecords) - len(fails)))
	m.usageRejected.Add(int64(len(fails)))
	if len(fails) > 0 {
		m.log.Warn("usage records refused", "refused", len(fails), "of", len(req.UsageRecords))
	}
	writeJSON(w, http.StatusOK, usageResponse{ErrorCode: "MKT.0000", ErrorMsg: "success", FailRecords: fails})
}

// authenticateUsage accepts the documented header signature (signature/ts/nonce under the seller key) and, if an
// Authorization header is present, requires the AK/SK signature to verify as well. A request with neither is
// refused.
func (m *Market) authenticateUsage(r *http.Request, body []byte) (int, string, string) {
	sig, ts, nonce := r.Header.Get("signature"), r.Header.Get("ts"), r.Header.Get("nonce")
	hasHeaderSig := sig != "" || ts != "" || nonce != ""
	hasAKSK := r.Header.Get("Authorization") != ""
	if !hasHeaderSig && !hasAKSK {
		return http.StatusUnauthorized, "MKT.0154", "Illegal token: the request carries no signature"
	}
	if hasAKSK {
		if err := verifyAKSK(r, body, m.opts.AK, m.opts.SK, m.opts.Now(), m.opts.DateSkew); err != nil {
			var ae *authError
			if errors.As(err, &ae) {
				return http.StatusUnauthorized, ae.code, ae.msg
			}
			return http.StatusUnauthorized, "MKT.0154", "Illegal token"
		}
	}
	if !hasHeaderSig {
		return 0, "", ""
	}
	if sig == "" || ts == "" || nonce == "" || len(nonce) > 64 || len(ts) > 20 {
		return http.StatusBadRequest, "MKT.0199", "Request parameter error: signature, ts and nonce headers are all required"
	}
	if m.opts.SellerKey == "" {
		return http.StatusBadRequest, "MKT.0102", "Invalid body sign: no seller key is bound for header signatures"
	}
	var ms int64
	if _, err := fmt.Sscan(ts, &ms); err != nil {
		return http.StatusBadRequest, "MKT.0199", "Request parameter error: ts must be Unix milliseconds"
	}
	now := m.opts.Now()
	if d := now.Sub(time.UnixMilli(ms)); d > m.opts.DateSkew || d < -m.opts.DateSkew {
		return http.StatusBadRequest, "MKT.0102", "Invalid body sign: ts is outside the accepted window"
	}
	if err := sign.VerifyUsageSignature(m.opts.SellerKey, ts, nonce, sig, body); err != nil {
		return http.StatusBadRequest, "MKT.0102", "Invalid body sign"
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for n, at := range m.nonces {
		if now.Sub(at) > 2*m.opts.DateSkew {
			delete(m.nonces, n)
		}
	}
	if _, seen := m.nonces[nonce]; seen {
		return http.StatusBadRequest, "MKT.0102", "Invalid body sign: nonce already used"
	}
	m.nonces[nonce] = now
	return 0, "", ""
}

// checkRecord validates one usage record against the per-record codes of docs/koogallery.md ("Usage push"). The
// caller holds m.mu.
func (m *Market) checkRecord(rec usageRecord, now time.Time, inRequest map[string]bool) (string, string, UsageRecord) {
	var u UsageRecord
	if rec.MeteringSN == "" {
		return "004", "metering_sn is missing", u
	}
	if len(rec.MeteringSN) > 64 {
		return "004", "metering_sn is longer than 64 characters", u
	}
	if inRequest[rec.MeteringSN] {
		return "010", "duplicate record in the same request", u
	}
	if _, dup := m.usage[rec.MeteringSN]; dup {
		return "005", "metering_sn already received", u
	}
	if code, ok := m.usageF.RecordCodes[rec.InstanceID]; ok {
		return code, "injected: per-record code " + code, u
	}
	in, ok := m.instances[rec.InstanceID]
	if !ok {
		return "001", "instance " + rec.InstanceID + " does not exist", u
	}
	if in.ChargingMode != ChargingOnDemand && in.ChargingMode != ChargingOnDemandPkg {
		return "012", "instance is not a pay-per-use resource", u
	}
	if in.Status != "" && in.Status != "NORMAL" {
		return "013", "instance status is " + in.Status, u
	}
	var err error
	parse := func(s string) time.Time {
		t, e := time.ParseInLocation(usageTimeLayout, s, time.UTC)
		if e != nil && err == nil {
			err = e
		}
		return t
	}
	u.RecordTime, u.BeginTime, u.EndTime = parse(rec.RecordTime), parse(rec.BeginTime), parse(rec.EndTime)
	if err != nil {
		return "002", "times must be yyyyMMddTHHmmssZ", u
	}
	if !u.BeginTime.Before(u.EndTime) || u.EndTime.After(u.RecordTime.Add(time.Minute)) {
		return "011", "begin_time must precede end_time, which may not follow record_time", u
	}
	if now.Sub(u.BeginTime) > 21*24*time.Hour {
		return "007", "begin_time is more than 21 days old", u
	}
	v, err := decimal.NewFromString(strings.TrimSpace(fmt.Sprint(rec.UsageValue)))
	if err != nil || !v.IsPositive() || !v.Equal(v.Round(4)) {
		return "003", "usage_value must be a positive number with at most 4 decimals", u
	}
	if rec.RelatePkgInstance != "" {
		if _, ok := m.instances[rec.RelatePkgInstance]; !ok {
			return "001", "relate_pkg_instance " + rec.RelatePkgInstance + " does not exist", u
		}
	}
	u.InstanceID, u.MeteringSN, u.Value, u.RelatePkgInstance = rec.InstanceID, rec.MeteringSN, v, rec.RelatePkgInstance
	return "", "", u
}
