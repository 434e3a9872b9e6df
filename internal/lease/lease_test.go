package lease_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/digest/digest/internal/clocktest"
	"github.com/digest/digest/internal/lease"
	"github.com/digest/digest/internal/ledger"
)

// fakeTime is a clock that moves only when told; the keeper's own timer
// never fires (the tests renew through Valid and Renew).
type fakeTime struct {
	mu sync.Mutex
	t  time.Time
}

func (f *fakeTime) now() time.Time      { f.mu.Lock(); defer f.mu.Unlock(); return f.t }
func (f *fakeTime) add(d time.Duration) { f.mu.Lock(); defer f.mu.Unlock(); f.t = f.t.Add(d) }
func never(time.Duration) lease.Timer   { return idle{} }

type idle struct{}

func (idle) C() <-chan time.Time { return nil }
func (idle) Stop() bool          { return true }

func TestKeeper(t *testing.T) {
	const ttl = 30 * time.Second
	tests := []struct {
		name      string
		renew     error         // what every renewal returns
		after     time.Duration // time passed, renewing through Valid every 10 s
		valid     bool
		lost      bool
		lostIsErr bool // Lost wraps ledger.ErrLeaseLost
	}{
		{"renewals work", nil, 2 * time.Minute, true, false, false},
		{"lost at once", fmt.Errorf("renew: %w", ledger.ErrLeaseLost), 10 * time.Second, false, true, true},
		{"failing, still within the lease", errors.New("connection refused"), 20 * time.Second, true, false, false},
		{"failing past the lease less the margin", errors.New("connection refused"), 30 * time.Second, false, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := &fakeTime{t: time.Date(2026, 12, 7, 8, 0, 0, 0, time.UTC)}
			calls := 0
			k := lease.Keep(context.Background(), lease.Options{
				Name: "test", TTL: ttl, Every: 10 * time.Second, Now: clock.now, NewTimer: never,
				Renew: func(context.Context) error { calls++; return tt.renew },
			})
			defer k.Close()
			for passed := time.Duration(0); passed < tt.after; passed += 10 * time.Second {
				clock.add(10 * time.Second)
				k.Valid()
			}
			if got := k.Valid(); got != tt.valid {
				t.Errorf("Valid() = %v, want %v", got, tt.valid)
			}
			select {
			case <-k.LostC():
				if !tt.lost {
					t.Errorf("lost: %v", k.Lost())
				}
			default:
				if tt.lost {
					t.Error("not lost")
				}
			}
			if tt.lost && errors.Is(k.Lost(), ledger.ErrLeaseLost) != tt.lostIsErr {
				t.Errorf("Lost() = %v", k.Lost())
			}
			if calls == 0 {
				t.Error("Valid never renewed a lease that was due")
			}
		})
	}
}

// A renewal that never returns (a store that ignores its context) does not
// keep the holder believing in its lease: Lost is closed once the lease
// could lapse, without waiting for the renewal.
func TestHungRenewalLosesTheLeaseInTime(t *testing.T) {
	t.Parallel()
	const ttl = 30 * time.Second
	clock := clocktest.New(time.Date(2026, 12, 7, 8, 0, 0, 0, time.UTC))
	release := make(chan struct{})
	started := make(chan struct{}, 1)
	k := lease.Keep(context.Background(), lease.Options{
		Name: "test", TTL: ttl, Every: 10 * time.Second, Margin: 5 * time.Second, Now: clock.Now,
		NewTimer: func(d time.Duration) lease.Timer { return clock.NewTimer(d) },
		Renew: func(context.Context) error {
			started <- struct{}{}
			<-release // hangs, whatever its context says
			return nil
		},
	})
	defer func() { close(release); k.Close() }()
	clock.WaitTimer(t, 10*time.Second)
	clock.Advance(10 * time.Second)
	<-started
	clock.WaitTimer(t, 10*time.Second) // the watch on the hung renewal
	clock.Advance(14 * time.Second)    // 24 s since the lease was taken: still valid
	select {
	case <-k.LostC():
		t.Fatal("lost while the lease was still valid")
	case <-time.After(20 * time.Millisecond):
	}
	clock.Advance(time.Second) // 25 s: the lease less the margin
	select {
	case <-k.LostC():
	case <-time.After(5 * time.Second):
		t.Fatal("the hung renewal kept the lease past its validity")
	}
	if k.Valid() || k.Lost() == nil {
		t.Errorf("after the hung renewal: Valid %v, Lost %v", k.Valid(), k.Lost())
	}
}
