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
