package schedule_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/digest/digest/internal/schedule"
)

// hang bounds every wait of these tests: far above what any step takes, so
// that only a deadlock trips it.
const hang = 20 * time.Second

// fakeClock is a clock that moves only when the test says so.
type fakeClock struct {
	mu      sync.Mutex
	now     time.Time
	timers  map[*fakeTimer]bool
	changed chan struct{} // closed and replaced whenever timers change
}

type fakeTimer struct {
	c  *fakeClock
	at time.Time
	ch chan time.Time
}

func newFakeClock(t time.Time) *fakeClock {
	return &fakeClock{now: t, timers: map[*fakeTimer]bool{}, changed: make(chan struct{})}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) NewTimer(d time.Duration) schedule.Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &fakeTimer{c: c, at: c.now.Add(d), ch: make(chan time.Time, 1)}
	if d <= 0 {
		t.ch <- c.now
		return t
	}
	c.timers[t] = true
	c.notify()
	return t
}

func (t *fakeTimer) C() <-chan time.Time { return t.ch }

func (t *fakeTimer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	active := t.c.timers[t]
	delete(t.c.timers, t)
	t.c.notify()
	return active
}

// notify wakes waitTimer; c.mu is held.
func (c *fakeClock) notify() {
	close(c.changed)
	c.changed = make(chan struct{})
}

// set moves the clock to at (forward or back) and fires the timers due.
func (c *fakeClock) set(at time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = at
	for t := range c.timers {
		if !t.at.After(at) {
			t.ch <- at
			delete(c.timers, t)
		}
	}
	c.notify()
}

// waitTimer blocks until the loop waits on a timer, that is, until it has
// done everything the last clock change made due, and returns the time the
// timer fires.
func (c *fakeClock) waitTimer(t *testing.T) time.Time {
	t.Helper()
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
			t.Fatal("the loop never waited on a timer")
		}
	}
}

// memState is an in-memory StateStore that keeps the store's rule: a save
// never moves the state back to an earlier scheduled time.
type memState struct {
	mu    sync.Mutex
	st    map[string]schedule.State
	saves chan schedule.State // every save attempted, in order
}

var _ schedule.StateStore = (*memState)(nil)

func newMemState() *memState {
	return &memState{st: map[string]schedule.State{}, saves: make(chan schedule.State, 100)}
}

func (m *memState) LoadState(_ context.Context, name string) (schedule.State, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	st, ok := m.st[name]
	return st, ok, nil
}

func (m *memState) SaveState(_ context.Context, name string, st schedule.State) error {
	m.mu.Lock()
	if cur, ok := m.st[name]; !ok || !st.Scheduled.Before(cur.Scheduled) {
		m.st[name] = st
	}
	m.mu.Unlock()
	m.saves <- st
	return nil
}

func (m *memState) get(name string) schedule.State {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.st[name]
}

// nextSave returns the next save the loop attempted.
func (m *memState) nextSave(t *testing.T) schedule.State {
	t.Helper()
	select {
	case st := <-m.saves:
		return st
	case <-time.After(hang):
		t.Fatal("no state saved")
		return schedule.State{}
	}
}

// counts is an Observer that counts.
type counts struct {
	mu       sync.Mutex
	skipped  map[string]int
	caughtUp int
	next     time.Time
}

func (c *counts) NextRun(t time.Time) { c.mu.Lock(); c.next = t; c.mu.Unlock() }
func (c *counts) Skipped(reason string, n int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.skipped == nil {
		c.skipped = map[string]int{}
	}
	c.skipped[reason] += n
}
func (c *counts) CaughtUp() { c.mu.Lock(); c.caughtUp++; c.mu.Unlock() }

func (c *counts) get() (map[string]int, int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	m := map[string]int{}
	for k, v := range c.skipped {
		m[k] = v
	}
	return m, c.caughtUp
}
