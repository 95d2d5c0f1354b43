package refusal

import (
	"errors"
	"fmt"
	"testing"

	"go.temporal.io/sdk/temporal"
)

func TestAsRecognisesBothForms(t *testing.T) {
	plain := fmt.Errorf("close: %w", New("PERIOD_NOT_ENDED", "period %s has not ended", "2026-12"))
	if r, ok := As(plain); !ok || r.Code != "PERIOD_NOT_ENDED" || r.Reason != "period 2026-12 has not ended" {
		t.Fatalf("plain: %+v %v", r, ok)
	}
	crossed := New("000003", "instance i-1 was released").Temporal()
	var app *temporal.ApplicationError
	if !errors.As(crossed, &app) || !app.NonRetryable() || app.Type() != TemporalType {
		t.Fatalf("not a non-retryable %s ApplicationError: %v", TemporalType, crossed)
	}
	if r, ok := As(fmt.Errorf("update: %w", crossed)); !ok || r.Code != "000003" || r.Reason != "instance i-1 was released" {
		t.Fatalf("crossed: %+v %v", r, ok)
	}
	for _, err := range []error{nil, errors.New("boom"), temporal.NewApplicationError("other", "kooflow.Other", "000003")} {
		if r, ok := As(err); ok {
			t.Fatalf("As(%v) = %+v, want no refusal", err, r)
		}
	}
}
