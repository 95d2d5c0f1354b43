package console

import (
	"errors"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/shopspring/decimal"

	"github.com/kooflow/kooflow/api/httpx"
	"github.com/kooflow/kooflow/internal/instance"
	"github.com/kooflow/kooflow/internal/lifecycle"
	"github.com/kooflow/kooflow/internal/store"
)

// updateTimeout bounds how long a console action waits for its workflow. Actions return once recorded, which
// normally takes milliseconds; a parked read model can hold them longer.
const updateTimeout = 20 * time.Second

// SupervisionBody is POST /instances/:id/supervision.
type SupervisionBody struct {
	Step string `json:"step"`
	// Party defaults to the step's party (customer: submitRequirement, accept; seller: confirmRequirement,
	// rejectRequirement, completeService); "operator" acts on behalf of either.
	Party           string     `json:"party,omitempty"`
	Note            string     `json:"note,omitempty"`
	ActualStartTime *time.Time `json:"actualStartTime,omitempty"`
}

// RefundBody is POST /instances/:id/refunds (a customer's request, entered for them or by the emulator).
type RefundBody struct {
	OrderID string           `json:"orderId,omitempty"`
	Amount  *decimal.Decimal `json:"amount,omitempty"`
	Reason  string           `json:"reason,omitempty"`
	Party   string           `json:"party,omitempty"` // customer (default) or operator
}

// DecisionBody is POST /instances/:id/refunds/:refundId/decision (the seller's decision).
type DecisionBody struct {
	Decision string           `json:"decision"` // approve or reject
	Amount   *decimal.Decimal `json:"amount,omitempty"`
	Note     string           `json:"note,omitempty"`
}

// OperatorBody is POST /instances/:id/operator.
type OperatorBody struct {
	Action string `json:"action"` // resume or skip
	Note   string `json:"note,omitempty"`
}

func bindJSON(c *gin.Context, v any) bool {
	dec := newStrictDecoder(c)
	if err := dec.Decode(v); err != nil {
		httpx.WriteProblem(c, http.StatusBadRequest, "the body is not the expected JSON: "+err.Error())
		return false
	}
	return true
}

func checkAmount(field string, a *decimal.Decimal) *httpx.FieldError {
	if a == nil {
		return nil
	}
	switch {
	case !a.IsPositive():
		return &httpx.FieldError{Field: field, Detail: "must be a positive amount in yuan, e.g. \"30.50\""}
	case a.Exponent() < -3 && !a.Equal(a.Truncate(3)):
		return &httpx.FieldError{Field: field, Detail: "has more than 3 decimal places"}
	case a.GreaterThanOrEqual(decimal.New(1, 15)):
		return &httpx.FieldError{Field: field, Detail: "is too large"}
	}
	return nil
}

func checkText(field, v string, max int) *httpx.FieldError {
	if len(v) > max {
		return &httpx.FieldError{Field: field, Detail: "must be at most " + itoa(max) + " bytes"}
	}
	return nil
}

// supervision: POST /instances/:id/supervision
func (h *handlers) supervision(c *gin.Context) {
	var b SupervisionBody
	if !bindJSON(c, &b) {
		return
	}
	res, err := h.actions.Supervise(c.Request.Context(), httpx.Token(c), c.Param("id"), b, c.GetHeader("Idempotency-Key"))
	if h.answerError(c, err) {
		return
	}
	c.JSON(http.StatusOK, res)
}

// requestRefund: POST /instances/:id/refunds
func (h *handlers) requestRefund(c *gin.Context) {
	var b RefundBody
	if !bindJSON(c, &b) {
		return
	}
	res, err := h.actions.RequestRefund(c.Request.Context(), httpx.Token(c), c.Param("id"), b, c.GetHeader("Idempotency-Key"))
	if h.answerError(c, err) {
		return
	}
	c.JSON(http.StatusCreated, res)
}

// decideRefund: POST /instances/:id/refunds/:refundId/decision
func (h *handlers) decideRefund(c *gin.Context) {
	var b DecisionBody
	if !bindJSON(c, &b) {
		return
	}
	res, err := h.actions.DecideRefund(c.Request.Context(), httpx.Token(c), c.Param("id"), c.Param("refundId"), b, c.GetHeader("Idempotency-Key"))
	if h.answerError(c, err) {
		return
	}
	c.JSON(http.StatusOK, res)
}

// operator: POST /instances/:id/operator
func (h *handlers) operator(c *gin.Context) {
	var b OperatorBody
	if !bindJSON(c, &b) {
		return
	}
	res, err := h.actions.Operate(c.Request.Context(), httpx.Token(c), c.Param("id"), b, c.GetHeader("Idempotency-Key"))
	if h.answerError(c, err) {
		return
	}
	c.JSON(http.StatusOK, res)
}

// answerError answers an action's failure as a problem document and reports whether there was one.
func (h *handlers) answerError(c *gin.Context, err error) bool {
	if err == nil {
		return false
	}
	var ae *ActionError
	if !errors.As(err, &ae) {
		ae = &ActionError{Status: http.StatusInternalServerError, Detail: "the action failed", Err: err}
	}
	if ae.Err != nil {
		httpx.Log(c).Error("console action failed", "instance_id", c.Param("id"), "err", ae.Err)
	}
	if ae.Status == http.StatusInternalServerError {
		httpx.WriteProblem(c, ae.Status, ae.Detail+"; see the server log for request "+httpx.RequestID(c))
		return true
	}
	httpx.WriteProblem(c, ae.Status, ae.Detail, ae.Fields...)
	return true
}

// refundView renders the workflow's answer as GET /instances/:id renders the refunds row (amounts with the
// column's three decimals).
func refundView(r instance.Refund) store.Refund {
	v := store.Refund{RefundID: r.RefundID, OrderID: r.OrderID, OrderLineID: r.OrderLineID, Status: r.Status,
		RequestedAmount: r.Requested.StringFixed(3), FullOnly: r.FullOnly, RequestedBy: lifecycle.ActorString(r.RequestedBy),
		RequestedAt: r.RequestedAt, DecidedAt: r.DecidedAt}
	v.Reason, v.DecisionNote = r.Reason, r.Note
	if r.Status == instance.RefundApproved {
		a := r.Approved.StringFixed(3)
		v.ApprovedAmount = &a
	}
	if r.DecidedBy != nil {
		by := lifecycle.ActorString(*r.DecidedBy)
		v.DecidedBy = &by
	}
	if r.RefundOrderID != "" {
		id := r.RefundOrderID
		v.RefundOrderID = &id
	}
	return v
}
