package orderquery

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"time"

	"github.com/huaweicloud/huaweicloud-sdk-go-v3/core/auth/signer"
	"github.com/huaweicloud/huaweicloud-sdk-go-v3/core/request"
	"go.opentelemetry.io/otel/attribute"

	"github.com/kooflow/kooflow/internal/config"
	"github.com/kooflow/kooflow/internal/koogallery"
	"github.com/kooflow/kooflow/internal/tracing"
)

// Path is the order query API's path on the marketplace host (docs/koogallery.md, "Order query").
const Path = "/api/mkp-openapi-public/global/v1/order/query"

// maxResponseBytes bounds what is read from the marketplace; an order is a few KiB.
const maxResponseBytes = 1 << 20

// Options configure a Client.
type Options struct {
	// Endpoint is the marketplace API's base URL, https only, e.g. https://mkt.myhuaweicloud.com.
	Endpoint string
	// AK and SK are the seller's access key pair for the marketplace's open APIs.
	AK, SK config.Secret
	// CAFile, if set, is a PEM bundle trusted in addition to the system roots (the local emulator's CA).
	// Certificate verification is never turned off.
	CAFile string
	// HTTPClient replaces the client built from CAFile and Timeout; tests use it.
	HTTPClient *http.Client
	// Timeout bounds one request; 10 s if zero.
	Timeout time.Duration
	// Now is the clock for X-Sdk-Date; time.Now if nil.
	Now func() time.Time
}

// Client queries orders with AK/SK ("SDK-HMAC-SHA256") signatures, using Huawei's own signer.
type Client struct {
	base    *url.URL
	ak, sk  config.Secret
	http    *http.Client
	timeout time.Duration
	now     func() time.Time
}

var _ Querier = (*Client)(nil)

// NewClient checks the options and builds a client.
func NewClient(o Options) (*Client, error) {
	u, err := url.Parse(strings.TrimRight(o.Endpoint, "/"))
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("order query: endpoint %q is not a URL like https://mkt.myhuaweicloud.com", o.Endpoint)
	}
	if u.Scheme != "https" {
		return nil, fmt.Errorf("order query: endpoint %q must use https (the marketplace serves its APIs over TLS only)", o.Endpoint)
	}
	if o.AK == "" || o.SK == "" {
		return nil, errors.New("order query: the access key pair is incomplete (set " + config.EnvMarketAK + " and " + config.EnvMarketSK + ")")
	}
	c := &Client{base: u, ak: o.AK, sk: o.SK, http: o.HTTPClient, timeout: o.Timeout, now: o.Now}
	if c.timeout <= 0 {
		c.timeout = 10 * time.Second
	}
	if c.now == nil {
		c.now = time.Now
	}
	if c.http == nil {
		hc, err := koogallery.HTTPClient(o.CAFile)
		if err != nil {
			return nil, fmt.Errorf("order query: %w", err)
		}
		c.http = hc
	}
	return c, nil
}

// QueryOrder fetches one order (and, if orderLineID is set, only that line), in a client span (tracing) whose
// attributes name the order, the marketplace's host and its answer, never the AK/SK or the signature.
func (c *Client) QueryOrder(ctx context.Context, orderID, orderLineID string) (info *OrderInfo, err error) {
	ctx, span := tracing.StartClient(ctx, "koogallery order query",
		attribute.String("koogallery.order_id", orderID), attribute.String("koogallery.order_line_id", orderLineID),
		attribute.String("http.request.method", http.MethodGet), attribute.String("server.address", c.base.Host),
		attribute.String("url.path", strings.TrimRight(c.base.Path, "/")+Path))
	defer func() {
		var qe *Error
		if errors.As(err, &qe) {
			if qe.HTTPStatus != 0 {
				span.SetAttributes(attribute.Int("http.response.status_code", qe.HTTPStatus))
			}
			span.SetAttributes(attribute.String("koogallery.result_code", qe.Code), attribute.Bool("kooflow.retryable", qe.Retryable))
		} else if err == nil {
			span.SetAttributes(attribute.Int("http.response.status_code", http.StatusOK))
		}
		tracing.End(span, err)
	}()
	return c.queryOrder(ctx, orderID, orderLineID)
}

func (c *Client) queryOrder(ctx context.Context, orderID, orderLineID string) (*OrderInfo, error) {
	if orderID == "" {
		return nil, &Error{Code: "INVALID", Message: "orderId is required", Retryable: false}
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()

	query := url.Values{"orderId": {orderID}}
	if orderLineID != "" {
		query.Set("orderLineId", orderLineID)
	}
	u := *c.base
	u.Path = strings.TrimRight(u.Path, "/") + Path
	u.RawQuery = query.Encode()
	headers, err := SignHeaders(http.MethodGet, &u, nil, nil, c.ak.Reveal(), c.sk.Reveal(), c.now(), true)
	if err != nil {
		return nil, &Error{Code: "SIGN", Message: err.Error(), Retryable: false}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, &Error{Code: "INVALID", Message: err.Error(), Retryable: false}
	}
	req.Header.Set("Accept", "application/json")
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, transportError(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	if err != nil {
		return nil, fmt.Errorf("order query: read the answer (HTTP %d): %w", resp.StatusCode, err)
	}
	return decode(resp.StatusCode, body, orderID)
}

// SignHeaders returns the headers that sign a request with AK/SK: X-Sdk-Date and Authorization. The signature
// is computed by Huawei's SDK signer over the method, path, query, the given headers, X-Sdk-Date, and (when
// signHost) Host, and over the body's SHA-256. Content-Type is never signed, as in the SDK.
func SignHeaders(method string, u *url.URL, headers map[string]string, body []byte, ak, sk string, at time.Time, signHost bool) (map[string]string, error) {
	b := request.NewHttpRequestBuilder().
		WithMethod(method).
		WithEndpoint(u.Scheme + "://" + u.Host).
		WithPath(u.Path)
	for k, vs := range u.Query() {
		for _, v := range vs {
			// The SDK signer reads query values as reflect.Values and skips anything else.
			b.AddQueryParam(k, reflect.ValueOf(v))
		}
	}
	for k, v := range headers {
		b.AddHeaderParam(k, v)
	}
	if signHost {
		b.AddHeaderParam("Host", u.Host)
	}
	b.AddHeaderParam(signer.HeaderXDate, at.UTC().Format(signer.BasicDateFormat))
	if body != nil {
		b.WithBody("body", string(body))
	}
	out, err := signer.Sign(b.Build(), ak, sk)
	if err != nil {
		return nil, err
	}
	return out, nil
}

// transportError classifies a failure to get an answer at all. A certificate the client does not trust is a
// configuration problem (or a forged marketplace) that retrying will not fix, so it is terminal; everything else
// (refused connection, timeout, reset) may be retried.
func transportError(err error) error {
	var unknownCA x509.UnknownAuthorityError
	var hostname x509.HostnameError
	var invalid x509.CertificateInvalidError
	var verify *tls.CertificateVerificationError
	if errors.As(err, &unknownCA) || errors.As(err, &hostname) || errors.As(err, &invalid) || errors.As(err, &verify) {
		return &Error{Code: "TLS", Message: "the marketplace's TLS certificate is not trusted: " + err.Error() +
			" (set " + config.EnvMarketCAFile + " only for a private CA such as the emulator's)", Retryable: false}
	}
	return fmt.Errorf("order query: %w", err)
}

// apigError is the API gateway's own error body (authentication, throttling), which precedes the marketplace's.
type apigError struct {
	ErrorCode string `json:"error_code"`
	ErrorMsg  string `json:"error_msg"`
}

func decode(status int, body []byte, orderID string) (*OrderInfo, error) {
	var r Response
	jsonErr := json.Unmarshal(body, &r)
	if jsonErr != nil || r.ResultCode == "" {
		var ae apigError
		if json.Unmarshal(body, &ae) == nil && ae.ErrorCode != "" {
			return nil, &Error{HTTPStatus: status, Code: ae.ErrorCode, Message: ae.ErrorMsg, Retryable: retryableStatus(status)}
		}
		return nil, &Error{HTTPStatus: status, Code: fmt.Sprintf("HTTP%d", status),
			Message: "the answer is not an order query response: " + snippet(body), Retryable: retryableStatus(status)}
	}
	if suffix(r.ResultCode) != "0000" {
		return nil, classify(status, r.ResultCode, r.ResultMsg)
	}
	if status != http.StatusOK {
		return nil, &Error{HTTPStatus: status, Code: r.ResultCode, Message: "success code with HTTP " + fmt.Sprint(status), Retryable: retryableStatus(status)}
	}
	if r.OrderInfo == nil {
		return nil, &Error{HTTPStatus: status, Code: r.ResultCode, Message: "the answer has no orderInfo", Retryable: false}
	}
	if r.OrderInfo.OrderID != orderID {
		return nil, &Error{HTTPStatus: status, Code: r.ResultCode,
			Message: fmt.Sprintf("asked for order %s, got order %s", orderID, r.OrderInfo.OrderID), Retryable: false}
	}
	return r.OrderInfo, nil
}

// suffix is the numeric part of MKT.xxxx / CBC.xxxx; both prefixes carry the same numbers (docs/koogallery.md,
// "Order query").
func suffix(code string) string {
	if i := strings.LastIndexByte(code, '.'); i >= 0 {
		return code[i+1:]
	}
	return code
}

// Retryable and terminal marketplace codes by numeric suffix (docs/koogallery.md, "Order query").
var (
	retryableCodes = map[string]string{
		"0999": "internal error",
		"0250": "request frequency over the limit",
	}
	terminalCodes = map[string]string{
		"0100": "input parameter failure",
		"0101": "invalid parameter",
		"0199": "request parameter error",
		"0150": "illegal operation (not this seller's order)",
		"0151": "no authority",
		"0154": "illegal token (check the AK/SK pair and the clock)",
		"9001": "not found",
	}
)

// classify maps a marketplace error code to a retryable or terminal Error; an unknown code is retryable only
// if the HTTP status says the fault is on the marketplace's side.
func classify(status int, code, msg string) *Error {
	s := suffix(code)
	if _, ok := retryableCodes[s]; ok {
		return &Error{HTTPStatus: status, Code: code, Message: msg, Retryable: true}
	}
	if _, ok := terminalCodes[s]; ok {
		return &Error{HTTPStatus: status, Code: code, Message: msg, Retryable: false}
	}
	return &Error{HTTPStatus: status, Code: code, Message: msg, Retryable: retryableStatus(status)}
}

func retryableStatus(status int) bool {
	return status >= 500 || status == http.StatusTooManyRequests || status == http.StatusRequestTimeout
}

func snippet(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}
