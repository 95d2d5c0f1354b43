package secrets

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func keyring(t *testing.T, ids ...string) (*Keyring, []string) {
	t.Helper()
	var specs []string
	for _, id := range ids {
		s, err := NewKeySpec(id)
		if err != nil {
			t.Fatal(err)
		}
		specs = append(specs, s)
	}
	kr, err := Parse("KEYS", strings.Join(specs, ","))
	if err != nil {
		t.Fatal(err)
	}
	return kr, specs
}

func TestSealOpenRoundTrip(t *testing.T) {
	kr, _ := keyring(t, "k1")
	secret := []byte(`{"password":"Hunter2!"}`)
	id, sealed, err := kr.Seal(secret, "instances.app_info:i-1")
	if err != nil || id != "k1" {
		t.Fatal(id, err)
	}
	if bytes.Contains(sealed, []byte("Hunter2")) {
		t.Fatal("the sealed value contains the plaintext")
	}
	_, again, _ := kr.Seal(secret, "instances.app_info:i-1")
	if bytes.Equal(sealed, again) {
		t.Fatal("two seals of one value are equal: the nonce is not fresh")
	}
	got, err := kr.Open(id, sealed, "instances.app_info:i-1")
	if err != nil || !bytes.Equal(got, secret) {
		t.Fatalf("open: %q %v", got, err)
	}
	// Another row's context, a flipped bit, a truncated value: all refused.
	if _, err := kr.Open(id, sealed, "instances.app_info:i-2"); err == nil {
		t.Fatal("opened under another row's context")
	}
	bad := bytes.Clone(sealed)
	bad[len(bad)-1] ^= 1
	if _, err := kr.Open(id, bad, "instances.app_info:i-1"); err == nil {
		t.Fatal("opened an altered value")
	}
	if _, err := kr.Open(id, sealed[:5], "instances.app_info:i-1"); err == nil {
		t.Fatal("opened a truncated value")
	}
}

func TestWrongKeyAndRotation(t *testing.T) {
	old, oldSpecs := keyring(t, "2026-01")
	id, sealed, _ := old.Seal([]byte("s3cret"), "c")

	// A keyring without that key id refuses, naming the id; one with the same id but other bytes cannot open.
	other, _ := keyring(t, "2026-02")
	if _, err := other.Open(id, sealed, "c"); !errors.Is(err, ErrNoKey) || !strings.Contains(err.Error(), "2026-01") {
		t.Fatalf("wrong key: %v", err)
	}
	impostor, _ := keyring(t, "2026-01")
	if _, err := impostor.Open(id, sealed, "c"); err == nil {
		t.Fatal("opened with other key bytes under the same id")
	}

	// Rotation: the new key first seals, the old one still opens what it sealed.
	newSpec, _ := NewKeySpec("2026-02")
	rotated, err := Parse("KEYS", newSpec+","+oldSpecs[0])
	if err != nil {
		t.Fatal(err)
	}
	if got, err := rotated.Open(id, sealed, "c"); err != nil || string(got) != "s3cret" {
		t.Fatalf("old key after rotation: %q %v", got, err)
	}
	if nid, _, _ := rotated.Seal([]byte("x"), "c"); nid != "2026-02" {
		t.Fatalf("sealed under %q, want the first key", nid)
	}
	if ids := rotated.IDs(); strings.Join(ids, ",") != "2026-02,2026-01" {
		t.Fatalf("ids %v", ids)
	}
}

func TestParseRefusesBadKeysWithoutPrintingThem(t *testing.T) {
	for spec, want := range map[string]string{
		"":                               "no data key",
		"k1":                             "not keyid:base64",
		"k1:c2hvcnQ=":                    "not the Base64 of 32 bytes",
		"k 1:" + strings.Repeat("A", 44): "not keyid:base64",
		"k1:!!!notbase64!!!":             "not the Base64 of 32 bytes",
	} {
		_, err := Parse("KEYS", spec)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want %q", spec, err, want)
		}
		if err != nil && strings.Contains(spec, ":") && strings.Contains(err.Error(), spec[strings.Index(spec, ":")+1:]) {
			t.Errorf("%q: the error shows the key material: %v", spec, err)
		}
	}
	a, _ := NewKeySpec("k1")
	if _, err := Parse("KEYS", a+","+a); err == nil || !strings.Contains(err.Error(), "twice") {
		t.Errorf("duplicate id: %v", err)
	}
}

func TestLoadFromFile(t *testing.T) {
	spec, _ := NewKeySpec("file-key")
	path := filepath.Join(t.TempDir(), "keys")
	if err := os.WriteFile(path, []byte("# kooflow data keys: keyid:base64, the first seals\n"+spec+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	kr, err := Load("KEYS", "", "KEYS_FILE", path)
	if err != nil || kr.CurrentID() != "file-key" {
		t.Fatalf("%v %v", kr, err)
	}
	if kr, err := Load("KEYS", "", "KEYS_FILE", ""); kr != nil || err != nil {
		t.Fatalf("nothing configured: %v %v", kr, err)
	}
	if _, err := Load("KEYS", "", "KEYS_FILE", path+".missing"); err == nil || !strings.Contains(err.Error(), "KEYS_FILE") {
		t.Fatalf("missing file: %v", err)
	}
}
