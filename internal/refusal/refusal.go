// Package refusal is kooflow's one error type for a business refusal: a request that cannot succeed as asked,
// where retrying changes nothing (an impossible lifecycle step, a period that has not ended, a bill whose content
// changed). The lifecycle rules and the ledger refuse with it; the gateway answers one with its KooGallery result
// code, the console with a 4xx problem and the reason, Temporal fails the step without retrying.
//
// A refusal raised inside a workflow crosses to the client as a Temporal ApplicationError of type TemporalType
// (Temporal serialises errors by type name and message); As recognises both forms.
package refusal

import (
	"errors"
	"fmt"

	"go.temporal.io/sdk/temporal"
)

// Error is a refusal. Code is what the caller's protocol answers with: a KooGallery result code for a
// marketplace call (000002, 000003), a word for the console and the ledger (CONFLICT, PERIOD_NOT_ENDED …).
// Reason is written for a person and shown as is.
type Error struct {
	Code   string
	Reason string
}

func (e *Error) Error() string { return fmt.Sprintf("refused (%s): %s", e.Code, e.Reason) }

// New builds a refusal with a formatted reason.
func New(code, format string, args ...any) *Error {
	return &Error{Code: code, Reason: fmt.Sprintf(format, args...)}
}

// TemporalType is the ApplicationError type that carries a refusal out of a workflow. It is recorded in
// histories; it never changes.
const TemporalType = "kooflow.Refused"

// Codes every package's refusals share, so that callers (the console's problem details) map them to one status
// whatever package refused.
const (
	// Invalid: the request itself is wrong (HTTP 400).
	Invalid = "INVALID"
	// NotFound: what the request names does not exist (HTTP 404).
	NotFound = "NOT_FOUND"
)

// Temporal returns the refusal as the non-retryable ApplicationError a workflow (or an Update validator) returns,
// which As recognises on the client side.
func (e *Error) Temporal() error {
	return temporal.NewApplicationErrorWithOptions(e.Reason, TemporalType, temporal.ApplicationErrorOptions{
		NonRetryable: true,
		Details:      []any{e.Code},
	})
}

// As extracts a refusal from err: an *Error anywhere in its chain, or the ApplicationError Temporal delivers for
// one raised in a workflow.
func As(err error) (*Error, bool) {
	var e *Error
	if errors.As(err, &e) {
		return e, true
	}
	var appErr *temporal.ApplicationError
	if !errors.As(err, &appErr) || appErr.Type() != TemporalType {
		return nil, false
	}
	r := &Error{Reason: appErr.Message()}
	if appErr.HasDetails() {
		_ = appErr.Details(&r.Code)
	}
	return r, true
}
