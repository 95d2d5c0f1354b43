package recon

import (
	"bytes"
	"strings"
	"testing"

	"github.com/xuri/excelize/v2"
	"golang.org/x/text/encoding/simplifiedchinese"

	"github.com/kooflow/kooflow/internal/catalog"
	"github.com/kooflow/kooflow/internal/settlement"
)

var oct = settlement.MustPeriod("2026-10")

func TestParseFindsTheHeaderBelowATitleAndReadsAmounts(t *testing.T) {
	in := "华为云云商店 账单明细\n\n账期,订单号,订单类型,伙伴结算金额（含税）,平台费,账单状态\n" +
		"202610,O-1,NEW,\"1,140.00\",60.00,待会签\n" +
		"202610,O-2,UNSUBSCRIBE,-1140,-60,待会签\n" +
		"合计,,,0.00,0.00,\n"
	d, err := Parse([]byte(in), DefaultMapping(), oct, catalog.General)
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Rows) != 2 || d.Rows[0].OrderLineID != "O-1" || d.Rows[0].Settlement.StringFixed(2) != "1140.00" ||
		d.Rows[1].Settlement.StringFixed(2) != "-1140.00" || d.Rows[0].RowNo != 4 || d.Rows[0].Revenue != nil ||
		d.Rows[1].PlatformFee.StringFixed(2) != "-60.00" || d.BillStatus != "待会签" {
		t.Fatalf("rows: %+v", d)
	}
}

func TestParseReadsGB18030AndXLSX(t *testing.T) {
	in := "订单号,伙伴结算金额(含税)\nO-1,10.50\n"
	gb, err := simplifiedchinese.GB18030.NewEncoder().Bytes([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	d, err := Parse(gb, DefaultMapping(), oct, catalog.General)
	if err != nil || len(d.Rows) != 1 || d.Rows[0].Settlement.StringFixed(2) != "10.50" {
		t.Fatalf("GB18030: %+v %v", d, err)
	}
	f := excelize.NewFile()
	_ = f.SetSheetRow("Sheet1", "A1", &[]any{"订单号", "伙伴结算金额(含税)"})
	_ = f.SetSheetRow("Sheet1", "A2", &[]any{"O-9", 12.34})
	var buf bytes.Buffer
	if _, err := f.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	d, err = Parse(buf.Bytes(), DefaultMapping(), oct, catalog.General)
	if err != nil || d.Format != "xlsx" || len(d.Rows) != 1 || d.Rows[0].Settlement.StringFixed(2) != "12.34" || d.Rows[0].RowNo != 2 {
		t.Fatalf("XLSX: %+v %v", d, err)
	}
}

func TestParseRefusesNamingRowAndColumn(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"订单号,伙伴结算金额(含税)\nO-1,10.505\n", `row 2, column "伙伴结算金额(含税)": "10.505" has more than two decimals`},
		{"订单号,伙伴结算金额(含税)\nO-1,abc\n", `row 2, column "伙伴结算金额(含税)": "abc" is not an amount`},
		{"订单号,伙伴结算金额(含税)\nO-1,1\n,2\n", `row 3, column "订单号": must be 1 to 64 characters`},
		{"订单号,伙伴结算金额(含税),账期\nO-1,1,202609\n", `row 2, column "账期": the row is for period 2026-09`},
		{"订单号,伙伴结算金额(含税),账单状态\nO-1,1,奇怪\n", `row 2, column "账单状态": bill status "奇怪"`},
		{"order,amount\nO-1,1\n", `no header row with the required columns orderId`},
		{"订单号,伙伴结算金额(含税)\nO-1,\"1\n", `not CSV`},
	} {
		_, err := Parse([]byte(tc.in), DefaultMapping(), oct, catalog.General)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: got %v, want %q", tc.in, err, tc.want)
		}
	}
}

func TestMappingIsConfiguration(t *testing.T) {
	m, err := ParseMapping([]byte(`{"columns": {"orderId": ["单号"], "settlement": ["应付金额"]}, "required": []}`))
	if err != nil {
		t.Fatal(err)
	}
	d, err := Parse([]byte("单号,应付金额\nX-1,5.00\n"), m, oct, catalog.General)
	if err != nil || len(d.Rows) != 1 || d.Columns[FieldSettlement] != "应付金额" {
		t.Fatalf("%+v %v", d, err)
	}
	// The joint-operation columns replace the general ones for that product type.
	d, err = Parse([]byte("订单号,伙伴分成金额(含税)\nJ-1,7.00\n"), DefaultMapping(), oct, catalog.JointOperation)
	if err != nil || d.Rows[0].Settlement.StringFixed(2) != "7.00" {
		t.Fatalf("joint-operation: %+v %v", d, err)
	}
	for _, bad := range []string{`{"columns": {"amount": ["x"]}}`, `{"columns": {}, "billStatusValues": {"x": "NOPE"}}`, `{"colums": {}}`} {
		if _, err := ParseMapping([]byte(bad)); err == nil {
			t.Errorf("mapping %s accepted", bad)
		}
	}
}

func TestTransitions(t *testing.T) {
	ok := [][2]BillState{{"", StatePaymentProcessing}, {StateBilled, StateCountersignPending}, {StateCountersignRejected, StateCountersignPending},
		{StatePaymentApplicationFailed, StatePaymentApplicationPending}, {StatePaymentProcessing, StatePaid}}
	for _, p := range ok {
		if err := CheckTransition(p[0], p[1]); err != nil {
			t.Errorf("%s → %s: %v", p[0], p[1], err)
		}
	}
	bad := [][2]BillState{{StatePaid, StateBilled}, {StateCountersignRejected, StatePaid}, {StatePaymentProcessing, StateCountersigning}, {StateBilled, "LOST"}}
	for _, p := range bad {
		if err := CheckTransition(p[0], p[1]); err == nil {
			t.Errorf("%s → %s allowed", p[0], p[1])
		}
	}
	if st, err := ParseState("会签驳回"); err != nil || st != StateCountersignRejected {
		t.Fatalf("ParseState: %s %v", st, err)
	}
}

func TestAddWorkingDaysSkipsWeekendsAndHolidays(t *testing.T) {
	c, err := settlement.ParseCalendar(strings.NewReader("2026-10-01 holiday\n2026-10-02 holiday\n2026-10-10 workday\n"))
	if err != nil {
		t.Fatal(err)
	}
	d, _ := settlement.ParseDate("2026-09-30")
	// Oct 1–2 holidays, 3–4 weekend, 5–9 working, 10 a make-up Saturday.
	if got := AddWorkingDays(c, d, 6).String(); got != "2026-10-10" {
		t.Fatalf("got %s", got)
	}
}

func TestParseKeysAUsageRowAsKooflowsUsageLine(t *testing.T) {
	in := "账期,订单号,订单行号,订单类型,伙伴结算金额(含税),实例ID,消费月份,使用量\n" +
		"202610,P-1,P-1-000001,NEW,0.00,ppu-1,,\n" +
		"202610,P-1,P-1-000001,USAGE,117.43,ppu-1,202609,100.1234\n" +
		"202610,P-1,P-1-000001,USAGE,117.14,ppu-1,2026-10,\n"
	d, err := Parse([]byte(in), DefaultMapping(), oct, catalog.General)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range d.Rows {
		q := ""
		if r.UsageQuantity != nil {
			q = r.UsageQuantity.String()
		}
		got = append(got, r.OrderID+" "+r.OrderLineID+" "+q)
	}
	want := "P-1 P-1-000001 \nP-1 usage:ppu-1:2026-09:2026-10 100.1234\nP-1 usage:ppu-1:2026-10:2026-10 "
	if strings.Join(got, "\n") != want {
		t.Fatalf("rows:\n%s\nwant:\n%s", strings.Join(got, "\n"), want)
	}
	_, err = Parse([]byte("订单号,伙伴结算金额(含税),消费月份\nP-1,1.00,202609\n"), DefaultMapping(), oct, catalog.General)
	if err == nil || !strings.Contains(err.Error(), `row 2, column "instanceId": a usage row needs its instance`) {
		t.Fatalf("a usage row without its instance: %v", err)
	}
}
