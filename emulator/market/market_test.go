package market

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/kooflow/kooflow/emulator/sign"
)

const (
	testAK        = "EMULATORTESTAK0000001"
	testSK        = "emulator-test-secret-key"
	testSellerKey = "emulator-test-seller-key"
)

func startMarket(t *testing.T) (*Market, *Server) {
	t.Helper()
	m, srv, err := Serve(Options{AK: testAK, SK: testSK, SellerKey: testSellerKey, Seed: 7}, "127.0.0.1:0", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	return m, srv
}

// query sends an SDK-signed order query over real TLS, trusting only the CA file, as kooflow's client does.
func query(t *testing.T, srv *Server, q map[string]string, ak, sk string) (int, map[string]any, string) {
	t.Helper()
	req := sdkSign(t, "GET", srv.URL, OrderQueryPath, q, nil, "", ak, sk, time.Now())
	pem, err := os.ReadFile(srv.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var body map[string]any
	if err := json.Unmarshal(raw, &body); err != nil {
		t.Fatalf("response is not JSON: %s", raw)
	}
	return resp.StatusCode, body, string(raw)
}

func TestOrderQueryServesPlacedOrder(t *testing.T) {
	m, srv := startMarket(t)
	created := time.Date(2026, 11, 21, 9, 8, 46, 0, time.UTC)
	phone := "138****0000"
	err := m.PutOrder(Order{
		OrderID: "CS2611210908ABCDE", OrderType: TypeNew, CreateTime: created,
		Lines: []Line{{
			OrderLineID: "CS2611210908ABCDE-000001", ChargingMode: ChargingPeriod, PeriodType: "month", PeriodNumber: 3,
			ExpireTime: time.Date(2027, 2, 21, 23, 59, 59, 0, time.UTC), ProductID: "OFFI-KOOFLOW-CRM-MONTHLY",
			SKUCode: "crm-basic-month", LinearValue: 10, ProductName: "Kooflow CRM",
			ListAmount: decimal.RequireFromString("300.00"), PaidAmount: decimal.RequireFromString("270.5"),
		}},
		Buyer: &Buyer{CustomerID: "cust-1", CustomerName: "acme", CustomerRealName: "ACME Ltd", MobilePhone: &phone},
	})
	if err != nil {
		t.Fatal(err)
	}
	status, _, raw := query(t, srv, map[string]string{"orderId": "CS2611210908ABCDE", "orderLineId": "CS2611210908ABCDE-000001"}, testAK, testSK)
	if status != 200 {
		t.Fatalf("status %d: %s", status, raw)
	}
	want := `{"resultCode":"MKT.0000","resultMsg":"Success","orderInfo":{"orderId":"CS2611210908ABCDE","orderType":"NEW",` +
		`"createTime":"20261121090846","orderLine":[{"orderLineId":"CS2611210908ABCDE-000001","chargingMode":"PERIOD",` +
		`"periodType":"month","periodNumber":3,"expireTime":"20270221235959","productInfo":[{"productId":"OFFI-KOOFLOW-CRM-MONTHLY",` +
		`"skuCode":"crm-basic-month","linearValue":10,"productName":"Kooflow CRM"}],"extendParams":[],"currency":"300",` +
		`"currencyAfterDiscount":"270.5"}],"buyerInfo":{"mobilePhone":"138****0000","email":null,"customerId":"cust-1",` +
		`"customerName":"acme","customerRealName":"ACME Ltd","customerType":0,"userId":null,"userName":null},"extendParams":[]}}`
	if raw != want {
		t.Fatalf("body\n%s\nwant\n%s", raw, want)
	}
	// Without orderLineId, the whole order.
	status, body, _ := query(t, srv, map[string]string{"orderId": "CS2611210908ABCDE"}, testAK, testSK)
	if status != 200 || body["resultCode"] != "MKT.0000" {
		t.Fatalf("status %d body %v", status, body)
	}
	if st := m.Stats(); st.QueriesServed != 2 {
		t.Fatalf("stats %+v", st)
	}
}

func TestOrderQueryMockOrders(t *testing.T) {
	_, srv := startMarket(t)
	for _, id := range MockOrderIDs() {
		status, body, raw := query(t, srv, map[string]string{"orderId": id, "orderLineId": id + "-000001"}, testAK, testSK)
		if status != 200 {
			t.Fatalf("%s: status %d %s", id, status, raw)
		}
		info := body["orderInfo"].(map[string]any)
		line := info["orderLine"].([]any)[0].(map[string]any)
		if info["orderId"] != id || line["orderLineId"] != id+"-000001" {
			t.Fatalf("%s: %s", id, raw)
		}
	}
	want := map[string]string{"MOCKPERIODDAYTRIAL": "TRIAL", "MOCKMONTYRENEW": "RENEW", "MOCKMONTYCHANGE": "CHANGE",
		"MOCKMONTYUNSUBSCRIBE": "UNSUBSCRIBE", "MOCKMONTYTRIALTOFORMAL": "TRIAL_TO_FORMAL", "MOCKONDEMAND": "NEW"}
	for id, typ := range want {
		_, body, _ := query(t, srv, map[string]string{"orderId": id}, testAK, testSK)
		if got := body["orderInfo"].(map[string]any)["orderType"]; got != typ {
			t.Errorf("%s: orderType %v, want %s", id, got, typ)
		}
	}
}

func TestOrderQueryRefusals(t *testing.T) {
	m, srv := startMarket(t)
	cases := []struct {
		name   string
		q      map[string]string
		ak, sk string
		status int
		code   string
	}{
		{"bad signature", map[string]string{"orderId": "MOCKONETIMENEW"}, testAK, "wrong", 401, "MKT.0154"},
		{"unknown AK", map[string]string{"orderId": "MOCKONETIMENEW"}, "OTHERAK", testSK, 401, "MKT.0154"},
		{"unknown order", map[string]string{"orderId": "CSNOPE"}, testAK, testSK, 400, "MKT.0101"},
		{"unknown line", map[string]string{"orderId": "MOCKONETIMENEW", "orderLineId": "X-1"}, testAK, testSK, 400, "MKT.0101"},
		{"missing orderId", map[string]string{"orderLineId": "X-1"}, testAK, testSK, 400, "MKT.0101"},
		{"extra param", map[string]string{"orderId": "MOCKONETIMENEW", "limit": "1"}, testAK, testSK, 400, "MKT.0101"},
	}
	for _, c := range cases {
		status, body, raw := query(t, srv, c.q, c.ak, c.sk)
		if status != c.status || body["resultCode"] != c.code {
			t.Errorf("%s: %d %s, want %d %s", c.name, status, raw, c.status, c.code)
		}
	}
	if st := m.Stats(); st.QueriesRefused != int64(len(cases)) || st.QueriesServed != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestOrderQueryStaleDate(t *testing.T) {
	_, srv := startMarket(t)
	req := sdkSign(t, "GET", srv.URL, OrderQueryPath, map[string]string{"orderId": "MOCKONETIMENEW"}, nil, "", testAK, testSK,
		time.Now().Add(-20*time.Minute))
	resp, err := srv.Client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 401 || !strings.Contains(string(raw), `"MKT.0154"`) || !strings.Contains(string(raw), "X-Sdk-Date") {
		t.Fatalf("%d %s", resp.StatusCode, raw)
	}
}

func TestOrderQueryFaults(t *testing.T) {
	m, srv := startMarket(t)
	m.SetQueryFaults(QueryFaults{ErrorRate: 1})
	status, body, _ := query(t, srv, map[string]string{"orderId": "MOCKONETIMENEW"}, testAK, testSK)
	if status != 500 || body["resultCode"] != "MKT.0999" {
		t.Fatalf("error fault: %d %v", status, body)
	}
	m.SetQueryFaults(QueryFaults{TimeoutRate: 1, Hang: 300 * time.Millisecond})
	start := time.Now()
	status, _, _ = query(t, srv, map[string]string{"orderId": "MOCKONETIMENEW"}, testAK, testSK)
	if status != 504 || time.Since(start) < 300*time.Millisecond {
		t.Fatalf("timeout fault: %d after %s", status, time.Since(start))
	}
	m.SetQueryFaults(QueryFaults{ErrorRate: 0.5})
	n5xx := 0
	for range 40 {
		if s, _, _ := query(t, srv, map[string]string{"orderId": "MOCKONETIMENEW"}, testAK, testSK); s == 500 {
			n5xx++
		}
	}
	if n5xx < 8 || n5xx > 32 {
		t.Fatalf("rate 0.5 gave %d/40 failures", n5xx)
	}
	st := m.Stats()
	if st.QueriesFailed != int64(1+n5xx) || st.QueriesHung != 1 {
		t.Fatalf("stats %+v", st)
	}
}

func TestPutOrderValidation(t *testing.T) {
	m, err := New(Options{AK: testAK, SK: testSK})
	if err != nil {
		t.Fatal(err)
	}
	good := Order{OrderID: "CS1", OrderType: TypeNew, CreateTime: time.Now(),
		Lines: []Line{{OrderLineID: "CS1-000001", ChargingMode: ChargingOneTime, ProductID: "P"}}}
	if err := m.PutOrder(good); err != nil {
		t.Fatal(err)
	}
	if err := m.PutOrder(good); err != nil {
		t.Fatalf("identical re-put: %v", err)
	}
	changed := good
	changed.OrderType = TypeTrial
	if err := m.PutOrder(changed); err == nil {
		t.Fatal("an order changed after placement was accepted")
	}
	bad := []Order{
		{OrderID: "", OrderType: TypeNew, CreateTime: time.Now(), Lines: good.Lines},
		{OrderID: "CS2", OrderType: "BUY", CreateTime: time.Now(), Lines: good.Lines},
		{OrderID: "CS3", OrderType: TypeNew, Lines: good.Lines},
		{OrderID: "CS4", OrderType: TypeNew, CreateTime: time.Now()},
		{OrderID: "MOCKONETIMENEW", OrderType: TypeNew, CreateTime: time.Now(), Lines: good.Lines},
		{OrderID: "CS5", OrderType: TypeNew, CreateTime: time.Now(), Lines: []Line{{OrderLineID: "a", ChargingMode: "X", ProductID: "P"}}},
		{OrderID: "CS6", OrderType: TypeNew, CreateTime: time.Now(), Lines: []Line{{OrderLineID: "a", ChargingMode: ChargingPeriod, ProductID: "P", PaidAmount: decimal.NewFromInt(-1)}}},
	}
	for i, o := range bad {
		if err := m.PutOrder(o); err == nil {
			t.Errorf("bad order #%d accepted", i)
		}
	}
}

func pushUsage(t *testing.T, srv *Server, body string, key string, mutate func(*http.Request)) (int, usageResponse) {
	t.Helper()
	nonce, _ := sign.Nonce()
	ts := sign.Timestamp(time.Now())
	sig, err := sign.UsageSignature(key, ts, nonce, []byte(body))
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("POST", srv.URL+UsagePath, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("signature", sig)
	req.Header.Set("ts", ts)
	req.Header.Set("nonce", nonce)
	if mutate != nil {
		mutate(req)
	}
	resp, err := srv.Client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out usageResponse
	raw, _ := io.ReadAll(resp.Body)
	if err := json.NewDecoder(bytes.NewReader(raw)).Decode(&out); err != nil {
		t.Fatalf("%s", raw)
	}
	return resp.StatusCode, out
}

func TestUsagePush(t *testing.T) {
	m, srv := startMarket(t)
	m.PutInstance(Instance{InstanceID: "inst-od", OrderID: "CSOD", ChargingMode: ChargingOnDemand, Status: "NORMAL"})
	m.PutInstance(Instance{InstanceID: "inst-period", OrderID: "CSP", ChargingMode: ChargingPeriod, Status: "NORMAL"})
	m.PutInstance(Instance{InstanceID: "inst-frozen", OrderID: "CSF", ChargingMode: ChargingOnDemand, Status: "FROZEN"})
	now := time.Now().UTC()
	ft := func(d time.Duration) string { return now.Add(d).Format("20060102T150405Z") }
	rec := func(inst, sn, value string, begin, end, record string) string {
		return `{"instance_id":"` + inst + `","metering_sn":"` + sn + `","usage_value":` + value +
			`,"begin_time":"` + begin + `","end_time":"` + end + `","record_time":"` + record + `"}`
	}
	body := `{"usage_records":[` + strings.Join([]string{
		rec("inst-od", "sn-1", "1.5", ft(-2*time.Hour), ft(-time.Hour), ft(-time.Minute)),
		rec("inst-od", "sn-2", "2", ft(-2*time.Hour), ft(-time.Hour), ft(-time.Minute)),
		rec("inst-nope", "sn-3", "1", ft(-2*time.Hour), ft(-time.Hour), ft(-time.Minute)),
		rec("inst-od", "sn-4", "1", "2026-01-01", ft(-time.Hour), ft(-time.Minute)),
		rec("inst-od", "sn-5", "0", ft(-2*time.Hour), ft(-time.Hour), ft(-time.Minute)),
		rec("inst-od", "sn-6", "1.23456", ft(-2*time.Hour), ft(-time.Hour), ft(-time.Minute)),
		rec("inst-od", "", "1", ft(-2*time.Hour), ft(-time.Hour), ft(-time.Minute)),
		rec("inst-od", "sn-1", "1", ft(-2*time.Hour), ft(-time.Hour), ft(-time.Minute)),
		rec("inst-period", "sn-7", "1", ft(-2*time.Hour), ft(-time.Hour), ft(-time.Minute)),
		rec("inst-frozen", "sn-8", "1", ft(-2*time.Hour), ft(-time.Hour), ft(-time.Minute)),
		rec("inst-od", "sn-9", "1", ft(-time.Hour), ft(-2*time.Hour), ft(-time.Minute)),
		rec("inst-od", "sn-10", "1", ft(-22*24*time.Hour), ft(-21*24*time.Hour-time.Hour), ft(-time.Minute)),
	}, ",") + `]}`
	status, resp := pushUsage(t, srv, body, testSellerKey, nil)
	if status != 200 || resp.ErrorCode != "MKT.0000" {
		t.Fatalf("%d %+v", status, resp)
	}
	got := map[string]string{}
	for _, f := range resp.FailRecords {
		got[f.MeteringSN] = f.ErrorCode
	}
	want := map[string]string{"sn-3": "001", "sn-4": "002", "sn-5": "003", "sn-6": "003", "": "004", "sn-1": "010",
		"sn-7": "012", "sn-8": "013", "sn-9": "011", "sn-10": "007"}
	if len(got) != len(want) {
		t.Fatalf("fail records %v, want %v", got, want)
	}
	for sn, code := range want {
		if got[sn] != code {
			t.Errorf("record %q: code %q, want %q", sn, got[sn], code)
		}
	}
	if u := m.Usage("inst-od"); len(u) != 2 || !u[0].Value.Add(u[1].Value).Equal(decimal.RequireFromString("3.5")) {
		t.Fatalf("accepted usage %+v", u)
	}
	// A resend of an accepted record is refused as a duplicate, and changes nothing.
	status, resp = pushUsage(t, srv, `{"usage_records":[`+rec("inst-od", "sn-2", "2", ft(-2*time.Hour), ft(-time.Hour), ft(-time.Minute))+`]}`, testSellerKey, nil)
	if status != 200 || len(resp.FailRecords) != 1 || resp.FailRecords[0].ErrorCode != "005" {
		t.Fatalf("%d %+v", status, resp)
	}
	if len(m.Usage("inst-od")) != 2 {
		t.Fatal("duplicate changed the usage")
	}
	// Authentication failures.
	one := `{"usage_records":[` + rec("inst-od", "sn-20", "1", ft(-2*time.Hour), ft(-time.Hour), ft(-time.Minute)) + `]}`
	if status, resp = pushUsage(t, srv, one, "wrong-key", nil); status != 400 || resp.ErrorCode != "MKT.0102" {
		t.Fatalf("wrong key: %d %+v", status, resp)
	}
	if status, resp = pushUsage(t, srv, one, testSellerKey, func(r *http.Request) { r.Header.Del("signature"); r.Header.Del("ts"); r.Header.Del("nonce") }); status != 401 || resp.ErrorCode != "MKT.0154" {
		t.Fatalf("unsigned: %d %+v", status, resp)
	}
	var nonce string
	if status, resp = pushUsage(t, srv, one, testSellerKey, func(r *http.Request) { nonce = r.Header.Get("nonce") }); status != 200 || len(resp.FailRecords) != 0 {
		t.Fatalf("valid: %d %+v", status, resp)
	}
	replay := func(r *http.Request) {
		ts := r.Header.Get("ts")
		sig, _ := sign.UsageSignature(testSellerKey, ts, nonce, []byte(one))
		r.Header.Set("nonce", nonce)
		r.Header.Set("signature", sig)
	}
	if status, resp = pushUsage(t, srv, one, testSellerKey, replay); status != 400 || resp.ErrorCode != "MKT.0102" {
		t.Fatalf("replayed nonce: %d %+v", status, resp)
	}
	if st := m.Stats(); st.UsageAccepted != 3 || st.UsageAuthFailed != 3 {
		t.Fatalf("stats %+v", st)
	}
}

func TestEnsureTLSReuses(t *testing.T) {
	dir := t.TempDir()
	a, err := EnsureTLS(dir)
	if err != nil {
		t.Fatal(err)
	}
	pemA, _ := os.ReadFile(a.CAFile)
	b, err := EnsureTLS(dir)
	if err != nil {
		t.Fatal(err)
	}
	pemB, _ := os.ReadFile(b.CAFile)
	if !bytes.Equal(pemA, pemB) {
		t.Fatal("a second start replaced a valid CA")
	}
	if err := os.WriteFile(a.CAFile, []byte("garbage"), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := EnsureTLS(dir)
	if err != nil {
		t.Fatal(err)
	}
	pemC, _ := os.ReadFile(c.CAFile)
	if bytes.Equal(pemA, pemC) || !strings.Contains(string(pemC), "BEGIN CERTIFICATE") {
		t.Fatal("a broken CA file was not replaced")
	}
}

func TestTLSIsVerified(t *testing.T) {
	_, srv := startMarket(t)
	// A client that trusts only the system roots must refuse the emulator: verification is really on.
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Get(srv.URL + OrderQueryPath)
	if err == nil {
		resp.Body.Close()
		t.Fatal("the emulator's certificate was trusted without its CA")
	}
}

func TestControlAPIRemote(t *testing.T) {
	m, srv := startMarket(t)
	ctx := context.Background()
	r := Remote{URL: srv.URL, AK: testAK, SK: testSK, HTTP: srv.Client}
	o := Order{OrderID: "CSREMOTE1", OrderType: TypeRenew, CreateTime: time.Now().UTC().Truncate(time.Second),
		Lines: []Line{{OrderLineID: "CSREMOTE1-000001", ChargingMode: ChargingPeriod, PeriodType: "month", PeriodNumber: 1,
			ExpireTime: time.Now().Add(30 * 24 * time.Hour).UTC().Truncate(time.Second), ProductID: "P", SKUCode: "S",
			LinearValue: 1, ListAmount: decimal.RequireFromString("100.5"), PaidAmount: decimal.RequireFromString("99")}}}
	if err := r.PutOrder(ctx, o); err != nil {
		t.Fatal(err)
	}
	got, ok := m.Order("CSREMOTE1")
	if !ok || !got.Lines[0].PaidAmount.Equal(decimal.RequireFromString("99")) || !got.Lines[0].ExpireTime.Equal(o.Lines[0].ExpireTime) {
		t.Fatalf("order as stored: %+v", got)
	}
	o.OrderType = TypeNew
	if err := r.PutOrder(ctx, o); err == nil || !strings.Contains(err.Error(), "409") {
		t.Fatalf("changed order: %v", err)
	}
	if err := r.PutInstance(ctx, Instance{InstanceID: "i1", ChargingMode: ChargingOnDemand, Status: "NORMAL"}); err != nil {
		t.Fatal(err)
	}
	if err := r.SetQueryFaults(ctx, QueryFaults{ErrorRate: 1}); err != nil {
		t.Fatal(err)
	}
	if status, _, _ := query(t, srv, map[string]string{"orderId": "CSREMOTE1"}, testAK, testSK); status != 500 {
		t.Fatalf("query faults not applied: %d", status)
	}
	if err := r.SetQueryFaults(ctx, QueryFaults{ErrorRate: 0.8, TimeoutRate: 0.8}); err == nil {
		t.Fatal("rates above 1 accepted")
	}
	st, err := r.Stats(ctx)
	if err != nil || st.QueriesFailed != 1 {
		t.Fatalf("stats %+v %v", st, err)
	}
	bad := Remote{URL: srv.URL, AK: testAK, SK: "wrong", HTTP: srv.Client}
	if err := bad.PutOrder(ctx, Order{}); err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("wrong SK: %v", err)
	}
}
