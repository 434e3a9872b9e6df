package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/digest/digest/internal/ledger"
)

// SaveIssueContent stores what delivery renders the issue's messages from,
// replacing an earlier copy (a rebuild before delivery started). The issue
// record must exist (SaveIssue); deleting it deletes its content.
func (s *Store) SaveIssueContent(ctx context.Context, id string, c ledger.IssueContent) error {
	tmpl, err := json.Marshal(c.Templates)
	if err != nil {
		return fmt.Errorf("save issue %s: templates: %w", id, err)
	}
	topics, err := json.Marshal(c.Topics)
	if err != nil {
		return fmt.Errorf("save issue %s: topics: %w", id, err)
	}
	if _, err := s.db.ExecContext(ctx, s.q.putIssueContent, id, string(c.Issue), string(tmpl), string(topics)); err != nil {
		return fmt.Errorf("save issue %s: %w", id, err)
	}
	return nil
}

// IssueContent returns what SaveIssueContent stored for the issue, or an
// error wrapping ledger.ErrNotFound.
func (s *Store) IssueContent(ctx context.Context, id string) (ledger.IssueContent, error) {
	var iss, tmpl, topics string
	err := s.db.QueryRowContext(ctx, s.q.issueContent, id).Scan(&iss, &tmpl, &topics)
	if errors.Is(err, sql.ErrNoRows) {
		return ledger.IssueContent{}, fmt.Errorf("issue %s: content: %w", id, ledger.ErrNotFound)
	}
	if err != nil {
		return ledger.IssueContent{}, fmt.Errorf("issue %s: content: %w", id, err)
	}
	c := ledger.IssueContent{Issue: []byte(iss)}
	if err := json.Unmarshal([]byte(tmpl), &c.Templates); err != nil {
		return ledger.IssueContent{}, fmt.Errorf("issue %s: templates: %w", id, err)
	}
	if err := json.Unmarshal([]byte(topics), &c.Topics); err != nil {
		return ledger.IssueContent{}, fmt.Errorf("issue %s: topics: %w", id, err)
	}
	return c, nil
}

// IssueIDs lists every built issue's ID, oldest first.
func (s *Store) IssueIDs(ctx context.Context) ([]string, error) {
	return s.queryIDs(ctx, "issues", s.q.issueIDs)
}

// queryIDs runs a query of one text column and returns its values; what
// names them in errors.
func (s *Store) queryIDs(ctx context.Context, what, query string, args ...any) ([]string, error) {
	rows, err := s.db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return ids, nil
}
