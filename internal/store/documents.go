package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/digest/digest/internal/source"
)

// The store keeps the sources' last good copies of feeds and pages.
var _ source.Cache = (*Store)(nil)

// GetDocument returns the copy stored under key; ok is false when there is
// none.
func (s *Store) GetDocument(ctx context.Context, key string) (d source.Cached, ok bool, err error) {
	err = s.db.QueryRowContext(ctx, s.q.getDocument, key).Scan(
		&d.ETag, &d.LastModified, &d.URL, &d.ContentType, &d.Body, &d.FetchedAt)
	if errors.Is(err, sql.ErrNoRows) {
		return source.Cached{}, false, nil
	}
	if err != nil {
		return source.Cached{}, false, fmt.Errorf("document %s: %w", key, err)
	}
	d.FetchedAt = d.FetchedAt.UTC()
	return d, true, nil
}

// PutDocument stores d under key, replacing any earlier copy.
func (s *Store) PutDocument(ctx context.Context, key string, d source.Cached) error {
	if d.Body == nil {
		d.Body = []byte{}
	}
	_, err := s.db.ExecContext(ctx, s.q.putDocument, key, d.ETag, d.LastModified, d.URL, d.ContentType, d.Body, utc(d.FetchedAt))
	if err != nil {
		return fmt.Errorf("document %s: %w", key, err)
	}
	return nil
}

// RecordSourceRun notes how one run of the named source went and returns
// how many runs in a row it has now failed (0 after a success). A runErr
// that is only a warning (it has a Warning() bool method that says so, as
// a source that skipped a bad file does) is a success.
func (s *Store) RecordSourceRun(ctx context.Context, name string, runErr error, at time.Time) (int, error) {
	var warning interface{ Warning() bool }
	if errors.As(runErr, &warning) && warning.Warning() {
		runErr = nil
	}
	var streak int
	err := s.tx(ctx, func(tx *sql.Tx) error {
		if runErr == nil {
			_, err := tx.ExecContext(ctx, s.q.sourceOK, name, utc(at))
			return err
		}
		if _, err := tx.ExecContext(ctx, s.q.sourceFailed, name, runErr.Error(), utc(at)); err != nil {
			return err
		}
		return tx.QueryRowContext(ctx, s.q.sourceFailures, name).Scan(&streak)
	})
	if err != nil {
		return 0, fmt.Errorf("source %s: %w", name, err)
	}
	return streak, nil
}

// SentSince counts the messages of every issue accepted by the relay at or
// after since: the figure relay quotas (per hour, per day) are checked on.
func (s *Store) SentSince(ctx context.Context, since time.Time) (int, error) {
	var n int
	if err := s.db.QueryRowContext(ctx, s.q.sentSince, utc(since)).Scan(&n); err != nil {
		return 0, fmt.Errorf("sent since %s: %w", since.Format(time.RFC3339), err)
	}
	return n, nil
}
