package webconsole

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"
	"github.com/shopspring/decimal"

	"github.com/kooflow/kooflow/api/bills"
	"github.com/kooflow/kooflow/api/httpx"
	"github.com/kooflow/kooflow/internal/config"
	"github.com/kooflow/kooflow/internal/recon"
	"github.com/kooflow/kooflow/internal/refusal"
	"github.com/kooflow/kooflow/internal/settlement"
)

// 对账: reconciliation with the marketplace's bill, through the same recon.Store functions as the JSON console
// API (/console/v1/bills/recon) and `kooflow recon`.

// uploadOverhead is room for the multipart boundaries and the form's other fields around the file.
const uploadOverhead = 64 << 10

func (c *Console) mountRecon(g *gin.RouterGroup) {
	rs, err := recon.NewStore(c.d)
	if err != nil {
		// The settlement schedule refuses to start on the same broken calendar; the console serves the rest.
		c.d.Log.Error("web console reconciliation pages not mounted", "err", err)
		return
	}
	csv, xlsx, err := bills.ReconExports(c.d)
	if err != nil {
		c.d.Log.Error("web console reconciliation pages not mounted", "err", err)
		return
	}
	c.recon = rs
	read, finance := config.ScopeRead, config.ScopeFinance
	c.page(g, "/recon", read, c.reconHome)
	c.page(g, "/recon/diffs/:diffId", read, c.reconDiff)
	c.page(g, "/recon/diffs/:diffId/export.csv", read, csv)
	c.page(g, "/recon/diffs/:diffId/export.xlsx", read, xlsx)
	c.page(g, "/recon/bills/:period/:productType", read, c.reconBill)
	c.page(g, "/recon/receivables", read, c.receivables)
	g.POST("/recon/imports", c.authed(&finance, c.capUpload(c.csrf(c.reconUpload))))
	g.POST("/recon/bills/:period/:productType/state", c.authed(&finance, c.csrf(c.reconState)))
	g.POST("/recon/bills/:period/:productType/invoice", c.authed(&finance, c.csrf(c.reconInvoice)))
	g.POST("/recon/bills/:period/:productType/receipts", c.authed(&finance, c.csrf(c.reconReceipt)))
}

// capUpload bounds an upload's body before anything parses it (the CSRF check reads the form): a multipart body
// would otherwise be spooled to disk whatever its size. A body over the cap is refused as too large.
func (c *Console) capUpload(h gin.HandlerFunc) gin.HandlerFunc {
	return func(ctx *gin.Context) {
		limit := int64(bills.MaxBillDetailBytes + uploadOverhead)
		tooLarge := func() {
			c.fail(ctx, http.StatusRequestEntityTooLarge, fmt.Sprintf(c.cat(ctx).T("recon.tooLarge"), bills.MaxBillDetailBytes>>20))
		}
		if ctx.Request.ContentLength > limit {
			tooLarge()
			return
		}
		ctx.Request.Body = http.MaxBytesReader(ctx.Writer, ctx.Request.Body, limit)
		if err := ctx.Request.ParseMultipartForm(32 << 20); tooLargeErr(err) {
			tooLarge()
			return
		}
		h(ctx)
	}
}

type reconHomeData struct {
	Imports      []recon.Import
	Diffs        []recon.Summary
	Period       string
	ProductType  string
	ProductTypes []string
	MaxMiB       int
}

func (c *Console) reconHomeData(ctx *gin.Context) (reconHomeData, error) {
	d := reconHomeData{ProductTypes: []string{"general", "joint-operation"}, MaxMiB: bills.MaxBillDetailBytes >> 20,
		Period: settlement.PeriodOf(c.now()).Prev().String(), ProductType: "general"}
	var err error
	if d.Imports, err = c.recon.ListImports(ctx.Request.Context(), "", ""); err != nil {
		return d, err
	}
	d.Diffs, err = c.recon.ListDiffs(ctx.Request.Context(), 50)
	return d, err
}

// reconHome (对账): the imports and diffs, and the upload of a bill detail.
func (c *Console) reconHome(ctx *gin.Context) {
	d, err := c.reconHomeData(ctx)
	if err != nil {
		c.internal(ctx, "list reconciliation", err)
		return
	}
	c.render(ctx, http.StatusOK, "recon", c.view(ctx, "recon", d))
}

// reconUpload imports the uploaded bill detail and diffs it (recon.Store.ImportAndDiff, as the JSON API), then
// shows the diff; a file that cannot be read is shown back on the upload page with the rows and columns at fault.
func (c *Console) reconUpload(ctx *gin.Context) {
	m := c.cat(ctx)
	again := func(status int, msg string) {
		d, err := c.reconHomeData(ctx)
		if err != nil {
			c.internal(ctx, "list reconciliation", err)
			return
		}
		if p := ctx.PostForm("period"); p != "" {
			d.Period = p
		}
		if t := ctx.PostForm("productType"); t != "" {
			d.ProductType = t
		}
		v := c.view(ctx, "recon", d)
		v.Error = msg
		c.render(ctx, status, "recon", v)
	}
	tooLarge := fmt.Sprintf(m.T("recon.tooLarge"), bills.MaxBillDetailBytes>>20)
	p, err := settlement.ParsePeriod(strings.TrimSpace(ctx.PostForm("period")))
	if err != nil {
		again(http.StatusBadRequest, m.T("recon.period")+": "+err.Error())
		return
	}
	t, err := bills.ProductTypes(ctx.PostForm("productType"))
	if err != nil {
		again(http.StatusBadRequest, m.T("bill.type")+": "+err.Error())
		return
	}
	fh, err := ctx.FormFile("file")
	if err != nil {
		again(http.StatusBadRequest, m.T("recon.noFile"))
		return
	}
	f, err := fh.Open()
	if err != nil {
		again(http.StatusBadRequest, m.T("recon.noFile"))
		return
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, bills.MaxBillDetailBytes+1))
	if err != nil {
		c.internal(ctx, "read the uploaded bill detail", err)
		return
	}
	if len(data) > bills.MaxBillDetailBytes {
		again(http.StatusRequestEntityTooLarge, tooLarge)
		return
	}
	im, sum, _, err := c.recon.ImportAndDiff(ctx.Request.Context(), recon.ImportRequest{Data: data, Filename: fh.Filename, Period: p,
		ProductType: t, Mapping: recon.DefaultMapping(), Actor: token(ctx).Name}, c.d.Catalog)
	if r, ok := refusal.As(err); ok {
		again(http.StatusBadRequest, m.T("recon.refused")+" "+r.Reason)
		return
	}
	if err != nil {
		c.internal(ctx, "import bill detail", err)
		return
	}
	httpx.Log(ctx).Info("bill detail imported", "import_id", im.ImportID, "rows", im.Rows, "already_imported", im.AlreadyImported,
		"diff_id", sum.DiffID, "unexplained", sum.UnexplainedCount)
	done := "recon-imported"
	if im.AlreadyImported {
		done = "recon-already"
	}
	ctx.Redirect(http.StatusSeeOther, Prefix+"/recon/diffs/"+strconv.FormatInt(sum.DiffID, 10)+"?done="+done)
}

type reconDiffData struct {
	Sum       recon.Summary
	Import    recon.Import
	Kind      string
	Explained string
	Kinds     []string
	Lines     []recon.DiffLine
	NextAfter string
}

// reconDiff: a diff summarised as matched / explained / unexplained, its differences filtered by kind.
func (c *Console) reconDiff(ctx *gin.Context) {
	m := c.cat(ctx)
	id, err := strconv.ParseInt(ctx.Param("diffId"), 10, 64)
	if err != nil || id <= 0 {
		c.fail(ctx, http.StatusBadRequest, m.T("recon.noDiff"))
		return
	}
	d := reconDiffData{Kind: ctx.Query("kind"), Explained: ctx.Query("explained"),
		Kinds: []string{recon.KindMarketplaceOnly, recon.KindKooflowOnly, recon.KindAmount}}
	f := recon.DiffFilter{Kind: d.Kind, Limit: 100}
	switch d.Kind {
	case "", recon.KindMarketplaceOnly, recon.KindKooflowOnly, recon.KindAmount:
	default:
		c.fail(ctx, http.StatusBadRequest, m.T("err.filter")+": kind")
		return
	}
	switch d.Explained {
	case "":
	case "true", "false":
		b := d.Explained == "true"
		f.Explained = &b
	default:
		c.fail(ctx, http.StatusBadRequest, m.T("err.filter")+": explained")
		return
	}
	if a := ctx.Query("after"); a != "" {
		oid, lid, ok := strings.Cut(a, "/")
		if !ok {
			c.fail(ctx, http.StatusBadRequest, m.T("err.cursor"))
			return
		}
		f.After = settlement.Key{OrderID: oid, OrderLineID: lid}
	}
	rc := ctx.Request.Context()
	if d.Sum, err = c.recon.GetDiff(rc, id); err != nil {
		c.reconFailed(ctx, "read diff", err)
		return
	}
	if d.Import, err = c.recon.GetImport(rc, d.Sum.ImportID); err != nil {
		c.reconFailed(ctx, "read import", err)
		return
	}
	if d.Lines, err = c.recon.DiffLines(rc, id, f); err != nil {
		c.internal(ctx, "read diff lines", err)
		return
	}
	if len(d.Lines) == f.Limit {
		last := d.Lines[len(d.Lines)-1]
		q := url.Values{"after": {last.OrderID + "/" + last.OrderLineID}}
		if d.Kind != "" {
			q.Set("kind", d.Kind)
		}
		if d.Explained != "" {
			q.Set("explained", d.Explained)
		}
		d.NextAfter = q.Encode()
	}
	v := c.view(ctx, "recon", d)
	v.Title = fmt.Sprintf("%s %s · %s #%d", d.Sum.Period, m.T("pt."+string(d.Sum.ProductType)), m.T("recon.diff"), id)
	c.render(ctx, http.StatusOK, "recondiff", v)
}

// reconFailed answers a reconciliation refusal (not found, invalid, conflict) in its own words.
func (c *Console) reconFailed(ctx *gin.Context, what string, err error) {
	if r, ok := refusal.As(err); ok {
		status := http.StatusConflict
		switch r.Code {
		case recon.CodeInvalid:
			status = http.StatusBadRequest
		case recon.CodeNotFound:
			status = http.StatusNotFound
		}
		c.fail(ctx, status, r.Reason)
		return
	}
	c.internal(ctx, what, err)
}

type reconBillData struct {
	Period      string
	ProductType string
	State       recon.BillState
	Next        []recon.BillState
	History     []recon.StateEvent
	Invoices    []recon.Invoice
	Receipts    []recon.RecordedReceipt
	Diff        *recon.Summary
	Receivable  *recon.Receivable
	Today       string
}

func (c *Console) reconRef(ctx *gin.Context) (recon.BillRef, bool) {
	p, err := settlement.ParsePeriod(ctx.Param("period"))
	if err != nil {
		c.fail(ctx, http.StatusBadRequest, err.Error())
		return recon.BillRef{}, false
	}
	t, err := bills.ProductTypes(ctx.Param("productType"))
	if err != nil {
		c.fail(ctx, http.StatusBadRequest, err.Error())
		return recon.BillRef{}, false
	}
	return recon.BillRef{Period: p, ProductType: t}, true
}

// reconBill: the marketplace's bill of a period and product type: its state (出账 / 会签 / 申付 / 支付) with the
// moves the process allows, its history, the invoice and the payments received.
func (c *Console) reconBill(ctx *gin.Context) {
	ref, ok := c.reconRef(ctx)
	if !ok {
		return
	}
	rc := ctx.Request.Context()
	d := reconBillData{Period: ref.Period.String(), ProductType: string(ref.ProductType), Today: settlement.DateOf(c.now()).String()}
	var err error
	if d.State, err = c.recon.State(rc, ref); err != nil {
		c.internal(ctx, "read bill state", err)
		return
	}
	d.Next = recon.Transitions(d.State)
	if d.History, err = c.recon.History(rc, ref); err != nil {
		c.internal(ctx, "read bill history", err)
		return
	}
	if d.Invoices, d.Receipts, err = c.recon.Payments(rc, ref); err != nil {
		c.internal(ctx, "read bill payments", err)
		return
	}
	if sum, err := c.recon.Latest(rc, d.Period, ref.ProductType); err == nil {
		d.Diff = &sum
	} else if _, refused := refusal.As(err); !refused {
		c.internal(ctx, "read diff", err)
		return
	}
	rs, err := c.recon.Receivables(rc, c.now(), false)
	if err != nil {
		c.internal(ctx, "read receivables", err)
		return
	}
	for i := range rs {
		if rs[i].Period == d.Period && rs[i].ProductType == ref.ProductType {
			d.Receivable = &rs[i]
		}
	}
	v := c.view(ctx, "recon", d)
	v.Title = d.Period + " " + v.M.T("pt."+d.ProductType)
	c.render(ctx, http.StatusOK, "reconbill", v)
}

func (c *Console) reconBack(ctx *gin.Context, ref recon.BillRef, done string) {
	back(ctx, Prefix+"/recon/bills/"+ref.Period.String()+"/"+string(ref.ProductType), done)
}

func (c *Console) reconState(ctx *gin.Context) {
	ref, ok := c.reconRef(ctx)
	if !ok {
		return
	}
	st, err := recon.ParseState(ctx.PostForm("state"))
	if err != nil {
		c.fail(ctx, http.StatusBadRequest, err.Error())
		return
	}
	if err := c.recon.SetState(ctx.Request.Context(), ref, st, token(ctx).Name, strings.TrimSpace(ctx.PostForm("note"))); err != nil {
		c.reconFailed(ctx, "change bill state", err)
		return
	}
	c.reconBack(ctx, ref, "recon-state")
}

// formAmount reads a yuan amount from a form field.
func formAmount(ctx *gin.Context, field string) (decimal.Decimal, bool) {
	d, err := decimal.NewFromString(strings.TrimSpace(ctx.PostForm(field)))
	return d, err == nil
}

func (c *Console) reconInvoice(ctx *gin.Context) {
	ref, ok := c.reconRef(ctx)
	if !ok {
		return
	}
	amount, ok := formAmount(ctx, "amount")
	if !ok {
		c.fail(ctx, http.StatusBadRequest, c.cat(ctx).T("err.amount"))
		return
	}
	inv := recon.Invoice{Number: strings.TrimSpace(ctx.PostForm("number")), IssuedOn: strings.TrimSpace(ctx.PostForm("issuedOn")), Amount: amount}
	if err := c.recon.RecordInvoice(ctx.Request.Context(), ref, inv, token(ctx).Name); err != nil {
		c.reconFailed(ctx, "record invoice", err)
		return
	}
	c.reconBack(ctx, ref, "recon-invoice")
}

func (c *Console) reconReceipt(ctx *gin.Context) {
	ref, ok := c.reconRef(ctx)
	if !ok {
		return
	}
	amount, ok := formAmount(ctx, "amount")
	if !ok {
		c.fail(ctx, http.StatusBadRequest, c.cat(ctx).T("err.amount"))
		return
	}
	r := recon.Receipt{ReceivedOn: strings.TrimSpace(ctx.PostForm("receivedOn")), Amount: amount, Reference: strings.TrimSpace(ctx.PostForm("reference"))}
	if err := c.recon.RecordReceipt(ctx.Request.Context(), ref, r, token(ctx).Name); err != nil {
		c.reconFailed(ctx, "record payment", err)
		return
	}
	c.reconBack(ctx, ref, "recon-receipt")
}

type receivablesData struct {
	All   bool
	Items []recon.Receivable
	Total decimal.Decimal
}

// receivables (应收): what the marketplace owes, since when, overdue marked.
func (c *Console) receivables(ctx *gin.Context) {
	all := ctx.Query("all") == "true"
	rs, err := c.recon.Receivables(ctx.Request.Context(), c.now(), !all)
	if err != nil {
		c.internal(ctx, "read receivables", err)
		return
	}
	d := receivablesData{All: all, Items: rs}
	for _, r := range rs {
		d.Total = d.Total.Add(r.Outstanding)
	}
	c.render(ctx, http.StatusOK, "receivables", c.view(ctx, "recon", d))
}

// tooLargeErr reports whether err is an upload over the cap.
func tooLargeErr(err error) bool {
	var big *http.MaxBytesError
	return errors.As(err, &big)
}
