package koogallery

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"net/url"
	"strconv"
	"time"
)

// BodySignHeaderName is the response header carrying the seller's signature of the response body
// (docs/koogallery.md, "Response signature").
const BodySignHeaderName = "Body-Sign"

// Query parameter names of a signed V2 request (docs/koogallery.md, "Request signature").
const (
	ParamSignature = "signature"
	ParamTimestamp = "timestamp"
	ParamNonce     = "nonce"
)

func hmacSHA256(key string, msg ...[]byte) []byte {
	h := hmac.New(sha256.New, []byte(key))
	for _, m := range msg {
		h.Write(m)
	}
	return h.Sum(nil)
}

// RequestSignature computes the V2 request signature (docs/koogallery.md, "Request signature") over an already
// canonical payload: hex(HMAC(key, key + nonce + timestamp + hex(HMAC(key, payload)))), in lower case.
func RequestSignature(accessKey string, payload []byte, nonce, timestamp string) string {
	inner := hex.EncodeToString(hmacSHA256(accessKey, payload))
	return hex.EncodeToString(hmacSHA256(accessKey, []byte(accessKey+nonce+timestamp+inner)))
}

// BodySign is Base64(HMAC-SHA256(accessKey, body)) over the exact response bytes (docs/koogallery.md,
// "Response signature").
func BodySign(accessKey string, body []byte) string {
	return base64.StdEncoding.EncodeToString(hmacSHA256(accessKey, body))
}

// BodySignHeader is the full Body-Sign header value, byte for byte as the official example writes it,
// including the space after "signature=".
func BodySignHeader(accessKey string, body []byte) string {
	return `sign_type="HMAC-SHA256", signature= "` + BodySign(accessKey, body) + `"`
}

// NewNonce returns a fresh nonce in the marketplace's format: 64 upper-case hex characters.
func NewNonce() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on supported platforms
	return hexUpper(b)
}

func hexUpper(b []byte) string {
	const digits = "0123456789ABCDEF"
	out := make([]byte, 2*len(b))
	for i, c := range b {
		out[2*i] = digits[c>>4]
		out[2*i+1] = digits[c&0xF]
	}
	return string(out)
}

// SignQuery signs body as the marketplace does and returns the query parameters (signature, timestamp, nonce)
// to append to the production URL. It is what kooflow uses when it plays the marketplace: the load generator and
// tests. The signature is written in upper case like the documentation's examples, which also exercises the
// verifier's case-insensitive comparison.
func SignQuery(accessKey string, body []byte, now time.Time, nonce string) (url.Values, error) {
	payload, err := Canonical(body)
	if err != nil {
		return nil, err
	}
	ts := strconv.FormatInt(now.UnixMilli(), 10)
	sig := RequestSignature(accessKey, payload, nonce, ts)
	sigBytes, _ := hex.DecodeString(sig)
	return url.Values{
		ParamSignature: {hexUpper(sigBytes)},
		ParamTimestamp: {ts},
		ParamNonce:     {nonce},
	}, nil
}
