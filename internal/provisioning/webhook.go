package provisioning

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
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
// kooflow POSTs each event as a JSON body (Event) to the seller's endpoint, signed as the Standard Webhooks
// specification says (https://www.standardwebhooks.com), so the seller verifies it with the library of their
// language:
//
//	Content-Type:        application/json
//	webhook-id:          the event's EventID (the same on every retry)
//	webhook-timestamp:   Unix time in seconds when this delivery was signed
//	webhook-signature:   v1,<Base64 HMAC-SHA256(key, id + "." + timestamp + "." + body)>, one per configured
//	                     secret, space separated (several while a secret is rotated)
//	Kooflow-Event-Type:  create | freeze | unfreeze | upgrade | release, or a Kit change: tenant | application |
//	                     users | org (the body's "kit" member says what changed)
//
// The key is the Base64 after the "whsec_" prefix of a secret in KOOFLOW_PROVISIONER_SECRET; a secret without
// the prefix (as configured before this scheme) is its own bytes, the same key as "whsec_" + Base64(secret).
//
// The endpoint verifies the signature (Verify does it), acts once per webhook-id, and answers:
//
//   - 2xx with an optional JSON body {"appInfo": {...}} (create) — done; a repeated webhook-id gets the same answer;
//   - 408, 425, 429 or 5xx — a temporary failure: kooflow retries with backoff;
//   - any other 4xx, with {"error": "what a person must fix"} — kooflow parks the instance for an operator. A
//     refused create may add "resultCode": one of KooGallery's newInstance codes 000100–000107; kooflow then
//     answers the marketplace's queryInstance and newInstance retries with it (000104 when none or another
//     value is given) until an operator resumes the step.
//   - a redirect is not followed (the signed delivery goes to the configured URL only): it parks the instance.
const (
	HeaderEventID   = "webhook-id"
	HeaderTimestamp = "webhook-timestamp"
	HeaderSignature = "webhook-signature"
	HeaderEventType = "Kooflow-Event-Type"
	signatureScheme = "v1,"
	secretPrefix    = "whsec_"
)

// ParseSecrets reads KOOFLOW_PROVISIONER_SECRET: one or more secrets, separated by spaces or commas, each
// "whsec_<Base64 of the key>" (the Standard Webhooks form) or a plain string of at least 16 characters, which is
// itself the key. Every delivery is signed with each, so a secret is rotated by adding the new one, moving the
// endpoint to it, then removing the old one.
func ParseSecrets(spec string) ([][]byte, error) {
	var keys [][]byte
	for _, s := range strings.FieldsFunc(spec, func(r rune) bool { return r == ',' || r == ' ' || r == '\n' || r == '\t' }) {
		key, err := ParseSecret(s)
		if err != nil {
			return nil, err
		}
		keys = append(keys, key)
	}
	if len(keys) == 0 {
		return nil, errors.New("no provisioner secret (KOOFLOW_PROVISIONER_SECRET) is set; generate one with: echo whsec_$(openssl rand -base64 32)")
	}
	return keys, nil
}

// ParseSecret returns the HMAC key of one secret (see ParseSecrets).
func ParseSecret(s string) ([]byte, error) {
	if b64, ok := strings.CutPrefix(s, secretPrefix); ok {
		key, err := base64.StdEncoding.DecodeString(b64)
		if err != nil {
			return nil, fmt.Errorf("a provisioner secret starting %s is not followed by Base64: %w", secretPrefix, err)
		}
		if len(key) < 16 {
			return nil, fmt.Errorf("a provisioner secret's key is %d bytes; at least 16 are needed (24 to 64 recommended)", len(key))
		}
		return key, nil
	}
	if len(s) < 16 {
		return nil, errors.New("the provisioner secret (KOOFLOW_PROVISIONER_SECRET) must be whsec_<Base64> or at least 16 characters")
	}
	return []byte(s), nil
}

// Sign computes one webhook-signature entry ("v1,<Base64>") for a body sent as message id at timestamp (Unix
// seconds) under key.
func Sign(key []byte, id, timestamp string, body []byte) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(id))
	m.Write([]byte("."))
	m.Write([]byte(timestamp))
	m.Write([]byte("."))
	m.Write(body)
	return signatureScheme + base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// Verify checks a delivery: one of the webhook-signature entries must be the signature under one of keys, and
// webhook-timestamp must lie within window of now. Receivers call it before trusting the body.
func Verify(keys [][]byte, h http.Header, body []byte, now time.Time, window time.Duration) error {
	id, ts := h.Get(HeaderEventID), h.Get(HeaderTimestamp)
	if id == "" {
		return fmt.Errorf("no %s header", HeaderEventID)
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return fmt.Errorf("%s %q is not Unix seconds", HeaderTimestamp, ts)
	}
	if d := now.Sub(time.Unix(sec, 0)); d > window || d < -window {
		return fmt.Errorf("%s is %s away from now, outside ±%s", HeaderTimestamp, d.Round(time.Second), window)
	}
	got := strings.Fields(h.Get(HeaderSignature))
	for _, key := range keys {
		want := Sign(key, id, ts, body)
		for _, g := range got {
			if hmac.Equal([]byte(g), []byte(want)) {
				return nil
			}
		}
	}
	return errors.New("no signature matches the body under the configured secrets")
}

// loopback says whether host is this machine, the one place a webhook may be plain http.
func loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Webhook sends events to the seller's provisioning endpoint.
type Webhook struct {
	url    string
	keys   [][]byte
	client *http.Client
	now    func() time.Time
}

// NewWebhook builds a webhook provisioner. secret (ParseSecrets) signs every event; an endpoint without one could
// be driven by anybody, so it is required. The endpoint must be https unless it is on this machine: the events
// carry customers' access data. client may be nil (a client with a 20 s timeout is used); redirects are never
// followed, whatever client says.
func NewWebhook(endpoint, secret string, client *http.Client) (*Webhook, error) {
	u, err := url.Parse(endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("provisioner URL %q must be an absolute https URL", endpoint)
	}
	if u.Scheme == "http" && !loopback(u.Hostname()) {
		return nil, fmt.Errorf("provisioner URL %q must be https (plain http is accepted only on loopback): the events carry customers' access data", endpoint)
	}
	keys, err := ParseSecrets(secret)
	if err != nil {
		return nil, err
	}
	c := &http.Client{Timeout: 20 * time.Second}
	if client != nil {
		cc := *client
		c = &cc
	}
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &Webhook{url: endpoint, keys: keys, client: c, now: time.Now}, nil
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
	ts := strconv.FormatInt(w.now().Unix(), 10)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.url, bytes.NewReader(body))
	if err != nil {
		return Result{}, &Error{Retryable: false, Reason: "build provisioning request", Err: err}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(HeaderEventID, e.EventID)
	req.Header.Set(HeaderEventType, string(e.Type))
	req.Header.Set(HeaderTimestamp, ts)
	sigs := make([]string, len(w.keys))
	for i, k := range w.keys {
		sigs[i] = Sign(k, e.EventID, ts, body)
	}
	req.Header.Set(HeaderSignature, strings.Join(sigs, " "))
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
	case resp.StatusCode >= 300 && resp.StatusCode < 400:
		return Result{}, &Error{Retryable: false, Reason: fmt.Sprintf("the provisioning endpoint answered %d redirecting to %q; "+
			"signed events are not sent on to another URL: set KOOFLOW_PROVISIONER_URL to the final one", resp.StatusCode, resp.Header.Get("Location"))}
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
	keys   [][]byte
	keyErr error
	window time.Duration
	apply  func(context.Context, Event) (Result, error)
	now    func() time.Time

	mu   chan struct{} // a one-slot semaphore: deliveries are handled one at a time
	done map[string]Result
}

// NewReceiver builds a Receiver. apply's error becomes a 4xx (needs a person) when it is a non-retryable *Error
// and a 503 otherwise; a non-retryable *Error's ResultCode is sent as "resultCode".
// secret is read as ParseSecrets reads it (one or more; a delivery signed by any of them is accepted); one that
// cannot be read makes every delivery fail with the reason.
func NewReceiver(secret string, window time.Duration, apply func(context.Context, Event) (Result, error)) *Receiver {
	keys, err := ParseSecrets(secret)
	r := &Receiver{keys: keys, keyErr: err, window: window, apply: apply, now: time.Now,
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
	if r.keyErr != nil {
		reply(http.StatusInternalServerError, map[string]string{"error": "the receiver's secret: " + r.keyErr.Error()})
		return
	}
	if err := Verify(r.keys, req.Header, body, r.now(), r.window); err != nil {
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
