// Package clocktest is the fake clock of the tests: its time moves only
// when the test moves it (or when code under test sleeps on it), and its
// timers fire when the time reaches them. It implements schedule.Clock and
// the func() time.Time and Sleep hooks the other packages take, so rules
// that span minutes or days are tested in milliseconds.
package clocktest

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/digest/digest/internal/schedule"
)

// Clock is a fake clock. It is safe for concurrent use.
type Clock struct {
	mu      sync.Mutex
	now     time.Time
	timers  map[*timer]bool
	changed chan struct{} // closed and replaced whenever timers change
}

var _ schedule.Clock = (*Clock)(nil)

type timer struct {
	c  *Clock
	at time.Time
	ch chan time.Time
}

// New returns a clock showing t.
func New(t time.Time) *Clock {
	return &Clock{now: t, timers: map[*timer]bool{}, changed: make(chan struct{})}
}

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Set moves the clock to t, forward or back, and fires the timers due.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.setLocked(t)
}

// Advance moves the clock forward by d and fires the timers due. Advances
// from several goroutines add up.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.setLocked(c.now.Add(d))
}

// setLocked is Set with c.mu held.
func (c *Clock) setLocked(t time.Time) {
	c.now = t
	for tm := range c.timers {
		if !tm.at.After(t) {
			tm.ch <- t
			delete(c.timers, tm)
		}
	}
	c.notify()
}

// Sleep advances the clock by d at once, so that waits cost nothing; it
// reports false without advancing when ctx has ended (the Sleep hooks'
// contract).
func (c *Clock) Sleep(ctx context.Context, d time.Duration) bool {
	if ctx.Err() != nil {
		return false
	}
	c.Advance(d)
	return true
}

// NewTimer returns a timer that fires once the clock reaches now+d (at
// once when d <= 0).
func (c *Clock) NewTimer(d time.Duration) schedule.Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &timer{c: c, at: c.now.Add(d), ch: make(chan time.Time, 1)}
	if d <= 0 {
		t.ch <- c.now
		return t
	}
	c.timers[t] = true
	c.notify()
	return t
}

func (t *timer) C() <-chan time.Time { return t.ch }

func (t *timer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	active := t.c.timers[t]
	delete(t.c.timers, t)
	t.c.notify()
	return active
}

// notify wakes WaitTimer; c.mu is held.
func (c *Clock) notify() {
	close(c.changed)
	c.changed = make(chan struct{})
}

// WaitTimer blocks until some goroutine waits on one of the clock's timers
// (it has done everything the last change made due) and returns when that
// timer fires. It fails tb after hang of real time: only a deadlock takes
// that long.
func (c *Clock) WaitTimer(tb testing.TB, hang time.Duration) time.Time {
	tb.Helper()
	deadline := time.After(hang)
	for {
		c.mu.Lock()
		for tm := range c.timers {
			at := tm.at
			c.mu.Unlock()
			return at
		}
		ch := c.changed
		c.mu.Unlock()
		select {
		case <-ch:
		case <-deadline:
			tb.Fatal("nothing waited on a timer")
		}
	}
}

// Until advances the clock in steps of step, letting other goroutines run
// a millisecond of real time between them, until cond holds, and returns
// the fake time it took. Once budget of fake time has passed it stops
// advancing and waits up to 5 seconds of real time for cond (a loaded
// machine runs the goroutines slower than the fake time flies), then fails
// tb; it also fails after 20 seconds of real time in all.
func (c *Clock) Until(tb testing.TB, what string, step, budget time.Duration, cond func() bool) time.Duration {
	tb.Helper()
	start := c.Now()
	deadline := time.Now().Add(20 * time.Second)
	var late time.Time // when the budget was spent, in real time
	for !cond() {
		now := time.Now()
		if now.After(deadline) || (!late.IsZero() && now.Sub(late) > 5*time.Second) {
			tb.Fatalf("%s: not after %s of fake time", what, c.Now().Sub(start))
		}
		time.Sleep(time.Millisecond)
		if c.Now().Sub(start)+step > budget {
			if late.IsZero() {
				late = now
			}
			continue
		}
		c.Advance(step)
	}
	return c.Now().Sub(start)
}
