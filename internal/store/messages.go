package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/kooflow/kooflow/internal/koogallery"
)

// The message log (koogallery_messages): every inbound production-interface call as received and as answered,
// written before the answer leaves and never changed afterwards (a trigger refuses UPDATE and DELETE).

// Message is one inbound production-interface call as received and as answered.
type Message struct {
	ID           int64               `json:"id"`
	ReceivedAt   time.Time           `json:"receivedAt"`
	RequestID    string              `json:"requestId"`
	RemoteAddr   string              `json:"remoteAddr"`
	ForwardedFor string              `json:"forwardedFor,omitempty"`
	Method       string              `json:"method"`
	Path         string              `json:"path"`
	RawQuery     string              `json:"rawQuery"`
	Headers      map[string][]string `json:"headers"`
	RawBody      []byte              `json:"-"`
	// BodySize and BodySHA256 describe the body as received; RawBody is its first 1 KiB when BodyTruncated (a
	// call that failed verification). HeadersSize is the received headers' size, also when they are not kept.
	BodySize      int                `json:"bodySize"`
	BodySHA256    []byte             `json:"-"`
	BodyTruncated bool               `json:"bodyTruncated"`
	HeadersSize   int                `json:"headersSize"`
	Verification  koogallery.Verdict `json:"verification"`
	Activity      string             `json:"activity"`
	OrderID       string             `json:"orderId,omitempty"`
	OrderLineID   string             `json:"orderLineId,omitempty"`
	BusinessID    string             `json:"businessId,omitempty"`
	InstanceIDs   []string           `json:"instanceIds"`
	Scene         string             `json:"scene,omitempty"`
	Status        string             `json:"status,omitempty"`
	TestFlag      bool               `json:"testFlag"`
	ResultCode    string             `json:"resultCode"`
	ResultMsg     string             `json:"resultMsg"`
	ErrorDetail   string             `json:"errorDetail,omitempty"`
	Failed        bool               `json:"failed"`
	HTTPStatus    int                `json:"httpStatus"`
	// ResponseBody is the answer with credentials redacted (queryInstance's passwords); ResponseSHA256 is the
	// SHA-256 of the exact bytes sent, which BodySign also covers.
	ResponseBody   []byte        `json:"-"`
	ResponseSHA256 []byte        `json:"-"`
	BodySign       string        `json:"bodySign"`
	Latency        time.Duration `json:"-"`
	// TraceID is the call's OpenTelemetry trace id when tracing is on ("" otherwise).
	TraceID string `json:"traceId,omitempty"`
}

// AppendMessage stores m durably and sets its ID. Failed is not written: the table derives it from the result
// code.
func (s *Store) AppendMessage(ctx context.Context, m *Message) error {
	args, err := messageArgs(m)
	if err != nil {
		return err
	}
	err = s.insertMessage(ctx, m, args)
	if err != nil && noPartition(err) {
		// The month has no partition yet (the retention job creates them ahead; it may not have run): create it
		// and write again, rather than lose the message.
		if _, perr := s.EnsureMessagePartitions(ctx, m.ReceivedAt, 0); perr != nil {
			return fmt.Errorf("append to the message log: %w", perr)
		}
		err = s.insertMessage(ctx, m, args)
	}
	if err != nil {
		return fmt.Errorf("append to the message log: %w", err)
	}
	return nil
}

func (s *Store) insertMessage(ctx context.Context, m *Message, args []any) error {
	return s.Pool.QueryRow(ctx, insertMessageSQL, args...).Scan(&m.ID)
}

const insertMessageSQL = `
		INSERT INTO koogallery_messages (received_at, request_id, remote_addr, forwarded_for, method, path, raw_query,
			headers, raw_body, verification, activity, order_id, order_line_id, business_id, instance_ids, scene, status,
			test_flag, result_code, result_msg, error_detail, http_status, response_body, body_sign, latency_us,
			body_size, body_sha256, body_truncated, headers_size, response_sha256, trace_id)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22,
			$23, $24, $25, $26, $27, $28, $29, $30, $31)
		RETURNING id`

// messageArgs are insertMessageSQL's arguments for m.
func messageArgs(m *Message) ([]any, error) {
	headers, err := json.Marshal(m.Headers)
	if err != nil {
		return nil, fmt.Errorf("encode headers: %w", err)
	}
	ids := m.InstanceIDs
	if ids == nil {
		ids = []string{}
	}
	return []any{m.ReceivedAt.UTC(), m.RequestID, m.RemoteAddr, m.ForwardedFor, m.Method, m.Path, m.RawQuery,
		headers, emptyIfNil(m.RawBody), string(m.Verification), m.Activity, m.OrderID, m.OrderLineID, m.BusinessID, ids,
		m.Scene, m.Status, m.TestFlag, m.ResultCode, m.ResultMsg, m.ErrorDetail, m.HTTPStatus, emptyIfNil(m.ResponseBody),
		m.BodySign, m.Latency.Microseconds(), m.BodySize, m.BodySHA256, m.BodyTruncated, m.HeadersSize,
		m.ResponseSHA256, m.TraceID}, nil
}

// appendMessages stores ms in one transaction, sent in one round trip, and sets their IDs. If any fails, none
// is stored.
func (s *Store) appendMessages(ctx context.Context, ms []*Message) error {
	b := &pgx.Batch{}
	for _, m := range ms {
		args, err := messageArgs(m)
		if err != nil {
			return err
		}
		b.Queue(insertMessageSQL, args...).QueryRow(func(r pgx.Row) error { return r.Scan(&m.ID) })
	}
	// One pipeline ending in one Sync: PostgreSQL runs it as one implicit transaction, so it commits (and waits
	// for the disk) once for the whole batch, and an error in any insert rolls back all of them.
	if err := s.Pool.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("append %d messages: %w", len(ms), err)
	}
	return nil
}

// emptyIfNil keeps a nil body from becoming NULL in a NOT NULL bytea column.
func emptyIfNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// MessageFilter selects messages for the console list.
type MessageFilter struct {
	Activity   string
	ResultCode string
	FailedOnly bool
	InstanceID string
	OrderID    string
	From, To   time.Time // To is exclusive; zero means unbounded
	// Limit is the page size, 1 to 500; anything else means 50.
	Limit int
	// After, when set, starts the page after this position (the cursor ListMessages returned).
	After *MessageCursor
}

// MessageCursor is the keyset position after the last message of a page, in the list's order (failed first,
// newest first). It is handed out as a page token with EncodeCursor and read back with DecodeCursor.
type MessageCursor struct {
	Failed     bool      `json:"f"`
	ReceivedAt time.Time `json:"t"`
	ID         int64     `json:"i"`
}

const messageColumns = `id, received_at, request_id, remote_addr, forwarded_for, method, path, raw_query, headers,
	raw_body, verification, activity, order_id, order_line_id, business_id, instance_ids, scene, status, test_flag,
	result_code, result_msg, error_detail, failed, http_status, response_body, body_sign, latency_us, body_size,
	body_sha256, body_truncated, headers_size, response_sha256, trace_id`

func scanMessage(row pgx.Row) (*Message, error) {
	var m Message
	var headers []byte
	var verdict string
	var latency int64
	err := row.Scan(&m.ID, &m.ReceivedAt, &m.RequestID, &m.RemoteAddr, &m.ForwardedFor, &m.Method, &m.Path,
		&m.RawQuery, &headers, &m.RawBody, &verdict, &m.Activity, &m.OrderID, &m.OrderLineID, &m.BusinessID,
		&m.InstanceIDs, &m.Scene, &m.Status, &m.TestFlag, &m.ResultCode, &m.ResultMsg, &m.ErrorDetail, &m.Failed,
		&m.HTTPStatus, &m.ResponseBody, &m.BodySign, &latency, &m.BodySize, &m.BodySHA256, &m.BodyTruncated,
		&m.HeadersSize, &m.ResponseSHA256, &m.TraceID)
	if err != nil {
		return nil, err
	}
	m.Verification = koogallery.Verdict(verdict)
	m.Latency = time.Duration(latency) * time.Microsecond
	m.ReceivedAt = m.ReceivedAt.UTC()
	if len(headers) > 0 {
		if err := json.Unmarshal(headers, &m.Headers); err != nil {
			return nil, fmt.Errorf("decode stored headers of message %d: %w", m.ID, err)
		}
	}
	return &m, nil
}

// ListMessages returns one page of messages matching f, failed ones first, newest first, and the cursor of the
// next page (nil on the last page).
func (s *Store) ListMessages(ctx context.Context, f MessageFilter) ([]*Message, *MessageCursor, error) {
	var where []string
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return fmt.Sprintf("$%d", len(args))
	}
	if f.Activity != "" {
		where = append(where, "activity = "+arg(f.Activity))
	}
	if f.ResultCode != "" {
		where = append(where, "result_code = "+arg(f.ResultCode))
	}
	if f.FailedOnly {
		where = append(where, "failed")
	}
	if f.InstanceID != "" {
		where = append(where, "instance_ids @> ARRAY["+arg(f.InstanceID)+"]::text[]")
	}
	if f.OrderID != "" {
		where = append(where, "order_id = "+arg(f.OrderID))
	}
	if !f.From.IsZero() {
		where = append(where, "received_at >= "+arg(f.From.UTC()))
	}
	if !f.To.IsZero() {
		where = append(where, "received_at < "+arg(f.To.UTC()))
	}
	if f.After != nil {
		where = append(where, fmt.Sprintf("(failed, received_at, id) < (%s, %s, %s)",
			arg(f.After.Failed), arg(f.After.ReceivedAt.UTC()), arg(f.After.ID)))
	}
	limit := f.Limit
	if limit <= 0 || limit > 500 {
		limit = 50
	}
	q := "SELECT " + messageColumns + " FROM koogallery_messages"
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY failed DESC, received_at DESC, id DESC LIMIT " + arg(limit+1)
	rows, err := s.Pool.Query(ctx, q, args...)
	if err != nil {
		return nil, nil, fmt.Errorf("list messages: %w", err)
	}
	defer rows.Close()
	var out []*Message
	for rows.Next() {
		m, err := scanMessage(rows)
		if err != nil {
			return nil, nil, fmt.Errorf("list messages: %w", err)
		}
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("list messages: %w", err)
	}
	var next *MessageCursor
	if len(out) > limit {
		out = out[:limit]
		last := out[len(out)-1]
		next = &MessageCursor{Failed: last.Failed, ReceivedAt: last.ReceivedAt, ID: last.ID}
	}
	return out, next, nil
}

// ErrNoMessage is returned by GetMessage for an unknown id.
var ErrNoMessage = errors.New("no such message")

// GetMessage returns one message with its raw bytes, or ErrNoMessage.
func (s *Store) GetMessage(ctx context.Context, id int64) (*Message, error) {
	m, err := scanMessage(s.Pool.QueryRow(ctx, "SELECT "+messageColumns+" FROM koogallery_messages WHERE id = $1", id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, ErrNoMessage
	}
	if err != nil {
		return nil, fmt.Errorf("read message %d: %w", id, err)
	}
	return m, nil
}
