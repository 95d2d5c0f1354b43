package kit

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// MinKeyBits is the smallest RSA key the marketplace accepts for encrypting client secrets
// (docs/koogallery.md, "clientSecret").
const MinKeyBits = 3072

// ParsePrivateKey reads the seller's RSA private key as PEM (PKCS#8 "PRIVATE KEY" or PKCS#1 "RSA PRIVATE KEY")
// or as the bare Base64 PKCS#8 the marketplace's demo uses. Keys under MinKeyBits are refused.
func ParsePrivateKey(text string) (*rsa.PrivateKey, error) {
	text = strings.TrimSpace(text)
	if text == "" {
		return nil, errors.New("the Kit private key is empty")
	}
	var der []byte
	if block, _ := pem.Decode([]byte(text)); block != nil {
		der = block.Bytes
	} else {
		b, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(text), ""))
		if err != nil {
			return nil, errors.New("the Kit private key is neither PEM nor Base64 PKCS#8")
		}
		der = b
	}
	var key *rsa.PrivateKey
	if k, err := x509.ParsePKCS8PrivateKey(der); err == nil {
		rk, ok := k.(*rsa.PrivateKey)
		if !ok {
			return nil, fmt.Errorf("the Kit private key is a %T, not an RSA key", k)
		}
		key = rk
	} else if k, err2 := x509.ParsePKCS1PrivateKey(der); err2 == nil {
		key = k
	} else {
		return nil, fmt.Errorf("parse the Kit private key: %w", err)
	}
	if bits := key.N.BitLen(); bits < MinKeyBits {
		return nil, fmt.Errorf("the Kit private key has %d bits; the marketplace requires at least %d", bits, MinKeyBits)
	}
	return key, nil
}

// oaepJava is the padding of Huawei's demo (Cipher "RSA/ECB/OAEPPadding" with OAEPParameterSpec("SHA-256",
// "MGF1", MGF1ParameterSpec.SHA1)): SHA-256 label hash, MGF1 over SHA-1, empty label.
var oaepJava = &rsa.OAEPOptions{Hash: crypto.SHA256, MGFHash: crypto.SHA1}

// oaepSHA256 is the fallback reading of the prose documentation's plain "OAEP": SHA-256 for both.
var oaepSHA256 = &rsa.OAEPOptions{Hash: crypto.SHA256, MGFHash: crypto.SHA256}

// ErrSecretUndecryptable is returned when a clientSecret is not an OAEP ciphertext under the seller's key.
var ErrSecretUndecryptable = errors.New("the clientSecret cannot be decrypted with the seller's Kit key")

// DecryptSecret decrypts a Base64 clientSecret: OAEP(SHA-256, MGF1-SHA-1) first, then OAEP(SHA-256,
// MGF1-SHA-256). The plaintext must be UTF-8.
func DecryptSecret(key *rsa.PrivateKey, ciphertext string) (string, error) {
	ct, err := base64.StdEncoding.DecodeString(strings.TrimSpace(ciphertext))
	if err != nil {
		if ct, err = base64.URLEncoding.DecodeString(strings.TrimSpace(ciphertext)); err != nil {
			return "", fmt.Errorf("%w: not Base64", ErrSecretUndecryptable)
		}
	}
	for _, opts := range []*rsa.OAEPOptions{oaepJava, oaepSHA256} {
		pt, err := key.Decrypt(nil, ct, opts)
		if err == nil {
			if !utf8.Valid(pt) {
				return "", fmt.Errorf("%w: the plaintext is not UTF-8", ErrSecretUndecryptable)
			}
			return string(pt), nil
		}
	}
	return "", ErrSecretUndecryptable
}

// EncryptSecret encrypts plaintext the way the marketplace does (OAEP SHA-256 / MGF1-SHA-1, Base64). kooflow
// uses it when it plays the marketplace.
func EncryptSecret(pub *rsa.PublicKey, plaintext string) (string, error) {
	ct, err := rsa.EncryptOAEPWithOptions(rand.Reader, pub, []byte(plaintext), oaepJava)
	if err != nil {
		return "", fmt.Errorf("encrypt the client secret: %w", err)
	}
	return base64.StdEncoding.EncodeToString(ct), nil
}

// KeyPair is a freshly generated Kit key: the private key for KOOGALLERY_KIT_PRIVATE_KEY (PKCS#8 PEM) and the
// public key to upload in the seller console (Base64 X.509 SubjectPublicKeyInfo, as the demo prints it).
type KeyPair struct {
	Key          *rsa.PrivateKey
	PrivatePEM   string
	PublicBase64 string
	PublicPEM    string
}

// GenerateKey makes a new RSA key of bits (at least MinKeyBits).
func GenerateKey(bits int) (KeyPair, error) {
	if bits < MinKeyBits {
		return KeyPair{}, fmt.Errorf("a Kit key needs at least %d bits, not %d", MinKeyBits, bits)
	}
	key, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		return KeyPair{}, fmt.Errorf("generate RSA key: %w", err)
	}
	priv, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return KeyPair{}, fmt.Errorf("encode private key: %w", err)
	}
	pub, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return KeyPair{}, fmt.Errorf("encode public key: %w", err)
	}
	return KeyPair{
		Key:          key,
		PrivatePEM:   string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: priv})),
		PublicBase64: base64.StdEncoding.EncodeToString(pub),
		PublicPEM:    string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub})),
	}, nil
}
