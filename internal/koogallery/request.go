package koogallery

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/kooflow/kooflow/internal/instance"
)

// Activities of the V2 production interface (docs/koogallery.md, "Activities").
const (
	ActivityNewInstance         = "newInstance"
	ActivityQueryInstance       = "queryInstance"
	ActivityRefreshInstance     = "refreshInstance"
	ActivityUpdateInstanceState = "updateInstanceStatus"
	ActivityReleaseInstance     = "releaseInstance"
	ActivityUpgradeInstance     = "upgradeInstance"
	ActivityChangeInstanceCheck = "changeInstanceCheck"
)

// Activities lists every supported activity.
func Activities() []string {
	return []string{ActivityNewInstance, ActivityQueryInstance, ActivityRefreshInstance, ActivityUpdateInstanceState,
		ActivityReleaseInstance, ActivityUpgradeInstance, ActivityChangeInstanceCheck}
}

// MaxBodyBytes bounds a request body. The largest legitimate one, a queryInstance with 100 instance ids, is
// under 8 KiB.
const MaxBodyBytes = 64 << 10

// MaxQueryInstances is the most instance ids one queryInstance may ask for (docs/koogallery.md, "queryInstance").
const MaxQueryInstances = 100

// Body is a request body parsed as one JSON object, kept with its raw bytes so the signature can be checked
// against every reading docs/koogallery.md lists ("Canonical payload").
type Body struct {
	raw   []byte
	obj   value
	cands [][]byte
}

// ParseBody parses raw as one JSON object. It fails with ErrNotObject for anything else.
func ParseBody(raw []byte) (*Body, error) {
	v, err := parseObject(raw)
	if err != nil {
		return nil, err
	}
	return &Body{raw: raw, obj: v}, nil
}

func (b *Body) candidates() [][]byte {
	if b.cands == nil {
		b.cands = payloadCandidates(b.obj, b.raw)
	}
	return b.cands
}

func (b *Body) get(key string) (value, bool) {
	for _, m := range b.obj.members {
		if m.key == key {
			return m.val, m.val.kind != 'z'
		}
	}
	return value{}, false
}

// FieldError is an invalid request field; the gateway answers it with ResultInvalidParams.
type FieldError struct {
	Field   string
	Problem string
}

func (e *FieldError) Error() string {
	if e.Field == "" {
		return e.Problem
	}
	return e.Field + ": " + e.Problem
}

// ProductInfo is changeInstanceCheck's target spec. The documents do not show its sub-fields (docs/koogallery.md,
// "changeInstanceCheck"); these are the order query's ProductInfo names, the likeliest reading.
type ProductInfo struct {
	ProductID   string
	SKUCode     string
	LinearValue int64
}

// Request is a validated production-interface request. Only the fields of its activity are set.
type Request struct {
	Activity    string
	OrderID     string
	OrderLineID string
	BusinessID  string
	InstanceID  string
	// InstanceIDs is queryInstance's list, in request order without duplicates.
	InstanceIDs []string
	Scene       string
	ProductID   string
	ExpireTime  time.Time
	Status      string
	ProductInfo *ProductInfo
	TestFlag    bool
}

// Keys are the business keys of a request as sent, read without validation so the message log can record
// them even for a request that is refused. Each is cut to 128 bytes.
type Keys struct {
	Activity    string
	OrderID     string
	OrderLineID string
	BusinessID  string
	InstanceIDs []string
	Scene       string
	Status      string
	TestFlag    bool
}

// Keys extracts the business keys best effort.
func (b *Body) Keys() Keys {
	s := func(name string) string {
		v, ok := b.get(name)
		if !ok || (v.kind != 's' && v.kind != 'n' && v.kind != 'b') {
			return ""
		}
		return cut(v.text, 128)
	}
	k := Keys{
		Activity: s("activity"), OrderID: s("orderId"), OrderLineID: s("orderLineId"), BusinessID: s("businessId"),
		Scene: s("scene"), Status: s("status"), TestFlag: s("testFlag") == "1",
	}
	if ids := s("instanceId"); ids != "" {
		for _, id := range strings.Split(ids, ",") {
			if id = strings.TrimSpace(id); id != "" && len(k.InstanceIDs) < MaxQueryInstances {
				k.InstanceIDs = append(k.InstanceIDs, id)
			}
		}
	}
	return k
}

func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// field reads a scalar field as text. The official demo reads the body as Map<String,String>, so a number or a
// boolean where a string is documented is accepted as its text; objects and arrays are not.
func (b *Body) field(name string, required bool, maxLen int) (string, error) {
	v, ok := b.get(name)
	if !ok {
		if required {
			return "", &FieldError{name, "is required"}
		}
		return "", nil
	}
	if v.kind != 's' && v.kind != 'n' && v.kind != 'b' {
		return "", &FieldError{name, "must be a string"}
	}
	t := v.text
	if t == "" {
		if required {
			return "", &FieldError{name, "must not be empty"}
		}
		return "", nil
	}
	if len(t) > maxLen {
		return "", &FieldError{name, fmt.Sprintf("is %d bytes long; at most %d are allowed", len(t), maxLen)}
	}
	if !utf8.ValidString(t) || strings.IndexFunc(t, unicode.IsControl) >= 0 {
		return "", &FieldError{name, "contains control characters or invalid UTF-8"}
	}
	return t, nil
}

// Request validates the body against its activity's field table (docs/koogallery.md, "Activities") and returns it.
func (b *Body) Request() (*Request, error) {
	var errs []error
	get := func(name string, required bool, maxLen int) string {
		t, err := b.field(name, required, maxLen)
		if err != nil {
			errs = append(errs, err)
		}
		return t
	}
	r := &Request{}
	r.Activity = get("activity", true, 32)
	if len(errs) > 0 {
		return nil, errs[0]
	}
	switch tf := get("testFlag", false, 2); tf {
	case "", "0":
	case "1":
		r.TestFlag = true
	default:
		errs = append(errs, &FieldError{"testFlag", fmt.Sprintf("is %q; it must be \"1\" (debug) or \"0\"/absent", tf)})
	}
	switch r.Activity {
	case ActivityNewInstance:
		r.OrderID = get("orderId", true, 64)
		r.OrderLineID = get("orderLineId", true, 64)
		r.BusinessID = get("businessId", true, 64)
		// Pay-per-use: the billing item the instance is for, when the marketplace names it (docs/koogallery.md,
		// "Pay-per-use instances").
		r.ProductID = get("productId", false, 64)
	case ActivityQueryInstance:
		// String(100) in the field table cannot hold the documented 100 ids, so the list is bounded by count.
		list := get("instanceId", true, MaxQueryInstances*65)
		if list != "" {
			ids, err := splitInstanceIDs(list)
			if err != nil {
				errs = append(errs, err)
			}
			r.InstanceIDs = ids
		}
	case ActivityRefreshInstance:
		r.Scene = get("scene", true, 64)
		r.OrderID = get("orderId", true, 64)
		r.OrderLineID = get("orderLineId", true, 64)
		r.InstanceID = get("instanceId", true, 64)
		r.ProductID = get("productId", false, 64)
		if et := get("expireTime", true, 20); et != "" {
			t, err := ParseTime(et)
			if err != nil {
				errs = append(errs, &FieldError{"expireTime", err.Error()})
			}
			r.ExpireTime = t
		}
		switch r.Scene {
		case "", instance.SceneTrialToFormal, instance.SceneRenewal, instance.SceneUnsubscribeRenewalPeriod, instance.SceneRenewalChange:
		default:
			errs = append(errs, &FieldError{"scene", fmt.Sprintf("%q is not one of %s, %s, %s, %s", cut(r.Scene, 64),
				instance.SceneTrialToFormal, instance.SceneRenewal, instance.SceneUnsubscribeRenewalPeriod, instance.SceneRenewalChange)})
		}
	case ActivityUpdateInstanceState:
		r.InstanceID = get("instanceId", true, 64)
		r.Status = get("status", true, 32)
		switch r.Status {
		case "", instance.StatusFreeze, instance.StatusUnfreeze:
		default:
			errs = append(errs, &FieldError{"status", fmt.Sprintf("%q is not FREEZE or UNFREEZE", cut(r.Status, 32))})
		}
	case ActivityReleaseInstance:
		r.InstanceID = get("instanceId", true, 64)
		r.OrderID = get("orderId", false, 64)
		r.OrderLineID = get("orderLineId", false, 64)
	case ActivityUpgradeInstance:
		r.InstanceID = get("instanceId", true, 64)
		r.OrderID = get("orderId", true, 64)
		r.OrderLineID = get("orderLineId", true, 64)
	case ActivityChangeInstanceCheck:
		r.InstanceID = get("instanceId", true, 64)
		pi, err := b.productInfo()
		if err != nil {
			errs = append(errs, err)
		}
		r.ProductInfo = pi
	default:
		return nil, &FieldError{"activity", fmt.Sprintf("%q is not an activity of the V2 production interface (%s)",
			cut(r.Activity, 32), strings.Join(Activities(), ", "))}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return r, nil
}

func splitInstanceIDs(list string) ([]string, error) {
	parts := strings.Split(list, ",")
	if len(parts) > MaxQueryInstances {
		return nil, &FieldError{"instanceId", fmt.Sprintf("lists %d instances; at most %d are allowed", len(parts), MaxQueryInstances)}
	}
	seen := make(map[string]bool, len(parts))
	ids := make([]string, 0, len(parts))
	for _, p := range parts {
		p = strings.TrimSpace(p)
		switch {
		case p == "":
			return nil, &FieldError{"instanceId", "contains an empty element"}
		case len(p) > 64:
			return nil, &FieldError{"instanceId", fmt.Sprintf("the id %q is longer than 64 bytes", cut(p, 64))}
		}
		if !seen[p] {
			seen[p] = true
			ids = append(ids, p)
		}
	}
	return ids, nil
}

// productInfo reads changeInstanceCheck's productInfo: an object, or a string holding one (the field is
// documented only as "ProductInfo (object)", and some marketplace fields carry JSON as a string).
func (b *Body) productInfo() (*ProductInfo, error) {
	v, ok := b.get("productInfo")
	if !ok {
		return nil, &FieldError{"productInfo", "is required"}
	}
	if v.kind == 's' {
		if len(v.text) > 4096 {
			return nil, &FieldError{"productInfo", "is longer than 4096 bytes"}
		}
		inner, err := parseObject([]byte(v.text))
		if err != nil {
			return nil, &FieldError{"productInfo", "must be an object"}
		}
		v = inner
	}
	if v.kind != 'o' {
		return nil, &FieldError{"productInfo", "must be an object"}
	}
	pi := &ProductInfo{}
	for _, m := range v.members {
		switch m.key {
		case "productId", "skuCode":
			if m.val.kind == 'z' {
				continue
			}
			if m.val.kind != 's' || len(m.val.text) > 64 || strings.IndexFunc(m.val.text, unicode.IsControl) >= 0 {
				return nil, &FieldError{"productInfo." + m.key, "must be a string of at most 64 characters"}
			}
			if m.key == "productId" {
				pi.ProductID = m.val.text
			} else {
				pi.SKUCode = m.val.text
			}
		case "linearValue":
			if m.val.kind == 'z' {
				continue
			}
			if m.val.kind != 's' && m.val.kind != 'n' {
				return nil, &FieldError{"productInfo.linearValue", "must be a whole number"}
			}
			n, err := strconv.ParseInt(m.val.text, 10, 64)
			if err != nil || n < 0 {
				return nil, &FieldError{"productInfo.linearValue", fmt.Sprintf("%q is not a whole number ≥ 0", cut(m.val.text, 32))}
			}
			pi.LinearValue = n
		}
	}
	if pi.ProductID == "" && pi.SKUCode == "" && pi.LinearValue == 0 {
		return nil, &FieldError{"productInfo", "names neither productId, skuCode nor linearValue"}
	}
	return pi, nil
}

// Marshal helpers used by tests and the load generator to build request bodies.

// NewPayPerUseInstanceBody builds a newInstance body naming the pay-per-use billing item productID.
func NewPayPerUseInstanceBody(orderID, orderLineID, productID, businessID string, test bool) []byte {
	m := map[string]string{"activity": ActivityNewInstance, "orderId": orderID, "orderLineId": orderLineID,
		"productId": productID, "businessId": businessID}
	if test {
		m["testFlag"] = "1"
	}
	b, _ := json.Marshal(m)
	return b
}

// NewInstanceBody builds a newInstance body.
func NewInstanceBody(orderID, orderLineID, businessID string, test bool) []byte {
	m := map[string]string{"activity": ActivityNewInstance, "orderId": orderID, "orderLineId": orderLineID, "businessId": businessID}
	if test {
		m["testFlag"] = "1"
	}
	b, _ := json.Marshal(m)
	return b
}
