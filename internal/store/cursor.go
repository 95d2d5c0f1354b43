package store

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
)

// ErrBadCursor is returned for a page token this server did not issue (or one that was altered).
var ErrBadCursor = errors.New("the cursor is not one this server issued")

// EncodeCursor writes a keyset position (any JSON-encodable struct of the last row's sort keys) as an opaque,
// URL-safe page token. Lists in the console page by keyset, not offset, so a page stays correct while rows are
// added and a deep page costs what the first does.
func EncodeCursor(position any) string {
	b, err := json.Marshal(position)
	if err != nil {
		// Positions are plain structs of strings, numbers and times; failing to encode one is a programming error.
		panic("encode cursor: " + err.Error())
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// DecodeCursor reads a token written by EncodeCursor into position, refusing anything else with ErrBadCursor.
func DecodeCursor(token string, position any) error {
	b, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil {
		return ErrBadCursor
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(position); err != nil {
		return ErrBadCursor
	}
	// One position and nothing after it: EncodeCursor never writes more.
	if _, err := dec.Token(); err != io.EOF {
		return ErrBadCursor
	}
	return nil
}
