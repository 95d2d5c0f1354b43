package store

import (
	"context"
	"sync"
	"time"
)

// MessageWriter appends to the message log for many concurrent calls at once: calls that arrive while a write
// is in flight are queued and stored together by the next write, in one round trip and one transaction, so
// under load the log costs one commit (and one disk flush) per batch instead of one per call. A call alone is
// written at once, as by Store.AppendMessage; nothing waits for a batch to fill.
//
// The write that stores a call is made by whichever caller finds a free writing slot: no goroutine runs in the
// background, so there is nothing to start or stop. AppendMessage returns only once the caller's own message
// is durable (or failed), exactly as Store.AppendMessage does. A batch that fails is retried one message at a
// time, so a bad message (or a month without its partition yet) fails alone.
type MessageWriter struct {
	Store *Store
	// MaxBatch is the most messages one write stores (default 64).
	MaxBatch int
	// Writers is the most writes in flight at once (default 2): while one waits for the disk, the next batch
	// fills and is sent.
	Writers int
	// Timeout bounds one write (default 3 s). It is the write's own, not any caller's: a batch carries several
	// calls, and one caller's deadline must not fail the others' messages.
	Timeout time.Duration

	mu      sync.Mutex
	queue   []*queuedMessage
	writing int
	writes  int // writes made, for tests and diagnostics
}

type queuedMessage struct {
	m    *Message
	done chan error
}

// AppendMessage stores m durably with the messages of concurrent calls and sets its ID.
func (w *MessageWriter) AppendMessage(ctx context.Context, m *Message) error {
	q := &queuedMessage{m: m, done: make(chan error, 1)}
	w.mu.Lock()
	w.queue = append(w.queue, q)
	limit := w.Writers
	if limit <= 0 {
		limit = 2
	}
	lead := w.writing < limit
	if lead {
		w.writing++
	}
	w.mu.Unlock()
	if lead {
		w.write(context.WithoutCancel(ctx))
	}
	// Wait for the outcome even past ctx's deadline: the write is bounded by Timeout, and answering before
	// knowing whether the message is stored would break the log's promise.
	return <-q.done
}

// write stores one batch from the head of the queue; if more are queued when it ends, it hands the slot to a
// new goroutine, so the caller that led this batch is not held up by later ones.
func (w *MessageWriter) write(ctx context.Context) {
	w.mu.Lock()
	w.writes++
	n := min(len(w.queue), w.maxBatch())
	batch := make([]*queuedMessage, n)
	copy(batch, w.queue)
	w.queue = w.queue[n:]
	w.mu.Unlock()

	timeout := w.Timeout
	if timeout <= 0 {
		timeout = 3 * time.Second
	}
	wctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	w.store(wctx, batch)

	w.mu.Lock()
	more := len(w.queue) > 0
	if !more {
		w.writing--
	}
	w.mu.Unlock()
	if more {
		go w.write(ctx)
	}
}

func (w *MessageWriter) maxBatch() int {
	if w.MaxBatch <= 0 {
		return 64
	}
	return w.MaxBatch
}

// store writes batch and tells each caller its outcome.
func (w *MessageWriter) store(ctx context.Context, batch []*queuedMessage) {
	if len(batch) == 0 {
		return
	}
	if len(batch) > 1 {
		ms := make([]*Message, len(batch))
		for i, q := range batch {
			ms[i] = q.m
		}
		if err := w.Store.appendMessages(ctx, ms); err == nil {
			for _, q := range batch {
				q.done <- nil
			}
			return
		}
	}
	for _, q := range batch {
		q.done <- w.Store.AppendMessage(ctx, q.m)
	}
}
