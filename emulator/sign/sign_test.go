package sign

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// The test vectors of docs/koogallery.md ("Test vectors"), computed by an independent JDK program.
const vectorKey = "0123456789abcdef-test-access-key"

func TestRequestSignatureVector(t *testing.T) {
	body := []byte(`{"activity":"newInstance","businessId":"87b94795-0603-4e24-8ae5-69420d60e3c8","orderId":"CS2211181819B4LVS","orderLineId":"CS2211181819B4LVS-000001","testFlag":"1"}`)
	nonce := "50D83FDECAED6CCD8EF597F2A577950527928BA287D04E6036E92B2806FD17DA"
	got, err := RequestSignature(vectorKey, body, nonce, "1680508066618")
	if err != nil {
		t.Fatal(err)
	}
	if want := "1be455bcd046b27d52915d07756e631b1f1cd53f5cc4f5c4474777f5055bdcc1"; got != want {
		t.Fatalf("signature = %s, want %s", got, want)
	}
}

func TestRequestSignatureCanonicalisesBody(t *testing.T) {
	// The same payload in another key order, with a null and pretty-printing, signs the same: the seller must
	// re-canonicalise rather than hash the bytes it received.
	body := []byte(`{ "testFlag": "1", "orderLineId": "CS2211181819B4LVS-000001", "extra": null,
	  "orderId": "CS2211181819B4LVS", "businessId": "87b94795-0603-4e24-8ae5-69420d60e3c8", "activity": "newInstance" }`)
	got, err := RequestSignature(vectorKey, body, "50D83FDECAED6CCD8EF597F2A577950527928BA287D04E6036E92B2806FD17DA", "1680508066618")
	if err != nil {
		t.Fatal(err)
	}
	if want := "1be455bcd046b27d52915d07756e631b1f1cd53f5cc4f5c4474777f5055bdcc1"; got != want {
		t.Fatalf("signature = %s, want %s", got, want)
	}
}

func TestCanonicalPayload(t *testing.T) {
	cases := []struct{ in, want string }{
		{`{"b":"x","a":"<&>"}`, `{"a":"<&>","b":"x"}`},
		{`{"n":1,"t":true,"z":null}`, `{"n":"1","t":"true"}`},
		{`{"p":{"b":1, "a":2},"c":"中文"}`, `{"c":"中文","p":{"b":1,"a":2}}`},
	}
	for _, c := range cases {
		got, err := CanonicalPayload([]byte(c.in))
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != c.want {
			t.Errorf("CanonicalPayload(%s) = %s, want %s", c.in, got, c.want)
		}
	}
	if _, err := CanonicalPayload([]byte(`[1]`)); err == nil {
		t.Error("an array body must be refused")
	}
}

func TestBodySignVector(t *testing.T) {
	body := []byte(`{"resultCode":"000000","resultMsg":"success.","instanceId":"61e834ba-7b97-4418-b8f7-e5345137278c"}`)
	if got, want := BodySign(vectorKey, body), "+gVlHsX34w9doe7CBKaC61rKKl+caotAbJjr1TiRkHs="; got != want {
		t.Fatalf("BodySign = %s, want %s", got, want)
	}
	header := BodySignHeader(vectorKey, body)
	if want := `sign_type="HMAC-SHA256", signature= "+gVlHsX34w9doe7CBKaC61rKKl+caotAbJjr1TiRkHs="`; header != want {
		t.Fatalf("header = %s, want %s", header, want)
	}
	if err := VerifyBodySign(vectorKey, body, header); err != nil {
		t.Fatal(err)
	}
	// Without the space, too.
	if err := VerifyBodySign(vectorKey, body, strings.Replace(header, "= ", "=", 1)); err != nil {
		t.Fatal(err)
	}
}

func TestVerifyBodySignRejects(t *testing.T) {
	body := []byte(`{"resultCode":"000000"}`)
	good := BodySignHeader(vectorKey, body)
	bad := map[string]string{
		"missing":       "",
		"tampered body": good, // checked against other bytes below
		"wrong key":     BodySignHeader("another-key", body),
		"wrong type":    strings.Replace(good, "HMAC-SHA256", "HMAC-SHA1", 1),
		"unquoted":      strings.ReplaceAll(good, `"`, ""),
		"not base64":    `sign_type="HMAC-SHA256", signature= "!!!"`,
	}
	for name, h := range bad {
		b := body
		if name == "tampered body" {
			b = []byte(`{"resultCode":"000001"}`)
		}
		if err := VerifyBodySign(vectorKey, b, h); !errors.Is(err, ErrBodySign) {
			t.Errorf("%s: err = %v, want ErrBodySign", name, err)
		}
	}
}

func TestUsageSignatureVector(t *testing.T) {
	// The vector's body in another key order: natural ordering is part of the algorithm.
	body := []byte(`{"usage_records":[{"usage_value":99,"metering_sn":"sn-0001","instance_id":"7f141bf1-aec8-4859-8323-fb3a8ad50721","record_time":"20220809T091000Z","begin_time":"20220809T080000Z","end_time":"20220809T090000Z"}]}`)
	got, err := UsageSignature(vectorKey, "1709690865879", "6c63c221-1f6b-4141-8ff4-22f5dfe82b65", body)
	if err != nil {
		t.Fatal(err)
	}
	if want := "Hcox4Jt8xsvKsQ99Zfaqnqd+Lax9EKsfAi+7H+9j//4="; got != want {
		t.Fatalf("usage signature = %s, want %s", got, want)
	}
	if err := VerifyUsageSignature(vectorKey, "1709690865879", "6c63c221-1f6b-4141-8ff4-22f5dfe82b65", got, body); err != nil {
		t.Fatal(err)
	}
	if err := VerifyUsageSignature(vectorKey, "1709690865880", "6c63c221-1f6b-4141-8ff4-22f5dfe82b65", got, body); err == nil {
		t.Fatal("a changed ts must not verify")
	}
}

func TestSignedQueryFreshNonce(t *testing.T) {
	body := []byte(`{"activity":"queryInstance","instanceId":"x"}`)
	now := time.UnixMilli(1680508066618)
	a, err := SignedQuery(vectorKey, body, now)
	if err != nil {
		t.Fatal(err)
	}
	b, err := SignedQuery(vectorKey, body, now)
	if err != nil {
		t.Fatal(err)
	}
	if a == b {
		t.Fatal("two deliveries got the same nonce")
	}
	if !strings.Contains(a, "timestamp=1680508066618&") {
		t.Fatalf("query %s lacks the ms timestamp", a)
	}
}

func TestKitSignatureVector(t *testing.T) {
	// The documentation's unsorted order; the vector is over the sorted payload with integers unquoted.
	body := []byte(`{"tenantId":"68cbc86abc2018ab880d92f36422fa0e","tenantCode":"huawei","name":"huaiweitest","domainName":"https://example.tenantaccount.com","flag":1,"testFlag":0,"timeStamp":"20220413093539534","instanceId":"huaiweitest123456","orderId":"CS1906666666ABCDE"}`)
	got, err := KitSignature(vectorKey, body, "50D83FDECAED6CCD8EF597F2A577950527928BA287D04E6036E92B2806FD17DA", "1680508066618")
	if err != nil {
		t.Fatal(err)
	}
	if want := "9192305a92849992f62925d4c37415b883d1e2dca0f1ab153ab65bd58d021bbd"; got != want {
		t.Fatalf("x-sign = %s, want %s", got, want)
	}
}
