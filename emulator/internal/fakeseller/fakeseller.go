// Package fakeseller is a small, correct KooGallery seller for the emulator's own unit tests: it verifies
// signatures and freshness, refuses replays, is idempotent by business key and state, reads orders from the
// emulator's market and keeps the read model a scenario compares with. It lets the emulator's logic be tested
// without Temporal or PostgreSQL; the end-to-end tests in e2e/ run the same code against the real kooflow.
package fakeseller

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/shopspring/decimal"

	"github.com/kooflow/kooflow/emulator/deliver"
	"github.com/kooflow/kooflow/emulator/market"
	"github.com/kooflow/kooflow/emulator/scenario"
	"github.com/kooflow/kooflow/emulator/sign"
	"github.com/kooflow/kooflow/internal/catalog"
)

// Seller is the fake seller: an http.Handler for the production interface and a scenario.Seller.
type Seller struct {
	key     string
	window  time.Duration
	market  *market.Market
	catalog *catalog.Catalog

	mu        sync.Mutex
	nonces    map[string]bool
	instances map[string]*fakeInstance
	payments  map[string]*time.Time // credit-paid orders and their repayment
	// BreakExpiry makes the seller ignore refreshInstance's expireTime, so a test can see the comparison fail.
	BreakExpiry bool
}

type fakeInstance struct {
	scenario.SellerInstance
	seen     map[string]bool
	approved decimal.Decimal
	refunds  map[string]decimal.Decimal
}

// New returns a seller that signs with key and reads orders from m.
func New(key string, m *market.Market) *Seller {
	c, _ := catalog.Parse(catalog.DevCatalog)
	return &Seller{key: key, window: 60 * time.Second, market: m, catalog: c, nonces: map[string]bool{},
		instances: map[string]*fakeInstance{}}
}

func fakeID(orderID, lineID string) string {
	s := sha256.Sum256([]byte(orderID + "/" + lineID))
	return "inst-" + hex.EncodeToString(s[:8])
}

func (f *Seller) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	raw, _ := io.ReadAll(r.Body)
	reply := func(v map[string]any) {
		b, _ := json.Marshal(v)
		w.Header().Set("Body-Sign", sign.BodySignHeader(f.key, b))
		_, _ = w.Write(b)
	}
	q := r.URL.Query()
	want, err := sign.RequestSignature(f.key, raw, q.Get("nonce"), q.Get("timestamp"))
	ms, _ := strconv.ParseInt(q.Get("timestamp"), 10, 64)
	if d := time.Since(time.UnixMilli(ms)); err != nil || !strings.EqualFold(want, q.Get("signature")) || d > f.window || d < -f.window {
		reply(map[string]any{"resultCode": "000001", "resultMsg": "authentication failed"})
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.nonces[q.Get("nonce")] {
		reply(map[string]any{"resultCode": "000001", "resultMsg": "nonce reused"})
		return
	}
	f.nonces[q.Get("nonce")] = true
	var b map[string]any
	_ = json.Unmarshal(raw, &b)
	s := func(k string) string { v, _ := b[k].(string); return v }
	code, extra := f.handle(s("activity"), s)
	out := map[string]any{"resultCode": code, "resultMsg": "ok"}
	for k, v := range extra {
		out[k] = v
	}
	reply(out)
}

func parseExpire(s string) time.Time {
	t, _ := time.ParseInLocation("20060102150405", s[:14], time.UTC)
	return t
}

func (f *Seller) order(id string) (market.Order, market.Line) {
	o, _ := f.market.Order(id)
	return o, o.Lines[0]
}

func (f *Seller) handle(activity string, s func(string) string) (string, map[string]any) {
	if activity == deliver.NewInstance {
		id := fakeID(s("orderId"), s("orderLineId"))
		if _, ok := f.instances[id]; !ok {
			o, l := f.order(s("orderId"))
			p, _ := f.catalog.Lookup(l.ProductID)
			in := &fakeInstance{SellerInstance: scenario.SellerInstance{InstanceID: id, OrderID: o.OrderID, OrderLineID: l.OrderLineID,
				Lifecycle: scenario.StateActive, Supervision: scenario.SupNotInvolved, ProductID: l.ProductID, SKUCode: l.SKUCode, Quantity: l.LinearValue,
				AppInfo: &scenario.SellerAppInfo{FrontEndURL: "https://app.example.com/" + id, UserName: "admin", PasswordSet: true},
				Orders:  []scenario.SellerOrder{{OrderID: o.OrderID, OrderLineID: l.OrderLineID, Type: o.OrderType, Paid: l.PaidAmount}}},
				seen: map[string]bool{}, approved: decimal.Zero, refunds: map[string]decimal.Decimal{}}
			if p.Supervised {
				in.Supervision = scenario.SupAwaitingRequirement
			}
			if !l.ExpireTime.IsZero() {
				t := l.ExpireTime
				in.ExpireTime = &t
			}
			f.instances[id] = in
		}
		return "000000", map[string]any{"instanceId": id}
	}
	if activity == deliver.QueryInstance {
		in, ok := f.instances[s("instanceId")]
		if !ok {
			return "000003", nil
		}
		ai := deliver.AppInfo{FrontEndURL: in.AppInfo.FrontEndURL, UserName: in.AppInfo.UserName, Password: "pw-" + in.InstanceID[5:9]}
		return "000000", map[string]any{"info": []any{map[string]any{"instanceId": in.InstanceID, "appInfo": ai}}}
	}
	in, ok := f.instances[s("instanceId")]
	if !ok {
		if activity == deliver.ReleaseInstance {
			return "000000", nil
		}
		if activity == deliver.UpdateInstanceStatus || activity == deliver.RefreshInstance || activity == deliver.UpgradeInstance {
			return "000003", nil
		}
		return "000002", nil
	}
	if in.Lifecycle == scenario.StateReleased && activity != deliver.ReleaseInstance {
		return "000002", nil
	}
	switch activity {
	case deliver.RefreshInstance:
		if in.seen[s("orderId")] {
			return "000000", nil
		}
		in.seen[s("orderId")] = true
		o, l := f.order(s("orderId"))
		exp := parseExpire(s("expireTime"))
		if !f.BreakExpiry {
			in.ExpireTime = &exp
		}
		paid := l.PaidAmount
		if o.OrderType == market.TypeUnsubscribe {
			paid = paid.Neg()
		}
		in.Orders = append(in.Orders, scenario.SellerOrder{OrderID: o.OrderID, OrderLineID: l.OrderLineID, Type: o.OrderType, Paid: paid})
		if s("scene") == "RENEWAL_CHANGE" {
			in.SKUCode, in.Quantity = l.SKUCode, l.LinearValue
		}
		if s("scene") != "UNSUBSCRIBE_RENEWAL_PERIOD" && in.Lifecycle == scenario.StateFrozen {
			in.Lifecycle = scenario.StateActive
		}
	case deliver.UpdateInstanceStatus:
		if s("status") == "FREEZE" {
			in.Lifecycle = scenario.StateFrozen
		} else {
			in.Lifecycle = scenario.StateActive
		}
	case deliver.UpgradeInstance:
		if !in.seen[s("orderId")] {
			in.seen[s("orderId")] = true
			o, l := f.order(s("orderId"))
			in.SKUCode, in.Quantity = l.SKUCode, l.LinearValue
			in.Orders = append(in.Orders, scenario.SellerOrder{OrderID: o.OrderID, OrderLineID: l.OrderLineID, Type: o.OrderType, Paid: l.PaidAmount})
		}
	case deliver.ReleaseInstance:
		if id := s("orderId"); id != "" && !in.seen[id] {
			in.seen[id] = true
			o, l := f.order(id)
			net := l.PaidAmount.Sub(in.approved)
			if net.IsNegative() {
				net = decimal.Zero
			}
			in.Orders = append(in.Orders, scenario.SellerOrder{OrderID: o.OrderID, OrderLineID: l.OrderLineID, Type: o.OrderType, Paid: net.Neg()})
		}
		in.Lifecycle = scenario.StateReleased
	case deliver.ChangeInstanceCheck:
	default:
		return "000002", nil
	}
	return "000000", nil
}

// The console side (scenario.Seller).

func (f *Seller) InstanceByOrder(_ context.Context, orderID, lineID string) (*scenario.SellerInstance, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	in, ok := f.instances[fakeID(orderID, lineID)]
	if !ok {
		return nil, nil
	}
	cp := in.SellerInstance
	cp.Orders = append([]scenario.SellerOrder(nil), in.Orders...)
	return &cp, nil
}

var fakeSteps = map[string][3]string{
	scenario.StepSubmitRequirement: {scenario.SupAwaitingRequirement, scenario.SupAwaitingConfirm, scenario.PartyCustomer},
	scenario.StepConfirm:           {scenario.SupAwaitingConfirm, scenario.SupInService, scenario.PartySeller},
	scenario.StepReject:            {scenario.SupAwaitingConfirm, scenario.SupAwaitingRequirement, scenario.PartySeller},
	scenario.StepDeliver:           {scenario.SupInService, scenario.SupAwaitingAcceptance, scenario.PartySeller},
	scenario.StepAccept:            {scenario.SupAwaitingAcceptance, scenario.SupCompleted, scenario.PartyCustomer},
}

func (f *Seller) Supervise(_ context.Context, instanceID, step, party, note string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	in, ok := f.instances[instanceID]
	st := fakeSteps[step]
	switch {
	case !ok:
		return scenario.ErrRetryLater
	case st[2] != party || in.Supervision != st[0] || (step == scenario.StepReject && note == ""):
		return fmt.Errorf("cannot %s as %s in %s", step, party, in.Supervision)
	}
	in.Supervision = st[1]
	return nil
}

// RecordPayment keeps the payment state of an order; the fake seller settles nothing, so only the record counts.
func (f *Seller) RecordPayment(_ context.Context, orderID string, credit bool, repaidAt *time.Time) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.payments == nil {
		f.payments = map[string]*time.Time{}
	}
	if credit {
		f.payments[orderID] = repaidAt
	} else {
		delete(f.payments, orderID)
	}
	return nil
}

// Payment reads what RecordPayment kept.
func (f *Seller) Payment(_ context.Context, orderID string) (bool, *time.Time, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	at, credit := f.payments[orderID]
	return credit, at, nil
}

func (f *Seller) RequestRefund(_ context.Context, instanceID string, amount *decimal.Decimal) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	in := f.instances[instanceID]
	a := in.Orders[0].Paid
	if amount != nil {
		a = *amount
	}
	id := fmt.Sprintf("R%d", len(in.refunds)+1)
	in.refunds[id] = a
	return id, nil
}

func (f *Seller) ApproveRefund(_ context.Context, instanceID, refundID string) (decimal.Decimal, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	in := f.instances[instanceID]
	a := in.refunds[refundID]
	in.approved = in.approved.Add(a)
	in.Orders = append(in.Orders, scenario.SellerOrder{OrderID: "REFUND-" + instanceID + "-" + refundID, Type: "REFUND", Paid: a.Neg()})
	return a, nil
}
