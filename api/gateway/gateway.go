// Package gateway is kooflow's KooGallery V2 production interface: one signed POST endpoint on which the
// marketplace announces purchases, renewals, freezes, upgrades and releases (docs/koogallery.md, "Activities").
// Each call is authenticated (docs/koogallery.md, "Request signature"), checked against the shared replay cache
// and validated, then carried out: newInstance is recorded in the inbox, which starts the instance's workflow;
// queryInstance is answered from PostgreSQL; every other call becomes a Temporal Update (or Query) on the
// instance's workflow. The answer is Body-Signed, sent within the configured deadline, and recorded in the
// message log before it leaves.
package gateway

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/kooflow/kooflow/api/httpx"
	"github.com/kooflow/kooflow/internal/app"
	"github.com/kooflow/kooflow/internal/config"
	"github.com/kooflow/kooflow/internal/instance"
	"github.com/kooflow/kooflow/internal/koogallery"
	"github.com/kooflow/kooflow/internal/metrics"
	"github.com/kooflow/kooflow/internal/refusal"
	"github.com/kooflow/kooflow/internal/store"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
)

// NonceStore is the replay cache. ClaimNonce records nonce and reports whether it was new; it must be shared by
// every API process. Nonces (and store.Store, without the purging) satisfies it.
type NonceStore interface {
	ClaimNonce(ctx context.Context, nonce string, at time.Time) (fresh bool, err error)
}

// MessageLog stores every inbound call. AppendMessage must have stored the message durably when it returns nil.
// store.Store satisfies it.
type MessageLog interface {
	AppendMessage(ctx context.Context, m *store.Message) error
}

// Handler serves the production interface.
type Handler struct {
	AccessKey string
	Verifier  koogallery.Verifier
	// Deadline bounds the whole call, message log write included: the marketplace gives up after 5 s.
	Deadline time.Duration
	Nonces   NonceStore
	Messages MessageLog
	Backend  Backend
	// Unverified bounds, per source, the calls failing verification that are recorded; nil records them all.
	Unverified *SourceLimiter
	// Calls counts the calls in flight, for the inbox's dispatchers to wait on; nil counts nothing.
	Calls *Calls
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Metrics counts the answered calls; nil counts nothing.
	Metrics *metrics.API
	// Tracer starts a span per call, carried into Temporal by the client's interceptor; nil traces nothing.
	Tracer trace.Tracer
}

// NewInbox builds the inbox newInstance calls are accepted into. The API process runs its dispatcher
// (Inbox.Run) for as long as it serves the routes Mount adds.
func NewInbox(d app.Deps) *Inbox {
	return &Inbox{Store: &store.Store{Pool: d.Pool}, Client: d.Temporal, TaskQueue: d.Config.TaskQueue, Log: d.Log,
		Calls: &Calls{}}
}

// Mount adds the production interface at the configured path (POST), and the message log and the inbox to the
// console group. It starts nothing: inbox's dispatcher is run by the caller.
func Mount(r gin.IRoutes, console *httpx.Console, d app.Deps, inbox *Inbox) {
	st := &store.Store{Pool: d.Pool, Keys: d.Keys}
	if d.Config.AccessKey == "" {
		d.Log.Warn("no KooGallery access key: the production interface refuses every call", "set", config.EnvAccessKey)
		r.POST(d.Config.ProductionPath, func(c *gin.Context) {
			httpx.WriteProblem(c, http.StatusServiceUnavailable, "the production interface is not configured ("+config.EnvAccessKey+" is unset)")
		})
	} else {
		h := &Handler{
			AccessKey:  d.Config.AccessKey.Reveal(),
			Verifier:   koogallery.Verifier{AccessKey: d.Config.AccessKey.Reveal(), Window: d.Config.SignatureSkew},
			Deadline:   d.Config.Deadline,
			Nonces:     &Nonces{Store: st, Retain: 2 * window(d.Config.SignatureSkew), Log: d.Log},
			Messages:   &store.MessageWriter{Store: st},
			Backend:    &TemporalBackend{Instances: instance.Client{Temporal: d.Temporal}, Store: st, Inbox: inbox},
			Metrics:    d.APIMetrics,
			Unverified: &SourceLimiter{PerMinute: d.Config.UnverifiedPerMinute},
			Calls:      inbox.Calls,
		}
		if d.Tracer != nil {
			h.Tracer = d.Tracer.Tracer("github.com/kooflow/kooflow/api/gateway")
		}
		r.POST(d.Config.ProductionPath, h.Serve)
	}
	mountConsole(console, st)
	mountInboxConsole(console, st)
}

func window(w time.Duration) time.Duration {
	if w <= 0 {
		return 60 * time.Second
	}
	return w
}

func (h *Handler) now() time.Time {
	if h.Now != nil {
		return h.Now()
	}
	return time.Now()
}

func (h *Handler) deadline() time.Duration {
	if h.Deadline <= 0 {
		return 4 * time.Second
	}
	return h.Deadline
}

// outcome is the answer to one call plus what the message log records about it.
type outcome struct {
	resp    koogallery.Response
	verdict koogallery.Verdict
	keys    koogallery.Keys
	detail  string // for the operator, never sent
}

func answer(code, msg string) koogallery.Response {
	return koogallery.Response{ResultCode: code, ResultMsg: msg}
}

// Serve handles one production-interface call. Whatever happens it answers HTTP 200 with a signed body, so the
// marketplace can always read a result code; only a request it could not have sent (wrong method, unknown path)
// gets anything else, from the router.
func (h *Handler) Serve(c *gin.Context) {
	defer h.Calls.Begin()()
	start := h.now()
	log := httpx.Log(c)
	// The call runs to its deadline even if the marketplace hangs up: an Update already admitted should be
	// answered and recorded, not abandoned halfway.
	base := context.WithoutCancel(c.Request.Context())
	traceID := ""
	if h.Tracer != nil {
		var span trace.Span
		base, span = h.Tracer.Start(base, "koogallery production interface", trace.WithSpanKind(trace.SpanKindServer))
		defer span.End()
		traceID = span.SpanContext().TraceID().String()
		log = log.With("trace_id", traceID)
	}
	hard, cancel := context.WithDeadline(base, start.Add(h.deadline()))
	defer cancel()
	// Keep a slice of the budget for the message log and the write.
	reserve := min(h.deadline()/8, 500*time.Millisecond)
	work, cancelWork := context.WithDeadline(hard, start.Add(h.deadline()-reserve))
	defer cancelWork()

	msg := &store.Message{
		TraceID:      traceID,
		ReceivedAt:   start.UTC(),
		RequestID:    httpx.RequestID(c),
		RemoteAddr:   c.Request.RemoteAddr,
		ForwardedFor: c.GetHeader("X-Forwarded-For"),
		Method:       c.Request.Method,
		Path:         c.Request.URL.Path,
		RawQuery:     c.Request.URL.RawQuery,
		Headers:      loggableHeaders(c.Request.Header),
		HeadersSize:  HeadersSize(c.Request.Header),
	}
	if rc := http.NewResponseController(c.Writer); rc != nil {
		_ = rc.SetReadDeadline(start.Add(h.deadline() - reserve)) // best effort: not every writer supports it
	}
	body, readErr := ReadBody(c, koogallery.MaxBodyBytes)
	msg.RawBody = body
	DescribeBody(msg, body, c.Request.ContentLength)

	out := h.handle(work, start, c.Request.URL.RawQuery, body, readErr)
	trace.SpanFromContext(base).SetAttributes(attribute.String("koogallery.activity", out.keys.Activity),
		attribute.String("koogallery.result_code", out.resp.ResultCode))
	if !Verified(out.verdict) {
		// Anyone can send this; keep what identifies it, not what fills the disk.
		out.detail = TruncateDetail(out.detail)
		msg = KeepUnverified(log, h.Unverified, msg, c.ClientIP(), start)
	}
	h.finish(hard, c, log, start, msg, out)
}

// Verified says whether the call's signature matched: only then is the call the marketplace's, and kept whole.
func Verified(v koogallery.Verdict) bool {
	return v == koogallery.VerdictOK || v == koogallery.VerdictUnavailable
}

// handle decides the answer. The order of checks is deliberate: a body that is not JSON cannot be verified
// (000002); a bad signature, stale timestamp or replayed nonce is reported before any field problem (000001), so
// an unauthenticated caller learns nothing about validation; the nonce is claimed only once the signature
// matched, so forged calls cannot fill the replay cache.
func (h *Handler) handle(ctx context.Context, start time.Time, rawQuery string, raw []byte, readErr error) outcome {
	if readErr != nil {
		var tooBig *http.MaxBytesError
		if errors.As(readErr, &tooBig) {
			return outcome{resp: answer(koogallery.ResultInvalidParams, fmt.Sprintf("the request body is larger than %d bytes", koogallery.MaxBodyBytes)),
				verdict: koogallery.VerdictNotChecked, detail: readErr.Error()}
		}
		return outcome{resp: answer(koogallery.ResultInvalidParams, "the request body could not be read"),
			verdict: koogallery.VerdictNotChecked, detail: readErr.Error()}
	}
	body, err := koogallery.ParseBody(raw)
	if err != nil {
		return outcome{resp: answer(koogallery.ResultInvalidParams, "the request body must be one JSON object: "+err.Error()),
			verdict: koogallery.VerdictNotChecked, detail: err.Error()}
	}
	out := outcome{keys: body.Keys()}
	cred, err := h.Verifier.Verify(rawQuery, body)
	if err != nil {
		var ae *koogallery.AuthError
		if errors.As(err, &ae) {
			out.verdict = ae.Verdict
		} else {
			out.verdict = koogallery.VerdictMalformed
		}
		// The caller is not authenticated: it learns only that, the reason goes to the log and the message log.
		out.resp = answer(koogallery.ResultAuthFailed, "authentication failed")
		out.detail = authMessage(err) + " (" + err.Error() + ")"
		return out
	}
	fresh, err := h.Nonces.ClaimNonce(ctx, cred.Nonce, start)
	if err != nil {
		out.verdict = koogallery.VerdictUnavailable
		out.resp = answer(koogallery.ResultInternal, "the replay check is unavailable; please retry")
		out.detail = "claim nonce: " + err.Error()
		return out
	}
	if !fresh {
		out.verdict = koogallery.VerdictReplayed
		out.resp = answer(koogallery.ResultAuthFailed, "authentication failed")
		out.detail = "nonce " + cred.Nonce + " already used"
		return out
	}
	out.verdict = koogallery.VerdictOK
	req, err := body.Request()
	if err != nil {
		out.resp = answer(koogallery.ResultInvalidParams, "invalid request: "+err.Error())
		out.detail = err.Error()
		return out
	}
	out.resp, out.detail = h.dispatch(ctx, req, cred, start)
	if req.Activity == koogallery.ActivityNewInstance && out.resp.InstanceID != "" {
		out.keys.InstanceIDs = []string{out.resp.InstanceID}
	}
	return out
}

func authMessage(err error) string {
	var ae *koogallery.AuthError
	if errors.As(err, &ae) {
		return ae.Detail
	}
	return err.Error()
}

// finish signs the answer, records the call, and writes the answer. If the message log cannot be written the
// marketplace gets 000005 instead of the real answer: every activity is idempotent, so its retry redoes
// nothing, and an answer it relied on is never missing from the log.
func (h *Handler) finish(ctx context.Context, c *gin.Context, log *slog.Logger, start time.Time, msg *store.Message, out outcome) {
	bytes := koogallery.Encode(out.resp)
	sign := koogallery.BodySignHeader(h.AccessKey, bytes)
	var err error
	if msg != nil {
		fillMessage(msg, out)
		msg.HTTPStatus = http.StatusOK
		sum := sha256.Sum256(bytes)
		msg.ResponseBody, msg.ResponseSHA256 = redactedAnswer(out.resp, bytes), sum[:]
		msg.BodySign = sign
		msg.Latency = h.now().Sub(start)
		err = h.Messages.AppendMessage(ctx, msg)
	}
	if err != nil {
		log.Error("message log write failed; answering 000005 so the marketplace retries", "err", err,
			"activity", out.keys.Activity, "result_code", out.resp.ResultCode)
		bytes = koogallery.Encode(answer(koogallery.ResultInternal, "the call could not be recorded; please retry"))
		sign = koogallery.BodySignHeader(h.AccessKey, bytes)
		h.Metrics.ObserveCall(out.keys.Activity, koogallery.ResultInternal, string(out.verdict), h.now().Sub(start))
	} else {
		h.Metrics.ObserveCall(out.keys.Activity, out.resp.ResultCode, string(out.verdict), h.now().Sub(start))
	}
	level := slog.LevelInfo
	if !koogallery.Succeeded(out.resp.ResultCode) {
		level = slog.LevelWarn
	}
	log.Log(ctx, level, "production interface call", "activity", out.keys.Activity, "result_code", out.resp.ResultCode,
		"verification", out.verdict, "order_id", out.keys.OrderID, "instance_ids", out.keys.InstanceIDs,
		"test", out.keys.TestFlag, "detail", out.detail, "latency", time.Since(start))
	c.Header(koogallery.BodySignHeaderName, sign)
	c.Data(http.StatusOK, "application/json;charset=UTF-8", bytes)
}

// redacted replaces a credential in the message log's copy of an answer.
const redacted = "[redacted]"

// redactedAnswer is the answer as the message log keeps it: sent is returned as is unless it carries a
// password (queryInstance's appInfo), which is replaced (docs/security.md, "Secrets at rest"). The user name
// and URLs stay, so the log still shows what the customer was given.
func redactedAnswer(resp koogallery.Response, sent []byte) []byte {
	if !slices.ContainsFunc(resp.Info, func(i koogallery.InstanceInfo) bool { return i.AppInfo != nil && i.AppInfo.Password != "" }) {
		return sent
	}
	c := resp
	c.Info = slices.Clone(resp.Info)
	for i, info := range c.Info {
		if info.AppInfo != nil && info.AppInfo.Password != "" {
			a := *info.AppInfo
			a.Password = redacted
			c.Info[i].AppInfo = &a
		}
	}
	return koogallery.Encode(c)
}

// HeadersSize is the size of the request headers as sent on the wire, roughly; the message log keeps it for calls
// whose headers it does not keep.
func HeadersSize(h http.Header) int {
	n := 0
	for k, vs := range h {
		for _, v := range vs {
			n += len(k) + len(v) + 4 // "k: v\r\n"
		}
	}
	return n
}

// loggableHeaders keeps the request headers except credentials a proxy might have added.
func loggableHeaders(h http.Header) map[string][]string {
	out := make(map[string][]string, len(h))
	for k, v := range h {
		switch strings.ToLower(k) {
		case "authorization", "cookie", "proxy-authorization":
			continue
		}
		out[k] = v
	}
	return out
}

// dispatch runs a valid, authenticated request and maps the result to the marketplace's codes
// (docs/koogallery.md, "Result codes").
func (h *Handler) dispatch(ctx context.Context, r *koogallery.Request, cred koogallery.Credentials, received time.Time) (koogallery.Response, string) {
	received = received.UTC()
	switch r.Activity {
	case koogallery.ActivityNewInstance:
		res, err := h.Backend.NewInstance(ctx, NewInstanceCall{
			OrderID: r.OrderID, OrderLineID: r.OrderLineID, ProductID: r.ProductID, BusinessID: r.BusinessID, TestFlag: r.TestFlag,
			ReceivedAt: received,
		})
		if err != nil {
			return failure(err, false)
		}
		resp := koogallery.Response{ResultCode: koogallery.ResultInProgress, ResultMsg: "accepted; provisioning is in progress", InstanceID: res.Result.InstanceID}
		if res.Result.Provisioned {
			resp.ResultCode, resp.ResultMsg = koogallery.ResultSuccess, "success"
		} else if res.Refusal != nil {
			resp.ResultCode, resp.ResultMsg = res.Refusal.Code, refusalMsg(res.Result.InstanceID, res.Refusal)
		}
		return resp, res.Note

	case koogallery.ActivityQueryInstance:
		views, err := h.Backend.QueryInstances(ctx, r.InstanceIDs)
		if err != nil {
			return failure(err, false)
		}
		return queryAnswer(r.InstanceIDs, views, r.TestFlag), ""

	case koogallery.ActivityRefreshInstance:
		err := h.Backend.Refresh(ctx, r.InstanceID, instance.RefreshRequest{
			Scene: r.Scene, OrderID: r.OrderID, OrderLineID: r.OrderLineID, ProductID: r.ProductID,
			ExpireTime: r.ExpireTime, TestFlag: r.TestFlag, ReceivedAt: received,
		})
		return result(err, false)

	case koogallery.ActivityUpdateInstanceState:
		err := h.Backend.UpdateStatus(ctx, r.InstanceID, cred.Nonce, instance.StatusRequest{
			Status: r.Status, TestFlag: r.TestFlag, ReceivedAt: received,
		})
		return result(err, false)

	case koogallery.ActivityReleaseInstance:
		err := h.Backend.Release(ctx, r.InstanceID, instance.ReleaseRequest{
			OrderID: r.OrderID, OrderLineID: r.OrderLineID, TestFlag: r.TestFlag, ReceivedAt: received,
		})
		return result(err, true)

	case koogallery.ActivityUpgradeInstance:
		err := h.Backend.Upgrade(ctx, r.InstanceID, instance.UpgradeRequest{
			OrderID: r.OrderID, OrderLineID: r.OrderLineID, TestFlag: r.TestFlag, ReceivedAt: received,
		})
		return result(err, false)

	case koogallery.ActivityChangeInstanceCheck:
		res, err := h.Backend.ChangeCheck(ctx, r.InstanceID, instance.ChangeCheckRequest{
			ProductID: r.ProductInfo.ProductID, SKUCode: r.ProductInfo.SKUCode, LinearValue: r.ProductInfo.LinearValue,
		})
		if err != nil {
			return failure(err, false)
		}
		if !res.Allowed {
			// The marketplace defines no refusal code for this check (docs/koogallery.md, "changeInstanceCheck":
			// anything but 000000 refuses); 000002 says "these target parameters are not acceptable", which is
			// what a refused change is.
			reason := res.Reason
			if reason == "" {
				reason = "the requested specification change is not allowed for this instance"
			}
			return answer(koogallery.ResultInvalidParams, reason), "change refused: " + reason
		}
		return answer(koogallery.ResultSuccess, "the change is allowed"), ""
	}
	// Unreachable: Request() refuses unknown activities.
	return answer(koogallery.ResultInvalidParams, "unknown activity"), "dispatch reached an unknown activity " + r.Activity
}

func result(err error, releasing bool) (koogallery.Response, string) {
	if err != nil {
		return failure(err, releasing)
	}
	return answer(koogallery.ResultSuccess, "success"), ""
}

// failure maps a backend error to a result code. A release of an instance that does not exist (never created,
// or already released and gone) succeeds: the marketplace's goal, no instance, holds (docs/koogallery.md,
// "releaseInstance" and "Idempotency").
func failure(err error, releasing bool) (koogallery.Response, string) {
	if errors.Is(err, ErrUnknownInstance) {
		if releasing {
			return answer(koogallery.ResultSuccess, "the instance does not exist or was already released"), err.Error()
		}
		return answer(koogallery.ResultNotFound, "the instance does not exist"), err.Error()
	}
	if ref, ok := refusal.As(err); ok {
		code := ref.Code
		if len(code) != 6 {
			code = koogallery.ResultInternal
		}
		return answer(code, ref.Reason), err.Error()
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return answer(koogallery.ResultInternal, "the request could not be completed in time; please retry"), err.Error()
	}
	return answer(koogallery.ResultInternal, "internal error; please retry"), err.Error()
}

// queryAnswer builds queryInstance's answer in the order the ids were asked. Unknown and released instances are
// left out (a released instance no longer exists, as every other activity answers); if none is left the answer
// is 000003. While any known instance is still provisioning without its access details the answer is 000004,
// the documented "in progress", so the marketplace asks again rather than record an instance without them.
//
// A dial test (testFlag) still sees released dial-test instances: the marketplace's next round of debug cases
// reuses the mock orders, hence the instances, of the last round (see TemporalBackend.dialTestRerun).
//
// An instance whose purchase the seller's provisioning refused answers the refusal's newInstance code instead of
// 000004 (docs/koogallery.md, "Refused purchases").
func queryAnswer(ids []string, views []InstanceView, dialTest bool) koogallery.Response {
	byID := make(map[string]InstanceView, len(views))
	for _, v := range views {
		byID[v.InstanceID] = v
	}
	resp := koogallery.Response{ResultCode: koogallery.ResultSuccess, ResultMsg: "success"}
	provisioning := 0
	var refusedID string
	var refused *Refusal
	for _, id := range ids {
		v, ok := byID[id]
		if !ok || (v.Lifecycle == instance.LifecycleReleased && !(dialTest && v.TestFlag)) {
			continue
		}
		info := koogallery.InstanceInfo{InstanceID: id, AppInfo: v.AppInfo}
		if v.Usage != nil {
			info.UsageInfo = []koogallery.UsageInfo{*v.Usage}
		}
		resp.Info = append(resp.Info, info)
		if v.AppInfo == nil && v.Lifecycle == instance.LifecycleProvisioning {
			provisioning++
			if v.Refusal != nil && refused == nil {
				refusedID, refused = id, v.Refusal
			}
		}
	}
	switch {
	case len(resp.Info) == 0:
		return answer(koogallery.ResultNotFound, "none of the instances exists")
	case refused != nil:
		// A refused purchase outweighs "in progress" (docs/koogallery.md, "Refused purchases").
		resp.ResultCode, resp.ResultMsg = refused.Code, refusalMsg(refusedID, refused)
	case provisioning > 0:
		resp.ResultCode = koogallery.ResultInProgress
		resp.ResultMsg = fmt.Sprintf("%d of the instances are still being provisioned", provisioning)
	case len(resp.Info) < len(ids):
		resp.ResultMsg = fmt.Sprintf("%d of %d instances exist", len(resp.Info), len(ids))
	}
	return resp
}

// refusalMsg is the resultMsg of a refused purchase: the provisioner's reason, for the marketplace's records.
func refusalMsg(instanceID string, r *Refusal) string {
	return "the seller could not provision instance " + instanceID + ": " + r.Message
}
