package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"modernc.org/sqlite"
)

// WithBuildLock runs fn while it holds the build lock of issueID, so that of
// all the processes that share the database only one builds the issue at a
// time; the others wait here (until the lock is free or ctx ends) and then,
// typically, find the issue built. A process that dies while it holds the
// lock releases it at once: the lock belongs to its connection (Postgres)
// or its open file (SQLite), not to a row that would have to expire.
//
// On Postgres the lock is a session advisory lock on a connection of its
// own, one per issue. On SQLite it is an exclusive transaction on a lock
// file beside the database (path + ".buildlock"), one for all issues: it
// must not be the database's own write lock, which fn needs to record the
// build, and one machine gains nothing from building two issues at once. An
// in-memory database, which no other process sees, uses a lock in the Store.
// The lock is not reentrant: fn must not ask for it again.
func (s *Store) WithBuildLock(ctx context.Context, issueID string, fn func(context.Context) error) error {
	var err error
	switch {
	case s.d == dialectPostgres:
		err = s.withAdvisoryLock(ctx, issueID, fn)
	case sqliteInMemory(s.where):
		err = s.withStoreLock(ctx, fn)
	default:
		err = s.withLockFile(ctx, s.where+".buildlock", fn)
	}
	if err != nil {
		return fmt.Errorf("build issue %s: %w", issueID, err)
	}
	return nil
}

// errLockLost reports that the lock ended before fn did.
var errLockLost = errors.New("build lock lost while building (its connection to the database ended)")

func (s *Store) withAdvisoryLock(ctx context.Context, issueID string, fn func(context.Context) error) (err error) {
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("build lock: %w", err)
	}
	if _, err := conn.ExecContext(ctx, s.q.buildLock, issueID); err != nil {
		// Cancelled while waiting, or the connection failed: whether the
		// server granted the lock is unknown, so the session must end.
		discardConn(conn)
		if cerr := ctx.Err(); cerr != nil {
			// pgx reports a query cancelled before it was sent as a bad
			// connection; the cause is the context.
			err = cerr
		}
		return fmt.Errorf("build lock: %w", err)
	}
	// Deferred, so that a panic in fn (which the daemon's scheduler
	// recovers) cannot leave the lock held by a live process.
	defer func() {
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		var released bool
		uerr := conn.QueryRowContext(uctx, s.q.buildUnlock, issueID).Scan(&released)
		switch {
		case uerr != nil:
			discardConn(conn)
			uerr = fmt.Errorf("build unlock: %w", uerr)
		case !released:
			discardConn(conn)
			uerr = errLockLost
		default:
			uerr = conn.Close()
		}
		err = errors.Join(err, uerr)
	}()
	return fn(ctx)
}

// discardConn closes the pool's connection behind conn instead of returning
// it to the pool, so that a session that may hold a lock ends.
func discardConn(conn *sql.Conn) {
	_ = conn.Raw(func(any) error { return driver.ErrBadConn })
	_ = conn.Close()
}

func (s *Store) withStoreLock(ctx context.Context, fn func(context.Context) error) error {
	select {
	case s.buildLock <- struct{}{}:
	case <-ctx.Done():
		return fmt.Errorf("build lock: %w", ctx.Err())
	}
	defer func() { <-s.buildLock }()
	return fn(ctx)
}

// lockFileBusyTimeout is how long one attempt to take the lock file waits
// inside SQLite before checking ctx again.
const lockFileBusyTimeout = 500 * time.Millisecond

func (s *Store) withLockFile(ctx context.Context, path string, fn func(context.Context) error) error {
	q := url.Values{}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", lockFileBusyTimeout.Milliseconds()))
	q.Set("_txlock", "exclusive")
	db, err := sql.Open("sqlite", path+"?"+q.Encode())
	if err != nil {
		return fmt.Errorf("build lock %s: %w", path, err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	var tx *sql.Tx
	for {
		tx, err = db.BeginTx(ctx, nil)
		if err == nil {
			break
		}
		if !isBusy(err) {
			return fmt.Errorf("build lock %s: %w", path, err)
		}
		if ctx.Err() != nil {
			return fmt.Errorf("build lock %s: %w", path, ctx.Err())
		}
	}
	defer tx.Rollback()
	return fn(ctx)
}

// isBusy reports SQLite's "database is locked" (SQLITE_BUSY and its
// extended codes).
func isBusy(err error) bool {
	var se *sqlite.Error
	return errors.As(err, &se) && se.Code()&0xff == 5
}

// sqliteInMemory reports a SQLite database that lives in the process only.
func sqliteInMemory(path string) bool {
	return path == ":memory:" || strings.HasPrefix(path, "file::memory:") || strings.Contains(path, "mode=memory")
}
