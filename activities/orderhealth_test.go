package activities

import (
	"context"
	"testing"

	"github.com/shopspring/decimal"

	"github.com/kooflow/kooflow/emulator/market"
	"github.com/kooflow/kooflow/internal/config"
	"github.com/kooflow/kooflow/internal/koogallery/orderquery"
	"github.com/kooflow/kooflow/internal/store"
	"github.com/kooflow/kooflow/internal/testenv"
)

// TestQueryOrderRecordsTheQuerysHealth: every call of the QueryOrder activity against the emulated marketplace
// (TLS, AK/SK) updates order_query_health. An answer about the order (unknown order) is a working query; wrong
// credentials and the marketplace's 5xx are failures of the query, counted from the first; a success ends them.
func TestQueryOrderRecordsTheQuerysHealth(t *testing.T) {
	const ak, sk = "TESTAK0000000000", "test-secret-key-0123456789"
	m, srv, err := market.Serve(market.Options{AK: ak, SK: sk, Seed: 7}, "127.0.0.1:0", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	client := func(sk string) orderquery.Querier {
		q, err := orderquery.NewClient(orderquery.Options{Endpoint: srv.URL, AK: config.Secret(ak), SK: config.Secret(sk), CAFile: srv.CAFile})
		if err != nil {
			t.Fatal(err)
		}
		return q
	}
	if err := m.PutOrder(market.Order{OrderID: "CS1", OrderType: market.TypeNew, CreateTime: t0,
		Lines: []market.Line{{OrderLineID: "CS1-000001", ChargingMode: market.ChargingPeriod, PeriodType: "month", PeriodNumber: 1,
			ExpireTime: t0.AddDate(0, 1, 0), ProductID: "OFFI-KOOFLOW-CRM-MONTHLY", SKUCode: "crm-pro-month", LinearValue: 1,
			ListAmount: decimal.RequireFromString("300"), PaidAmount: decimal.RequireFromString("300")}}}); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	st := &store.Store{Pool: testenv.Pool(t)}
	good := &Lifecycle{Orders: client(sk), Catalog: devCatalog(t), Store: st}
	bad := &Lifecycle{Orders: client("not-the-secret-key-000000"), Catalog: devCatalog(t), Store: st}
	in := QueryOrderInput{InstanceID: "i1", OrderID: "CS1", OrderLineID: "CS1-000001"}
	health := func() store.OrderQueryHealth {
		t.Helper()
		h, err := st.OrderQueryHealth(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return h
	}

	if _, err := good.QueryOrder(ctx, in); err != nil {
		t.Fatal(err)
	}
	if h := health(); h.FailingSince != nil || h.LastOKAt == nil || h.Failures != 0 {
		t.Fatalf("after a success: %+v", h)
	}
	if _, err := good.QueryOrder(ctx, QueryOrderInput{OrderID: "NO-SUCH-ORDER"}); !IsNeedsPerson(err) {
		t.Fatalf("unknown order: %v", err)
	}
	if h := health(); h.FailingSince != nil || h.Failures != 0 {
		t.Fatalf("an unknown order counted against the query: %+v", h)
	}

	if _, err := bad.QueryOrder(ctx, in); err == nil {
		t.Fatal("a wrong SK was accepted")
	}
	first := health()
	if first.FailingSince == nil || first.Failures != 1 || first.LastError == "" {
		t.Fatalf("after refused credentials: %+v", first)
	}
	m.SetQueryFaults(market.QueryFaults{ErrorRate: 1})
	if _, err := good.QueryOrder(ctx, in); err == nil || IsNeedsPerson(err) {
		t.Fatalf("a 5xx: %v", err)
	}
	if h := health(); h.Failures != 2 || !h.FailingSince.Equal(*first.FailingSince) || h.LastError == first.LastError {
		t.Fatalf("after a 5xx: %+v (first failure %+v)", h, first)
	}
	m.SetQueryFaults(market.QueryFaults{})
	if _, err := good.QueryOrder(ctx, in); err != nil {
		t.Fatal(err)
	}
	if h := health(); h.FailingSince != nil || h.Failures != 0 {
		t.Fatalf("a success did not end the failures: %+v", h)
	}
}

// TestQueryBroken: which failed queries count against the order query itself.
func TestQueryBroken(t *testing.T) {
	for _, tc := range []struct {
		err    error
		broken bool
	}{
		{&orderquery.Error{Code: "MKT.0999", Retryable: true}, true},
		{&orderquery.Error{Code: "CBC.0154"}, true},
		{&orderquery.Error{Code: "CBC.0151"}, true},
		{&orderquery.Error{Code: "TLS"}, true},
		{&orderquery.Error{Code: "SIGN"}, true},
		{&orderquery.Error{Code: "MKT.9001"}, false},
		{&orderquery.Error{Code: "CBC.0150"}, false},
		{&orderquery.Error{Code: "CBC.0101"}, false},
		{&orderquery.Error{Code: "INVALID"}, false},
		{context.DeadlineExceeded, true},
		{context.Canceled, false},
	} {
		if got := queryBroken(tc.err); got != tc.broken {
			t.Errorf("queryBroken(%v) = %v, want %v", tc.err, got, tc.broken)
		}
	}
}
