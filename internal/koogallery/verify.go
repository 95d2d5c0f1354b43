package koogallery

import (
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Verdict is the outcome of authenticating one request, as recorded in the message log.
type Verdict string

const (
	VerdictOK          Verdict = "ok"
	VerdictNotChecked  Verdict = "not_checked"         // the body could not be read, so nothing was verified
	VerdictMissing     Verdict = "missing_credentials" // signature, timestamp or nonce absent or repeated
	VerdictMalformed   Verdict = "malformed_credentials"
	VerdictBadSig      Verdict = "bad_signature"
	VerdictStale       Verdict = "stale_timestamp"
	VerdictReplayed    Verdict = "replayed_nonce"
	VerdictUnavailable Verdict = "replay_check_unavailable" // the nonce store could not be reached
)

// AuthError is an authentication failure; the gateway answers it with ResultAuthFailed.
type AuthError struct {
	Verdict Verdict
	Detail  string // written for the person reading the message log, never reveals the expected signature
}

func (e *AuthError) Error() string {
	return "authentication failed (" + string(e.Verdict) + "): " + e.Detail
}

// Credentials are a request's verified signature parameters.
type Credentials struct {
	Nonce     string
	Timestamp time.Time
}

// Verifier authenticates V2 production-interface requests (docs/koogallery.md, "Request signature") with the
// seller's access key.
type Verifier struct {
	AccessKey string
	// Window is the accepted |now - timestamp|; Huawei's demo uses 60 s (docs/koogallery.md, "Timestamp window").
	Window time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// maxNonceLen bounds the nonce the replay cache stores; the marketplace sends 64 hex characters.
const maxNonceLen = 128

// Verify checks the signature, timestamp and nonce parameters of rawQuery against the body. It does not check
// that the nonce is fresh: that needs the shared replay cache, which the caller consults only after the
// signature matched, so forged requests cannot fill the cache.
func (v Verifier) Verify(rawQuery string, body *Body) (Credentials, error) {
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		return Credentials{}, &AuthError{VerdictMalformed, "the query string cannot be parsed: " + err.Error()}
	}
	one := func(name string) (string, error) {
		vals := q[name]
		switch {
		case len(vals) == 0 || vals[0] == "":
			return "", &AuthError{VerdictMissing, "the query parameter " + name + " is missing"}
		case len(vals) > 1:
			return "", &AuthError{VerdictMissing, "the query parameter " + name + " appears more than once"}
		}
		return vals[0], nil
	}
	sig, err := one(ParamSignature)
	if err != nil {
		return Credentials{}, err
	}
	tsText, err := one(ParamTimestamp)
	if err != nil {
		return Credentials{}, err
	}
	nonce, err := one(ParamNonce)
	if err != nil {
		return Credentials{}, err
	}
	return v.check(signatureScheme{sig: "the signature", ts: "the timestamp", sign: RequestSignature}, body, sig, tsText, nonce)
}

// signatureScheme is what differs between the production interface's signature and the Kit's x-sign: how the
// credentials are named in a refusal, and the signing function. The check itself is one procedure.
type signatureScheme struct {
	sig, ts string // e.g. "the signature", "the timestamp"; "x-sign", "x-timestamp"
	sign    func(key string, payload []byte, nonce, timestamp string) string
}

// check verifies credentials read from a request against the body: the nonce's form, the timestamp's form, the
// signature against every accepted reading of the payload, then the timestamp window. The nonce's freshness is
// left to the caller's shared replay cache.
func (v Verifier) check(s signatureScheme, body *Body, sig, tsText, nonce string) (Credentials, error) {
	if len(nonce) > maxNonceLen || !printableASCII(nonce) {
		return Credentials{}, &AuthError{VerdictMalformed, fmt.Sprintf("the nonce must be at most %d printable ASCII characters", maxNonceLen)}
	}
	ts, err := parseTimestamp(tsText)
	if err != nil {
		return Credentials{}, &AuthError{VerdictMalformed, err.Error()}
	}
	got, err := hex.DecodeString(strings.ToLower(sig))
	if err != nil || len(got) != 32 {
		return Credentials{}, &AuthError{VerdictMalformed, s.sig + " must be 64 hexadecimal characters"}
	}
	// Compare against every accepted reading of the payload without stopping early, each comparison in
	// constant time.
	match := 0
	for _, payload := range body.candidates() {
		want, _ := hex.DecodeString(s.sign(v.AccessKey, payload, nonce, tsText))
		match |= subtle.ConstantTimeCompare(got, want)
	}
	if match != 1 {
		return Credentials{}, &AuthError{VerdictBadSig, s.sig + " does not match the body, nonce and timestamp under the configured access key"}
	}
	now := time.Now()
	if v.Now != nil {
		now = v.Now()
	}
	window := v.Window
	if window <= 0 {
		window = 60 * time.Second
	}
	if skew := now.Sub(ts); skew > window || skew < -window {
		return Credentials{}, &AuthError{VerdictStale, fmt.Sprintf("%s %s is %s away from the seller's clock (%s); at most %s is accepted",
			s.ts, tsText, skew.Round(time.Millisecond), now.UTC().Format(time.RFC3339), window)}
	}
	return Credentials{Nonce: nonce, Timestamp: ts}, nil
}

// parseTimestamp reads the timestamp parameter: Unix epoch milliseconds (13 digits, every documented example).
// Some copies of the documentation say seconds, so 10 digits are read as seconds (docs/koogallery.md,
// "Time formats").
func parseTimestamp(s string) (time.Time, error) {
	if !allDigits(s) || (len(s) != 13 && len(s) != 10) {
		return time.Time{}, fmt.Errorf("the timestamp %q must be Unix epoch milliseconds (13 digits)", truncate(s, 40))
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("the timestamp %q is not a number", s)
	}
	if len(s) == 10 {
		return time.Unix(n, 0), nil
	}
	return time.UnixMilli(n), nil
}

func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
