package store

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/digest/digest/internal/ledger"
	"github.com/digest/digest/internal/subscriber"
)

// Enqueue adds a pending ledger row for every active subscriber that has none
// yet for the issue, in the database (the list is never loaded), and returns
// how many it added. It also puts rows left in sending by a crashed run back
// to pending: call it once at the start of a run, not while another worker
// is sending the same issue. It returns ErrNotFound for an unknown issue.
func (s *Store) Enqueue(ctx context.Context, issueID string) (added int, err error) {
	now := s.stamp()
	err = s.tx(ctx, func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, s.q.issueExists, issueID).Scan(&n); err != nil {
			return err
		}
		if n == 0 {
			return ErrNotFound
		}
		if _, err := tx.ExecContext(ctx, s.q.requeueSending, now, issueID); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, s.q.enqueue, issueID, now, now)
		if err != nil {
			return err
		}
		rows, err := res.RowsAffected()
		added = int(rows)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("enqueue issue %s: %w", issueID, err)
	}
	return added, nil
}

// Claim moves up to limit pending rows of the issue to sending, in subscriber
// id order, and returns them; no two calls return the same row. A pending row
// whose subscriber is no longer active (it unsubscribed or bounced after
// Enqueue) is not returned but marked failed with the reply "subscriber
// unsubscribed before delivery" (or "bounced"), so that it is settled and
// shows in Failures. An empty result means nothing is pending.
//
// On SQLite the immediate transaction holds the write lock while it selects
// and marks rows; on Postgres one UPDATE … WHERE (…) IN (SELECT … FOR UPDATE
// SKIP LOCKED) RETURNING does both, and concurrent claimers skip each
// other's rows instead of waiting (see claimPostgres).
func (s *Store) Claim(ctx context.Context, issueID string, limit int) ([]ledger.Recipient, error) {
	if limit <= 0 {
		return nil, fmt.Errorf("claim issue %s: limit %d, want > 0", issueID, limit)
	}
	type candidate struct {
		r      ledger.Recipient
		status string
	}
	now := s.stamp()
	var out []ledger.Recipient
	err := s.tx(ctx, func(tx *sql.Tx) error {
		out = out[:0]
		if s.d == dialectPostgres {
			var err error
			out, err = s.claimPostgres(ctx, tx, issueID, limit, now)
			return err
		}
		mark, err := tx.PrepareContext(ctx, s.q.markSending)
		if err != nil {
			return err
		}
		defer mark.Close()
		var after int64
		for len(out) < limit {
			rows, err := tx.QueryContext(ctx, s.q.pendingBatch, issueID, after, limit-len(out))
			if err != nil {
				return err
			}
			var batch []candidate
			for rows.Next() {
				c := candidate{r: ledger.Recipient{IssueID: issueID}}
				if err := rows.Scan(&c.r.SubscriberID, &c.r.Email, &c.r.Name, &c.status, &c.r.Attempts); err != nil {
					rows.Close()
					return err
				}
				batch = append(batch, c)
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return err
			}
			if len(batch) == 0 {
				return nil
			}
			for _, c := range batch {
				after = c.r.SubscriberID
				if c.status != subscriber.StatusActive {
					reply := inactiveReplyPrefix + c.status + inactiveReplySuffix
					if _, err := tx.ExecContext(ctx, s.q.skipInactive, reply, now, issueID, c.r.SubscriberID); err != nil {
						return err
					}
					continue
				}
				if _, err := mark.ExecContext(ctx, now, issueID, c.r.SubscriberID); err != nil {
					return err
				}
				out = append(out, c.r)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("claim issue %s: %w", issueID, err)
	}
	return out, nil
}

// Record stores a batch of outcomes in one transaction. Sent sets sent_at,
// Failed is final, Pending (a temporary failure) puts the row back in the
// queue; each stores the reply and raises attempts to Outcome.Attempts, or by
// one when that is lower. Bounced also marks an active subscriber bounced.
// A row already sent or failed is left as it is, so a repeated outcome is
// harmless.
func (s *Store) Record(ctx context.Context, issueID string, outs []ledger.Outcome) error {
	if len(outs) == 0 {
		return nil
	}
	for _, o := range outs {
		switch o.Status {
		case ledger.Sent, ledger.Failed, ledger.Pending:
		default:
			return fmt.Errorf("record issue %s: subscriber %d: outcome status %q, want sent, failed or pending",
				issueID, o.SubscriberID, o.Status)
		}
	}
	now := s.stamp()
	err := s.tx(ctx, func(tx *sql.Tx) error {
		if s.d == dialectPostgres {
			return s.recordPostgres(ctx, tx, issueID, outs, now)
		}
		rec, err := tx.PrepareContext(ctx, s.q.record)
		if err != nil {
			return err
		}
		defer rec.Close()
		var bounce *sql.Stmt
		for _, o := range outs {
			at := now
			if !o.At.IsZero() {
				at = o.At.UTC()
			}
			if _, err := rec.ExecContext(ctx, o.Status, o.Attempts, o.Code, o.Enhanced, o.Reply,
				at, o.Status, at, issueID, o.SubscriberID); err != nil {
				return fmt.Errorf("subscriber %d: %w", o.SubscriberID, err)
			}
			if !o.Bounced {
				continue
			}
			if bounce == nil {
				if bounce, err = tx.PrepareContext(ctx, s.q.bounceSubscriber); err != nil {
					return err
				}
				defer bounce.Close()
			}
			if _, err := bounce.ExecContext(ctx, at, o.SubscriberID); err != nil {
				return fmt.Errorf("bounce subscriber %d: %w", o.SubscriberID, err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("record issue %s: %w", issueID, err)
	}
	return nil
}

// Release puts claimed rows that were not attempted back to pending (on a
// graceful stop). Rows not in sending are left alone.
func (s *Store) Release(ctx context.Context, issueID string, subscriberIDs []int64) error {
	if len(subscriberIDs) == 0 {
		return nil
	}
	now := s.stamp()
	err := s.tx(ctx, func(tx *sql.Tx) error {
		if s.d == dialectPostgres {
			_, err := tx.ExecContext(ctx, s.q.release, now, issueID, subscriberIDs)
			return err
		}
		st, err := tx.PrepareContext(ctx, s.q.release)
		if err != nil {
			return err
		}
		defer st.Close()
		for _, id := range subscriberIDs {
			if _, err := st.ExecContext(ctx, now, issueID, id); err != nil {
				return fmt.Errorf("subscriber %d: %w", id, err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("release issue %s: %w", issueID, err)
	}
	return nil
}

// Counts returns the number of the issue's ledger rows in each status (all
// zero for an unknown or not yet enqueued issue).
func (s *Store) Counts(ctx context.Context, issueID string) (ledger.Counts, error) {
	var c ledger.Counts
	rows, err := s.db.QueryContext(ctx, s.q.counts, issueID)
	if err != nil {
		return c, fmt.Errorf("counts of issue %s: %w", issueID, err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			status string
			n      int
		)
		if err := rows.Scan(&status, &n); err != nil {
			return c, fmt.Errorf("counts of issue %s: %w", issueID, err)
		}
		switch status {
		case ledger.Pending:
			c.Pending = n
		case ledger.Sending:
			c.Sending = n
		case ledger.Sent:
			c.Sent = n
		case ledger.Failed:
			c.Failed = n
		}
	}
	if err := rows.Err(); err != nil {
		return c, fmt.Errorf("counts of issue %s: %w", issueID, err)
	}
	return c, nil
}

// Failures returns up to limit failed recipients of the issue in subscriber
// id order; limit <= 0 means all.
func (s *Store) Failures(ctx context.Context, issueID string, limit int) ([]ledger.Failure, error) {
	var max any = limit
	if limit <= 0 {
		max = s.d.noLimit()
	}
	rows, err := s.db.QueryContext(ctx, s.q.failures, issueID, max)
	if err != nil {
		return nil, fmt.Errorf("failures of issue %s: %w", issueID, err)
	}
	defer rows.Close()
	var out []ledger.Failure
	for rows.Next() {
		var f ledger.Failure
		if err := rows.Scan(&f.Email, &f.Attempts, &f.Code, &f.Enhanced, &f.Reply); err != nil {
			return nil, fmt.Errorf("failures of issue %s: %w", issueID, err)
		}
		out = append(out, f)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("failures of issue %s: %w", issueID, err)
	}
	return out, nil
}
