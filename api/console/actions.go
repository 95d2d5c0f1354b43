package console

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"
	"github.com/shopspring/decimal"

	"github.com/kooflow/kooflow/api/httpx"
	"github.com/kooflow/kooflow/internal/config"
	"github.com/kooflow/kooflow/internal/instance"
	"github.com/kooflow/kooflow/internal/lifecycle"
	"github.com/kooflow/kooflow/internal/refusal"
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

func fieldProblems(c *gin.Context, errs ...*httpx.FieldError) bool {
	var out []httpx.FieldError
	for _, e := range errs {
		if e != nil {
			out = append(out, *e)
		}
	}
	if len(out) == 0 {
		return false
	}
	httpx.WriteProblem(c, http.StatusBadRequest, "invalid request", out...)
	return true
}

// supervision: POST /instances/:id/supervision
func (h *handlers) supervision(c *gin.Context) {
	var b SupervisionBody
	if !bindJSON(c, &b) {
		return
	}
	party := lifecycle.SupervisionParty(b.Step)
	var stepErr, partyErr *httpx.FieldError
	if party == "" {
		stepErr = &httpx.FieldError{Field: "step", Detail: "must be one of submitRequirement, confirmRequirement, rejectRequirement, completeService, accept"}
	}
	if b.Party != "" && b.Party != party && b.Party != instance.PartyOperator {
		partyErr = &httpx.FieldError{Field: "party", Detail: "must be " + party + " (the party of this step) or operator"}
	}
	if fieldProblems(c, stepErr, partyErr, checkText("note", b.Note, 2000)) {
		return
	}
	// The step decides the scope, whoever the party: a customer's step moves an order towards settlement.
	need := config.ScopeOperate
	if lifecycle.SupervisionParty(b.Step) == instance.PartyCustomer {
		need = config.ScopeCustomer
	}
	if !httpx.RequireScope(c, need) {
		return
	}
	if b.Party != "" {
		party = b.Party
	}
	req := instance.SupervisionRequest{Step: b.Step, Actor: httpx.Actor(c, party), Note: b.Note,
		ActualStartTime: b.ActualStartTime, RequestedAt: time.Now().UTC()}
	var res instance.SupervisionResult
	if h.update(c, instance.UpdateSupervision, req, &res) {
		c.JSON(http.StatusOK, res)
	}
}

// requestRefund: POST /instances/:id/refunds
func (h *handlers) requestRefund(c *gin.Context) {
	var b RefundBody
	if !bindJSON(c, &b) {
		return
	}
	var partyErr *httpx.FieldError
	if b.Party != "" && b.Party != instance.PartyCustomer && b.Party != instance.PartyOperator {
		partyErr = &httpx.FieldError{Field: "party", Detail: "must be customer or operator"}
	}
	if fieldProblems(c, checkAmount("amount", b.Amount), partyErr, checkText("reason", b.Reason, 2000), checkText("orderId", b.OrderID, 64)) {
		return
	}
	party := instance.PartyCustomer
	if b.Party != "" {
		party = b.Party
	}
	req := instance.RefundRequest{Action: instance.RefundRequestAction, OrderID: b.OrderID, Amount: b.Amount,
		Reason: b.Reason, Actor: httpx.Actor(c, party), RequestedAt: time.Now().UTC()}
	var res instance.RefundResult
	if h.update(c, instance.UpdateRefund, req, &res) {
		c.JSON(http.StatusCreated, refundView(res.Refund))
	}
}

// decideRefund: POST /instances/:id/refunds/:refundId/decision
func (h *handlers) decideRefund(c *gin.Context) {
	var b DecisionBody
	if !bindJSON(c, &b) {
		return
	}
	var decErr, amountOnReject *httpx.FieldError
	if b.Decision != instance.RefundApproveAction && b.Decision != instance.RefundRejectAction {
		decErr = &httpx.FieldError{Field: "decision", Detail: "must be approve or reject"}
	}
	if b.Decision == instance.RefundRejectAction && b.Amount != nil {
		amountOnReject = &httpx.FieldError{Field: "amount", Detail: "is only given with approve"}
	}
	if fieldProblems(c, decErr, amountOnReject, checkAmount("amount", b.Amount), checkText("note", b.Note, 2000)) {
		return
	}
	if b.Decision == instance.RefundApproveAction && h.d.Config.FourEyes && !h.otherThanRequester(c) {
		return
	}
	req := instance.RefundRequest{Action: b.Decision, RefundID: c.Param("refundId"), Amount: b.Amount, Reason: b.Note,
		Actor: httpx.Actor(c, instance.PartySeller), RequestedAt: time.Now().UTC()}
	var res instance.RefundResult
	if h.update(c, instance.UpdateRefund, req, &res) {
		c.JSON(http.StatusOK, refundView(res.Refund))
	}
}

// otherThanRequester enforces four eyes (KOOFLOW_FOUR_EYES): the refund's approver must be another console
// token than the one that requested it. The requester is read from the workflow's own state, which is current
// (the read model may trail it); when the workflow cannot answer, the Update that follows reports why. It answers
// 403 and returns false when the names are the same.
func (h *handlers) otherThanRequester(c *gin.Context) bool {
	id, refundID := c.Param("id"), c.Param("refundId")
	qctx, cancel := context.WithTimeout(c.Request.Context(), 5*time.Second)
	defer cancel()
	var st instance.Carry
	if err := h.instances.Query(qctx, id, instance.QueryState, &st); err != nil {
		return true
	}
	for _, r := range st.Refunds {
		if r.RefundID == refundID && r.RequestedBy.Name != "" && r.RequestedBy.Name == httpx.ActorName(c) {
			httpx.WriteProblem(c, http.StatusForbidden, "refund "+refundID+" was requested with the console token \""+
				r.RequestedBy.Name+"\"; another token must approve it (four eyes, "+config.EnvFourEyes+")")
			return false
		}
	}
	return true
}

// operator: POST /instances/:id/operator
func (h *handlers) operator(c *gin.Context) {
	var b OperatorBody
	if !bindJSON(c, &b) {
		return
	}
	var actErr *httpx.FieldError
	if b.Action != instance.OperatorResume && b.Action != instance.OperatorSkip {
		actErr = &httpx.FieldError{Field: "action", Detail: "must be resume or skip"}
	}
	if fieldProblems(c, actErr, checkText("note", b.Note, 2000)) {
		return
	}
	req := instance.OperatorAction{Action: b.Action, Actor: httpx.Actor(c, instance.PartyOperator), Note: b.Note}
	var res instance.OperatorResult
	if h.update(c, instance.UpdateOperator, req, &res) {
		c.JSON(http.StatusOK, res)
	}
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

// update sends a validated Update to the instance's workflow and waits for its result. It answers the request
// itself on failure and returns false:
//
//   - 404 when the read model has no such instance;
//   - 409 when the instance was released, or the workflow refused the step (with its reason);
//   - 504 when the workflow did not answer in time (the action may still be applied: retry with the same
//     Idempotency-Key and it is applied once);
//   - 503 when Temporal cannot be reached.
func (h *handlers) update(c *gin.Context, name string, arg, out any) bool {
	id := c.Param("id")
	ctx := c.Request.Context()
	inst, err := h.store.Instance(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		httpx.WriteProblem(c, http.StatusNotFound, "no instance "+id)
		return false
	}
	if err != nil {
		h.internal(c, "read instance", err)
		return false
	}
	if inst.Lifecycle == string(instance.LifecycleReleased) {
		httpx.WriteProblem(c, http.StatusConflict, "instance "+id+" was released; it accepts no more actions")
		return false
	}
	updateID := uuid.NewString()
	if key := strings.TrimSpace(c.GetHeader("Idempotency-Key")); key != "" {
		if len(key) > 128 {
			httpx.WriteProblem(c, http.StatusBadRequest, "the Idempotency-Key header must be at most 128 characters")
			return false
		}
		updateID = instance.UpdateID("console-"+name, key)
	}
	uctx, cancel := context.WithTimeout(ctx, updateTimeout)
	defer cancel()
	err = h.instances.Update(uctx, id, name, updateID, arg, out)
	if err == nil {
		httpx.Log(c).Info("console action applied", "instance_id", id, "update", name, "update_id", updateID)
		return true
	}
	if r, ok := refusal.As(err); ok {
		httpx.WriteProblem(c, http.StatusConflict, r.Reason)
		return false
	}
	switch {
	case errors.Is(err, instance.ErrNoWorkflow):
		httpx.WriteProblem(c, http.StatusConflict, "instance "+id+" has no running workflow (it was released or never started): "+err.Error())
	case errors.Is(err, context.DeadlineExceeded) || uctx.Err() != nil:
		httpx.WriteProblem(c, http.StatusGatewayTimeout, "the instance's workflow did not answer within "+updateTimeout.String()+
			"; the action may still be applied (retry with the same Idempotency-Key to apply it once) — is a worker running?")
	default:
		httpx.Log(c).Error("console update failed", "instance_id", id, "update", name, "err", err)
		httpx.WriteProblem(c, http.StatusServiceUnavailable, "could not reach the instance's workflow: "+err.Error())
	}
	return false
}
