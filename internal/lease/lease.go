// Package lease keeps a lease alive: the one keeper of delivery runs'
// leases and of the daemon's. A Keeper renews the lease at a fixed
// interval, in the background (so that a process busy elsewhere, in a long
// SMTP reply or a big enqueue, keeps it), and says whether the lease is
// still certainly valid: a holder that acts only while Valid is true never
// acts after its lease lapsed (self-fencing), whatever its clock or the
// store's. Validity is measured on the holder's own clock, from the start
// of its last successful renewal: the store's expiry is at least that late.
package lease

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/digest/digest/internal/ledger"
)

// Timer is a one-shot timer (schedule.Timer is one).
type Timer interface {
	C() <-chan time.Time
	Stop() bool
}

// Options configure a Keeper. TTL, Every and Renew are required.
type Options struct {
	// What is kept, for the logs ("delivery run host:4711:…").
	Name string
	// TTL is the lease's length; Every how often it is renewed (well
	// within TTL: a third or less).
	TTL, Every time.Duration
	// Margin is how long before the lease could lapse Valid turns false,
	// for the work in flight; 0 means a sixth of TTL.
	Margin time.Duration
	// Renew renews the lease once. An error wrapping ledger.ErrLeaseLost says it is no
	// longer the holder's (it lapsed, or another took it): the keeper
	// stops. Other errors are retried at the next interval.
	Renew func(ctx context.Context) error
	// Now is the clock Valid and the renewals are measured on; nil: the
	// real time. NewTimer makes the renewal timer; nil: a real timer.
	Now      func() time.Time
	NewTimer func(d time.Duration) Timer
	Logger   *slog.Logger
}

// Keeper renews one lease until Close.
type Keeper struct {
	o        Options
	ctx      context.Context
	stop     context.CancelFunc
	done     chan struct{}
	lost     chan struct{} // closed when the lease is lost or cannot be valid any more
	renewing sync.Mutex    // one renewal at a time

	mu        sync.Mutex
	ok, tried time.Time // starts of the last successful renewal (or of Keep) and of the last attempt
	isLost    bool
	lastErr   error
}

// Keep starts renewing a lease that was just taken (now counts as its last
// renewal) until Close is called.
func Keep(ctx context.Context, o Options) *Keeper {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.NewTimer == nil {
		o.NewTimer = func(d time.Duration) Timer { return realTimer{time.NewTimer(d)} }
	}
	if o.Margin <= 0 {
		o.Margin = o.TTL / 6
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	start := o.Now()
	k := &Keeper{o: o, ok: start, tried: start, done: make(chan struct{}), lost: make(chan struct{})}
	k.ctx, k.stop = context.WithCancel(context.WithoutCancel(ctx))
	go k.loop()
	return k
}

func (k *Keeper) loop() {
	defer close(k.done)
	for {
		t := k.o.NewTimer(k.o.Every)
		select {
		case <-k.ctx.Done():
			t.Stop()
			return
		case <-t.C():
		}
		k.renewWatched()
		if k.Lost() != nil {
			return
		}
	}
}

// errHung is why a lease is given up whose renewal has not returned by the
// time it could lapse.
var errHung = errors.New("the renewal did not return before the lease could lapse")

// renewWatched renews in the background and waits for it, but not past
// the time the lease stops being valid: a renewal that hangs (a store that
// ignores its context) must not keep its holder acting as the holder, or
// saying so, after the lease may have passed to another process. The hung
// renewal is left to return by itself.
func (k *Keeper) renewWatched() {
	done := make(chan struct{})
	go func() {
		defer close(done)
		k.Renew(k.ctx)
	}()
	k.mu.Lock()
	left := k.ok.Add(k.o.TTL - k.o.Margin).Sub(k.o.Now())
	k.mu.Unlock()
	t := k.o.NewTimer(left)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C():
		k.mu.Lock()
		if !k.isLost && !k.o.Now().Before(k.ok.Add(k.o.TTL-k.o.Margin)) {
			k.o.Logger.Error("lease renewal hangs: stopping before the lease can lapse", "lease", k.o.Name)
			k.markLost(errHung)
		}
		k.mu.Unlock()
	}
}

// Renew renews the lease once now (also done in the background every
// Every). After a failure that is not ledger.ErrLeaseLost, it closes Lost's channel
// when the lease can no longer be valid.
func (k *Keeper) Renew(ctx context.Context) {
	k.renewing.Lock()
	defer k.renewing.Unlock()
	start := k.o.Now()
	k.mu.Lock()
	if k.isLost {
		k.mu.Unlock()
		return
	}
	k.tried = start
	k.mu.Unlock()
	rctx, cancel := context.WithTimeout(ctx, k.o.TTL/3)
	err := k.o.Renew(rctx)
	cancel()
	k.mu.Lock()
	defer k.mu.Unlock()
	switch {
	case err == nil:
		k.ok, k.lastErr = start, nil
	case errors.Is(err, ledger.ErrLeaseLost):
		k.o.Logger.Error("lease lost: another process may take over; stopping", "lease", k.o.Name, "err", err)
		k.markLost(err)
	default:
		// Retried at the next interval; Valid turns false if it keeps failing.
		k.o.Logger.Warn("renewing the lease", "lease", k.o.Name, "err", err)
		k.lastErr = err
		if !k.o.Now().Before(k.ok.Add(k.o.TTL - k.o.Margin)) {
			k.markLost(err)
		}
	}
}

// markLost records that the lease is gone; k.mu is held.
func (k *Keeper) markLost(err error) {
	if !k.isLost {
		k.isLost, k.lastErr = true, err
		close(k.lost)
	}
}

// Valid renews the lease first when a renewal is due (so that it follows
// the clock even when the timer lags), then reports whether the last
// successful renewal is recent enough that nobody else can hold the lease
// yet, with Margin to spare.
func (k *Keeper) Valid() bool {
	k.mu.Lock()
	due := !k.isLost && k.o.Now().Sub(k.tried) >= k.o.Every
	k.mu.Unlock()
	if due && k.renewing.TryLock() {
		k.renewing.Unlock() // Renew takes it again; a racing renewal is harmless
		k.Renew(k.ctx)
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	return !k.isLost && k.o.Now().Before(k.ok.Add(k.o.TTL-k.o.Margin))
}

// Lost returns nil while the lease may still be valid, and once it is not
// (lost, or not renewed in time), why.
func (k *Keeper) Lost() error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if !k.isLost {
		return nil
	}
	return k.lastErr
}

// LostC is closed when the lease is lost or can no longer be valid.
func (k *Keeper) LostC() <-chan struct{} { return k.lost }

// Close stops the renewals and waits for the one in progress, unless it
// hung past the lease (see renewWatched).
func (k *Keeper) Close() {
	k.stop()
	<-k.done
}

type realTimer struct{ t *time.Timer }

func (t realTimer) C() <-chan time.Time { return t.t.C }
func (t realTimer) Stop() bool          { return t.t.Stop() }
