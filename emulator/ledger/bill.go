package ledger

import (
	"encoding/csv"
	"fmt"
	"io"
	"math/big"
	"sort"
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
}

// BillFaults are deliberate errors in a bill.
type BillFaults struct {
	Drop   []string                   // "orderId/orderLineId" lines left out
	Change map[string]decimal.Decimal // "orderId/orderLineId" → amount added to the seller's settlement
	Add    []BillLine                 // lines billed that the seller never had
}

// BillLine is one line of the marketplace's bill detail.
type BillLine struct {
	OrderID     string
	OrderLineID string
	OrderType   string
	Revenue     decimal.Decimal
	PlatformFee decimal.Decimal
	Settlement  decimal.Decimal
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
		if _, done := l.billed[k]; done {
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
		if _, done := l.billed[k]; done {
			continue
		}
		t, ok := chargeNow[e.InstanceID+"\x00"+e.RefersTo]
		if !ok {
			// The refunded charge was billed in an earlier bill: the refund follows at that bill's terms.
			found := false
			for ck, bl := range l.billed {
				c := l.entries[ck]
				if c != nil && c.OrderID == e.RefersTo && c.InstanceID == e.InstanceID && chargeTypes[c.OrderType] {
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
	b.Total = fenToYuan(total)
	if b.Total.LessThan(req.Threshold) {
		return Bill{Period: req.Period, ProductType: req.ProductType, Carried: true, Total: b.Total}, nil
	}
	for _, p := range picked {
		l.billed[key(p.e.OrderID, p.e.OrderLineID)] = billedLine{period: req.Period, terms: p.terms}
	}
	sort.Slice(b.Lines, func(i, j int) bool {
		if b.Lines[i].OrderID != b.Lines[j].OrderID {
			return b.Lines[i].OrderID < b.Lines[j].OrderID
		}
		return b.Lines[i].OrderLineID < b.Lines[j].OrderLineID
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
		k := line.OrderID + "/" + line.OrderLineID
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
	return computed{BillLine: BillLine{OrderID: e.OrderID, OrderLineID: e.OrderLineID, OrderType: e.OrderType,
		Revenue: fenToYuan(rev), PlatformFee: fenToYuan(fee), Settlement: fenToYuan(set)}, settlementFen: set}
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
var BillDetailColumns = []string{"账期", "订单号", "订单行号", "订单类型", "产品销售收入", "平台费", "伙伴结算金额(含税)", "账单状态"}

func (b Bill) records() [][]string {
	period := b.Period[:4] + b.Period[5:] // the seller center writes 202610
	out := make([][]string, 0, len(b.Lines))
	for _, line := range b.Lines {
		out = append(out, []string{period, line.OrderID, line.OrderLineID, line.OrderType, line.Revenue.StringFixed(2),
			line.PlatformFee.StringFixed(2), line.Settlement.StringFixed(2), b.Status})
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
