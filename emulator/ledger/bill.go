package ledger

import (
	"encoding/csv"
	"fmt"
	"io"
	"math/big"
	"sort"
	"strings"
	"time"

	"github.com/shopspring/decimal"
	"github.com/xuri/excelize/v2"
)

// The marketplace's monthly bill, as the marketplace computes it: its own reading of the published settlement
// rules, written apart from the seller's code so that a reconciliation compares two implementations. Amounts are
// computed in whole fen with half-to-even rounding.

// Product types the marketplace bills separately.
const (
	TypeGeneral        = "general"
	TypeJointOperation = "joint-operation"
)

// Terms is how the marketplace settles one product: its type and the rate (platform fee rate for general
// products, the seller's share for joint-operation ones).
type Terms struct {
	Type string
	Rate decimal.Decimal
}

// BillRequest asks for the bill of one period (a Beijing month, [Start, End)) and product type.
type BillRequest struct {
	Period      string // 2026-10
	End         time.Time
	ProductType string
	Threshold   decimal.Decimal
	Terms       func(productID string) (Terms, bool)
	// Faults change the exported bill, so reconciliation has something to find; they never change what the
	// ledger records as billed.
	Faults BillFaults
	// Usage is what the marketplace charged for pay-per-use usage; nil bills no usage. UsagePrice is a
	// pay-per-use product's unit price per unit of usage.
	Usage      *Usage
	UsagePrice func(productID string) (decimal.Decimal, bool)
}

// BillFaults are deliberate errors in a bill.
type BillFaults struct {
	Drop   []string                   // lines left out, by BillLine.Key
	Change map[string]decimal.Decimal // BillLine.Key → amount added to the seller's settlement
	Add    []BillLine                 // lines billed that the seller never had
}

// BillLine is one line of the marketplace's bill detail. A pay-per-use usage line bills one instance's usage of
// one consumption month: it carries the instance's purchase order, the instance, the month and the quantity.
type BillLine struct {
	OrderID     string          `json:"orderId"`
	OrderLineID string          `json:"orderLineId"`
	OrderType   string          `json:"orderType"`
	Revenue     decimal.Decimal `json:"revenue"`
	PlatformFee decimal.Decimal `json:"platformFee"`
	Settlement  decimal.Decimal `json:"settlement"`
	InstanceID  string          `json:"instanceId,omitempty"`
	// UsageMonth (2026-10, Beijing time) and UsageQuantity are set on usage lines only.
	UsageMonth    string           `json:"usageMonth,omitempty"`
	UsageQuantity *decimal.Decimal `json:"usageQuantity,omitempty"`
}

// UsageOrderType is the order type the bill detail gives a pay-per-use usage line.
const UsageOrderType = "USAGE"

// Key names a line for faults: "orderId/orderLineId", or "orderId/usage:instance:month" for a usage line (whose
// order line is the purchase's).
func (l BillLine) Key() string {
	if l.UsageMonth != "" {
		return l.OrderID + "/usage:" + l.InstanceID + ":" + l.UsageMonth
	}
	return l.OrderID + "/" + l.OrderLineID
}

// Bill is the marketplace's bill of a period and product type.
type Bill struct {
	Period      string
	ProductType string
	// Carried is set when the total stayed below the threshold: nothing was billed.
	Carried bool
	Total   decimal.Decimal
	Lines   []BillLine
	Status  string // the seller center's word for the bill's state, e.g. 待会签
}

type billedLine struct {
	period string
	terms  Terms
}

// billedUsage is the usage quantity of one instance and consumption month a bill settled.
type billedUsage struct {
	period   string
	quantity decimal.Decimal
}

var chargeTypes = map[string]bool{"NEW": true, "TRIAL_TO_FORMAL": true, "RENEW": true, "CHANGE": true}
var refundTypes = map[string]bool{"UNSUBSCRIBE": true, "REFUND": true}

// Bill computes and records the bill of a period for one product type. Order lines billed here are not billed
// again; a bill below the threshold bills nothing and leaves every line for the next period.
func (l *Ledger) Bill(req BillRequest) (Bill, error) {
	if req.Terms == nil {
		return Bill{}, fmt.Errorf("ledger: a bill needs the products' terms")
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	b := Bill{Period: req.Period, ProductType: req.ProductType, Total: decimal.Zero, Status: "待会签"}

	// Refunds that took effect before the period ends, per refunded order.
	type refunded struct {
		sum  decimal.Decimal
		last time.Time
	}
	refunds := map[string]*refunded{}
	for _, e := range l.entries {
		if !refundTypes[e.OrderType] || e.TestFlag || e.EffectiveAt == nil || !e.EffectiveAt.Before(req.End) {
			continue
		}
		r := refunds[e.InstanceID+"\x00"+e.RefersTo]
		if r == nil {
			r = &refunded{}
			refunds[e.InstanceID+"\x00"+e.RefersTo] = r
		}
		r.sum = r.sum.Add(e.Amount.Neg())
		if e.EffectiveAt.After(r.last) {
			r.last = *e.EffectiveAt
		}
	}

	type pick struct {
		e     *Entry
		terms Terms
	}
	var picked []pick
	chargeNow := map[string]Terms{} // instance + order id → terms, for charges billed in this bill
	keys := make([]string, 0, len(l.entries))
	for k := range l.entries {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		e := l.entries[k]
		if !chargeTypes[e.OrderType] || e.TestFlag {
			continue
		}
		if bl, done := l.billed[k]; done && bl.period != req.Period {
			continue
		}
		t, ok := req.Terms(e.ProductID)
		if !ok || t.Type != req.ProductType {
			continue
		}
		if e.Supervision != "" && e.Supervision != "NOT_INVOLVED" && e.Supervision != "COMPLETED" {
			continue
		}
		if e.Credit && (e.RepaidAt == nil || !e.RepaidAt.Before(req.End)) {
			continue
		}
		at := e.EffectiveAt
		if r := refunds[e.InstanceID+"\x00"+e.OrderID]; r != nil && e.Amount.IsPositive() && r.sum.GreaterThanOrEqual(e.Amount) {
			if at == nil || r.last.Before(*at) {
				last := r.last
				at = &last
			}
		}
		if at == nil || !at.Before(req.End) {
			continue
		}
		picked = append(picked, pick{e, t})
		if _, seen := chargeNow[e.InstanceID+"\x00"+e.OrderID]; !seen {
			chargeNow[e.InstanceID+"\x00"+e.OrderID] = t
		}
	}
	for _, k := range keys {
		e := l.entries[k]
		if !refundTypes[e.OrderType] || e.TestFlag || e.EffectiveAt == nil || !e.EffectiveAt.Before(req.End) {
			continue
		}
		if bl, done := l.billed[k]; done && bl.period != req.Period {
			continue
		}
		t, ok := chargeNow[e.InstanceID+"\x00"+e.RefersTo]
		if !ok {
			// The refunded charge was billed in an earlier bill: the refund follows at that bill's terms.
			found := false
			for ck, bl := range l.billed {
				c := l.entries[ck]
				if c != nil && bl.period != req.Period && c.OrderID == e.RefersTo && c.InstanceID == e.InstanceID && chargeTypes[c.OrderType] {
					t, found = bl.terms, true
					break
				}
			}
			if !found || t.Type != req.ProductType {
				continue
			}
		}
		picked = append(picked, pick{e, t})
	}

	total := int64(0)
	for _, p := range picked {
		line := amounts(p.e, p.terms)
		total += line.settlementFen
		b.Lines = append(b.Lines, line.BillLine)
	}
	usage := l.usageLines(req, keys)
	for _, u := range usage {
		total += u.settlementFen
		b.Lines = append(b.Lines, u.BillLine)
	}
	b.Total = fenToYuan(total)
	if b.Total.LessThan(req.Threshold) {
		return Bill{Period: req.Period, ProductType: req.ProductType, Carried: true, Total: b.Total}, nil
	}
	for _, p := range picked {
		l.billed[key(p.e.OrderID, p.e.OrderLineID)] = billedLine{period: req.Period, terms: p.terms}
	}
	for _, u := range usage {
		k := u.InstanceID + "\x00" + u.UsageMonth
		kept := l.usageBilled[k][:0]
		for _, bu := range l.usageBilled[k] {
			if bu.period != req.Period { // the same period billed again replaces its own record
				kept = append(kept, bu)
			}
		}
		l.usageBilled[k] = append(kept, billedUsage{period: req.Period, quantity: *u.UsageQuantity})
	}
	sort.Slice(b.Lines, func(i, j int) bool {
		if b.Lines[i].OrderID != b.Lines[j].OrderID {
			return b.Lines[i].OrderID < b.Lines[j].OrderID
		}
		return b.Lines[i].Key() < b.Lines[j].Key()
	})
	b.applyFaults(req.Faults)
	return b, nil
}

func (b *Bill) applyFaults(f BillFaults) {
	drop := map[string]bool{}
	for _, k := range f.Drop {
		drop[k] = true
	}
	out := b.Lines[:0]
	for _, line := range b.Lines {
		k := line.Key()
		if drop[k] {
			b.Total = b.Total.Sub(line.Settlement)
			continue
		}
		if d, ok := f.Change[k]; ok {
			line.Settlement = line.Settlement.Add(d)
			line.PlatformFee = line.PlatformFee.Sub(d)
			b.Total = b.Total.Add(d)
		}
		out = append(out, line)
	}
	for _, line := range f.Add {
		out = append(out, line)
		b.Total = b.Total.Add(line.Settlement)
	}
	b.Lines = out
}

type computed struct {
	BillLine
	settlementFen int64
}

// amounts is the marketplace's line arithmetic in fen: revenue is what was paid (negative for a refund); for a
// general product the platform fee is revenue × rate and the seller gets the rest, for a joint-operation product
// the seller gets revenue × share and the marketplace the rest. Each product is rounded half to even to the fen.
func amounts(e *Entry, t Terms) computed {
	rev := roundFen(e.Amount.Shift(2))
	var fee, set int64
	if t.Type == TypeJointOperation {
		set = roundFen(decimal.NewFromInt(rev).Mul(t.Rate))
		fee = rev - set
	} else {
		fee = roundFen(decimal.NewFromInt(rev).Mul(t.Rate))
		set = rev - fee
	}
	return computed{BillLine: BillLine{OrderID: e.OrderID, OrderLineID: e.OrderLineID, OrderType: e.OrderType, InstanceID: e.InstanceID,
		Revenue: fenToYuan(rev), PlatformFee: fenToYuan(fee), Settlement: fenToYuan(set)}, settlementFen: set}
}

// beijing is the marketplace's business time zone: periods and consumption months are Beijing months.
var beijing = time.FixedZone("Asia/Shanghai", 8*60*60)

// usageLines bills pay-per-use usage (the caller holds the lock): one line per instance and consumption month
// (the Beijing month its hourly window starts in) of everything charged before the period ends, minus what
// earlier bills settled for that instance and month. Usage deducted from a package was paid with the package
// and is not billed; neither is a dial-test instance's, nor a supervised purchase's before acceptance.
// Revenue is the exact quantity × the unit price, rounded once per line.
func (l *Ledger) usageLines(req BillRequest, keys []string) []computed {
	if req.Usage == nil || req.UsagePrice == nil {
		return nil
	}
	type buyer struct {
		e     *Entry
		terms Terms
		price decimal.Decimal
	}
	buyers := map[string]*buyer{} // instance → its purchase
	tested := map[string]bool{}
	for _, k := range keys {
		e := l.entries[k]
		if e.InstanceID == "" {
			continue
		}
		if e.TestFlag {
			tested[e.InstanceID] = true
		}
		if e.OrderType != "NEW" || buyers[e.InstanceID] != nil {
			continue
		}
		price, ok := req.UsagePrice(e.ProductID)
		if !ok {
			continue
		}
		t, ok := req.Terms(e.ProductID)
		if !ok || t.Type != req.ProductType {
			continue
		}
		buyers[e.InstanceID] = &buyer{e: e, terms: t, price: price}
	}
	qty := map[string]decimal.Decimal{} // instance \x00 month → charged
	for _, c := range req.Usage.All() {
		b := buyers[c.InstanceID]
		if b == nil || tested[c.InstanceID] || c.RelatePkgInstance != "" || !c.BeginTime.Before(req.End) {
			continue
		}
		if s := b.e.Supervision; s != "" && s != "NOT_INVOLVED" && s != "COMPLETED" {
			continue
		}
		k := c.InstanceID + "\x00" + c.BeginTime.In(beijing).Format("2006-01")
		qty[k] = qty[k].Add(c.Value)
	}
	var out []computed
	for k, q := range qty {
		for _, bu := range l.usageBilled[k] {
			if bu.period != req.Period {
				q = q.Sub(bu.quantity)
			}
		}
		if q.IsZero() {
			continue
		}
		inst, month, _ := strings.Cut(k, "\x00")
		b := buyers[inst]
		rev := roundFen(q.Mul(b.price).Shift(2))
		var fee, set int64
		if b.terms.Type == TypeJointOperation {
			set = roundFen(decimal.NewFromInt(rev).Mul(b.terms.Rate))
			fee = rev - set
		} else {
			fee = roundFen(decimal.NewFromInt(rev).Mul(b.terms.Rate))
			set = rev - fee
		}
		q := q
		out = append(out, computed{BillLine: BillLine{OrderID: b.e.OrderID, OrderLineID: b.e.OrderLineID, OrderType: UsageOrderType,
			Revenue: fenToYuan(rev), PlatformFee: fenToYuan(fee), Settlement: fenToYuan(set), InstanceID: inst,
			UsageMonth: month, UsageQuantity: &q}, settlementFen: set})
	}
	return out
}

// roundFen rounds an amount already expressed in fen to a whole fen, halves to the even fen.
func roundFen(x decimal.Decimal) int64 {
	r := new(big.Rat).SetFrac(x.Coefficient(), big.NewInt(1))
	if exp := x.Exponent(); exp < 0 {
		r.SetFrac(x.Coefficient(), new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(-exp)), nil))
	} else if exp > 0 {
		r.SetInt(new(big.Int).Mul(x.Coefficient(), new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(exp)), nil)))
	}
	q, m := new(big.Int).QuoRem(r.Num(), r.Denom(), new(big.Int)) // truncates toward zero
	twice := new(big.Int).Mul(new(big.Int).Abs(m), big.NewInt(2))
	c := twice.Cmp(r.Denom())
	if c > 0 || (c == 0 && q.Bit(0) == 1) {
		if r.Sign() < 0 {
			q.Sub(q, big.NewInt(1))
		} else {
			q.Add(q, big.NewInt(1))
		}
	}
	return q.Int64()
}

func fenToYuan(f int64) decimal.Decimal { return decimal.New(f, -2) }

// BillDetailColumns are the headers of the marketplace's bill-detail export as the emulator writes it; they are
// the headers kooflow's default column mapping lists (internal/recon/mapping.json).
// The last three are pay-per-use usage columns, blank on order lines; like the others they are an assumption
// (docs/settlement.md, "Pay-per-use usage").
var BillDetailColumns = []string{"账期", "订单号", "订单行号", "订单类型", "产品销售收入", "平台费", "伙伴结算金额(含税)", "账单状态",
	"实例ID", "消费月份", "使用量"}

func (b Bill) records() [][]string {
	period := b.Period[:4] + b.Period[5:] // the seller center writes 202610
	out := make([][]string, 0, len(b.Lines))
	for _, line := range b.Lines {
		inst, month, quantity := line.InstanceID, "", ""
		if line.UsageMonth != "" {
			month = line.UsageMonth[:4] + line.UsageMonth[5:]
			quantity = line.UsageQuantity.StringFixed(4)
		}
		out = append(out, []string{period, line.OrderID, line.OrderLineID, line.OrderType, line.Revenue.StringFixed(2),
			line.PlatformFee.StringFixed(2), line.Settlement.StringFixed(2), b.Status, inst, month, quantity})
	}
	return out
}

// WriteDetailCSV writes the bill detail as the seller center's CSV export.
func (b Bill) WriteDetailCSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(BillDetailColumns); err != nil {
		return err
	}
	if err := cw.WriteAll(b.records()); err != nil {
		return err
	}
	return cw.Error()
}

// WriteDetailXLSX writes the bill detail as the seller center's XLSX export: a title row, then the table.
func (b Bill) WriteDetailXLSX(w io.Writer) error {
	f := excelize.NewFile()
	defer f.Close()
	const sheet = "账单明细"
	if err := f.SetSheetName("Sheet1", sheet); err != nil {
		return err
	}
	sw, err := f.NewStreamWriter(sheet)
	if err != nil {
		return err
	}
	if err := sw.SetRow("A1", []any{fmt.Sprintf("%s %s 账单明细", b.Period, b.ProductType)}); err != nil {
		return err
	}
	header := make([]any, len(BillDetailColumns))
	for i, c := range BillDetailColumns {
		header[i] = c
	}
	if err := sw.SetRow("A2", header); err != nil {
		return err
	}
	for i, rec := range b.records() {
		row := make([]any, len(rec))
		for j, v := range rec {
			row[j] = v
		}
		cell, _ := excelize.CoordinatesToCellName(1, i+3)
		if err := sw.SetRow(cell, row); err != nil {
			return err
		}
	}
	if err := sw.Flush(); err != nil {
		return err
	}
	_, err = f.WriteTo(w)
	return err
}
