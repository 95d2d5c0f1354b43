package settlement

import (
	"slices"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/kooflow/kooflow/internal/catalog"
	"github.com/kooflow/kooflow/internal/koogallery"
)

func d(s string) decimal.Decimal { return decimal.RequireFromString(s) }

// bj is a Beijing wall-clock time.
func bj(s string) *time.Time {
	t, err := time.ParseInLocation("2006-01-02 15:04", s, Beijing)
	if err != nil {
		panic(err)
	}
	t = t.UTC()
	return &t
}

var testTerms = map[string]Terms{
	"CRM":       {Type: catalog.General, Rate: d("0.05")},
	"ANALYTICS": {Type: catalog.JointOperation, Rate: d("0.70")},
}

func product(id string) (Terms, bool) { t, ok := testTerms[id]; return t, ok }

func charge(id, typ, product, paid string, eff *time.Time) OrderRow {
	return OrderRow{Key: Key{id, id + "-1"}, InstanceID: "i1", OrderType: typ, ProductID: product,
		PaidAmount: d(paid), ListAmount: d(paid), EffectiveAt: eff, Quantity: 1}
}

func refund(id, typ, refersTo, paid string, eff *time.Time) OrderRow {
	r := charge(id, typ, "", paid, eff)
	r.Key.OrderLineID = refersTo + "-1"
	r.RefersTo = refersTo
	return r
}

type want struct {
	eligible bool
	codes    []ReasonCode
	amounts  *Amounts
}

func amounts(rev, fee, settle string) *Amounts {
	return &Amounts{Revenue: d(rev), PlatformFee: d(fee), Settlement: d(settle)}
}

func TestEvaluate(t *testing.T) {
	jan := MustPeriod("2024-01")
	notInvolved := InstanceState{ID: "i1", Supervision: SupervisionNotInvolved}
	cases := []struct {
		name     string
		end      time.Time
		inst     InstanceState
		rows     []OrderRow
		settled  map[Key]SettledLine
		payments map[string]Payment
		types    []catalog.ProductType
		want     map[string]want // by order id
		totals   map[catalog.ProductType]Amounts
	}{
		{
			// Seed 003: 100 yuan/month × 12 = 1200 bought 2024-01-05, unsubscribed 2024-01-07: both lines in the
			// same bill, summing to 0.
			name: "seed example: 1200 order refunded in full two days later nets to 0",
			end:  jan.End(), inst: notInvolved,
			rows: []OrderRow{
				charge("O1", koogallery.OrderTypeNew, "CRM", "1200", bj("2024-01-05 10:00")),
				refund("U1", koogallery.OrderTypeUnsubscribe, "O1", "-1200", bj("2024-01-07 09:00")),
			},
			want: map[string]want{
				"O1": {eligible: true, amounts: amounts("1200.00", "60.00", "1140.00")},
				"U1": {eligible: true, amounts: amounts("-1200.00", "-60.00", "-1140.00")},
			},
			totals: map[catalog.ProductType]Amounts{catalog.General: *amounts("0", "0", "0")},
		},
		{
			name: "not-yet-effective renewal refunded in full is billed with its refund",
			end:  jan.End(), inst: notInvolved,
			rows: []OrderRow{
				charge("R1", koogallery.OrderTypeRenew, "CRM", "1200", bj("2024-06-01 00:00")),
				refund("U2", koogallery.OrderTypeUnsubscribe, "R1", "-1200", bj("2024-01-20 12:00")),
			},
			want: map[string]want{
				"R1": {eligible: true, amounts: amounts("1200.00", "60.00", "1140.00")},
				"U2": {eligible: true, amounts: amounts("-1200.00", "-60.00", "-1140.00")},
			},
			totals: map[catalog.ProductType]Amounts{catalog.General: *amounts("0", "0", "0")},
		},
		{
			name: "renewal counts by its effective time, not its payment",
			end:  jan.End(), inst: notInvolved,
			rows: []OrderRow{charge("R2", koogallery.OrderTypeRenew, "CRM", "1200", bj("2024-02-01 00:00"))},
			want: map[string]want{"R2": {codes: []ReasonCode{ReasonEffectiveLater}}},
		},
		{
			name: "partial negotiated refund in the same period nets to the difference",
			end:  jan.End(), inst: notInvolved,
			rows: []OrderRow{
				charge("O3", koogallery.OrderTypeNew, "CRM", "1200", bj("2024-01-05 10:00")),
				refund("F3", koogallery.OrderTypeRefund, "O3", "-300", bj("2024-01-09 10:00")),
			},
			want: map[string]want{
				"O3": {eligible: true, amounts: amounts("1200.00", "60.00", "1140.00")},
				"F3": {eligible: true, amounts: amounts("-300.00", "-15.00", "-285.00")},
			},
			totals: map[catalog.ProductType]Amounts{catalog.General: *amounts("900", "45", "855")},
		},
		{
			name: "refund of a line settled earlier is a negative line at the original rate",
			end:  MustPeriod("2024-02").End(), inst: notInvolved,
			rows: []OrderRow{
				charge("O4", koogallery.OrderTypeNew, "CRM", "1200", bj("2024-01-05 10:00")),
				refund("F4", koogallery.OrderTypeRefund, "O4", "-200", bj("2024-02-03 10:00")),
			},
			// The catalog's rate is 5 %, but the original was settled at 10 %: the refund follows the original.
			settled: map[Key]SettledLine{{"O4", "O4-1"}: {Period: "2024-01", Type: catalog.General, Status: "final", Rate: d("0.10")}},
			want: map[string]want{
				"O4": {codes: []ReasonCode{ReasonSettled}},
				"F4": {eligible: true, amounts: amounts("-200.00", "-20.00", "-180.00")},
			},
		},
		{
			name: "refund effective after the period: the original is billed alone",
			end:  jan.End(), inst: notInvolved,
			rows: []OrderRow{
				charge("O5", koogallery.OrderTypeNew, "CRM", "1200", bj("2024-01-30 10:00")),
				refund("U5", koogallery.OrderTypeUnsubscribe, "O5", "-1200", bj("2024-02-01 08:00")),
			},
			want: map[string]want{
				"O5": {eligible: true, amounts: amounts("1200.00", "60.00", "1140.00")},
				"U5": {codes: []ReasonCode{ReasonEffectiveLater}},
			},
		},
		{
			// Seed 003: credit-paid on 2020-01-01, supervision completed 2020-03-15, not repaid: not billed.
			name: "seed example: credit-paid and not repaid is not billed",
			end:  MustPeriod("2020-03").End(), inst: InstanceState{ID: "i1", Supervision: SupervisionCompleted},
			rows:     []OrderRow{charge("C1", koogallery.OrderTypeNew, "ANALYTICS", "3000", bj("2020-03-15 16:00"))},
			payments: map[string]Payment{"C1": {Credit: true}},
			want:     map[string]want{"C1": {codes: []ReasonCode{ReasonUnpaid}}},
		},
		{
			name: "seed example continued: repaid in April, billed for April (on the 3rd of May)",
			end:  MustPeriod("2020-04").End(), inst: InstanceState{ID: "i1", Supervision: SupervisionCompleted},
			rows:     []OrderRow{charge("C1", koogallery.OrderTypeNew, "ANALYTICS", "3000", bj("2020-03-15 16:00"))},
			payments: map[string]Payment{"C1": {Credit: true, RepaidAt: bj("2020-04-10 11:00")}},
			want:     map[string]want{"C1": {eligible: true, amounts: amounts("3000.00", "900.00", "2100.00")}},
			totals:   map[catalog.ProductType]Amounts{catalog.JointOperation: *amounts("3000", "900", "2100")},
		},
		{
			name: "repaid after the period end counts for the next period",
			end:  MustPeriod("2020-03").End(), inst: InstanceState{ID: "i1", Supervision: SupervisionCompleted},
			rows:     []OrderRow{charge("C2", koogallery.OrderTypeNew, "ANALYTICS", "3000", bj("2020-03-15 16:00"))},
			payments: map[string]Payment{"C2": {Credit: true, RepaidAt: bj("2020-04-01 00:00")}},
			want:     map[string]want{"C2": {codes: []ReasonCode{ReasonUnpaid}}},
		},
		{
			name: "supervision in progress holds the order and its refund",
			end:  jan.End(), inst: InstanceState{ID: "i1", Supervision: "IN_SERVICE"},
			rows: []OrderRow{
				charge("S1", koogallery.OrderTypeNew, "CRM", "2000", nil),
				refund("F6", koogallery.OrderTypeRefund, "S1", "-500", bj("2024-01-10 10:00")),
			},
			want: map[string]want{
				"S1": {codes: []ReasonCode{ReasonSupervision, ReasonNotEffective}},
				"F6": {codes: []ReasonCode{ReasonWaitsForOriginal}},
			},
		},
		{
			name: "dial tests, trials, unknown products and unknown refunded orders are not billed",
			end:  jan.End(), inst: notInvolved,
			rows: []OrderRow{
				func() OrderRow {
					r := charge("T1", koogallery.OrderTypeNew, "CRM", "100", bj("2024-01-02 00:00"))
					r.TestFlag = true
					return r
				}(),
				charge("T2", koogallery.OrderTypeTrial, "CRM", "0", bj("2024-01-02 00:00")),
				charge("T3", koogallery.OrderTypeNew, "NOT-IN-CATALOG", "100", bj("2024-01-02 00:00")),
				refund("T4", koogallery.OrderTypeRefund, "NOT-HERE", "-100", bj("2024-01-02 00:00")),
			},
			want: map[string]want{
				"T1": {codes: []ReasonCode{ReasonTest}},
				"T2": {codes: []ReasonCode{ReasonTrial}},
				"T3": {codes: []ReasonCode{ReasonUnknownProduct}},
				"T4": {codes: []ReasonCode{ReasonOriginalMissing}},
			},
		},
		{
			name: "a close for one product type leaves the other alone",
			end:  jan.End(), inst: notInvolved, types: []catalog.ProductType{catalog.JointOperation},
			rows: []OrderRow{
				charge("G1", koogallery.OrderTypeNew, "CRM", "100", bj("2024-01-02 00:00")),
				charge("J1", koogallery.OrderTypeChange, "ANALYTICS", "100.01", bj("2024-01-02 00:00")),
			},
			want: map[string]want{
				"G1": {codes: []ReasonCode{ReasonOtherType}},
				"J1": {eligible: true, amounts: amounts("100.01", "30.00", "70.01")},
			},
		},
		{
			name: "period boundaries are Beijing midnight",
			end:  jan.End(), inst: notInvolved,
			rows: []OrderRow{
				charge("B1", koogallery.OrderTypeNew, "CRM", "10", bj("2024-01-31 23:59")),
				charge("B2", koogallery.OrderTypeNew, "CRM", "10", bj("2024-02-01 00:00")),
			},
			want: map[string]want{
				"B1": {eligible: true, amounts: amounts("10.00", "0.50", "9.50")},
				"B2": {codes: []ReasonCode{ReasonEffectiveLater}},
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			vs := Evaluate(Input{End: tc.end, Types: tc.types, Instance: tc.inst, Rows: tc.rows,
				Settled: tc.settled, Payments: tc.payments, Product: product})
			if len(vs) != len(tc.rows) {
				t.Fatalf("%d verdicts for %d rows", len(vs), len(tc.rows))
			}
			for _, v := range vs {
				w, ok := tc.want[v.Row.OrderID]
				if !ok {
					t.Fatalf("no expectation for %s", v.Row.OrderID)
				}
				var codes []ReasonCode
				for _, r := range v.Reasons {
					codes = append(codes, r.Code)
					if r.Detail == "" {
						t.Errorf("%s: reason %s has no detail", v.Row.OrderID, r.Code)
					}
				}
				if v.Eligible != w.eligible || !slices.Equal(codes, w.codes) {
					t.Errorf("%s: eligible=%v reasons=%v, want eligible=%v reasons=%v (%v)", v.Row.OrderID, v.Eligible, codes, w.eligible, w.codes, v.Reasons)
				}
				if w.amounts != nil && !sameAmounts(v.Amounts, *w.amounts) {
					t.Errorf("%s: amounts %+v, want %+v", v.Row.OrderID, v.Amounts, *w.amounts)
				}
				if v.Eligible && v.AttributedAt == nil {
					t.Errorf("%s: eligible without an attribution time", v.Row.OrderID)
				}
			}
			if tc.totals != nil {
				got := Totals(vs)
				for typ, w := range tc.totals {
					if !sameAmounts(got[typ], w) {
						t.Errorf("%s totals %+v, want %+v", typ, got[typ], w)
					}
				}
			}
		})
	}
}

func sameAmounts(a, b Amounts) bool {
	return a.Revenue.Equal(b.Revenue) && a.PlatformFee.Equal(b.PlatformFee) && a.Settlement.Equal(b.Settlement)
}

func TestAttributionOfFullyRefundedRenewalIsTheRefundTime(t *testing.T) {
	rows := []OrderRow{
		charge("R1", koogallery.OrderTypeRenew, "CRM", "600", bj("2024-06-01 00:00")),
		refund("U1", koogallery.OrderTypeUnsubscribe, "R1", "-600", bj("2024-01-20 12:00")),
	}
	vs := Evaluate(Input{End: MustPeriod("2024-01").End(), Instance: InstanceState{Supervision: SupervisionNotInvolved},
		Rows: rows, Product: product})
	if !vs[0].AttributedAt.Equal(*bj("2024-01-20 12:00")) {
		t.Fatalf("renewal attributed at %v, want the refund time", vs[0].AttributedAt)
	}
	// A partial refund does not move the renewal.
	rows[1].PaidAmount = d("-100")
	vs = Evaluate(Input{End: MustPeriod("2024-01").End(), Instance: InstanceState{Supervision: SupervisionNotInvolved},
		Rows: rows, Product: product})
	if vs[0].Eligible || vs[1].Eligible {
		t.Fatalf("partially refunded future renewal must wait for its effective time: %+v", vs)
	}
	if !vs[0].AttributedAt.Equal(*bj("2024-06-01 00:00")) {
		t.Fatalf("renewal attributed at %v, want its effective time", vs[0].AttributedAt)
	}
}

func TestRoundIsHalfEvenAndSymmetric(t *testing.T) {
	for in, want := range map[string]string{
		"0.125": "0.12", "0.135": "0.14", "0.145": "0.14", "2.675": "2.68", "0.124999": "0.12", "0.125001": "0.13",
		"-0.125": "-0.12", "-0.135": "-0.14", "1200": "1200.00", "0.005": "0.00", "0.015": "0.02", "-0.005": "0.00",
	} {
		if got := Round(d(in)); !got.Equal(d(want)) {
			t.Errorf("Round(%s) = %s, want %s", in, got, want)
		}
		if !Round(d(in).Neg()).Equal(Round(d(in)).Neg()) {
			t.Errorf("Round is not symmetric at %s", in)
		}
	}
}

func TestCompute(t *testing.T) {
	gen := Terms{Type: catalog.General, Rate: d("0.05")}
	joint := Terms{Type: catalog.JointOperation, Rate: d("0.70")}
	cases := []struct {
		paid  string
		terms Terms
		want  *Amounts
	}{
		{"1200", gen, amounts("1200", "60", "1140")},
		{"10.10", gen, amounts("10.10", "0.50", "9.60")},     // fee 0.505 → 0.50 (half to even)
		{"10.30", gen, amounts("10.30", "0.52", "9.78")},     // fee 0.515 → 0.52
		{"0.125", gen, amounts("0.12", "0.01", "0.11")},      // revenue rounds first: 0.125 → 0.12; fee 0.006 → 0.01
		{"-10.10", gen, amounts("-10.10", "-0.50", "-9.60")}, // refunds mirror charges
		{"99.99", joint, amounts("99.99", "30.00", "69.99")}, // share 69.993 → 69.99
		{"0.05", joint, amounts("0.05", "0.01", "0.04")},     // share 0.035 → 0.04
		{"1000.005", joint, amounts("1000.00", "300.00", "700.00")},
		{"0", gen, amounts("0", "0", "0")},
	}
	for _, c := range cases {
		got := Compute(d(c.paid), c.terms)
		if !sameAmounts(got, *c.want) {
			t.Errorf("Compute(%s, %s) = %+v, want %+v", c.paid, c.terms.Type, got, *c.want)
		}
		if !got.PlatformFee.Add(got.Settlement).Equal(got.Revenue) {
			t.Errorf("Compute(%s): fee + settlement != revenue", c.paid)
		}
	}
}

func TestThresholdCarriesForwardUntilTheCumulativeTotalReachesIt(t *testing.T) {
	threshold := d("1000")
	// Month 1: 600 yuan eligible: below the threshold, carried forward. Month 2: 500 more, and the lines carried
	// from month 1 are still unsettled, so they are evaluated again: 1100 reaches it.
	o1 := charge("M1", koogallery.OrderTypeNew, "ANALYTICS", "857.16", bj("2024-01-10 00:00")) // 600.01 to the seller
	o2 := charge("M2", koogallery.OrderTypeNew, "ANALYTICS", "714.29", bj("2024-02-10 00:00")) // 500.00 to the seller
	inst := InstanceState{Supervision: SupervisionNotInvolved}
	jan := Totals(Evaluate(Input{End: MustPeriod("2024-01").End(), Instance: inst, Rows: []OrderRow{o1, o2}, Product: product}))
	if got := jan[catalog.JointOperation].Settlement; !got.Equal(d("600.01")) || MeetsThreshold(got, threshold) {
		t.Fatalf("January: %s, want 600.01 carried forward", got)
	}
	feb := Totals(Evaluate(Input{End: MustPeriod("2024-02").End(), Instance: inst, Rows: []OrderRow{o1, o2}, Product: product}))
	if got := feb[catalog.JointOperation].Settlement; !got.Equal(d("1100.01")) || !MeetsThreshold(got, threshold) {
		t.Fatalf("February: %s, want 1100.01 billed", got)
	}
	for _, c := range []struct {
		total string
		bill  bool
	}{{"999.99", false}, {"1000", true}, {"1000.00", true}, {"-50", false}, {"0", false}} {
		if MeetsThreshold(d(c.total), threshold) != c.bill {
			t.Errorf("MeetsThreshold(%s) != %v", c.total, c.bill)
		}
	}
	if !MeetsThreshold(d("0"), d("0")) {
		t.Error("a zero threshold bills everything")
	}
}

func TestListRevenue(t *testing.T) {
	sku := catalog.SKU{SKUCode: "m", UnitPrice: d("100"), Period: "month"}
	cases := []struct {
		periodType string
		n          int
		qty        int64
		want       string
		ok         bool
	}{
		{"month", 12, 1, "1200", true}, // the seed's 100 yuan/month × 12
		{"year", 1, 3, "3600", true},
		{"day", 10, 1, "0", false},
	}
	for _, c := range cases {
		got, ok := ListRevenue(sku, c.periodType, c.n, c.qty)
		if ok != c.ok || (ok && !got.Equal(d(c.want))) {
			t.Errorf("ListRevenue(%s × %d × %d) = %s %v, want %s %v", c.periodType, c.n, c.qty, got, ok, c.want, c.ok)
		}
	}
	once := catalog.SKU{UnitPrice: d("2000"), Period: "once"}
	if got, ok := ListRevenue(once, "", 0, 2); !ok || !got.Equal(d("4000")) {
		t.Errorf("one-time SKU: %s %v", got, ok)
	}
}
