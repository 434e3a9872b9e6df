package store

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/digest/digest/internal/ledger"
	"github.com/digest/digest/internal/store/storetest"
)

const ttl = 30 * time.Second

func holder(n int) Holder { return Holder{ID: fmt.Sprintf("id-%d", n), Host: "host", PID: 100 + n} }

func TestLeaseLifecycle(t *testing.T) { storetest.Run(t, testLeaseLifecycle) }

func testLeaseLifecycle(t *testing.T, db storetest.Backend) {
	ctx := context.Background()
	s, c := openTest(t, db)
	a, b := holder(1), holder(2)

	if _, err := s.LeaseHolder(ctx, "daemon"); !errors.Is(err, ledger.ErrNotFound) {
		t.Fatalf("LeaseHolder of a free lease: %v", err)
	}
	got, err := s.AcquireLease(ctx, "daemon", a, ttl)
	must(t, err)
	if !got.Held || got.Holder != a || !got.Since.Equal(t0) || !got.Expires.Equal(t0.Add(ttl)) || got.TookOver != nil {
		t.Fatalf("first acquire: %+v", got)
	}

	c.Set(t0.Add(10 * time.Second))
	got, err = s.AcquireLease(ctx, "daemon", b, ttl)
	must(t, err)
	if got.Held || got.Holder != a {
		t.Fatalf("b acquired a live lease of a: %+v", got)
	}
	// Acquiring again renews and keeps since.
	got, err = s.AcquireLease(ctx, "daemon", a, ttl)
	must(t, err)
	if !got.Held || !got.Since.Equal(t0) || !got.Expires.Equal(t0.Add(10*time.Second+ttl)) {
		t.Fatalf("re-acquire by the holder: %+v", got)
	}

	c.Set(t0.Add(20 * time.Second))
	l, err := s.RenewLease(ctx, "daemon", a, ttl)
	must(t, err)
	if !l.Expires.Equal(t0.Add(20*time.Second+ttl)) || !l.Renewed.Equal(t0.Add(20*time.Second)) {
		t.Fatalf("renewed: %+v", l)
	}
	if _, err := s.RenewLease(ctx, "daemon", b, ttl); !errors.Is(err, ledger.ErrLeaseLost) {
		t.Fatalf("b renewed a's lease: %v", err)
	}

	// Expired: b takes over, and a has lost it.
	c.Set(t0.Add(20*time.Second + ttl))
	got, err = s.AcquireLease(ctx, "daemon", b, ttl)
	must(t, err)
	if !got.Held || got.Holder != b || got.TookOver == nil || got.TookOver.Holder != a {
		t.Fatalf("take-over of an expired lease: %+v", got)
	}
	if _, err := s.RenewLease(ctx, "daemon", a, ttl); !errors.Is(err, ledger.ErrLeaseLost) {
		t.Fatalf("a renewed a lease b took: %v", err)
	}
	if got, err := s.AcquireLease(ctx, "daemon", a, ttl); err != nil || got.Held || got.Holder != b {
		t.Fatalf("a acquire after losing: %+v, %v", got, err)
	}

	// Releasing someone else's lease does nothing; releasing one's own frees it.
	must(t, s.ReleaseLease(ctx, "daemon", a))
	if l, err := s.LeaseHolder(ctx, "daemon"); err != nil || l.Holder != b {
		t.Fatalf("after a's release: %+v, %v", l, err)
	}
	must(t, s.ReleaseLease(ctx, "daemon", b))
	if _, err := s.LeaseHolder(ctx, "daemon"); !errors.Is(err, ledger.ErrNotFound) {
		t.Fatalf("after b's release: %v", err)
	}
	if got, err := s.AcquireLease(ctx, "daemon", a, ttl); err != nil || !got.Held || got.TookOver != nil {
		t.Fatalf("acquire after release: %+v, %v", got, err)
	}
	// Leases are per name.
	if got, err := s.AcquireLease(ctx, "other", b, ttl); err != nil || !got.Held {
		t.Fatalf("another name: %+v, %v", got, err)
	}
}

// A holder that stalled past its expiry keeps the lease if nobody took it.
func TestLeaseRenewAfterExpiryUntaken(t *testing.T) {
	storetest.Run(t, testLeaseRenewAfterExpiryUntaken)
}

func testLeaseRenewAfterExpiryUntaken(t *testing.T, db storetest.Backend) {
	ctx := context.Background()
	s, c := openTest(t, db)
	_, err := s.AcquireLease(ctx, "daemon", holder(1), ttl)
	must(t, err)
	c.Set(t0.Add(time.Hour))
	l, err := s.RenewLease(ctx, "daemon", holder(1), ttl)
	must(t, err)
	if l.Expired(t0.Add(time.Hour)) || !l.Since.Equal(t0) {
		t.Errorf("renewed: %+v", l)
	}
}

func TestLeaseArguments(t *testing.T) { storetest.Run(t, testLeaseArguments) }

func testLeaseArguments(t *testing.T, db storetest.Backend) {
	s, _ := openTest(t, db)
	if _, err := s.AcquireLease(context.Background(), "daemon", Holder{}, ttl); err == nil {
		t.Error("a holder without id acquired")
	}
	if _, err := s.AcquireLease(context.Background(), "daemon", holder(1), 0); err == nil {
		t.Error("a zero ttl acquired")
	}
	h, h2 := s.Process(), openAt(t, db.Fresh(t), newClock()).Process()
	if h.ID == h2.ID || h.PID == 0 || h.Host == "" {
		t.Errorf("holders %+v and %+v", h, h2)
	}
}

// Two stores on one file stand for two processes; many holders race for the
// lease, first free and then expired. Exactly one wins each race.
func TestLeaseContention(t *testing.T) { storetest.Run(t, testLeaseContention) }

func testLeaseContention(t *testing.T, db storetest.Backend) {
	ctx := context.Background()
	path := db.Fresh(t)
	c := newClock()
	stores := []*Store{openAt(t, path, c), openAt(t, path, c)}
	race := func() []Holder {
		var (
			mu      sync.Mutex
			winners []Holder
			wg      sync.WaitGroup
		)
		for i := range 16 {
			wg.Go(func() {
				h := holder(i + 1)
				a, err := stores[i%2].AcquireLease(ctx, "daemon", h, ttl)
				if err != nil {
					t.Error(err)
					return
				}
				if a.Held {
					mu.Lock()
					winners = append(winners, h)
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		return winners
	}
	first := race()
	if len(first) != 1 {
		t.Fatalf("free lease: %d winners %v", len(first), first)
	}
	c.Set(t0.Add(ttl))
	second := race()
	// Whoever comes first (the old holder renewing, or another taking the
	// expired lease) holds a live lease that the rest then see.
	if len(second) != 1 {
		t.Fatalf("expired lease: %d winners %v", len(second), second)
	}
	l, err := stores[0].LeaseHolder(ctx, "daemon")
	must(t, err)
	if l.Holder != second[0] {
		t.Errorf("lease held by %v, winner %v", l.Holder, second[0])
	}
}

func TestScheduleState(t *testing.T) { storetest.Run(t, testScheduleState) }

func testScheduleState(t *testing.T, db storetest.Backend) {
	ctx := context.Background()
	s, c := openTest(t, db)
	if _, err := s.ScheduleState(ctx, "digest"); !errors.Is(err, ledger.ErrNotFound) {
		t.Fatalf("no state: %v", err)
	}
	ten := time.Date(2026, 5, 4, 10, 0, 0, 0, time.FixedZone("CEST", 2*3600))
	must(t, s.SaveScheduleState(ctx, "digest", ScheduleState{Scheduled: ten, Outcome: "running"}))
	st, err := s.ScheduleState(ctx, "digest")
	must(t, err)
	if !st.Scheduled.Equal(ten) || st.Outcome != "running" || !st.At.Equal(t0) {
		t.Fatalf("state %+v", st)
	}
	c.Set(t0.Add(time.Minute))
	must(t, s.SaveScheduleState(ctx, "digest", ScheduleState{Scheduled: ten, Outcome: "failed", Detail: "relay down"}))
	eleven := ten.Add(time.Hour)
	must(t, s.SaveScheduleState(ctx, "digest", ScheduleState{Scheduled: eleven, Outcome: "skipped", At: eleven}))
	// An older time never moves the state back.
	must(t, s.SaveScheduleState(ctx, "digest", ScheduleState{Scheduled: ten, Outcome: "ok"}))
	st, err = s.ScheduleState(ctx, "digest")
	must(t, err)
	if !st.Scheduled.Equal(eleven) || st.Outcome != "skipped" || !st.At.Equal(eleven) {
		t.Fatalf("state %+v, want skipped at 11:00", st)
	}
	if _, err := s.ScheduleState(ctx, "other"); !errors.Is(err, ledger.ErrNotFound) {
		t.Fatalf("other name: %v", err)
	}
}
