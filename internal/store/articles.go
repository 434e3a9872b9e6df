package store

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"time"
)

// FirstSeen records the ids not seen before as first seen at now, and returns
// when each given id was first seen. Feeds that lack dates or republish old
// items are judged by this time.
func (s *Store) FirstSeen(ctx context.Context, ids []string, now time.Time) (map[string]time.Time, error) {
	out := make(map[string]time.Time, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	if now.IsZero() {
		now = s.stamp()
	}
	err := s.tx(ctx, func(tx *sql.Tx) error {
		ins, err := tx.PrepareContext(ctx, s.q.insertSeen)
		if err != nil {
			return err
		}
		defer ins.Close()
		get, err := tx.PrepareContext(ctx, s.q.firstSeen)
		if err != nil {
			return err
		}
		defer get.Close()
		for _, id := range ids {
			if _, err := ins.ExecContext(ctx, id, now.UTC()); err != nil {
				return fmt.Errorf("article %s: %w", id, err)
			}
			var t time.Time
			if err := get.QueryRowContext(ctx, id).Scan(&t); err != nil {
				return fmt.Errorf("article %s: %w", id, err)
			}
			out[id] = t.UTC()
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("first seen: %w", err)
	}
	return out, nil
}

// SentBefore returns, for those of ids that went out in an issue other than
// exceptIssue, the ID of that issue. Ids never sent are absent from the map.
func (s *Store) SentBefore(ctx context.Context, ids []string, exceptIssue string) (map[string]string, error) {
	out := make(map[string]string)
	if len(ids) == 0 {
		return out, nil
	}
	// A plain prepared statement, not a transaction: transactions here begin
	// IMMEDIATE and would lock out other processes' writes for a read.
	get, err := s.db.PrepareContext(ctx, s.q.sentIssueChunk)
	if err != nil {
		return nil, fmt.Errorf("sent before: %w", err)
	}
	defer get.Close()
	args := make([]any, observeChunk+1)
	for chunk := range slices.Chunk(ids, observeChunk) {
		for i := range observeChunk {
			args[i] = chunk[min(i, len(chunk)-1)] // a short chunk repeats its last id
		}
		args[observeChunk] = exceptIssue
		if err := sentIn(ctx, get, args, out); err != nil {
			return nil, fmt.Errorf("sent before: %w", err)
		}
	}
	return out, nil
}

// sentIn adds to out the articles of one chunk that an issue carried.
func sentIn(ctx context.Context, get *sql.Stmt, args []any, out map[string]string) error {
	rows, err := get.QueryContext(ctx, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var id, issue string
		if err := rows.Scan(&id, &issue); err != nil {
			return err
		}
		out[id] = issue
	}
	return rows.Err()
}

// MarkArticlesSent records that the articles went out in the issue. An
// article already marked keeps its first issue.
func (s *Store) MarkArticlesSent(ctx context.Context, issueID string, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	now := s.stamp()
	err := s.tx(ctx, func(tx *sql.Tx) error {
		st, err := tx.PrepareContext(ctx, s.q.markSent)
		if err != nil {
			return err
		}
		defer st.Close()
		for _, id := range ids {
			if _, err := st.ExecContext(ctx, id, now, issueID, now); err != nil {
				return fmt.Errorf("article %s: %w", id, err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("mark articles of issue %s sent: %w", issueID, err)
	}
	return nil
}
