package store_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/kooflow/kooflow/internal/koogallery"
	"github.com/kooflow/kooflow/internal/store"
)

// TestMessageWriterBatchesConcurrentCalls: 200 calls appending at once are all stored, each readable by the ID
// it got, with far fewer writes than calls.
func TestMessageWriterBatchesConcurrentCalls(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	w := &store.MessageWriter{Store: s}
	const calls = 200
	msgs := make([]*store.Message, calls)
	errs := make([]error, calls)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range msgs {
		msgs[i] = &store.Message{ReceivedAt: time.Now(), RequestID: fmt.Sprintf("req-%03d", i), Method: "POST",
			Path: "/koogallery/v2", Verification: koogallery.VerdictOK, Activity: "newInstance",
			InstanceIDs: []string{fmt.Sprintf("i-%03d", i)}, ResultCode: "000004", HTTPStatus: 200,
			ResponseBody: []byte(fmt.Sprintf(`{"resultCode":"000004","instanceId":"i-%03d"}`, i))}
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			errs[i] = w.AppendMessage(ctx, msgs[i])
		}()
	}
	close(start)
	wg.Wait()
	for i, m := range msgs {
		if errs[i] != nil {
			t.Fatalf("call %d: %v", i, errs[i])
		}
		got, err := s.GetMessage(ctx, m.ID)
		if err != nil {
			t.Fatalf("call %d: message %d: %v", i, m.ID, err)
		}
		if got.RequestID != m.RequestID || got.InstanceIDs[0] != m.InstanceIDs[0] || string(got.ResponseBody) != string(m.ResponseBody) {
			t.Fatalf("call %d read back as %+v", i, got)
		}
	}
	var n int
	if err := s.Pool.QueryRow(ctx, `SELECT count(*) FROM koogallery_messages`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != calls {
		t.Fatalf("%d messages stored, want %d", n, calls)
	}
	if w.Writes() >= calls {
		t.Fatalf("%d writes for %d concurrent calls: nothing was batched", w.Writes(), calls)
	}
	t.Logf("%d concurrent calls stored in %d writes", calls, w.Writes())
}

// TestMessageWriterIsolatesABadMessage: a message PostgreSQL refuses fails alone; the calls batched with it are
// stored.
func TestMessageWriterIsolatesABadMessage(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	w := &store.MessageWriter{Store: s, Writers: 1}
	const calls = 40
	errs := make([]error, calls)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range calls {
		m := &store.Message{ReceivedAt: time.Now(), RequestID: fmt.Sprintf("req-%03d", i), Method: "POST",
			Path: "/koogallery/v2", Verification: koogallery.VerdictOK, ResultCode: "000000", HTTPStatus: 200}
		if i == 7 {
			m.ResultMsg = "a NUL \x00 byte, which a text column refuses"
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			errs[i] = w.AppendMessage(ctx, m)
		}()
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if (err != nil) != (i == 7) {
			t.Fatalf("call %d: error %v", i, err)
		}
	}
	var n int
	if err := s.Pool.QueryRow(ctx, `SELECT count(*) FROM koogallery_messages`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != calls-1 {
		t.Fatalf("%d messages stored, want %d", n, calls-1)
	}
}
