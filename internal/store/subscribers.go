package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

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
		if err := s.serialize(ctx, tx, "subscriber "+subscriber.EmailKey(addr)); err != nil {
			return err
		}
		var id int64
		err := tx.QueryRowContext(ctx, s.q.subscriberIDByKey, subscriber.EmailKey(addr)).Scan(&id)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			created = true
			_, err = tx.ExecContext(ctx, s.q.insertSubscriber, addr, subscriber.EmailKey(addr), name, now, now)
			return err
		case err != nil:
			return err
		}
		_, err = tx.ExecContext(ctx, s.q.reactivateSubscriber, name, name, now, id)
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
// must not erase names). Nobody is removed. A row that repeats an address
// counts as an update of the first (or as unchanged).
//
// It works through the list in chunks: one lookup of the chunk's addresses,
// then the additions and the renames; on Postgres each of those is one
// statement over arrays, so a million rows take a few hundred round trips.
func (s *Store) Sync(ctx context.Context, rows []subscriber.Row) (SyncResult, error) {
	var res SyncResult
	now := s.stamp()
	err := s.tx(ctx, func(tx *sql.Tx) error {
		res = SyncResult{}
		w, err := s.newSyncWriter(ctx, tx, now)
		if err != nil {
			return err
		}
		defer w.close()
		for len(rows) > 0 {
			n := min(len(rows), syncChunk)
			if err := syncChunkOf(ctx, w, rows[:n], &res); err != nil {
				return err
			}
			rows = rows[n:]
		}
		return nil
	})
	if err != nil {
		return SyncResult{}, fmt.Errorf("sync subscribers: %w", err)
	}
	return res, nil
}

// syncChunk is how many rows Sync handles per lookup.
const syncChunk = 5000

// knownSub is what Sync needs of a stored subscriber.
type knownSub struct {
	id   int64
	name string
}

// newSub is a subscriber Sync adds.
type newSub struct {
	line             int
	email, key, name string
}

// syncWriter does Sync's reads and writes inside its transaction.
type syncWriter interface {
	// lookup returns the stored subscribers among keys, by key.
	lookup(ctx context.Context, keys []string) (map[string]knownSub, error)
	// insert adds subs as active and returns how many it added (fewer
	// when another process added one of them meanwhile).
	insert(ctx context.Context, subs []newSub) (int, error)
	// rename sets the names of the subscribers with these ids.
	rename(ctx context.Context, ids []int64, names []string) error
	close()
}

// syncChunkOf merges one chunk of rows. It decides everything from one
// lookup, so a repeated address within the chunk is resolved here, in row
// order, as if the rows were applied one by one.
func syncChunkOf(ctx context.Context, w syncWriter, rows []subscriber.Row, res *SyncResult) error {
	addrs := make([]string, len(rows))
	keys := make([]string, len(rows))
	for i, row := range rows {
		addr, err := subscriber.NormalizeEmail(row.Email)
		if err != nil {
			return fmt.Errorf("line %d: %w", row.Line, err)
		}
		addrs[i], keys[i] = addr, subscriber.EmailKey(addr)
	}
	known, err := w.lookup(ctx, keys)
	if err != nil {
		return fmt.Errorf("lines %d-%d: %w", rows[0].Line, rows[len(rows)-1].Line, err)
	}
	var (
		adds    []newSub
		added   = map[string]int{} // key → index in adds
		renamed = map[int64]int{}  // id → index in ids and names
		ids     []int64
		names   []string
		updated int
	)
	for i, row := range rows {
		k := keys[i]
		if j, ok := added[k]; ok {
			if row.Name != "" && row.Name != adds[j].name {
				adds[j].name = row.Name
				updated++
			} else {
				res.Unchanged++
			}
			continue
		}
		sub, ok := known[k]
		switch {
		case !ok:
			added[k] = len(adds)
			adds = append(adds, newSub{line: row.Line, email: addrs[i], key: k, name: row.Name})
		case row.Name != "" && row.Name != sub.name:
			sub.name = row.Name
			known[k] = sub
			if j, ok := renamed[sub.id]; ok {
				names[j] = row.Name
			} else {
				renamed[sub.id] = len(ids)
				ids, names = append(ids, sub.id), append(names, row.Name)
			}
			updated++
		default:
			res.Unchanged++
		}
	}
	n, err := w.insert(ctx, adds)
	if err != nil {
		return err
	}
	res.Added += n
	res.Unchanged += len(adds) - n
	res.Updated += updated
	if len(ids) > 0 {
		if err := w.rename(ctx, ids, names); err != nil {
			return fmt.Errorf("lines %d-%d: rename: %w", rows[0].Line, rows[len(rows)-1].Line, err)
		}
	}
	return nil
}

func (s *Store) newSyncWriter(ctx context.Context, tx *sql.Tx, now time.Time) (syncWriter, error) {
	if s.d == dialectPostgres {
		return &pgSync{tx: tx, q: s.q, now: now}, nil
	}
	w := &sqliteSync{tx: tx, now: now}
	for _, p := range []struct {
		st **sql.Stmt
		q  string
	}{{&w.find, s.q.subscriberByKey}, {&w.ins, s.q.insertSubscriber}, {&w.ren, s.q.renameSubscriber}} {
		st, err := tx.PrepareContext(ctx, p.q)
		if err != nil {
			w.close()
			return nil, err
		}
		*p.st = st
	}
	return w, nil
}

// sqliteSync runs one prepared statement per row: in-process, that costs
// microseconds, and the transaction's single fsync is the real cost.
type sqliteSync struct {
	tx             *sql.Tx
	now            time.Time
	find, ins, ren *sql.Stmt
}

func (w *sqliteSync) lookup(ctx context.Context, keys []string) (map[string]knownSub, error) {
	out := make(map[string]knownSub)
	for _, k := range keys {
		if _, ok := out[k]; ok {
			continue
		}
		sub, err := scanSubscriber(w.find.QueryRowContext(ctx, k))
		switch {
		case errors.Is(err, sql.ErrNoRows):
		case err != nil:
			return nil, fmt.Errorf("%s: %w", k, err)
		default:
			out[k] = knownSub{id: sub.ID, name: sub.Name}
		}
	}
	return out, nil
}

func (w *sqliteSync) insert(ctx context.Context, subs []newSub) (int, error) {
	for _, a := range subs {
		if _, err := w.ins.ExecContext(ctx, a.email, a.key, a.name, w.now, w.now); err != nil {
			return 0, fmt.Errorf("line %d: add %s: %w", a.line, a.email, err)
		}
	}
	return len(subs), nil
}

func (w *sqliteSync) rename(ctx context.Context, ids []int64, names []string) error {
	for i, id := range ids {
		if _, err := w.ren.ExecContext(ctx, names[i], w.now, id); err != nil {
			return fmt.Errorf("subscriber %d: %w", id, err)
		}
	}
	return nil
}

func (w *sqliteSync) close() {
	for _, st := range []*sql.Stmt{w.find, w.ins, w.ren} {
		if st != nil {
			st.Close()
		}
	}
}

// pgSync runs one statement per chunk, with the chunk's values as arrays.
type pgSync struct {
	tx  *sql.Tx
	q   *queries
	now time.Time
}

func (w *pgSync) lookup(ctx context.Context, keys []string) (map[string]knownSub, error) {
	rows, err := w.tx.QueryContext(ctx, w.q.syncLookup, keys)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := make(map[string]knownSub)
	for rows.Next() {
		var (
			k   string
			sub knownSub
		)
		if err := rows.Scan(&sub.id, &k, &sub.name); err != nil {
			return nil, err
		}
		out[k] = sub
	}
	return out, rows.Err()
}

func (w *pgSync) insert(ctx context.Context, subs []newSub) (int, error) {
	if len(subs) == 0 {
		return 0, nil
	}
	emails, keys, names := make([]string, len(subs)), make([]string, len(subs)), make([]string, len(subs))
	for i, a := range subs {
		emails[i], keys[i], names[i] = a.email, a.key, a.name
	}
	res, err := w.tx.ExecContext(ctx, w.q.syncInsert, w.now, w.now, emails, keys, names)
	if err != nil {
		return 0, fmt.Errorf("lines %d-%d: add: %w", subs[0].line, subs[len(subs)-1].line, err)
	}
	n, err := res.RowsAffected()
	return int(n), err
}

func (w *pgSync) rename(ctx context.Context, ids []int64, names []string) error {
	_, err := w.tx.ExecContext(ctx, w.q.syncRename, w.now, ids, names)
	return err
}

func (w *pgSync) close() {}

// Remove unsubscribes the address (the record and its history stay). It
// returns ErrNotFound for an unknown address.
func (s *Store) Remove(ctx context.Context, email string) error {
	now := s.stamp()
	res, err := s.db.ExecContext(ctx, s.q.unsubscribeByKey, now, now, subscriber.EmailKey(email))
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
		err := tx.QueryRowContext(ctx, s.q.subscriberIDByKey, subscriber.EmailKey(email)).Scan(&id)
		if errors.Is(err, sql.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, s.q.deleteSubscriberLedger, id); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, s.q.deleteSubscriber, id)
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
	sub, err := scanSubscriber(s.db.QueryRowContext(ctx, s.q.subscriberByKey, subscriber.EmailKey(email)))
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
	rows, err := s.db.QueryContext(ctx, s.q.subscriberPage, after, listPage)
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
	if err := s.db.QueryRowContext(ctx, s.q.countActive).Scan(&n); err != nil {
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
	res, err := s.db.ExecContext(ctx, s.q.setStatus, status, status, now, status, now, id)
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
		res, err := tx.ExecContext(ctx, s.q.unsubscribeByID, now, now, subscriberID)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n > 0 {
			return err
		}
		var n int
		if err := tx.QueryRowContext(ctx, s.q.subscriberExists, subscriberID).Scan(&n); err != nil {
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
