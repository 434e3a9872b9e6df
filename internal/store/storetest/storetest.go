// Package storetest gives tests a fresh, empty database of each engine the
// store runs on: a SQLite file in the test's temporary directory, or a new
// schema in the Postgres server named by DIGEST_TEST_POSTGRES.
//
// Without DIGEST_TEST_POSTGRES a Postgres test is skipped, except when
// CI=true: there it fails, so that a CI run without the server cannot pass
// by testing SQLite alone. internal/store/testdata/pg.sh starts a throwaway
// server and prints the variable to export.
package storetest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" driver
)

// EnvPostgres names the environment variable with the URL of the Postgres
// server tests use, for example
// postgres://postgres@127.0.0.1:55432/postgres?sslmode=disable. Each test
// gets a schema of its own there, dropped when it ends.
const EnvPostgres = "DIGEST_TEST_POSTGRES"

// Backend is a database engine the store runs on.
type Backend string

// The engines.
const (
	SQLite   Backend = "sqlite"
	Postgres Backend = "postgres"
)

// Backends lists the engines every store test runs against.
func Backends() []Backend { return []Backend{SQLite, Postgres} }

// Run runs fn as a subtest for each engine, named after it.
func Run(t *testing.T, fn func(t *testing.T, db Backend)) {
	t.Helper()
	for _, b := range Backends() {
		t.Run(string(b), func(t *testing.T) { fn(t, b) })
	}
}

// Fresh returns the DSN of a new, empty database of the engine, removed when
// the test ends: a file in the test's temporary directory for SQLite, a
// schema of its own for Postgres (see PostgresDSN).
func (b Backend) Fresh(t testing.TB) string {
	t.Helper()
	switch b {
	case SQLite:
		return filepath.Join(t.TempDir(), "db", "digest.db")
	case Postgres:
		return PostgresDSN(t)
	}
	t.Fatalf("storetest: unknown backend %q", string(b))
	return ""
}

// PostgresDSN creates a schema with a random name in the server named by
// DIGEST_TEST_POSTGRES and returns that URL with search_path set to it, so
// that a store opened on it sees only its own tables. The schema is dropped
// when the test ends (after the test's own cleanups, which close stores).
// Without the variable it skips the test, or fails it when CI=true.
func PostgresDSN(t testing.TB) string {
	t.Helper()
	base := os.Getenv(EnvPostgres)
	if base == "" {
		msg := EnvPostgres + " is not set; start a server with internal/store/testdata/pg.sh"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg + " (CI=true: a Postgres test fails rather than skips)")
		}
		t.Skip(msg)
	}
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("%s: %v", EnvPostgres, err)
	}
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	schema := "test_" + hex.EncodeToString(b[:])
	if err := admin(base, "CREATE SCHEMA "+schema); err != nil {
		t.Fatalf("%s: create schema: %v", u.Redacted(), err)
	}
	t.Cleanup(func() {
		if err := admin(base, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Errorf("%s: drop schema %s: %v", u.Redacted(), schema, err)
		}
	})
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// admin runs one statement on the server with a connection of its own.
func admin(dsn, stmt string) error {
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		return err
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := db.ExecContext(ctx, stmt); err != nil {
		return fmt.Errorf("%s: %w", stmt, err)
	}
	return nil
}
