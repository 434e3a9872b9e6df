package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"iter"
	"slices"
	"time"

	"github.com/digest/digest/internal/subscriber"
)

// SyncResult counts what [Store.Sync] and [Store.Import] did.
type SyncResult struct {
	Added, Updated, Unchanged int
}

// listPage is how many subscribers List reads per query. Between pages the
// connection is free, so the callback may itself use the store.
const listPage = 500

type scanner interface{ Scan(dest ...any) error }

func scanSubscriber(r scanner) (subscriber.Subscriber, error) {
	var sub subscriber.Subscriber
	var topics string
	err := r.Scan(&sub.ID, &sub.Email, &sub.Name, &sub.Status, &topics, &sub.Created, &sub.Updated)
	sub.Topics = subscriber.ParseStoredTopics(topics)
	sub.Created, sub.Updated = sub.Created.UTC(), sub.Updated.UTC()
	return sub, err
}

// storeRules checks the syntax of addresses that reach the store. Whether a
// dotless domain is acceptable is a policy the callers apply (config
// newsletter.allow_dotless_domains), so the store accepts one.
var storeRules = subscriber.Rules{AllowDotlessDomain: true}

// AddResult says what [Store.Put] did.
type AddResult struct {
	Created bool
	// Before is the record before the change; zero when Created.
	Before subscriber.Subscriber
	// After is the record as stored now.
	After subscriber.Subscriber
}

// Add is the short form of [Store.Put] for an address and a name.
func (s *Store) Add(ctx context.Context, email, name string) (created bool, err error) {
	res, err := s.Put(ctx, subscriber.Row{Email: email, Name: name})
	return res.Created, err
}

// Put is the operator's explicit "add this address": it creates an active
// subscriber (row.Status and row.Created are ignored), or for a known
// address (case-insensitively) stores the address as written now (so that
// "add quinn@…" over "QUINN@…" changes the spelling), sets the name and
// topics and re-activates it, whatever its status was. An empty name and nil
// topics keep the stored ones. A pending sign-up of the address is dropped:
// the operator's word replaces the confirmation.
func (s *Store) Put(ctx context.Context, row subscriber.Row) (AddResult, error) {
	addr, err := storeRules.NormalizeEmail(row.Email)
	if err != nil {
		return AddResult{}, fmt.Errorf("add subscriber: %w", err)
	}
	topics, err := subscriber.NormalizeTopics(row.Topics)
	if err != nil {
		return AddResult{}, fmt.Errorf("add subscriber %s: %w", addr, err)
	}
	key := subscriber.EmailKey(addr)
	now := s.stamp()
	var res AddResult
	err = s.tx(ctx, func(tx *sql.Tx) error {
		res = AddResult{}
		before, err := scanSubscriber(tx.QueryRowContext(ctx, sqlSubscriberByKey, key))
		switch {
		case errors.Is(err, sql.ErrNoRows):
			res.Created = true
			_, err = tx.ExecContext(ctx, sqlInsertSubscriber, addr, key, row.Name, subscriber.StatusActive,
				subscriber.JoinTopics(topics), now, now, nil)
		case err == nil:
			res.Before = before
			name := before.Name
			if row.Name != "" {
				name = row.Name
			}
			if row.Topics == nil {
				topics = before.Topics
			}
			_, err = tx.ExecContext(ctx, sqlPutSubscriber, addr, name, subscriber.JoinTopics(topics), now, before.ID)
		}
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, sqlDeleteSignupByKey, key); err != nil {
			return err
		}
		res.After, err = scanSubscriber(tx.QueryRowContext(ctx, sqlSubscriberByKey, key))
		return err
	})
	if err != nil {
		return AddResult{}, fmt.Errorf("add subscriber %s: %w", addr, err)
	}
	return res, nil
}

// Sync is [Store.Import] of a slice.
func (s *Store) Sync(ctx context.Context, rows []subscriber.Row) (SyncResult, error) {
	return s.Import(ctx, slices.Values(rows))
}

// Import merges a subscriber list (typically [subscriber.CSV.Rows]) into
// the store in one transaction, reading it row by row. New addresses are
// added with the row's status (active when empty) and created time; known
// ones get the row's name and topics, and no status ever changes, so an
// address that unsubscribed or bounced stays so however often it appears in
// a list. An empty name and nil topics leave the stored ones as they are (a
// list without those columns must not erase them); the stored spelling of a
// known address is kept. Nobody is removed. Pending sign-ups of imported
// addresses are dropped: an import is trusted.
//
// A row the store cannot take fails the whole import, naming its line, and
// changes nothing.
func (s *Store) Import(ctx context.Context, rows iter.Seq[subscriber.Row]) (SyncResult, error) {
	var res SyncResult
	now := s.stamp()
	err := s.tx(ctx, func(tx *sql.Tx) error {
		res = SyncResult{}
		find, err := tx.PrepareContext(ctx, sqlSubscriberByKey)
		if err != nil {
			return err
		}
		defer find.Close()
		insert, err := tx.PrepareContext(ctx, sqlInsertSubscriber)
		if err != nil {
			return err
		}
		defer insert.Close()
		update, err := tx.PrepareContext(ctx, sqlUpdateSubscriber)
		if err != nil {
			return err
		}
		defer update.Close()
		for row := range rows {
			if err := s.importRow(ctx, find, insert, update, row, now, &res); err != nil {
				return fmt.Errorf("line %d: %w", row.Line, err)
			}
		}
		_, err = tx.ExecContext(ctx, sqlDeleteSupersededSignups)
		return err
	})
	if err != nil {
		return SyncResult{}, fmt.Errorf("import subscribers: %w", err)
	}
	return res, nil
}

func (s *Store) importRow(ctx context.Context, find, insert, update *sql.Stmt, row subscriber.Row, now time.Time, res *SyncResult) error {
	addr, err := storeRules.NormalizeEmail(row.Email)
	if err != nil {
		return err
	}
	topics, err := subscriber.NormalizeTopics(row.Topics)
	if err != nil {
		return fmt.Errorf("%s: %w", addr, err)
	}
	key := subscriber.EmailKey(addr)
	sub, err := scanSubscriber(find.QueryRowContext(ctx, key))
	switch {
	case errors.Is(err, sql.ErrNoRows):
		status := row.Status
		var unsubscribedAt sql.NullTime
		switch status {
		case "":
			status = subscriber.StatusActive
		case subscriber.StatusActive, subscriber.StatusBounced:
		case subscriber.StatusUnsubscribed:
			unsubscribedAt = nullTime(now)
		default:
			return fmt.Errorf("%s: status %q cannot be imported", addr, status)
		}
		created := now
		if !row.Created.IsZero() {
			created = row.Created.UTC()
		}
		if _, err := insert.ExecContext(ctx, addr, key, row.Name, status, subscriber.JoinTopics(topics), created, now, unsubscribedAt); err != nil {
			return fmt.Errorf("add %s: %w", addr, err)
		}
		res.Added++
		return nil
	case err != nil:
		return fmt.Errorf("%s: %w", addr, err)
	}
	name, newTopics := sub.Name, sub.Topics
	if row.Name != "" {
		name = row.Name
	}
	if row.Topics != nil {
		newTopics = topics
	}
	if name == sub.Name && slices.Equal(newTopics, sub.Topics) {
		res.Unchanged++
		return nil
	}
	if _, err := update.ExecContext(ctx, name, subscriber.JoinTopics(newTopics), now, sub.ID); err != nil {
		return fmt.Errorf("update %s: %w", addr, err)
	}
	res.Updated++
	return nil
}

// Remove unsubscribes the address (the record and its history stay); an
// address that is unsubscribed already keeps its first unsubscription time.
// For an address that is only a pending sign-up, it deletes the sign-up.
// It returns ErrNotFound for an unknown address.
func (s *Store) Remove(ctx context.Context, email string) error {
	key := subscriber.EmailKey(email)
	now := s.stamp()
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var id int64
		err := tx.QueryRowContext(ctx, sqlSubscriberIDByKey, key).Scan(&id)
		if errors.Is(err, sql.ErrNoRows) {
			res, err := tx.ExecContext(ctx, sqlDeleteSignupByKey, key)
			if err != nil {
				return err
			}
			if n, err := res.RowsAffected(); err != nil || n > 0 {
				return err
			}
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, sqlUnsubscribeByID, now, now, id)
		return err
	})
	if err != nil {
		return fmt.Errorf("remove subscriber %s: %w", email, err)
	}
	return nil
}

// SignupByEmail returns the pending sign-up of the address
// (case-insensitively), or ErrNotFound.
func (s *Store) SignupByEmail(ctx context.Context, email string) (subscriber.Signup, error) {
	su, err := scanSignup(s.db.QueryRowContext(ctx, sqlSignupByKey, subscriber.EmailKey(email)))
	if errors.Is(err, sql.ErrNoRows) {
		return subscriber.Signup{}, fmt.Errorf("sign-up %s: %w", email, ErrNotFound)
	}
	if err != nil {
		return subscriber.Signup{}, fmt.Errorf("sign-up %s: %w", email, err)
	}
	return su, nil
}

// Delete erases the subscriber, its delivery ledger rows and any pending
// sign-up of the address (for erasure requests). It returns ErrNotFound
// when the address is neither.
func (s *Store) Delete(ctx context.Context, email string) error {
	key := subscriber.EmailKey(email)
	err := s.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, sqlDeleteSignupByKey, key)
		if err != nil {
			return err
		}
		signups, err := res.RowsAffected()
		if err != nil {
			return err
		}
		var id int64
		err = tx.QueryRowContext(ctx, sqlSubscriberIDByKey, key).Scan(&id)
		if errors.Is(err, sql.ErrNoRows) {
			if signups > 0 {
				return nil
			}
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, sqlDeleteSubscriberLedger, id); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, sqlDeleteSubscriber, id)
		return err
	})
	if err != nil {
		return fmt.Errorf("delete subscriber %s: %w", email, err)
	}
	return nil
}

// Get returns the subscriber with this address (case-insensitively), or
// ErrNotFound.
func (s *Store) Get(ctx context.Context, email string) (subscriber.Subscriber, error) {
	sub, err := scanSubscriber(s.db.QueryRowContext(ctx, sqlSubscriberByKey, subscriber.EmailKey(email)))
	if errors.Is(err, sql.ErrNoRows) {
		return subscriber.Subscriber{}, fmt.Errorf("get subscriber %s: %w", email, ErrNotFound)
	}
	if err != nil {
		return subscriber.Subscriber{}, fmt.Errorf("get subscriber %s: %w", email, err)
	}
	return sub, nil
}

// Subscriber returns the subscriber with this id, or ErrNotFound.
func (s *Store) Subscriber(ctx context.Context, id int64) (subscriber.Subscriber, error) {
	sub, err := scanSubscriber(s.db.QueryRowContext(ctx, sqlSubscriberByID, id))
	if errors.Is(err, sql.ErrNoRows) {
		return subscriber.Subscriber{}, fmt.Errorf("get subscriber %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return subscriber.Subscriber{}, fmt.Errorf("get subscriber %d: %w", id, err)
	}
	return sub, nil
}

// List calls fn for every subscriber, whatever its status, in id order,
// reading a page at a time so that the whole list is never in memory. It
// stops at, and returns, the first error from fn. fn may call the store.
// Pending sign-ups are not subscribers: see [Store.ListSignups].
func (s *Store) List(ctx context.Context, fn func(subscriber.Subscriber) error) error {
	return paged(ctx, s, sqlSubscriberPage, scanSubscriber, func(sub subscriber.Subscriber) int64 { return sub.ID }, fn)
}

// ListSignups calls fn for every pending sign-up in id order, a page at a
// time, as List does.
func (s *Store) ListSignups(ctx context.Context, fn func(subscriber.Signup) error) error {
	return paged(ctx, s, sqlSignupPage, scanSignup, func(su subscriber.Signup) int64 { return su.ID }, fn)
}

func paged[T any](ctx context.Context, s *Store, query string, scan func(scanner) (T, error), id func(T) int64, fn func(T) error) error {
	var after int64
	for {
		page, err := readPage(ctx, s, query, after, scan)
		if err != nil {
			return fmt.Errorf("list: %w", err)
		}
		for _, v := range page {
			if err := fn(v); err != nil {
				return err
			}
		}
		if len(page) < listPage {
			return nil
		}
		after = id(page[len(page)-1])
	}
}

func readPage[T any](ctx context.Context, s *Store, query string, after int64, scan func(scanner) (T, error)) ([]T, error) {
	rows, err := s.db.QueryContext(ctx, query, after, listPage)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	page := make([]T, 0, listPage)
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		page = append(page, v)
	}
	return page, rows.Err()
}

// CountActive returns the number of active subscribers.
func (s *Store) CountActive(ctx context.Context) (int, error) {
	var n int
	if err := s.db.QueryRowContext(ctx, sqlCountActive).Scan(&n); err != nil {
		return 0, fmt.Errorf("count active subscribers: %w", err)
	}
	return n, nil
}

// SetStatus sets a subscriber's status (one of subscriber.StatusActive,
// StatusUnsubscribed, StatusBounced). It returns ErrNotFound for an unknown
// id.
func (s *Store) SetStatus(ctx context.Context, id int64, status string) error {
	switch status {
	case subscriber.StatusActive, subscriber.StatusUnsubscribed, subscriber.StatusBounced:
	default:
		return fmt.Errorf("set status of subscriber %d: unknown status %q", id, status)
	}
	now := s.stamp()
	res, err := s.db.ExecContext(ctx, sqlSetStatus, status, status, now, status, now, id)
	if err != nil {
		return fmt.Errorf("set status of subscriber %d: %w", id, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("set status of subscriber %d: %w", id, err)
	} else if n == 0 {
		return fmt.Errorf("set status of subscriber %d: %w", id, ErrNotFound)
	}
	return nil
}

// Unsubscribe marks the subscriber unsubscribed, as asked by the subscriber
// (the one-click link). It is idempotent: the first unsubscription time is
// kept. It returns ErrNotFound for an unknown id (for instance one deleted
// since the link was sent).
func (s *Store) Unsubscribe(ctx context.Context, subscriberID int64) error {
	now := s.stamp()
	err := s.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, sqlUnsubscribeByID, now, now, subscriberID)
		if err != nil {
			return err
		}
		return existsUnlessChanged(ctx, tx, res, subscriberID)
	})
	if err != nil {
		return fmt.Errorf("unsubscribe subscriber %d: %w", subscriberID, err)
	}
	return nil
}

// Resubscribe makes an unsubscribed subscriber active again, as asked by
// the subscriber through the signed link of their preferences page. A
// bounced or active subscriber is left as it is. It returns ErrNotFound for
// an unknown id.
func (s *Store) Resubscribe(ctx context.Context, subscriberID int64) error {
	now := s.stamp()
	err := s.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, sqlResubscribe, now, subscriberID)
		if err != nil {
			return err
		}
		return existsUnlessChanged(ctx, tx, res, subscriberID)
	})
	if err != nil {
		return fmt.Errorf("resubscribe subscriber %d: %w", subscriberID, err)
	}
	return nil
}

// existsUnlessChanged returns ErrNotFound when res changed no row and the
// subscriber does not exist.
func existsUnlessChanged(ctx context.Context, tx *sql.Tx, res sql.Result, id int64) error {
	if n, err := res.RowsAffected(); err != nil || n > 0 {
		return err
	}
	var n int
	if err := tx.QueryRowContext(ctx, sqlSubscriberExists, id).Scan(&n); err != nil {
		return err
	}
	if n == 0 {
		return ErrNotFound
	}
	return nil
}

// SetPreferences stores a subscriber's name and topics (nil or empty:
// every topic), as chosen on the preferences page. It returns ErrNotFound
// for an unknown id.
func (s *Store) SetPreferences(ctx context.Context, subscriberID int64, name string, topics []string) error {
	topics, err := subscriber.NormalizeTopics(topics)
	if err != nil {
		return fmt.Errorf("preferences of subscriber %d: %w", subscriberID, err)
	}
	res, err := s.db.ExecContext(ctx, sqlUpdateSubscriber, name, subscriber.JoinTopics(topics), s.stamp(), subscriberID)
	if err != nil {
		return fmt.Errorf("preferences of subscriber %d: %w", subscriberID, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("preferences of subscriber %d: %w", subscriberID, err)
	} else if n == 0 {
		return fmt.Errorf("preferences of subscriber %d: %w", subscriberID, ErrNotFound)
	}
	return nil
}
