package recon

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/shopspring/decimal"
	"github.com/xuri/excelize/v2"
	"golang.org/x/text/encoding/simplifiedchinese"

	"github.com/kooflow/kooflow/internal/catalog"
	"github.com/kooflow/kooflow/internal/refusal"
	"github.com/kooflow/kooflow/internal/settlement"
)

// Refusal codes.
const (
	CodeInvalid  = refusal.Invalid
	CodeNotFound = refusal.NotFound
	CodeConflict = "CONFLICT"
)

// Row is one line of the marketplace's bill detail, as read through the mapping.
type Row struct {
	RowNo       int64 // the file's row number (the header's is smaller)
	OrderID     string
	OrderLineID string
	OrderType   string
	Revenue     *decimal.Decimal
	PlatformFee *decimal.Decimal
	Settlement  decimal.Decimal
	BillStatus  string // the export's own word, as written
	// UsageQuantity is a usage row's quantity, when the export has it (kept for the reader, not compared).
	UsageQuantity *decimal.Decimal
}

// Detail is a parsed bill-detail file.
type Detail struct {
	Format string // csv or xlsx
	Rows   []Row
	// Columns are the headers each mapped field was read from.
	Columns map[string]string
	// BillStatus is the one bill status every row carried ("" when the export has none or they differ).
	BillStatus string
}

// headerSearchRows bounds how far down a file the header row is looked for: exports put a title and the bill's
// summary above the table.
const headerSearchRows = 30

// maxErrors bounds the row errors a refusal lists.
const maxErrors = 20

// Parse reads a bill-detail export (CSV in UTF-8, with or without BOM, or GB18030; or XLSX) for one period and
// product type. Any row it cannot read makes the whole file a refusal naming the rows and columns, so nothing is
// half-imported.
func Parse(data []byte, m Mapping, period settlement.Period, t catalog.ProductType) (Detail, error) {
	if bytes.HasPrefix(data, []byte("PK\x03\x04")) {
		return parseXLSX(data, m, period, t)
	}
	return parseCSV(data, m, period, t)
}

// sheetRows yields rows of cells with their 1-based row numbers; it returns io.EOF at the end.
type sheetRows func() (int64, []string, error)

func parseCSV(data []byte, m Mapping, period settlement.Period, t catalog.ProductType) (Detail, error) {
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	if !utf8.Valid(data) {
		decoded, err := simplifiedchinese.GB18030.NewDecoder().Bytes(data)
		if err != nil {
			return Detail{}, refusal.New(CodeInvalid, "the file is neither XLSX nor UTF-8 or GB18030 CSV text")
		}
		data = decoded
	}
	r := csv.NewReader(bytes.NewReader(data))
	r.FieldsPerRecord = -1
	r.ReuseRecord = true
	next := func() (int64, []string, error) {
		rec, err := r.Read()
		if err != nil {
			if !errors.Is(err, io.EOF) {
				line, _ := r.FieldPos(0)
				var pe *csv.ParseError
				if errors.As(err, &pe) {
					line = pe.Line
				}
				return int64(line), nil, refusal.New(CodeInvalid, "row %d is not CSV: %v", line, err)
			}
			return 0, nil, err
		}
		line, _ := r.FieldPos(0)
		return int64(line), rec, nil
	}
	d, _, err := readTable(next, m, period, t, bytes.Count(data, []byte("\n")))
	d.Format = "csv"
	return d, err
}

func parseXLSX(data []byte, m Mapping, period settlement.Period, t catalog.ProductType) (Detail, error) {
	f, err := excelize.OpenReader(bytes.NewReader(data))
	if err != nil {
		return Detail{}, refusal.New(CodeInvalid, "the file is not a readable XLSX workbook: %v", err)
	}
	defer f.Close()
	var firstErr error
	for _, sheet := range f.GetSheetList() {
		rows, err := f.Rows(sheet)
		if err != nil {
			return Detail{}, refusal.New(CodeInvalid, "sheet %q cannot be read: %v", sheet, err)
		}
		var n int64
		next := func() (int64, []string, error) {
			if !rows.Next() {
				if err := rows.Error(); err != nil {
					return n, nil, refusal.New(CodeInvalid, "sheet %q row %d: %v", sheet, n+1, err)
				}
				return 0, nil, io.EOF
			}
			n++
			rec, err := rows.Columns()
			if err != nil {
				return n, nil, refusal.New(CodeInvalid, "sheet %q row %d: %v", sheet, n, err)
			}
			return n, rec, nil
		}
		d, found, err := readTable(next, m, period, t, 0)
		_ = rows.Close()
		if err == nil {
			d.Format = "xlsx"
			return d, nil
		}
		if found {
			return d, err
		}
		if firstErr == nil {
			firstErr = err
		}
	}
	if firstErr == nil {
		firstErr = refusal.New(CodeInvalid, "the workbook has no sheets")
	}
	return Detail{}, firstErr
}

// readTable finds the header row, maps the columns, and reads every row after it.
// sizeHint, when known, is about how many rows the table has.
func readTable(next sheetRows, m Mapping, period settlement.Period, t catalog.ProductType, sizeHint int) (d Detail, headerFound bool, err error) {
	heads := m.headersFor(t)
	col := map[string]int{}
	var headerRow []string
	for i := 0; i < headerSearchRows; i++ {
		_, rec, err := next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return d, false, err
		}
		found := findColumns(rec, heads)
		ok := true
		for _, f := range m.Required {
			if _, has := found[f]; !has {
				ok = false
			}
		}
		if ok {
			col, headerRow = found, append([]string(nil), rec...)
			break
		}
	}
	if headerRow == nil {
		var want []string
		for _, f := range m.Required {
			want = append(want, fmt.Sprintf("%s (%s)", f, strings.Join(heads[f], " / ")))
		}
		return d, false, refusal.New(CodeInvalid, "no header row with the required columns %s in the first %d rows; if the export's headers changed, add them to the column mapping",
			strings.Join(want, ", "), headerSearchRows)
	}
	d.Columns = map[string]string{}
	for f, i := range col {
		d.Columns[f] = strings.TrimSpace(headerRow[i])
	}
	var errs []string
	statuses := map[string]bool{}
	d.Rows = make([]Row, 0, sizeHint)
	okPeriod := "" // the last period cell that read as the import's period: most files repeat one value
	fail := func(rowNo int64, field, format string, args ...any) {
		if len(errs) < maxErrors {
			name := d.Columns[field]
			if name == "" {
				name = field // the export has no such column (a usage row's instance)
			}
			errs = append(errs, fmt.Sprintf("row %d, column %q: %s", rowNo, name, fmt.Sprintf(format, args...)))
		} else if len(errs) == maxErrors {
			errs = append(errs, "…")
		}
	}
	cell := func(rec []string, f string) (string, bool) {
		i, ok := col[f]
		if !ok {
			return "", false
		}
		if i >= len(rec) {
			return "", true
		}
		return strings.TrimSpace(rec[i]), true
	}
	for {
		rowNo, rec, err := next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return Detail{}, true, err
		}
		if blank(rec) {
			continue
		}
		row := Row{RowNo: rowNo}
		row.OrderID, _ = cell(rec, FieldOrderID)
		if isTotalRow(rec) {
			continue // 合计 / total rows summarise, they are not lines
		}
		if err := validID(row.OrderID); err != nil {
			fail(rowNo, FieldOrderID, "%v", err)
			continue
		}
		row.OrderLineID, _ = cell(rec, FieldOrderLineID)
		if row.OrderLineID == "" {
			row.OrderLineID = row.OrderID
		} else if err := validID(row.OrderLineID); err != nil {
			fail(rowNo, FieldOrderLineID, "%v", err)
			continue
		}
		row.OrderType, _ = cell(rec, FieldOrderType)
		if month, has := cell(rec, FieldUsageMonth); has && month != "" {
			// A usage row: kooflow's usage line of the instance and month is keyed
			// usage:<instance>:<consumption month>:<bill period>.
			m, err := settlement.ParsePeriod(month)
			if err != nil {
				fail(rowNo, FieldUsageMonth, "%v", err)
				continue
			}
			inst, _ := cell(rec, FieldInstanceID)
			if err := validID(inst); err != nil {
				fail(rowNo, FieldInstanceID, "a usage row needs its instance: %v", err)
				continue
			}
			row.OrderLineID = "usage:" + inst + ":" + m.String() + ":" + period.String()
			if q, has := cell(rec, FieldUsageQuantity); has && q != "" {
				v, err := decimal.NewFromString(q)
				if err != nil {
					fail(rowNo, FieldUsageQuantity, "%q is not a quantity", q)
					continue
				}
				row.UsageQuantity = &v
			}
		}
		bad := false
		amount := func(f string, required bool) *decimal.Decimal {
			v, has := cell(rec, f)
			if !has || (v == "" && !required) {
				return nil
			}
			a, err := parseAmount(v)
			if err != nil {
				fail(rowNo, f, "%v", err)
				bad = true
				return nil
			}
			return &a
		}
		if s := amount(FieldSettlement, true); s != nil {
			row.Settlement = *s
		}
		row.Revenue = amount(FieldRevenue, false)
		row.PlatformFee = amount(FieldPlatformFee, false)
		if bad {
			continue
		}
		if v, has := cell(rec, FieldPeriod); has && v != "" && v != okPeriod {
			p, err := settlement.ParsePeriod(v)
			if err != nil {
				fail(rowNo, FieldPeriod, "%v", err)
				continue
			}
			if p != period {
				fail(rowNo, FieldPeriod, "the row is for period %s, the import is for %s", p, period)
				continue
			}
			okPeriod = v
		}
		if v, has := cell(rec, FieldBillStatus); has && v != "" {
			if _, ok := m.BillStatusValues[v]; !ok {
				fail(rowNo, FieldBillStatus, "bill status %q is not in the column mapping's billStatusValues", v)
				continue
			}
			row.BillStatus = v
			statuses[v] = true
		}
		d.Rows = append(d.Rows, row)
	}
	if len(errs) > 0 {
		return Detail{}, true, refusal.New(CodeInvalid, "the bill detail has unreadable rows, nothing was imported: %s", strings.Join(errs, "; "))
	}
	if len(statuses) == 1 {
		for s := range statuses {
			d.BillStatus = s
		}
	}
	return d, true, nil
}

// findColumns maps fields to the first column whose header the mapping lists for them.
func findColumns(rec []string, heads map[string][]string) map[string]int {
	norm := make([]string, len(rec))
	for i, h := range rec {
		norm[i] = normalizeHeader(h)
	}
	out := map[string]int{}
	for f, hs := range heads {
	search:
		for _, h := range hs {
			n := normalizeHeader(h)
			for i, c := range norm {
				if c == n {
					out[f] = i
					break search
				}
			}
		}
	}
	return out
}

func blank(rec []string) bool {
	for _, v := range rec {
		if strings.TrimSpace(v) != "" {
			return false
		}
	}
	return true
}

// isTotalRow recognises a summary row (合计 / total) by its first non-empty cell.
func isTotalRow(rec []string) bool {
	for _, v := range rec {
		if strings.TrimSpace(v) == "" {
			continue
		}
		if len(v) > 12 {
			return false // longer than any total word
		}
		switch normalizeHeader(v) {
		case "合计", "总计", "小计", "total", "sum":
			return true
		}
		return false
	}
	return false
}

// validID checks an order or order line id.
func validID(id string) error {
	if id == "" || len(id) > 64 {
		return fmt.Errorf("must be 1 to 64 characters, not %q", id)
	}
	for _, r := range id {
		if unicode.IsControl(r) || unicode.IsSpace(r) {
			return fmt.Errorf("%q contains spaces or control characters", id)
		}
	}
	return nil
}

// maxAmount is the first amount the bill tables (numeric(18, 2)) cannot hold.
var maxAmount = decimal.New(1, 16)

// amountNoise is what spreadsheets add around an amount.
var amountNoise = strings.NewReplacer(",", "", "¥", "", "￥", "", " ", "")

// parseAmount reads an amount in yuan with at most two decimals; thousands separators and a currency sign are
// accepted, as spreadsheets write them.
func parseAmount(s string) (decimal.Decimal, error) {
	v := s
	if strings.ContainsAny(v, ",¥￥ ") {
		v = amountNoise.Replace(v)
	}
	v = strings.TrimPrefix(v, "'") // a neutralised cell from a spreadsheet export
	if v == "" {
		return decimal.Decimal{}, fmt.Errorf("the amount is empty")
	}
	if strings.ContainsAny(v, "eE") {
		return decimal.Decimal{}, fmt.Errorf("%q is not an amount in yuan like 1234.50", s)
	}
	d, err := decimal.NewFromString(v)
	if err != nil {
		return d, fmt.Errorf("%q is not an amount in yuan like 1234.50", s)
	}
	if !d.Equal(d.Round(2)) {
		return d, fmt.Errorf("%q has more than two decimals; bill amounts are in fen", s)
	}
	if d.Abs().GreaterThanOrEqual(maxAmount) {
		return d, fmt.Errorf("%q is too large for a bill amount", s)
	}
	return d.Round(2), nil
}
