package provisioning

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/kooflow/kooflow/internal/tracing"
)

// The webhook contract.
//
// kooflow POSTs each event as a JSON body (Event) to the seller's endpoint with these headers:
//
//	Content-Type:        application/json
//	Kooflow-Event-Id:    the event's EventID (the same on every retry)
//	Kooflow-Event-Type:  create | freeze | unfreeze | upgrade | release, or a Kit change: tenant | application |
//	                     users | org (the body's "kit" member says what changed)
//	Kooflow-Timestamp:   Unix time in milliseconds when this delivery was signed
//	Kooflow-Signature:   v1=<hex HMAC-SHA256(secret, timestamp + "." + body)>
//
// The endpoint verifies the signature (Verify does it), acts once per EventID, and answers:
//
//   - 2xx with an optional JSON body {"appInfo": {...}} (create) — done; a repeated EventID gets the same answer;
//   - 408, 425, 429 or 5xx — a temporary failure: kooflow retries with backoff;
//   - any other 4xx, with {"error": "what a person must fix"} — kooflow parks the instance for an operator. A
//     refused create may add "resultCode": one of KooGallery's newInstance codes 000100–000107; kooflow then
//     answers the marketplace's queryInstance and newInstance retries with it (000104 when none or another
//     value is given) until an operator resumes the step.
const (
	HeaderEventID   = "Kooflow-Event-Id"
	HeaderEventType = "Kooflow-Event-Type"
	HeaderTimestamp = "Kooflow-Timestamp"
	HeaderSignature = "Kooflow-Signature"
	signatureScheme = "v1="
)

// Sign computes the Kooflow-Signature value for a body sent at timestamp (Unix milliseconds).
func Sign(secret []byte, timestamp string, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(timestamp))
	m.Write([]byte("."))
	m.Write(body)
	return signatureScheme + hex.EncodeToString(m.Sum(nil))
}

// Verify checks a delivery's signature and that its timestamp lies within window of now. Receivers call it
// before trusting the body.
func Verify(secret []byte, h http.Header, body []byte, now time.Time, window time.Duration) error {
	ts := h.Get(HeaderTimestamp)
	ms, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return fmt.Errorf("%s %q is not Unix milliseconds", HeaderTimestamp, ts)
	}
	if d := now.Sub(time.UnixMilli(ms)); d > window || d < -window {
		return fmt.Errorf("%s is %s away from now, outside ±%s", HeaderTimestamp, d.Round(time.Second), window)
	}
	want := Sign(secret, ts, body)
	if !hmac.Equal([]byte(strings.ToLower(h.Get(HeaderSignature))), []byte(want)) {
		return errors.New("signature does not match the body")
	}
	return nil
}

// Webhook sends events to the seller's provisioning endpoint.
type Webhook struct {
	url    string
	secret []byte
	client *http.Client
	now    func() time.Time
}

// NewWebhook builds a webhook provisioner. The secret signs every event; an endpoint without one could be driven
// by anybody, so it is required. client may be nil (a client with a 20 s timeout is used).
func NewWebhook(endpoint, secret string, client *http.Client) (*Webhook, error) {
	u, err := url.Parse(endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("provisioner URL %q must be an absolute http(s) URL", endpoint)
	}
	if len(secret) < 16 {
		return nil, errors.New("the provisioner secret (KOOFLOW_PROVISIONER_SECRET) must be at least 16 characters")
	}
	if client == nil {
		client = &http.Client{Timeout: 20 * time.Second}
	}
	return &Webhook{url: endpoint, secret: []byte(secret), client: client, now: time.Now}, nil
}

// Name identifies the provisioner.
func (w *Webhook) Name() string { return "webhook " + w.url }

// Apply delivers one event and classifies the answer, in a client span (tracing) whose attributes name the
// event and the answer, never the body (appInfo, Kit data), the secret, the signature or the URL beyond its host;
// the request carries the trace context (traceparent) so the seller's systems can continue the trace.
func (w *Webhook) Apply(ctx context.Context, e Event) (res Result, err error) {
	host := ""
	if u, perr := url.Parse(w.url); perr == nil {
		host = u.Host
	}
	ctx, span := tracing.StartClient(ctx, "provisioning webhook",
		attribute.String("kooflow.event_type", string(e.Type)), attribute.String("kooflow.event_id", e.EventID),
		attribute.String("kooflow.instance_id", e.InstanceID), attribute.String("http.request.method", http.MethodPost),
		attribute.String("server.address", host))
	defer func() {
		var pe *Error
		if errors.As(err, &pe) {
			span.SetAttributes(attribute.Bool("kooflow.retryable", pe.Retryable), attribute.Bool("kooflow.refused", pe.Refused))
			if pe.ResultCode != "" {
				span.SetAttributes(attribute.String("koogallery.result_code", pe.ResultCode))
			}
		}
		tracing.End(span, err)
	}()
	return w.apply(ctx, span, e)
}

func (w *Webhook) apply(ctx context.Context, span trace.Span, e Event) (Result, error) {
	if err := e.Validate(); err != nil {
		return Result{}, &Error{Retryable: false, Reason: "invalid provisioning event", Err: err}
	}
	body, err := json.Marshal(e)
	if err != nil {
		return Result{}, &Error{Retryable: false, Reason: "encode provisioning event", Err: err}
	}
	ts := strconv.FormatInt(w.now().UnixMilli(), 10)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.url, bytes.NewReader(body))
	if err != nil {
		return Result{}, &Error{Retryable: false, Reason: "build provisioning request", Err: err}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(HeaderEventID, e.EventID)
	req.Header.Set(HeaderEventType, string(e.Type))
	req.Header.Set(HeaderTimestamp, ts)
	req.Header.Set(HeaderSignature, Sign(w.secret, ts, body))
	tracing.Inject(ctx, req.Header)
	resp, err := w.client.Do(req)
	if err != nil {
		return Result{}, &Error{Retryable: true, Reason: "provisioning endpoint unreachable", Err: err}
	}
	defer resp.Body.Close()
	span.SetAttributes(attribute.Int("http.response.status_code", resp.StatusCode))
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return Result{}, &Error{Retryable: true, Reason: "read the provisioning endpoint's answer", Err: err}
	}
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		var res Result
		if len(bytes.TrimSpace(raw)) > 0 {
			if err := json.Unmarshal(raw, &res); err != nil {
				return Result{}, &Error{Retryable: false,
					Reason: fmt.Sprintf("the provisioning endpoint answered %d with a body that is not the expected JSON", resp.StatusCode), Err: err}
			}
		}
		if err := res.AppInfo.Validate(); err != nil {
			return Result{}, &Error{Retryable: false, Reason: "the provisioning endpoint returned unusable appInfo", Err: err}
		}
		return res, nil
	case resp.StatusCode == http.StatusRequestTimeout || resp.StatusCode == http.StatusTooEarly ||
		resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500:
		return Result{}, &Error{Retryable: true, Reason: fmt.Sprintf("provisioning endpoint answered %d %s", resp.StatusCode, errorText(raw))}
	default:
		msg := errorText(raw)
		return Result{}, &Error{Retryable: false, Refused: true, ResultCode: refusalCode(raw), Message: msg,
			Reason: fmt.Sprintf("provisioning endpoint refused the %s event with %d: %s", e.Type, resp.StatusCode, msg)}
	}
}

// refusalCode extracts a valid newInstance code from a refusal's {"resultCode": "..."}, or "".
func refusalCode(raw []byte) string {
	var body struct {
		ResultCode string `json:"resultCode"`
	}
	if json.Unmarshal(raw, &body) == nil && ValidRefusalCode(body.ResultCode) {
		return body.ResultCode
	}
	return ""
}

// errorText extracts {"error": "..."} or a short plain-text body.
func errorText(raw []byte) string {
	var body struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(raw, &body) == nil && body.Error != "" {
		return body.Error
	}
	s := strings.TrimSpace(string(raw))
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	if s == "" {
		return "(empty body)"
	}
	return s
}

// Receiver is a reference implementation of the endpoint side: it verifies each delivery, runs apply once per
// EventID and answers repeats with the first answer. Sellers can mount it in front of their own provisioning;
// kooflow's tests use it as the far side of the webhook. Answers are remembered in memory, so a receiver that
// restarts relies on apply itself being idempotent.
type Receiver struct {
	secret []byte
	window time.Duration
	apply  func(context.Context, Event) (Result, error)
	now    func() time.Time

	mu   chan struct{} // a one-slot semaphore: deliveries are handled one at a time
	done map[string]Result
}

// NewReceiver builds a Receiver. apply's error becomes a 4xx (needs a person) when it is a non-retryable *Error
// and a 503 otherwise; a non-retryable *Error's ResultCode is sent as "resultCode".
func NewReceiver(secret string, window time.Duration, apply func(context.Context, Event) (Result, error)) *Receiver {
	r := &Receiver{secret: []byte(secret), window: window, apply: apply, now: time.Now,
		mu: make(chan struct{}, 1), done: map[string]Result{}}
	return r
}

// ServeHTTP handles one delivery.
func (r *Receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	reply := func(status int, v any) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(v)
	}
	if req.Method != http.MethodPost {
		reply(http.StatusMethodNotAllowed, map[string]string{"error": "POST only"})
		return
	}
	body, err := io.ReadAll(io.LimitReader(req.Body, 1<<20))
	if err != nil {
		reply(http.StatusBadRequest, map[string]string{"error": "unreadable body"})
		return
	}
	if err := Verify(r.secret, req.Header, body, r.now(), r.window); err != nil {
		reply(http.StatusUnauthorized, map[string]string{"error": err.Error()})
		return
	}
	var e Event
	if err := json.Unmarshal(body, &e); err != nil {
		reply(http.StatusBadRequest, map[string]string{"error": "body is not an event: " + err.Error()})
		return
	}
	if err := e.Validate(); err != nil {
		reply(http.StatusBadRequest, map[string]string{"error": err.Error()})
		return
	}
	select {
	case r.mu <- struct{}{}:
	case <-req.Context().Done():
		reply(http.StatusServiceUnavailable, map[string]string{"error": "busy"})
		return
	}
	defer func() { <-r.mu }()
	if res, ok := r.done[e.EventID]; ok {
		reply(http.StatusOK, res)
		return
	}
	res, err := r.apply(req.Context(), e)
	if err != nil {
		if !Retryable(err) {
			body := map[string]string{"error": err.Error()}
			var pe *Error
			if errors.As(err, &pe) && pe.ResultCode != "" {
				body["resultCode"] = pe.ResultCode
			}
			reply(http.StatusUnprocessableEntity, body)
			return
		}
		reply(http.StatusServiceUnavailable, map[string]string{"error": err.Error()})
		return
	}
	r.done[e.EventID] = res
	reply(http.StatusOK, res)
}
