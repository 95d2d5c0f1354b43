// Package kit serves KooGallery's joint-operation (联营) Kit interfaces: the signed POST endpoints on which the
// marketplace syncs a buyer's tenant, application credential, authorised users and organisation units to the
// seller (docs/koogallery.md, "Kit interfaces"). Each call is authenticated with x-sign, x-timestamp and x-nonce
// (the nonce claimed in the replay cache the production interface uses), validated, written to the Kit rows in
// PostgreSQL, answered resultCode/resultMsg with Body-Sign, and recorded in the message log with the client
// secret redacted. It also adds the instance's Kit rows to the console.
package kit

import (
	"bytes"
	"context"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/kooflow/kooflow/api/gateway"
	"github.com/kooflow/kooflow/api/httpx"
	"github.com/kooflow/kooflow/internal/app"
	"github.com/kooflow/kooflow/internal/config"
	"github.com/kooflow/kooflow/internal/instance"
	kitcall "github.com/kooflow/kooflow/internal/kit"
	"github.com/kooflow/kooflow/internal/koogallery"
	"github.com/kooflow/kooflow/internal/refusal"
	"github.com/kooflow/kooflow/internal/store"
)

// Store is what the Kit endpoints read and write; store.Store satisfies it.
type Store interface {
	KitInstanceState(ctx context.Context, instanceID string) (known, released bool, err error)
	UpsertKitTenant(ctx context.Context, t store.KitTenant) (int64, error)
	DeleteKitTenant(ctx context.Context, k store.KitKey) (int64, error)
	UpsertKitApplication(ctx context.Context, a store.KitApplication) (int64, error)
	DeleteKitApplication(ctx context.Context, k store.KitKey, appID string) (int64, error)
	UpsertKitUsers(ctx context.Context, users []store.KitUser) (int64, error)
	DeleteKitUsers(ctx context.Context, k store.KitKey, appID string, userNames []string) (int64, error)
	CancelKitUsers(ctx context.Context, k store.KitKey, appID string, userNames []string, at time.Time) (int64, error)
	UpsertKitOrgs(ctx context.Context, k store.KitKey, orgs []store.KitOrg, replace bool, at time.Time) (int64, error)
	DeleteKitOrg(ctx context.Context, k store.KitKey, orgCode string) (int64, error)
	AddKitDelivery(ctx context.Context, d store.KitDelivery) (int64, error)
	DropKitDelivery(ctx context.Context, id int64) error
	UnhandedKitDeliveries(ctx context.Context, instanceID string) ([]store.KitDelivery, error)
	KitDeliveryHanded(ctx context.Context, id int64) error
}

// Instances hands Kit changes to instance workflows; instance.Client satisfies it.
type Instances interface {
	Update(ctx context.Context, instanceID, name, updateID string, arg, out any) error
}

// Handler serves the Kit endpoints.
type Handler struct {
	AccessKey string
	Verifier  koogallery.Verifier
	Deadline  time.Duration
	Nonces    gateway.NonceStore
	Messages  gateway.MessageLog
	Store     Store
	// Key decrypts applicationSync's clientSecret; nil refuses applicationSync adds and modifies.
	Key *rsa.PrivateKey
	// Instances receives each production change for delivery to the seller's systems (docs/koogallery.md,
	// "Delivery to the seller"); nil stores changes without delivering them.
	Instances Instances
	// Unverified bounds, per source, the calls failing verification that are recorded; nil records them all.
	Unverified *gateway.SourceLimiter
	Now        func() time.Time
}

// Mount adds the five Kit endpoints at their configured paths and GET /instances/:id/kit to the console group.
func Mount(r gin.IRoutes, console *httpx.Console, d app.Deps) error {
	st := &store.Store{Pool: d.Pool}
	console.GET("/instances/:id/kit", config.ScopeRead, consoleKit(st))
	if d.Config.AccessKey == "" {
		for _, path := range d.Config.Kit.Paths {
			r.POST(path, func(c *gin.Context) {
				httpx.WriteProblem(c, http.StatusServiceUnavailable, "the Kit interfaces are not configured ("+config.EnvAccessKey+" is unset)")
			})
		}
		return nil
	}
	key, err := kitcall.LoadKey(d.Config.Kit)
	if err != nil {
		return err
	}
	if key == nil {
		d.Log.Warn("no Kit private key: applicationSync adds and modifies are refused", "set", config.EnvKitPrivateKey)
	}
	skew := d.Config.SignatureSkew
	if skew <= 0 {
		skew = time.Minute
	}
	h := &Handler{
		AccessKey: d.Config.AccessKey.Reveal(),
		Verifier:  koogallery.Verifier{AccessKey: d.Config.AccessKey.Reveal(), Window: d.Config.SignatureSkew},
		Deadline:  d.Config.Deadline,
		Nonces:    &gateway.Nonces{Store: st, Retain: 2 * skew, Log: d.Log},
		Messages:  &store.MessageWriter{Store: st},
		Store:     st,
		Key:       key,
		Instances: instance.Client{Temporal: d.Temporal},
		// The production interface's budget, kept separately: a flood of one cannot silence the other's log.
		Unverified: &gateway.SourceLimiter{PerMinute: d.Config.UnverifiedPerMinute},
	}
	for _, kind := range kitcall.Kinds() {
		r.POST(d.Config.Kit.Paths[kind], h.Serve(kind))
	}
	return nil
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
	resp       koogallery.Response
	verdict    koogallery.Verdict
	instanceID string
	orderID    string
	testFlag   bool
	detail     string
}

func answer(code, msg string) koogallery.Response {
	return koogallery.Response{ResultCode: code, ResultMsg: msg}
}

// Serve handles one call of kind. Like the production interface it always answers HTTP 200 with a signed body.
func (h *Handler) Serve(kind string) gin.HandlerFunc {
	return func(c *gin.Context) {
		start := h.now()
		base := context.WithoutCancel(c.Request.Context())
		hard, cancel := context.WithDeadline(base, start.Add(h.deadline()))
		defer cancel()
		reserve := min(h.deadline()/8, 500*time.Millisecond)
		work, cancelWork := context.WithDeadline(hard, start.Add(h.deadline()-reserve))
		defer cancelWork()

		msg := &store.Message{
			ReceivedAt:   start.UTC(),
			RequestID:    httpx.RequestID(c),
			RemoteAddr:   c.Request.RemoteAddr,
			ForwardedFor: c.GetHeader("X-Forwarded-For"),
			Method:       c.Request.Method,
			Path:         c.Request.URL.Path,
			RawQuery:     c.Request.URL.RawQuery,
			Headers:      loggableHeaders(c.Request.Header),
			Activity:     kind,
		}
		body, readErr := gateway.ReadBody(c, koogallery.MaxKitBodyBytes)
		gateway.DescribeBody(msg, body, c.Request.ContentLength)
		msg.HeadersSize = gateway.HeadersSize(c.Request.Header)
		msg.RawBody = Redact(body)
		out := h.handle(work, kind, c.Request.Header, body, readErr)
		if !gateway.Verified(out.verdict) {
			// Anyone can send this; keep what identifies it (size, hash, the first 1 KiB), not what fills the disk.
			out.detail = gateway.TruncateDetail(out.detail)
			msg = gateway.KeepUnverified(httpx.Log(c), h.Unverified, msg, c.ClientIP(), start)
		}
		h.finish(hard, c, httpx.Log(c), start, msg, kind, out)
	}
}

// handle decides the answer, in the production interface's order: a body that is not one JSON object (000002),
// then x-sign, x-timestamp and the nonce (000001), then the fields (000002), then the instance (000003), then the
// write (000005 if PostgreSQL fails; the marketplace's retry is harmless, every write being idempotent).
func (h *Handler) handle(ctx context.Context, kind string, hdr http.Header, raw []byte, readErr error) outcome {
	if readErr != nil {
		var tooBig *http.MaxBytesError
		if errors.As(readErr, &tooBig) {
			return outcome{resp: answer(koogallery.ResultInvalidParams, fmt.Sprintf("the request body is larger than %d bytes", koogallery.MaxKitBodyBytes)),
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
	out := outcome{}
	cred, err := h.Verifier.VerifyKit(hdr, body)
	if err != nil {
		out.verdict = koogallery.VerdictMalformed
		var ae *koogallery.AuthError
		if errors.As(err, &ae) {
			out.verdict = ae.Verdict
		}
		// The caller is not authenticated: it learns only that; the reason goes to the logs.
		out.resp = answer(koogallery.ResultAuthFailed, "authentication failed")
		out.detail = err.Error()
		return out
	}
	fresh, err := h.Nonces.ClaimNonce(ctx, cred.Nonce, h.now())
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
	out.resp, out.detail = h.apply(ctx, kind, raw, &out)
	return out
}

// apply validates and carries out one authenticated call.
func (h *Handler) apply(ctx context.Context, kind string, raw []byte, out *outcome) (koogallery.Response, string) {
	var (
		common kitcall.Common
		run    func() (int64, error)
		kind2  string // the delivery's event kind
		detail any    // what the delivery tells the seller (never the secret)
	)
	switch kind {
	case kitcall.KindTenant:
		t, err := kitcall.ParseTenant(raw)
		if err != nil {
			return invalid(err)
		}
		common = t.Common
		key := keyOf(common)
		kind2 = "tenant"
		detail = map[string]string{"tenantId": t.TenantID, "tenantCode": t.TenantCode, "name": t.Name,
			"domainName": t.DomainName, "orderId": t.OrderID}
		run = func() (int64, error) {
			if t.Flag == kitcall.FlagDelete {
				return h.Store.DeleteKitTenant(ctx, key)
			}
			return h.Store.UpsertKitTenant(ctx, store.KitTenant{KitKey: key, OrderID: t.OrderID, TenantCode: t.TenantCode,
				Name: t.Name, DomainName: t.DomainName, SyncedAt: t.SyncedAt})
		}
	case kitcall.KindApplication:
		a, err := kitcall.ParseApplication(raw)
		if err != nil {
			return invalid(err)
		}
		common = a.Common
		if a.Flag != kitcall.FlagDelete {
			if h.Key == nil {
				return answer(koogallery.ResultInternal, "the seller cannot decrypt clientSecret yet (no Kit key configured); please retry later"),
					"applicationSync refused: " + config.EnvKitPrivateKey + " is unset"
			}
			// Decrypted only to check it; the ciphertext is what is kept (docs/koogallery.md, "clientSecret").
			if _, err := kitcall.DecryptSecret(h.Key, a.ClientSecret); err != nil {
				return answer(koogallery.ResultInvalidParams, "clientSecret: cannot be decrypted with the seller's public key (RSA-OAEP); check the key uploaded for this product"),
					err.Error()
			}
		}
		key := keyOf(common)
		kind2 = "application"
		detail = map[string]string{"appId": a.AppID, "clientId": a.ClientID}
		run = func() (int64, error) {
			if a.Flag == kitcall.FlagDelete {
				return h.Store.DeleteKitApplication(ctx, key, a.AppID)
			}
			return h.Store.UpsertKitApplication(ctx, store.KitApplication{KitKey: key, AppID: a.AppID, ClientID: a.ClientID,
				ClientSecret: a.ClientSecret, SyncedAt: a.SyncedAt})
		}
	case kitcall.KindAuth:
		a, err := kitcall.ParseAuth(raw)
		if err != nil {
			return invalid(err)
		}
		common = a.Common
		key := keyOf(common)
		names := make([]string, len(a.Users))
		for i, u := range a.Users {
			names[i] = u.UserName
		}
		kind2 = "users"
		if a.Flag == kitcall.FlagDelete || a.Flag == kitcall.FlagCancel {
			detail = map[string]any{"appId": a.AppID, "userNames": names}
		} else {
			us := make([]map[string]any, len(a.Users))
			for i, u := range a.Users {
				us[i] = map[string]any{"userName": u.UserName, "name": u.Name, "role": u.Role, "orgCode": u.OrgCode, "enabled": u.Enable}
			}
			detail = map[string]any{"appId": a.AppID, "users": us}
		}
		run = func() (int64, error) {
			switch a.Flag {
			case kitcall.FlagDelete:
				return h.Store.DeleteKitUsers(ctx, key, a.AppID, names)
			case kitcall.FlagCancel:
				return h.Store.CancelKitUsers(ctx, key, a.AppID, names, a.SyncedAt)
			}
			rows := make([]store.KitUser, len(a.Users))
			for i, u := range a.Users {
				rows[i] = store.KitUser{KitKey: key, AppID: a.AppID, UserName: u.UserName, Name: u.Name, OrgCode: u.OrgCode,
					Role: u.Role, Enabled: u.Enable, Detail: compact(u.Raw), SyncedAt: a.SyncedAt}
			}
			return h.Store.UpsertKitUsers(ctx, rows)
		}
	case kitcall.KindSingleOrg, kitcall.KindAllOrg:
		o, err := kitcall.ParseOrgs(kind, raw)
		if err != nil {
			return invalid(err)
		}
		common = o.Common
		key := keyOf(common)
		kind2 = "org"
		detail = map[string]any{"full": o.Full, "orgs": o.Orgs}
		run = func() (int64, error) {
			if !o.Full && o.Flag == kitcall.FlagDelete {
				return h.Store.DeleteKitOrg(ctx, key, o.Orgs[0].OrgCode)
			}
			rows := make([]store.KitOrg, len(o.Orgs))
			for i, org := range o.Orgs {
				rows[i] = store.KitOrg{KitKey: key, OrgCode: org.OrgCode, OrgName: org.OrgName, ParentCode: org.ParentCode,
					Detail: orgDetail(o.Full, org)}
			}
			return h.Store.UpsertKitOrgs(ctx, key, rows, o.Full, o.SyncedAt)
		}
	default:
		return answer(koogallery.ResultInvalidParams, "unknown Kit call"), "unknown Kit call " + kind
	}
	out.instanceID, out.orderID, out.testFlag = common.InstanceID, common.OrderID, common.TestFlag

	// A delete or a cancellation never needs the instance (the marketplace's rule); an add or a modify needs a
	// production instance that exists and was not released. Test calls are not checked: the marketplace's debug
	// tool syncs for instances that only exist on its side.
	known, released := false, false
	if !common.TestFlag {
		var err error
		if known, released, err = h.Store.KitInstanceState(ctx, common.InstanceID); err != nil {
			return failed(err)
		}
		if common.Flag != kitcall.FlagDelete && common.Flag != kitcall.FlagCancel {
			switch {
			case !known:
				return answer(koogallery.ResultNotFound, "the instance "+common.InstanceID+" does not exist"), "unknown instance"
			case released:
				return answer(koogallery.ResultNotFound, "the instance "+common.InstanceID+" was released"), "released instance"
			}
		}
	}
	// A production change of a live instance is delivered to the seller's systems. The delivery row is written
	// before the change and dropped if the change changed nothing, so a change is never applied without one.
	deliver := h.Instances != nil && known && !released
	var deliveryID int64
	if deliver {
		d, err := json.Marshal(map[string]any{"call": kind, "flag": common.Flag.String(), "tenantId": common.TenantID,
			"syncedAt": common.SyncedAt, kind2: detail})
		if err != nil {
			return failed(fmt.Errorf("encode the Kit delivery: %w", err))
		}
		deliveryID, err = h.Store.AddKitDelivery(ctx, store.KitDelivery{InstanceID: common.InstanceID, Kind: kind2, Call: kind,
			Flag: common.Flag.String(), TenantID: common.TenantID, Detail: d})
		if err != nil {
			return failed(err)
		}
	}
	n, err := run()
	if err != nil {
		if deliver {
			_ = h.Store.DropKitDelivery(ctx, deliveryID) // best effort: delivering a change that failed is harmless
		}
		return failed(err)
	}
	note := fmt.Sprintf("%s %s: %d rows changed", kind, common.Flag, n)
	if deliver {
		if n == 0 {
			if err := h.Store.DropKitDelivery(ctx, deliveryID); err != nil {
				note += "; the unneeded delivery could not be dropped and will be sent: " + err.Error()
			}
		}
		if resp, why, ok := h.handOff(ctx, common); !ok {
			return resp, note + "; " + why
		}
	}
	return answer(koogallery.ResultSuccess, "success"), note
}

// handOff hands the instance's undelivered changes, oldest first, to its workflow. The marketplace is answered
// success only once they are handed over: if Temporal cannot take them now, the answer is 000005 and the retry
// (which changes no rows) hands them over.
func (h *Handler) handOff(ctx context.Context, c kitcall.Common) (koogallery.Response, string, bool) {
	pending, err := h.Store.UnhandedKitDeliveries(ctx, c.InstanceID)
	if err != nil {
		r, d := failed(err)
		return r, d, false
	}
	for _, d := range pending {
		err := h.Instances.Update(ctx, d.InstanceID, instance.UpdateKitChange, fmt.Sprintf("kit-%d", d.DeliveryID),
			instance.KitChange{DeliveryID: d.DeliveryID, Kind: d.Kind, Call: d.Call, Flag: d.Flag, TenantID: d.TenantID}, nil)
		if _, ok := refusal.As(err); ok {
			// The release was accepted meanwhile: the Kit data goes with the instance, nothing is delivered.
			if err := h.Store.DropKitDelivery(ctx, d.DeliveryID); err != nil {
				r, det := failed(err)
				return r, det, false
			}
			continue
		}
		if errors.Is(err, instance.ErrNoWorkflow) {
			return answer(koogallery.ResultInternal, "the instance is still being set up; please retry"), err.Error(), false
		}
		if err != nil {
			r, det := failed(err)
			return r, det, false
		}
		if err := h.Store.KitDeliveryHanded(ctx, d.DeliveryID); err != nil {
			r, det := failed(err)
			return r, det, false
		}
	}
	return koogallery.Response{}, "", true
}

func keyOf(c kitcall.Common) store.KitKey {
	return store.KitKey{TestFlag: c.TestFlag, InstanceID: c.InstanceID, TenantID: c.TenantID}
}

func invalid(err error) (koogallery.Response, string) {
	return answer(koogallery.ResultInvalidParams, "invalid request: "+err.Error()), err.Error()
}

func failed(err error) (koogallery.Response, string) {
	if errors.Is(err, context.DeadlineExceeded) {
		return answer(koogallery.ResultInternal, "the request could not be completed in time; please retry"), err.Error()
	}
	return answer(koogallery.ResultInternal, "internal error; please retry"), err.Error()
}

// compact stores a user or unit object in canonical jsonb-friendly form.
func compact(raw json.RawMessage) json.RawMessage {
	var b bytes.Buffer
	if json.Compact(&b, raw) != nil {
		return json.RawMessage(`{}`)
	}
	return b.Bytes()
}

// orgDetail keeps a full sync's unit object as sent; a single sync's unit is its top-level fields.
func orgDetail(full bool, o kitcall.Org) json.RawMessage {
	if full {
		return compact(o.Raw)
	}
	d, _ := json.Marshal(map[string]string{"orgCode": o.OrgCode, "orgName": o.OrgName, "parentCode": o.ParentCode})
	return d
}

// finish signs the answer, records the call (unless msg is nil: an unverified call over its source's budget) and
// writes the answer; a message log failure turns the answer into 000005, as on the production interface.
func (h *Handler) finish(ctx context.Context, c *gin.Context, log *slog.Logger, start time.Time, msg *store.Message, kind string, out outcome) {
	bytes := koogallery.Encode(out.resp)
	sign := koogallery.BodySignHeader(h.AccessKey, bytes)
	if msg != nil {
		msg.Verification = out.verdict
		if out.instanceID != "" {
			msg.InstanceIDs = []string{out.instanceID}
		}
		msg.OrderID = out.orderID
		msg.TestFlag = out.testFlag
		msg.ResultCode = out.resp.ResultCode
		msg.ResultMsg = out.resp.ResultMsg
		msg.ErrorDetail = out.detail
		msg.HTTPStatus = http.StatusOK
		msg.ResponseBody = bytes
		msg.BodySign = sign
		msg.Latency = h.now().Sub(start)
		if err := h.Messages.AppendMessage(ctx, msg); err != nil {
			log.Error("message log write failed; answering 000005 so the marketplace retries", "err", err, "activity", kind)
			bytes = koogallery.Encode(answer(koogallery.ResultInternal, "the call could not be recorded; please retry"))
			sign = koogallery.BodySignHeader(h.AccessKey, bytes)
		}
	}
	level := slog.LevelInfo
	if out.resp.ResultCode != koogallery.ResultSuccess {
		level = slog.LevelWarn
	}
	log.Log(ctx, level, "Kit call", "activity", kind, "result_code", out.resp.ResultCode, "verification", out.verdict,
		"instance_id", out.instanceID, "test", out.testFlag, "detail", out.detail, "latency", time.Since(start))
	c.Header(koogallery.BodySignHeaderName, sign)
	c.Data(http.StatusOK, "application/json;charset=UTF-8", bytes)
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

// redacted replaces the client secret in the message log.
const redacted = "[redacted]"

// Redact returns the body as the message log keeps it: a body with a clientSecret member has its value replaced
// (the body is then re-serialised); a body that may hold clientSecret but cannot be read as a JSON object is not
// kept at all.
func Redact(body []byte) []byte {
	// A key may be spelt with escapes ("client\u0053ecret"), so any body with an escape is parsed too.
	suspect := bytes.Contains(bytes.ToLower(body), []byte("clientsecret")) || bytes.Contains(body, []byte(`\u`))
	if !suspect {
		return body
	}
	var m map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(&m); err != nil || dec.More() {
		return []byte{}
	}
	found := false
	for k := range m {
		if strings.EqualFold(k, "clientSecret") {
			m[k] = json.RawMessage(`"` + redacted + `"`)
			found = true
		}
	}
	if !found {
		return body
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if enc.Encode(m) != nil {
		return []byte{}
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n"))
}

// consoleKit: GET /console/v1/instances/:id/kit?testFlag=true — the instance's Kit rows (production rows unless
// testFlag=true). Client secrets are never shown.
func consoleKit(st *store.Store) gin.HandlerFunc {
	return func(c *gin.Context) {
		test := false
		switch c.Query("testFlag") {
		case "", "false", "0":
		case "true", "1":
			test = true
		default:
			httpx.WriteProblem(c, http.StatusBadRequest, "the filter is invalid", httpx.FieldError{Field: "testFlag", Detail: "must be true or false"})
			return
		}
		v, err := st.KitOfInstance(c.Request.Context(), c.Param("id"), test)
		if err != nil {
			httpx.Log(c).Error("read Kit rows", "err", err)
			httpx.WriteProblem(c, http.StatusInternalServerError, "the Kit rows could not be read")
			return
		}
		c.JSON(http.StatusOK, gin.H{"instanceId": c.Param("id"), "testFlag": test, "kit": v})
	}
}
