// Package deliver is how the emulated marketplace calls a seller's V2 production interface: it builds each
// activity's JSON body, signs every single delivery with a fresh nonce and timestamp (docs/koogallery.md,
// "Request signature"), verifies every response's Body-Sign ("Response signature") — a bad one is a failed
// delivery — and retries failed calls for as long and as often as the marketplace does ("Retry windows"), on the
// emulator's scaled clock. A Dispatcher adds the faults a real network and a real marketplace produce: duplicated
// deliveries, reordering, deliveries that arrive after the seller's freshness window, and responses lost on the
// way back.
package deliver

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/kooflow/kooflow/emulator/sign"
)

// V2 activities.
const (
	NewInstance          = "newInstance"
	QueryInstance        = "queryInstance"
	RefreshInstance      = "refreshInstance"
	UpdateInstanceStatus = "updateInstanceStatus"
	ReleaseInstance      = "releaseInstance"
	UpgradeInstance      = "upgradeInstance"
	ChangeInstanceCheck  = "changeInstanceCheck"
)

// Result codes (docs/koogallery.md, "Result codes").
const (
	CodeSuccess    = "000000"
	CodeAuth       = "000001"
	CodeParams     = "000002"
	CodeNoInstance = "000003"
	CodeInProgress = "000004"
	CodeInternal   = "000005"
)

// Field is one body field; Value is a string or, for changeInstanceCheck's productInfo, a map.
type Field struct {
	Name  string
	Value any
}

// Message is one marketplace call, independent of how often it is delivered.
type Message struct {
	Activity   string
	InstanceID string // the instance it concerns; empty for newInstance
	OrderID    string // for reports
	// Fields follow "activity" in the body, in the order given (the documents' table order, not sorted: the
	// seller has to canonicalise before checking the signature).
	Fields []Field
	// TestFlag marks a debugging (dial-test) call: testFlag "1". Otherwise the body carries testFlag "0" or no
	// testFlag at all, both of which the documents show; OmitTestFlag chooses.
	TestFlag     bool
	OmitTestFlag bool
	// Accept, if set, decides whether an answered attempt completes the message (queryInstance polls until
	// the seller reports the instance's appInfo). By default a message is complete on 000000, and newInstance
	// also on 000004 with an instanceId.
	Accept func(Attempt) bool
	// Undeliverable makes every attempt fail before it reaches the seller (a seller that cannot be reached
	// for the whole retry window).
	Undeliverable bool
}

// Body builds the JSON the marketplace sends.
func (m Message) Body() []byte {
	var b bytes.Buffer
	b.WriteByte('{')
	writeKV(&b, "activity", m.Activity)
	for _, f := range m.Fields {
		b.WriteByte(',')
		writeKV(&b, f.Name, f.Value)
	}
	if m.TestFlag {
		b.WriteByte(',')
		writeKV(&b, "testFlag", "1")
	} else if !m.OmitTestFlag {
		b.WriteByte(',')
		writeKV(&b, "testFlag", "0")
	}
	b.WriteByte('}')
	return b.Bytes()
}

func writeKV(b *bytes.Buffer, k string, v any) {
	enc := json.NewEncoder(b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(k)
	b.Truncate(b.Len() - 1)
	b.WriteByte(':')
	_ = enc.Encode(v) // maps encode with sorted keys
	b.Truncate(b.Len() - 1)
}

// AppInfo is what queryInstance reports for the customer (docs/koogallery.md, "queryInstance").
type AppInfo struct {
	FrontEndURL string `json:"frontEndUrl"`
	AdminURL    string `json:"adminUrl,omitempty"`
	UserName    string `json:"userName,omitempty"`
	Password    string `json:"password,omitempty"`
	Memo        string `json:"memo,omitempty"`
}

// InstanceInfo is one entry of queryInstance's info.
type InstanceInfo struct {
	InstanceID string   `json:"instanceId"`
	AppInfo    *AppInfo `json:"appInfo,omitempty"`
}

type sellerResponse struct {
	ResultCode string         `json:"resultCode"`
	ResultMsg  string         `json:"resultMsg"`
	InstanceID string         `json:"instanceId"`
	Info       []InstanceInfo `json:"info"`
}

// Attempt is one delivery and what came back.
type Attempt struct {
	Sent       time.Time
	Latency    time.Duration
	HTTPStatus int
	Body       []byte
	ResultCode string
	ResultMsg  string
	InstanceID string
	Info       []InstanceInfo
	// Err is a transport, Body-Sign or parsing failure; the attempt then has no result.
	Err error
	// BadBodySign is set when the response's Body-Sign did not verify.
	BadBodySign bool
	// Backdated is how long before sending the delivery was signed (a delayed delivery).
	Backdated time.Duration
	// Dropped is set when the response was discarded on the way back (the seller did the work).
	Dropped bool
	// Lost is set when the delivery never reached the seller.
	Lost bool
}

// Answered reports whether the seller's answer reached the marketplace intact.
func (a Attempt) Answered() bool { return a.Err == nil && !a.Dropped && !a.Lost }

// Client sends signed V2 calls to one production URL.
type Client struct {
	URL       string // e.g. http://127.0.0.1:8080/koogallery/v2
	AccessKey string
	HTTP      *http.Client
	// Timeout is the marketplace's patience per call: 5 s (docs/koogallery.md, "Transport").
	Timeout time.Duration
	// Now is the wall clock for signature timestamps; the seller checks them against its own clock, so
	// this is real time even when the emulator's business clock runs fast.
	Now func() time.Time
}

// NewClient returns a client with the marketplace's 5-second timeout.
func NewClient(url, accessKey string) *Client {
	return &Client{URL: url, AccessKey: accessKey, HTTP: &http.Client{}, Timeout: 5 * time.Second, Now: time.Now}
}

// ErrBodySign marks an attempt whose answer failed Body-Sign verification.
var ErrBodySign = errors.New("response Body-Sign invalid")

// Send delivers m once: a new businessId for newInstance, a fresh nonce and timestamp always. backdate signs
// the delivery as if it had been sent that long ago (a delivery delayed in transit).
func (c *Client) Send(ctx context.Context, m Message, backdate time.Duration) Attempt {
	if m.Activity == NewInstance {
		m.Fields = withBusinessID(m.Fields)
	}
	body := m.Body()
	now := c.Now()
	a := Attempt{Sent: now, Backdated: backdate}
	query, err := sign.SignedQuery(c.AccessKey, body, now.Add(-backdate))
	if err != nil {
		a.Err = err
		return a
	}
	return c.Post(ctx, m.Activity, body, query, a)
}

// Post sends body with the given signed query string as it is, for callers that build unusual deliveries
// (the dial test's forged and replayed ones); a carries Sent and Backdated into the result.
func (c *Client) Post(ctx context.Context, activity string, body []byte, query string, a Attempt) Attempt {
	m := Message{Activity: activity}
	if a.Sent.IsZero() {
		a.Sent = c.Now()
	}
	url := c.URL
	if strings.Contains(url, "?") {
		url += "&" + query
	} else {
		url += "?" + query
	}
	ctx, cancel := context.WithTimeout(ctx, c.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		a.Err = err
		return a
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Content-Type", "application/json;charset=utf8")
	start := time.Now()
	resp, err := c.HTTP.Do(req)
	if err != nil {
		a.Latency = time.Since(start)
		a.Err = fmt.Errorf("%s: %w", m.Activity, err)
		return a
	}
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	a.Latency = time.Since(start)
	a.HTTPStatus, a.Body = resp.StatusCode, raw
	if err != nil {
		a.Err = fmt.Errorf("%s: read response: %w", m.Activity, err)
		return a
	}
	if err := sign.VerifyBodySign(c.AccessKey, raw, resp.Header.Get("Body-Sign")); err != nil {
		a.BadBodySign = true
		a.Err = fmt.Errorf("%s: %w: %v", m.Activity, ErrBodySign, err)
		return a
	}
	if resp.StatusCode != http.StatusOK {
		a.Err = fmt.Errorf("%s: HTTP %d: %s", m.Activity, resp.StatusCode, truncate(raw))
		// The body may still carry a resultCode; keep it for the report.
	}
	var r sellerResponse
	if err := json.Unmarshal(raw, &r); err != nil {
		if a.Err == nil {
			a.Err = fmt.Errorf("%s: response is not JSON: %s", m.Activity, truncate(raw))
		}
		return a
	}
	a.ResultCode, a.ResultMsg, a.InstanceID, a.Info = r.ResultCode, r.ResultMsg, r.InstanceID, r.Info
	return a
}

func withBusinessID(fs []Field) []Field {
	out := make([]Field, 0, len(fs)+1)
	set := false
	for _, f := range fs {
		if f.Name == "businessId" {
			f.Value = uuid.NewString()
			set = true
		}
		out = append(out, f)
	}
	if !set {
		out = append(out, Field{"businessId", uuid.NewString()})
	}
	return out
}

func truncate(b []byte) string {
	if len(b) > 200 {
		return string(b[:200]) + "…"
	}
	return string(b)
}

// Answer is the completion rule of a question such as changeInstanceCheck: any signed answer except "internal
// error, retry" (000005) and "authentication failed" (000001, e.g. a delivery that arrived stale) completes it,
// a refusal included.
func Answer(a Attempt) bool {
	return a.Answered() && a.HTTPStatus == http.StatusOK && a.ResultCode != "" && a.ResultCode != CodeInternal && a.ResultCode != CodeAuth
}

// Succeeded is the default completion rule: 000000, and for newInstance 000004 with an instanceId.
func Succeeded(activity string, a Attempt) bool {
	if !a.Answered() || a.HTTPStatus != http.StatusOK {
		return false
	}
	switch a.ResultCode {
	case CodeSuccess:
		return activity != NewInstance || a.InstanceID != ""
	case CodeInProgress:
		return activity == NewInstance && a.InstanceID != ""
	}
	return false
}
