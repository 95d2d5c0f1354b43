package koogallery

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"
)

// Result codes the seller answers with (docs/koogallery.md, "Result codes").
const (
	ResultSuccess       = "000000"
	ResultAuthFailed    = "000001"
	ResultInvalidParams = "000002"
	ResultNotFound      = "000003"
	ResultInProgress    = "000004"
	ResultInternal      = "000005"
)

// Succeeded reports whether the marketplace treats code as success: 000000, and 000004 for newInstance (it then
// polls queryInstance).
func Succeeded(code string) bool { return code == ResultSuccess || code == ResultInProgress }

// AppInfo is how the customer reaches the provisioned service (docs/koogallery.md, "queryInstance"). V2
// sends userName and password as plain text (a reading: the V2 docs and the official demo do).
type AppInfo struct {
	FrontEndURL string `json:"frontEndUrl"`
	AdminURL    string `json:"adminUrl,omitempty"`
	UserName    string `json:"userName,omitempty"`
	Password    string `json:"password,omitempty"`
	Memo        string `json:"memo,omitempty"`
}

// Validate checks an appInfo against the marketplace's limits (what a provisioner answers for a create is
// checked with it): frontEndUrl is required when appInfo is given (docs/koogallery.md, "queryInstance").
func (a *AppInfo) Validate() error {
	if a == nil {
		return nil
	}
	if a.FrontEndURL == "" {
		return errors.New("appInfo.frontEndUrl is empty")
	}
	for _, f := range []struct {
		name string
		val  string
		max  int
	}{
		{"frontEndUrl", a.FrontEndURL, 512}, {"adminUrl", a.AdminURL, 512}, {"userName", a.UserName, 128},
		{"password", a.Password, 128}, {"memo", a.Memo, 1024},
	} {
		if len(f.val) > f.max {
			return fmt.Errorf("appInfo.%s is longer than %d characters", f.name, f.max)
		}
	}
	return nil
}

// InstanceInfo is one element of queryInstance's info.
type InstanceInfo struct {
	InstanceID string      `json:"instanceId"`
	AppInfo    *AppInfo    `json:"appInfo,omitempty"`
	UsageInfo  []UsageInfo `json:"usageInfo,omitempty"`
}

// UsageInfo is the live usage queryInstance reports for a pay-per-use instance or package (docs/koogallery.md,
// "queryInstance"): the cumulative usage (a package: the amount used) up to StatisticalTime.
type UsageInfo struct {
	// RelatedInstanceID is, for a package, the pay-per-use instance its usage belongs to.
	RelatedInstanceID string `json:"relatedInstanceId,omitempty"`
	// UsageValue is Double(12,4): written as a JSON number from the exact decimal, never through a float.
	UsageValue json.Number `json:"usageValue"`
	// StatisticalTime is UTC yyyyMMddHHmmssSSS.
	StatisticalTime string `json:"statisticalTime"`
}

// StatisticalTimeLayout is UsageInfo.StatisticalTime's format.
const StatisticalTimeLayout = "20060102150405.000"

// FormatStatisticalTime writes t in UTC as yyyyMMddHHmmssSSS.
func FormatStatisticalTime(t time.Time) string {
	s := t.UTC().Format(StatisticalTimeLayout)
	return s[:14] + s[15:]
}

// Response is the body of every answer. Field order follows the documentation's examples.
type Response struct {
	ResultCode string         `json:"resultCode"`
	ResultMsg  string         `json:"resultMsg,omitempty"`
	InstanceID string         `json:"instanceId,omitempty"`
	Info       []InstanceInfo `json:"info,omitempty"`
}

// maxResultMsg is resultMsg's documented limit (String(255)).
const maxResultMsg = 255

// Encode writes r as the exact bytes to send: compact JSON, HTML characters unescaped, and every non-ASCII
// character escaped as \uXXXX (the documentation's requirement for Chinese in memo, 中文 → \u4e2d\u6587), so the
// bytes are plain ASCII whatever the client's charset handling. Body-Sign must be computed over these bytes.
func Encode(r Response) []byte {
	r.ResultMsg = cut(r.ResultMsg, maxResultMsg)
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(r) // a Response of strings cannot fail to encode
	return asciiEscape(bytes.TrimSuffix(buf.Bytes(), []byte("\n")))
}

// asciiEscape replaces every non-ASCII character of a JSON text by its \uXXXX escape (a surrogate pair above
// U+FFFF). Outside strings JSON is ASCII, so the rewrite only ever touches string contents.
func asciiEscape(b []byte) []byte {
	const hexLower = "0123456789abcdef"
	i := 0
	for i < len(b) && b[i] < utf8.RuneSelf {
		i++
	}
	if i == len(b) {
		return b
	}
	out := make([]byte, 0, len(b)+len(b)/2)
	out = append(out, b[:i]...)
	put := func(r rune) {
		out = append(out, '\\', 'u', hexLower[r>>12&0xF], hexLower[r>>8&0xF], hexLower[r>>4&0xF], hexLower[r&0xF])
	}
	for i < len(b) {
		c := b[i]
		if c < utf8.RuneSelf {
			out = append(out, c)
			i++
			continue
		}
		r, size := utf8.DecodeRune(b[i:])
		i += size
		if r > 0xFFFF {
			r -= 0x10000
			put(0xD800 + (r>>10)&0x3FF)
			put(0xDC00 + r&0x3FF)
			continue
		}
		put(r)
	}
	return out
}
