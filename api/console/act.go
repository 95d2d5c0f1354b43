package console

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/kooflow/kooflow/api/httpx"
	"github.com/kooflow/kooflow/internal/app"
	"github.com/kooflow/kooflow/internal/config"
	"github.com/kooflow/kooflow/internal/instance"
	"github.com/kooflow/kooflow/internal/lifecycle"
	"github.com/kooflow/kooflow/internal/refusal"
	"github.com/kooflow/kooflow/internal/store"
)

// Actions are the console's instance actions as plain functions: the JSON API and the web console both take
// their steps through them, so validation, scopes, four eyes and the Update to the workflow are written once.
type Actions struct {
	d         app.Deps
	store     *store.Store
	instances instance.Client
}

// NewActions builds the actions on d's database and Temporal client.
func NewActions(d app.Deps) *Actions {
	return &Actions{d: d, store: &store.Store{Pool: d.Pool}, instances: instance.Client{Temporal: d.Temporal}}
}

// ActionError is why an action was not taken, as the HTTP status and detail the console answers. Err, when set,
// is the underlying failure to log (a 5xx).
type ActionError struct {
	Status int
	Detail string
	Fields []httpx.FieldError
	Err    error
}

func (e *ActionError) Error() string { return e.Detail }

func actionErr(status int, detail string, fields ...httpx.FieldError) *ActionError {
	return &ActionError{Status: status, Detail: detail, Fields: fields}
}

func fieldErrors(errs ...*httpx.FieldError) error {
	var out []httpx.FieldError
	for _, e := range errs {
		if e != nil {
			out = append(out, *e)
		}
	}
	if len(out) == 0 {
		return nil
	}
	return actionErr(http.StatusBadRequest, "invalid request", out...)
}

// scopeErr is the 403 a token without the scope an action needs is answered.
func scopeErr(tok config.ConsoleToken, s config.Scope, what string) error {
	return actionErr(http.StatusForbidden, "the console token \""+tok.Name+"\" lacks the scope \""+string(s)+"\" that "+
		what+" needs; grant it in KOOFLOW_CONSOLE_TOKENS (name:token:scope+scope)")
}

// Supervise takes a supervision step for tok on instance id. idemKey, when not empty, makes a retry apply once.
func (a *Actions) Supervise(ctx context.Context, tok config.ConsoleToken, id string, b SupervisionBody, idemKey string) (instance.SupervisionResult, error) {
	var res instance.SupervisionResult
	party := lifecycle.SupervisionParty(b.Step)
	var stepErr, partyErr *httpx.FieldError
	if party == "" {
		stepErr = &httpx.FieldError{Field: "step", Detail: "must be one of submitRequirement, confirmRequirement, rejectRequirement, completeService, accept"}
	}
	if b.Party != "" && b.Party != party && b.Party != instance.PartyOperator {
		partyErr = &httpx.FieldError{Field: "party", Detail: "must be " + party + " (the party of this step) or operator"}
	}
	if err := fieldErrors(stepErr, partyErr, checkText("note", b.Note, 2000)); err != nil {
		return res, err
	}
	// The step decides the scope, whoever the party: a customer's step moves an order towards settlement.
	need := config.ScopeOperate
	if party == instance.PartyCustomer {
		need = config.ScopeCustomer
	}
	if !tok.Has(need) {
		return res, scopeErr(tok, need, "the supervision step "+b.Step)
	}
	if b.Party != "" {
		party = b.Party
	}
	req := instance.SupervisionRequest{Step: b.Step, Actor: instance.Actor{Party: party, Name: tok.Name}, Note: b.Note,
		ActualStartTime: b.ActualStartTime, RequestedAt: time.Now().UTC()}
	return res, a.update(ctx, id, instance.UpdateSupervision, idemKey, req, &res)
}

// RequestRefund records a customer's refund request (entered for them, or by the emulator).
func (a *Actions) RequestRefund(ctx context.Context, tok config.ConsoleToken, id string, b RefundBody, idemKey string) (store.Refund, error) {
	var partyErr *httpx.FieldError
	if b.Party != "" && b.Party != instance.PartyCustomer && b.Party != instance.PartyOperator {
		partyErr = &httpx.FieldError{Field: "party", Detail: "must be customer or operator"}
	}
	if err := fieldErrors(checkAmount("amount", b.Amount), partyErr, checkText("reason", b.Reason, 2000), checkText("orderId", b.OrderID, 64)); err != nil {
		return store.Refund{}, err
	}
	if !tok.Has(config.ScopeCustomer) {
		return store.Refund{}, scopeErr(tok, config.ScopeCustomer, "a refund request")
	}
	party := instance.PartyCustomer
	if b.Party != "" {
		party = b.Party
	}
	req := instance.RefundRequest{Action: instance.RefundRequestAction, OrderID: b.OrderID, Amount: b.Amount,
		Reason: b.Reason, Actor: instance.Actor{Party: party, Name: tok.Name}, RequestedAt: time.Now().UTC()}
	var res instance.RefundResult
	if err := a.update(ctx, id, instance.UpdateRefund, idemKey, req, &res); err != nil {
		return store.Refund{}, err
	}
	return refundView(res.Refund), nil
}

// DecideRefund records the seller's decision on a refund request; an approval passes four eyes first when
// KOOFLOW_FOUR_EYES is on.
func (a *Actions) DecideRefund(ctx context.Context, tok config.ConsoleToken, id, refundID string, b DecisionBody, idemKey string) (store.Refund, error) {
	var decErr, amountOnReject *httpx.FieldError
	if b.Decision != instance.RefundApproveAction && b.Decision != instance.RefundRejectAction {
		decErr = &httpx.FieldError{Field: "decision", Detail: "must be approve or reject"}
	}
	if b.Decision == instance.RefundRejectAction && b.Amount != nil {
		amountOnReject = &httpx.FieldError{Field: "amount", Detail: "is only given with approve"}
	}
	if err := fieldErrors(decErr, amountOnReject, checkAmount("amount", b.Amount), checkText("note", b.Note, 2000)); err != nil {
		return store.Refund{}, err
	}
	if !tok.Has(config.ScopeFinance) {
		return store.Refund{}, scopeErr(tok, config.ScopeFinance, "a refund decision")
	}
	if b.Decision == instance.RefundApproveAction && a.d.Config.FourEyes {
		if err := a.otherThanRequester(ctx, tok, id, refundID); err != nil {
			return store.Refund{}, err
		}
	}
	req := instance.RefundRequest{Action: b.Decision, RefundID: refundID, Amount: b.Amount, Reason: b.Note,
		Actor: instance.Actor{Party: instance.PartySeller, Name: tok.Name}, RequestedAt: time.Now().UTC()}
	var res instance.RefundResult
	if err := a.update(ctx, id, instance.UpdateRefund, idemKey, req, &res); err != nil {
		return store.Refund{}, err
	}
	return refundView(res.Refund), nil
}

// otherThanRequester enforces four eyes (KOOFLOW_FOUR_EYES): the refund's approver must be another console
// token than the one that requested it. The requester is read from the workflow's own state, which is current
// (the read model may trail it); when the workflow cannot answer, the Update that follows reports why.
func (a *Actions) otherThanRequester(ctx context.Context, tok config.ConsoleToken, id, refundID string) error {
	qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	var st instance.Carry
	if err := a.instances.Query(qctx, id, instance.QueryState, &st); err != nil {
		return nil
	}
	for _, r := range st.Refunds {
		if r.RefundID == refundID && r.RequestedBy.Name != "" && r.RequestedBy.Name == tok.Name {
			return actionErr(http.StatusForbidden, "refund "+refundID+" was requested with the console token \""+
				r.RequestedBy.Name+"\"; another token must approve it (four eyes, "+config.EnvFourEyes+")")
		}
	}
	return nil
}

// Operate resumes or skips the instance's parked step.
func (a *Actions) Operate(ctx context.Context, tok config.ConsoleToken, id string, b OperatorBody, idemKey string) (instance.OperatorResult, error) {
	var res instance.OperatorResult
	var actErr *httpx.FieldError
	if b.Action != instance.OperatorResume && b.Action != instance.OperatorSkip {
		actErr = &httpx.FieldError{Field: "action", Detail: "must be resume or skip"}
	}
	if err := fieldErrors(actErr, checkText("note", b.Note, 2000)); err != nil {
		return res, err
	}
	if !tok.Has(config.ScopeOperate) {
		return res, scopeErr(tok, config.ScopeOperate, "resuming or skipping a parked step")
	}
	req := instance.OperatorAction{Action: b.Action, Actor: instance.Actor{Party: instance.PartyOperator, Name: tok.Name}, Note: b.Note}
	return res, a.update(ctx, id, instance.UpdateOperator, idemKey, req, &res)
}

// update sends a validated Update to the instance's workflow and waits for its result. It fails with an
// ActionError:
//
//   - 404 when the read model has no such instance;
//   - 409 when the instance was released, or the workflow refused the step (with its reason);
//   - 504 when the workflow did not answer in time (the action may still be applied: retry with the same
//     idempotency key and it is applied once);
//   - 503 when Temporal cannot be reached.
func (a *Actions) update(ctx context.Context, id, name, idemKey string, arg, out any) error {
	inst, err := a.store.Instance(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return actionErr(http.StatusNotFound, "no instance "+id)
	}
	if err != nil {
		return &ActionError{Status: http.StatusInternalServerError, Detail: "could not read instance", Err: err}
	}
	if inst.Lifecycle == string(instance.LifecycleReleased) {
		return actionErr(http.StatusConflict, "instance "+id+" was released; it accepts no more actions")
	}
	updateID := uuid.NewString()
	if key := strings.TrimSpace(idemKey); key != "" {
		if len(key) > 128 {
			return actionErr(http.StatusBadRequest, "the Idempotency-Key header must be at most 128 characters")
		}
		updateID = instance.UpdateID("console-"+name, key)
	}
	uctx, cancel := context.WithTimeout(ctx, updateTimeout)
	defer cancel()
	err = a.instances.Update(uctx, id, name, updateID, arg, out)
	if err == nil {
		a.d.Log.InfoContext(ctx, "console action applied", "instance_id", id, "update", name, "update_id", updateID)
		return nil
	}
	if r, ok := refusal.As(err); ok {
		return actionErr(http.StatusConflict, r.Reason)
	}
	switch {
	case errors.Is(err, instance.ErrNoWorkflow):
		return actionErr(http.StatusConflict, "instance "+id+" has no running workflow (it was released or never started): "+err.Error())
	case errors.Is(err, context.DeadlineExceeded) || uctx.Err() != nil:
		return actionErr(http.StatusGatewayTimeout, "the instance's workflow did not answer within "+updateTimeout.String()+
			"; the action may still be applied (retry with the same Idempotency-Key to apply it once) — is a worker running?")
	default:
		return &ActionError{Status: http.StatusServiceUnavailable, Detail: "could not reach the instance's workflow: " + err.Error(), Err: err}
	}
}
