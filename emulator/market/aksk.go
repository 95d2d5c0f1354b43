package market

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"
)

// The API gateway's AK/SK scheme (docs/koogallery.md, "Other signature schemes"). The marketplace verifies by
// recomputing the signature over whatever headers the caller lists in SignedHeaders, which is why this is written
// out here instead of calling Huawei's SDK signer: the SDK never signs content-type, but older signers do, and
// the gateway accepts both. The tests check this verifier against the vectors in docs/koogallery.md
// ("Test vectors") and against requests signed by the SDK itself.

const (
	akskAlgorithm  = "SDK-HMAC-SHA256"
	akskDateLayout = "20060102T150405Z"
	headerSdkDate  = "X-Sdk-Date"
	headerSdkHash  = "X-Sdk-Content-Sha256"
)

// authError is a refused AK/SK request, in the marketplace's terms.
type authError struct {
	code string // MKT.0154 or MKT.0151
	msg  string
}

func (e *authError) Error() string { return e.code + " " + e.msg }

type authorization struct {
	access        string
	signedHeaders []string
	signature     string
}

func parseAuthorization(h string) (authorization, error) {
	var a authorization
	rest, ok := strings.CutPrefix(strings.TrimSpace(h), akskAlgorithm+" ")
	if !ok {
		return a, fmt.Errorf("the Authorization header must start with %q", akskAlgorithm)
	}
	for _, part := range strings.Split(rest, ",") {
		name, value, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return a, fmt.Errorf("malformed Authorization part %q", part)
		}
		switch name {
		case "Access":
			a.access = value
		case "SignedHeaders":
			for _, s := range strings.Split(value, ";") {
				if s = strings.TrimSpace(s); s != "" {
					a.signedHeaders = append(a.signedHeaders, strings.ToLower(s))
				}
			}
		case "Signature":
			a.signature = value
		}
	}
	if a.access == "" || a.signature == "" || len(a.signedHeaders) == 0 {
		return a, errors.New("authorization lacks Access, SignedHeaders or Signature")
	}
	return a, nil
}

// verifyAKSK checks an AK/SK-signed request: the access key, the freshness of X-Sdk-Date, that X-Sdk-Date is
// among the signed headers, and the signature itself.
func verifyAKSK(r *http.Request, body []byte, ak, sk string, now time.Time, skew time.Duration) error {
	h := r.Header.Get("Authorization")
	if h == "" {
		return &authError{"MKT.0154", "Illegal token: the request is not signed (Authorization header missing)"}
	}
	a, err := parseAuthorization(h)
	if err != nil {
		return &authError{"MKT.0154", "Illegal token: " + err.Error()}
	}
	if subtle.ConstantTimeCompare([]byte(a.access), []byte(ak)) != 1 {
		return &authError{"MKT.0154", "Illegal token: unknown access key"}
	}
	date := r.Header.Get(headerSdkDate)
	t, err := time.Parse(akskDateLayout, date)
	if err != nil {
		return &authError{"MKT.0154", fmt.Sprintf("Illegal token: %s %q is not yyyyMMddTHHmmssZ", headerSdkDate, date)}
	}
	if d := now.Sub(t); d > skew || d < -skew {
		return &authError{"MKT.0154", fmt.Sprintf("Illegal token: %s %s is %s away from the gateway's clock (limit %s)",
			headerSdkDate, date, d.Round(time.Second), skew)}
	}
	dateSigned := false
	headers := map[string]string{}
	for _, name := range a.signedHeaders {
		var v string
		if name == "host" {
			v = r.Host
		} else {
			vs := r.Header.Values(name)
			if len(vs) == 0 {
				return &authError{"MKT.0154", "Illegal token: signed header " + name + " is absent"}
			}
			v = strings.Join(vs, ",")
		}
		if name == strings.ToLower(headerSdkDate) {
			dateSigned = true
		}
		headers[name] = v
	}
	if !dateSigned {
		return &authError{"MKT.0154", "Illegal token: x-sdk-date must be a signed header"}
	}
	bodyHash := r.Header.Get(headerSdkHash)
	if bodyHash == "" {
		sum := sha256.Sum256(body)
		bodyHash = hex.EncodeToString(sum[:])
	}
	cr := canonicalRequest(r.Method, r.URL.Path, r.URL.Query(), headers, a.signedHeaders, bodyHash)
	want := akskSignature(sk, date, cr)
	got, err := hex.DecodeString(a.signature)
	if err != nil || !hmac.Equal(got, want) {
		return &authError{"MKT.0154", "Illegal token: signature does not match"}
	}
	return nil
}

// canonicalRequest builds the string the gateway hashes (docs/koogallery.md, "Other signature schemes").
func canonicalRequest(method, path string, query url.Values, headers map[string]string, signed []string, bodyHash string) string {
	segs := strings.Split(path, "/")
	for i, s := range segs {
		segs[i] = akskEscape(s)
	}
	uri := strings.Join(segs, "/")
	if !strings.HasSuffix(uri, "/") {
		uri += "/"
	}
	keys := make([]string, 0, len(query))
	for k := range query {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var q []string
	for _, k := range keys {
		vs := append([]string(nil), query[k]...)
		sort.Strings(vs)
		for _, v := range vs {
			q = append(q, akskEscape(k)+"="+akskEscape(v))
		}
	}
	names := append([]string(nil), signed...)
	sort.Strings(names)
	var hs []string
	for _, n := range names {
		hs = append(hs, n+":"+strings.TrimSpace(headers[n]))
	}
	return method + "\n" + uri + "\n" + strings.Join(q, "&") + "\n" + strings.Join(hs, "\n") + "\n" + "\n" +
		strings.Join(names, ";") + "\n" + bodyHash
}

func akskSignature(sk, date, canonical string) []byte {
	sum := sha256.Sum256([]byte(canonical))
	sts := akskAlgorithm + "\n" + date + "\n" + hex.EncodeToString(sum[:])
	m := hmac.New(sha256.New, []byte(sk))
	m.Write([]byte(sts))
	return m.Sum(nil)
}

// akskEscape percent-encodes everything except A-Z a-z 0-9 - _ . ~, with upper-case hex.
func akskEscape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.' || c == '~' {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte("0123456789ABCDEF"[c>>4])
		b.WriteByte("0123456789ABCDEF"[c&15])
	}
	return b.String()
}
