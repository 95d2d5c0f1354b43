package ledger

import (
	"bytes"
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
	// Billed lines are not billed again; the joint-operation bill is below its threshold and carried.
	again, _ := l.Bill(BillRequest{Period: "2026-10", End: octEnd, ProductType: TypeGeneral, Threshold: dec("0"), Terms: terms})
	if len(again.Lines) != 0 {
		t.Fatalf("lines billed twice: %+v", again.Lines)
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
	if want := "账期,订单号,订单行号,订单类型,产品销售收入,平台费,伙伴结算金额(含税),账单状态\n202610,O2,1,NEW,1000.00,50.01,949.99,待会签\n"; !strings.HasPrefix(buf.String(), want) {
		t.Fatalf("export:\n%s", buf.String())
	}
}
