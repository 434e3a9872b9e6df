// Package store keeps the program's state in SQLite: subscribers, built
// issues, the per-recipient delivery ledger and the articles already seen.
//
// It uses modernc.org/sqlite (pure Go, no cgo) in WAL mode with a single
// connection: SQLite allows one writer at a time, and one connection per
// process turns lock contention inside the process into queueing in
// database/sql instead of SQLITE_BUSY errors. Other processes on the same
// file wait up to busy_timeout; write transactions begin IMMEDIATE so that
// they take the write lock up front and never deadlock upgrading a read.
//
// Every SQL statement is in sql.go. Email addresses match case-insensitively
// everywhere through [subscriber.EmailKey].
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver

	"github.com/digest/digest/internal/ledger"
)

// ErrNotFound is returned when the subscriber, issue or row asked for does
// not exist. It is [ledger.ErrNotFound], so that the use cases can test for
// it without knowing the store.
var ErrNotFound = ledger.ErrNotFound

// Store is the SQLite-backed state. It is safe for concurrent use.
type Store struct {
	db   *sql.DB
	path string
	now  func() time.Time
	// leaseNow is the clock of leases (runs and claimed rows). It is real
	// time even when now is pinned by --now: a lease is about whether a
	// process is alive, and two processes must agree on it.
	leaseNow func() time.Time
}

// WithLeaseClock replaces time.Now for leases, so that tests can expire them
// without waiting.
func WithLeaseClock(now func() time.Time) Option {
	return func(s *Store) {
		if now != nil {
			s.leaseNow = now
		}
	}
}

// Option configures a Store.
type Option func(*Store)

// WithClock replaces time.Now for the timestamps the store writes itself
// (created_at, updated_at and the like), so that runs with --now are
// reproducible and tests are deterministic.
func WithClock(now func() time.Time) Option {
	return func(s *Store) {
		if now != nil {
			s.now = now
		}
	}
}

// Open opens (creating it and its directory when needed) the SQLite database
// at path and brings its schema up to date.
func Open(ctx context.Context, path string, opts ...Option) (*Store, error) {
	if path == "" {
		return nil, errors.New("open store: empty database path")
	}
	if strings.ContainsAny(path, "?#") {
		return nil, fmt.Errorf("open store %s: path must not contain '?' or '#'", path)
	}
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return nil, fmt.Errorf("open store %s: %w", path, err)
		}
	}
	q := url.Values{}
	// Pragmas in the DSN apply to every connection the pool ever opens,
	// including one that replaces a broken connection.
	q.Add("_pragma", "busy_timeout(5000)")
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "foreign_keys(1)")
	// FULL: a commit survives power loss too. The ledger relies on it (a
	// "sent" that rolled back would send again), and its writes are
	// batched, so the fsync per transaction is not per message.
	q.Add("_pragma", "synchronous(FULL)")
	q.Set("_txlock", "immediate")
	q.Set("_time_format", "sqlite")
	db, err := sql.Open("sqlite", path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	db.SetConnMaxLifetime(0)

	s := &Store{db: db, path: path, now: time.Now, leaseNow: time.Now}
	for _, o := range opts {
		o(s)
	}
	if err := s.migrate(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	return s, nil
}

// Close closes the database.
func (s *Store) Close() error {
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("close store %s: %w", s.path, err)
	}
	return nil
}

// SchemaVersion is the number of the last migration applied.
func (s *Store) SchemaVersion(ctx context.Context) (int, error) {
	var v int
	if err := s.db.QueryRowContext(ctx, sqlSchemaVersion).Scan(&v); err != nil {
		return 0, fmt.Errorf("schema version: %w", err)
	}
	return v, nil
}

// migrate applies, each in its own transaction, the migrations not yet
// recorded in schema_migrations. Checking inside the transaction (which holds
// the write lock) makes two processes opening a new file at once safe.
func (s *Store) migrate(ctx context.Context) error {
	if _, err := s.db.ExecContext(ctx, sqlCreateMigrations); err != nil {
		return fmt.Errorf("create schema_migrations: %w", err)
	}
	for i, m := range migrations() {
		version := i + 1
		err := s.tx(ctx, func(tx *sql.Tx) error {
			var n int
			if err := tx.QueryRowContext(ctx, sqlMigrationApplied, version).Scan(&n); err != nil {
				return err
			}
			if n > 0 {
				return nil
			}
			if _, err := tx.ExecContext(ctx, m); err != nil {
				return err
			}
			_, err := tx.ExecContext(ctx, sqlInsertMigration, version, s.stamp())
			return err
		})
		if err != nil {
			return fmt.Errorf("migration %d: %w", version, err)
		}
	}
	return nil
}

// tx runs fn in a transaction, committing when fn returns nil.
func (s *Store) tx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	return tx.Commit()
}

// leaseStamp is the current real time, in UTC, for leases.
func (s *Store) leaseStamp() time.Time { return s.leaseNow().UTC() }

// stamp is the current time, in UTC, for the timestamps the store writes.
func (s *Store) stamp() time.Time { return s.now().UTC() }

// utc converts a time for storage; the zero time stays zero.
func utc(t time.Time) time.Time {
	if t.IsZero() {
		return t
	}
	return t.UTC()
}

// nullTime stores the zero time as NULL.
func nullTime(t time.Time) sql.NullTime {
	if t.IsZero() {
		return sql.NullTime{}
	}
	return sql.NullTime{Time: t.UTC(), Valid: true}
}
