package webconsole

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/kooflow/kooflow/internal/config"
	"github.com/kooflow/kooflow/internal/secrets"
)

// The session lives in one cookie sealed with the data keys (AES-256-GCM, internal/secrets): the browser can
// neither read nor change it, and no table is needed. It names the token it was opened with and a digest of that
// token, so removing or changing a token in KOOFLOW_CONSOLE_TOKENS ends its sessions at their next request.

const (
	sessionCookie = "kooflow_console"
	signinCookie  = "kooflow_signin"
	langCookie    = "kooflow_lang"
	// sessionTTL is how long a session lasts from sign-in.
	sessionTTL = 12 * time.Hour
	// linkTTL is how long a sign-in link (kooflow dev) may be used.
	linkTTL          = 10 * time.Minute
	sessionContext   = "kooflow.console.session"
	signinLinkPrefix = "kooflow.console.link"
)

// session is the sealed cookie's content.
type session struct {
	Name    string `json:"n"`
	Digest  string `json:"d"` // tokenDigest of the token signed in with
	ID      string `json:"s"` // random; the CSRF token is derived from it
	Expires int64  `json:"e"` // unix seconds
}

// signinLink is a sealed one-time sign-in ticket (kooflow dev prints one).
type signinLink struct {
	Name    string `json:"n"`
	Digest  string `json:"d"`
	Nonce   string `json:"o"`
	Expires int64  `json:"e"`
}

func tokenDigest(t config.ConsoleToken) string {
	sum := sha256.Sum256([]byte("kooflow console token\x00" + t.Name + "\x00" + t.Token.Reveal()))
	return hex.EncodeToString(sum[:16])
}

func randomID() string {
	b := make([]byte, 18)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func seal(keys *secrets.Keyring, v any, context string) (string, error) {
	raw, err := json.Marshal(v)
	if err != nil {
		return "", err
	}
	id, sealed, err := keys.Seal(raw, context)
	if err != nil {
		return "", fmt.Errorf("seal console cookie: %w", err)
	}
	return id + "." + base64.RawURLEncoding.EncodeToString(sealed), nil
}

var errBadSeal = errors.New("not a value this console sealed")

func unseal(keys *secrets.Keyring, s string, context string, v any) error {
	id, b64, ok := strings.Cut(s, ".")
	if !ok {
		return errBadSeal
	}
	sealed, err := base64.RawURLEncoding.DecodeString(b64)
	if err != nil {
		return errBadSeal
	}
	raw, err := keys.Open(id, sealed, context)
	if err != nil {
		return errBadSeal
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return errBadSeal
	}
	return nil
}

// SigninLink returns the path (with query) of a one-time sign-in link for tok, valid for ten minutes, sealed with
// keys (the API's data keys). kooflow dev prints it so the developer is signed in by opening it.
func SigninLink(keys *secrets.Keyring, tok config.ConsoleToken, now time.Time) (string, error) {
	v, err := seal(keys, signinLink{Name: tok.Name, Digest: tokenDigest(tok), Nonce: randomID(), Expires: now.Add(linkTTL).Unix()}, signinLinkPrefix)
	if err != nil {
		return "", err
	}
	return "/console/signin/link?t=" + v, nil
}

// csrfToken is the form token bound to the session: only the server knows the session's id, which is sealed.
func csrfToken(s session) string {
	sum := sha256.Sum256([]byte("kooflow console csrf\x00" + s.ID))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

func sameToken(a, b string) bool {
	return a != "" && subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

// secureRequest reports whether the browser reached the console over TLS: directly, or through one of the
// trusted proxies (KOOFLOW_TRUSTED_PROXIES) saying so in X-Forwarded-Proto.
func secureRequest(r *http.Request, trusted []*net.IPNet) bool {
	if r.TLS != nil {
		return true
	}
	if !strings.EqualFold(strings.TrimSpace(strings.Split(r.Header.Get("X-Forwarded-Proto"), ",")[0]), "https") {
		return false
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	ip := net.ParseIP(host)
	for _, n := range trusted {
		if ip != nil && n.Contains(ip) {
			return true
		}
	}
	return false
}

// parseTrusted reads KOOFLOW_TRUSTED_PROXIES entries (addresses or CIDRs) as networks.
func parseTrusted(entries []string) ([]*net.IPNet, error) {
	var out []*net.IPNet
	for _, e := range entries {
		e = strings.TrimSpace(e)
		if e == "" {
			continue
		}
		if !strings.Contains(e, "/") {
			ip := net.ParseIP(e)
			if ip == nil {
				return nil, fmt.Errorf("%s: %q is not an address or CIDR", config.EnvTrustedProxies, e)
			}
			bits := 32
			if ip.To4() == nil {
				bits = 128
			}
			out = append(out, &net.IPNet{IP: ip, Mask: net.CIDRMask(bits, bits)})
			continue
		}
		_, n, err := net.ParseCIDR(e)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", config.EnvTrustedProxies, err)
		}
		out = append(out, n)
	}
	return out, nil
}
