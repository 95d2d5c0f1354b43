// Package ledger is what the emulated marketplace believes about money and service: every order it created,
// its amount, whether it was paid or refunded, whether it reached the seller, and the supervision state of
// supervised purchases. It is the marketplace's side of settlement: a seller's bill can be compared with it line
// by line (WriteCSV), and the scenario runner compares it with the seller's read model.
package ledger

import (
	"encoding/csv"
	"fmt"
	"io"
	"sort"
	"sync"
	"time"

	"github.com/shopspring/decimal"
)

// Payment states of an order.
const (
	Paid              = "PAID"               // the customer paid in full
	Refunded          = "REFUNDED"           // refunded in full
	PartiallyRefunded = "PARTIALLY_REFUNDED" // a negotiated refund of part of what was paid
	RefundOrder       = "REFUND"             // the order is itself a refund (UNSUBSCRIBE): its amount is negative
)

// Delivery states of an order towards the seller.
const (
	Pending   = "PENDING"   // the production-interface call has not completed yet
	Delivered = "DELIVERED" // the seller accepted the call
	Failed    = "FAILED"    // the retry window ran out
	NotSent   = "NOT_SENT"  // no call carries this order (a refund the marketplace settled by itself)
)

// Entry is one order line as the marketplace sees it.
type Entry struct {
	OrderID     string          `json:"orderId"`
	OrderLineID string          `json:"orderLineId"`
	OrderType   string          `json:"orderType"`
	InstanceID  string          `json:"instanceId,omitempty"`
	CustomerID  string          `json:"customerId"`
	ProductID   string          `json:"productId"`
	SKUCode     string          `json:"skuCode"`
	Quantity    int64           `json:"quantity"`
	ListAmount  decimal.Decimal `json:"listAmount"`
	// Amount is what changed hands: positive for purchases, negative for refund orders.
	Amount     decimal.Decimal `json:"amount"`
	Refunded   decimal.Decimal `json:"refunded"` // for purchases: how much of Amount was refunded since
	RefersTo   string          `json:"refersTo,omitempty"`
	PlacedAt   time.Time       `json:"placedAt"`
	ExpireAt   *time.Time      `json:"expireAt,omitempty"`
	Payment    string          `json:"payment"`
	Delivery   string          `json:"delivery"`
	Supervised bool            `json:"supervised"`
	// Supervision is the supervision state of a supervised purchase (NOT_INVOLVED otherwise).
	Supervision string `json:"supervision"`

	// What the marketplace's settlement reads (bill.go). EffectiveAt is when the line took effect (provisioning
	// success, supervision completion, a renewal's start, a refund's completion); nil while it has not.
	EffectiveAt *time.Time `json:"effectiveAt,omitempty"`
	TestFlag    bool       `json:"testFlag,omitempty"` // a dial-test order, never billed
	Credit      bool       `json:"credit,omitempty"`   // paid with 信用支付
	RepaidAt    *time.Time `json:"repaidAt,omitempty"` // when a credit-paid order was repaid (回款)
}

// Ledger is safe for concurrent use.
type Ledger struct {
	mu      sync.Mutex
	entries map[string]*Entry
	// billed records, per order line, the bill that settled it (bill.go).
	billed map[string]billedLine
	// usageBilled records, per instance and consumption month, the usage bills settled.
	usageBilled map[string][]billedUsage
}

// New returns an empty ledger.
func New() *Ledger {
	return &Ledger{entries: map[string]*Entry{}, billed: map[string]billedLine{}, usageBilled: map[string][]billedUsage{}}
}

// Put records lines another process's ledger holds (a scenario runner's, sent through the control API),
// replacing lines with the same order and line ids.
func (l *Ledger) Put(es []Entry) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, e := range es {
		if e.Refunded.IsZero() {
			e.Refunded = decimal.Zero
		}
		l.entries[key(e.OrderID, e.OrderLineID)] = &e
	}
}

func key(orderID, lineID string) string { return orderID + "\x00" + lineID }

// Add records a new order line; adding one twice is an error.
func (l *Ledger) Add(e Entry) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	k := key(e.OrderID, e.OrderLineID)
	if _, dup := l.entries[k]; dup {
		return fmt.Errorf("ledger: order %s line %s recorded twice", e.OrderID, e.OrderLineID)
	}
	if e.Refunded.IsZero() {
		e.Refunded = decimal.Zero
	}
	l.entries[k] = &e
	return nil
}

// Update changes an entry under the lock.
func (l *Ledger) Update(orderID, lineID string, f func(*Entry)) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	e, ok := l.entries[key(orderID, lineID)]
	if !ok {
		return fmt.Errorf("ledger: no order %s line %s", orderID, lineID)
	}
	f(e)
	return nil
}

// Refund records a refund of amount against a purchase line, and the refund order that carries it.
func (l *Ledger) Refund(purchaseOrder, purchaseLine string, refund Entry) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	p, ok := l.entries[key(purchaseOrder, purchaseLine)]
	if !ok {
		return fmt.Errorf("ledger: refund of unknown order %s line %s", purchaseOrder, purchaseLine)
	}
	amount := refund.Amount.Abs()
	if p.Refunded.Add(amount).GreaterThan(p.Amount) {
		return fmt.Errorf("ledger: refunding %s of order %s exceeds what was paid (%s, refunded %s)", amount, p.OrderID, p.Amount, p.Refunded)
	}
	k := key(refund.OrderID, refund.OrderLineID)
	if _, dup := l.entries[k]; dup {
		return fmt.Errorf("ledger: refund order %s recorded twice", refund.OrderID)
	}
	p.Refunded = p.Refunded.Add(amount)
	if p.Refunded.Equal(p.Amount) {
		p.Payment = Refunded
	} else {
		p.Payment = PartiallyRefunded
	}
	refund.Amount = amount.Neg()
	refund.RefersTo = p.OrderID
	refund.Payment = RefundOrder
	refund.Refunded = decimal.Zero
	l.entries[k] = &refund
	return nil
}

// Entries lists every line by placement time, then order ID.
func (l *Ledger) Entries() []Entry {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]Entry, 0, len(l.entries))
	for _, e := range l.entries {
		out = append(out, *e)
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].PlacedAt.Equal(out[j].PlacedAt) {
			return out[i].PlacedAt.Before(out[j].PlacedAt)
		}
		return out[i].OrderID < out[j].OrderID
	})
	return out
}

// ForInstance lists an instance's lines.
func (l *Ledger) ForInstance(instanceID string) []Entry {
	var out []Entry
	for _, e := range l.Entries() {
		if e.InstanceID == instanceID {
			out = append(out, e)
		}
	}
	return out
}

// Totals sums the ledger: what customers paid, what was refunded, and the net.
type Totals struct {
	Orders   int
	Paid     decimal.Decimal
	Refunded decimal.Decimal
	Net      decimal.Decimal
}

// Totals sums every line.
func (l *Ledger) Totals() Totals {
	t := Totals{Paid: decimal.Zero, Refunded: decimal.Zero}
	for _, e := range l.Entries() {
		t.Orders++
		if e.Amount.IsNegative() {
			t.Refunded = t.Refunded.Add(e.Amount.Neg())
		} else {
			t.Paid = t.Paid.Add(e.Amount)
		}
	}
	t.Net = t.Paid.Sub(t.Refunded)
	return t
}

// WriteCSV writes the ledger, one line per order line, amounts as exact decimals and times in UTC RFC 3339.
func (l *Ledger) WriteCSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	_ = cw.Write([]string{"order_id", "order_line_id", "order_type", "instance_id", "customer_id", "product_id", "sku_code",
		"quantity", "list_amount", "amount", "refunded", "refers_to", "placed_at", "expire_at", "payment", "delivery", "supervision"})
	for _, e := range l.Entries() {
		exp := ""
		if e.ExpireAt != nil {
			exp = e.ExpireAt.UTC().Format(time.RFC3339)
		}
		_ = cw.Write([]string{e.OrderID, e.OrderLineID, e.OrderType, e.InstanceID, e.CustomerID, e.ProductID, e.SKUCode,
			fmt.Sprint(e.Quantity), e.ListAmount.StringFixed(3), e.Amount.StringFixed(3), e.Refunded.StringFixed(3), e.RefersTo,
			e.PlacedAt.UTC().Format(time.RFC3339), exp, e.Payment, e.Delivery, e.Supervision})
	}
	cw.Flush()
	return cw.Error()
}
