package console

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/kooflow/kooflow/emulator/scenario"
)

// A "not yet" refusal is retried with the same Idempotency-Key; a refusal on the merits is returned at once.
func TestActionRetriesNotYetWithOneKey(t *testing.T) {
	var mu sync.Mutex
	var keys, auths []string
	calls := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if a := r.Header.Get("Authorization"); a != "Bearer tok" && a != "Bearer buyer" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		auths = append(auths, r.Header.Get("Authorization"))
		keys = append(keys, r.Header.Get("Idempotency-Key"))
		calls++
		w.Header().Set("Content-Type", "application/problem+json")
		switch {
		case r.URL.Path == "/console/v1/instances/i1/supervision" && calls < 3:
			w.WriteHeader(http.StatusConflict)
			_ = json.NewEncoder(w).Encode(map[string]any{"status": 409, "detail": "the purchase order has not been queried yet, so it is not known whether the product is supervised; try again shortly"})
		case r.URL.Path == "/console/v1/instances/i1/supervision":
			_ = json.NewEncoder(w).Encode(map[string]any{"supervision": "AWAITING_CONFIRMATION"})
		default:
			w.WriteHeader(http.StatusConflict)
			_ = json.NewEncoder(w).Encode(map[string]any{"status": 409, "detail": "cannot confirm the requirement now"})
		}
	}))
	defer srv.Close()
	c := New(srv.URL+"/console/v1", "tok", "buyer", nil)
	if err := c.Supervise(context.Background(), "i1", scenario.StepSubmitRequirement, scenario.PartyCustomer, ""); err != nil {
		t.Fatal(err)
	}
	if calls != 3 || keys[0] == "" || keys[0] != keys[1] || keys[1] != keys[2] {
		t.Fatalf("calls %d keys %v", calls, keys)
	}
	// The customer's step goes with the customer's token, the seller's with the seller's.
	if auths[0] != "Bearer buyer" {
		t.Fatalf("the customer's step was sent with %q", auths[0])
	}
	calls = 0
	err := c.Supervise(context.Background(), "i2", scenario.StepConfirm, scenario.PartySeller, "")
	var ce *Error
	if !errors.As(err, &ce) || ce.Status != 409 || errors.Is(err, scenario.ErrRetryLater) || calls != 1 {
		t.Fatalf("err %v after %d calls", err, calls)
	}
	if auths[len(auths)-1] != "Bearer tok" {
		t.Fatalf("the seller's step was sent with %q", auths[len(auths)-1])
	}
}
