package payloadcodec_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"

	"github.com/kooflow/kooflow/internal/payloadcodec"
	"github.com/kooflow/kooflow/internal/secrets"
)

type note struct {
	CustomerID string `json:"customerId"`
	Note       string `json:"note"`
}

func keys(t *testing.T, spec string) *secrets.Keyring {
	t.Helper()
	k, err := secrets.Parse("test", spec)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestRoundTripHidesThePlaintext(t *testing.T) {
	old, _ := secrets.NewKeySpec("old")
	dc := payloadcodec.DataConverter(keys(t, old))
	in := note{CustomerID: "cust-4711", Note: "call back at +86 138 0000 0000"}
	p, err := dc.ToPayload(in)
	if err != nil {
		t.Fatal(err)
	}
	if got := string(p.Metadata[converter.MetadataEncoding]); got != payloadcodec.Encoding {
		t.Fatalf("encoding %q", got)
	}
	if got := string(p.Metadata[payloadcodec.MetadataKeyID]); got != "old" {
		t.Fatalf("key id %q", got)
	}
	if bytes.Contains(p.Data, []byte("cust-4711")) || bytes.Contains(p.Data, []byte("json")) {
		t.Fatalf("the sealed payload shows its content: %q", p.Data)
	}
	var out note
	if err := dc.FromPayload(p, &out); err != nil || out != in {
		t.Fatalf("decoded %+v, %v", out, err)
	}
	// Each sealing uses a fresh nonce.
	p2, _ := dc.ToPayload(in)
	if bytes.Equal(p.Data, p2.Data) {
		t.Fatal("two sealings of the same value are identical")
	}
}

// TestRotation: after a new key is put first, payloads sealed under the old one still open, new ones are sealed
// under the new key, and once the old key is removed its payloads fail with an error naming it.
func TestRotation(t *testing.T) {
	oldSpec, _ := secrets.NewKeySpec("2026-10")
	newSpec, _ := secrets.NewKeySpec("2026-11")
	before := payloadcodec.DataConverter(keys(t, oldSpec))
	sealedOld, err := before.ToPayload(note{CustomerID: "c-1"})
	if err != nil {
		t.Fatal(err)
	}
	after := payloadcodec.DataConverter(keys(t, newSpec+","+oldSpec))
	var n note
	if err := after.FromPayload(sealedOld, &n); err != nil || n.CustomerID != "c-1" {
		t.Fatalf("old payload after rotation: %+v %v", n, err)
	}
	sealedNew, _ := after.ToPayload(note{CustomerID: "c-2"})
	if id := string(sealedNew.Metadata[payloadcodec.MetadataKeyID]); id != "2026-11" {
		t.Fatalf("sealed under %q", id)
	}
	onlyNew := payloadcodec.Codec{Keys: keys(t, newSpec)}
	_, err = onlyNew.Decode([]*commonpb.Payload{sealedOld})
	if !errors.Is(err, secrets.ErrNoKey) || !strings.Contains(err.Error(), "2026-10") {
		t.Fatalf("old payload without its key: %v", err)
	}
}

// TestPlainPayloadsPassThrough: payloads written before encryption (plain JSON) decode unchanged.
func TestPlainPayloadsPassThrough(t *testing.T) {
	spec, _ := secrets.NewKeySpec("k")
	plain, err := converter.GetDefaultDataConverter().ToPayload(note{CustomerID: "c-3"})
	if err != nil {
		t.Fatal(err)
	}
	var n note
	if err := payloadcodec.DataConverter(keys(t, spec)).FromPayload(plain, &n); err != nil || n.CustomerID != "c-3" {
		t.Fatalf("plain payload: %+v %v", n, err)
	}
}

// TestTamperedPayloadRefused: a changed ciphertext or a changed key id does not open.
func TestTamperedPayloadRefused(t *testing.T) {
	a, _ := secrets.NewKeySpec("a")
	b, _ := secrets.NewKeySpec("b")
	c := payloadcodec.Codec{Keys: keys(t, a+","+b)}
	p, _ := converter.GetDefaultDataConverter().ToPayload("secret")
	enc, err := c.Encode([]*commonpb.Payload{p})
	if err != nil {
		t.Fatal(err)
	}
	enc[0].Data[len(enc[0].Data)-1] ^= 1
	if _, err := c.Decode(enc); err == nil {
		t.Fatal("a changed ciphertext decoded")
	}
	enc, _ = c.Encode([]*commonpb.Payload{p})
	enc[0].Metadata[payloadcodec.MetadataKeyID] = []byte("b")
	if _, err := c.Decode(enc); err == nil {
		t.Fatal("a payload opened under another key id")
	}
}
