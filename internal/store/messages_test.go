package store_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/kooflow/kooflow/internal/koogallery"
	"github.com/kooflow/kooflow/internal/store"
)

func TestAppendAndGetMessage(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	in := &store.Message{
		ReceivedAt:   time.Date(2026, 11, 29, 8, 0, 0, 123456000, time.FixedZone("CST", 8*3600)),
		RequestID:    "req-1",
		RemoteAddr:   "192.0.2.1:4321",
		ForwardedFor: "198.51.100.7",
		Method:       "POST",
		Path:         "/koogallery/v2",
		RawQuery:     "signature=AB&timestamp=1&nonce=n",
		Headers:      map[string][]string{"Content-Type": {"application/json"}, "X-Many": {"a", "b"}},
		RawBody:      []byte{0xff, 0xfe, '{', '}'}, // not UTF-8: the exact bytes must survive
		Verification: koogallery.VerdictOK,
		Activity:     "refreshInstance",
		OrderID:      "CS1",
		OrderLineID:  "CS1-000001",
		BusinessID:   "b-1",
		InstanceIDs:  []string{"i-1", "i-2"},
		Scene:        "RENEWAL",
		Status:       "FREEZE",
		TestFlag:     true,
		ResultCode:   "000003",
		ResultMsg:    "the instance does not exist",
		ErrorDetail:  "no such instance",
		HTTPStatus:   200,
		ResponseBody: []byte(`{"resultCode":"000003"}`),
		BodySign:     "sign_type=\"HMAC-SHA256\", signature=\"x\"",
		Latency:      1234 * time.Microsecond,
	}
	if err := s.AppendMessage(ctx, in); err != nil {
		t.Fatal(err)
	}
	if in.ID <= 0 {
		t.Fatalf("AppendMessage set ID %d", in.ID)
	}
	got, err := s.GetMessage(ctx, in.ID)
	if err != nil {
		t.Fatal(err)
	}
	want := *in
	want.ReceivedAt = in.ReceivedAt.UTC()
	want.Failed = true // derived by the table from the result code
	if !reflect.DeepEqual(*got, want) {
		t.Fatalf("read back\n%+v\nwant\n%+v", *got, want)
	}

	// A message without bodies or instances (a call that could not be read) is stored with empty ones.
	bare := &store.Message{ReceivedAt: time.Now(), Method: "POST", Path: "/koogallery/v2",
		Verification: koogallery.VerdictNotChecked, ResultCode: "000004", HTTPStatus: 200}
	if err := s.AppendMessage(ctx, bare); err != nil {
		t.Fatal(err)
	}
	got, err = s.GetMessage(ctx, bare.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Failed || got.InstanceIDs == nil || len(got.InstanceIDs) != 0 || got.RawBody == nil || len(got.RawBody) != 0 {
		t.Fatalf("bare message read back as %+v", got)
	}

	if _, err := s.GetMessage(ctx, bare.ID+100); !errors.Is(err, store.ErrNoMessage) {
		t.Fatalf("unknown id: %v, want ErrNoMessage", err)
	}
	// The log is append-only.
	if _, err := s.Pool.Exec(ctx, `UPDATE koogallery_messages SET result_code = '000000'`); err == nil {
		t.Fatal("the message log accepted an UPDATE")
	}
}

func TestListMessagesFiltersAndPages(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	t0 := time.Date(2026, 11, 29, 8, 0, 0, 0, time.UTC)
	type spec struct {
		name     string
		at       time.Duration // after t0
		activity string
		code     string
		order    string
		ids      []string
	}
	specs := []spec{
		{"new", 0, "newInstance", "000004", "CS1", []string{"i-1"}},
		{"query", time.Minute, "queryInstance", "000000", "", []string{"i-1", "i-2"}},
		{"freeze", 2 * time.Minute, "updateInstanceStatus", "000000", "", []string{"i-1"}},
		{"forged", 3 * time.Minute, "releaseInstance", "000001", "", []string{"i-2"}},
		{"unknown", 3 * time.Minute, "queryInstance", "000003", "", []string{"i-9"}}, // same time: id breaks the tie
		{"renew", 4 * time.Minute, "refreshInstance", "000005", "CS2", []string{"i-1"}},
	}
	ids := map[string]int64{}
	for _, sp := range specs {
		m := &store.Message{ReceivedAt: t0.Add(sp.at), Method: "POST", Path: "/koogallery/v2", Activity: sp.activity,
			Verification: koogallery.VerdictOK, ResultCode: sp.code, OrderID: sp.order, InstanceIDs: sp.ids, HTTPStatus: 200}
		if err := s.AppendMessage(ctx, m); err != nil {
			t.Fatal(err)
		}
		ids[sp.name] = m.ID
	}
	names := func(ms []*store.Message) string {
		byID := map[int64]string{}
		for n, id := range ids {
			byID[id] = n
		}
		out := ""
		for i, m := range ms {
			if i > 0 {
				out += ","
			}
			out += byID[m.ID]
		}
		return out
	}
	for _, tc := range []struct {
		filter store.MessageFilter
		want   string
	}{
		// Failed first, newest first, the later id first among equal times.
		{store.MessageFilter{}, "renew,unknown,forged,freeze,query,new"},
		{store.MessageFilter{FailedOnly: true}, "renew,unknown,forged"},
		{store.MessageFilter{Activity: "queryInstance"}, "unknown,query"},
		{store.MessageFilter{ResultCode: "000000"}, "freeze,query"},
		{store.MessageFilter{InstanceID: "i-2"}, "forged,query"},
		{store.MessageFilter{OrderID: "CS1"}, "new"},
		{store.MessageFilter{From: t0.Add(time.Minute), To: t0.Add(3 * time.Minute)}, "freeze,query"},
		{store.MessageFilter{From: t0.Add(time.Hour)}, ""},
		{store.MessageFilter{Activity: "queryInstance", InstanceID: "i-1"}, "query"},
		{store.MessageFilter{Limit: 501}, "renew,unknown,forged,freeze,query,new"}, // out of range: the default page
	} {
		got, next, err := s.ListMessages(ctx, tc.filter)
		if err != nil {
			t.Fatal(err)
		}
		if names(got) != tc.want || next != nil {
			t.Errorf("ListMessages(%+v) = %s (next %v), want %s", tc.filter, names(got), next, tc.want)
		}
	}

	// Page through everything two at a time, the cursor going out and back in as a page token.
	var pages []string
	f := store.MessageFilter{Limit: 2}
	for {
		got, next, err := s.ListMessages(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		pages = append(pages, names(got))
		if next == nil {
			break
		}
		var after store.MessageCursor
		if err := store.DecodeCursor(store.EncodeCursor(next), &after); err != nil {
			t.Fatal(err)
		}
		f.After = &after
	}
	if got := fmt.Sprint(pages); got != "[renew,unknown forged,freeze query,new]" {
		t.Fatalf("pages %s", got)
	}
	// Paging composes with a filter.
	got, next, err := s.ListMessages(ctx, store.MessageFilter{Limit: 1, InstanceID: "i-1"})
	if err != nil || names(got) != "renew" || next == nil {
		t.Fatalf("first filtered page %s, next %v (%v)", names(got), next, err)
	}
	got, _, err = s.ListMessages(ctx, store.MessageFilter{Limit: 5, InstanceID: "i-1", After: next})
	if err != nil || names(got) != "freeze,query,new" {
		t.Fatalf("second filtered page %s (%v)", names(got), err)
	}
}
