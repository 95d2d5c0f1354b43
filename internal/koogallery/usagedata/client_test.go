package usagedata

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/kooflow/kooflow/emulator/market"
	"github.com/kooflow/kooflow/emulator/sign"
)

// The usage push vector of docs/koogallery.md ("Test vectors"), computed by an independent program.
const (
	vectorKey   = "0123456789abcdef-test-access-key"
	vectorTS    = "1709690865879"
	vectorNonce = "6c63c221-1f6b-4141-8ff4-22f5dfe82b65"
	vectorBody  = `{"usage_records":[{"begin_time":"20220809T080000Z","end_time":"20220809T090000Z","instance_id":"7f141bf1-aec8-4859-8323-fb3a8ad50721","metering_sn":"sn-0001","record_time":"20220809T091000Z","usage_value":99}]}`
	vectorSig   = "Hcox4Jt8xsvKsQ99Zfaqnqd+Lax9EKsfAi+7H+9j//4="
)

func TestSignatureMatchesTheVector(t *testing.T) {
	if got := Signature(vectorKey, vectorTS, vectorNonce, []byte(vectorBody)); got != vectorSig {
		t.Fatalf("signature = %s, want %s", got, vectorSig)
	}
}

// TestBodyIsTheVectorsBody builds the vector's record and checks that Body writes exactly the bytes the vector
// signs: keys in natural order, the value as a plain number.
func TestBodyIsTheVectorsBody(t *testing.T) {
	at := func(s string) time.Time {
		v, err := time.Parse(TimeLayout, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	b, err := Body([]Record{{InstanceID: "7f141bf1-aec8-4859-8323-fb3a8ad50721", RecordTime: at("20220809T091000Z"),
		BeginTime: at("20220809T080000Z"), EndTime: at("20220809T090000Z"), Value: decimal.NewFromInt(99), MeteringSN: "sn-0001"}})
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != vectorBody {
		t.Fatalf("body\n%s\nwant\n%s", b, vectorBody)
	}
	if _, err := Body([]Record{{InstanceID: "i", MeteringSN: "s", Value: decimal.RequireFromString("0.00001")}}); err == nil {
		t.Fatal("a value with 5 decimals was accepted")
	}
	if _, err := Body(make([]Record, MaxRecords+1)); err == nil {
		t.Fatal("1,001 records were accepted")
	}
}

func startMarket(t *testing.T) (*market.Market, *Client) {
	t.Helper()
	m, srv, err := market.Serve(market.Options{AK: "ak-usage-test", SK: "sk-usage-test", SellerKey: vectorKey, Seed: 1}, "127.0.0.1:0", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	c, err := NewClient(Options{Endpoint: srv.URL, SellerKey: vectorKey, CAFile: srv.CAFile, Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return m, c
}

// TestPushAgainstTheEmulatedMarketplace pushes to the emulator, whose own signer verifies the signature, and reads
// its per-record answers: accepted, a duplicate metering_sn (005), an unknown instance (001), an injected code,
// then whole-request failures.
func TestPushAgainstTheEmulatedMarketplace(t *testing.T) {
	m, c := startMarket(t)
	ctx := context.Background()
	m.PutInstance(market.Instance{InstanceID: "ppu-1", ChargingMode: market.ChargingOnDemand, Status: "NORMAL"})
	m.PutInstance(market.Instance{InstanceID: "ppu-2", ChargingMode: market.ChargingOnDemand, Status: "NORMAL"})
	hour := time.Now().UTC().Truncate(time.Hour).Add(-time.Hour)
	rec := func(inst, sn, v string) Record {
		return Record{InstanceID: inst, MeteringSN: sn, Value: decimal.RequireFromString(v), BeginTime: hour,
			EndTime: hour.Add(time.Hour), RecordTime: time.Now().UTC()}
	}
	ex, err := c.Push(ctx, []Record{rec("ppu-1", "sn-1", "1.5"), rec("ppu-1", "sn-2", "0.0001")})
	if err != nil || len(ex.Refusals) != 0 || ex.HTTPStatus != 200 {
		t.Fatalf("push: %v %+v", err, ex)
	}
	if err := sign.VerifyUsageSignature(vectorKey, ex.Headers["ts"], ex.Headers["nonce"],
		Signature(vectorKey, ex.Headers["ts"], ex.Headers["nonce"], ex.RequestBody), ex.RequestBody); err != nil {
		t.Fatalf("the emulator's signer disagrees: %v", err)
	}
	ex, err = c.Push(ctx, []Record{rec("ppu-1", "sn-1", "1.5"), rec("ghost", "sn-3", "2"), rec("ppu-2", "sn-4", "3")})
	if err != nil {
		t.Fatal(err)
	}
	codes := map[string]string{}
	for _, r := range ex.Refusals {
		codes[r.MeteringSN] = r.Code
	}
	if codes["sn-1"] != "005" || codes["sn-3"] != "001" || len(codes) != 2 {
		t.Fatalf("refusals = %+v, want sn-1 005 and sn-3 001", ex.Refusals)
	}
	if got := m.Charged("ppu-1").Value; !got.Equal(decimal.RequireFromString("1.5001")) {
		t.Fatalf("charged ppu-1 %s, want 1.5001 (the duplicate not counted)", got)
	}

	m.SetUsageFaults(market.UsageFaults{RecordCodes: map[string]string{"ppu-2": "013"}})
	ex, err = c.Push(ctx, []Record{rec("ppu-2", "sn-5", "1")})
	if err != nil || len(ex.Refusals) != 1 || ex.Refusals[0].Code != "013" {
		t.Fatalf("injected 013: %v %+v", err, ex.Refusals)
	}

	m.SetUsageFaults(market.UsageFaults{FailNext: 1})
	_, err = c.Push(ctx, []Record{rec("ppu-2", "sn-6", "1")})
	var pe *Error
	if !errors.As(err, &pe) || !pe.Retryable || pe.HTTPStatus != 500 {
		t.Fatalf("injected 500: %v", err)
	}
	if _, err := c.Push(ctx, []Record{rec("ppu-2", "sn-6", "1")}); err != nil {
		t.Fatalf("after the injected failure: %v", err)
	}

	m.SetUsageFaults(market.UsageFaults{TimeoutRate: 1, Hang: 10 * time.Second})
	_, err = c.Push(ctx, []Record{rec("ppu-2", "sn-7", "1")})
	if !errors.As(err, &pe) || !pe.Retryable {
		t.Fatalf("a hanging marketplace: %v", err)
	}
	m.SetUsageFaults(market.UsageFaults{})

	bad, err := NewClient(Options{Endpoint: "https://" + c.url[len("https://"):len(c.url)-len(Path)], SellerKey: "wrong-key",
		HTTPClient: c.http})
	if err != nil {
		t.Fatal(err)
	}
	_, err = bad.Push(ctx, []Record{rec("ppu-2", "sn-8", "1")})
	if !errors.As(err, &pe) || pe.Retryable || pe.Code != "MKT.0102" {
		t.Fatalf("a wrong key: %v, want a terminal MKT.0102", err)
	}
}
