// Package console is the emulator's client of kooflow's console API (/console/v1): it reads an instance's read
// model for the scenario's comparison and performs the console actions a scenario plays — the customer's
// supervision steps and refund requests (party "customer"), the seller's confirmations, deliveries and refund
// decisions. Its JSON types are the emulator's own, written from the API's documentation, so a renamed field
// shows up as a mismatch rather than passing silently.
package console

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/shopspring/decimal"

	"github.com/kooflow/kooflow/emulator/scenario"
)

// Client talks to one kooflow console.
type Client struct {
	base     string
	token    string // the seller's token: reads, the seller's steps, refund decisions
	customer string // the customer's token: the customer's steps and refund requests
	http     *http.Client
}

// New returns a client for the console at base (e.g. http://127.0.0.1:8080/console/v1) with the seller's bearer
// token and the customer's (the scope "customer"; empty: the seller's token acts for the customer too, which
// fails where four eyes keep one token from approving its own refund request).
func New(base, token, customerToken string, hc *http.Client) *Client {
	if hc == nil {
		hc = &http.Client{Timeout: 30 * time.Second}
	}
	if customerToken == "" {
		customerToken = token
	}
	return &Client{base: strings.TrimRight(base, "/"), token: token, customer: customerToken, http: hc}
}

var _ scenario.Seller = (*Client)(nil)

type problem struct {
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail"`
}

// Error is a console answer other than success.
type Error struct {
	Status int
	Detail string
}

func (e *Error) Error() string { return fmt.Sprintf("console: HTTP %d: %s", e.Status, e.Detail) }

// retryable says whether the seller's refusal is a "not yet": the instance's read model or its purchase order
// is not there yet, the workflow is busy or unreachable. Those are retried; a refusal on the merits is not.
func (e *Error) retryable() bool {
	switch e.Status {
	case http.StatusNotFound, http.StatusGatewayTimeout, http.StatusServiceUnavailable, http.StatusBadGateway,
		http.StatusTooManyRequests, http.StatusInternalServerError:
		return true
	case http.StatusConflict:
		d := strings.ToLower(e.Detail)
		return strings.Contains(d, "try again") || strings.Contains(d, "not known yet") || strings.Contains(d, "not been recorded yet") ||
			strings.Contains(d, "not provisioned yet") || strings.Contains(d, "not been queried yet")
	}
	return false
}

// do sends one request; key, if set, is the Idempotency-Key that makes a retried action apply once.
func (c *Client) do(ctx context.Context, method, path, key string, in, out any) error {
	return c.doAs(ctx, c.token, method, path, key, in, out)
}

// doAs is do with the given token.
func (c *Client) doAs(ctx context.Context, token, method, path, key string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Accept", "application/json")
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("console %s %s: %w: %w", method, path, scenario.ErrRetryLater, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return fmt.Errorf("console %s %s: read: %w", method, path, err)
	}
	if resp.StatusCode >= 300 {
		var p problem
		_ = json.Unmarshal(raw, &p)
		if p.Detail == "" {
			p.Detail = strings.TrimSpace(string(raw))
		}
		e := &Error{Status: resp.StatusCode, Detail: p.Detail}
		if e.retryable() {
			return fmt.Errorf("%w: %w", scenario.ErrRetryLater, e)
		}
		return e
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return fmt.Errorf("console %s %s: unexpected answer %.200s: %w", method, path, raw, err)
	}
	return nil
}

type instanceJSON struct {
	InstanceID   string     `json:"instanceId"`
	OrderID      string     `json:"orderId"`
	OrderLineID  string     `json:"orderLineId"`
	ProductID    string     `json:"productId"`
	SKUCode      string     `json:"skuCode"`
	Quantity     int64      `json:"quantity"`
	Lifecycle    string     `json:"lifecycle"`
	Supervision  string     `json:"supervision"`
	ExpireTime   *time.Time `json:"expireTime"`
	Parked       bool       `json:"parked"`
	ParkedStep   string     `json:"parkedStep"`
	ParkedReason string     `json:"parkedReason"`
	AppInfo      *struct {
		FrontEndURL string `json:"frontEndUrl"`
		AdminURL    string `json:"adminUrl"`
		UserName    string `json:"userName"`
		PasswordSet bool   `json:"passwordSet"`
		Memo        string `json:"memo"`
	} `json:"appInfo"`
}

type detailJSON struct {
	instanceJSON
	Orders []struct {
		OrderID     string `json:"orderId"`
		OrderLineID string `json:"orderLineId"`
		OrderType   string `json:"orderType"`
		PaidAmount  string `json:"paidAmount"`
	} `json:"orders"`
}

// InstanceByOrder finds the order line's instance through the list filter, then reads its detail.
func (c *Client) InstanceByOrder(ctx context.Context, orderID, lineID string) (*scenario.SellerInstance, error) {
	var page struct {
		Items []instanceJSON `json:"items"`
	}
	if err := c.do(ctx, http.MethodGet, "/instances?orderId="+url.QueryEscape(orderID)+"&limit=100", "", nil, &page); err != nil {
		return nil, err
	}
	id := ""
	for _, it := range page.Items {
		if it.OrderID == orderID && it.OrderLineID == lineID {
			id = it.InstanceID
		}
	}
	if id == "" {
		return nil, nil
	}
	var d detailJSON
	if err := c.do(ctx, http.MethodGet, "/instances/"+url.PathEscape(id), "", nil, &d); err != nil {
		return nil, err
	}
	si := &scenario.SellerInstance{InstanceID: d.InstanceID, OrderID: d.OrderID, OrderLineID: d.OrderLineID,
		Lifecycle: d.Lifecycle, Supervision: d.Supervision, ProductID: d.ProductID, SKUCode: d.SKUCode, Quantity: d.Quantity,
		ExpireTime: d.ExpireTime, Parked: d.Parked}
	if d.Parked {
		si.ParkedWhy = d.ParkedStep + ": " + d.ParkedReason
	}
	if a := d.AppInfo; a != nil {
		si.AppInfo = &scenario.SellerAppInfo{FrontEndURL: a.FrontEndURL, AdminURL: a.AdminURL, UserName: a.UserName,
			Memo: a.Memo, PasswordSet: a.PasswordSet}
	}
	for _, o := range d.Orders {
		paid, err := decimal.NewFromString(o.PaidAmount)
		if err != nil {
			return nil, fmt.Errorf("console: order %s has paidAmount %q: %w", o.OrderID, o.PaidAmount, err)
		}
		si.Orders = append(si.Orders, scenario.SellerOrder{OrderID: o.OrderID, OrderLineID: o.OrderLineID, Type: o.OrderType, Paid: paid})
	}
	return si, nil
}

// Supervise performs a supervision step as party. The Idempotency-Key is per call of Supervise, so its own
// retries (after a timeout) apply the step once.
func (c *Client) Supervise(ctx context.Context, instanceID, step, party, note string) error {
	body := map[string]any{"step": step, "party": party}
	if note != "" {
		body["note"] = note
	}
	token := c.token
	if party == scenario.PartyCustomer {
		token = c.customer
	}
	return c.action(ctx, token, "/instances/"+url.PathEscape(instanceID)+"/supervision", body, nil)
}

// RequestRefund asks for a refund of the purchase as the customer.
func (c *Client) RequestRefund(ctx context.Context, instanceID string, amount *decimal.Decimal) (string, error) {
	body := map[string]any{"party": scenario.PartyCustomer, "reason": "not what we expected"}
	if amount != nil {
		body["amount"] = amount.String()
	}
	var out struct {
		RefundID string `json:"refundId"`
		Status   string `json:"status"`
	}
	if err := c.action(ctx, c.customer, "/instances/"+url.PathEscape(instanceID)+"/refunds", body, &out); err != nil {
		return "", err
	}
	if out.RefundID == "" {
		return "", fmt.Errorf("console: the refund request was answered without a refundId")
	}
	return out.RefundID, nil
}

// ApproveRefund approves a refund request with the requested amount, as the seller.
func (c *Client) ApproveRefund(ctx context.Context, instanceID, refundID string) (decimal.Decimal, error) {
	var out struct {
		Status         string  `json:"status"`
		ApprovedAmount *string `json:"approvedAmount"`
	}
	err := c.action(ctx, c.token, "/instances/"+url.PathEscape(instanceID)+"/refunds/"+url.PathEscape(refundID)+"/decision",
		map[string]any{"decision": "approve", "note": "agreed with the customer"}, &out)
	if err != nil {
		return decimal.Zero, err
	}
	if out.Status != "APPROVED" || out.ApprovedAmount == nil {
		return decimal.Zero, fmt.Errorf("console: refund %s is %s after approval", refundID, out.Status)
	}
	return decimal.NewFromString(*out.ApprovedAmount)
}

// RecordPayment records an order's payment state on the console (PUT /bills/payments/{orderId}, finance scope).
// Setting the same state again changes nothing, so retries are safe.
func (c *Client) RecordPayment(ctx context.Context, orderID string, credit bool, repaidAt *time.Time) error {
	body := map[string]any{"credit": credit}
	if repaidAt != nil {
		body["repaidAt"] = repaidAt.UTC().Format(time.RFC3339Nano)
	}
	return c.do(ctx, http.MethodPut, "/bills/payments/"+url.PathEscape(orderID), "", body, nil)
}

// Payment reads an order's payment state (GET /bills/payments/{orderId}).
func (c *Client) Payment(ctx context.Context, orderID string) (bool, *time.Time, error) {
	var out struct {
		Credit   bool       `json:"credit"`
		RepaidAt *time.Time `json:"repaidAt"`
	}
	if err := c.do(ctx, http.MethodGet, "/bills/payments/"+url.PathEscape(orderID), "", nil, &out); err != nil {
		return false, nil, err
	}
	return out.Credit, out.RepaidAt, nil
}

// action posts one console action, retrying "not yet" answers with the same Idempotency-Key for up to a minute.
func (c *Client) action(ctx context.Context, token, path string, body, out any) error {
	key := uuid.NewString()
	deadline := time.Now().Add(time.Minute)
	for {
		err := c.doAs(ctx, token, http.MethodPost, path, key, body, out)
		if err == nil || !isRetry(err) {
			return err
		}
		if time.Now().After(deadline) {
			// Out of patience: report the refusal itself, not a "retry later" that a caller would retry with
			// another Idempotency-Key.
			var e *Error
			if errors.As(err, &e) {
				return e
			}
			return fmt.Errorf("console: gave up after a minute: %v", err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(300 * time.Millisecond):
		}
	}
}

func isRetry(err error) bool { return errors.Is(err, scenario.ErrRetryLater) }
