package recon

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/shopspring/decimal"
)

func TestAmountsAreWrittenWithTwoPlacesAndReadBack(t *testing.T) {
	d := decimal.RequireFromString("1140")
	r := Receivable{Period: "2026-10", Billed: decimal.RequireFromString("2859.4"), Outstanding: decimal.RequireFromString("9.5"),
		Invoice: &Invoice{Number: "I", Amount: decimal.NewFromInt(5)}}
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"billed":"2859.40"`, `"outstanding":"9.50"`, `"amount":"5.00"`, `"period":"2026-10"`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("%s lacks %s", b, want)
		}
	}
	if strings.Count(string(b), `"billed"`) != 1 {
		t.Errorf("billed written twice: %s", b)
	}
	var back Receivable
	if err := json.Unmarshal(b, &back); err != nil || !back.Billed.Equal(r.Billed) || back.Invoice == nil || !back.Invoice.Amount.Equal(decimal.NewFromInt(5)) {
		t.Fatalf("read back: %+v %v", back, err)
	}
	l, _ := json.Marshal(DiffLine{KooflowSettlement: &d, Difference: d.Neg(), Kind: KindKooflowOnly})
	if !strings.Contains(string(l), `"kooflowSettlement":"1140.00"`) || !strings.Contains(string(l), `"difference":"-1140.00"`) ||
		strings.Contains(string(l), "marketplaceSettlement") {
		t.Fatalf("diff line: %s", l)
	}
}
