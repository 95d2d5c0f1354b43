package ledger

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode/utf8"

	"golang.org/x/text/encoding/simplifiedchinese"

	"github.com/kooflow/kooflow/internal/refusal"
	"github.com/kooflow/kooflow/internal/settlement"
)

// TxRow is what settlement reads from one row of the marketplace's transaction-detail export (交易明细,
// 卖家中心 > 结算管理 > 交易明细管理 > 导出). Nil fields were not stated by the file.
type TxRow struct {
	Line     int
	OrderID  string
	Credit   *bool      // 支付方式 is 信用支付
	Repaid   *bool      // 回款状态 is 已回款 (true) or 未回款 (false)
	RepaidAt *time.Time // 回款时间
}

// The export's column names are matched loosely (case, spaces, underscores and hyphens ignored), in Chinese or
// English, because the seller center's exports have changed their headers over time; other columns are ignored.
var (
	orderColumn  = []string{"订单号", "订单id", "订单编号", "订单号码", "orderid", "ordernumber", "ordercode"}
	methodColumn = []string{"支付方式", "付款方式", "支付类型", "paymentmethod", "paymenttype", "paymode"}
	statusColumn = []string{"回款状态", "还款状态", "回款情况", "repaymentstatus", "repaidstatus", "collectionstatus"}
	timeColumn   = []string{"回款时间", "还款时间", "回款日期", "repaidat", "repaymenttime", "repaymentdate", "collectiontime"}

	repaidValues   = []string{"已回款", "回款完成", "已还款", "已完成", "repaid", "completed", "paid"}
	unrepaidValues = []string{"未回款", "待回款", "未还款", "部分回款", "unpaid", "pending", "notrepaid", "partiallyrepaid"}
)

func normalizeHeader(s string) string {
	s = strings.ToLower(strings.TrimSpace(s))
	return strings.NewReplacer(" ", "", "_", "", "-", "", "\u3000", "", "（", "(", "）", ")").Replace(s)
}

func oneOf(v string, set []string) bool {
	for _, s := range set {
		if v == s {
			return true
		}
	}
	return false
}

// ParseTransactions reads a transaction-detail CSV (UTF-8 with or without BOM, or GB18030 as exported for
// Excel). It needs an order-number column and a payment-method or repayment-status column. Any row it cannot
// read makes the whole file a refusal listing the rows (up to 20), so nothing is half-imported.
func ParseTransactions(data []byte) ([]TxRow, error) {
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	if !utf8.Valid(data) {
		decoded, err := simplifiedchinese.GB18030.NewDecoder().Bytes(data)
		if err != nil {
			return nil, refusal.New(CodeInvalid, "the file is neither UTF-8 nor GB18030 text")
		}
		data = decoded
	}
	r := csv.NewReader(bytes.NewReader(data))
	r.FieldsPerRecord = -1
	r.TrimLeadingSpace = true
	header, err := r.Read()
	if errors.Is(err, io.EOF) {
		return nil, refusal.New(CodeInvalid, "the file is empty")
	}
	if err != nil {
		return nil, refusal.New(CodeInvalid, "the file is not CSV: %v", err)
	}
	col := map[string]int{}
	for i, h := range header {
		n := normalizeHeader(h)
		for name, set := range map[string][]string{"order": orderColumn, "method": methodColumn, "status": statusColumn, "time": timeColumn} {
			if _, seen := col[name]; !seen && oneOf(n, set) {
				col[name] = i
			}
		}
	}
	if _, ok := col["order"]; !ok {
		return nil, refusal.New(CodeInvalid, "no order-number column (订单号 / orderId) in the header %q", strings.Join(header, ","))
	}
	_, hasMethod := col["method"]
	_, hasStatus := col["status"]
	if !hasMethod && !hasStatus {
		return nil, refusal.New(CodeInvalid, "no payment-method (支付方式) or repayment-status (回款状态) column in the header %q", strings.Join(header, ","))
	}
	field := func(rec []string, name string) string {
		i, ok := col[name]
		if !ok || i >= len(rec) {
			return ""
		}
		return strings.TrimSpace(rec[i])
	}
	var out []TxRow
	var errs []string
	for {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		line, _ := r.FieldPos(0)
		if err != nil {
			errs = append(errs, fmt.Sprintf("line %d: %v", line, err))
			continue
		}
		if len(rec) == 1 && strings.TrimSpace(rec[0]) == "" {
			continue // blank line
		}
		row := TxRow{Line: line, OrderID: field(rec, "order")}
		if err := ValidOrderID(row.OrderID); err != nil {
			errs = append(errs, fmt.Sprintf("line %d: %v", line, err))
			continue
		}
		if m := field(rec, "method"); m != "" {
			credit := strings.Contains(m, "信用") || oneOf(normalizeHeader(m), []string{"credit", "creditpay", "creditpayment"})
			row.Credit = &credit
		}
		if st := field(rec, "status"); st != "" {
			n := normalizeHeader(st)
			switch {
			case oneOf(n, repaidValues):
				v := true
				row.Repaid = &v
			case oneOf(n, unrepaidValues):
				v := false
				row.Repaid = &v
			default:
				errs = append(errs, fmt.Sprintf("line %d: repayment status %q is not 已回款 or 未回款", line, st))
				continue
			}
		}
		if ts := field(rec, "time"); ts != "" {
			t, err := parseTxTime(ts)
			if err != nil {
				errs = append(errs, fmt.Sprintf("line %d: %v", line, err))
				continue
			}
			row.RepaidAt = &t
		}
		if row.Repaid != nil && *row.Repaid && row.RepaidAt == nil && row.Credit != nil && *row.Credit {
			errs = append(errs, fmt.Sprintf("line %d: order %s is credit-paid and 已回款 but has no repayment time (回款时间)", line, row.OrderID))
			continue
		}
		out = append(out, row)
	}
	if len(errs) > 0 {
		return nil, refusal.New(CodeInvalid, "the transaction-detail file has %d unreadable rows, nothing was imported: %s", len(errs), joinErrors(errs))
	}
	if len(out) == 0 {
		return nil, refusal.New(CodeInvalid, "the transaction-detail file has a header but no rows")
	}
	return out, nil
}

// parseTxTime reads the seller center's times: Beijing wall time unless a zone is given.
func parseTxTime(s string) (time.Time, error) {
	for _, layout := range []string{"2006-01-02 15:04:05", "2006/01/02 15:04:05", "2006-01-02 15:04", "2006/01/02 15:04",
		"2006-01-02", "2006/01/02", "20060102150405"} {
		if t, err := time.ParseInLocation(layout, s, settlement.Beijing); err == nil {
			return t.UTC(), nil
		}
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t.UTC(), nil
	}
	return time.Time{}, fmt.Errorf("repayment time %q is not a time like 2026-10-05 14:30:00", s)
}
