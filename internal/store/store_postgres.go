package store

import (
	"context"
	"fmt"
	"net/url"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/stdlib"
)

// Pool settings for Postgres. A sending worker uses a few connections at
// once (claims, the batch of outcomes, lease renewals, the build lock held
// on a connection of its own), and every process of a deployment has its
// own pool, so the cap stays far below the server's max_connections (100 by
// default) even with ten workers.
const (
	pgMaxConns        = 8
	pgConnMaxIdle     = 5 * time.Minute
	pgConnMaxLifetime = time.Hour
	pgConnectTimeout  = 10 * time.Second
)

// openPostgres opens a pool on the database named by the URL dsn. Options in
// the URL are pgx's (sslmode, connect_timeout, search_path, any server
// setting); unless the URL says otherwise the session's time zone is UTC and
// connecting gives up after 10 s.
func openPostgres(dsn string) (*Store, error) {
	where := redactURL(dsn)
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		// pgx's message quotes the URL with its password masked.
		return nil, fmt.Errorf("open store: %w", err)
	}
	if _, ok := cfg.RuntimeParams["timezone"]; !ok {
		cfg.RuntimeParams["timezone"] = "UTC"
	}
	if _, ok := cfg.RuntimeParams["application_name"]; !ok {
		cfg.RuntimeParams["application_name"] = "digest"
	}
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = pgConnectTimeout
	}
	db := stdlib.OpenDB(*cfg, stdlib.OptionAfterConnect(scanTimesInUTC))
	db.SetMaxOpenConns(pgMaxConns)
	db.SetMaxIdleConns(pgMaxConns)
	db.SetConnMaxIdleTime(pgConnMaxIdle)
	db.SetConnMaxLifetime(pgConnMaxLifetime)
	return &Store{db: db, d: dialectPostgres, where: where}, nil
}

// scanTimesInUTC makes the connection return TIMESTAMPTZ values in UTC, as
// the SQLite side does, instead of in the process's local zone.
func scanTimesInUTC(_ context.Context, c *pgx.Conn) error {
	c.TypeMap().RegisterType(&pgtype.Type{
		Name:  "timestamptz",
		OID:   pgtype.TimestamptzOID,
		Codec: &pgtype.TimestamptzCodec{ScanLocation: time.UTC},
	})
	return nil
}

// redactURL is dsn with its password replaced, for messages.
func redactURL(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		return "postgres database (unparsable URL)"
	}
	return u.Redacted()
}
