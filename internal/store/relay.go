package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// relayOutageKey is the settings key of the relay outage a delivery run is
// waiting out.
const relayOutageKey = "relay_outage"

// RelayOutage is a relay outage as a delivery run saw it, kept so that
// another process (digest status) can tell.
type RelayOutage struct {
	Since time.Time `json:"since"` // when the relay stopped answering (real time)
	Reply string    `json:"reply"` // why: the reply, or why no session opened
	Quota bool      `json:"quota"` // a sending cap holds delivery back, not the relay
}

// SaveRelayOutage records that delivery waits for the relay.
func (s *Store) SaveRelayOutage(ctx context.Context, o RelayOutage) error {
	b, err := json.Marshal(o)
	if err != nil {
		return err
	}
	if _, err := s.db.ExecContext(ctx, s.q.putSetting, relayOutageKey, string(b)); err != nil {
		return fmt.Errorf("save relay outage: %w", err)
	}
	return nil
}

// ClearRelayOutage records that the relay answers again.
func (s *Store) ClearRelayOutage(ctx context.Context) error {
	if _, err := s.db.ExecContext(ctx, s.q.deleteSetting, relayOutageKey); err != nil {
		return fmt.Errorf("clear relay outage: %w", err)
	}
	return nil
}

// LastRelayOutage returns the outage the last delivery run was waiting out,
// if it has not seen the relay answer since; ok is false when none.
func (s *Store) LastRelayOutage(ctx context.Context) (o RelayOutage, ok bool, err error) {
	var v string
	err = s.db.QueryRowContext(ctx, s.q.getSetting, relayOutageKey).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return o, false, nil
	}
	if err != nil {
		return o, false, fmt.Errorf("relay outage: %w", err)
	}
	if err := json.Unmarshal([]byte(v), &o); err != nil {
		return o, false, fmt.Errorf("relay outage: settings key %q holds a malformed value", relayOutageKey)
	}
	return o, true, nil
}

// RetriesWaiting returns how many of the issue's pending rows wait for a
// retry that is not due yet (a reader's own temporary failure), and when
// the first falls due (real time); zero when none.
func (s *Store) RetriesWaiting(ctx context.Context, issueID string) (int, time.Time, error) {
	now, err := s.leaseTime(ctx, s.db)
	if err != nil {
		return 0, time.Time{}, err
	}
	var n int
	if err := s.db.QueryRowContext(ctx, s.q.retriesWaiting, issueID, now).Scan(&n); err != nil {
		return 0, time.Time{}, fmt.Errorf("retries of issue %s: %w", issueID, err)
	}
	if n == 0 {
		return 0, time.Time{}, nil
	}
	var next time.Time
	if err := s.db.QueryRowContext(ctx, s.q.nextRetry, issueID, now).Scan(&next); err != nil {
		return 0, time.Time{}, fmt.Errorf("retries of issue %s: %w", issueID, err)
	}
	return n, next, nil
}

// NthSentSince returns when the n-th (from 0) oldest message sent since a
// time (all issues) was sent, or the zero time when fewer were: a cap of C
// messages in a window, with U sent, frees its next slot when the
// (U-C)-th leaves the window.
func (s *Store) NthSentSince(ctx context.Context, since time.Time, n int) (time.Time, error) {
	var at time.Time
	err := s.db.QueryRowContext(ctx, s.q.nthSentSince, utc(since), max(n, 0)).Scan(&at)
	if errors.Is(err, sql.ErrNoRows) {
		return time.Time{}, nil
	}
	if err != nil {
		return time.Time{}, fmt.Errorf("sent since %s: %w", since.Format(time.RFC3339), err)
	}
	return at, nil
}
