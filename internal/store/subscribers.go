package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"iter"
	"slices"
	"time"

	"github.com/digest/digest/internal/ledger"
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
		if err := s.serialize(ctx, tx, "subscriber "+key); err != nil {
			return err
		}
		before, err := scanSubscriber(tx.QueryRowContext(ctx, s.q.subscriberByKey, key))
		switch {
		case errors.Is(err, sql.ErrNoRows):
			res.Created = true
			_, err = tx.ExecContext(ctx, s.q.insertSubscriber, addr, key, row.Name, subscriber.StatusActive,
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
			_, err = tx.ExecContext(ctx, s.q.putSubscriber, addr, name, subscriber.JoinTopics(topics), now, before.ID)
		}
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, s.q.deleteSignupByKey, key); err != nil {
			return err
		}
		res.After, err = scanSubscriber(tx.QueryRowContext(ctx, s.q.subscriberByKey, key))
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
// added with the row's status (active when empty) and created time; no
// status of a known address ever changes, so an address that unsubscribed
// or bounced stays so however often it appears in a list. Nobody is
// removed. Pending sign-ups of imported addresses are dropped: an import is
// trusted. A row that repeats an address applies to it as if the rows were
// stored one by one; the stored spelling of a known address is kept.
//
// The file owns a field only while it keeps changing it. The store keeps,
// per reader, what the file said of the name and of the topics at the last
// sync, and a row sets a known reader's name (or topics) only when it says
// something else than that: a name or topics the reader chose on the
// preferences page, or the operator set with `subscribers add`, stand until
// the file itself changes that field of that row. An empty name and nil
// topics say nothing (a list without those columns erases nothing).
//
// A row the store cannot take fails the whole import, naming its line, and
// changes nothing.
//
// It works through the list in chunks of syncChunk rows: one lookup of the
// chunk's addresses, then its additions and its updates. On Postgres each of
// those is one statement over arrays, so that a million rows take a few
// hundred round trips, not three million.
func (s *Store) Import(ctx context.Context, rows iter.Seq[subscriber.Row]) (SyncResult, error) {
	var res SyncResult
	now := s.stamp()
	err := s.tx(ctx, func(tx *sql.Tx) error {
		res = SyncResult{}
		w, err := s.newSyncWriter(ctx, tx, now)
		if err != nil {
			return err
		}
		defer w.close()
		chunk := make([]subscriber.Row, 0, syncChunk)
		for row := range rows {
			chunk = append(chunk, row)
			if len(chunk) == syncChunk {
				if err := importChunk(ctx, w, chunk, now, &res); err != nil {
					return err
				}
				chunk = chunk[:0]
			}
		}
		if len(chunk) > 0 {
			if err := importChunk(ctx, w, chunk, now, &res); err != nil {
				return err
			}
		}
		_, err = tx.ExecContext(ctx, s.q.deleteSupersededSignups)
		return err
	})
	if err != nil {
		return SyncResult{}, fmt.Errorf("import subscribers: %w", err)
	}
	return res, nil
}

// syncChunk is how many rows Import handles per lookup.
const syncChunk = 5000

// fields are a reader's name and topics (joined) as stored, with what the
// subscribers file said of each at the last sync (NULL: nothing).
type fields struct {
	name, topics         string
	fileName, fileTopics sql.NullString
}

// apply is what a row (name, joined topics; an empty name and nil topics
// say nothing) makes of f, and whether the stored name or topics changed
// (visible) or only what the file said (written).
func (f fields) apply(name string, topics *string) (out fields, visible, written bool) {
	out = f
	if name != "" && (!f.fileName.Valid || f.fileName.String != name) {
		out.name, out.fileName = name, sql.NullString{String: name, Valid: true}
	}
	if topics != nil && (!f.fileTopics.Valid || f.fileTopics.String != *topics) {
		out.topics, out.fileTopics = *topics, sql.NullString{String: *topics, Valid: true}
	}
	visible = out.name != f.name || out.topics != f.topics
	return out, visible, out != f
}

// knownSub is what Import needs of a stored subscriber.
type knownSub struct {
	id int64
	fields
}

// newSub is a subscriber Import adds.
type newSub struct {
	line               int
	email, key, status string
	created            time.Time
	unsubscribed       sql.NullTime
	fields
}

// syncWriter does Import's reads and writes inside its transaction.
type syncWriter interface {
	// lookup returns the stored subscribers among keys, by key.
	lookup(ctx context.Context, keys []string) (map[string]knownSub, error)
	// insert adds subs and returns how many it added (fewer when another
	// process added one of them meanwhile: that one keeps its record).
	insert(ctx context.Context, subs []newSub) (int, error)
	// update stores the fields of these subscribers.
	update(ctx context.Context, subs []knownSub) error
	close()
}

// importChunk merges one chunk of rows. It decides everything from one
// lookup, so a repeated address within the chunk is resolved here, in row
// order.
func importChunk(ctx context.Context, w syncWriter, rows []subscriber.Row, now time.Time, res *SyncResult) error {
	addrs := make([]string, len(rows))
	keys := make([]string, len(rows))
	topics := make([]*string, len(rows)) // nil: the row says nothing
	for i, row := range rows {
		addr, err := storeRules.NormalizeEmail(row.Email)
		if err != nil {
			return fmt.Errorf("line %d: %w", row.Line, err)
		}
		t, err := subscriber.NormalizeTopics(row.Topics)
		if err != nil {
			return fmt.Errorf("line %d: %s: %w", row.Line, addr, err)
		}
		if row.Topics != nil {
			j := subscriber.JoinTopics(t)
			topics[i] = &j
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
		changed = map[int64]int{}  // id → index in ups
		ups     []knownSub
		updated int
	)
	for i, row := range rows {
		k := keys[i]
		if j, ok := added[k]; ok {
			var visible bool
			if adds[j].fields, visible, _ = adds[j].apply(row.Name, topics[i]); visible {
				updated++
			} else {
				res.Unchanged++
			}
			continue
		}
		sub, ok := known[k]
		if !ok {
			a, err := newRow(row, addrs[i], k, now)
			if err != nil {
				return err
			}
			a.fields, _, _ = a.apply(row.Name, topics[i])
			added[k] = len(adds)
			adds = append(adds, a)
			continue
		}
		f, visible, written := sub.apply(row.Name, topics[i])
		if visible {
			updated++
		} else {
			res.Unchanged++
		}
		if !written {
			continue
		}
		sub.fields = f
		known[k] = sub
		if j, ok := changed[sub.id]; ok {
			ups[j] = sub
		} else {
			changed[sub.id] = len(ups)
			ups = append(ups, sub)
		}
	}
	n, err := w.insert(ctx, adds)
	if err != nil {
		return err
	}
	res.Added += n
	res.Unchanged += len(adds) - n
	res.Updated += updated
	if len(ups) > 0 {
		if err := w.update(ctx, ups); err != nil {
			return fmt.Errorf("lines %d-%d: update: %w", rows[0].Line, rows[len(rows)-1].Line, err)
		}
	}
	return nil
}

// newRow is the subscriber a row adds, without its name and topics.
func newRow(row subscriber.Row, addr, key string, now time.Time) (newSub, error) {
	a := newSub{line: row.Line, email: addr, key: key, status: row.Status, created: now}
	switch a.status {
	case "":
		a.status = subscriber.StatusActive
	case subscriber.StatusActive, subscriber.StatusBounced, subscriber.StatusComplained:
	case subscriber.StatusUnsubscribed:
		a.unsubscribed = nullTime(now)
	default:
		return a, fmt.Errorf("line %d: %s: status %q cannot be imported", row.Line, addr, a.status)
	}
	if !row.Created.IsZero() {
		a.created = row.Created.UTC()
	}
	return a, nil
}

func (s *Store) newSyncWriter(ctx context.Context, tx *sql.Tx, now time.Time) (syncWriter, error) {
	if s.d == dialectPostgres {
		return &pgSync{tx: tx, q: s.q, now: now}, nil
	}
	w := &sqliteSync{tx: tx, now: now}
	for _, p := range []struct {
		st **sql.Stmt
		q  string
	}{{&w.find, s.q.syncLookup}, {&w.ins, s.q.syncInsert}, {&w.upd, s.q.syncUpdate}} {
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
	find, ins, upd *sql.Stmt
}

func (w *sqliteSync) lookup(ctx context.Context, keys []string) (map[string]knownSub, error) {
	out := make(map[string]knownSub)
	for _, k := range keys {
		if _, ok := out[k]; ok {
			continue
		}
		var sub knownSub
		err := w.find.QueryRowContext(ctx, k).Scan(&sub.id, &sub.name, &sub.topics, &sub.fileName, &sub.fileTopics)
		switch {
		case errors.Is(err, sql.ErrNoRows):
		case err != nil:
			return nil, fmt.Errorf("%s: %w", k, err)
		default:
			out[k] = sub
		}
	}
	return out, nil
}

func (w *sqliteSync) insert(ctx context.Context, subs []newSub) (int, error) {
	for _, a := range subs {
		if _, err := w.ins.ExecContext(ctx, a.email, a.key, a.name, a.status, a.topics,
			a.created, w.now, a.unsubscribed, a.fileName, a.fileTopics); err != nil {
			return 0, fmt.Errorf("line %d: add %s: %w", a.line, a.email, err)
		}
	}
	return len(subs), nil
}

func (w *sqliteSync) update(ctx context.Context, subs []knownSub) error {
	for _, sub := range subs {
		if _, err := w.upd.ExecContext(ctx, sub.name, sub.topics, sub.fileName, sub.fileTopics, w.now, sub.id); err != nil {
			return fmt.Errorf("subscriber %d: %w", sub.id, err)
		}
	}
	return nil
}

func (w *sqliteSync) close() {
	for _, st := range []*sql.Stmt{w.find, w.ins, w.upd} {
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
		if err := rows.Scan(&sub.id, &k, &sub.name, &sub.topics, &sub.fileName, &sub.fileTopics); err != nil {
			return nil, err
		}
		out[k] = sub
	}
	return out, rows.Err()
}

// nullable is an array element for a NULL-able text column.
func nullable(v sql.NullString) *string {
	if !v.Valid {
		return nil
	}
	return &v.String
}

func (w *pgSync) insert(ctx context.Context, subs []newSub) (int, error) {
	if len(subs) == 0 {
		return 0, nil
	}
	var (
		emails, keys, names = make([]string, len(subs)), make([]string, len(subs)), make([]string, len(subs))
		statuses, topics    = make([]string, len(subs)), make([]string, len(subs))
		created             = make([]time.Time, len(subs))
		unsubscribed        = make([]*time.Time, len(subs))
		fileNames, fileTops = make([]*string, len(subs)), make([]*string, len(subs))
	)
	for i, a := range subs {
		emails[i], keys[i], names[i], statuses[i] = a.email, a.key, a.name, a.status
		topics[i], created[i] = a.topics, a.created
		if a.unsubscribed.Valid {
			unsubscribed[i] = &subs[i].unsubscribed.Time
		}
		fileNames[i], fileTops[i] = nullable(a.fileName), nullable(a.fileTopics)
	}
	res, err := w.tx.ExecContext(ctx, w.q.syncInsert, w.now, emails, keys, names, statuses, topics, created, unsubscribed,
		fileNames, fileTops)
	if err != nil {
		return 0, fmt.Errorf("lines %d-%d: add: %w", subs[0].line, subs[len(subs)-1].line, err)
	}
	n, err := res.RowsAffected()
	return int(n), err
}

func (w *pgSync) update(ctx context.Context, subs []knownSub) error {
	ids := make([]int64, len(subs))
	names, topics := make([]string, len(subs)), make([]string, len(subs))
	fileNames, fileTops := make([]*string, len(subs)), make([]*string, len(subs))
	for i, sub := range subs {
		ids[i], names[i], topics[i] = sub.id, sub.name, sub.topics
		fileNames[i], fileTops[i] = nullable(sub.fileName), nullable(sub.fileTopics)
	}
	_, err := w.tx.ExecContext(ctx, w.q.syncUpdate, w.now, ids, names, topics, fileNames, fileTops)
	return err
}

func (w *pgSync) close() {}

// Remove unsubscribes the address (the record and its history stay); an
// address that is unsubscribed already keeps its first unsubscription time.
// For an address that is only a pending sign-up, it deletes the sign-up.
// It returns ledger.ErrNotFound for an unknown address.
func (s *Store) Remove(ctx context.Context, email string) error {
	key := subscriber.EmailKey(email)
	now := s.stamp()
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var id int64
		err := tx.QueryRowContext(ctx, s.q.subscriberIDByKey, key).Scan(&id)
		if errors.Is(err, sql.ErrNoRows) {
			res, err := tx.ExecContext(ctx, s.q.deleteSignupByKey, key)
			if err != nil {
				return err
			}
			if n, err := res.RowsAffected(); err != nil || n > 0 {
				return err
			}
			return ledger.ErrNotFound
		}
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, s.q.unsubscribeByID, now, now, id)
		return err
	})
	if err != nil {
		return fmt.Errorf("remove subscriber %s: %w", email, err)
	}
	return nil
}

// SignupByEmail returns the pending sign-up of the address
// (case-insensitively), or ledger.ErrNotFound.
func (s *Store) SignupByEmail(ctx context.Context, email string) (subscriber.Signup, error) {
	su, err := scanSignup(s.db.QueryRowContext(ctx, s.q.signupByKey, subscriber.EmailKey(email)))
	if errors.Is(err, sql.ErrNoRows) {
		return subscriber.Signup{}, fmt.Errorf("sign-up %s: %w", email, ledger.ErrNotFound)
	}
	if err != nil {
		return subscriber.Signup{}, fmt.Errorf("sign-up %s: %w", email, err)
	}
	return su, nil
}

// Delete erases the subscriber, its delivery ledger rows and any pending
// sign-up of the address (for erasure requests). It returns ledger.ErrNotFound
// when the address is neither.
func (s *Store) Delete(ctx context.Context, email string) error {
	key := subscriber.EmailKey(email)
	err := s.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, s.q.deleteSignupByKey, key)
		if err != nil {
			return err
		}
		signups, err := res.RowsAffected()
		if err != nil {
			return err
		}
		var id int64
		err = tx.QueryRowContext(ctx, s.q.subscriberIDByKey, key).Scan(&id)
		if errors.Is(err, sql.ErrNoRows) {
			if signups > 0 {
				return nil
			}
			return ledger.ErrNotFound
		}
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, s.q.deleteSubscriberLedger, id); err != nil {
			return err
		}
		// Its bounce events stay, naming nobody: SQLite may give the id
		// to the next reader, who must not inherit a soft score.
		if _, err := tx.ExecContext(ctx, s.q.forgetBounceReader, id); err != nil {
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
// ledger.ErrNotFound.
func (s *Store) Get(ctx context.Context, email string) (subscriber.Subscriber, error) {
	sub, err := scanSubscriber(s.db.QueryRowContext(ctx, s.q.subscriberByKey, subscriber.EmailKey(email)))
	if errors.Is(err, sql.ErrNoRows) {
		return subscriber.Subscriber{}, fmt.Errorf("get subscriber %s: %w", email, ledger.ErrNotFound)
	}
	if err != nil {
		return subscriber.Subscriber{}, fmt.Errorf("get subscriber %s: %w", email, err)
	}
	return sub, nil
}

// Subscriber returns the subscriber with this id, or ledger.ErrNotFound.
func (s *Store) Subscriber(ctx context.Context, id int64) (subscriber.Subscriber, error) {
	sub, err := scanSubscriber(s.db.QueryRowContext(ctx, s.q.subscriberByID, id))
	if errors.Is(err, sql.ErrNoRows) {
		return subscriber.Subscriber{}, fmt.Errorf("get subscriber %d: %w", id, ledger.ErrNotFound)
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
	return paged(ctx, s, s.q.subscriberPage, scanSubscriber, func(sub subscriber.Subscriber) int64 { return sub.ID }, fn)
}

// ListSignups calls fn for every pending sign-up in id order, a page at a
// time, as List does.
func (s *Store) ListSignups(ctx context.Context, fn func(subscriber.Signup) error) error {
	return paged(ctx, s, s.q.signupPage, scanSignup, func(su subscriber.Signup) int64 { return su.ID }, fn)
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
	if err := s.db.QueryRowContext(ctx, s.q.countActive).Scan(&n); err != nil {
		return 0, fmt.Errorf("count active subscribers: %w", err)
	}
	return n, nil
}

// SetStatus sets a subscriber's status (one of subscriber.StatusActive,
// StatusUnsubscribed, StatusBounced). It returns ledger.ErrNotFound for an unknown
// id.
func (s *Store) SetStatus(ctx context.Context, id int64, status string) error {
	switch status {
	case subscriber.StatusActive, subscriber.StatusUnsubscribed, subscriber.StatusBounced, subscriber.StatusComplained:
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
		return fmt.Errorf("set status of subscriber %d: %w", id, ledger.ErrNotFound)
	}
	return nil
}

// Unsubscribe marks the subscriber unsubscribed, as asked by the subscriber
// (the one-click link). It is idempotent: the first unsubscription time is
// kept. It returns ledger.ErrNotFound for an unknown id (for instance one deleted
// since the link was sent).
func (s *Store) Unsubscribe(ctx context.Context, subscriberID int64) error {
	now := s.stamp()
	err := s.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, s.q.unsubscribeByID, now, now, subscriberID)
		if err != nil {
			return err
		}
		return s.existsUnlessChanged(ctx, tx, res, subscriberID)
	})
	if err != nil {
		return fmt.Errorf("unsubscribe subscriber %d: %w", subscriberID, err)
	}
	return nil
}

// Resubscribe makes an unsubscribed subscriber active again, as asked by
// the subscriber through the signed link of their preferences page. A
// bounced or active subscriber is left as it is. It returns ledger.ErrNotFound for
// an unknown id.
func (s *Store) Resubscribe(ctx context.Context, subscriberID int64) error {
	now := s.stamp()
	err := s.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, s.q.resubscribe, now, subscriberID)
		if err != nil {
			return err
		}
		return s.existsUnlessChanged(ctx, tx, res, subscriberID)
	})
	if err != nil {
		return fmt.Errorf("resubscribe subscriber %d: %w", subscriberID, err)
	}
	return nil
}

// existsUnlessChanged returns ledger.ErrNotFound when res changed no row and the
// subscriber does not exist.
func (s *Store) existsUnlessChanged(ctx context.Context, tx *sql.Tx, res sql.Result, id int64) error {
	if n, err := res.RowsAffected(); err != nil || n > 0 {
		return err
	}
	var n int
	if err := tx.QueryRowContext(ctx, s.q.subscriberExists, id).Scan(&n); err != nil {
		return err
	}
	if n == 0 {
		return ledger.ErrNotFound
	}
	return nil
}

// SetPreferences stores a subscriber's name and topics (nil or empty:
// every topic), as chosen on the preferences page. It returns ledger.ErrNotFound
// for an unknown id.
func (s *Store) SetPreferences(ctx context.Context, subscriberID int64, name string, topics []string) error {
	topics, err := subscriber.NormalizeTopics(topics)
	if err != nil {
		return fmt.Errorf("preferences of subscriber %d: %w", subscriberID, err)
	}
	res, err := s.db.ExecContext(ctx, s.q.updateSubscriber, name, subscriber.JoinTopics(topics), s.stamp(), subscriberID)
	if err != nil {
		return fmt.Errorf("preferences of subscriber %d: %w", subscriberID, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("preferences of subscriber %d: %w", subscriberID, err)
	} else if n == 0 {
		return fmt.Errorf("preferences of subscriber %d: %w", subscriberID, ledger.ErrNotFound)
	}
	return nil
}
