package ledger

import (
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/shopspring/decimal"
	"github.com/xuri/excelize/v2"

	"github.com/kooflow/kooflow/internal/cellsafe"
	"github.com/kooflow/kooflow/internal/refusal"
	"github.com/kooflow/kooflow/internal/settlement"
)

// ExportColumns are the columns of a bill export, CSV and XLSX alike.
var ExportColumns = []string{"line_kind", "period", "product_type", "order_id", "order_line_id", "instance_id", "order_type",
	"refers_to_order_id", "product_id", "sku_code", "attributed_at", "paid_amount", "list_amount", "rate", "revenue",
	"platform_fee", "settlement", "note"}

// MaxXLSXLines keeps an XLSX export inside a worksheet's 1,048,576 rows; larger bills are exported as CSV.
const MaxXLSXLines = 1_000_000

func exportTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.999999Z07:00") }

func lineRecord(b BillSummary, l Line) []string {
	return []string{"order", b.Period, string(b.ProductType), l.OrderID, l.OrderLineID, l.InstanceID, l.OrderType, l.RefersTo,
		l.ProductID, l.SKUCode, exportTime(l.AttributedAt), l.PaidAmount.StringFixed(3), l.ListAmount.StringFixed(3),
		l.Rate.String(), l.Revenue.StringFixed(2), l.PlatformFee.StringFixed(2), l.Settlement.StringFixed(2), lineNote(l)}
}

// lineNote says what a pay-per-use line bills, since its paid amount is computed, not an order's.
func lineNote(l Line) string {
	if l.Usage == nil {
		return ""
	}
	return fmt.Sprintf("usage of %s: %s units × %s yuan", l.Usage.Month, l.Usage.Quantity.StringFixed(4), l.Usage.UnitPrice.String())
}

func adjustmentRecord(b BillSummary, a Adjustment) []string {
	note := fmt.Sprintf("adjustment %d by %s: %s", a.ID, a.CreatedBy, a.Reason)
	if a.CorrectsPeriod != "" {
		note += " (corrects " + a.CorrectsPeriod + ")"
	}
	return []string{"adjustment", b.Period, string(b.ProductType), a.OrderID, "", "", "ADJUSTMENT", "", "", "",
		exportTime(a.CreatedAt), "", "", "", "", "", a.Amount.StringFixed(2), note}
}

// eachRecord calls fn with every export row of a bill, in order: its lines, then its adjustments, each with its
// amount cells by column, for formats that keep amounts as numbers.
func (s *Store) eachRecord(ctx context.Context, b BillSummary, fn func(rec []string, amounts map[int]decimal.Decimal) error) error {
	err := s.EachLine(ctx, b.BillID, func(l Line) error {
		return fn(lineRecord(b, l), map[int]decimal.Decimal{14: l.Revenue, 15: l.PlatformFee, 16: l.Settlement})
	})
	if err != nil {
		return err
	}
	adjs, err := s.Adjustments(ctx, b.BillID)
	if err != nil {
		return err
	}
	for _, a := range adjs {
		if err := fn(adjustmentRecord(b, a), map[int]decimal.Decimal{16: a.Amount}); err != nil {
			return err
		}
	}
	return nil
}

// WriteCSV writes a bill as CSV: a header, its lines in (order id, order line id) order, then its adjustments.
// The output depends only on the bill's stored content, so a closed bill exports to the same bytes every time.
func (s *Store) WriteCSV(ctx context.Context, w io.Writer, b BillSummary) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(ExportColumns); err != nil {
		return err
	}
	if err := s.eachRecord(ctx, b, func(rec []string, _ map[int]decimal.Decimal) error {
		return cw.Write(cellsafe.Row(rec))
	}); err != nil {
		return err
	}
	cw.Flush()
	return cw.Error()
}

// excelNumber returns an amount for a numeric cell when the number the cell stores is exactly the decimal (always
// for amounts of bills: at most 15 significant digits), and the decimal's text otherwise. Excel has no decimal
// type; the check makes sure the file never holds a rounded amount.
func excelNumber(d decimal.Decimal, places int32) any {
	s := d.StringFixed(places)
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return s
	}
	if back, err := decimal.NewFromString(strconv.FormatFloat(f, 'f', -1, 64)); err != nil || !back.Equal(d.Round(places)) {
		return s
	}
	return f
}

// WriteXLSX writes a bill as an XLSX workbook: a Summary sheet (the bill, its totals, content hash and the
// rounding rule) and a Lines sheet with the same columns as the CSV, amounts as numbers.
func (s *Store) WriteXLSX(ctx context.Context, w io.Writer, b BillSummary) error {
	if b.LineCount > MaxXLSXLines {
		return refusal.New(CodeInvalid, "the bill has %d lines, more than a worksheet holds; export it as CSV", b.LineCount)
	}
	f := excelize.NewFile()
	defer f.Close()
	money, err := f.NewStyle(&excelize.Style{NumFmt: 4}) // #,##0.00
	if err != nil {
		return err
	}
	const summary = "Summary"
	if err := f.SetSheetName("Sheet1", summary); err != nil {
		return err
	}
	rows := [][]any{
		{"Bill", b.Period + " / " + string(b.ProductType)},
		{"Status", b.Status},
		{"Period (Beijing time)", b.PeriodStart.In(settlement.Beijing).Format("2006-01-02 15:04") + " – " + b.PeriodEnd.In(settlement.Beijing).Format("2006-01-02 15:04")},
		{"Threshold", excelNumber(b.Threshold, 2)},
		{"Lines", b.LineCount},
		{"Sales revenue", excelNumber(b.Revenue, 2)},
		{"Platform fee / platform share", excelNumber(b.PlatformFee, 2)},
		{"Settlement (lines)", excelNumber(b.Settlement, 2)},
		{"Adjustments", b.AdjustmentCount},
		{"Adjustment total", excelNumber(b.AdjustmentTotal, 2)},
		{"Amount due", excelNumber(b.AmountDue, 2)},
		{"Carried forward lines", b.CarriedLineCount},
		{"Carried forward total", excelNumber(b.CarriedTotal, 2)},
		{"Content hash (SHA-256)", b.ContentHash},
		{"Revenue base", settlement.RevenueBase},
		{"Rounding", "each figure of each line rounded half to even to 0.01 yuan; totals are sums of rounded lines"},
	}
	for i, r := range rows {
		cell, _ := excelize.CoordinatesToCellName(1, i+1)
		if err := f.SetSheetRow(summary, cell, &r); err != nil {
			return err
		}
		if _, ok := r[1].(float64); ok {
			vc, _ := excelize.CoordinatesToCellName(2, i+1)
			if err := f.SetCellStyle(summary, vc, vc, money); err != nil {
				return err
			}
		}
	}
	_ = f.SetColWidth(summary, "A", "A", 30)
	_ = f.SetColWidth(summary, "B", "B", 70)

	if _, err := f.NewSheet("Lines"); err != nil {
		return err
	}
	sw, err := f.NewStreamWriter("Lines")
	if err != nil {
		return err
	}
	header := make([]any, len(ExportColumns))
	for i, c := range ExportColumns {
		header[i] = c
	}
	if err := sw.SetRow("A1", header); err != nil {
		return err
	}
	n := 1
	row := func(rec []string, amounts map[int]decimal.Decimal) error {
		n++
		vals := make([]any, len(rec))
		for i, v := range rec {
			vals[i] = cellsafe.Neutralize(v) // a text cell is shown as typed, never run
			if d, ok := amounts[i]; ok {
				vals[i] = excelizeCell(excelNumber(d, 2), money)
			}
		}
		cell, _ := excelize.CoordinatesToCellName(1, n)
		return sw.SetRow(cell, vals)
	}
	if err := s.eachRecord(ctx, b, row); err != nil {
		return err
	}
	if err := sw.Flush(); err != nil {
		return err
	}
	_, err = f.WriteTo(w)
	return err
}

func excelizeCell(v any, style int) excelize.Cell { return excelize.Cell{StyleID: style, Value: v} }
