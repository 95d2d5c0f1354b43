package koogallery

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// FuzzParseAndVerify feeds arbitrary bodies and query strings through everything the gateway does before it
// dispatches: parsing, canonicalisation, verification, field validation and the response encoding. Every
// outcome must be one of the typed errors the gateway maps to a result code, never a panic.
//
//	go test ./koogallery -run '^$' -fuzz FuzzParseAndVerify -fuzztime 1m
func FuzzParseAndVerify(f *testing.F) {
	now := time.UnixMilli(1680508066618)
	good, _ := SignQuery(vectorKey, []byte(vectorBody), now, vectorNonce)
	f.Add([]byte(vectorBody), good.Encode())
	f.Add([]byte(`{"activity":"queryInstance","instanceId":"a,b,,c"}`), "signature=00&timestamp=1&nonce=x")
	f.Add([]byte(`{"activity":"changeInstanceCheck","instanceId":"i","productInfo":{"linearValue":"9999999999999999999999"}}`), "")
	f.Add([]byte(`{"activity":"refreshInstance","scene":"RENEWAL","orderId":"o","orderLineId":"l","instanceId":"i","expireTime":"20261301000000"}`), "signature=%zz")
	f.Add([]byte(`{"activity":"newInstance","orderId":"\ud800","orderLineId":1e999,"businessId":true}`), "nonce=&nonce=")
	f.Add([]byte(`{"a":[[[[{"b":null}]]]],"activity":null}`), "timestamp=99999999999999999999")
	f.Add([]byte("\xff\xfe{}"), "")
	v := Verifier{AccessKey: vectorKey, Window: time.Minute, Now: func() time.Time { return now }}
	f.Fuzz(func(t *testing.T, body []byte, query string) {
		b, err := ParseBody(body)
		if err != nil {
			if !errors.Is(err, ErrNotObject) {
				t.Fatalf("ParseBody error %v is not ErrNotObject", err)
			}
			return
		}
		if _, err := v.Verify(query, b); err != nil {
			var ae *AuthError
			if !errors.As(err, &ae) {
				t.Fatalf("Verify error %v is not an AuthError", err)
			}
		}
		k := b.Keys()
		if len(k.InstanceIDs) > MaxQueryInstances {
			t.Fatalf("%d instance ids in the keys", len(k.InstanceIDs))
		}
		r, err := b.Request()
		msg := "ok"
		if err != nil {
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("Request error %v is not a FieldError", err)
			}
			msg = err.Error()
		} else if r.Activity == ActivityQueryInstance && (len(r.InstanceIDs) == 0 || len(r.InstanceIDs) > MaxQueryInstances) {
			t.Fatalf("valid queryInstance with %d ids", len(r.InstanceIDs))
		}
		// Whatever the message, the response must be ASCII JSON that decodes back.
		out := Encode(Response{ResultCode: ResultInvalidParams, ResultMsg: msg, InstanceID: k.OrderID})
		for _, c := range out {
			if c >= utf8.RuneSelf {
				t.Fatalf("non-ASCII response byte in %q", out)
			}
		}
		var back Response
		if err := json.Unmarshal(out, &back); err != nil {
			t.Fatalf("response %q does not decode: %v", out, err)
		}
		if back.ResultMsg != cut(strings.ToValidUTF8(msg, "\uFFFD"), maxResultMsg) && utf8.ValidString(msg) {
			t.Fatalf("resultMsg changed in transit: %q vs %q", back.ResultMsg, msg)
		}
	})
}
