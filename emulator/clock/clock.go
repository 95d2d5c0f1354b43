// Package clock is the emulator's marketplace time: it starts at a chosen instant and runs Scale times faster
// than the wall clock, can be paused (scale 0) and jumped forward. A month of subscriptions, expiries, freezes and
// fifteen-day retention periods can then run in a minute against a real kooflow, while every timestamp the
// marketplace sends (createTime, expireTime) stays a plausible calendar time.
//
// The clock never runs slower than real time, so emulated "now" is always at or after the wall clock's: every
// expiry the emulator sends is in the future for the seller too, as it would be in production.
package clock

import (
	"context"
	"sync"
	"time"
)

// Clock is safe for concurrent use.
type Clock struct {
	mu        sync.Mutex
	base      time.Time // emulated time at wallBase
	wallBase  time.Time
	scale     float64
	changed   chan struct{} // closed and replaced whenever scale or offset changes
	wallClock func() time.Time
}

// New returns a clock reading start now, running at scale (1 = real time; 0 = paused; values in (0, 1) are
// raised to 1).
func New(start time.Time, scale float64) *Clock {
	return newWithWall(start, scale, time.Now)
}

func newWithWall(start time.Time, scale float64, wall func() time.Time) *Clock {
	if scale > 0 && scale < 1 {
		scale = 1
	}
	return &Clock{base: start, wallBase: wall(), scale: scale, changed: make(chan struct{}), wallClock: wall}
}

// Now is the emulated time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nowLocked()
}

func (c *Clock) nowLocked() time.Time {
	elapsed := c.wallClock().Sub(c.wallBase)
	return c.base.Add(time.Duration(float64(elapsed) * c.scale))
}

// Scale is the current speed.
func (c *Clock) Scale() float64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.scale
}

// SetScale changes the speed from now on (0 pauses).
func (c *Clock) SetScale(scale float64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if scale > 0 && scale < 1 {
		scale = 1
	}
	c.base, c.wallBase = c.nowLocked(), c.wallClock()
	c.scale = scale
	c.signal()
}

// Advance jumps the clock forward by d; everything waiting for a time now passed wakes up.
func (c *Clock) Advance(d time.Duration) {
	if d <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.base, c.wallBase = c.nowLocked().Add(d), c.wallClock()
	c.signal()
}

func (c *Clock) signal() {
	close(c.changed)
	c.changed = make(chan struct{})
}

// WallDuration converts an emulated duration to the wall-clock time it takes at the current scale (for a paused
// clock, the emulated duration itself).
func (c *Clock) WallDuration(d time.Duration) time.Duration {
	s := c.Scale()
	if s <= 0 {
		return d
	}
	return time.Duration(float64(d) / s)
}

// Until blocks until the emulated time reaches t, or ctx ends.
func (c *Clock) Until(ctx context.Context, t time.Time) error {
	for {
		c.mu.Lock()
		now, scale, changed := c.nowLocked(), c.scale, c.changed
		c.mu.Unlock()
		remaining := t.Sub(now)
		if remaining <= 0 {
			return nil
		}
		var tm *time.Timer
		var timer <-chan time.Time
		if scale > 0 {
			wait := time.Duration(float64(remaining) / scale)
			if wait < time.Millisecond {
				wait = time.Millisecond
			}
			tm = time.NewTimer(wait)
			timer = tm.C
		}
		var err error
		select {
		case <-ctx.Done():
			err = ctx.Err()
		case <-changed:
		case <-timer:
		}
		if tm != nil {
			tm.Stop()
		}
		if err != nil {
			return err
		}
	}
}

// Sleep blocks for an emulated duration d.
func (c *Clock) Sleep(ctx context.Context, d time.Duration) error {
	return c.Until(ctx, c.Now().Add(d))
}
