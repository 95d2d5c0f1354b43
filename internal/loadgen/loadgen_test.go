package loadgen

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kooflow/kooflow/internal/koogallery"
)

const key = "loadgen-test-key"

// target verifies every call as the gateway does and answers 000004, or a forged Body-Sign when forge is set.
func target(t *testing.T, forge bool, delay time.Duration) (*httptest.Server, *sync.Map) {
	t.Helper()
	seen := &sync.Map{}
	v := koogallery.Verifier{AccessKey: key, Window: time.Minute}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, _ := io.ReadAll(r.Body)
		b, err := koogallery.ParseBody(raw)
		code := koogallery.ResultInProgress
		if err != nil {
			code = koogallery.ResultInvalidParams
		} else if _, err := v.Verify(r.URL.RawQuery, b); err != nil {
			code = koogallery.ResultAuthFailed
		} else if req, err := b.Request(); err != nil || req.Activity != koogallery.ActivityNewInstance {
			code = koogallery.ResultInvalidParams
		} else if _, dup := seen.LoadOrStore(req.OrderID, true); dup {
			code = "DUPLICATE"
		}
		time.Sleep(delay)
		out := koogallery.Encode(koogallery.Response{ResultCode: code, ResultMsg: "x"})
		sign := koogallery.BodySignHeader(key, out)
		if forge {
			sign = koogallery.BodySignHeader("other", out)
		}
		w.Header().Set("Body-Sign", sign)
		_, _ = w.Write(out)
	}))
	t.Cleanup(srv.Close)
	return srv, seen
}

func TestRunCountsAndOrdersAreFresh(t *testing.T) {
	srv, seen := target(t, false, 2*time.Millisecond)
	var placed sync.Map
	rep, err := Run(context.Background(), Options{
		URL: srv.URL, AccessKey: key, Concurrency: 4, Requests: 60, Warmup: 5, OrderPrefix: "T",
		Place: func(_ context.Context, order, line string) error {
			if line != order+"-000001" || !strings.HasPrefix(order, "T") {
				t.Errorf("placed %s / %s", order, line)
			}
			placed.Store(order, true)
			return nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Requests != 60 || rep.Answered() != 60 || rep.Codes["000004"] != 60 || len(rep.Errors) != 0 {
		var sb strings.Builder
		rep.Write(&sb)
		t.Fatalf("report:\n%s", sb.String())
	}
	n := 0
	seen.Range(func(k, _ any) bool {
		if _, ok := placed.Load(k); !ok {
			t.Errorf("order %v was sent without being placed", k)
		}
		n++
		return true
	})
	if n != 65 { // warm-up included, every order distinct
		t.Fatalf("%d distinct orders reached the target, want 65", n)
	}
	if rep.Quantile(0.5) < 2*time.Millisecond || rep.Quantile(0.5) > rep.Quantile(0.99) || rep.Quantile(0.99) > rep.Max() {
		t.Fatalf("quantiles p50 %s p99 %s max %s", rep.Quantile(0.5), rep.Quantile(0.99), rep.Max())
	}
	if rep.Throughput() <= 0 {
		t.Fatal("no throughput")
	}
	var sb strings.Builder
	rep.Write(&sb)
	for _, want := range []string{"p50", "p90", "p99", "max", "calls/s", "000004×60"} {
		if !strings.Contains(sb.String(), want) {
			t.Fatalf("report lacks %q:\n%s", want, sb.String())
		}
	}
}

func TestRunByDuration(t *testing.T) {
	srv, _ := target(t, false, 5*time.Millisecond)
	start := time.Now()
	rep, err := Run(context.Background(), Options{URL: srv.URL, AccessKey: key, Concurrency: 2, Duration: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took < 200*time.Millisecond || took > time.Second {
		t.Fatalf("a 200 ms run took %s", took)
	}
	if rep.Answered() < 10 {
		t.Fatalf("only %d calls in 200 ms", rep.Answered())
	}
}

func TestRunDetectsForgedBodySignAndWrongKey(t *testing.T) {
	srv, _ := target(t, true, 0)
	rep, err := Run(context.Background(), Options{URL: srv.URL, AccessKey: key, Concurrency: 1, Requests: 3})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Errors["Body-Sign does not match the body"] != 3 || rep.Answered() != 0 {
		t.Fatalf("errors %v answered %d", rep.Errors, rep.Answered())
	}
	good, _ := target(t, false, 0)
	rep, err = Run(context.Background(), Options{URL: good.URL, AccessKey: key + "x", Concurrency: 1, Requests: 2})
	if err != nil {
		t.Fatal(err)
	}
	// The target signs with its key, so a client with the wrong key sees a Body-Sign it cannot verify.
	if rep.Errors["Body-Sign does not match the body"] != 2 {
		t.Fatalf("errors %v codes %v", rep.Errors, rep.Codes)
	}
}

func TestRunRefusesBadOptions(t *testing.T) {
	for _, o := range []Options{
		{AccessKey: key, Concurrency: 1, Requests: 1},
		{URL: "http://x", Concurrency: 1, Requests: 1},
		{URL: "http://x", AccessKey: key, Requests: 1},
		{URL: "http://x", AccessKey: key, Concurrency: 1},
	} {
		if _, err := Run(context.Background(), o); err == nil {
			t.Errorf("options %+v accepted", o)
		}
	}
}
