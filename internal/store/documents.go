package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Document is the last good copy of a fetched feed or page, with the
// validators for a conditional GET.
type Document struct {
	ETag, LastModified string
	URL, ContentType   string
	Body               []byte
	FetchedAt          time.Time
}

// GetDocument returns the copy stored under key; ok is false when there is
// none.
func (s *Store) GetDocument(ctx context.Context, key string) (d Document, ok bool, err error) {
	err = s.db.QueryRowContext(ctx, sqlGetDocument, key).Scan(
		&d.ETag, &d.LastModified, &d.URL, &d.ContentType, &d.Body, &d.FetchedAt)
	if errors.Is(err, sql.ErrNoRows) {
		return Document{}, false, nil
	}
	if err != nil {
		return Document{}, false, fmt.Errorf("document %s: %w", key, err)
	}
	return d, true, nil
}

// PutDocument stores d under key, replacing any earlier copy.
func (s *Store) PutDocument(ctx context.Context, key string, d Document) error {
	if d.Body == nil {
		d.Body = []byte{}
	}
	_, err := s.db.ExecContext(ctx, sqlPutDocument, key, d.ETag, d.LastModified, d.URL, d.ContentType, d.Body, utc(d.FetchedAt))
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
			_, err := tx.ExecContext(ctx, sqlSourceOK, name, utc(at))
			return err
		}
		if _, err := tx.ExecContext(ctx, sqlSourceFailed, name, runErr.Error(), utc(at)); err != nil {
			return err
		}
		return tx.QueryRowContext(ctx, sqlSourceFailures, name).Scan(&streak)
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
	if err := s.db.QueryRowContext(ctx, sqlSentSince, utc(since)).Scan(&n); err != nil {
		return 0, fmt.Errorf("sent since %s: %w", since.Format(time.RFC3339), err)
	}
	return n, nil
}
