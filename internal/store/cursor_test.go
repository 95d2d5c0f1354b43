package store

import (
	"encoding/base64"
	"errors"
	"testing"
	"time"
)

func TestCursorRoundTripAndRefusals(t *testing.T) {
	type pos struct {
		At time.Time `json:"t"`
		ID string    `json:"i"`
	}
	in := pos{At: time.Date(2026, 11, 29, 8, 0, 0, 123, time.UTC), ID: "i-1"}
	var out pos
	if err := DecodeCursor(EncodeCursor(in), &out); err != nil || !out.At.Equal(in.At) || out.ID != in.ID {
		t.Fatalf("round trip: %+v, %v", out, err)
	}
	valid := `{"t":"2026-11-29T08:00:00Z","i":"i-1"}`
	for _, bad := range []string{"garbage!!", EncodeCursor(map[string]int{"x": 1}), "", "bm90IGpzb24",
		base64.RawURLEncoding.EncodeToString([]byte(valid + "x")),
		base64.RawURLEncoding.EncodeToString([]byte(valid + "}")),
		base64.RawURLEncoding.EncodeToString([]byte(valid + valid)),
	} {
		if err := DecodeCursor(bad, &out); !errors.Is(err, ErrBadCursor) {
			t.Errorf("DecodeCursor(%q) = %v, want ErrBadCursor", bad, err)
		}
	}
}
