package ledger

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"
)

func d(s string) decimal.Decimal { return decimal.RequireFromString(s) }

func TestRefundNetsToZero(t *testing.T) {
	l := New()
	at := time.Date(2024, 1, 5, 0, 0, 0, 0, time.UTC)
	// The documented example (docs/koogallery.md, "Settlement rules"): 100 yuan/month x 12 bought, then
	// unsubscribed; the two lines sum to 0.
	if err := l.Add(Entry{OrderID: "CS1", OrderLineID: "CS1-1", OrderType: "NEW", Amount: d("1200"), PlacedAt: at, Payment: Paid}); err != nil {
		t.Fatal(err)
	}
	if err := l.Add(Entry{OrderID: "CS1", OrderLineID: "CS1-1"}); err == nil {
		t.Fatal("a line was recorded twice")
	}
	if err := l.Refund("CS1", "CS1-1", Entry{OrderID: "CS2", OrderLineID: "CS2-1", OrderType: "UNSUBSCRIBE", Amount: d("700"), PlacedAt: at.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if err := l.Refund("CS1", "CS1-1", Entry{OrderID: "CS3", OrderLineID: "CS3-1", OrderType: "UNSUBSCRIBE", Amount: d("600"), PlacedAt: at.Add(time.Hour)}); err == nil {
		t.Fatal("refunding more than was paid was accepted")
	}
	if err := l.Refund("CS1", "CS1-1", Entry{OrderID: "CS3", OrderLineID: "CS3-1", OrderType: "UNSUBSCRIBE", Amount: d("500"), PlacedAt: at.Add(2 * time.Hour)}); err != nil {
		t.Fatal(err)
	}
	tot := l.Totals()
	if !tot.Net.IsZero() || !tot.Paid.Equal(d("1200")) || !tot.Refunded.Equal(d("1200")) || tot.Orders != 3 {
		t.Fatalf("totals %+v", tot)
	}
	es := l.Entries()
	if es[0].Payment != Refunded || !es[1].Amount.Equal(d("-700")) || es[1].RefersTo != "CS1" {
		t.Fatalf("entries %+v", es)
	}
	var b bytes.Buffer
	if err := l.WriteCSV(&b); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if len(lines) != 4 || !strings.Contains(lines[2], ",-700.000,") || !strings.Contains(lines[1], ",1200.000,1200.000,") {
		t.Fatalf("csv:\n%s", b.String())
	}
}
