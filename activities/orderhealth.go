package activities

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/kooflow/kooflow/internal/koogallery/orderquery"
)

// orderCodes are the marketplace's answers about one order (its parameters, another seller's order, an order
// that does not exist): the query itself works, so they do not count against its health.
var orderCodes = []string{"0100", "0101", "0199", "0150", "9001"}

// queryBroken reports whether a failed order query says the query itself is failing (transport, TLS, signing,
// credentials, the marketplace's own errors) rather than something about the order asked for.
func queryBroken(err error) bool {
	if errors.Is(err, context.Canceled) {
		return false // the worker is stopping
	}
	var qe *orderquery.Error
	if !errors.As(err, &qe) {
		return true
	}
	if qe.Retryable {
		return true
	}
	if qe.Code == "INVALID" {
		return false
	}
	code := qe.Code
	if i := strings.LastIndexByte(code, '.'); i >= 0 {
		code = code[i+1:]
	}
	for _, c := range orderCodes {
		if code == c {
			return false
		}
	}
	return true
}

// recordQueryHealth records the outcome of one call to the marketplace's order query (order_query_health) for
// the order-query-failing alert. A failure to record is logged and changes nothing else: the query's own outcome
// is what the workflow needs.
func (a *Lifecycle) recordQueryHealth(ctx context.Context, queryErr error) {
	if a.Store == nil {
		return
	}
	now := time.Now()
	var err error
	switch {
	case queryErr == nil:
		err = a.Store.RecordOrderQueryOK(ctx, now)
	case queryBroken(queryErr):
		err = a.Store.RecordOrderQueryFailure(ctx, now, queryErr.Error())
	default:
		err = a.Store.RecordOrderQueryOK(ctx, now) // the marketplace answered about the order: the query works
	}
	if err != nil {
		a.log().WarnContext(ctx, "could not record the order query's health", "err", err)
	}
}
