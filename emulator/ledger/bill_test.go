package ledger

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"
)

func at(s string) *time.Time {
	t, err := time.Parse("2006-01-02 15:04", s)
	if err != nil {
		panic(err)
	}
	t = t.Add(-8 * time.Hour) // Beijing wall time
	return &t
}

func dec(s string) decimal.Decimal { return decimal.RequireFromString(s) }

func terms(id string) (Terms, bool) {
	switch id {
	case "G":
		return Terms{Type: TypeGeneral, Rate: dec("0.05")}, true
	case "J":
		return Terms{Type: TypeJointOperation, Rate: dec("0.70")}, true
	}
	return Terms{}, false
}

var octEnd = time.Date(2026, 10, 31, 16, 0, 0, 0, time.UTC) // 2026-11-01 00:00 Beijing

func TestRoundFenIsHalfToEven(t *testing.T) {
	for in, want := range map[string]int64{"4.5": 4, "5.5": 6, "-4.5": -4, "-5.5": -6, "4.51": 5, "166.665": 167, "0.4999": 0, "1000": 1000} {
		if got := roundFen(dec(in)); got != want {
			t.Errorf("roundFen(%s) = %d, want %d", in, got, want)
		}
	}
}

func TestBillNetsRefundsHoldsWhatIsNotDueAndCarriesBelowTheThreshold(t *testing.T) {
	l := New()
	for _, e := range []Entry{
		{OrderID: "O1", OrderLineID: "1", OrderType: "NEW", InstanceID: "i1", ProductID: "G", Amount: dec("1200"), EffectiveAt: at("2026-10-05 10:00")},
		{OrderID: "U1", OrderLineID: "1", OrderType: "UNSUBSCRIBE", InstanceID: "i1", ProductID: "G", Amount: dec("-1200"), RefersTo: "O1", EffectiveAt: at("2026-10-07 10:00")},
		{OrderID: "O2", OrderLineID: "1", OrderType: "NEW", InstanceID: "i2", ProductID: "G", Amount: dec("999.90"), EffectiveAt: at("2026-10-06 10:00")},
		{OrderID: "O3", OrderLineID: "1", OrderType: "NEW", InstanceID: "i3", ProductID: "G", Amount: dec("500"), Supervision: "IN_SERVICE"},
		{OrderID: "O4", OrderLineID: "1", OrderType: "NEW", InstanceID: "i4", ProductID: "G", Amount: dec("700"), EffectiveAt: at("2026-10-06 10:00"), Credit: true},
		{OrderID: "O5", OrderLineID: "1", OrderType: "NEW", InstanceID: "i5", ProductID: "G", Amount: dec("100"), EffectiveAt: at("2026-10-06 10:00"), TestFlag: true},
		{OrderID: "O6", OrderLineID: "1", OrderType: "RENEW", InstanceID: "i2", ProductID: "G", Amount: dec("999.90"), EffectiveAt: at("2026-11-06 00:00")},
		{OrderID: "O7", OrderLineID: "1", OrderType: "NEW", InstanceID: "i7", ProductID: "J", Amount: dec("100"), EffectiveAt: at("2026-10-06 10:00")},
	} {
		if err := l.Add(e); err != nil {
			t.Fatal(err)
		}
	}
	b, err := l.Bill(BillRequest{Period: "2026-10", End: octEnd, ProductType: TypeGeneral, Threshold: dec("100"), Terms: terms})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, line := range b.Lines {
		got = append(got, line.OrderID+" "+line.Revenue.StringFixed(2)+" "+line.PlatformFee.StringFixed(2)+" "+line.Settlement.StringFixed(2))
	}
	want := "O1 1200.00 60.00 1140.00\nO2 999.90 50.00 949.90\nU1 -1200.00 -60.00 -1140.00"
	if strings.Join(got, "\n") != want || !b.Total.Equal(dec("949.90")) || b.Carried {
		t.Fatalf("bill:\n%s\ntotal %s, want:\n%s", strings.Join(got, "\n"), b.Total, want)
	}
	// Billed lines are not billed again in a later period; the same period asked again is the same bill; the
	// joint-operation bill is below its threshold and carried.
	same, _ := l.Bill(BillRequest{Period: "2026-10", End: octEnd, ProductType: TypeGeneral, Threshold: dec("0"), Terms: terms})
	if len(same.Lines) != 3 || !same.Total.Equal(b.Total) {
		t.Fatalf("the period billed again: %+v", same)
	}
	again, _ := l.Bill(BillRequest{Period: "2026-11", End: octEnd.AddDate(0, 1, 0), ProductType: TypeGeneral, Threshold: dec("0"), Terms: terms})
	if len(again.Lines) != 1 || again.Lines[0].OrderID != "O6" {
		t.Fatalf("November bills the renewal only, got %+v", again.Lines)
	}
	j, _ := l.Bill(BillRequest{Period: "2026-10", End: octEnd, ProductType: TypeJointOperation, Threshold: dec("100"), Terms: terms})
	if !j.Carried || !j.Total.Equal(dec("70")) || len(j.Lines) != 0 {
		t.Fatalf("joint-operation bill: %+v", j)
	}
}

func TestBillFaultsAndExport(t *testing.T) {
	l := New()
	_ = l.Add(Entry{OrderID: "O1", OrderLineID: "1", OrderType: "NEW", InstanceID: "i1", ProductID: "G", Amount: dec("1000"), EffectiveAt: at("2026-10-05 10:00")})
	_ = l.Add(Entry{OrderID: "O2", OrderLineID: "1", OrderType: "NEW", InstanceID: "i2", ProductID: "G", Amount: dec("1000"), EffectiveAt: at("2026-10-05 10:00")})
	b, err := l.Bill(BillRequest{Period: "2026-10", End: octEnd, ProductType: TypeGeneral, Terms: terms, Faults: BillFaults{
		Drop:   []string{"O1/1"},
		Change: map[string]decimal.Decimal{"O2/1": dec("-0.01")},
		Add:    []BillLine{{OrderID: "X", OrderLineID: "X", OrderType: "NEW", Revenue: dec("1"), PlatformFee: dec("0"), Settlement: dec("1")}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if len(b.Lines) != 2 || b.Lines[0].OrderID != "O2" || !b.Lines[0].Settlement.Equal(dec("949.99")) || !b.Total.Equal(dec("950.99")) {
		t.Fatalf("faulty bill: %+v", b)
	}
	var buf bytes.Buffer
	if err := b.WriteDetailCSV(&buf); err != nil {
		t.Fatal(err)
	}
	if want := "账期,订单号,订单行号,订单类型,产品销售收入,平台费,伙伴结算金额(含税),账单状态,实例ID,消费月份,使用量\n202610,O2,1,NEW,1000.00,50.01,949.99,待会签,i2,,\n"; !strings.HasPrefix(buf.String(), want) {
		t.Fatalf("export:\n%s", buf.String())
	}
}

func TestBillHasOneUsageLinePerInstanceAndConsumptionMonth(t *testing.T) {
	l := New()
	for _, e := range []Entry{
		{OrderID: "P1", OrderLineID: "P1-1", OrderType: "NEW", InstanceID: "p1", ProductID: "U", Amount: dec("0"), EffectiveAt: at("2026-09-01 10:00")},
		{OrderID: "P2", OrderLineID: "P2-1", OrderType: "NEW", InstanceID: "p2", ProductID: "U", Amount: dec("0"), EffectiveAt: at("2026-09-01 10:00"), TestFlag: true},
	} {
		if err := l.Add(e); err != nil {
			t.Fatal(err)
		}
	}
	u := NewUsage()
	hour := func(s string) time.Time { return *at(s) }
	for i, c := range []UsageCharge{
		{InstanceID: "p1", BeginTime: hour("2026-09-30 23:00"), Value: dec("100.1234")}, // September, Beijing
		{InstanceID: "p1", BeginTime: hour("2026-10-01 00:00"), Value: dec("50.5")},     // October
		{InstanceID: "p1", BeginTime: hour("2026-10-15 11:00"), Value: dec("49.3766")},  // October
		{InstanceID: "p1", BeginTime: hour("2026-10-18 11:00"), Value: dec("300"), RelatePkgInstance: "pkg"},
		{InstanceID: "p1", BeginTime: hour("2026-11-01 00:00"), Value: dec("7")},  // after the period
		{InstanceID: "p2", BeginTime: hour("2026-10-02 00:00"), Value: dec("10")}, // a dial test
	} {
		c.MeteringSN = fmt.Sprint("sn", i)
		u.Charge(c)
	}
	price := func(id string) (decimal.Decimal, bool) { return dec("1.234567"), id == "U" }
	uterms := func(id string) (Terms, bool) { return Terms{Type: TypeGeneral, Rate: dec("0.05")}, id == "U" }
	req := BillRequest{Period: "2026-10", End: octEnd, ProductType: TypeGeneral, Terms: uterms, Usage: u, UsagePrice: price}
	b, err := l.Bill(req)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, line := range b.Lines {
		q := ""
		if line.UsageQuantity != nil {
			q = line.UsageQuantity.StringFixed(4)
		}
		got = append(got, fmt.Sprintf("%s %s %s %s %s %s/%s/%s", line.Key(), line.OrderType, line.UsageMonth, q,
			line.InstanceID, line.Revenue.StringFixed(2), line.PlatformFee.StringFixed(2), line.Settlement.StringFixed(2)))
	}
	// 100.1234 × 1.234567 = 123.6090…; 99.8766 × 1.234567 = 123.3043… (docs/settlement.md's worked example).
	want := []string{
		"P1/P1-1 NEW   p1 0.00/0.00/0.00",
		"P1/usage:p1:2026-09 USAGE 2026-09 100.1234 p1 123.61/6.18/117.43",
		"P1/usage:p1:2026-10 USAGE 2026-10 99.8766 p1 123.30/6.16/117.14",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("lines:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// The same period again is the same bill; usage of September charged after it was billed is the next bill's.
	again, err := l.Bill(req)
	if err != nil || len(again.Lines) != 3 || !again.Total.Equal(b.Total) {
		t.Fatalf("the period billed again: %+v (%v), want the same %s", again, err, b.Total)
	}
	u.Charge(UsageCharge{MeteringSN: "late", InstanceID: "p1", BeginTime: hour("2026-09-20 11:00"), Value: dec("2.5")})
	nov, err := l.Bill(BillRequest{Period: "2026-11", End: octEnd.AddDate(0, 1, 0), ProductType: TypeGeneral, Terms: uterms, Usage: u, UsagePrice: price})
	if err != nil {
		t.Fatal(err)
	}
	got = nil
	for _, line := range nov.Lines {
		got = append(got, line.Key()+" "+line.UsageQuantity.StringFixed(4))
	}
	if strings.Join(got, ",") != "P1/usage:p1:2026-09 2.5000,P1/usage:p1:2026-11 7.0000" {
		t.Fatalf("November's usage lines: %v", got)
	}
	var csv bytes.Buffer
	if err := b.WriteDetailCSV(&csv); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(csv.String(), "202610,P1,P1-1,USAGE,123.61,6.18,117.43,待会签,p1,202609,100.1234") {
		t.Fatalf("the CSV has no September usage row:\n%s", csv.String())
	}
}
