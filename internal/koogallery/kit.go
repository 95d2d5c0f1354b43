package koogallery

import (
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Header names of a signed Kit request (docs/koogallery.md, "Kit interfaces"): the joint-operation sync
// endpoints carry their credentials in headers, not in the query string.
const (
	HeaderKitSign      = "x-sign"
	HeaderKitTimestamp = "x-timestamp"
	HeaderKitNonce     = "x-nonce"
)

// MaxKitBodyBytes bounds a Kit request body: an authSync carries up to 500 users, each a few hundred bytes.
const MaxKitBodyBytes = 1 << 20

// VerifyKit checks the x-sign, x-timestamp and x-nonce headers of a Kit request against the body
// (docs/koogallery.md, "Kit interfaces"): x-sign = hex(HMAC(accessKey, accessKey + nonce + timestamp + payload))
// over the canonical payload, with the same readings of the payload and the same timestamp window as Verify. Like
// Verify it leaves the nonce's freshness to the caller's shared replay cache.
func (v Verifier) VerifyKit(h http.Header, body *Body) (Credentials, error) {
	one := func(name string) (string, error) {
		vals := h.Values(name)
		switch {
		case len(vals) == 0 || vals[0] == "":
			return "", &AuthError{VerdictMissing, "the header " + name + " is missing"}
		case len(vals) > 1:
			return "", &AuthError{VerdictMissing, "the header " + name + " appears more than once"}
		}
		return strings.TrimSpace(vals[0]), nil
	}
	sig, err := one(HeaderKitSign)
	if err != nil {
		return Credentials{}, err
	}
	tsText, err := one(HeaderKitTimestamp)
	if err != nil {
		return Credentials{}, err
	}
	nonce, err := one(HeaderKitNonce)
	if err != nil {
		return Credentials{}, err
	}
	return v.check(signatureScheme{sig: "x-sign", ts: "x-timestamp", sign: KitSignature}, body, sig, tsText, nonce)
}

// SignKit signs body as the marketplace signs a Kit call and returns the three headers to send. It is what
// kooflow uses when it plays the marketplace (tests, emulator).
func SignKit(accessKey string, body []byte, now time.Time, nonce string) (http.Header, error) {
	payload, err := Canonical(body)
	if err != nil {
		return nil, err
	}
	ts := strconv.FormatInt(now.UnixMilli(), 10)
	h := http.Header{}
	h.Set(HeaderKitSign, KitSignature(accessKey, payload, nonce, ts))
	h.Set(HeaderKitTimestamp, ts)
	h.Set(HeaderKitNonce, nonce)
	return h, nil
}
