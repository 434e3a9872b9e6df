package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/digest/digest/internal/ledger"
	"github.com/digest/digest/internal/schedule"
)

// Holder is the process that holds, or wants, a lease: the same name as a
// delivery run's (Store.Process for this one).
type Holder = ledger.Process

// Lease is a named lease as stored: one holder at a time, until Expires.
type Lease struct {
	Name    string
	Holder  Holder
	Since   time.Time // when the holder took it
	Renewed time.Time // its last renewal
	Expires time.Time
	key     string // alive_key: see liveness.go
}

// Expired reports whether the lease has run out at now.
func (l Lease) Expired(now time.Time) bool { return !l.Expires.After(now) }

// Acquisition is the result of AcquireLease.
type Acquisition struct {
	Lease      // as it stands now: the caller's when Held, else the current holder's
	Held  bool // the caller holds the lease
	// TookOver is the expired lease the caller replaced, when it did.
	TookOver *Lease
}

func scanLease(r scanner) (Lease, error) {
	var l Lease
	err := r.Scan(&l.Name, &l.Holder.ID, &l.Holder.Host, &l.Holder.PID, &l.Since, &l.Renewed, &l.Expires, &l.key)
	l.Since, l.Renewed, l.Expires = l.Since.UTC(), l.Renewed.UTC(), l.Expires.UTC()
	return l, err
}

// AcquireLease takes the named lease for h for ttl when it is free or
// expired or its holder is provably gone (see liveness.go), renews it when
// h holds it already, and otherwise reports who holds it. Expiry is judged
// by the lease clock (the database's on Postgres) and re-checked inside the
// transaction that takes the lease, so two processes never both hold it.
func (s *Store) AcquireLease(ctx context.Context, name string, h Holder, ttl time.Duration) (Acquisition, error) {
	if ttl <= 0 || h.ID == "" {
		return Acquisition{}, fmt.Errorf("acquire lease %s: a holder id and a positive ttl are required", name)
	}
	key, err := s.aliveKey(ctx, h.ID)
	if err != nil {
		return Acquisition{}, fmt.Errorf("acquire lease %s: %w", name, err)
	}
	var a Acquisition
	err = s.tx(ctx, func(tx *sql.Tx) error {
		a = Acquisition{}
		now, err := s.leaseTime(ctx, tx)
		if err != nil {
			return err
		}
		mine := Lease{Name: name, Holder: h, Since: now, Renewed: now, Expires: now.Add(ttl), key: key}
		cur, err := scanLease(tx.QueryRowContext(ctx, s.q.getLease, name))
		var n int64
		switch {
		case errors.Is(err, sql.ErrNoRows):
			n, err = affected(tx.ExecContext(ctx, s.q.insertLease, name, h.ID, h.Host, h.PID, now, now, mine.Expires, key))
		case err != nil:
			return err
		case cur.Holder.ID == h.ID:
			mine.Since = cur.Since
			n, err = affected(tx.ExecContext(ctx, s.q.renewLease, now, mine.Expires, name, h.ID))
		default:
			var took bool
			if took, n, err = s.takeLease(ctx, tx, cur, mine, now); err != nil || !took {
				a.Lease = cur
				return err
			}
			if n == 1 {
				a.TookOver = &cur
			}
		}
		if err != nil {
			return err
		}
		if n == 1 {
			a.Lease, a.Held = mine, true
			return nil
		}
		// Another process got there first: report it.
		a.Lease, err = scanLease(tx.QueryRowContext(ctx, s.q.getLease, name))
		return err
	})
	if err != nil {
		return Acquisition{}, fmt.Errorf("acquire lease %s: %w", name, err)
	}
	return a, nil
}

// takeLease takes cur for mine when cur expired or its holder is gone; took
// is false when neither is true (the lease stays cur's).
func (s *Store) takeLease(ctx context.Context, tx *sql.Tx, cur, mine Lease, now time.Time) (took bool, n int64, err error) {
	// The UPDATE re-checks that cur is unchanged and expired at upTo: now
	// when it expired, its own expiry when its holder is gone.
	upTo := now
	if !cur.Expired(now) {
		g, err := s.gone(ctx, tx, owner{host: cur.Holder.Host, pid: cur.Holder.PID, key: cur.key, seen: cur.Renewed}, now)
		if err != nil || !g {
			return false, 0, err
		}
		upTo = cur.Expires
	}
	h := mine.Holder
	n, err = affected(tx.ExecContext(ctx, s.q.takeLease, h.ID, h.Host, h.PID, now, now, mine.Expires, mine.key,
		cur.Name, cur.Holder.ID, upTo))
	return true, n, err
}

// RenewLease extends h's lease by ttl from now. It returns an error wrapping ledger.ErrLeaseLost when
// h no longer holds it, or when this process's liveness connection dropped
// (others may have seen it gone). A lease that expired but that nobody took
// is still h's and is renewed.
func (s *Store) RenewLease(ctx context.Context, name string, h Holder, ttl time.Duration) (Lease, error) {
	if h.ID == s.self.ID {
		if err := s.stillAlive(ctx, h.ID); errors.Is(err, errAliveLost) {
			return Lease{}, fmt.Errorf("renew lease %s: %w: %w", name, ledger.ErrLeaseLost, err)
		} else if err != nil {
			return Lease{}, fmt.Errorf("renew lease %s: %w", name, err)
		}
	}
	var l Lease
	err := s.tx(ctx, func(tx *sql.Tx) error {
		now, err := s.leaseTime(ctx, tx)
		if err != nil {
			return err
		}
		n, err := affected(tx.ExecContext(ctx, s.q.renewLease, now, now.Add(ttl), name, h.ID))
		if err != nil {
			return err
		}
		if n == 0 {
			return ledger.ErrLeaseLost
		}
		l, err = scanLease(tx.QueryRowContext(ctx, s.q.getLease, name))
		return err
	})
	if err != nil {
		return Lease{}, fmt.Errorf("renew lease %s: %w", name, err)
	}
	return l, nil
}

// ReleaseLease gives up h's lease, so that another process may take it at
// once. Releasing a lease that h does not hold changes nothing.
func (s *Store) ReleaseLease(ctx context.Context, name string, h Holder) error {
	if _, err := s.db.ExecContext(ctx, s.q.releaseLease, name, h.ID); err != nil {
		return fmt.Errorf("release lease %s: %w", name, err)
	}
	return nil
}

// LeaseHolder returns the named lease, expired or not, or ledger.ErrNotFound when
// nobody holds it.
func (s *Store) LeaseHolder(ctx context.Context, name string) (Lease, error) {
	l, err := scanLease(s.db.QueryRowContext(ctx, s.q.getLease, name))
	if errors.Is(err, sql.ErrNoRows) {
		return Lease{}, fmt.Errorf("lease %s: %w", name, ledger.ErrNotFound)
	}
	if err != nil {
		return Lease{}, fmt.Errorf("lease %s: %w", name, err)
	}
	return l, nil
}

// ScheduleState is the record of a named schedule: the latest scheduled
// time handled, what became of it and when.
type ScheduleState struct {
	Scheduled time.Time
	Outcome   string
	Detail    string
	At        time.Time
}

// ScheduleState returns the named schedule's state, or ledger.ErrNotFound.
func (s *Store) ScheduleState(ctx context.Context, name string) (ScheduleState, error) {
	var st ScheduleState
	err := s.db.QueryRowContext(ctx, s.q.getScheduleState, name).Scan(&st.Scheduled, &st.Outcome, &st.Detail, &st.At)
	if errors.Is(err, sql.ErrNoRows) {
		return ScheduleState{}, fmt.Errorf("schedule state %s: %w", name, ledger.ErrNotFound)
	}
	if err != nil {
		return ScheduleState{}, fmt.Errorf("schedule state %s: %w", name, err)
	}
	st.Scheduled, st.At = st.Scheduled.UTC(), st.At.UTC()
	return st, nil
}

// SaveScheduleState records st under name, unless the state stored has a
// later scheduled time: the state only moves forward. A zero At is stamped
// with the store's clock.
func (s *Store) SaveScheduleState(ctx context.Context, name string, st ScheduleState) error {
	if st.At.IsZero() {
		st.At = s.stamp()
	}
	_, err := s.db.ExecContext(ctx, s.q.saveScheduleState, name, utc(st.Scheduled), st.Outcome, st.Detail, utc(st.At))
	if err != nil {
		return fmt.Errorf("save schedule state %s: %w", name, err)
	}
	return nil
}

// affected returns the rows an Exec changed.
func affected(res sql.Result, err error) (int64, error) {
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// LoadState returns the named schedule's state (schedule.StateStore);
// found is false when none was saved.
func (s *Store) LoadState(ctx context.Context, name string) (schedule.State, bool, error) {
	st, err := s.ScheduleState(ctx, name)
	if errors.Is(err, ledger.ErrNotFound) {
		return schedule.State{}, false, nil
	}
	if err != nil {
		return schedule.State{}, false, err
	}
	return schedule.State{Scheduled: st.Scheduled, Outcome: schedule.Outcome(st.Outcome), At: st.At, Detail: st.Detail}, true, nil
}

// SaveState records the named schedule's state (schedule.StateStore), as
// SaveScheduleState does.
func (s *Store) SaveState(ctx context.Context, name string, st schedule.State) error {
	return s.SaveScheduleState(ctx, name, ScheduleState{
		Scheduled: st.Scheduled, Outcome: string(st.Outcome), At: st.At, Detail: st.Detail})
}
