package console_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/shopspring/decimal"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"

	"github.com/kooflow/kooflow/api/console"
	"github.com/kooflow/kooflow/api/httpx"
	"github.com/kooflow/kooflow/emulator/market"
	"github.com/kooflow/kooflow/internal/config"
	"github.com/kooflow/kooflow/internal/instance"
	"github.com/kooflow/kooflow/internal/koogallery"
	"github.com/kooflow/kooflow/internal/store"
	"github.com/kooflow/kooflow/internal/testenv"
	"github.com/kooflow/kooflow/internal/teststack"
)

// The tests of this package run the whole product on real parts: the real router (production interface and
// console), a real worker with the lifecycle workflow on the shared Temporal dev server, a fresh PostgreSQL
// database, and the emulator's order-query API over TLS with AK/SK signatures as the marketplace.

func TestMain(m *testing.M) { testenv.Main(m) }

const (
	consoleToken = "console-test-token-0123456789"
	// buyerToken may take the customer's steps and read; financeToken may decide refunds and read.
	buyerToken   = "console-test-buyer-0123456789"
	financeToken = "console-test-finance-0123456789"
	accessKey    = "console-test-access-key-0123456"
	marketAK     = "CONSOLETESTAK00000000"
	marketSK     = "console-test-market-sk-0123456789"
)

type stack struct {
	t      *testing.T
	url    string
	cfg    config.Config
	pool   *pgxpool.Pool
	tc     client.Client
	market *market.Market
}

func newStack(t *testing.T, tweak func(*config.Config)) *stack {
	t.Helper()
	cfg, m, _ := teststack.WithMarket(t, teststack.Keys{AccessKey: accessKey, MarketAK: marketAK, MarketSK: marketSK,
		ConsoleToken: consoleToken}, market.Options{}, map[string]string{config.EnvConsoleTokens: "ops:" + consoleToken +
		",buyer:" + buyerToken + ":customer+read,money:" + financeToken + ":read+finance"})
	cfg.TaskQueue = testenv.TaskQueue(t)
	if tweak != nil {
		tweak(&cfg)
	}
	st := teststack.Start(t, cfg, teststack.Options{})
	return &stack{t: t, url: st.URL, cfg: st.Config, pool: st.Pool, tc: st.Temporal, market: m}
}

// order places an order with one line in the emulated marketplace and returns the line id.
func (s *stack) order(id, typ, product, sku string, qty int64, paid string, expire time.Time) string {
	s.t.Helper()
	line := id + "-000001"
	phone := "13900000000"
	l := market.Line{OrderLineID: line, ChargingMode: market.ChargingPeriod, PeriodType: "month", PeriodNumber: 1,
		ExpireTime: expire, ProductID: product, SKUCode: sku, LinearValue: qty, ProductName: "test product",
		ListAmount: decimal.RequireFromString(paid), PaidAmount: decimal.RequireFromString(paid)}
	if expire.IsZero() {
		l.ChargingMode, l.PeriodType, l.PeriodNumber = market.ChargingOneTime, "", 0
	}
	if err := s.market.PutOrder(market.Order{OrderID: id, OrderType: typ, CreateTime: time.Now().UTC(), Lines: []market.Line{l},
		Buyer: &market.Buyer{CustomerID: "cust-" + id, CustomerName: "Wang Wu", MobilePhone: &phone}}); err != nil {
		s.t.Fatal(err)
	}
	return line
}

// mp sends a signed production-interface call, as the marketplace does, and returns the decoded answer.
func (s *stack) mp(body map[string]any) koogallery.Response {
	s.t.Helper()
	raw, err := json.Marshal(body)
	if err != nil {
		s.t.Fatal(err)
	}
	q, err := koogallery.SignQuery(accessKey, raw, time.Now(), koogallery.NewNonce())
	if err != nil {
		s.t.Fatal(err)
	}
	resp, err := http.Post(s.url+s.cfg.ProductionPath+"?"+q.Encode(), "application/json", bytes.NewReader(raw))
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var r koogallery.Response
	if err := json.Unmarshal(b, &r); err != nil {
		s.t.Fatalf("production interface answered %d %s", resp.StatusCode, b)
	}
	return r
}

// newInstance buys an order and returns the instance id.
func (s *stack) newInstance(orderID, lineID string) string {
	s.t.Helper()
	r := s.mp(map[string]any{"activity": "newInstance", "orderId": orderID, "orderLineId": lineID, "businessId": "biz-" + orderID})
	if r.ResultCode != "000004" && r.ResultCode != "000000" {
		s.t.Fatalf("newInstance answered %+v", r)
	}
	if r.InstanceID != instance.ID(orderID, lineID) {
		s.t.Fatalf("instanceId %q, want %q", r.InstanceID, instance.ID(orderID, lineID))
	}
	return r.InstanceID
}

// do calls the console API; out receives the body of a 2xx answer, the problem is returned otherwise.
func (s *stack) do(method, path string, body any, out any, headers ...string) (int, httpx.Problem) {
	s.t.Helper()
	return s.doAs(consoleToken, method, path, body, out, headers...)
}

// doAs is do with another console token.
func (s *stack) doAs(token, method, path string, body any, out any, headers ...string) (int, httpx.Problem) {
	s.t.Helper()
	var rd io.Reader
	if body != nil {
		switch b := body.(type) {
		case string:
			rd = strings.NewReader(b)
		default:
			raw, err := json.Marshal(b)
			if err != nil {
				s.t.Fatal(err)
			}
			rd = bytes.NewReader(raw)
		}
	}
	req, _ := http.NewRequest(method, s.url+"/console/v1"+path, rd)
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var p httpx.Problem
	if resp.StatusCode >= 300 {
		if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/problem+json") {
			s.t.Fatalf("%s %s answered %d with %s, not a problem document: %s", method, path, resp.StatusCode, ct, raw)
		}
		_ = json.Unmarshal(raw, &p)
		return resp.StatusCode, p
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			s.t.Fatalf("%s %s: %v: %s", method, path, err, raw)
		}
	}
	return resp.StatusCode, p
}

// instance reads one instance from the console.
func (s *stack) instance(id string) console.InstanceDetail {
	s.t.Helper()
	var d console.InstanceDetail
	if code, p := s.do(http.MethodGet, "/instances/"+id, nil, &d); code != http.StatusOK {
		s.t.Fatalf("GET instance %s: %d %s", id, code, p.Detail)
	}
	return d
}

// waitFor polls the console until cond holds (the workflow works asynchronously from the marketplace's calls).
func (s *stack) waitFor(id, what string, cond func(d console.InstanceDetail) bool) console.InstanceDetail {
	s.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		code, _ := s.do(http.MethodGet, "/instances/"+id, nil, nil)
		if code == http.StatusOK {
			d := s.instance(id)
			if cond(d) {
				return d
			}
			if time.Now().After(deadline) {
				b, _ := json.MarshalIndent(d, "", "  ")
				s.t.Fatalf("timed out waiting for %s; instance is:\n%s", what, b)
			}
		} else if time.Now().After(deadline) {
			s.t.Fatalf("timed out waiting for %s: instance %s not found", what, id)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// runID returns the ID of the workflow's current run.
func (s *stack) runID(wfID string) string {
	s.t.Helper()
	d, err := s.tc.DescribeWorkflowExecution(context.Background(), wfID, "")
	if err != nil {
		s.t.Fatalf("describe %s: %v", wfID, err)
	}
	return d.WorkflowExecutionInfo.Execution.RunId
}

// waitForNewRun waits until the workflow has continued as new from run prev, and returns the new run's ID. A
// test that records one history per run waits for it before the next call, so each call lands in the run it
// is recorded in.
func (s *stack) waitForNewRun(wfID, prev, what string) string {
	s.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if id := s.runID(wfID); id != prev {
			return id
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("timed out waiting for %s to continue as new", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// countWorkflows counts the executions a visibility query matches, waiting for it to reach want (visibility is
// eventually consistent).
func (s *stack) countWorkflows(query string, want int64) int64 {
	s.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		res, err := s.tc.CountWorkflow(context.Background(), &workflowservice.CountWorkflowExecutionsRequest{Namespace: "default", Query: query})
		if err != nil {
			s.t.Fatalf("count %q: %v", query, err)
		}
		if res.Count == want || time.Now().After(deadline) {
			return res.Count
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func kinds(d console.InstanceDetail) []string {
	var out []string
	for _, e := range d.Timeline {
		out = append(out, e.Kind)
	}
	return out
}

func ordersOfType(d console.InstanceDetail, typ string) []store.Order {
	var out []store.Order
	for _, o := range d.Orders {
		if o.OrderType == typ {
			out = append(out, o)
		}
	}
	return out
}
