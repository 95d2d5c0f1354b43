// Package usagedata is the client of the marketplace's pay-per-use usage push (docs/koogallery.md, "Usage push"):
// a POST of at most 1,000 usage records signed with the seller's key in the signature/ts/nonce headers, answered
// with a per-record verdict for every record the marketplace refused.
package usagedata

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
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

	"github.com/shopspring/decimal"

	"github.com/kooflow/kooflow/internal/config"
	"github.com/kooflow/kooflow/internal/koogallery"
)

// Path is the usage push's path on the marketplace host.
const Path = "/api/mkp-openapi-public/global/v1/isv/usage-data"

// MaxRecords is the most records one push may carry.
const MaxRecords = 1000

// TimeLayout is the usage push's time format, yyyyMMdd'T'HHmmss'Z' in UTC.
const TimeLayout = "20060102T150405Z"

// maxResponseBytes bounds what is read back: a refusal of all 1,000 records is under 200 KiB.
const maxResponseBytes = 1 << 20

// Record is one usage record as pushed.
type Record struct {
	InstanceID string
	RecordTime time.Time
	BeginTime  time.Time
	EndTime    time.Time
	// Value is the usage, > 0 with at most 4 decimals.
	Value decimal.Decimal
	// MeteringSN is the record's idempotency key at the marketplace (at most 64 characters).
	MeteringSN string
	// RelatePkgInstance is, for a package that stops when used up (用完即停), the package instance the usage is
	// deducted from.
	RelatePkgInstance string
}

// wireRecord has its fields in natural key order, so encoding/json writes the body the signature covers.
type wireRecord struct {
	BeginTime         string      `json:"begin_time"`
	EndTime           string      `json:"end_time"`
	InstanceID        string      `json:"instance_id"`
	MeteringSN        string      `json:"metering_sn"`
	RecordTime        string      `json:"record_time"`
	RelatePkgInstance string      `json:"relate_pkg_instance,omitempty"`
	UsageValue        json.Number `json:"usage_value"`
}

type wireRequest struct {
	UsageRecords []wireRecord `json:"usage_records"`
}

// wireResponse is the answer. Reading (docs/koogallery.md, "Usage push"): the documents name error_code and
// error_msg for the request and the per-record codes, not where those appear; kooflow reads them from
// fail_records, one entry per refused record, and also accepts resultCode/resultMsg at the top.
type wireResponse struct {
	ErrorCode   string        `json:"error_code"`
	ErrorMsg    string        `json:"error_msg"`
	ResultCode  string        `json:"resultCode"`
	ResultMsg   string        `json:"resultMsg"`
	FailRecords []wireRefusal `json:"fail_records"`
}

type wireRefusal struct {
	MeteringSN string `json:"metering_sn"`
	InstanceID string `json:"instance_id"`
	ErrorCode  string `json:"error_code"`
	ErrorMsg   string `json:"error_msg"`
}

// Refusal is the marketplace's verdict on one record it did not accept. Code is the bare per-record code
// ("005"), without any MKT./CBC. prefix.
type Refusal struct {
	MeteringSN string `json:"meteringSn"`
	InstanceID string `json:"instanceId"`
	Code       string `json:"code"`
	Message    string `json:"message"`
}

// Exchange is one push as sent and as answered, for the outbound message log. It is filled as far as the push
// got: a push that got no answer has HTTPStatus 0 and no ResponseBody.
type Exchange struct {
	SentAt       time.Time
	URL          string
	Headers      map[string]string // ts and nonce; the signature is not kept
	RequestBody  []byte
	HTTPStatus   int
	ResponseBody []byte
	Code         string // the request-level code as answered ("MKT.0000")
	Message      string
	Refusals     []Refusal
	Latency      time.Duration
}

// Error is a push the marketplace did not take as a whole. Retryable says whether sending the same records again
// later can succeed (5xx, throttling, no answer); a refused signature or a malformed request cannot.
type Error struct {
	HTTPStatus int
	Code       string
	Message    string
	Retryable  bool
}

func (e *Error) Error() string {
	return fmt.Sprintf("usage push: HTTP %d %s %s", e.HTTPStatus, e.Code, e.Message)
}

// Options configure a Client.
type Options struct {
	// Endpoint is the marketplace API's base URL, https only (KOOGALLERY_API_ENDPOINT).
	Endpoint string
	// SellerKey is the seller's key that signs the push (KOOGALLERY_ACCESS_KEY, 基础接口绑定密钥).
	SellerKey config.Secret
	// CAFile, if set, is a PEM bundle trusted in addition to the system roots (the emulator's CA).
	CAFile string
	// HTTPClient replaces the client built from CAFile; tests use it.
	HTTPClient *http.Client
	// Timeout bounds one push; 20 s if zero.
	Timeout time.Duration
	// Now is the clock of the ts header; time.Now if nil.
	Now func() time.Time
}

// Client pushes usage records.
type Client struct {
	url     string
	key     config.Secret
	http    *http.Client
	timeout time.Duration
	now     func() time.Time
}

// NewClient checks the options and builds a client.
func NewClient(o Options) (*Client, error) {
	u, err := url.Parse(strings.TrimRight(o.Endpoint, "/"))
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("usage push: endpoint %q is not a URL like https://mkt.myhuaweicloud.com", o.Endpoint)
	}
	if u.Scheme != "https" {
		return nil, fmt.Errorf("usage push: endpoint %q must use https", o.Endpoint)
	}
	if o.SellerKey == "" {
		return nil, errors.New("usage push: no key signs the push (set " + config.EnvAccessKey + ")")
	}
	c := &Client{url: u.String() + Path, key: o.SellerKey, http: o.HTTPClient, timeout: o.Timeout, now: o.Now}
	if c.timeout <= 0 {
		c.timeout = 20 * time.Second
	}
	if c.now == nil {
		c.now = time.Now
	}
	if c.http == nil {
		hc, err := koogallery.HTTPClient(o.CAFile)
		if err != nil {
			return nil, fmt.Errorf("usage push: %w", err)
		}
		c.http = hc
	}
	return c, nil
}

// Signature is the push's signature header: Base64(HMAC-SHA256(key, "ts={ts}&nonce={nonce}&body={body}")), body
// being the JSON with its keys in natural order, as Body writes it.
func Signature(key, ts, nonce string, body []byte) string {
	m := hmac.New(sha256.New, []byte(key))
	m.Write([]byte("ts=" + ts + "&nonce=" + nonce + "&body="))
	m.Write(body)
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// Body encodes records as the push's JSON body, keys in natural order, values exact.
func Body(records []Record) ([]byte, error) {
	if len(records) == 0 || len(records) > MaxRecords {
		return nil, fmt.Errorf("usage push: %d records; a push carries 1 to %d", len(records), MaxRecords)
	}
	req := wireRequest{UsageRecords: make([]wireRecord, len(records))}
	for i, r := range records {
		if !r.Value.IsPositive() || !r.Value.Equal(r.Value.Round(4)) {
			return nil, fmt.Errorf("usage push: record %s: value %s is not positive with at most 4 decimals", r.MeteringSN, r.Value)
		}
		if r.MeteringSN == "" || len(r.MeteringSN) > 64 || r.InstanceID == "" {
			return nil, fmt.Errorf("usage push: record %q of instance %q: metering_sn and instance_id are required (metering_sn ≤ 64 characters)", r.MeteringSN, r.InstanceID)
		}
		req.UsageRecords[i] = wireRecord{
			BeginTime: r.BeginTime.UTC().Format(TimeLayout), EndTime: r.EndTime.UTC().Format(TimeLayout),
			InstanceID: r.InstanceID, MeteringSN: r.MeteringSN, RecordTime: r.RecordTime.UTC().Format(TimeLayout),
			RelatePkgInstance: r.RelatePkgInstance, UsageValue: json.Number(r.Value.String()),
		}
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(req); err != nil {
		return nil, fmt.Errorf("usage push: encode: %w", err)
	}
	return bytes.TrimRight(b.Bytes(), "\n"), nil
}

// Push sends records in one request. It returns the exchange whatever happened (for the message log) and an
// *Error when the marketplace did not take the request as a whole; the refused records of a request it took are
// in Exchange.Refusals.
func (c *Client) Push(ctx context.Context, records []Record) (*Exchange, error) {
	body, err := Body(records)
	if err != nil {
		return nil, &Error{Code: "INVALID", Message: err.Error()}
	}
	var nb [16]byte
	_, _ = rand.Read(nb[:])
	nonce := hex.EncodeToString(nb[:])
	now := c.now()
	ts := strconv.FormatInt(now.UnixMilli(), 10)
	ex := &Exchange{SentAt: now.UTC(), URL: c.url, Headers: map[string]string{"ts": ts, "nonce": nonce}, RequestBody: body}

	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url, bytes.NewReader(body))
	if err != nil {
		return ex, &Error{Code: "INVALID", Message: err.Error()}
	}
	req.Header.Set("Content-Type", "application/json;charset=UTF-8")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("signature", Signature(c.key.Reveal(), ts, nonce, body))
	req.Header.Set("ts", ts)
	req.Header.Set("nonce", nonce)
	start := time.Now()
	resp, err := c.http.Do(req)
	if err != nil {
		ex.Latency = time.Since(start)
		ex.Message = err.Error()
		return ex, transportError(err)
	}
	defer resp.Body.Close()
	ex.HTTPStatus = resp.StatusCode
	ex.ResponseBody, err = io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	ex.Latency = time.Since(start)
	if err != nil {
		ex.Message = err.Error()
		return ex, &Error{HTTPStatus: resp.StatusCode, Code: "READ", Message: "read the answer: " + err.Error(), Retryable: true}
	}
	return ex, decode(ex, records)
}

// decode reads the answer into ex and classifies it.
func decode(ex *Exchange, records []Record) error {
	var r wireResponse
	if err := json.Unmarshal(ex.ResponseBody, &r); err != nil || (r.ErrorCode == "" && r.ResultCode == "") {
		ex.Code = fmt.Sprintf("HTTP%d", ex.HTTPStatus)
		ex.Message = "the answer is not a usage push response: " + snippet(ex.ResponseBody)
		return &Error{HTTPStatus: ex.HTTPStatus, Code: ex.Code, Message: ex.Message, Retryable: retryableStatus(ex.HTTPStatus)}
	}
	ex.Code, ex.Message = r.ErrorCode, r.ErrorMsg
	if ex.Code == "" {
		ex.Code, ex.Message = r.ResultCode, r.ResultMsg
	}
	if s := suffix(ex.Code); s != "0000" && s != "000000" {
		return classify(ex.HTTPStatus, ex.Code, ex.Message)
	}
	if ex.HTTPStatus != http.StatusOK {
		return &Error{HTTPStatus: ex.HTTPStatus, Code: ex.Code, Message: "success code with HTTP " + strconv.Itoa(ex.HTTPStatus), Retryable: retryableStatus(ex.HTTPStatus)}
	}
	sent := make(map[string]bool, len(records))
	for _, rec := range records {
		sent[rec.MeteringSN] = true
	}
	for _, f := range r.FailRecords {
		if !sent[f.MeteringSN] {
			return &Error{HTTPStatus: ex.HTTPStatus, Code: ex.Code,
				Message: fmt.Sprintf("the answer refuses record %q, which this push did not carry", f.MeteringSN)}
		}
		ex.Refusals = append(ex.Refusals, Refusal{MeteringSN: f.MeteringSN, InstanceID: f.InstanceID, Code: suffix(f.ErrorCode), Message: f.ErrorMsg})
	}
	return nil
}

// suffix is the part of a code after its last dot: MKT.0154 and CBC.0154 are the same code, as are MKT.005 and
// 005.
func suffix(code string) string {
	if i := strings.LastIndexByte(code, '.'); i >= 0 {
		return code[i+1:]
	}
	return code
}

// retryableCodes are the request-level codes that sending again later can cure.
var retryableCodes = map[string]bool{"0999": true, "0250": true}

func classify(status int, code, msg string) *Error {
	s := suffix(code)
	retry := retryableCodes[s] || (retryableStatus(status) && !terminalCodes[s])
	return &Error{HTTPStatus: status, Code: code, Message: msg, Retryable: retry}
}

// terminalCodes are refusals of the request itself that only a change of configuration or code cures: the
// signature (0102, 0154), credentials (0151), parameters (0100, 0101, 0199), the batch size (9003).
var terminalCodes = map[string]bool{"0100": true, "0101": true, "0102": true, "0150": true, "0151": true,
	"0154": true, "0199": true, "9002": true, "9003": true}

func retryableStatus(status int) bool {
	return status >= 500 || status == http.StatusTooManyRequests || status == http.StatusRequestTimeout
}

// transportError classifies a push that got no answer: an untrusted certificate is terminal, anything else
// (refused connection, timeout, reset) may be retried. The records may have arrived; their metering_sn makes a
// second push harmless.
func transportError(err error) error {
	var unknownCA x509.UnknownAuthorityError
	var hostname x509.HostnameError
	var invalid x509.CertificateInvalidError
	var verify *tls.CertificateVerificationError
	if errors.As(err, &unknownCA) || errors.As(err, &hostname) || errors.As(err, &invalid) || errors.As(err, &verify) {
		return &Error{Code: "TLS", Message: "the marketplace's TLS certificate is not trusted: " + err.Error()}
	}
	return &Error{Code: "TRANSPORT", Message: err.Error(), Retryable: true}
}

func snippet(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}
