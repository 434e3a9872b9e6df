package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/digest/digest/internal/ledger"
)

// Issue is the record of one built issue.
type Issue = ledger.Issue

func scanIssue(r scanner) (Issue, error) {
	var (
		is        Issue
		completed sql.NullTime
	)
	if err := r.Scan(&is.ID, &is.Number, &is.BuiltAt, &is.Articles, &completed); err != nil {
		return Issue{}, err
	}
	is.BuiltAt = is.BuiltAt.UTC()
	if completed.Valid {
		is.CompletedAt = completed.Time.UTC()
	}
	return is, nil
}

// SaveIssue records an issue if its ID is new, giving it the next number when
// its Number is 0 (and BuiltAt = now when zero), and returns the stored row.
// For an ID already stored it changes nothing and returns the stored row, so
// that rebuilding an issue keeps its number.
func (s *Store) SaveIssue(ctx context.Context, is Issue) (Issue, error) {
	if is.ID == "" {
		return Issue{}, errors.New("save issue: empty id")
	}
	var saved Issue
	err := s.tx(ctx, func(tx *sql.Tx) error {
		if err := s.serialize(ctx, tx, "issues"); err != nil {
			return err
		}
		var err error
		saved, err = scanIssue(tx.QueryRowContext(ctx, s.q.issueByID, is.ID))
		if err == nil || !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		saved = is
		if saved.Number == 0 {
			if err := tx.QueryRowContext(ctx, s.q.nextNumber).Scan(&saved.Number); err != nil {
				return err
			}
		}
		if saved.BuiltAt.IsZero() {
			saved.BuiltAt = s.stamp()
		}
		saved.BuiltAt = saved.BuiltAt.UTC()
		saved.CompletedAt = utc(saved.CompletedAt)
		_, err = tx.ExecContext(ctx, s.q.insertIssue, saved.ID, saved.Number,
			saved.BuiltAt, saved.Articles, nullTime(saved.CompletedAt))
		return err
	})
	if err != nil {
		return Issue{}, fmt.Errorf("save issue %s: %w", is.ID, err)
	}
	return saved, nil
}

// GetIssue returns the issue with this ID, or ledger.ErrNotFound.
func (s *Store) GetIssue(ctx context.Context, id string) (Issue, error) {
	is, err := scanIssue(s.db.QueryRowContext(ctx, s.q.issueByID, id))
	if errors.Is(err, sql.ErrNoRows) {
		return Issue{}, fmt.Errorf("get issue %s: %w", id, ledger.ErrNotFound)
	}
	if err != nil {
		return Issue{}, fmt.Errorf("get issue %s: %w", id, err)
	}
	return is, nil
}

// LatestIssue returns the issue with the highest number, or ledger.ErrNotFound when
// none was built yet.
func (s *Store) LatestIssue(ctx context.Context) (Issue, error) {
	is, err := scanIssue(s.db.QueryRowContext(ctx, s.q.latestIssue))
	if errors.Is(err, sql.ErrNoRows) {
		return Issue{}, fmt.Errorf("latest issue: %w", ledger.ErrNotFound)
	}
	if err != nil {
		return Issue{}, fmt.Errorf("latest issue: %w", err)
	}
	return is, nil
}

// IncompleteIssues returns the ids of up to limit issues whose delivery is
// not complete (or never started), the latest first.
func (s *Store) IncompleteIssues(ctx context.Context, limit int) ([]string, error) {
	return s.queryIDs(ctx, "incomplete issues", s.q.incompleteIssues, limit)
}

// DeleteUnsentIssue deletes the record of an issue whose delivery never
// started (it has no ledger row), so that a later build replaces it. It
// returns ledger.ErrNotFound when there is no such issue, or its delivery started.
func (s *Store) DeleteUnsentIssue(ctx context.Context, id string) error {
	res, err := s.db.ExecContext(ctx, s.q.deleteUnsentIssue, id)
	if err != nil {
		return fmt.Errorf("delete issue %s: %w", id, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("delete issue %s: %w", id, err)
	} else if n == 0 {
		return fmt.Errorf("delete issue %s: %w", id, ledger.ErrNotFound)
	}
	return nil
}

// MarkIssueComplete records that delivery of the issue finished at at. A
// second call keeps the first time. It returns ledger.ErrNotFound for an unknown ID.
func (s *Store) MarkIssueComplete(ctx context.Context, id string, at time.Time) error {
	if at.IsZero() {
		at = s.stamp()
	}
	res, err := s.db.ExecContext(ctx, s.q.completeIssue, at.UTC(), id)
	if err != nil {
		return fmt.Errorf("complete issue %s: %w", id, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("complete issue %s: %w", id, err)
	} else if n == 0 {
		return fmt.Errorf("complete issue %s: %w", id, ledger.ErrNotFound)
	}
	return nil
}

// RecentIssues returns the n latest issues by id, newest first: ids sort
// in the order of the times they name, a date or a date and time.
func (s *Store) RecentIssues(ctx context.Context, n int) ([]Issue, error) {
	rows, err := s.db.QueryContext(ctx, s.q.recentIssues, n)
	if err != nil {
		return nil, fmt.Errorf("recent issues: %w", err)
	}
	defer rows.Close()
	var out []Issue
	for rows.Next() {
		is, err := scanIssue(rows)
		if err != nil {
			return nil, fmt.Errorf("recent issues: %w", err)
		}
		out = append(out, is)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("recent issues: %w", err)
	}
	return out, nil
}
