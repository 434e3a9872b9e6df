package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/digest/digest/internal/ledger"
	"github.com/digest/digest/internal/subscriber"
)

func scanSignup(r scanner) (subscriber.Signup, error) {
	var su subscriber.Signup
	var topics string
	err := r.Scan(&su.ID, &su.Email, &su.Name, &topics, &su.Created)
	su.Topics = subscriber.ParseStoredTopics(topics)
	su.Created = su.Created.UTC()
	return su, err
}

// PutSignup records a sign-up from the web form waiting for confirmation,
// or renews the pending one of the same address (case-insensitively) with
// the new spelling, name, topics and time; its id stays, so a link mailed
// for it keeps naming it. It does not look at subscribers: the caller
// decides whether an address needs confirming.
func (s *Store) PutSignup(ctx context.Context, email, name string, topics []string) (subscriber.Signup, error) {
	addr, err := storeRules.NormalizeEmail(email)
	if err != nil {
		return subscriber.Signup{}, fmt.Errorf("sign-up: %w", err)
	}
	topics, err = subscriber.NormalizeTopics(topics)
	if err != nil {
		return subscriber.Signup{}, fmt.Errorf("sign-up %s: %w", addr, err)
	}
	key := subscriber.EmailKey(addr)
	var su subscriber.Signup
	err = s.tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, s.q.upsertSignup, addr, key, name, subscriber.JoinTopics(topics), s.stamp()); err != nil {
			return err
		}
		var err error
		su, err = scanSignup(tx.QueryRowContext(ctx, s.q.signupByKey, key))
		return err
	})
	if err != nil {
		return subscriber.Signup{}, fmt.Errorf("sign-up %s: %w", addr, err)
	}
	return su, nil
}

// Signup returns the pending sign-up with this id, or ledger.ErrNotFound (also
// once it was confirmed or purged).
func (s *Store) Signup(ctx context.Context, id int64) (subscriber.Signup, error) {
	su, err := scanSignup(s.db.QueryRowContext(ctx, s.q.signupByID, id))
	if errors.Is(err, sql.ErrNoRows) {
		return subscriber.Signup{}, fmt.Errorf("sign-up %d: %w", id, ledger.ErrNotFound)
	}
	if err != nil {
		return subscriber.Signup{}, fmt.Errorf("sign-up %d: %w", id, err)
	}
	return su, nil
}

// ConfirmSignup turns a pending sign-up into an active subscriber, in one
// transaction: a new address is added; a known one (unsubscribed, bounced
// or even active) becomes active with the sign-up's topics, and its name
// when the sign-up gave one. The sign-up is deleted. It returns the
// subscriber, or ledger.ErrNotFound when no such sign-up is pending.
func (s *Store) ConfirmSignup(ctx context.Context, id int64) (subscriber.Subscriber, error) {
	now := s.stamp()
	var sub subscriber.Subscriber
	err := s.tx(ctx, func(tx *sql.Tx) error {
		su, err := scanSignup(tx.QueryRowContext(ctx, s.q.signupByID, id))
		if errors.Is(err, sql.ErrNoRows) {
			return ledger.ErrNotFound
		}
		if err != nil {
			return err
		}
		key := subscriber.EmailKey(su.Email)
		// Against a concurrent Put or confirmation of the same address
		// (Postgres), which would otherwise add it twice.
		if err := s.serialize(ctx, tx, "subscriber "+key); err != nil {
			return err
		}
		before, err := scanSubscriber(tx.QueryRowContext(ctx, s.q.subscriberByKey, key))
		switch {
		case errors.Is(err, sql.ErrNoRows):
			_, err = tx.ExecContext(ctx, s.q.insertSubscriber, su.Email, key, su.Name, subscriber.StatusActive,
				subscriber.JoinTopics(su.Topics), now, now, nil)
		case err == nil:
			name := before.Name
			if su.Name != "" {
				name = su.Name
			}
			_, err = tx.ExecContext(ctx, s.q.putSubscriber, su.Email, name, subscriber.JoinTopics(su.Topics), now, before.ID)
		}
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, s.q.deleteSignup, su.ID); err != nil {
			return err
		}
		sub, err = scanSubscriber(tx.QueryRowContext(ctx, s.q.subscriberByKey, key))
		return err
	})
	if err != nil {
		return subscriber.Subscriber{}, fmt.Errorf("confirm sign-up %d: %w", id, err)
	}
	return sub, nil
}

// PurgeSignups deletes the sign-ups last requested before cutoff (never
// confirmed) and returns how many. `digest serve` calls it at start and
// hourly, and `send` before each delivery, with a cutoff a week back.
func (s *Store) PurgeSignups(ctx context.Context, cutoff time.Time) (int, error) {
	res, err := s.db.ExecContext(ctx, s.q.purgeSignups, cutoff.UTC())
	if err != nil {
		return 0, fmt.Errorf("purge sign-ups: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("purge sign-ups: %w", err)
	}
	return int(n), nil
}
