// Package payloadcodec encrypts what kooflow hands Temporal: every payload (workflow and activity inputs and
// results, Update and signal arguments, memos, carried state) is sealed with AES-256-GCM under the data keys
// (internal/secrets, KOOFLOW_DATA_KEYS) before it leaves the process, so Temporal's database and anyone reading
// histories see ciphertext (docs/security.md, "Temporal payloads"). The key id travels in each payload's
// metadata, so keys rotate like the appInfo's. A payload without this codec's encoding passes through: every
// history recorded before encryption still replays and decodes.
package payloadcodec

import (
	"fmt"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
	"google.golang.org/protobuf/proto"

	"github.com/kooflow/kooflow/internal/secrets"
)

// Metadata of an encrypted payload.
const (
	// Encoding is the "encoding" metadata value of a sealed payload; Data is nonce||ciphertext of the original
	// payload, protobuf-serialised (metadata included).
	Encoding = "binary/encrypted"
	// MetadataKeyID names the data key that sealed it.
	MetadataKeyID = "encryption-key-id"
	// associated binds the ciphertext to its use: a payload cannot be passed off as an appInfo and the reverse.
	associated = "kooflow temporal payload v1"
)

// Codec is the converter.PayloadCodec; Keys seal with the first key and open with any.
type Codec struct {
	Keys *secrets.Keyring
}

var _ converter.PayloadCodec = Codec{}

// Encode seals each payload under the current key.
func (c Codec) Encode(payloads []*commonpb.Payload) ([]*commonpb.Payload, error) {
	out := make([]*commonpb.Payload, len(payloads))
	for i, p := range payloads {
		plain, err := proto.Marshal(p)
		if err != nil {
			return nil, fmt.Errorf("encrypt a Temporal payload: %w", err)
		}
		id, sealed, err := c.Keys.Seal(plain, associated)
		if err != nil {
			return nil, fmt.Errorf("encrypt a Temporal payload: %w", err)
		}
		out[i] = &commonpb.Payload{
			Metadata: map[string][]byte{converter.MetadataEncoding: []byte(Encoding), MetadataKeyID: []byte(id)},
			Data:     sealed,
		}
	}
	return out, nil
}

// Decode opens each sealed payload; others are returned unchanged.
func (c Codec) Decode(payloads []*commonpb.Payload) ([]*commonpb.Payload, error) {
	out := make([]*commonpb.Payload, len(payloads))
	for i, p := range payloads {
		if string(p.GetMetadata()[converter.MetadataEncoding]) != Encoding {
			out[i] = p
			continue
		}
		id := string(p.Metadata[MetadataKeyID])
		plain, err := c.Keys.Open(id, p.Data, associated)
		if err != nil {
			return nil, fmt.Errorf("decrypt a Temporal payload: %w", err)
		}
		var orig commonpb.Payload
		if err := proto.Unmarshal(plain, &orig); err != nil {
			return nil, fmt.Errorf("decrypt a Temporal payload sealed under key %q: %w", id, err)
		}
		out[i] = &orig
	}
	return out, nil
}

// DataConverter is Temporal's default JSON converter with payloads sealed by keys; every client and worker of a
// deployment must use it (and the same keys).
func DataConverter(keys *secrets.Keyring) converter.DataConverter {
	return converter.NewCodecDataConverter(converter.GetDefaultDataConverter(), Codec{Keys: keys})
}
