package ledger

import (
	"strings"
	"testing"
	"time"

	"github.com/kooflow/kooflow/internal/refusal"
)

func TestParseTransactions(t *testing.T) {
	rows, err := ParseTransactions([]byte("Order ID, Payment Method ,Repayment_Status,Repayment Time,Other\n" +
		"A1,Credit,repaid,2026-10-08T03:00:00Z,x\n" +
		"A2,信用支付,待回款,,x\n" +
		"A3,现金,,,x\n" +
		"\n" +
		"A4,,已回款,2026/10/09,x\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 4 {
		t.Fatalf("%d rows", len(rows))
	}
	if r := rows[0]; !*r.Credit || !*r.Repaid || !r.RepaidAt.Equal(time.Date(2026, 10, 8, 3, 0, 0, 0, time.UTC)) {
		t.Errorf("A1 %+v", r)
	}
	if r := rows[1]; !*r.Credit || *r.Repaid || r.RepaidAt != nil {
		t.Errorf("A2 %+v", r)
	}
	if r := rows[2]; *r.Credit || r.Repaid != nil {
		t.Errorf("A3 %+v", r)
	}
	// A date without a time is Beijing midnight.
	if r := rows[3]; r.Credit != nil || !*r.Repaid || !r.RepaidAt.Equal(time.Date(2026, 10, 8, 16, 0, 0, 0, time.UTC)) || r.Line != 6 {
		t.Errorf("A4 %+v", r)
	}
	for _, bad := range []struct{ file, mention string }{
		{"", "empty"},
		{"订单号,支付方式\n", "no rows"},
		{"金额\n1\n", "订单号"},
		{"订单号,备注\nA1,x\n", "支付方式"},
		{"订单号,回款状态\nA1,maybe\n", "line 2"},
		{"订单号,支付方式,回款状态\nA 1,信用支付,未回款\n", "spaces"},
		{"订单号,支付方式,回款状态\nA1,信用支付,已回款\n", "回款时间"},
	} {
		_, err := ParseTransactions([]byte(bad.file))
		if r, ok := refusal.As(err); !ok || r.Code != CodeInvalid || !strings.Contains(r.Reason, bad.mention) {
			t.Errorf("%q: %v, want a refusal mentioning %q", bad.file, err, bad.mention)
		}
	}
}
