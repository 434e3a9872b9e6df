package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/digest/digest/internal/subscriber"
)

// SyncResult counts what [Store.Sync] did.
type SyncResult struct {
	Added, Updated, Unchanged int
}

// listPage is how many subscribers List reads per query. Between pages the
// connection is free, so the callback may itself use the store.
const listPage = 500

type scanner interface{ Scan(dest ...any) error }

func scanSubscriber(r scanner) (subscriber.Subscriber, error) {
	var sub subscriber.Subscriber
	err := r.Scan(&sub.ID, &sub.Email, &sub.Name, &sub.Status, &sub.Created)
	sub.Created = sub.Created.UTC()
	return sub, err
}

// Add is the operator's explicit "add this address": it creates an active
// subscriber, or for a known address (case-insensitively) sets the name and
// re-activates it, whatever its status was. An empty name keeps the stored
// one, and so does the stored spelling of an existing address.
func (s *Store) Add(ctx context.Context, email, name string) (created bool, err error) {
	addr, err := subscriber.NormalizeEmail(email)
	if err != nil {
		return false, fmt.Errorf("add subscriber: %w", err)
	}
	now := s.stamp()
	err = s.tx(ctx, func(tx *sql.Tx) error {
		var id int64
		err := tx.QueryRowContext(ctx, sqlSubscriberIDByKey, subscriber.EmailKey(addr)).Scan(&id)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			created = true
			_, err = tx.ExecContext(ctx, sqlInsertSubscriber, addr, subscriber.EmailKey(addr), name, now, now)
			return err
		case err != nil:
			return err
		}
		_, err = tx.ExecContext(ctx, sqlReactivateSubscriber, name, name, now, id)
		return err
	})
	if err != nil {
		return false, fmt.Errorf("add subscriber %s: %w", addr, err)
	}
	return created, nil
}

// Sync merges a subscriber list (typically from [subscriber.ReadCSV]) into
// the store in one transaction: new addresses are added as active, known ones
// get the row's name, and no status ever changes, so an address that
// unsubscribed or bounced stays so however often it appears in a list. An
// empty name leaves the stored name as it is (a list without a name column
// must not erase names). Nobody is removed.
func (s *Store) Sync(ctx context.Context, rows []subscriber.Row) (SyncResult, error) {
	var res SyncResult
	now := s.stamp()
	err := s.tx(ctx, func(tx *sql.Tx) error {
		res = SyncResult{}
		find, err := tx.PrepareContext(ctx, sqlSubscriberByKey)
		if err != nil {
			return err
		}
		defer find.Close()
		for _, row := range rows {
			addr, err := subscriber.NormalizeEmail(row.Email)
			if err != nil {
				return fmt.Errorf("line %d: %w", row.Line, err)
			}
			sub, err := scanSubscriber(find.QueryRowContext(ctx, subscriber.EmailKey(addr)))
			switch {
			case errors.Is(err, sql.ErrNoRows):
				if _, err := tx.ExecContext(ctx, sqlInsertSubscriber, addr, subscriber.EmailKey(addr), row.Name, now, now); err != nil {
					return fmt.Errorf("line %d: add %s: %w", row.Line, addr, err)
				}
				res.Added++
			case err != nil:
				return fmt.Errorf("line %d: %s: %w", row.Line, addr, err)
			case row.Name != "" && row.Name != sub.Name:
				if _, err := tx.ExecContext(ctx, sqlRenameSubscriber, row.Name, now, sub.ID); err != nil {
					return fmt.Errorf("line %d: update %s: %w", row.Line, addr, err)
				}
				res.Updated++
			default:
				res.Unchanged++
			}
		}
		return nil
	})
	if err != nil {
		return SyncResult{}, fmt.Errorf("sync subscribers: %w", err)
	}
	return res, nil
}

// Remove unsubscribes the address (the record and its history stay). It
// returns ErrNotFound for an unknown address.
func (s *Store) Remove(ctx context.Context, email string) error {
	now := s.stamp()
	res, err := s.db.ExecContext(ctx, sqlUnsubscribeByKey, now, now, subscriber.EmailKey(email))
	if err != nil {
		return fmt.Errorf("remove subscriber %s: %w", email, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("remove subscriber %s: %w", email, err)
	} else if n == 0 {
		return fmt.Errorf("remove subscriber %s: %w", email, ErrNotFound)
	}
	return nil
}

// Delete erases the subscriber and its delivery ledger rows (for erasure
// requests). It returns ErrNotFound for an unknown address.
func (s *Store) Delete(ctx context.Context, email string) error {
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var id int64
		err := tx.QueryRowContext(ctx, sqlSubscriberIDByKey, subscriber.EmailKey(email)).Scan(&id)
		if errors.Is(err, sql.ErrNoRows) {
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

// List calls fn for every subscriber, whatever its status, in id order,
// reading a page at a time so that the whole list is never in memory. It
// stops at, and returns, the first error from fn. fn may call the store.
func (s *Store) List(ctx context.Context, fn func(subscriber.Subscriber) error) error {
	var after int64
	for {
		page, err := s.listPage(ctx, after)
		if err != nil {
			return fmt.Errorf("list subscribers: %w", err)
		}
		for _, sub := range page {
			if err := fn(sub); err != nil {
				return err
			}
		}
		if len(page) < listPage {
			return nil
		}
		after = page[len(page)-1].ID
	}
}

func (s *Store) listPage(ctx context.Context, after int64) ([]subscriber.Subscriber, error) {
	rows, err := s.db.QueryContext(ctx, sqlSubscriberPage, after, listPage)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	page := make([]subscriber.Subscriber, 0, listPage)
	for rows.Next() {
		sub, err := scanSubscriber(rows)
		if err != nil {
			return nil, err
		}
		page = append(page, sub)
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
		if n, err := res.RowsAffected(); err != nil || n > 0 {
			return err
		}
		var n int
		if err := tx.QueryRowContext(ctx, sqlSubscriberExists, subscriberID).Scan(&n); err != nil {
			return err
		}
		if n == 0 {
			return ErrNotFound
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("unsubscribe subscriber %d: %w", subscriberID, err)
	}
	return nil
}
