package gateway

import (
	"encoding/base64"
	"encoding/hex"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/gin-gonic/gin"

	"github.com/kooflow/kooflow/api/httpx"
	"github.com/kooflow/kooflow/internal/config"
	"github.com/kooflow/kooflow/internal/koogallery"
	"github.com/kooflow/kooflow/internal/store"
)

// mountConsole adds the message log to the console API (the group already requires a console token):
//
//	GET /console/v1/koogallery/messages       list, failed calls first, filters and keyset pagination
//	GET /console/v1/koogallery/messages/:id   one call with its raw request and response bytes
func mountConsole(console *httpx.Console, st *store.Store) {
	console.GET("/koogallery/messages", config.ScopeRead, listMessages(st))
	console.GET("/koogallery/messages/:id", config.ScopeRead, getMessage(st))
}

// MessageSummary is one row of the list.
type MessageSummary struct {
	ID           int64              `json:"id"`
	ReceivedAt   time.Time          `json:"receivedAt"`
	Activity     string             `json:"activity"`
	OrderID      string             `json:"orderId,omitempty"`
	OrderLineID  string             `json:"orderLineId,omitempty"`
	BusinessID   string             `json:"businessId,omitempty"`
	InstanceIDs  []string           `json:"instanceIds"`
	Scene        string             `json:"scene,omitempty"`
	Status       string             `json:"status,omitempty"`
	TestFlag     bool               `json:"testFlag"`
	Verification koogallery.Verdict `json:"verification"`
	ResultCode   string             `json:"resultCode"`
	ResultMsg    string             `json:"resultMsg"`
	Failed       bool               `json:"failed"`
	LatencyMs    float64            `json:"latencyMs"`
	RemoteAddr   string             `json:"remoteAddr"`
	RequestID    string             `json:"requestId"`
	// TraceID is the call's trace id when tracing is on: the way from this message to its trace.
	TraceID string `json:"traceId,omitempty"`
}

func summarize(m *store.Message) MessageSummary {
	ids := m.InstanceIDs
	if ids == nil {
		ids = []string{}
	}
	return MessageSummary{
		ID: m.ID, ReceivedAt: m.ReceivedAt, Activity: m.Activity, OrderID: m.OrderID, OrderLineID: m.OrderLineID,
		BusinessID: m.BusinessID, InstanceIDs: ids, Scene: m.Scene, Status: m.Status, TestFlag: m.TestFlag,
		Verification: m.Verification, ResultCode: m.ResultCode, ResultMsg: m.ResultMsg, Failed: m.Failed,
		LatencyMs: float64(m.Latency.Microseconds()) / 1000, RemoteAddr: m.RemoteAddr, RequestID: m.RequestID,
		TraceID: m.TraceID,
	}
}

// MessagePage is the list response.
type MessagePage struct {
	Items []MessageSummary `json:"items"`
	// NextCursor, when present, fetches the next page (?cursor=...).
	NextCursor string `json:"nextCursor,omitempty"`
}

// MessageDetail is one call in full. Bodies are given as text when they are valid UTF-8, and always as Base64,
// so the exact bytes (which the signatures cover) can be recovered.
type MessageDetail struct {
	MessageSummary
	ForwardedFor      string              `json:"forwardedFor,omitempty"`
	Method            string              `json:"method"`
	Path              string              `json:"path"`
	RawQuery          string              `json:"rawQuery"`
	Headers           map[string][]string `json:"headers"`
	RequestBody       *string             `json:"requestBody"`
	RequestBodyBase64 string              `json:"requestBodyBase64"`
	// RequestBodySize and RequestBodySHA256 (hex) describe the body as received. For a call that failed
	// verification only its first 1 KiB is kept (RequestBodyTruncated) and no headers.
	RequestBodySize      int     `json:"requestBodySize"`
	RequestBodySHA256    string  `json:"requestBodySha256,omitempty"`
	RequestBodyTruncated bool    `json:"requestBodyTruncated"`
	HeadersSize          int     `json:"headersSize"`
	ErrorDetail          string  `json:"errorDetail,omitempty"`
	HTTPStatus           int     `json:"httpStatus"`
	ResponseBody         *string `json:"responseBody"`
	ResponseBodyBase64   string  `json:"responseBodyBase64"`
	// The response body above has credentials redacted; ResponseSHA256 (hex) is the hash of the bytes sent.
	ResponseSHA256 string `json:"responseSha256,omitempty"`
	BodySign       string `json:"bodySign"`
}

func text(b []byte) *string {
	if !utf8.Valid(b) {
		return nil
	}
	s := string(b)
	return &s
}

// listMessages: GET /koogallery/messages?activity=&resultCode=&failed=true&instanceId=&orderId=&from=&to=&limit=&cursor=
func listMessages(st *store.Store) gin.HandlerFunc {
	return func(c *gin.Context) {
		var f store.MessageFilter
		var problems []httpx.FieldError
		bad := func(field, detail string) {
			problems = append(problems, httpx.FieldError{Field: field, Detail: detail})
		}
		f.Activity = c.Query("activity")
		// The Kit endpoints log into the same message log under their call names.
		if f.Activity != "" && !slices.Contains(koogallery.Activities(), f.Activity) && !slices.Contains(config.KitCalls, f.Activity) {
			bad("activity", "not one of the production interface's activities or Kit calls")
		}
		f.ResultCode = c.Query("resultCode")
		if f.ResultCode != "" && (len(f.ResultCode) != 6 || !isDigits(f.ResultCode)) {
			bad("resultCode", "must be a six-digit result code such as 000001")
		}
		if v := c.Query("failed"); v != "" {
			b, err := strconv.ParseBool(v)
			if err != nil {
				bad("failed", "must be true or false")
			}
			f.FailedOnly = b
		}
		f.InstanceID = c.Query("instanceId")
		f.OrderID = c.Query("orderId")
		for _, p := range []struct {
			name string
			dst  *time.Time
		}{{"from", &f.From}, {"to", &f.To}} {
			if v := c.Query(p.name); v != "" {
				t, err := time.Parse(time.RFC3339Nano, v)
				if err != nil {
					bad(p.name, "must be an RFC 3339 time such as 2026-11-21T08:00:00Z")
				}
				*p.dst = t
			}
		}
		if !f.From.IsZero() && !f.To.IsZero() && !f.From.Before(f.To) {
			bad("to", "must be after from")
		}
		if v := c.Query("limit"); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > 500 {
				bad("limit", "must be a whole number from 1 to 500")
			}
			f.Limit = n
		}
		if v := c.Query("cursor"); v != "" {
			var cur store.MessageCursor
			if err := store.DecodeCursor(v, &cur); err != nil || cur.ID <= 0 {
				bad("cursor", store.ErrBadCursor.Error())
			}
			f.After = &cur
		}
		if len(problems) > 0 {
			httpx.WriteProblem(c, http.StatusBadRequest, "the message filter is invalid", problems...)
			return
		}
		msgs, next, err := st.ListMessages(c.Request.Context(), f)
		if err != nil {
			httpx.Log(c).Error("list production-interface messages", "err", err)
			httpx.WriteProblem(c, http.StatusInternalServerError, "the message log could not be read; see the server log for request "+httpx.RequestID(c))
			return
		}
		page := MessagePage{Items: make([]MessageSummary, 0, len(msgs))}
		for _, m := range msgs {
			page.Items = append(page.Items, summarize(m))
		}
		if next != nil {
			page.NextCursor = store.EncodeCursor(next)
		}
		c.JSON(http.StatusOK, page)
	}
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

func getMessage(st *store.Store) gin.HandlerFunc {
	return func(c *gin.Context) {
		id, err := strconv.ParseInt(c.Param("id"), 10, 64)
		if err != nil || id <= 0 {
			httpx.WriteProblem(c, http.StatusBadRequest, "the message id must be a positive whole number",
				httpx.FieldError{Field: "id", Detail: "not a message id"})
			return
		}
		m, err := st.GetMessage(c.Request.Context(), id)
		if errors.Is(err, store.ErrNoMessage) {
			httpx.WriteProblem(c, http.StatusNotFound, "no production-interface message "+c.Param("id"))
			return
		}
		if err != nil {
			httpx.Log(c).Error("read production-interface message", "id", id, "err", err)
			httpx.WriteProblem(c, http.StatusInternalServerError, "the message could not be read; see the server log for request "+httpx.RequestID(c))
			return
		}
		headers := m.Headers
		if headers == nil {
			headers = map[string][]string{}
		}
		c.JSON(http.StatusOK, MessageDetail{
			MessageSummary: summarize(m),
			ForwardedFor:   m.ForwardedFor, Method: m.Method, Path: m.Path, RawQuery: m.RawQuery, Headers: headers,
			RequestBody: text(m.RawBody), RequestBodyBase64: base64.StdEncoding.EncodeToString(m.RawBody),
			ErrorDetail: m.ErrorDetail, HTTPStatus: m.HTTPStatus,
			ResponseBody: text(m.ResponseBody), ResponseBodyBase64: base64.StdEncoding.EncodeToString(m.ResponseBody),
			BodySign: m.BodySign, RequestBodySize: m.BodySize, RequestBodySHA256: hex.EncodeToString(m.BodySHA256),
			RequestBodyTruncated: m.BodyTruncated, HeadersSize: m.HeadersSize, ResponseSHA256: hex.EncodeToString(m.ResponseSHA256),
		})
	}
}

// mountInboxConsole shows the newInstance inbox: GET /console/v1/koogallery/inbox?pending=true lists the orders
// whose workflow start is still waiting (with attempts and the last error), which is where a Temporal outage
// shows up first.
func mountInboxConsole(console *httpx.Console, st *store.Store) {
	console.GET("/koogallery/inbox", config.ScopeRead, func(c *gin.Context) {
		limit := 100
		if v := c.Query("limit"); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > 1000 {
				httpx.WriteProblem(c, http.StatusBadRequest, "limit must be an integer from 1 to 1000",
					httpx.FieldError{Field: "limit", Detail: "got " + v})
				return
			}
			limit = n
		}
		pending := c.Query("pending") == "true"
		rows, err := st.ListInbox(c.Request.Context(), pending, limit)
		if err != nil {
			httpx.Log(c).Error("list inbox", "err", err)
			httpx.WriteProblem(c, http.StatusInternalServerError, "could not read the inbox")
			return
		}
		if rows == nil {
			rows = []store.InboxRow{}
		}
		c.JSON(http.StatusOK, gin.H{"items": rows})
	})
}
