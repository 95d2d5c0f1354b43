package gateway

import (
	"sync"
	"time"
)

// SourceLimiter bounds how many calls that fail verification each source may put into the message log: a token
// bucket per source of PerMinute calls a minute (burst PerMinute). Verified calls never ask it, so a flood of
// unsigned calls, even from the marketplace's own address, neither delays nor drops a signed one. Calls over
// the budget are still answered (000001), only not recorded; the log says how many were dropped.
//
// The number of sources tracked is bounded (MaxSources, default 10,000): when the table is full, buckets that have
// refilled are forgotten, and if none has, new sources share one bucket.
type SourceLimiter struct {
	PerMinute  int
	MaxSources int

	mu      sync.Mutex
	buckets map[string]*bucket
}

type bucket struct {
	tokens  float64
	last    time.Time
	dropped int64
}

const sharedSource = "(other sources)"

// Allow reports whether an unverified call from source may be recorded at now, and how many of the source's
// calls have been dropped so far (including this one when it is dropped).
func (l *SourceLimiter) Allow(source string, now time.Time) (bool, int64) {
	if l == nil || l.PerMinute <= 0 {
		return true, 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.buckets == nil {
		l.buckets = map[string]*bucket{}
	}
	burst := float64(l.PerMinute)
	b, ok := l.buckets[source]
	if !ok {
		max := l.MaxSources
		if max <= 0 {
			max = 10000
		}
		if len(l.buckets) >= max {
			l.evict(now, burst)
		}
		if len(l.buckets) >= max {
			source = sharedSource
			b = l.buckets[source]
		}
		if b == nil {
			b = &bucket{tokens: burst, last: now}
			l.buckets[source] = b
		}
	}
	b.tokens = min(burst, b.tokens+now.Sub(b.last).Minutes()*float64(l.PerMinute))
	b.last = now
	if b.tokens >= 1 {
		b.tokens--
		return true, b.dropped
	}
	b.dropped++
	return false, b.dropped
}

// evict forgets the buckets that are full again: such a source is indistinguishable from a new one.
func (l *SourceLimiter) evict(now time.Time, burst float64) {
	for k, b := range l.buckets {
		if b.tokens+now.Sub(b.last).Minutes()*float64(l.PerMinute) >= burst {
			delete(l.buckets, k)
		}
	}
}
