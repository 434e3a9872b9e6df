// Package store keeps the program's state: subscribers, built issues, the
// per-recipient delivery ledger and the articles already seen, in SQLite (a
// file path) or Postgres (a postgres:// URL), with the same schema and the
// same behaviour on both.
//
// SQLite is modernc.org/sqlite (pure Go, no cgo) in WAL mode with a single
// connection: SQLite allows one writer at a time, and one connection per
// process turns lock contention inside the process into queueing in
// database/sql instead of SQLITE_BUSY errors. Other processes on the same
// file wait up to busy_timeout; write transactions begin IMMEDIATE so that
// they take the write lock up front and never deadlock upgrading a read.
//
// Postgres is pgx through its database/sql driver, so that both engines
// share one implementation, with a pool of several connections: several
// processes on several machines share the database, claims take rows with
// FOR UPDATE SKIP LOCKED, and batches go in one statement each, since every
// statement is a network round trip.
//
// The SQL is in sql.go (common and SQLite) and sql_postgres.go. Email
// addresses match case-insensitively everywhere through
// [subscriber.EmailKey]. Times are stored and returned in UTC.
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

// Store is the database-backed state. It is safe for concurrent use.
type Store struct {
	db    *sql.DB
	d     dialect
	q     *queries
	where string // the file, or the URL without its password, for errors
	now   func() time.Time
	// leaseNow, when set, is the clock of leases (runs, claimed rows, the
	// daemon's lease), for tests. Otherwise leases use the database's
	// clock on Postgres (every machine agrees on it, whatever their skew)
	// and the real time on SQLite, even when now is pinned by --now: a
	// lease is about whether a process is alive.
	leaseNow func() time.Time
	// self is this process, as its runs and leases name it; alive is the
	// liveness of self (see liveness.go).
	self  ledger.Process
	alive alive
	// rawBudget is RawBudget (smaller in tests).
	rawBudget int64
	// buildLock stands for the build lock of an in-memory SQLite database,
	// which no other process can open.
	buildLock chan struct{}
	// stmts are SQLite's ledger statements, prepared once (stmts.go).
	stmts stmtCache
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

// isPostgresURL reports whether dsn names a Postgres database (a postgres:// or
// postgresql:// URL) rather than a SQLite file.
func isPostgresURL(dsn string) bool {
	l := strings.ToLower(dsn)
	return strings.HasPrefix(l, "postgres://") || strings.HasPrefix(l, "postgresql://")
}

// Open opens the database named by dsn and brings its schema up to date: a
// postgres:// URL opens Postgres, anything else is a SQLite file (created,
// with its directory, when needed). Errors name the file or the URL, never
// its password.
func Open(ctx context.Context, dsn string, opts ...Option) (*Store, error) {
	var (
		s   *Store
		err error
	)
	if isPostgresURL(dsn) {
		s, err = openPostgres(dsn)
	} else {
		s, err = openSQLite(dsn)
	}
	if err != nil {
		return nil, err
	}
	s.now, s.rawBudget = time.Now, RawBudget
	if s.self, err = ledger.NewProcess(); err != nil {
		s.db.Close()
		return nil, err
	}
	s.q = newQueries(s.d)
	s.buildLock = make(chan struct{}, 1)
	for _, o := range opts {
		o(s)
	}
	if err := s.migrateRetrying(ctx); err != nil {
		s.db.Close()
		return nil, fmt.Errorf("open store %s: %w", s.where, err)
	}
	return s, nil
}

// migrateRetrying runs migrate, again when SQLite reports the file busy
// without waiting: several processes opening a new file at once (a daemon
// and its standby started together) race to switch it to WAL, and SQLite
// answers the loser SQLITE_BUSY at once instead of through busy_timeout.
func (s *Store) migrateRetrying(ctx context.Context) error {
	for attempt := 1; ; attempt++ {
		err := s.migrate(ctx)
		if err == nil || !isBusy(err) || attempt == 20 {
			return err
		}
		t := time.NewTimer(time.Duration(attempt) * 25 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
	}
}

func openSQLite(path string) (*Store, error) {
	if path == "" {
		return nil, errors.New("open store: empty database path")
	}
	if strings.ContainsAny(path, "?#") {
		return nil, fmt.Errorf("open store %s: path must not contain '?' or '#'", path)
	}
	if dir := filepath.Dir(path); dir != "" && !strings.HasPrefix(path, "file:") && path != ":memory:" {
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
	return &Store{db: db, d: dialectSQLite, where: path}, nil
}

// Close closes the database.
func (s *Store) Close() error {
	s.alive.close()
	s.stmts.close()
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("close store %s: %w", s.where, err)
	}
	return nil
}

// SchemaVersion is the number of the last migration applied.
func (s *Store) SchemaVersion(ctx context.Context) (int, error) {
	var v int
	if err := s.db.QueryRowContext(ctx, s.q.schemaVersion).Scan(&v); err != nil {
		return 0, fmt.Errorf("schema version: %w", err)
	}
	return v, nil
}

// migrate applies, each in its own transaction, the migrations not yet
// recorded in schema_migrations. Checking inside the transaction makes two
// processes opening a new database at once safe: on SQLite the immediate
// transaction holds the write lock, on Postgres the transaction first takes
// an advisory lock (and creates schema_migrations under it, since two
// concurrent CREATE TABLE IF NOT EXISTS can both try to create it).
func (s *Store) migrate(ctx context.Context) error {
	for i, m := range s.d.migrations() {
		version := i + 1
		if s.d == dialectSQLite && strings.HasPrefix(m, noForeignKeysMarker) {
			if err := s.migrateWithoutForeignKeys(ctx, version, m); err != nil {
				return fmt.Errorf("migration %d: %w", version, err)
			}
			continue
		}
		err := s.tx(ctx, func(tx *sql.Tx) error {
			if s.q.lockMigrations != "" {
				if _, err := tx.ExecContext(ctx, s.q.lockMigrations); err != nil {
					return err
				}
			}
			if i == 0 {
				if _, err := tx.ExecContext(ctx, s.q.createMigrations); err != nil {
					return fmt.Errorf("create schema_migrations: %w", err)
				}
			}
			var n int
			if err := tx.QueryRowContext(ctx, s.q.migrationApplied, version).Scan(&n); err != nil {
				return err
			}
			if n > 0 {
				return nil
			}
			if _, err := tx.ExecContext(ctx, m); err != nil {
				return err
			}
			_, err := tx.ExecContext(ctx, s.q.insertMigration, version, s.stamp())
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

// serialize makes the transactions that call it with the same name run one
// after the other, for a check-then-write that must see every earlier
// write (the next issue number, an address added twice at once). SQLite
// needs nothing: its transactions begin IMMEDIATE and so already run one
// at a time. On Postgres, whose transactions run side by side (READ
// COMMITTED), it takes a transaction advisory lock, released at commit.
func (s *Store) serialize(ctx context.Context, tx *sql.Tx, name string) error {
	if s.q.serialize == "" {
		return nil
	}
	if _, err := tx.ExecContext(ctx, s.q.serialize, name); err != nil {
		return fmt.Errorf("lock %s: %w", name, err)
	}
	return nil
}

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
