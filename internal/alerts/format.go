// Package alerts delivers kooflow's alerts to a person: it watches the read model for conditions that threaten a
// marketplace deadline (a purchase not provisioned in time, a parked step) and pushes every alert, once when
// raised and once when resolved, to a webhook in the format of the bot that receives it (generic JSON, DingTalk,
// Feishu or WeCom). The worker process runs it (cmd/kooflow); it never blocks a workflow: alerts are rows the
// workflows write, and the pusher reads them afterwards.
package alerts

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/kooflow/kooflow/internal/store"
)

// Format is a webhook body format (KOOFLOW_ALERT_WEBHOOK_FORMAT).
type Format string

// The formats: a generic JSON document, and the custom-bot message formats of DingTalk (markdown), Feishu/Lark
// (text) and WeCom (markdown).
const (
	FormatJSON     Format = "json"
	FormatDingTalk Format = "dingtalk"
	FormatFeishu   Format = "feishu"
	FormatWeCom    Format = "wecom"
)

// ParseFormat reads a format name; "" is json.
func ParseFormat(s string) (Format, error) {
	switch f := Format(strings.ToLower(strings.TrimSpace(s))); f {
	case "":
		return FormatJSON, nil
	case FormatJSON, FormatDingTalk, FormatFeishu, FormatWeCom:
		return f, nil
	}
	return "", fmt.Errorf("alert webhook format %q: want json, dingtalk, feishu or wecom", s)
}

// Message is the generic JSON body (format json).
type Message struct {
	Event      string          `json:"event"` // raised | resolved
	Kind       string          `json:"kind"`
	InstanceID string          `json:"instanceId"`
	Subject    string          `json:"subject,omitempty"` // a system alert's subject (no instance)
	OrderID    string          `json:"orderId,omitempty"`
	Key        string          `json:"key"`
	Message    string          `json:"message"`
	RaisedAt   time.Time       `json:"raisedAt"`
	ResolvedAt *time.Time      `json:"resolvedAt,omitempty"`
	Detail     json.RawMessage `json:"detail,omitempty"`
	Source     string          `json:"source"`
}

func event(p store.AlertPush) string {
	if p.Resolved {
		return "resolved"
	}
	return "raised"
}

// title is the one-line summary bots show in notifications.
func title(p store.AlertPush) string {
	return fmt.Sprintf("[kooflow] %s %s", p.Kind, event(p))
}

// lines is the alert as a few human lines (markdown-safe enough for the bots' markdown subsets).
func lines(p store.AlertPush) []string {
	out := []string{p.Message, "", "instance: " + p.InstanceID}
	if p.System() {
		out[2] = "subject: " + p.Subject
	}
	if p.OrderID != "" {
		out = append(out, "order: "+p.OrderID)
	}
	out = append(out, "raised: "+p.RaisedAt.UTC().Format(time.RFC3339))
	if p.ResolvedAt != nil {
		out = append(out, "resolved: "+p.ResolvedAt.UTC().Format(time.RFC3339))
	}
	return out
}

// Body renders one delivery in format f.
func Body(f Format, p store.AlertPush) ([]byte, error) {
	var v any
	switch f {
	case FormatDingTalk:
		text := "### " + title(p) + "\n\n" + strings.Join(lines(p)[:1], "") + "\n\n- " + strings.Join(lines(p)[2:], "\n- ")
		v = map[string]any{"msgtype": "markdown", "markdown": map[string]string{"title": title(p), "text": text}}
	case FormatFeishu:
		v = map[string]any{"msg_type": "text", "content": map[string]string{"text": title(p) + "\n" + strings.Join(lines(p), "\n")}}
	case FormatWeCom:
		content := "**" + title(p) + "**\n" + lines(p)[0] + "\n> " + strings.Join(lines(p)[2:], "\n> ")
		v = map[string]any{"msgtype": "markdown", "markdown": map[string]string{"content": content}}
	default:
		v = Message{Event: event(p), Kind: p.Kind, InstanceID: p.InstanceID, Subject: p.Subject, OrderID: p.OrderID, Key: p.Key,
			Message: p.Message, RaisedAt: p.RaisedAt.UTC(), ResolvedAt: p.ResolvedAt, Detail: p.Detail, Source: "kooflow"}
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encode alert %s/%s as %s: %w", p.InstanceID+p.Subject, p.Key, f, err)
	}
	return b, nil
}

// botError reads a bot's own verdict from a 2xx answer: DingTalk and WeCom answer {"errcode": 0}, Feishu
// {"code": 0} (older bots {"StatusCode": 0}); anything else non-zero is a refused message.
func botError(f Format, body []byte) error {
	if f == FormatJSON || len(body) == 0 {
		return nil
	}
	var r struct {
		ErrCode    *int   `json:"errcode"`
		ErrMsg     string `json:"errmsg"`
		Code       *int   `json:"code"`
		Msg        string `json:"msg"`
		StatusCode *int   `json:"StatusCode"`
	}
	if json.Unmarshal(body, &r) != nil {
		return nil
	}
	switch {
	case r.ErrCode != nil && *r.ErrCode != 0:
		return fmt.Errorf("the bot refused the message: errcode %d %s", *r.ErrCode, r.ErrMsg)
	case r.Code != nil && *r.Code != 0:
		return fmt.Errorf("the bot refused the message: code %d %s", *r.Code, r.Msg)
	case r.StatusCode != nil && *r.StatusCode != 0:
		return fmt.Errorf("the bot refused the message: StatusCode %d", *r.StatusCode)
	}
	return nil
}
