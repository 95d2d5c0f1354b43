package main

import (
	"bytes"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"strings"
	"testing"

	"github.com/kooflow/kooflow/internal/kit"
)

// TestKitKeygen: `kooflow kit keygen` prints a private key kooflow accepts and the matching public key; a
// secret encrypted with the printed public key decrypts with the printed private key.
func TestKitKeygen(t *testing.T) {
	root := newRootCmd()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetArgs([]string{"kit", "keygen"})
	if err := root.Execute(); err != nil {
		t.Fatal(err)
	}
	text := out.String()
	start, end := strings.Index(text, "-----BEGIN PRIVATE KEY-----"), strings.Index(text, "-----END PRIVATE KEY-----")
	if start < 0 || end < 0 {
		t.Fatalf("no private key in\n%s", text)
	}
	key, err := kit.ParsePrivateKey(text[start : end+len("-----END PRIVATE KEY-----")])
	if err != nil {
		t.Fatal(err)
	}
	var pubLine string
	lines := strings.Split(text, "\n")
	for i, l := range lines {
		if strings.HasPrefix(l, "# Public key to upload") && i+1 < len(lines) {
			pubLine = lines[i+1]
		}
	}
	der, err := base64.StdEncoding.DecodeString(pubLine)
	if err != nil {
		t.Fatalf("public key line %q: %v", pubLine, err)
	}
	pub, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		t.Fatal(err)
	}
	ct, err := kit.EncryptSecret(pub.(*rsa.PublicKey), "s")
	if err != nil {
		t.Fatal(err)
	}
	if got, err := kit.DecryptSecret(key, ct); err != nil || got != "s" {
		t.Fatalf("round trip %q, %v", got, err)
	}
	root = newRootCmd()
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs([]string{"kit", "keygen", "--bits", "2048"})
	if err := root.Execute(); err == nil || !strings.Contains(err.Error(), "3072") {
		t.Fatalf("2048 bits: %v", err)
	}
}
