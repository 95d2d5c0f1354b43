package webconsole

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gin-gonic/gin"

	"github.com/kooflow/kooflow/api/bills"
	"github.com/kooflow/kooflow/internal/config"
	"github.com/kooflow/kooflow/internal/instance"
	"github.com/kooflow/kooflow/internal/ledger"
	"github.com/kooflow/kooflow/internal/refusal"
	"github.com/kooflow/kooflow/internal/settlement"
	"github.com/kooflow/kooflow/internal/store"
	"github.com/kooflow/kooflow/internal/usagepush"
)

// Lifecycle and supervision states the filters offer (the read model's values).
var (
	lifecycleStates   = []string{"PROVISIONING", "ACTIVE", "FROZEN", "RELEASED"}
	supervisionStates = []string{"NOT_INVOLVED", "AWAITING_REQUIREMENT", "AWAITING_CONFIRMATION", "IN_SERVICE",
		"AWAITING_ACCEPTANCE", "COMPLETED"}
)

type instancesData struct {
	F            url.Values
	Lifecycles   []string
	Supervisions []string
	Items        []store.Instance
	Next         string // the next page's query
}

// instances: the list, with search and filters, most recently changed first, keyset-paged.
func (c *Console) instances(ctx *gin.Context) {
	m := c.cat(ctx)
	q := ctx.Request.URL.Query()
	d := instancesData{F: q, Lifecycles: lifecycleStates, Supervisions: supervisionStates}
	trim := func(k string) string { return strings.TrimSpace(q.Get(k)) }
	// An instance id is unique: go straight to it.
	if id := trim("instanceId"); id != "" {
		if _, err := c.store.Instance(ctx.Request.Context(), id); err == nil {
			ctx.Redirect(http.StatusSeeOther, Prefix+"/instances/"+url.PathEscape(id))
			return
		} else if !errors.Is(err, store.ErrNotFound) {
			c.internal(ctx, "read instance", err)
			return
		}
		v := c.view(ctx, "instances", d)
		v.Error = fmt.Sprintf(m.T("instances.noSuchID"), id)
		c.render(ctx, http.StatusNotFound, "instances", v)
		return
	}
	f := store.InstanceFilter{OrderID: trim("orderId"), CustomerID: trim("customerId"), ProductID: trim("productId"),
		Limit: 50, Cursor: q.Get("cursor")}
	var bad []string
	if v := q.Get("lifecycle"); v != "" {
		if !slices.Contains(lifecycleStates, v) {
			bad = append(bad, "lifecycle")
		}
		f.Lifecycle = v
	}
	if v := q.Get("supervision"); v != "" {
		if !slices.Contains(supervisionStates, v) {
			bad = append(bad, "supervision")
		}
		f.Supervision = v
	}
	if v := q.Get("parked"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			bad = append(bad, "parked")
		}
		f.Parked = &b
	}
	for _, s := range []string{f.OrderID, f.CustomerID, f.ProductID} {
		if len(s) > 64 {
			bad = append(bad, m.T("err.tooLong"))
		}
	}
	if len(bad) > 0 {
		v := c.view(ctx, "instances", d)
		v.Error = m.T("err.filter") + ": " + strings.Join(bad, ", ")
		c.render(ctx, http.StatusBadRequest, "instances", v)
		return
	}
	page, err := c.store.ListInstances(ctx.Request.Context(), f)
	if errors.Is(err, store.ErrBadCursor) {
		v := c.view(ctx, "instances", d)
		v.Error = m.T("err.cursor")
		c.render(ctx, http.StatusBadRequest, "instances", v)
		return
	}
	if err != nil {
		c.internal(ctx, "list instances", err)
		return
	}
	d.Items = page.Items
	if page.NextCursor != "" {
		nq := url.Values{}
		for k, vs := range q {
			if k != "cursor" && k != "done" {
				nq[k] = vs
			}
		}
		nq.Set("cursor", page.NextCursor)
		d.Next = nq.Encode()
	}
	c.render(ctx, http.StatusOK, "instances", c.view(ctx, "instances", d))
}

type instanceData struct {
	store.Instance
	Orders     []store.Order
	Timeline   []store.Event
	Refunds    []store.Refund
	Alerts     []store.Alert
	Parkings   []store.Parking
	Kit        store.KitView
	TemporalUI string
	// Usage is set for a pay-per-use instance.
	Usage *usagepush.Usage
}

// instance: one instance with everything the read model knows about it, and the actions its state allows.
func (c *Console) instance(ctx *gin.Context) {
	id := ctx.Param("id")
	rc := ctx.Request.Context()
	inst, err := c.store.Instance(rc, id)
	if errors.Is(err, store.ErrNotFound) {
		c.fail(ctx, http.StatusNotFound, fmt.Sprintf(c.cat(ctx).T("instances.noSuchID"), id))
		return
	}
	if err != nil {
		c.internal(ctx, "read instance", err)
		return
	}
	d := instanceData{Instance: inst}
	steps := []struct {
		what string
		fn   func() error
	}{
		{"orders", func() (err error) { d.Orders, err = c.store.Orders(rc, id); return }},
		{"timeline", func() (err error) { d.Timeline, err = c.store.Timeline(rc, id); return }},
		{"refunds", func() (err error) { d.Refunds, err = c.store.Refunds(rc, id); return }},
		{"alerts", func() (err error) {
			d.Alerts, err = c.store.Alerts(rc, store.AlertFilter{InstanceID: id, Limit: 1000})
			return
		}},
		{"parkings", func() (err error) { d.Parkings, err = c.store.Parkings(rc, id); return }},
		{"kit", func() (err error) { d.Kit, err = c.store.KitOfInstance(rc, id, inst.TestFlag); return }},
	}
	for _, s := range steps {
		if err := s.fn(); err != nil {
			c.internal(ctx, "read "+s.what, err)
			return
		}
	}
	if inst.ChargingMode == store.ChargingOnDemand || inst.ChargingMode == store.ChargingOnDemandPkg {
		u, err := c.usage.InstanceUsage(rc, id, usageWindows)
		if err != nil {
			c.internal(ctx, "read usage", err)
			return
		}
		d.Usage = &u
	}
	if base := strings.TrimRight(c.d.Config.TemporalUIURL, "/"); base != "" {
		d.TemporalUI = base + "/namespaces/" + url.PathEscape(c.d.Config.TemporalNamespace) + "/workflows/" + url.PathEscape(inst.WorkflowID)
	}
	v := c.view(ctx, "instances", d)
	v.Title = id
	c.render(ctx, http.StatusOK, "instance", v)
}

// usageWindows is how many of its latest hourly windows a pay-per-use instance's page shows.
const usageWindows = 24

type queueData struct {
	Confirm  []store.Instance
	Delivery []store.Instance
	Refunds  []store.PendingRefund
	Parked   []store.Instance
	// More* say that a queue has more than the page shows; the instance list pages through the rest.
	MoreConfirm, MoreDelivery, MoreParked bool
}

// queueSize is how many entries a queue page shows; the rest are a link to the instance list filtered the same
// way, which pages through any number.
const queueSize = 50

// supervisionQueue (服务监管): requirements to confirm or reject, services to mark delivered.
func (c *Console) supervisionQueue(ctx *gin.Context) {
	rc := ctx.Request.Context()
	var d queueData
	for _, s := range []struct {
		state string
		into  *[]store.Instance
		more  *bool
	}{{string(instance.SupervisionAwaitingConfirm), &d.Confirm, &d.MoreConfirm}, {string(instance.SupervisionInService), &d.Delivery, &d.MoreDelivery}} {
		page, err := c.store.ListInstances(rc, store.InstanceFilter{Supervision: s.state, Limit: queueSize})
		if err != nil {
			c.internal(ctx, "list supervision queue", err)
			return
		}
		*s.into, *s.more = page.Items, page.NextCursor != ""
	}
	c.render(ctx, http.StatusOK, "supervision", c.view(ctx, "supervision", d))
}

// refunds: requests waiting for the seller's decision.
func (c *Console) refunds(ctx *gin.Context) {
	rs, err := c.store.PendingRefunds(ctx.Request.Context(), 100)
	if err != nil {
		c.internal(ctx, "list refund requests", err)
		return
	}
	c.render(ctx, http.StatusOK, "refunds", c.view(ctx, "refunds", queueData{Refunds: rs}))
}

// parked: instances whose step waits for an operator.
func (c *Console) parked(ctx *gin.Context) {
	yes := true
	page, err := c.store.ListInstances(ctx.Request.Context(), store.InstanceFilter{Parked: &yes, Limit: queueSize})
	if err != nil {
		c.internal(ctx, "list parked instances", err)
		return
	}
	c.render(ctx, http.StatusOK, "parked", c.view(ctx, "parked", queueData{Parked: page.Items, MoreParked: page.NextCursor != ""}))
}

type messagesData struct {
	F     url.Values
	Items []*store.Message
	Next  string
}

// messages (生产接口消息): the production interface's calls, failed ones first.
func (c *Console) messages(ctx *gin.Context) {
	q := ctx.Request.URL.Query()
	f := store.MessageFilter{OrderID: strings.TrimSpace(q.Get("orderId")), InstanceID: strings.TrimSpace(q.Get("instanceId")),
		Activity: q.Get("activity"), FailedOnly: q.Get("failed") == "true", Limit: 50}
	if v := q.Get("cursor"); v != "" {
		var cur store.MessageCursor
		if err := store.DecodeCursor(v, &cur); err != nil || cur.ID <= 0 {
			v := c.view(ctx, "messages", messagesData{F: q})
			v.Error = v.M.T("err.cursor")
			c.render(ctx, http.StatusBadRequest, "messages", v)
			return
		}
		f.After = &cur
	}
	msgs, next, err := c.store.ListMessages(ctx.Request.Context(), f)
	if err != nil {
		c.internal(ctx, "list messages", err)
		return
	}
	d := messagesData{F: q, Items: msgs}
	if next != nil {
		nq := url.Values{}
		for k, vs := range q {
			if k != "cursor" {
				nq[k] = vs
			}
		}
		nq.Set("cursor", store.EncodeCursor(next))
		d.Next = nq.Encode()
	}
	c.render(ctx, http.StatusOK, "messages", c.view(ctx, "messages", d))
}

type messageData struct {
	*store.Message
	Headers  map[string]string
	Request  string
	Response string
}

// message: one call, its request and answer with secrets redacted, and the Body-Sign of the answer.
func (c *Console) message(ctx *gin.Context) {
	id, err := strconv.ParseInt(ctx.Param("id"), 10, 64)
	if err != nil || id <= 0 {
		c.fail(ctx, http.StatusBadRequest, c.cat(ctx).T("err.messageID"))
		return
	}
	msg, err := c.store.GetMessage(ctx.Request.Context(), id)
	if errors.Is(err, store.ErrNoMessage) {
		c.fail(ctx, http.StatusNotFound, c.cat(ctx).T("err.messageID"))
		return
	}
	if err != nil {
		c.internal(ctx, "read message", err)
		return
	}
	d := messageData{Message: msg, Headers: map[string]string{}, Request: redactBody(msg.RawBody), Response: redactBody(msg.ResponseBody)}
	for k, vs := range msg.Headers {
		d.Headers[k] = redactHeader(k, strings.Join(vs, ", "))
	}
	v := c.view(ctx, "messages", d)
	v.Title = "#" + strconv.FormatInt(id, 10)
	c.render(ctx, http.StatusOK, "message", v)
}

// secretKey reports whether a JSON field or header holds a credential.
func secretKey(k string) bool {
	k = strings.ToLower(k)
	for _, s := range []string{"password", "secret", "token", "authorization", "cookie", "accesskey", "access_key", "sk", "apikey", "api-key"} {
		if k == s || strings.Contains(k, s) && s != "sk" {
			return true
		}
	}
	return false
}

func redactHeader(k, v string) string {
	if secretKey(k) {
		return "[redacted]"
	}
	return v
}

// redactBody shows a stored body as text with the values of credential fields replaced; a body that is not
// JSON is shown as stored (the message log never holds a password: docs/security.md).
func redactBody(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	var v any
	if json.Unmarshal(b, &v) != nil {
		if !utf8.Valid(b) {
			return fmt.Sprintf("(%d bytes, not UTF-8)", len(b))
		}
		return string(b)
	}
	var walk func(any) any
	walk = func(x any) any {
		switch t := x.(type) {
		case map[string]any:
			for k, e := range t {
				if secretKey(k) {
					if s, ok := e.(string); !ok || s != "" {
						t[k] = "[redacted]"
					}
					continue
				}
				t[k] = walk(e)
			}
		case []any:
			for i := range t {
				t[i] = walk(t[i])
			}
		}
		return x
	}
	out, err := json.MarshalIndent(walk(v), "", "  ")
	if err != nil {
		return string(b)
	}
	return string(out)
}

type alertsData struct {
	State string
	Items []store.Alert
}

// alerts: open ones by default, or resolved, or all.
func (c *Console) alerts(ctx *gin.Context) {
	state := ctx.DefaultQuery("state", "open")
	f := store.AlertFilter{Limit: 200}
	switch state {
	case "open":
		f.OpenOnly = true
	case "resolved", "all":
		f.Limit = 1000
	default:
		c.fail(ctx, http.StatusBadRequest, c.cat(ctx).T("err.filter")+": state")
		return
	}
	items, err := c.store.Alerts(ctx.Request.Context(), f)
	if err != nil {
		c.internal(ctx, "list alerts", err)
		return
	}
	if state == "resolved" {
		items = slices.DeleteFunc(items, func(a store.Alert) bool { return a.ResolvedAt == nil })
	}
	c.render(ctx, http.StatusOK, "alerts", c.view(ctx, "alerts", alertsData{State: state, Items: items}))
}

type billsData struct {
	Bills []ledger.BillSummary
}

// bills (账单): the bills, newest period first.
func (c *Console) bills(ctx *gin.Context) {
	bs, err := c.ledger.ListBills(ctx.Request.Context(), ledger.BillFilter{Limit: 200})
	if err != nil {
		c.internal(ctx, "list bills", err)
		return
	}
	c.render(ctx, http.StatusOK, "bills", c.view(ctx, "bills", billsData{Bills: bs}))
}

type billData struct {
	Bill        ledger.BillSummary
	Lines       []ledger.Line
	Adjustments []ledger.Adjustment
	NextAfter   string
	MaxXLSX     int64
}

// bill: one bill's header, lines (keyset-paged) and adjustments, with its downloads.
func (c *Console) bill(ctx *gin.Context) {
	m := c.cat(ctx)
	p, err := settlement.ParsePeriod(ctx.Param("period"))
	if err != nil {
		c.fail(ctx, http.StatusBadRequest, err.Error())
		return
	}
	t, err := bills.ProductTypes(ctx.Param("productType"))
	if err != nil {
		c.fail(ctx, http.StatusBadRequest, err.Error())
		return
	}
	var after settlement.Key
	if a := ctx.Query("after"); a != "" {
		id, line, ok := strings.Cut(a, "/")
		if !ok {
			c.fail(ctx, http.StatusBadRequest, m.T("err.cursor"))
			return
		}
		after = settlement.Key{OrderID: id, OrderLineID: line}
	}
	rc := ctx.Request.Context()
	b, err := c.ledger.Bill(rc, p.String(), t)
	if r, ok := refusal.As(err); ok && r.Code == ledger.CodeNotFound {
		c.fail(ctx, http.StatusNotFound, r.Reason)
		return
	}
	if err != nil {
		c.internal(ctx, "read bill", err)
		return
	}
	const limit = 100
	d := billData{Bill: b, MaxXLSX: ledger.MaxXLSXLines}
	if d.Lines, err = c.ledger.Lines(rc, b.BillID, after, limit); err != nil {
		c.internal(ctx, "read bill lines", err)
		return
	}
	if d.Adjustments, err = c.ledger.Adjustments(rc, b.BillID); err != nil {
		c.internal(ctx, "read adjustments", err)
		return
	}
	if len(d.Lines) == limit {
		last := d.Lines[limit-1]
		d.NextAfter = last.OrderID + "/" + last.OrderLineID
	}
	v := c.view(ctx, "bills", d)
	v.Title = b.Period + " " + string(b.ProductType)
	c.render(ctx, http.StatusOK, "bill", v)
}

type explainData struct {
	OrderID string
	Lines   []ledger.Explanation
}

// explain: why an order is, or is not, in a bill.
func (c *Console) explain(ctx *gin.Context) {
	d := explainData{OrderID: strings.TrimSpace(ctx.Query("orderId"))}
	v := c.view(ctx, "bills", &d)
	if d.OrderID != "" {
		if err := ledger.ValidOrderID(d.OrderID); err != nil {
			v.Error = err.Error()
			c.render(ctx, http.StatusBadRequest, "explain", v)
			return
		}
		es, err := c.ledger.Explain(ctx.Request.Context(), d.OrderID, "", c.now(), c.d.Catalog)
		if r, ok := refusal.As(err); ok {
			v.Error = r.Reason
			c.render(ctx, http.StatusNotFound, "explain", v)
			return
		}
		if err != nil {
			c.internal(ctx, "explain order", err)
			return
		}
		d.Lines = es
	}
	c.render(ctx, http.StatusOK, "explain", v)
}

// reconInterval shows KOOFLOW_RECON_CHECK_INTERVAL as it is set: a duration, or off.
func reconInterval(d time.Duration) string {
	if d <= 0 {
		return "off"
	}
	return d.String()
}

type setting struct {
	Name  string
	Value string
}

// settings: what is configured, secrets shown only as set or not set.
func (c *Console) settings(ctx *gin.Context) {
	cfg := c.d.Config
	m := c.cat(ctx)
	secret := func(s config.Secret) string {
		if s == "" {
			return m.T("settings.unset")
		}
		return m.T("settings.setHidden")
	}
	plain := func(s string) string {
		if s == "" {
			return m.T("settings.unset")
		}
		return s
	}
	var names []string
	for _, t := range c.tokens {
		sc := m.T("settings.allScopes")
		if t.Scopes != nil {
			parts := make([]string, len(t.Scopes))
			for i, s := range t.Scopes {
				parts[i] = string(s)
			}
			sc = strings.Join(parts, "+")
		}
		names = append(names, t.Name+" ("+sc+")")
	}
	keyIDs := m.T("settings.unset")
	if c.d.Keys != nil {
		keyIDs = strings.Join(c.d.Keys.IDs(), ", ")
	}
	rows := []setting{
		{config.EnvDatabaseURL, secret(cfg.DatabaseURL)},
		{config.EnvTemporalAddress, plain(cfg.TemporalAddress)},
		{config.EnvTemporalNamespace, plain(cfg.TemporalNamespace)},
		{config.EnvTaskQueue, plain(cfg.TaskQueue)},
		{config.EnvTemporalUIURL, plain(cfg.TemporalUIURL)},
		{config.EnvHTTPAddr, plain(cfg.HTTPAddr)},
		{config.EnvConsoleAddr, plain(cfg.ConsoleAddr)},
		{config.EnvTrustedProxies, plain(strings.Join(cfg.TrustedProxies, ", "))},
		{config.EnvAccessKey, secret(cfg.AccessKey)},
		{config.EnvProductionPath, plain(cfg.ProductionPath)},
		{config.EnvDeadline, cfg.Deadline.String()},
		{config.EnvSignatureWindow, cfg.SignatureSkew.String()},
		{config.EnvMarketAK, secret(cfg.MarketAK)},
		{config.EnvMarketSK, secret(cfg.MarketSK)},
		{config.EnvMarketEndpoint, plain(cfg.MarketEndpoint)},
		{config.EnvConsoleTokens, strings.Join(names, ", ")},
		{config.EnvDataKeys, m.T("settings.keyIDs") + " " + keyIDs},
		{config.EnvFourEyes, strconv.FormatBool(cfg.FourEyes)},
		{config.EnvCatalogFile, plain(c.d.CatalogSource)},
		{config.EnvProvisionerURL, plain(cfg.ProvisionerURL)},
		{config.EnvProvisionerSecret, secret(cfg.ProvisionerSecret)},
		{config.EnvProvisioner, plain(cfg.Provisioner)},
		{config.EnvExpiryPolicy, plain(cfg.ExpiryPolicy)},
		{config.EnvAlertWebhookURL, secret(cfg.AlertWebhookURL)},
		{config.EnvSettlementThreshold, cfg.SettlementThreshold.StringFixed(2)},
		{config.EnvReconCheckInterval, reconInterval(cfg.ReconCheckInterval)},
	}
	c.render(ctx, http.StatusOK, "settings", c.view(ctx, "settings", rows))
}
