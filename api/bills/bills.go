// Package bills is the console's settlement area: bills and their lines, CSV and XLSX exports, an explanation
// of why any order is or is not in a bill, the payment state of credit-paid orders (repayments recorded by hand
// or imported from the marketplace's transaction-detail export), adjustments, an on-demand estimate (预估) of
// the running month, and a way for operators to start a period's close.
package bills

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/shopspring/decimal"
	"go.temporal.io/sdk/temporal"

	"github.com/kooflow/kooflow/activities"
	"github.com/kooflow/kooflow/api/httpx"
	"github.com/kooflow/kooflow/internal/app"
	"github.com/kooflow/kooflow/internal/catalog"
	"github.com/kooflow/kooflow/internal/config"
	"github.com/kooflow/kooflow/internal/ledger"
	"github.com/kooflow/kooflow/internal/refusal"
	"github.com/kooflow/kooflow/internal/settlement"
	"github.com/kooflow/kooflow/workflows"
)

type handlers struct {
	d       app.Deps
	now     func() time.Time
	store   *ledger.Store
	catalog *catalog.Catalog
}

// maxImportBytes bounds a transaction-detail upload.
const maxImportBytes = 32 << 20

// multipartOverhead is room for a multipart upload's boundaries and part headers around the file.
const multipartOverhead = 64 << 10

// Mount adds the settlement routes under the console group (/console/v1/bills…).
func Mount(console *httpx.Console, d app.Deps) {
	h := &handlers{d: d, now: d.Clock(), store: &ledger.Store{Pool: d.Pool}, catalog: d.Catalog}
	g := console.Group("/bills")
	g.GET("", config.ScopeRead, h.list)
	g.GET("/:period/:productType", config.ScopeRead, h.show)
	g.GET("/:period/:productType/export.csv", config.ScopeRead, h.exportCSV)
	g.GET("/:period/:productType/export.xlsx", config.ScopeRead, h.exportXLSX)
	g.GET("/orders/:orderId/explain", config.ScopeRead, h.explain)
	g.POST("/estimate", config.ScopeRead, h.estimate)
	g.POST("/close", config.ScopeFinance, h.close)
	g.GET("/payments/:orderId", config.ScopeRead, h.payment)
	g.PUT("/payments/:orderId", config.ScopeFinance, h.setPayment)
	g.POST("/repayments", config.ScopeFinance, h.repayment)
	g.POST("/transactions/import", config.ScopeFinance, h.importTransactions)
	g.GET("/adjustments", config.ScopeRead, h.pendingAdjustments)
	g.POST("/adjustments", config.ScopeFinance, h.addAdjustment)
}

// fail answers a ledger or reconciliation error: refusals in their own terms, anything else as a logged 500.
func fail(c *gin.Context, what string, err error) {
	if r, ok := refusal.As(err); ok {
		status := http.StatusConflict
		switch r.Code {
		case refusal.Invalid:
			status = http.StatusBadRequest
		case refusal.NotFound:
			status = http.StatusNotFound
		case ledger.CodeContentChanged:
			status = http.StatusInternalServerError
		}
		httpx.Log(c).Info(what+" refused", "code", r.Code, "reason", r.Reason)
		httpx.WriteProblem(c, status, r.Reason)
		return
	}
	httpx.Log(c).Error(what, "err", err)
	httpx.WriteProblem(c, http.StatusInternalServerError, what+" failed; see the server log for request "+httpx.RequestID(c))
}

// decode reads a JSON body strictly (unknown fields are errors); an empty body is allowed when optional.
func decode(c *gin.Context, v any, optional bool) bool {
	body, err := io.ReadAll(io.LimitReader(c.Request.Body, 1<<20))
	if err != nil {
		httpx.WriteProblem(c, http.StatusBadRequest, "could not read the request body: "+err.Error())
		return false
	}
	if len(strings.TrimSpace(string(body))) == 0 {
		if optional {
			return true
		}
		httpx.WriteProblem(c, http.StatusBadRequest, "send a JSON body")
		return false
	}
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		httpx.WriteProblem(c, http.StatusBadRequest, "the body is not the expected JSON: "+err.Error())
		return false
	}
	return true
}

func billParams(c *gin.Context) (settlement.Period, catalog.ProductType, bool) {
	p, err := settlement.ParsePeriod(c.Param("period"))
	if err != nil {
		httpx.WriteProblem(c, http.StatusBadRequest, err.Error(), httpx.FieldError{Field: "period", Detail: err.Error()})
		return p, "", false
	}
	ts, err := ledger.ParseProductTypes([]string{c.Param("productType")})
	if err != nil {
		httpx.WriteProblem(c, http.StatusBadRequest, err.Error(), httpx.FieldError{Field: "productType", Detail: err.Error()})
		return p, "", false
	}
	return p, ts[0], true
}

// BillJSON is a bill as the console shows it: amounts as exact decimal strings with two places.
type BillJSON struct {
	Period           string     `json:"period"`
	ProductType      string     `json:"productType"`
	Status           string     `json:"status"`
	PeriodStart      time.Time  `json:"periodStart"`
	PeriodEnd        time.Time  `json:"periodEnd"`
	Threshold        string     `json:"threshold"`
	LineCount        int64      `json:"lineCount"`
	Revenue          string     `json:"revenue"`
	PlatformFee      string     `json:"platformFee"`
	Settlement       string     `json:"settlement"`
	AdjustmentCount  int64      `json:"adjustmentCount"`
	AdjustmentTotal  string     `json:"adjustmentTotal"`
	AmountDue        string     `json:"amountDue"`
	CarriedLineCount int64      `json:"carriedLineCount"`
	CarriedTotal     string     `json:"carriedTotal"`
	ContentHash      string     `json:"contentHash,omitempty"`
	CreatedAt        time.Time  `json:"createdAt"`
	FinalizedAt      *time.Time `json:"finalizedAt,omitempty"`
}

func billJSON(b ledger.BillSummary) BillJSON {
	return BillJSON{Period: b.Period, ProductType: string(b.ProductType), Status: b.Status, PeriodStart: b.PeriodStart,
		PeriodEnd: b.PeriodEnd, Threshold: b.Threshold.StringFixed(2), LineCount: b.LineCount, Revenue: b.Revenue.StringFixed(2),
		PlatformFee: b.PlatformFee.StringFixed(2), Settlement: b.Settlement.StringFixed(2), AdjustmentCount: b.AdjustmentCount,
		AdjustmentTotal: b.AdjustmentTotal.StringFixed(2), AmountDue: b.AmountDue.StringFixed(2),
		CarriedLineCount: b.CarriedLineCount, CarriedTotal: b.CarriedTotal.StringFixed(2), ContentHash: b.ContentHash,
		CreatedAt: b.CreatedAt, FinalizedAt: b.FinalizedAt}
}

// LineJSON is one bill line.
type LineJSON struct {
	OrderID      string    `json:"orderId"`
	OrderLineID  string    `json:"orderLineId"`
	InstanceID   string    `json:"instanceId"`
	OrderType    string    `json:"orderType"`
	RefersTo     string    `json:"refersToOrderId,omitempty"`
	ProductID    string    `json:"productId"`
	SKUCode      string    `json:"skuCode"`
	AttributedAt time.Time `json:"attributedAt"`
	PaidAmount   string    `json:"paidAmount"`
	ListAmount   string    `json:"listAmount"`
	Rate         string    `json:"rate"`
	Revenue      string    `json:"revenue"`
	PlatformFee  string    `json:"platformFee"`
	Settlement   string    `json:"settlement"`
}

func lineJSON(l ledger.Line) LineJSON {
	return LineJSON{OrderID: l.OrderID, OrderLineID: l.OrderLineID, InstanceID: l.InstanceID, OrderType: l.OrderType,
		RefersTo: l.RefersTo, ProductID: l.ProductID, SKUCode: l.SKUCode, AttributedAt: l.AttributedAt,
		PaidAmount: l.PaidAmount.StringFixed(3), ListAmount: l.ListAmount.StringFixed(3), Rate: l.Rate.String(),
		Revenue: l.Revenue.StringFixed(2), PlatformFee: l.PlatformFee.StringFixed(2), Settlement: l.Settlement.StringFixed(2)}
}

// AdjustmentJSON is one adjustment.
type AdjustmentJSON struct {
	ID             int64     `json:"adjustmentId"`
	ProductType    string    `json:"productType"`
	Amount         string    `json:"amount"`
	Reason         string    `json:"reason"`
	OrderID        string    `json:"orderId,omitempty"`
	CorrectsPeriod string    `json:"correctsPeriod,omitempty"`
	CreatedBy      string    `json:"createdBy"`
	CreatedAt      time.Time `json:"createdAt"`
	Included       bool      `json:"included"`
}

func adjustmentJSON(a ledger.Adjustment) AdjustmentJSON {
	return AdjustmentJSON{ID: a.ID, ProductType: string(a.ProductType), Amount: a.Amount.StringFixed(2), Reason: a.Reason,
		OrderID: a.OrderID, CorrectsPeriod: a.CorrectsPeriod, CreatedBy: a.CreatedBy, CreatedAt: a.CreatedAt, Included: a.BillID != nil}
}

func (h *handlers) list(c *gin.Context) {
	f := ledger.BillFilter{Period: c.Query("period"), Status: c.Query("status")}
	if f.Period != "" {
		p, err := settlement.ParsePeriod(f.Period)
		if err != nil {
			httpx.WriteProblem(c, http.StatusBadRequest, err.Error(), httpx.FieldError{Field: "period", Detail: err.Error()})
			return
		}
		f.Period = p.String()
	}
	if t := c.Query("productType"); t != "" {
		ts, err := ledger.ParseProductTypes([]string{t})
		if err != nil {
			httpx.WriteProblem(c, http.StatusBadRequest, err.Error(), httpx.FieldError{Field: "productType", Detail: err.Error()})
			return
		}
		f.ProductType = ts[0]
	}
	switch f.Status {
	case "", ledger.StatusDraft, ledger.StatusFinal, ledger.StatusCarriedForward:
	default:
		httpx.WriteProblem(c, http.StatusBadRequest, "status must be draft, final or carried_forward",
			httpx.FieldError{Field: "status", Detail: "unknown status " + strconv.Quote(f.Status)})
		return
	}
	if l := c.Query("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > 500 {
			httpx.WriteProblem(c, http.StatusBadRequest, "limit must be from 1 to 500", httpx.FieldError{Field: "limit", Detail: l})
			return
		}
		f.Limit = n
	}
	bills, err := h.store.ListBills(c.Request.Context(), f)
	if err != nil {
		fail(c, "list bills", err)
		return
	}
	out := make([]BillJSON, len(bills))
	for i, b := range bills {
		out[i] = billJSON(b)
	}
	c.JSON(http.StatusOK, gin.H{"bills": out})
}

func (h *handlers) show(c *gin.Context) {
	p, t, ok := billParams(c)
	if !ok {
		return
	}
	var after settlement.Key
	if a := c.Query("after"); a != "" {
		id, line, found := strings.Cut(a, "/")
		if !found {
			httpx.WriteProblem(c, http.StatusBadRequest, "after must be orderId/orderLineId, as in nextAfter",
				httpx.FieldError{Field: "after", Detail: a})
			return
		}
		after = settlement.Key{OrderID: id, OrderLineID: line}
	}
	limit := 100
	if l := c.Query("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > 1000 {
			httpx.WriteProblem(c, http.StatusBadRequest, "limit must be from 1 to 1000", httpx.FieldError{Field: "limit", Detail: l})
			return
		}
		limit = n
	}
	ctx := c.Request.Context()
	b, err := h.store.Bill(ctx, p.String(), t)
	if err != nil {
		fail(c, "read bill", err)
		return
	}
	lines, err := h.store.Lines(ctx, b.BillID, after, limit)
	if err != nil {
		fail(c, "read bill lines", err)
		return
	}
	adjs, err := h.store.Adjustments(ctx, b.BillID)
	if err != nil {
		fail(c, "read adjustments", err)
		return
	}
	out := gin.H{"bill": billJSON(b)}
	ls := make([]LineJSON, len(lines))
	for i, l := range lines {
		ls[i] = lineJSON(l)
	}
	out["lines"] = ls
	if len(lines) == limit {
		last := lines[len(lines)-1]
		out["nextAfter"] = last.OrderID + "/" + last.OrderLineID
	}
	as := make([]AdjustmentJSON, len(adjs))
	for i, a := range adjs {
		as[i] = adjustmentJSON(a)
	}
	out["adjustments"] = as
	c.JSON(http.StatusOK, out)
}

// closedBill reads the bill of the path and refuses drafts, whose lines are still being written.
func (h *handlers) closedBill(c *gin.Context) (ledger.BillSummary, bool) {
	p, t, ok := billParams(c)
	if !ok {
		return ledger.BillSummary{}, false
	}
	b, err := h.store.Bill(c.Request.Context(), p.String(), t)
	if err != nil {
		fail(c, "read bill", err)
		return b, false
	}
	if !b.Closed() {
		httpx.WriteProblem(c, http.StatusConflict, fmt.Sprintf("the %s bill for %s is a draft being computed; export it once it is final", t, p))
		return b, false
	}
	return b, true
}

func exportHeaders(c *gin.Context, b ledger.BillSummary, ext, contentType string) {
	c.Header("Content-Type", contentType)
	c.Header("Content-Disposition", fmt.Sprintf(`attachment; filename="kooflow-bill-%s-%s.%s"`, b.Period, b.ProductType, ext))
	c.Header("X-Bill-Content-Hash", b.ContentHash)
	c.Header("Cache-Control", "no-store")
}

func (h *handlers) exportCSV(c *gin.Context) {
	b, ok := h.closedBill(c)
	if !ok {
		return
	}
	exportHeaders(c, b, "csv", "text/csv; charset=utf-8")
	c.Status(http.StatusOK)
	if err := h.store.WriteCSV(c.Request.Context(), c.Writer, b); err != nil {
		// Headers are gone; the truncated body and the log are all that can tell.
		httpx.Log(c).Error("export bill as CSV", "period", b.Period, "product_type", b.ProductType, "err", err)
	}
}

func (h *handlers) exportXLSX(c *gin.Context) {
	b, ok := h.closedBill(c)
	if !ok {
		return
	}
	if b.LineCount > ledger.MaxXLSXLines {
		httpx.WriteProblem(c, http.StatusUnprocessableEntity, fmt.Sprintf("the bill has %d lines, more than a worksheet holds; use export.csv", b.LineCount))
		return
	}
	var buf bytes.Buffer
	if err := h.store.WriteXLSX(c.Request.Context(), &buf, b); err != nil {
		fail(c, "export bill as XLSX", err)
		return
	}
	const xlsx = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
	exportHeaders(c, b, "xlsx", xlsx)
	c.Data(http.StatusOK, xlsx, buf.Bytes())
}

func (h *handlers) explain(c *gin.Context) {
	orderID := c.Param("orderId")
	if err := ledger.ValidOrderID(orderID); err != nil {
		httpx.WriteProblem(c, http.StatusBadRequest, err.Error(), httpx.FieldError{Field: "orderId", Detail: err.Error()})
		return
	}
	es, err := h.store.Explain(c.Request.Context(), orderID, c.Query("orderLineId"), h.now(), h.catalog)
	if err != nil {
		fail(c, "explain order", err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"orderId": orderID, "lines": es})
}

type estimateRequest struct {
	Period string `json:"period"`
}

func (h *handlers) estimate(c *gin.Context) {
	var req estimateRequest
	if !decode(c, &req, true) {
		return
	}
	now := h.now()
	p := settlement.PeriodOf(now)
	if req.Period != "" {
		var err error
		if p, err = settlement.ParsePeriod(req.Period); err != nil {
			httpx.WriteProblem(c, http.StatusBadRequest, err.Error(), httpx.FieldError{Field: "period", Detail: err.Error()})
			return
		}
		if settlement.PeriodOf(now).Before(p) {
			httpx.WriteProblem(c, http.StatusBadRequest, fmt.Sprintf("period %s has not started", p), httpx.FieldError{Field: "period", Detail: "in the future"})
			return
		}
	}
	est, err := h.store.Estimate(c.Request.Context(), ledger.EstimateRequest{Period: p, AsOf: now, Terms: activities.SettlementTerms(h.catalog),
		Threshold: h.d.Config.SettlementThreshold})
	if err != nil {
		fail(c, "estimate", err)
		return
	}
	types := make([]gin.H, len(est.Types))
	for i, t := range est.Types {
		types[i] = gin.H{"productType": t.ProductType, "lines": t.Lines, "usageLines": t.UsageLines,
			"usageQuantity": t.UsageQuantity.StringFixed(4), "revenue": t.Revenue.StringFixed(2),
			"platformFee": t.PlatformFee.StringFixed(2), "settlement": t.Settlement.StringFixed(2),
			"pendingAdjustments": t.PendingAdjustments, "adjustmentTotal": t.AdjustmentTotal.StringFixed(2),
			"total": t.Total.StringFixed(2), "threshold": t.Threshold.StringFixed(2), "wouldBill": t.WouldBill}
	}
	c.JSON(http.StatusOK, gin.H{"kind": "estimate", "period": est.Period, "asOf": est.AsOf, "productTypes": types,
		"note": "预估: computed now from the current data, nothing written; the final bill is produced by the period's close"})
}

type closeRequest struct {
	Period       string   `json:"period"`
	ProductTypes []string `json:"productTypes"`
}

func (h *handlers) close(c *gin.Context) {
	var req closeRequest
	if !decode(c, &req, false) {
		return
	}
	p, err := settlement.ParsePeriod(req.Period)
	if err != nil {
		httpx.WriteProblem(c, http.StatusBadRequest, err.Error(), httpx.FieldError{Field: "period", Detail: err.Error()})
		return
	}
	if h.now().Before(p.End()) {
		httpx.WriteProblem(c, http.StatusBadRequest, fmt.Sprintf("period %s has not ended; ask for an estimate instead", p),
			httpx.FieldError{Field: "period", Detail: "not ended"})
		return
	}
	ts, err := ledger.ParseProductTypes(req.ProductTypes)
	if err != nil {
		httpx.WriteProblem(c, http.StatusBadRequest, err.Error(), httpx.FieldError{Field: "productTypes", Detail: err.Error()})
		return
	}
	run, err := workflows.StartSettlementPeriod(c.Request.Context(), h.d.Temporal,
		workflows.SettlementPeriodInput{Period: p.String(), ProductTypes: ts, RequestedBy: "console " + httpx.ActorName(c)},
		workflows.SettlementStart{TaskQueue: h.d.Config.TaskQueue, RefuseIfRunning: true,
			Summary: "close " + p.String() + " (console: " + httpx.ActorName(c) + ")"})
	if err != nil && temporal.IsWorkflowExecutionAlreadyStartedError(err) {
		httpx.WriteProblem(c, http.StatusConflict, "the settlement workflow "+workflows.SettlementWorkflowID(p)+" is already running")
		return
	}
	if err != nil {
		httpx.Log(c).Error("start settlement workflow", "period", p.String(), "err", err)
		httpx.WriteProblem(c, http.StatusServiceUnavailable, "could not start the settlement workflow in Temporal: "+err.Error())
		return
	}
	httpx.Log(c).Info("settlement close started", "period", p.String(), "workflow_id", run.GetID(), "by", httpx.ActorName(c))
	c.JSON(http.StatusAccepted, gin.H{"workflowId": run.GetID(), "runId": run.GetRunID(), "period": p.String(), "productTypes": ts})
}

// PaymentJSON is an order's payment state.
type PaymentJSON struct {
	OrderID   string                `json:"orderId"`
	Recorded  bool                  `json:"recorded"`
	Credit    bool                  `json:"credit"`
	RepaidAt  *time.Time            `json:"repaidAt,omitempty"`
	Paid      string                `json:"paid"`
	Source    string                `json:"source,omitempty"`
	UpdatedBy string                `json:"updatedBy,omitempty"`
	UpdatedAt *time.Time            `json:"updatedAt,omitempty"`
	History   []ledger.PaymentEvent `json:"history,omitempty"`
}

func paymentJSON(p ledger.PaymentState) PaymentJSON {
	paid := "paid at purchase"
	switch {
	case p.Credit && p.RepaidAt == nil:
		paid = "credit-paid (信用支付), not repaid (回款) yet"
	case p.Credit:
		paid = "credit-paid (信用支付), repaid (回款) at " + p.RepaidAt.In(settlement.Beijing).Format("2006-01-02 15:04:05 -07:00")
	}
	return PaymentJSON{OrderID: p.OrderID, Recorded: p.Recorded, Credit: p.Credit, RepaidAt: p.RepaidAt, Paid: paid,
		Source: p.Source, UpdatedBy: p.UpdatedBy, UpdatedAt: p.UpdatedAt, History: p.History}
}

func (h *handlers) payment(c *gin.Context) {
	id := c.Param("orderId")
	if err := ledger.ValidOrderID(id); err != nil {
		httpx.WriteProblem(c, http.StatusBadRequest, err.Error(), httpx.FieldError{Field: "orderId", Detail: err.Error()})
		return
	}
	p, err := h.store.Payment(c.Request.Context(), id)
	if err != nil {
		fail(c, "read payment", err)
		return
	}
	c.JSON(http.StatusOK, paymentJSON(p))
}

type paymentRequest struct {
	Credit   *bool      `json:"credit"`
	RepaidAt *time.Time `json:"repaidAt"`
}

func (h *handlers) setPayment(c *gin.Context) {
	id := c.Param("orderId")
	var req paymentRequest
	if !decode(c, &req, false) {
		return
	}
	if req.Credit == nil {
		httpx.WriteProblem(c, http.StatusBadRequest, "credit is required: true for a credit-paid (信用支付) order, false otherwise",
			httpx.FieldError{Field: "credit", Detail: "missing"})
		return
	}
	p, changed, err := h.store.SetPayment(c.Request.Context(), id, *req.Credit, req.RepaidAt, httpx.ActorName(c), h.now())
	if err != nil {
		fail(c, "record payment", err)
		return
	}
	httpx.Log(c).Info("payment state recorded", "order_id", id, "credit", p.Credit, "repaid_at", p.RepaidAt, "changed", changed)
	c.JSON(http.StatusOK, gin.H{"payment": paymentJSON(p), "changed": changed})
}

type repaymentRequest struct {
	OrderID  string     `json:"orderId"`
	RepaidAt *time.Time `json:"repaidAt"`
}

func (h *handlers) repayment(c *gin.Context) {
	var req repaymentRequest
	if !decode(c, &req, false) {
		return
	}
	at := h.now().UTC()
	if req.RepaidAt != nil {
		at = req.RepaidAt.UTC()
	}
	p, changed, err := h.store.SetPayment(c.Request.Context(), req.OrderID, true, &at, httpx.ActorName(c), h.now())
	if err != nil {
		fail(c, "record repayment", err)
		return
	}
	httpx.Log(c).Info("repayment recorded", "order_id", req.OrderID, "repaid_at", at, "changed", changed)
	c.JSON(http.StatusOK, gin.H{"payment": paymentJSON(p), "changed": changed})
}

func (h *handlers) importTransactions(c *gin.Context) {
	filename := c.Query("filename")
	// The whole request is capped before anything parses it: a multipart body would otherwise be spooled to
	// temporary files whatever its size.
	tooLarge := fmt.Sprintf("the export is larger than %d MiB; split it by period", maxImportBytes>>20)
	if c.Request.ContentLength > maxImportBytes+multipartOverhead {
		httpx.WriteProblem(c, http.StatusRequestEntityTooLarge, tooLarge)
		return
	}
	c.Request.Body = http.MaxBytesReader(c.Writer, c.Request.Body, maxImportBytes+multipartOverhead)
	var r io.Reader = c.Request.Body
	if strings.HasPrefix(c.ContentType(), "multipart/") {
		fh, err := c.FormFile("file")
		var big *http.MaxBytesError
		if errors.As(err, &big) {
			httpx.WriteProblem(c, http.StatusRequestEntityTooLarge, tooLarge)
			return
		}
		if err != nil {
			httpx.WriteProblem(c, http.StatusBadRequest, "send the export as the multipart field \"file\" or as a text/csv body",
				httpx.FieldError{Field: "file", Detail: err.Error()})
			return
		}
		f, err := fh.Open()
		if err != nil {
			httpx.WriteProblem(c, http.StatusBadRequest, "could not read the uploaded file: "+err.Error())
			return
		}
		defer f.Close()
		r, filename = f, fh.Filename
	}
	data, err := io.ReadAll(io.LimitReader(r, maxImportBytes+1))
	var big *http.MaxBytesError
	if len(data) > maxImportBytes || errors.As(err, &big) {
		httpx.WriteProblem(c, http.StatusRequestEntityTooLarge, tooLarge)
		return
	}
	if err != nil {
		httpx.WriteProblem(c, http.StatusBadRequest, "could not read the upload: "+err.Error())
		return
	}
	res, err := h.store.ImportTransactions(c.Request.Context(), data, filename, httpx.ActorName(c))
	if err != nil {
		fail(c, "import transaction details", err)
		return
	}
	httpx.Log(c).Info("transaction details imported", "import_id", res.ImportID, "rows", res.Rows, "changed", res.Changed,
		"already_imported", res.AlreadyImported)
	status := http.StatusCreated
	if res.AlreadyImported {
		status = http.StatusOK
	}
	c.JSON(status, res)
}

func (h *handlers) pendingAdjustments(c *gin.Context) {
	adjs, err := h.store.Adjustments(c.Request.Context(), 0)
	if err != nil {
		fail(c, "read adjustments", err)
		return
	}
	out := make([]AdjustmentJSON, len(adjs))
	for i, a := range adjs {
		out[i] = adjustmentJSON(a)
	}
	c.JSON(http.StatusOK, gin.H{"pending": out})
}

type adjustmentRequest struct {
	ProductType    string `json:"productType"`
	Amount         string `json:"amount"`
	Reason         string `json:"reason"`
	OrderID        string `json:"orderId"`
	CorrectsPeriod string `json:"correctsPeriod"`
}

func (h *handlers) addAdjustment(c *gin.Context) {
	var req adjustmentRequest
	if !decode(c, &req, false) {
		return
	}
	var fields []httpx.FieldError
	amount, err := decimal.NewFromString(strings.TrimSpace(req.Amount))
	if err != nil || amount.IsZero() || amount.Exponent() < -2 {
		fields = append(fields, httpx.FieldError{Field: "amount", Detail: "a non-zero amount in yuan with at most two decimals, as a string, like \"-12.50\""})
	}
	if strings.TrimSpace(req.Reason) == "" || len(req.Reason) > 500 {
		fields = append(fields, httpx.FieldError{Field: "reason", Detail: "say why, in 1 to 500 characters"})
	}
	if req.OrderID != "" {
		if err := ledger.ValidOrderID(req.OrderID); err != nil {
			fields = append(fields, httpx.FieldError{Field: "orderId", Detail: err.Error()})
		}
	}
	if req.CorrectsPeriod != "" {
		if _, err := settlement.ParsePeriod(req.CorrectsPeriod); err != nil {
			fields = append(fields, httpx.FieldError{Field: "correctsPeriod", Detail: err.Error()})
		}
	}
	ts, err := ledger.ParseProductTypes([]string{req.ProductType})
	if err != nil || req.ProductType == "" {
		fields = append(fields, httpx.FieldError{Field: "productType", Detail: "general or joint-operation"})
	}
	key := c.GetHeader("Idempotency-Key")
	if len(key) > 200 {
		fields = append(fields, httpx.FieldError{Field: "Idempotency-Key", Detail: "at most 200 characters"})
	}
	if len(fields) > 0 {
		httpx.WriteProblem(c, http.StatusBadRequest, "the adjustment is not valid", fields...)
		return
	}
	a, created, err := h.store.AddAdjustment(c.Request.Context(), ledger.NewAdjustment{ProductType: ts[0], Amount: amount,
		Reason: strings.TrimSpace(req.Reason), OrderID: req.OrderID, CorrectsPeriod: req.CorrectsPeriod,
		CreatedBy: httpx.ActorName(c), IdempotencyKey: key})
	if err != nil {
		fail(c, "record adjustment", err)
		return
	}
	status := http.StatusCreated
	if !created {
		status = http.StatusOK
	}
	httpx.Log(c).Info("adjustment recorded", "adjustment_id", a.ID, "product_type", a.ProductType, "amount", a.Amount.StringFixed(2), "created", created)
	c.JSON(status, adjustmentJSON(a))
}
