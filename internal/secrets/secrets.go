// Package secrets seals the credentials kooflow keeps at rest (the customer's appInfo) with AES-256-GCM under
// named data keys (docs/security.md, "Secrets at rest"). A Keyring holds every configured key: the first seals,
// all open, so a key can be rotated by putting a new one first and re-sealing (kooflow keys rotate) before the
// old one is removed. Each sealed value is stored with the id of the key that sealed it.
package secrets

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"
)

// Key is one named 32-byte AES-256 key.
type Key struct {
	ID   string
	aead cipher.AEAD
}

// Keyring is the configured data keys; the first seals.
type Keyring struct {
	keys []Key
}

var keyID = regexp.MustCompile(`^[A-Za-z0-9._-]{1,32}$`)

// ErrNoKey is returned when a value was sealed under a key id the keyring does not hold.
var ErrNoKey = errors.New("no data key with this id is configured")

// Parse reads "keyid:base64-of-32-bytes" entries, comma or newline separated (what KOOFLOW_DATA_KEYS and
// KOOFLOW_DATA_KEYS_FILE hold). Lines starting with # are comments. source names the setting in errors; no
// error ever contains key material.
func Parse(source, spec string) (*Keyring, error) {
	kr := &Keyring{}
	seen := map[string]bool{}
	var entries []string
	for _, line := range strings.Split(spec, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "#") {
			continue
		}
		entries = append(entries, strings.Split(line, ",")...)
	}
	for _, line := range entries {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		id, b64, ok := strings.Cut(line, ":")
		if !ok || !keyID.MatchString(id) {
			return nil, fmt.Errorf("%s: an entry is not keyid:base64-of-32-bytes (key ids are 1-32 of A-Z a-z 0-9 . _ -)", source)
		}
		if seen[id] {
			return nil, fmt.Errorf("%s: the key id %q is given twice", source, id)
		}
		seen[id] = true
		raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(b64))
		if err != nil || len(raw) != 32 {
			return nil, fmt.Errorf("%s: the key %q is not the Base64 of 32 bytes (generate one with: openssl rand -base64 32)", source, id)
		}
		block, err := aes.NewCipher(raw)
		if err != nil {
			return nil, fmt.Errorf("%s: key %q: %w", source, id, err)
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, fmt.Errorf("%s: key %q: %w", source, id, err)
		}
		kr.keys = append(kr.keys, Key{ID: id, aead: aead})
	}
	if len(kr.keys) == 0 {
		return nil, fmt.Errorf("%s: no data key given", source)
	}
	return kr, nil
}

// Load reads the keys from spec, or else from the file at path; with neither it returns nil and no error.
func Load(specName, spec, fileName, path string) (*Keyring, error) {
	if strings.TrimSpace(spec) != "" {
		return Parse(specName, spec)
	}
	if path == "" {
		return nil, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", fileName, err)
	}
	return Parse(fileName+" ("+path+")", string(b))
}

// NewKeySpec returns a fresh "id:base64" entry.
func NewKeySpec(id string) (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generate a data key: %w", err)
	}
	return id + ":" + base64.StdEncoding.EncodeToString(b), nil
}

// CurrentID is the id of the key that seals.
func (k *Keyring) CurrentID() string { return k.keys[0].ID }

// IDs lists the key ids, the sealing one first.
func (k *Keyring) IDs() []string {
	out := make([]string, len(k.keys))
	for i, key := range k.keys {
		out[i] = key.ID
	}
	return out
}

// Seal encrypts plaintext under the current key, bound to context (e.g. the table, column and row it is stored
// in, so a sealed value copied to another row does not open). It returns the key id and nonce||ciphertext.
func (k *Keyring) Seal(plaintext []byte, context string) (string, []byte, error) {
	key := k.keys[0]
	nonce := make([]byte, key.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return "", nil, fmt.Errorf("seal: %w", err)
	}
	return key.ID, key.aead.Seal(nonce, nonce, plaintext, []byte(context)), nil
}

// Open decrypts a value sealed under key id with the same context.
func (k *Keyring) Open(id string, sealed []byte, context string) ([]byte, error) {
	for _, key := range k.keys {
		if key.ID != id {
			continue
		}
		n := key.aead.NonceSize()
		if len(sealed) < n+key.aead.Overhead() {
			return nil, fmt.Errorf("open a value sealed under key %q: too short", id)
		}
		out, err := key.aead.Open(nil, sealed[:n], sealed[n:], []byte(context))
		if err != nil {
			return nil, fmt.Errorf("open a value sealed under key %q: it was altered, or sealed for another place", id)
		}
		return out, nil
	}
	return nil, fmt.Errorf("open a value sealed under key %q: %w (configured: %s)", id, ErrNoKey, strings.Join(k.IDs(), ", "))
}

// Generate returns a keyring of one fresh random key named id (tests, and processes that seal only for
// themselves).
func Generate(id string) (*Keyring, error) {
	spec, err := NewKeySpec(id)
	if err != nil {
		return nil, err
	}
	return Parse("generated key", spec)
}
