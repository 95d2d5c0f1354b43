// Package kit plays the marketplace's joint-operation (联营) side towards a seller: the Kit sync calls (signed
// with the emulator's own signer, client secrets RSA-encrypted with the seller's public key, sent again as the
// buyer would when the seller fails) and the unified-login auth centre (login page, single-use codes, token,
// userinfo and logout endpoints). It shares no code with kooflow's Kit endpoints or SSO callback.
package kit

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/kooflow/kooflow/emulator/sign"
)

// Syncer sends Kit calls to the seller.
type Syncer struct {
	// BaseURL is the seller's Kit base, e.g. https://seller/koogallery/kit; each call goes to BaseURL/<call>.
	BaseURL   string
	AccessKey string
	// SellerKey is the public key the seller uploaded; client secrets are encrypted with it.
	SellerKey *rsa.PublicKey
	HTTP      *http.Client
	// Attempts is how often a call is sent before giving up (the buyer presses "retry"); 0 means 5.
	Attempts int
	// Pause is the wait between attempts; 0 means 300 ms.
	Pause time.Duration
	// SignWith, when set, signs x-sign with this key instead of AccessKey (a forged call a seller must refuse);
	// answers are still verified with AccessKey.
	SignWith string
}

// Answer is the seller's answer to a Kit call.
type Answer struct {
	ResultCode string `json:"resultCode"`
	ResultMsg  string `json:"resultMsg"`
}

// beijing is UTC+8, the zone of the Kit timeStamp.
var beijing = time.FixedZone("UTC+8", 8*3600)

// TimeStamp formats t as a Kit timeStamp (yyyyMMddHHmmssSSS, UTC+8).
func TimeStamp(t time.Time) string {
	s := t.In(beijing).Format("20060102150405.000")
	return strings.Replace(s, ".", "", 1)
}

// EncryptSecret encrypts a client secret as the marketplace does: RSA-OAEP with SHA-256 and MGF1-SHA-1, Base64.
func EncryptSecret(pub *rsa.PublicKey, secret string) (string, error) {
	ct, err := rsa.EncryptOAEPWithOptions(rand.Reader, pub, []byte(secret), &rsa.OAEPOptions{Hash: crypto.SHA256, MGFHash: crypto.SHA1})
	if err != nil {
		return "", fmt.Errorf("encrypt client secret: %w", err)
	}
	return base64.StdEncoding.EncodeToString(ct), nil
}

// Send posts one Kit call, freshly signed on every attempt, until the seller answers 000000 or the attempts run
// out; it returns the last answer. Every answer's Body-Sign is checked.
func (s *Syncer) Send(ctx context.Context, call string, body map[string]any) (Answer, error) {
	raw, err := json.Marshal(body)
	if err != nil {
		return Answer{}, fmt.Errorf("encode %s: %w", call, err)
	}
	attempts, pause := s.Attempts, s.Pause
	if attempts <= 0 {
		attempts = 5
	}
	if pause <= 0 {
		pause = 300 * time.Millisecond
	}
	var last Answer
	for i := 0; i < attempts; i++ {
		if i > 0 {
			select {
			case <-ctx.Done():
				return last, ctx.Err()
			case <-time.After(pause):
			}
		}
		last, err = s.once(ctx, call, raw)
		if err != nil {
			return last, err
		}
		if last.ResultCode == "000000" {
			return last, nil
		}
	}
	return last, nil
}

func (s *Syncer) once(ctx context.Context, call string, raw []byte) (Answer, error) {
	nonce, err := sign.Nonce()
	if err != nil {
		return Answer{}, err
	}
	ts := sign.Timestamp(time.Now())
	key := s.AccessKey
	if s.SignWith != "" {
		key = s.SignWith
	}
	xsign, err := sign.KitSignature(key, raw, nonce, ts)
	if err != nil {
		return Answer{}, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(s.BaseURL, "/")+"/"+call, bytes.NewReader(raw))
	if err != nil {
		return Answer{}, fmt.Errorf("build %s: %w", call, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("x-sign", xsign)
	req.Header.Set("x-timestamp", ts)
	req.Header.Set("x-nonce", nonce)
	client := s.HTTP
	if client == nil {
		client = &http.Client{Timeout: 5 * time.Second}
	}
	resp, err := client.Do(req)
	if err != nil {
		return Answer{ResultCode: "timeout"}, nil // the buyer sees a failure and retries
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return Answer{}, fmt.Errorf("read %s answer: %w", call, err)
	}
	if err := sign.VerifyBodySign(s.AccessKey, b, resp.Header.Get("Body-Sign")); err != nil {
		return Answer{}, fmt.Errorf("%s answer (HTTP %d): %w", call, resp.StatusCode, err)
	}
	var a Answer
	if err := json.Unmarshal(b, &a); err != nil {
		return Answer{}, fmt.Errorf("%s answer %s: %w", call, b, err)
	}
	return a, nil
}
