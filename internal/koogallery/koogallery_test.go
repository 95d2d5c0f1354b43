package koogallery

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestCanonical(t *testing.T) {
	cases := []struct{ name, in, want string }{
		{"sorted, nulls dropped", `{"b":"2","a":"1","z":null}`, `{"a":"1","b":"2"}`},
		{"compact", "{ \"a\" : \"1\" ,\n \"b\":\"2\" }", `{"a":"1","b":"2"}`},
		{"no HTML escaping", `{"u":"<a&b>"}`, `{"u":"<a&b>"}`},
		{"escaped input is written raw", `{"u":"\u003ca\u0026b\u003e\u4e2d"}`, `{"u":"<a&b>中"}`},
		{"non-ASCII raw", `{"m":"中文"}`, `{"m":"中文"}`},
		{"control characters like Jackson", `{"c":"\u0001\t\n\"\\/"}`, `{"c":"\u0001\t\n\"\\/"}`},
		{"numbers keep their text", `{"n":1.50,"i":10}`, `{"i":10,"n":1.50}`},
		{"nested order kept", `{"p":{"b":1,"a":{"d":null,"c":2}},"a":[3,{"y":1,"x":2}]}`, `{"a":[3,{"y":1,"x":2}],"p":{"b":1,"a":{"d":null,"c":2}}}`},
		{"empty", `{}`, `{}`},
		{"U+2028 raw", "{\"s\":\"\u2028\"}", "{\"s\":\"\u2028\"}"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := Canonical([]byte(c.in))
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != c.want {
				t.Fatalf("got  %s\nwant %s", got, c.want)
			}
		})
	}
}

func TestCanonicalRefuses(t *testing.T) {
	deep := strings.Repeat(`{"a":`, 40) + `1` + strings.Repeat(`}`, 40)
	for _, in := range []string{``, `[]`, `"x"`, `{"a":1}{}`, `{"a":1,"a":2}`, `{"a":}`, `{"a":1,}`, `nul`, deep, `{"a":[` + strings.Repeat(`[`, 40) + `]}`} {
		if _, err := Canonical([]byte(in)); !errors.Is(err, ErrNotObject) {
			t.Errorf("Canonical(%.40q) error = %v, want ErrNotObject", in, err)
		}
	}
}

func TestPayloadCandidates(t *testing.T) {
	body := []byte(`{"testFlag":1,"productInfo":{"skuCode":"s","linearValue":5},"activity":"changeInstanceCheck"}`)
	b, err := ParseBody(body)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		`{"activity":"changeInstanceCheck","productInfo":{"skuCode":"s","linearValue":5},"testFlag":1}`,
		`{"activity":"changeInstanceCheck","productInfo":{"skuCode":"s","linearValue":5},"testFlag":"1"}`,
		`{"activity":"changeInstanceCheck","productInfo":{"linearValue":5,"skuCode":"s"},"testFlag":1}`,
		`{"activity":"changeInstanceCheck","productInfo":{"linearValue":5,"skuCode":"s"},"testFlag":"1"}`,
		string(body),
	}
	got := b.candidates()
	if len(got) != len(want) {
		t.Fatalf("%d candidates, want %d: %q", len(got), len(want), got)
	}
	for i := range want {
		if string(got[i]) != want[i] {
			t.Errorf("candidate %d = %s, want %s", i, got[i], want[i])
		}
	}
	// A flat all-string body has one canonical reading plus the raw bytes.
	flat, _ := ParseBody([]byte(vectorBody))
	if n := len(flat.candidates()); n != 1 {
		t.Errorf("flat canonical body: %d candidates, want 1 (raw equals canonical)", n)
	}
}

// sign builds a signed query for body at ts with nonce.
func sign(t *testing.T, key, body string, ts time.Time, nonce string) string {
	t.Helper()
	q, err := SignQuery(key, []byte(body), ts, nonce)
	if err != nil {
		t.Fatal(err)
	}
	return q.Encode()
}

func TestVerifyAcceptsEveryReading(t *testing.T) {
	now := time.Now()
	v := Verifier{AccessKey: vectorKey, Window: time.Minute, Now: func() time.Time { return now }}
	body := `{"activity":"changeInstanceCheck","instanceId":"i-1","productInfo":{"skuCode":"s","linearValue":5},"testFlag":1}`
	b, _ := ParseBody([]byte(body))
	ts := "1700000000000"
	for i, p := range b.candidates() {
		sig := RequestSignature(vectorKey, p, "n1", ts)
		q := url.Values{"signature": {sig}, "timestamp": {ts}, "nonce": {"n1"}}.Encode()
		v.Now = func() time.Time { return time.UnixMilli(1700000000000) }
		if _, err := v.Verify(q, b); err != nil {
			t.Errorf("reading %d (%s) refused: %v", i, p, err)
		}
	}
}

func TestVerifyFailures(t *testing.T) {
	now := time.UnixMilli(1700000000000)
	v := Verifier{AccessKey: vectorKey, Window: 60 * time.Second, Now: func() time.Time { return now }}
	good := sign(t, vectorKey, vectorBody, now, "N1")
	flip := func(q string) string {
		vals, _ := url.ParseQuery(q)
		raw, _ := hex.DecodeString(vals.Get("signature"))
		raw[7] ^= 0x10 // exactly one bit of the 256
		vals.Set("signature", hex.EncodeToString(raw))
		return vals.Encode()
	}
	cases := []struct {
		name  string
		query string
		body  string
		want  Verdict
	}{
		{"good", good, vectorBody, VerdictOK},
		{"reordered body still verifies", good, `{"testFlag":"1","orderLineId":"CS2211181819B4LVS-000001","orderId":"CS2211181819B4LVS","businessId":"87b94795-0603-4e24-8ae5-69420d60e3c8","activity":"newInstance","x":null}`, VerdictOK},
		{"one bit of the signature flipped", flip(good), vectorBody, VerdictBadSig},
		{"body changed", good, strings.Replace(vectorBody, "CS2211181819B4LVS-000001", "CS2211181819B4LVS-000002", 1), VerdictBadSig},
		{"other key", sign(t, "another-key", vectorBody, now, "N1"), vectorBody, VerdictBadSig},
		{"61 s old", sign(t, vectorKey, vectorBody, now.Add(-61*time.Second), "N1"), vectorBody, VerdictStale},
		{"61 s ahead", sign(t, vectorKey, vectorBody, now.Add(61*time.Second), "N1"), vectorBody, VerdictStale},
		{"59 s old", sign(t, vectorKey, vectorBody, now.Add(-59*time.Second), "N1"), vectorBody, VerdictOK},
		{"no signature", "timestamp=1700000000000&nonce=a", vectorBody, VerdictMissing},
		{"no timestamp", "signature=" + vectorSig + "&nonce=a", vectorBody, VerdictMissing},
		{"no nonce", "signature=" + vectorSig + "&timestamp=1700000000000", vectorBody, VerdictMissing},
		{"empty query", "", vectorBody, VerdictMissing},
		{"signature twice", good + "&signature=" + vectorSig, vectorBody, VerdictMissing},
		{"signature not hex", "signature=zz&timestamp=1700000000000&nonce=a", vectorBody, VerdictMalformed},
		{"timestamp not a number", "signature=" + vectorSig + "&timestamp=17e11&nonce=a", vectorBody, VerdictMalformed},
		{"timestamp in microseconds", "signature=" + vectorSig + "&timestamp=1700000000000000&nonce=a", vectorBody, VerdictMalformed},
		{"nonce with spaces", "signature=" + vectorSig + "&timestamp=1700000000000&nonce=a%20b", vectorBody, VerdictMalformed},
		{"nonce too long", "signature=" + vectorSig + "&timestamp=1700000000000&nonce=" + strings.Repeat("a", 129), vectorBody, VerdictMalformed},
		{"bad query escape", "signature=%zz", vectorBody, VerdictMalformed},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b, err := ParseBody([]byte(c.body))
			if err != nil {
				t.Fatal(err)
			}
			_, err = v.Verify(c.query, b)
			got := VerdictOK
			if err != nil {
				var ae *AuthError
				if !errors.As(err, &ae) {
					t.Fatalf("error %v is not an AuthError", err)
				}
				got = ae.Verdict
				if strings.Contains(ae.Detail, vectorSig) {
					t.Fatalf("detail reveals a signature: %s", ae.Detail)
				}
			}
			if got != c.want {
				t.Fatalf("verdict = %s (%v), want %s", got, err, c.want)
			}
		})
	}
}

func TestVerifySecondsTimestamp(t *testing.T) {
	// Some documentation copies say seconds; 10 digits are read as seconds (docs/koogallery.md, "Time formats").
	now := time.Unix(1700000000, 0)
	v := Verifier{AccessKey: vectorKey, Window: time.Minute, Now: func() time.Time { return now }}
	b, _ := ParseBody([]byte(vectorBody))
	payload, _ := Canonical([]byte(vectorBody))
	sig := RequestSignature(vectorKey, payload, "n", "1700000010")
	if _, err := v.Verify(url.Values{"signature": {sig}, "timestamp": {"1700000010"}, "nonce": {"n"}}.Encode(), b); err != nil {
		t.Fatal(err)
	}
}

func TestParseTime(t *testing.T) {
	cases := []struct {
		in   string
		want time.Time
		ok   bool
	}{
		{"20221124023618", time.Date(2022, 11, 24, 2, 36, 18, 0, time.UTC), true},
		{"20221124023618256", time.Date(2022, 11, 24, 2, 36, 18, 256e6, time.UTC), true},
		{"20251121235959", time.Date(2025, 11, 21, 23, 59, 59, 0, time.UTC), true},
		{"2022112402361", time.Time{}, false},
		{"202211240236182", time.Time{}, false},
		{"20221324023618", time.Time{}, false},
		{"2022-11-24T02:3", time.Time{}, false},
		{"", time.Time{}, false},
		{"+2022112402361", time.Time{}, false},
	}
	for _, c := range cases {
		got, err := ParseTime(c.in)
		if (err == nil) != c.ok {
			t.Errorf("ParseTime(%q) error = %v, want ok=%v", c.in, err, c.ok)
			continue
		}
		if c.ok && !got.Equal(c.want) {
			t.Errorf("ParseTime(%q) = %v, want %v", c.in, got, c.want)
		}
		if c.ok && got.Location() != time.UTC {
			t.Errorf("ParseTime(%q) location = %v", c.in, got.Location())
		}
	}
	if s := FormatTime(time.Date(2025, 1, 2, 3, 4, 5, 0, time.FixedZone("CST", 8*3600))); s != "20250101190405" {
		t.Errorf("FormatTime = %s", s)
	}
}

func TestEncodeEscapesNonASCII(t *testing.T) {
	r := Response{ResultCode: ResultSuccess, ResultMsg: "成功", Info: []InstanceInfo{{
		InstanceID: "i-1",
		AppInfo:    &AppInfo{FrontEndURL: "https://x.example/?a=1&b=<2>", UserName: "admin", Password: "p\"w", Memo: "中文 😀"},
	}}}
	got := string(Encode(r))
	want := `{"resultCode":"000000","resultMsg":"\u6210\u529f","info":[{"instanceId":"i-1","appInfo":{"frontEndUrl":"https://x.example/?a=1&b=<2>","userName":"admin","password":"p\"w","memo":"\u4e2d\u6587 \ud83d\ude00"}}]}`
	if got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
	for i := 0; i < len(got); i++ {
		if got[i] >= 0x80 {
			t.Fatalf("non-ASCII byte at %d", i)
		}
	}
	var back Response
	if err := json.Unmarshal([]byte(got), &back); err != nil {
		t.Fatal(err)
	}
	if back.Info[0].AppInfo.Memo != "中文 😀" || back.ResultMsg != "成功" {
		t.Fatalf("round trip lost characters: %+v", back.Info[0].AppInfo)
	}
	// The documentation's own example: 中文 → \u4e2d\u6587.
	if m := string(Encode(Response{ResultCode: "000000", ResultMsg: "中文"})); m != `{"resultCode":"000000","resultMsg":"\u4e2d\u6587"}` {
		t.Fatalf("doc example: %s", m)
	}
}

func TestEncodeCutsResultMsg(t *testing.T) {
	long := strings.Repeat("é", 200) // 400 bytes
	var r Response
	if err := json.Unmarshal(Encode(Response{ResultCode: "000005", ResultMsg: long}), &r); err != nil {
		t.Fatal(err)
	}
	if len(r.ResultMsg) > maxResultMsg || !strings.HasPrefix(long, r.ResultMsg) {
		t.Fatalf("resultMsg not cut on a character boundary within 255 bytes: %d bytes", len(r.ResultMsg))
	}
}

func TestRequestPerActivity(t *testing.T) {
	exp := time.Date(2026, 12, 31, 15, 59, 59, 0, time.UTC)
	ids100 := make([]string, 100)
	for i := range ids100 {
		ids100[i] = "i-" + strings.Repeat("x", 3) + string(rune('a'+i%26)) + string(rune('a'+i/26))
	}
	cases := []struct {
		name string
		body string
		want Request
		err  string // substring of the error; empty means valid
	}{
		{"newInstance", `{"activity":"newInstance","orderId":"O1","orderLineId":"O1-000001","businessId":"B1","testFlag":"1"}`,
			Request{Activity: "newInstance", OrderID: "O1", OrderLineID: "O1-000001", BusinessID: "B1", TestFlag: true}, ""},
		{"newInstance testFlag 0", `{"activity":"newInstance","orderId":"O1","orderLineId":"L","businessId":"B","testFlag":"0"}`,
			Request{Activity: "newInstance", OrderID: "O1", OrderLineID: "L", BusinessID: "B"}, ""},
		{"newInstance numeric testFlag", `{"activity":"newInstance","orderId":"O1","orderLineId":"L","businessId":"B","testFlag":1}`,
			Request{Activity: "newInstance", OrderID: "O1", OrderLineID: "L", BusinessID: "B", TestFlag: true}, ""},
		{"newInstance missing orderLineId", `{"activity":"newInstance","orderId":"O1","businessId":"B"}`, Request{}, "orderLineId: is required"},
		{"newInstance null orderId", `{"activity":"newInstance","orderId":null,"orderLineId":"L","businessId":"B"}`, Request{}, "orderId: is required"},
		{"newInstance empty businessId", `{"activity":"newInstance","orderId":"O","orderLineId":"L","businessId":""}`, Request{}, "businessId: must not be empty"},
		{"newInstance orderId too long", `{"activity":"newInstance","orderId":"` + strings.Repeat("o", 65) + `","orderLineId":"L","businessId":"B"}`, Request{}, "orderId: is 65 bytes long"},
		{"newInstance orderId object", `{"activity":"newInstance","orderId":{"a":1},"orderLineId":"L","businessId":"B"}`, Request{}, "orderId: must be a string"},
		{"newInstance control char", `{"activity":"newInstance","orderId":"O\u0000","orderLineId":"L","businessId":"B"}`, Request{}, "control characters"},
		{"bad testFlag", `{"activity":"newInstance","orderId":"O","orderLineId":"L","businessId":"B","testFlag":"2"}`, Request{}, "testFlag"},
		{"queryInstance one", `{"activity":"queryInstance","instanceId":"i-1"}`,
			Request{Activity: "queryInstance", InstanceIDs: []string{"i-1"}}, ""},
		{"queryInstance list with spaces and a duplicate", `{"activity":"queryInstance","instanceId":"i-1, i-2,i-1"}`,
			Request{Activity: "queryInstance", InstanceIDs: []string{"i-1", "i-2"}}, ""},
		{"queryInstance 100", `{"activity":"queryInstance","instanceId":"` + strings.Join(ids100, ",") + `"}`,
			Request{Activity: "queryInstance", InstanceIDs: ids100}, ""},
		{"queryInstance 101", `{"activity":"queryInstance","instanceId":"` + strings.Join(ids100, ",") + `,x"}`, Request{}, "at most 100"},
		{"queryInstance empty element", `{"activity":"queryInstance","instanceId":"a,,b"}`, Request{}, "empty element"},
		{"queryInstance missing", `{"activity":"queryInstance"}`, Request{}, "instanceId: is required"},
		{"refresh RENEWAL 14 digits", `{"activity":"refreshInstance","scene":"RENEWAL","orderId":"R1","orderLineId":"R1-1","instanceId":"i-1","expireTime":"20261231155959"}`,
			Request{Activity: "refreshInstance", Scene: "RENEWAL", OrderID: "R1", OrderLineID: "R1-1", InstanceID: "i-1", ExpireTime: exp}, ""},
		{"refresh TRIAL_TO_FORMAL 17 digits with productId", `{"activity":"refreshInstance","scene":"TRIAL_TO_FORMAL","orderId":"R1","orderLineId":"R1-1","instanceId":"i-1","productId":"P2","expireTime":"20261231155959000"}`,
			Request{Activity: "refreshInstance", Scene: "TRIAL_TO_FORMAL", OrderID: "R1", OrderLineID: "R1-1", InstanceID: "i-1", ProductID: "P2", ExpireTime: exp}, ""},
		{"refresh UNSUBSCRIBE_RENEWAL_PERIOD", `{"activity":"refreshInstance","scene":"UNSUBSCRIBE_RENEWAL_PERIOD","orderId":"R1","orderLineId":"R1-1","instanceId":"i-1","expireTime":"20261231155959"}`,
			Request{Activity: "refreshInstance", Scene: "UNSUBSCRIBE_RENEWAL_PERIOD", OrderID: "R1", OrderLineID: "R1-1", InstanceID: "i-1", ExpireTime: exp}, ""},
		{"refresh RENEWAL_CHANGE", `{"activity":"refreshInstance","scene":"RENEWAL_CHANGE","orderId":"R1","orderLineId":"R1-1","instanceId":"i-1","expireTime":"20261231155959"}`,
			Request{Activity: "refreshInstance", Scene: "RENEWAL_CHANGE", OrderID: "R1", OrderLineID: "R1-1", InstanceID: "i-1", ExpireTime: exp}, ""},
		{"refresh unknown scene", `{"activity":"refreshInstance","scene":"UPGRADE","orderId":"R1","orderLineId":"R1-1","instanceId":"i-1","expireTime":"20261231155959"}`, Request{}, `scene: "UPGRADE" is not one of`},
		{"refresh missing scene", `{"activity":"refreshInstance","orderId":"R1","orderLineId":"R1-1","instanceId":"i-1","expireTime":"20261231155959"}`, Request{}, "scene: is required"},
		{"refresh bad expireTime", `{"activity":"refreshInstance","scene":"RENEWAL","orderId":"R1","orderLineId":"R1-1","instanceId":"i-1","expireTime":"2026-12-31"}`, Request{}, "expireTime"},
		{"refresh missing expireTime", `{"activity":"refreshInstance","scene":"RENEWAL","orderId":"R1","orderLineId":"R1-1","instanceId":"i-1"}`, Request{}, "expireTime: is required"},
		{"freeze", `{"activity":"updateInstanceStatus","instanceId":"i-1","status":"FREEZE"}`,
			Request{Activity: "updateInstanceStatus", InstanceID: "i-1", Status: "FREEZE"}, ""},
		{"unfreeze", `{"activity":"updateInstanceStatus","instanceId":"i-1","status":"UNFREEZE","testFlag":"1"}`,
			Request{Activity: "updateInstanceStatus", InstanceID: "i-1", Status: "UNFREEZE", TestFlag: true}, ""},
		{"status NORMAL (V1 spelling)", `{"activity":"updateInstanceStatus","instanceId":"i-1","status":"NORMAL"}`, Request{}, "status"},
		{"release", `{"activity":"releaseInstance","instanceId":"i-1"}`, Request{Activity: "releaseInstance", InstanceID: "i-1"}, ""},
		{"release after unsubscribe", `{"activity":"releaseInstance","instanceId":"i-1","orderId":"U1","orderLineId":"U1-1"}`,
			Request{Activity: "releaseInstance", InstanceID: "i-1", OrderID: "U1", OrderLineID: "U1-1"}, ""},
		{"release no instance", `{"activity":"releaseInstance"}`, Request{}, "instanceId: is required"},
		{"upgrade", `{"activity":"upgradeInstance","instanceId":"i-1","orderId":"C1","orderLineId":"C1-1"}`,
			Request{Activity: "upgradeInstance", InstanceID: "i-1", OrderID: "C1", OrderLineID: "C1-1"}, ""},
		{"upgrade without order", `{"activity":"upgradeInstance","instanceId":"i-1"}`, Request{}, "orderId: is required"},
		{"changeInstanceCheck", `{"activity":"changeInstanceCheck","instanceId":"i-1","productInfo":{"productId":"P","skuCode":"S","linearValue":20}}`,
			Request{Activity: "changeInstanceCheck", InstanceID: "i-1", ProductInfo: &ProductInfo{ProductID: "P", SKUCode: "S", LinearValue: 20}}, ""},
		{"changeInstanceCheck productInfo as string", `{"activity":"changeInstanceCheck","instanceId":"i-1","productInfo":"{\"skuCode\":\"S\",\"linearValue\":\"3\"}"}`,
			Request{Activity: "changeInstanceCheck", InstanceID: "i-1", ProductInfo: &ProductInfo{SKUCode: "S", LinearValue: 3}}, ""},
		{"changeInstanceCheck empty productInfo", `{"activity":"changeInstanceCheck","instanceId":"i-1","productInfo":{}}`, Request{}, "productInfo"},
		{"changeInstanceCheck negative linearValue", `{"activity":"changeInstanceCheck","instanceId":"i-1","productInfo":{"linearValue":-1}}`, Request{}, "linearValue"},
		{"changeInstanceCheck productInfo array", `{"activity":"changeInstanceCheck","instanceId":"i-1","productInfo":[1]}`, Request{}, "productInfo: must be an object"},
		{"unknown activity", `{"activity":"expireInstance","instanceId":"i-1"}`, Request{}, `activity: "expireInstance" is not an activity`},
		{"missing activity", `{"instanceId":"i-1"}`, Request{}, "activity: is required"},
		{"activity is a number", `{"activity":7}`, Request{}, `"7" is not an activity`},
		{"several problems at once", `{"activity":"refreshInstance","scene":"X","instanceId":"i"}`, Request{}, "orderId: is required"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b, err := ParseBody([]byte(c.body))
			if err != nil {
				t.Fatal(err)
			}
			r, err := b.Request()
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("error = %v, want one containing %q", err, c.err)
				}
				var fe *FieldError
				if !errors.As(err, &fe) {
					t.Fatalf("error %v is not a FieldError", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			gotJSON, _ := json.Marshal(r)
			wantJSON, _ := json.Marshal(c.want)
			if string(gotJSON) != string(wantJSON) {
				t.Fatalf("got  %s\nwant %s", gotJSON, wantJSON)
			}
		})
	}
}

func TestKeysOfInvalidRequest(t *testing.T) {
	b, err := ParseBody([]byte(`{"activity":"refreshInstance","orderId":"O","instanceId":"a, b","scene":{"x":1},"testFlag":"1"}`))
	if err != nil {
		t.Fatal(err)
	}
	k := b.Keys()
	if k.Activity != "refreshInstance" || k.OrderID != "O" || len(k.InstanceIDs) != 2 || k.InstanceIDs[1] != "b" || k.Scene != "" || !k.TestFlag {
		t.Fatalf("keys = %+v", k)
	}
}

func TestSignQueryRoundTrip(t *testing.T) {
	now := time.Now()
	body := NewInstanceBody("O1", "O1-000001", "B1", true)
	q, err := SignQuery("k", body, now, NewNonce())
	if err != nil {
		t.Fatal(err)
	}
	if n := q.Get("nonce"); len(n) != 64 || strings.ToUpper(n) != n {
		t.Fatalf("nonce %q is not 64 upper-case hex characters", n)
	}
	if s := q.Get("signature"); strings.ToUpper(s) != s {
		t.Fatalf("signature %q is not upper case", s)
	}
	b, _ := ParseBody(body)
	if _, err := (Verifier{AccessKey: "k", Window: time.Minute}).Verify(q.Encode(), b); err != nil {
		t.Fatal(err)
	}
}
