// Package sign is the marketplace's half of KooGallery's message signing, written from the marketplace's
// contract (docs/koogallery.md, "Request signature", "Response signature", "Other signature schemes") and checked
// against its test vectors ("Test vectors") only. It deliberately shares no code with kooflow's gateway: the
// emulator and the seller must agree because both follow the contract, not because they call the same function,
// so a bug on one side shows up as a failed delivery instead of being hidden.
package sign

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
)

func hmacSHA256(key, msg []byte) []byte {
	h := hmac.New(sha256.New, key)
	h.Write(msg)
	return h.Sum(nil)
}

// CanonicalPayload is the "RequestPayload" (docs/koogallery.md, "Canonical payload") as Huawei's V2 demo builds
// it: the body parsed as a flat map of strings, top-level keys sorted ascending, null entries dropped, written
// compactly with HTML characters left unescaped. Numbers and booleans become strings, as they do when the demo
// reads the body into a Map<String,String>. Nested objects (changeInstanceCheck's productInfo) keep their own
// bytes, compacted; the emulator always writes them with sorted keys so the ambiguity docs/koogallery.md notes
// ("Canonical payload") never arises.
func CanonicalPayload(body []byte) ([]byte, error) {
	var m map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("canonical payload: body is not a JSON object: %w", err)
	}
	keys := make([]string, 0, len(m))
	for k, v := range m {
		if bytes.Equal(bytes.TrimSpace(v), []byte("null")) {
			continue
		}
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var out bytes.Buffer
	out.WriteByte('{')
	for i, k := range keys {
		if i > 0 {
			out.WriteByte(',')
		}
		writeString(&out, k)
		out.WriteByte(':')
		v := bytes.TrimSpace(m[k])
		switch {
		case len(v) > 0 && v[0] == '"':
			var s string
			if err := json.Unmarshal(v, &s); err != nil {
				return nil, fmt.Errorf("canonical payload: field %s: %w", k, err)
			}
			writeString(&out, s)
		case len(v) > 0 && (v[0] == '{' || v[0] == '['):
			var c bytes.Buffer
			if err := json.Compact(&c, v); err != nil {
				return nil, fmt.Errorf("canonical payload: field %s: %w", k, err)
			}
			out.Write(c.Bytes())
		default: // number, true, false
			writeString(&out, string(v))
		}
	}
	out.WriteByte('}')
	return out.Bytes(), nil
}

// writeString writes s as a JSON string the way Jackson does: raw UTF-8, no HTML escaping.
func writeString(buf *bytes.Buffer, s string) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s) // a string always encodes
	buf.Write(bytes.TrimRight(b.Bytes(), "\n"))
}

// RequestSignature computes the V2 production-interface signature (docs/koogallery.md, "Request signature"):
// hex(HMAC(ak, ak + nonce + timestamp + hex(HMAC(ak, RequestPayload)))).
func RequestSignature(accessKey string, body []byte, nonce, timestamp string) (string, error) {
	payload, err := CanonicalPayload(body)
	if err != nil {
		return "", err
	}
	key := []byte(accessKey)
	inner := hex.EncodeToString(hmacSHA256(key, payload))
	return hex.EncodeToString(hmacSHA256(key, []byte(accessKey+nonce+timestamp+inner))), nil
}

// Nonce returns a fresh 64-character upper-case hex nonce, the form the documented examples show.
func Nonce() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("nonce: %w", err)
	}
	return strings.ToUpper(hex.EncodeToString(b)), nil
}

// Timestamp formats t as the V2 timestamp: Unix epoch milliseconds.
func Timestamp(t time.Time) string { return strconv.FormatInt(t.UnixMilli(), 10) }

// SignedQuery returns the query string a V2 call carries: signature, timestamp and nonce, with a fresh nonce.
func SignedQuery(accessKey string, body []byte, now time.Time) (query string, err error) {
	nonce, err := Nonce()
	if err != nil {
		return "", err
	}
	ts := Timestamp(now)
	sig, err := RequestSignature(accessKey, body, nonce, ts)
	if err != nil {
		return "", err
	}
	return "signature=" + sig + "&timestamp=" + ts + "&nonce=" + nonce, nil
}

// BodySign is the Base64 HMAC-SHA256 of the exact response bytes under the access key (docs/koogallery.md,
// "Response signature").
func BodySign(accessKey string, body []byte) string {
	return base64.StdEncoding.EncodeToString(hmacSHA256([]byte(accessKey), body))
}

// BodySignHeader is the full Body-Sign header value, byte for byte as the documented example (with the space after
// "signature=").
func BodySignHeader(accessKey string, body []byte) string {
	return `sign_type="HMAC-SHA256", signature= "` + BodySign(accessKey, body) + `"`
}

// ErrBodySign is returned by VerifyBodySign for a missing, malformed or wrong Body-Sign header.
var ErrBodySign = errors.New("Body-Sign")

// VerifyBodySign checks a seller response's Body-Sign header against the exact bytes received. The parser accepts
// optional spaces around "=" and around the comma but insists on sign_type HMAC-SHA256 and a quoted signature.
func VerifyBodySign(accessKey string, body []byte, header string) error {
	if strings.TrimSpace(header) == "" {
		return fmt.Errorf("%w: header missing", ErrBodySign)
	}
	params := map[string]string{}
	for _, part := range strings.Split(header, ",") {
		name, value, ok := strings.Cut(part, "=")
		if !ok {
			return fmt.Errorf("%w: malformed header %q", ErrBodySign, header)
		}
		value = strings.TrimSpace(value)
		if len(value) < 2 || value[0] != '"' || value[len(value)-1] != '"' {
			return fmt.Errorf("%w: %s is not quoted in %q", ErrBodySign, strings.TrimSpace(name), header)
		}
		params[strings.TrimSpace(name)] = value[1 : len(value)-1]
	}
	if params["sign_type"] != "HMAC-SHA256" {
		return fmt.Errorf("%w: sign_type %q, want HMAC-SHA256", ErrBodySign, params["sign_type"])
	}
	got, err := base64.StdEncoding.DecodeString(params["signature"])
	if err != nil {
		return fmt.Errorf("%w: signature is not Base64: %v", ErrBodySign, err)
	}
	if subtle.ConstantTimeCompare(got, hmacSHA256([]byte(accessKey), body)) != 1 {
		return fmt.Errorf("%w: signature does not match the response body", ErrBodySign)
	}
	return nil
}

// SortedJSON re-serialises a JSON document with object keys sorted at every level ("natural order",
// docs/koogallery.md, "Usage push"), compact, numbers kept exactly as written.
func SortedJSON(body []byte) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("sorted JSON: %w", err)
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil { // maps marshal with sorted keys
		return nil, fmt.Errorf("sorted JSON: %w", err)
	}
	return bytes.TrimRight(b.Bytes(), "\n"), nil
}

// UsageSignature is the usage-push header signature (docs/koogallery.md, "Other signature schemes"):
// Base64(HMAC-SHA256(sellerKey, "ts={ts}&nonce={nonce}&body={body in natural key order}")).
func UsageSignature(sellerKey, ts, nonce string, body []byte) (string, error) {
	sorted, err := SortedJSON(body)
	if err != nil {
		return "", err
	}
	msg := "ts=" + ts + "&nonce=" + nonce + "&body=" + string(sorted)
	return base64.StdEncoding.EncodeToString(hmacSHA256([]byte(sellerKey), []byte(msg))), nil
}

// VerifyUsageSignature checks a usage push's signature header. It accepts a signature over the sorted body or
// over the raw bytes (both are HMACs under the secret key, so accepting either weakens nothing).
func VerifyUsageSignature(sellerKey, ts, nonce, signature string, body []byte) error {
	got, err := base64.StdEncoding.DecodeString(strings.TrimSpace(signature))
	if err != nil {
		return fmt.Errorf("usage signature is not Base64: %w", err)
	}
	want, err := UsageSignature(sellerKey, ts, nonce, body)
	if err != nil {
		return err
	}
	w, _ := base64.StdEncoding.DecodeString(want)
	if subtle.ConstantTimeCompare(got, w) == 1 {
		return nil
	}
	raw := hmacSHA256([]byte(sellerKey), []byte("ts="+ts+"&nonce="+nonce+"&body="+string(body)))
	if subtle.ConstantTimeCompare(got, raw) == 1 {
		return nil
	}
	return errors.New("usage signature does not match")
}

// KitCanonicalPayload is the RequestPayload of the Kit interfaces (docs/koogallery.md, "Kit interfaces"): like
// CanonicalPayload, but numbers and booleans stay unquoted (Kit bodies carry real integers, flag and testFlag).
func KitCanonicalPayload(body []byte) ([]byte, error) {
	var m map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("kit payload: body is not a JSON object: %w", err)
	}
	keys := make([]string, 0, len(m))
	for k, v := range m {
		if !bytes.Equal(bytes.TrimSpace(v), []byte("null")) {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	var out bytes.Buffer
	out.WriteByte('{')
	for i, k := range keys {
		if i > 0 {
			out.WriteByte(',')
		}
		writeString(&out, k)
		out.WriteByte(':')
		v := bytes.TrimSpace(m[k])
		if len(v) > 0 && v[0] == '"' {
			var s string
			if err := json.Unmarshal(v, &s); err != nil {
				return nil, fmt.Errorf("kit payload: field %s: %w", k, err)
			}
			writeString(&out, s)
			continue
		}
		var c bytes.Buffer
		if err := json.Compact(&c, v); err != nil {
			return nil, fmt.Errorf("kit payload: field %s: %w", k, err)
		}
		out.Write(c.Bytes())
	}
	out.WriteByte('}')
	return out.Bytes(), nil
}

// KitSignature is the x-sign header of a Kit call: hex(HMAC(ak, ak + x-nonce + x-timestamp + RequestPayload)),
// without the inner HMAC of the production interface.
func KitSignature(accessKey string, body []byte, nonce, timestamp string) (string, error) {
	payload, err := KitCanonicalPayload(body)
	if err != nil {
		return "", err
	}
	return hex.EncodeToString(hmacSHA256([]byte(accessKey), []byte(accessKey+nonce+timestamp+string(payload)))), nil
}
