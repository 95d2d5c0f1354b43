package kit

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"math/big"
	"strings"
	"sync"
	"testing"
)

var (
	keyOnce sync.Once
	testKey KeyPair
	keyErr  error
)

func key(t *testing.T) KeyPair {
	t.Helper()
	keyOnce.Do(func() { testKey, keyErr = GenerateKey(MinKeyBits) })
	if keyErr != nil {
		t.Fatal(keyErr)
	}
	return testKey
}

// javaOAEP encrypts msg as Java's Cipher "RSA/ECB/OAEPPadding" with OAEPParameterSpec("SHA-256", "MGF1",
// MGF1ParameterSpec.SHA1, PSource.PSpecified.DEFAULT) does, written out from RFC 8017 §7.1.1 rather than with
// crypto/rsa, so the decryption is checked against an independent encoder.
func javaOAEP(t *testing.T, pub *rsa.PublicKey, msg []byte) string {
	t.Helper()
	k := (pub.N.BitLen() + 7) / 8
	lHash := sha256.Sum256(nil)
	hLen := len(lHash)
	db := make([]byte, k-hLen-1)
	copy(db, lHash[:])
	db[len(db)-len(msg)-1] = 0x01
	copy(db[len(db)-len(msg):], msg)
	seed := make([]byte, hLen)
	if _, err := rand.Read(seed); err != nil {
		t.Fatal(err)
	}
	mgf1SHA1 := func(seed []byte, n int) []byte {
		var out []byte
		for c := uint32(0); len(out) < n; c++ {
			h := sha1.New()
			h.Write(seed)
			h.Write([]byte{byte(c >> 24), byte(c >> 16), byte(c >> 8), byte(c)})
			out = h.Sum(out)
		}
		return out[:n]
	}
	dbMask := mgf1SHA1(seed, len(db))
	for i := range db {
		db[i] ^= dbMask[i]
	}
	seedMask := mgf1SHA1(db, hLen)
	for i := range seed {
		seed[i] ^= seedMask[i]
	}
	em := append(append([]byte{0}, seed...), db...)
	c := new(big.Int).Exp(new(big.Int).SetBytes(em), big.NewInt(int64(pub.E)), pub.N)
	out := c.FillBytes(make([]byte, k))
	return base64.StdEncoding.EncodeToString(out)
}

func TestDecryptSecretJavaOAEP(t *testing.T) {
	kp := key(t)
	const secret = "s3cr3t-客户端-0123456789abcdef"
	ct := javaOAEP(t, &kp.Key.PublicKey, []byte(secret))
	got, err := DecryptSecret(kp.Key, ct)
	if err != nil || got != secret {
		t.Fatalf("DecryptSecret = %q, %v", got, err)
	}
	// EncryptSecret (how kooflow plays the marketplace) produces what the independent encoder does.
	ct2, err := EncryptSecret(&kp.Key.PublicKey, secret)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := DecryptSecret(kp.Key, ct2); err != nil || got != secret {
		t.Fatalf("round trip = %q, %v", got, err)
	}
	// The SHA-256/SHA-256 fallback.
	raw, err := rsa.EncryptOAEP(sha256.New(), rand.Reader, &kp.Key.PublicKey, []byte(secret), nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := DecryptSecret(kp.Key, base64.StdEncoding.EncodeToString(raw)); err != nil || got != secret {
		t.Fatalf("SHA-256/SHA-256 = %q, %v", got, err)
	}
	// SHA-1/SHA-1 OAEP is neither reading: refused.
	raw, err = rsa.EncryptOAEP(sha1.New(), rand.Reader, &kp.Key.PublicKey, []byte(secret), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := DecryptSecret(kp.Key, base64.StdEncoding.EncodeToString(raw)); !errors.Is(err, ErrSecretUndecryptable) {
		t.Fatalf("SHA-1 OAEP: %v", err)
	}
	if _, err := DecryptSecret(kp.Key, "not base64!"); !errors.Is(err, ErrSecretUndecryptable) {
		t.Fatalf("garbage: %v", err)
	}
}

func TestParsePrivateKey(t *testing.T) {
	kp := key(t)
	if k, err := ParsePrivateKey(kp.PrivatePEM); err != nil || !k.Equal(kp.Key) {
		t.Fatalf("PEM: %v", err)
	}
	der, _ := x509.MarshalPKCS8PrivateKey(kp.Key)
	b64 := base64.StdEncoding.EncodeToString(der)
	// The demo's form: bare Base64 PKCS#8, possibly wrapped over lines.
	if k, err := ParsePrivateKey(b64[:100] + "\n" + b64[100:]); err != nil || !k.Equal(kp.Key) {
		t.Fatalf("Base64 PKCS#8: %v", err)
	}
	small, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, _ = x509.MarshalPKCS8PrivateKey(small)
	if _, err := ParsePrivateKey(base64.StdEncoding.EncodeToString(der)); err == nil || !strings.Contains(err.Error(), "at least 3072") {
		t.Fatalf("2048-bit key: %v", err)
	}
	if _, err := GenerateKey(2048); err == nil {
		t.Fatal("GenerateKey(2048) succeeded")
	}
	if _, err := ParsePrivateKey("garbage"); err == nil {
		t.Fatal("garbage key accepted")
	}
	pub, err := base64.StdEncoding.DecodeString(kp.PublicBase64)
	if err != nil {
		t.Fatal(err)
	}
	if p, err := x509.ParsePKIXPublicKey(pub); err != nil || !p.(*rsa.PublicKey).Equal(&kp.Key.PublicKey) {
		t.Fatalf("public key: %v", err)
	}
}
