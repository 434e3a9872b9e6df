package store

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"slices"
	"time"

	"github.com/digest/digest/internal/ledger"
	"github.com/digest/digest/internal/subscriber"
)

// The reply stored on a ledger row whose subscriber left before its turn:
// "subscriber unsubscribed before delivery", "subscriber bounced before
// delivery".
const (
	inactiveReplyPrefix = "subscriber "
	inactiveReplySuffix = " before delivery"
)

// claimPostgres is Run.Claim on Postgres, inside tx: each round is one
// statement that takes up to the missing number of pending rows nobody else
// holds, moves those of active subscribers to sending under owner and lease,
// and settles the others as skipped (returned with Gone set). Rows whose
// next attempt is after due are not taken. It stops when it has limit rows
// or nothing is left.
func (s *Store) claimPostgres(ctx context.Context, tx *sql.Tx, issueID string, limit int, now time.Time,
	owner string, lease, due time.Time) ([]ledger.Recipient, error) {
	var out []ledger.Recipient
	for len(out) < limit {
		rows, err := tx.QueryContext(ctx, s.q.claim, owner, lease, inactiveReplyPrefix, inactiveReplySuffix, now,
			issueID, due, limit-len(out))
		if err != nil {
			return nil, err
		}
		taken := 0
		for rows.Next() {
			taken++
			r := ledger.Recipient{IssueID: issueID}
			var status, topics string
			if err := rows.Scan(&r.SubscriberID, &r.Email, &r.Name, &status, &topics, &r.Attempts); err != nil {
				rows.Close()
				return nil, err
			}
			r.Topics = subscriber.ParseStoredTopics(topics)
			if status != subscriber.StatusActive {
				r.Gone = status
			}
			out = append(out, r)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
		if taken == 0 {
			break
		}
	}
	// RETURNING has no order; callers get subscriber id order, as on SQLite.
	slices.SortFunc(out, func(a, b ledger.Recipient) int { return cmp.Compare(a.SubscriberID, b.SubscriberID) })
	return out, nil
}

// recordPostgres is Run.Record on Postgres, for the run owner, inside tx:
// one statement for the
// outcomes and one for the bounces per run of outcomes in which no
// subscriber repeats (an UPDATE … FROM applies one source row per target
// row, so a repeat starts a new statement and outcomes apply in order).
func (s *Store) recordPostgres(ctx context.Context, tx execer, issueID string, outs []ledger.Outcome, now, lnow time.Time,
	owner string) error {
	for len(outs) > 0 {
		seen := make(map[int64]bool, len(outs))
		n := 0
		for n < len(outs) && !seen[outs[n].SubscriberID] {
			seen[outs[n].SubscriberID] = true
			n++
		}
		chunk := outs[:n]
		outs = outs[n:]

		var (
			ids                    = make([]int64, len(chunk))
			statuses, enh, replies = make([]string, len(chunk)), make([]string, len(chunk)), make([]string, len(chunk))
			attempts, codes        = make([]int32, len(chunk)), make([]int32, len(chunk))
			ats                    = make([]time.Time, len(chunk))
			retries                = make([]time.Time, len(chunk))
			bouncedIDs             []int64
			bouncedAts             []time.Time
		)
		for i, o := range chunk {
			at := now
			if !o.At.IsZero() {
				at = o.At.UTC()
			}
			ids[i], statuses[i], attempts[i], codes[i] = o.SubscriberID, o.Status, int32(o.Attempts), int32(o.Code)
			enh[i], replies[i], ats[i], retries[i] = o.Enhanced, o.Reply, at, lnow.Add(max(o.RetryAfter, 0))
			if o.Bounced {
				bouncedIDs = append(bouncedIDs, o.SubscriberID)
				bouncedAts = append(bouncedAts, at)
			}
		}
		if _, err := tx.ExecContext(ctx, s.q.record, owner, ids, statuses, attempts, codes, enh, replies, ats, retries, issueID, ids, owner); err != nil {
			return fmt.Errorf("subscribers %d…%d: %w", ids[0], ids[len(ids)-1], err)
		}
		if len(bouncedIDs) > 0 {
			if _, err := tx.ExecContext(ctx, s.q.bounceSubscriber, bouncedIDs, bouncedAts); err != nil {
				return fmt.Errorf("bounce subscribers: %w", err)
			}
		}
	}
	return nil
}

// execer is a *sql.Tx or the *sql.DB.
type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// oneStatement reports whether recordPostgres stores outs in a single
// statement (no subscriber twice, no bounce). A single statement is atomic
// by itself, so Run.Record sends it without BEGIN and COMMIT: one round
// trip to the server per Record instead of three, and every connection of
// the run waits for that Record before its next message may be accepted.
// It is as durable: the server flushes its commit before it answers.
func oneStatement(outs []ledger.Outcome) bool {
	seen := make(map[int64]bool, len(outs))
	for _, o := range outs {
		if o.Bounced || seen[o.SubscriberID] {
			return false
		}
		seen[o.SubscriberID] = true
	}
	return true
}

// parallelRecordsPostgres is Run.ParallelRecords on Postgres: each Record
// in flight holds one of the process's 8 pooled connections, which leaves
// room for the claims and the lease renewal.
const parallelRecordsPostgres = 4

// ParallelRecords is how many Record calls of the run the delivery engine
// may keep in flight: on Postgres several (concurrent commits share the
// server's WAL flush, so an outcome waits for its own commit only); on
// SQLite one, as its transactions take the one write lock in turn anyway.
func (r *Run) ParallelRecords() int {
	if r.s.d == dialectPostgres {
		return parallelRecordsPostgres
	}
	return 1
}
