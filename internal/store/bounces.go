package store

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/digest/digest/internal/bounce"
	"github.com/digest/digest/internal/ledger"
)

// The bounce policy.
const (
	// SoftBounceDays soft bounces on different days within
	// SoftBounceWindow, with no delivery event since, bounce a reader.
	SoftBounceDays   = 3
	SoftBounceWindow = 30 * 24 * time.Hour
	// UnmatchedKeep is how long events that named no reader or meant
	// nothing are kept (with their message) for the operator, and
	// deliveries, delays and auto-replies (past the soft-score window).
	UnmatchedKeep = 30 * 24 * time.Hour
	// maxRawKept bounds the copy of an unmatched message kept.
	maxRawKept = 256 << 10
	// RawBudget bounds all the copies kept together: past it an event is
	// kept without its copy (its reason says so), so that strangers
	// mailing the bounce address cannot grow the database without bound.
	RawBudget = 64 << 20
)

// RecordBounce keeps an event and applies the policy to its reader, in one
// transaction: a hard bounce marks an active reader bounced at once; a
// complaint marks the reader complained whatever its status; a soft bounce
// is counted, and the SoftBounceDays-th day within SoftBounceWindow since
// the reader's last delivery event marks an active reader bounced; a
// delivery event resets that count; an event that names the reader but
// not the issue is put on the last issue sent to the reader; delays, sender blocks, auto-replies
// and unmatched events change no one. An event whose fingerprint is known
// already does nothing (bounce.ActionDuplicate), so replays are harmless.
func (s *Store) RecordBounce(ctx context.Context, ev bounce.Event) (bounce.Event, error) {
	if ev.At.IsZero() {
		ev.At = s.stamp()
	}
	ev.At = ev.At.UTC()
	if ev.Fingerprint == "" {
		sum := sha256.Sum256(ev.Raw)
		ev.Fingerprint = "sha256:" + hex.EncodeToString(sum[:])
	}
	var raw []byte
	if ev.Kind == bounce.Unmatched || ev.Reader.SubscriberID == 0 {
		raw = ev.Raw[:min(len(ev.Raw), maxRawKept)]
	}
	var sub sql.NullInt64
	if ev.Reader.SubscriberID != 0 {
		sub = sql.NullInt64{Int64: ev.Reader.SubscriberID, Valid: true}
	}
	err := s.tx(ctx, func(tx *sql.Tx) error {
		if sub.Valid && ev.Reader.IssueID == "" {
			err := tx.QueryRowContext(ctx, s.q.latestSentIssue, sub.Int64).Scan(&ev.Reader.IssueID)
			if err != nil && !errors.Is(err, sql.ErrNoRows) {
				return err
			}
		}
		var err error
		if raw, err = s.makeRoom(ctx, tx, &ev, raw); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, s.q.insertBounceEvent, ev.Fingerprint, ev.At, ev.At.Format(time.DateOnly),
			ev.Source, string(ev.Kind), ev.Status, ev.Diagnostic, ev.Recipient, ev.Format, ev.Reason,
			sub, ev.Reader.IssueID, ev.Reader.Via, raw)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			ev.Action = bounce.ActionDuplicate
			return nil
		}
		if err := tx.QueryRowContext(ctx, s.q.bounceEventID, ev.Fingerprint).Scan(&ev.ID); err != nil {
			return err
		}
		if ev.Action, err = s.applyBounce(ctx, tx, ev); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, s.q.setBounceAction, ev.Action, ev.ID)
		return err
	})
	if err != nil {
		return ev, fmt.Errorf("record bounce event: %w", err)
	}
	return ev, nil
}

// makeRoom forgets what is past UnmatchedKeep, then returns raw, or nil
// (noting it in ev's reason) when keeping it would pass the budget of
// copies (RawBudget).
func (s *Store) makeRoom(ctx context.Context, tx *sql.Tx, ev *bounce.Event, raw []byte) ([]byte, error) {
	if _, err := tx.ExecContext(ctx, s.q.forgetUnmatched, ev.At.Add(-UnmatchedKeep)); err != nil {
		return nil, err
	}
	if _, err := tx.ExecContext(ctx, s.q.forgetRaw, ev.At.Add(-UnmatchedKeep)); err != nil {
		return nil, err
	}
	if raw == nil {
		return nil, nil
	}
	var kept int64
	if err := tx.QueryRowContext(ctx, s.q.bounceRawKept).Scan(&kept); err != nil {
		return nil, err
	}
	if kept+int64(len(raw)) <= s.rawBudget {
		return raw, nil
	}
	ev.Reason = strings.TrimPrefix(ev.Reason+"; ", "; ") + fmt.Sprintf("its copy was not kept: the copies kept hold %d MiB already", kept>>20)
	return nil, nil
}

// applyBounce is the policy for one new event.
func (s *Store) applyBounce(ctx context.Context, tx *sql.Tx, ev bounce.Event) (string, error) {
	id := ev.Reader.SubscriberID
	if id == 0 {
		return bounce.ActionNone, nil
	}
	changed := func(res sql.Result, err error, action string) (string, error) {
		if err != nil {
			return "", err
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			return bounce.ActionNone, err
		}
		return action, nil
	}
	switch ev.Kind {
	case bounce.Hard:
		res, err := s.bounceOne(ctx, tx, id, ev.At)
		return changed(res, err, bounce.ActionBounced)
	case bounce.Complaint:
		res, err := tx.ExecContext(ctx, s.q.complainSubscriber, ev.At, id)
		return changed(res, err, bounce.ActionComplained)
	case bounce.Delivered:
		return bounce.ActionReset, nil
	case bounce.Soft:
		var days int
		err := tx.QueryRowContext(ctx, s.q.softBounceDays, id, ev.At.Add(-SoftBounceWindow), id, time.Unix(0, 0).UTC()).Scan(&days)
		if err != nil {
			return "", err
		}
		if days < SoftBounceDays {
			return bounce.ActionScored, nil
		}
		res, err := s.bounceOne(ctx, tx, id, ev.At)
		if a, err := changed(res, err, bounce.ActionBounced); err != nil || a == bounce.ActionBounced {
			return a, err
		}
		return bounce.ActionScored, nil
	}
	return bounce.ActionNone, nil
}

// bounceOne marks one active reader bounced, with the statement the
// ledger uses (a batch over arrays on Postgres).
func (s *Store) bounceOne(ctx context.Context, tx *sql.Tx, id int64, at time.Time) (sql.Result, error) {
	if s.d == dialectPostgres {
		return tx.ExecContext(ctx, s.q.bounceSubscriber, []int64{id}, []time.Time{at})
	}
	return tx.ExecContext(ctx, s.q.bounceSubscriber, at, id)
}

// WasSent reports whether the issue was sent to the subscriber: a
// Message-ID names (issue, subscriber) but, unlike the other tokens, is
// not bound to the address, so it counts only for a message really sent.
func (s *Store) WasSent(ctx context.Context, issueID string, subscriberID int64) (bool, error) {
	var n int
	if err := s.db.QueryRowContext(ctx, s.q.wasSent, issueID, subscriberID).Scan(&n); err != nil {
		return false, fmt.Errorf("was issue %s sent to %d: %w", issueID, subscriberID, err)
	}
	return n > 0, nil
}

// RecentBounces returns the latest limit events, newest first.
func (s *Store) RecentBounces(ctx context.Context, limit int) ([]bounce.Event, error) {
	rows, err := s.db.QueryContext(ctx, s.q.recentBounceEvents, limit)
	if err != nil {
		return nil, fmt.Errorf("recent bounce events: %w", err)
	}
	defer rows.Close()
	var out []bounce.Event
	for rows.Next() {
		var ev bounce.Event
		var kind string
		if err := rows.Scan(&ev.ID, &ev.At, &ev.Source, &kind, &ev.Status, &ev.Diagnostic, &ev.Recipient,
			&ev.Format, &ev.Reason, &ev.Reader.SubscriberID, &ev.Reader.IssueID, &ev.Reader.Via, &ev.Action); err != nil {
			return nil, fmt.Errorf("recent bounce events: %w", err)
		}
		ev.Kind, ev.At = bounce.Kind(kind), ev.At.UTC()
		out = append(out, ev)
	}
	return out, rows.Err()
}

// BounceRaw returns the kept copy of an event's message (unmatched events
// only), or ledger.ErrNotFound.
func (s *Store) BounceRaw(ctx context.Context, id int64) ([]byte, error) {
	var raw []byte
	err := s.db.QueryRowContext(ctx, s.q.bounceEventRaw, id).Scan(&raw)
	if errors.Is(err, sql.ErrNoRows) || (err == nil && raw == nil) {
		return nil, fmt.Errorf("bounce event %d: %w", id, ledger.ErrNotFound)
	}
	return raw, err
}

// IssueOutcome counts the bounce events about an issue and the statuses of
// the readers it was sent to.
func (s *Store) IssueOutcome(ctx context.Context, issueID string) (ledger.IssueOutcome, error) {
	var o ledger.IssueOutcome
	if err := s.countPairs(ctx, s.q.issueBounces, issueID, func(k string, n int) {
		switch bounce.Kind(k) {
		case bounce.Hard:
			o.Hard = n
		case bounce.Soft:
			o.Soft = n
		case bounce.Complaint:
			o.Complaints = n
		}
	}); err != nil {
		return o, err
	}
	err := s.countPairs(ctx, s.q.issueGone, issueID, func(st string, n int) {
		switch st {
		case "unsubscribed":
			o.Unsubscribed = n
		case "bounced":
			o.Bounced = n
		case "complained":
			o.Complained = n
		}
	})
	return o, err
}

func (s *Store) countPairs(ctx context.Context, q, arg string, fn func(string, int)) error {
	rows, err := s.db.QueryContext(ctx, q, arg)
	if err != nil {
		return fmt.Errorf("issue %s outcome: %w", arg, err)
	}
	defer rows.Close()
	for rows.Next() {
		var k string
		var n int
		if err := rows.Scan(&k, &n); err != nil {
			return fmt.Errorf("issue %s outcome: %w", arg, err)
		}
		fn(k, n)
	}
	return rows.Err()
}

// BounceTotals counts all kept events by kind and source, for metrics.
func (s *Store) BounceTotals(ctx context.Context) (map[[2]string]int, error) {
	rows, err := s.db.QueryContext(ctx, s.q.bounceTotals)
	if err != nil {
		return nil, fmt.Errorf("bounce totals: %w", err)
	}
	defer rows.Close()
	out := map[[2]string]int{}
	for rows.Next() {
		var k, src string
		var n int
		if err := rows.Scan(&k, &src, &n); err != nil {
			return nil, fmt.Errorf("bounce totals: %w", err)
		}
		out[[2]string{k, src}] = n
	}
	return out, rows.Err()
}

// migrateWithoutForeignKeys applies a SQLite migration that rebuilds a
// table others reference (SQLite's documented procedure): with foreign
// keys on, dropping the old table would delete the rows that reference
// it. The pragma cannot change inside a transaction, so it is turned off
// on one pinned connection around the transaction, checked off inside it,
// and foreign_key_check must find nothing before the commit.
func (s *Store) migrateWithoutForeignKeys(ctx context.Context, version int, m string) (err error) {
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, s.q.foreignKeysOff); err != nil {
		return err
	}
	defer func() {
		if _, onErr := conn.ExecContext(context.WithoutCancel(ctx), s.q.foreignKeysOn); onErr != nil && err == nil {
			err = onErr
		}
	}()
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback() }()
	var fk, n int
	if err := tx.QueryRowContext(ctx, s.q.foreignKeysState).Scan(&fk); err != nil || fk != 0 {
		return fmt.Errorf("foreign keys still on (%d): %v", fk, err)
	}
	if err := tx.QueryRowContext(ctx, s.q.migrationApplied, version).Scan(&n); err != nil || n > 0 {
		return err
	}
	if _, err := tx.ExecContext(ctx, m); err != nil {
		return err
	}
	rows, err := tx.QueryContext(ctx, s.q.foreignKeyCheck)
	if err != nil {
		return err
	}
	bad := rows.Next()
	rows.Close()
	if bad {
		return errors.New("foreign key check failed after the rebuild")
	}
	if _, err := tx.ExecContext(ctx, s.q.insertMigration, version, s.stamp()); err != nil {
		return err
	}
	return tx.Commit()
}
