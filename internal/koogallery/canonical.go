package koogallery

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"unicode/utf8"
)

// value is one JSON value with object member order preserved, which encoding/json's map decoding loses. The
// signature is computed over a re-serialisation of the body, so which member order and which number text are
// kept decides whether it matches.
type value struct {
	kind    byte   // 's' string, 'n' number, 'b' bool, 'z' null, 'o' object, 'a' array
	text    string // string contents (unescaped), number text as sent, or "true"/"false"
	members []member
	items   []value
}

type member struct {
	key string
	val value
}

// maxDepth bounds nesting so a hostile body cannot make the parser recurse without limit.
const maxDepth = 32

// ErrNotObject is returned when a body is not one JSON object.
var ErrNotObject = errors.New("the body is not a JSON object")

// parseObject parses body as exactly one JSON object, preserving member order and number text. Duplicate
// top-level keys are refused: the marketplace never sends them, and a body that is read one way for the
// signature and another way for dispatch is the kind of ambiguity an attacker looks for.
func parseObject(body []byte) (value, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return value{}, fmt.Errorf("%w: %v", ErrNotObject, err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return value{}, ErrNotObject
	}
	v, err := parseObjectRest(dec, 1)
	if err != nil {
		return value{}, err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return value{}, fmt.Errorf("%w: data after the closing brace", ErrNotObject)
	}
	seen := make(map[string]bool, len(v.members))
	for _, m := range v.members {
		if seen[m.key] {
			return value{}, fmt.Errorf("%w: the key %q appears twice", ErrNotObject, m.key)
		}
		seen[m.key] = true
	}
	return v, nil
}

func parseObjectRest(dec *json.Decoder, depth int) (value, error) {
	if depth > maxDepth {
		return value{}, fmt.Errorf("%w: nested deeper than %d levels", ErrNotObject, maxDepth)
	}
	v := value{kind: 'o'}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return value{}, fmt.Errorf("%w: %v", ErrNotObject, err)
		}
		key, ok := tok.(string)
		if !ok {
			return value{}, fmt.Errorf("%w: object key is not a string", ErrNotObject)
		}
		val, err := parseValue(dec, depth)
		if err != nil {
			return value{}, err
		}
		v.members = append(v.members, member{key: key, val: val})
	}
	if _, err := dec.Token(); err != nil { // the closing '}'
		return value{}, fmt.Errorf("%w: %v", ErrNotObject, err)
	}
	return v, nil
}

func parseValue(dec *json.Decoder, depth int) (value, error) {
	tok, err := dec.Token()
	if err != nil {
		return value{}, fmt.Errorf("%w: %v", ErrNotObject, err)
	}
	switch t := tok.(type) {
	case string:
		return value{kind: 's', text: t}, nil
	case json.Number:
		return value{kind: 'n', text: t.String()}, nil
	case bool:
		if t {
			return value{kind: 'b', text: "true"}, nil
		}
		return value{kind: 'b', text: "false"}, nil
	case nil:
		return value{kind: 'z'}, nil
	case json.Delim:
		switch t {
		case '{':
			return parseObjectRest(dec, depth+1)
		case '[':
			if depth+1 > maxDepth {
				return value{}, fmt.Errorf("%w: nested deeper than %d levels", ErrNotObject, maxDepth)
			}
			a := value{kind: 'a'}
			for dec.More() {
				item, err := parseValue(dec, depth+1)
				if err != nil {
					return value{}, err
				}
				a.items = append(a.items, item)
			}
			if _, err := dec.Token(); err != nil {
				return value{}, fmt.Errorf("%w: %v", ErrNotObject, err)
			}
			return a, nil
		}
	}
	return value{}, fmt.Errorf("%w: unexpected token %v", ErrNotObject, tok)
}

// canonOpts selects one reading of the canonical payload. docs/koogallery.md records two ambiguities
// ("Canonical payload"): whether nested objects are key-sorted, and whether scalars are coerced to strings (the
// official demo reads the body into a Map<String,String>).
type canonOpts struct {
	sortNested     bool
	stringifyFlats bool
}

// Canonical returns the RequestPayload (docs/koogallery.md, "Canonical payload") for body: top-level keys sorted
// ascending, null members dropped, compact, HTML characters unescaped, numbers kept as sent, nested objects in
// their own order. It is the form kooflow signs with when it plays the marketplace (load generator, tests).
func Canonical(body []byte) ([]byte, error) {
	v, err := parseObject(body)
	if err != nil {
		return nil, err
	}
	return canonical(v, canonOpts{}), nil
}

func canonical(v value, o canonOpts) []byte {
	ms := make([]member, 0, len(v.members))
	for _, m := range v.members {
		if m.val.kind != 'z' {
			ms = append(ms, m)
		}
	}
	sort.SliceStable(ms, func(i, j int) bool { return ms[i].key < ms[j].key })
	var b bytes.Buffer
	b.WriteByte('{')
	for i, m := range ms {
		if i > 0 {
			b.WriteByte(',')
		}
		writeString(&b, m.key)
		b.WriteByte(':')
		if o.stringifyFlats && (m.val.kind == 'n' || m.val.kind == 'b') {
			writeString(&b, m.val.text)
			continue
		}
		writeValue(&b, m.val, o.sortNested)
	}
	b.WriteByte('}')
	return b.Bytes()
}

func writeValue(b *bytes.Buffer, v value, sortKeys bool) {
	switch v.kind {
	case 's':
		writeString(b, v.text)
	case 'n', 'b':
		b.WriteString(v.text)
	case 'z':
		b.WriteString("null")
	case 'a':
		b.WriteByte('[')
		for i, it := range v.items {
			if i > 0 {
				b.WriteByte(',')
			}
			writeValue(b, it, sortKeys)
		}
		b.WriteByte(']')
	case 'o':
		ms := v.members
		if sortKeys {
			ms = append([]member(nil), ms...)
			sort.SliceStable(ms, func(i, j int) bool { return ms[i].key < ms[j].key })
		}
		b.WriteByte('{')
		for i, m := range ms {
			if i > 0 {
				b.WriteByte(',')
			}
			writeString(b, m.key)
			b.WriteByte(':')
			writeValue(b, m.val, sortKeys)
		}
		b.WriteByte('}')
	}
}

// writeString writes s the way Jackson does by default: only '"', '\\' and control characters are escaped
// (short forms for \b \t \n \f \r, otherwise \u00XX in upper case); '<', '>', '&', '/', U+2028 and all other
// non-ASCII characters are written as raw UTF-8.
func writeString(b *bytes.Buffer, s string) {
	const hexUpper = "0123456789ABCDEF"
	b.WriteByte('"')
	for i := 0; i < len(s); {
		c := s[i]
		if c >= utf8.RuneSelf {
			r, size := utf8.DecodeRuneInString(s[i:])
			b.WriteRune(r) // invalid UTF-8 cannot come out of the decoder; WriteRune keeps it valid anyway
			i += size
			continue
		}
		switch c {
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		case '\b':
			b.WriteString(`\b`)
		case '\t':
			b.WriteString(`\t`)
		case '\n':
			b.WriteString(`\n`)
		case '\f':
			b.WriteString(`\f`)
		case '\r':
			b.WriteString(`\r`)
		default:
			if c < 0x20 {
				b.WriteString(`\u00`)
				b.WriteByte(hexUpper[c>>4])
				b.WriteByte(hexUpper[c&0xF])
			} else {
				b.WriteByte(c)
			}
		}
		i++
	}
	b.WriteByte('"')
}

// payloadCandidates lists every reading of the canonical payload the verifier accepts, most likely first,
// without duplicates: all of them are HMACs under the seller's secret, so accepting several readings of the
// same signed content does not let anyone without the key forge a request. The raw body is the last reading.
func payloadCandidates(v value, raw []byte) [][]byte {
	var out [][]byte
	add := func(p []byte) {
		for _, q := range out {
			if bytes.Equal(p, q) {
				return
			}
		}
		out = append(out, p)
	}
	add(canonical(v, canonOpts{}))
	add(canonical(v, canonOpts{stringifyFlats: true}))
	add(canonical(v, canonOpts{sortNested: true}))
	add(canonical(v, canonOpts{sortNested: true, stringifyFlats: true}))
	add(raw)
	return out
}
