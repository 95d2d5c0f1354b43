package bills

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"
	"github.com/shopspring/decimal"
	"github.com/xuri/excelize/v2"

	"github.com/kooflow/kooflow/api/httpx"
	"github.com/kooflow/kooflow/internal/app"
	"github.com/kooflow/kooflow/internal/catalog"
	"github.com/kooflow/kooflow/internal/config"
	"github.com/kooflow/kooflow/internal/recon"
	"github.com/kooflow/kooflow/internal/refusal"
	"github.com/kooflow/kooflow/internal/settlement"
)

// maxBillDetailBytes bounds a bill-detail upload: a month of a large seller's lines as CSV or XLSX.
const maxBillDetailBytes = 256 << 20

// maxMappingBytes bounds an uploaded column mapping.
const maxMappingBytes = 1 << 20

type reconHandlers struct {
	*handlers
	recon *recon.Store
}

// MountRecon adds reconciliation with the marketplace's bill under the bills console
// (/console/v1/bills/recon…): bill-detail imports and their diffs with kooflow's bills, the marketplace's bill
// states, invoices, payments received, and the receivables view.
func MountRecon(console *httpx.Console, d app.Deps) {
	rs, err := recon.NewStore(d)
	if err != nil {
		// The settlement schedule refuses to start on the same broken calendar; the console keeps serving
		// everything else and says why here.
		d.Log.Error("reconciliation console not mounted", "err", err)
		return
	}
	h := &reconHandlers{handlers: &handlers{d: d, now: d.Clock(), catalog: d.Catalog}, recon: rs}
	g := console.Group("/bills/recon")
	g.POST("/imports", config.ScopeFinance, h.importDetail)
	g.GET("/imports", config.ScopeRead, h.listImports)
	g.POST("/imports/:importId/diff", config.ScopeFinance, h.rediff)
	g.GET("/diffs/:diffId", config.ScopeRead, h.showDiff)
	g.GET("/diffs/:diffId/export.csv", config.ScopeRead, h.exportDiffCSV)
	g.GET("/diffs/:diffId/export.xlsx", config.ScopeRead, h.exportDiffXLSX)
	g.GET("/receivables", config.ScopeRead, h.receivables)
	g.POST("/check", config.ScopeFinance, h.check)
	g.GET("/bill/:period/:productType", config.ScopeRead, h.latest)
	g.PUT("/bill/:period/:productType/state", config.ScopeFinance, h.setState)
	g.POST("/bill/:period/:productType/invoice", config.ScopeFinance, h.invoice)
	g.POST("/bill/:period/:productType/receipts", config.ScopeFinance, h.receipt)
}

func (h *reconHandlers) billRef(c *gin.Context) (recon.BillRef, bool) {
	p, t, ok := billParams(c)
	return recon.BillRef{Period: p, ProductType: t}, ok
}

// importDetail takes a bill-detail export as the multipart field "file" (and optionally a column mapping as the
// field "mapping"), with the period and product type as query parameters, imports it and diffs it with kooflow's
// bill.
func (h *reconHandlers) importDetail(c *gin.Context) {
	p, err := settlement.ParsePeriod(c.Query("period"))
	if err != nil {
		httpx.WriteProblem(c, http.StatusBadRequest, err.Error(), httpx.FieldError{Field: "period", Detail: err.Error()})
		return
	}
	c.Params = append(c.Params, gin.Param{Key: "period", Value: p.String()}, gin.Param{Key: "productType", Value: c.Query("productType")})
	ref, ok := h.billRef(c)
	if !ok {
		return
	}
	tooLarge := fmt.Sprintf("the bill detail is larger than %d MiB", maxBillDetailBytes>>20)
	// Capped before anything parses the body: a multipart body would otherwise be spooled whatever its size.
	if c.Request.ContentLength > maxBillDetailBytes+maxMappingBytes+multipartOverhead {
		httpx.WriteProblem(c, http.StatusRequestEntityTooLarge, tooLarge)
		return
	}
	c.Request.Body = http.MaxBytesReader(c.Writer, c.Request.Body, maxBillDetailBytes+maxMappingBytes+multipartOverhead)
	if !strings.HasPrefix(c.ContentType(), "multipart/") {
		httpx.WriteProblem(c, http.StatusBadRequest, "send the export as the multipart field \"file\"",
			httpx.FieldError{Field: "file", Detail: "content type " + c.ContentType()})
		return
	}
	read := func(field string, limit int64) ([]byte, string, bool) {
		fh, err := c.FormFile(field)
		var big *http.MaxBytesError
		if errors.As(err, &big) {
			httpx.WriteProblem(c, http.StatusRequestEntityTooLarge, tooLarge)
			return nil, "", false
		}
		if errors.Is(err, http.ErrMissingFile) && field == "mapping" {
			return nil, "", true
		}
		if err != nil {
			httpx.WriteProblem(c, http.StatusBadRequest, "send the export as the multipart field \"file\"",
				httpx.FieldError{Field: field, Detail: err.Error()})
			return nil, "", false
		}
		if fh.Size > limit {
			httpx.WriteProblem(c, http.StatusRequestEntityTooLarge, fmt.Sprintf("%s is larger than %d bytes", field, limit))
			return nil, "", false
		}
		f, err := fh.Open()
		if err != nil {
			httpx.WriteProblem(c, http.StatusBadRequest, "could not read the uploaded "+field+": "+err.Error())
			return nil, "", false
		}
		defer f.Close()
		b, err := io.ReadAll(io.LimitReader(f, limit+1))
		if err != nil || int64(len(b)) > limit {
			httpx.WriteProblem(c, http.StatusBadRequest, "could not read the uploaded "+field)
			return nil, "", false
		}
		return b, fh.Filename, true
	}
	data, filename, ok := read("file", maxBillDetailBytes)
	if !ok {
		return
	}
	mapping := recon.DefaultMapping()
	if mb, _, ok := read("mapping", maxMappingBytes); !ok {
		return
	} else if mb != nil {
		if mapping, err = recon.ParseMapping(mb); err != nil {
			httpx.WriteProblem(c, http.StatusBadRequest, err.Error(), httpx.FieldError{Field: "mapping", Detail: err.Error()})
			return
		}
	}
	im, sum, created, err := h.recon.ImportAndDiff(c.Request.Context(), recon.ImportRequest{Data: data, Filename: filename,
		Period: ref.Period, ProductType: ref.ProductType, Mapping: mapping, Actor: httpx.ActorName(c)}, h.catalog)
	if err != nil {
		fail(c, "import bill detail", err)
		return
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	httpx.Log(c).Info("bill detail imported", "import_id", im.ImportID, "rows", im.Rows, "already_imported", im.AlreadyImported,
		"diff_id", sum.DiffID, "unexplained", sum.UnexplainedCount)
	c.JSON(status, gin.H{"import": im, "diff": sum})
}

func (h *reconHandlers) listImports(c *gin.Context) {
	period := c.Query("period")
	if period != "" {
		p, err := settlement.ParsePeriod(period)
		if err != nil {
			httpx.WriteProblem(c, http.StatusBadRequest, err.Error(), httpx.FieldError{Field: "period", Detail: err.Error()})
			return
		}
		period = p.String()
	}
	var pt string
	if t := c.Query("productType"); t != "" {
		c.Params = append(c.Params, gin.Param{Key: "period", Value: "2000-01"}, gin.Param{Key: "productType", Value: t})
		ref, ok := h.billRef(c)
		if !ok {
			return
		}
		pt = string(ref.ProductType)
	}
	ims, err := h.recon.ListImports(c.Request.Context(), period, catalogType(pt))
	if err != nil {
		fail(c, "list imports", err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"imports": ims})
}

func idParam(c *gin.Context, name string) (int64, bool) {
	id, err := strconv.ParseInt(c.Param(name), 10, 64)
	if err != nil || id <= 0 {
		httpx.WriteProblem(c, http.StatusBadRequest, name+" must be a positive integer", httpx.FieldError{Field: name, Detail: c.Param(name)})
		return 0, false
	}
	return id, true
}

func (h *reconHandlers) rediff(c *gin.Context) {
	id, ok := idParam(c, "importId")
	if !ok {
		return
	}
	sum, err := h.recon.Diff(c.Request.Context(), id, httpx.ActorName(c), h.catalog)
	if err != nil {
		fail(c, "diff bill detail", err)
		return
	}
	c.JSON(http.StatusCreated, sum)
}

func (h *reconHandlers) latest(c *gin.Context) {
	ref, ok := h.billRef(c)
	if !ok {
		return
	}
	ctx := c.Request.Context()
	out := gin.H{"period": ref.Period.String(), "productType": ref.ProductType}
	sum, err := h.recon.Latest(ctx, ref.Period.String(), ref.ProductType)
	if err == nil {
		out["diff"] = sum
	} else if _, ok := refusal.As(err); !ok {
		fail(c, "read diff", err)
		return
	}
	hist, err := h.recon.History(ctx, ref)
	if err != nil {
		fail(c, "read bill history", err)
		return
	}
	out["history"] = hist
	c.JSON(http.StatusOK, out)
}

// showDiff returns a diff's summary and a page of its differences (?kind=, ?explained=true|false, ?after=, ?limit=).
func (h *reconHandlers) showDiff(c *gin.Context) {
	id, ok := idParam(c, "diffId")
	if !ok {
		return
	}
	f := recon.DiffFilter{Kind: c.Query("kind")}
	switch f.Kind {
	case "", recon.KindMarketplaceOnly, recon.KindKooflowOnly, recon.KindAmount:
	default:
		httpx.WriteProblem(c, http.StatusBadRequest, "kind must be MARKETPLACE_ONLY, KOOFLOW_ONLY or AMOUNT", httpx.FieldError{Field: "kind", Detail: f.Kind})
		return
	}
	if e := c.Query("explained"); e != "" {
		b, err := strconv.ParseBool(e)
		if err != nil {
			httpx.WriteProblem(c, http.StatusBadRequest, "explained must be true or false", httpx.FieldError{Field: "explained", Detail: e})
			return
		}
		f.Explained = &b
	}
	if a := c.Query("after"); a != "" {
		oid, lid, found := strings.Cut(a, "/")
		if !found {
			httpx.WriteProblem(c, http.StatusBadRequest, "after must be orderId/orderLineId, as in nextAfter", httpx.FieldError{Field: "after", Detail: a})
			return
		}
		f.After = settlement.Key{OrderID: oid, OrderLineID: lid}
	}
	f.Limit = 100
	if l := c.Query("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > 1000 {
			httpx.WriteProblem(c, http.StatusBadRequest, "limit must be from 1 to 1000", httpx.FieldError{Field: "limit", Detail: l})
			return
		}
		f.Limit = n
	}
	ctx := c.Request.Context()
	sum, err := h.recon.GetDiff(ctx, id)
	if err != nil {
		fail(c, "read diff", err)
		return
	}
	lines, err := h.recon.DiffLines(ctx, id, f)
	if err != nil {
		fail(c, "read diff lines", err)
		return
	}
	out := gin.H{"diff": sum, "lines": lines}
	if len(lines) == f.Limit {
		last := lines[len(lines)-1]
		out["nextAfter"] = last.OrderID + "/" + last.OrderLineID
	}
	c.JSON(http.StatusOK, out)
}

// DiffExportColumns are the columns of a diff export, CSV and XLSX alike.
var DiffExportColumns = []string{"order_id", "order_line_id", "kind", "order_type", "marketplace_settlement", "kooflow_settlement",
	"difference", "marketplace_revenue", "kooflow_revenue", "marketplace_fee", "kooflow_fee", "explained", "reason_code", "reason"}

func optFixed(d *decimal.Decimal) string {
	if d == nil {
		return ""
	}
	return d.StringFixed(2)
}

func diffRecord(l recon.DiffLine) []string {
	return []string{l.OrderID, l.OrderLineID, l.Kind, l.OrderType, optFixed(l.MarketplaceSettlement), optFixed(l.KooflowSettlement),
		l.Difference.StringFixed(2), optFixed(l.MarketplaceRevenue), optFixed(l.KooflowRevenue), optFixed(l.MarketplaceFee),
		optFixed(l.KooflowFee), strconv.FormatBool(l.Explained), l.ReasonCode, l.Reason}
}

// summaryRecords are the summary rows that open a diff export.
func summaryRecords(s recon.Summary) [][]string {
	return [][]string{
		{"summary", "matched", strconv.FormatInt(s.MatchedCount, 10), s.MatchedTotal.StringFixed(2)},
		{"summary", "explained", strconv.FormatInt(s.ExplainedCount, 10), s.ExplainedTotal.StringFixed(2)},
		{"summary", "unexplained", strconv.FormatInt(s.UnexplainedCount, 10), s.UnexplainedTotal.StringFixed(2)},
		{"summary", "marketplace total", "", s.MarketplaceTotal.StringFixed(2)},
		{"summary", "kooflow total", "", s.KooflowTotal.StringFixed(2)},
	}
}

// neutralize keeps a spreadsheet from reading a text cell as a formula: a value starting with = + - @, tab or
// carriage return gets a leading apostrophe, unless it is a plain number (a negative amount stays a number).
func neutralize(v string) string {
	if v == "" || !strings.ContainsRune("=+-@\t\r", rune(v[0])) {
		return v
	}
	if _, err := decimal.NewFromString(v); err == nil && !strings.ContainsAny(v, "eE") {
		return v
	}
	return "'" + v
}

func (h *reconHandlers) diffForExport(c *gin.Context) (recon.Summary, bool) {
	id, ok := idParam(c, "diffId")
	if !ok {
		return recon.Summary{}, false
	}
	sum, err := h.recon.GetDiff(c.Request.Context(), id)
	if err != nil {
		fail(c, "read diff", err)
		return sum, false
	}
	return sum, true
}

func exportName(s recon.Summary, ext string) string {
	return fmt.Sprintf("recon-%s-%s-diff-%d.%s", s.Period, s.ProductType, s.DiffID, ext)
}

func (h *reconHandlers) exportDiffCSV(c *gin.Context) {
	sum, ok := h.diffForExport(c)
	if !ok {
		return
	}
	c.Header("Content-Type", "text/csv; charset=utf-8")
	c.Header("Content-Disposition", `attachment; filename="`+exportName(sum, "csv")+`"`)
	cw := csv.NewWriter(c.Writer)
	write := func(rec []string) error {
		out := make([]string, len(rec))
		for i, v := range rec {
			out[i] = neutralize(v)
		}
		return cw.Write(out)
	}
	err := write(DiffExportColumns)
	for _, r := range summaryRecords(sum) {
		if err == nil {
			err = write(r)
		}
	}
	if err == nil {
		err = h.recon.EachDiffLine(c.Request.Context(), sum.DiffID, func(l recon.DiffLine) error { return write(diffRecord(l)) })
	}
	cw.Flush()
	if err == nil {
		err = cw.Error()
	}
	if err != nil {
		httpx.Log(c).Error("export diff", "diff_id", sum.DiffID, "err", err) // headers are sent; the log says why it stopped
	}
}

func (h *reconHandlers) exportDiffXLSX(c *gin.Context) {
	sum, ok := h.diffForExport(c)
	if !ok {
		return
	}
	f := excelize.NewFile()
	defer f.Close()
	err := func() error {
		if err := f.SetSheetName("Sheet1", "Summary"); err != nil {
			return err
		}
		for i, r := range summaryRecords(sum) {
			row := []any{r[1], r[2], r[3]}
			if n, err := strconv.ParseInt(r[2], 10, 64); err == nil {
				row[1] = n
			}
			cell, _ := excelize.CoordinatesToCellName(1, i+1)
			if err := f.SetSheetRow("Summary", cell, &row); err != nil {
				return err
			}
		}
		if _, err := f.NewSheet("Differences"); err != nil {
			return err
		}
		sw, err := f.NewStreamWriter("Differences")
		if err != nil {
			return err
		}
		header := make([]any, len(DiffExportColumns))
		for i, v := range DiffExportColumns {
			header[i] = v
		}
		if err := sw.SetRow("A1", header); err != nil {
			return err
		}
		n := 1
		err = h.recon.EachDiffLine(c.Request.Context(), sum.DiffID, func(l recon.DiffLine) error {
			n++
			rec := diffRecord(l)
			row := make([]any, len(rec))
			for i, v := range rec {
				row[i] = neutralize(v) // text cells as text; excelize writes strings as strings, never as formulas
			}
			cell, _ := excelize.CoordinatesToCellName(1, n)
			return sw.SetRow(cell, row)
		})
		if err != nil {
			return err
		}
		return sw.Flush()
	}()
	if err != nil {
		fail(c, "export diff", err)
		return
	}
	c.Header("Content-Type", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
	c.Header("Content-Disposition", `attachment; filename="`+exportName(sum, "xlsx")+`"`)
	c.Status(http.StatusOK)
	if _, err := f.WriteTo(c.Writer); err != nil {
		httpx.Log(c).Error("export diff", "diff_id", sum.DiffID, "err", err)
	}
}

func (h *reconHandlers) receivables(c *gin.Context) {
	all := c.Query("all") == "true"
	rs, err := h.recon.Receivables(c.Request.Context(), h.now(), !all)
	if err != nil {
		fail(c, "read receivables", err)
		return
	}
	total := decimal.Zero
	for _, r := range rs {
		total = total.Add(r.Outstanding)
	}
	c.JSON(http.StatusOK, gin.H{"receivables": rs, "outstandingTotal": total.StringFixed(2)})
}

func (h *reconHandlers) check(c *gin.Context) {
	alerted, err := h.recon.CheckPayments(c.Request.Context(), h.now())
	if err != nil {
		fail(c, "check payments", err)
		return
	}
	if alerted == nil {
		alerted = []recon.Receivable{}
	}
	c.JSON(http.StatusOK, gin.H{"alerted": alerted})
}

func (h *reconHandlers) setState(c *gin.Context) {
	ref, ok := h.billRef(c)
	if !ok {
		return
	}
	var body struct {
		State string `json:"state"`
		Note  string `json:"note"`
	}
	if !decode(c, &body, false) {
		return
	}
	st, err := recon.ParseState(body.State)
	if err != nil {
		httpx.WriteProblem(c, http.StatusBadRequest, err.Error(), httpx.FieldError{Field: "state", Detail: err.Error()})
		return
	}
	if err := h.recon.SetState(c.Request.Context(), ref, st, httpx.ActorName(c), body.Note); err != nil {
		fail(c, "change bill state", err)
		return
	}
	hist, err := h.recon.History(c.Request.Context(), ref)
	if err != nil {
		fail(c, "read bill history", err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"state": st, "stage": st.Stage(), "history": hist})
}

func (h *reconHandlers) invoice(c *gin.Context) {
	ref, ok := h.billRef(c)
	if !ok {
		return
	}
	var inv recon.Invoice
	if !decode(c, &inv, false) {
		return
	}
	if err := h.recon.RecordInvoice(c.Request.Context(), ref, inv, httpx.ActorName(c)); err != nil {
		fail(c, "record invoice", err)
		return
	}
	c.JSON(http.StatusCreated, inv)
}

func (h *reconHandlers) receipt(c *gin.Context) {
	ref, ok := h.billRef(c)
	if !ok {
		return
	}
	var r recon.Receipt
	if !decode(c, &r, false) {
		return
	}
	if err := h.recon.RecordReceipt(c.Request.Context(), ref, r, httpx.ActorName(c)); err != nil {
		fail(c, "record payment", err)
		return
	}
	c.JSON(http.StatusCreated, r)
}

func catalogType(s string) catalog.ProductType { return catalog.ProductType(s) }

// ReconExports returns the diff export handlers (CSV and XLSX) for another console front end to mount behind its
// own authentication, so a download there is the same file as from /console/v1. They read the route parameter
// :diffId.
func ReconExports(d app.Deps) (csv, xlsx gin.HandlerFunc, err error) {
	rs, err := recon.NewStore(d)
	if err != nil {
		return nil, nil, err
	}
	h := &reconHandlers{handlers: &handlers{d: d, now: d.Clock(), catalog: d.Catalog}, recon: rs}
	return h.exportDiffCSV, h.exportDiffXLSX, nil
}

// MaxBillDetailBytes bounds a bill-detail upload, wherever it is uploaded.
const MaxBillDetailBytes = maxBillDetailBytes
