package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/digest/digest/internal/ledger"
	"github.com/digest/digest/internal/subscriber"
)

// Enqueue adds a pending ledger row for every active subscriber that has none
// yet for the issue, in the database (the list is never loaded), and returns
// how many it added. It never touches rows that exist: a row in sending
// belongs to its owner until the owner's lease expires (see [Run.Claim]).
// It returns ledger.ErrNotFound for an unknown issue.
func (s *Store) Enqueue(ctx context.Context, issueID string) (added int, err error) {
	now := s.stamp()
	err = s.tx(ctx, func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, s.q.issueExists, issueID).Scan(&n); err != nil {
			return err
		}
		if n == 0 {
			return ledger.ErrNotFound
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
		case ledger.Skipped:
			c.Skipped = n
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

// Claim recovers the issue's rows whose lease expired (their owner died or
// stalled: they go back to pending), then moves up to limit pending rows to
// sending under this run's name and lease, in subscriber id order, and
// returns them (a row waiting for its next attempt, see [Run.Record], is not
// taken before its time); no two calls, in this process or another, return the same
// row while its lease lasts. A pending row whose subscriber is no longer
// active (it unsubscribed or bounced after Enqueue) is settled as skipped
// with the reply "subscriber unsubscribed before delivery" (or "bounced")
// and returned with Gone set, so that the caller counts it and sends
// nothing: leaving is not a failed delivery. An empty result
// means nothing is claimable now; [Run.HeldByOthers] tells whether other
// runs still hold rows.
//
// On SQLite the immediate transaction holds the write lock while it selects
// and marks rows; on Postgres one UPDATE … WHERE (…) IN (SELECT … FOR UPDATE
// SKIP LOCKED) RETURNING does both, and concurrent claimers skip each
// other's rows instead of waiting (see claimPostgres).
func (r *Run) Claim(ctx context.Context, issueID string, limit int) ([]ledger.Recipient, error) {
	if limit <= 0 {
		return nil, fmt.Errorf("claim issue %s: limit %d, want > 0", issueID, limit)
	}
	s := r.s
	type candidate struct {
		r      ledger.Recipient
		status string
		topics string
	}
	var stmts []*sql.Stmt
	if s.d == dialectSQLite {
		var err error
		if stmts, err = s.prepared(ctx, s.q.recoverExpired, s.q.pendingBatch, s.q.markSending, s.q.skipInactive); err != nil {
			return nil, fmt.Errorf("claim issue %s: %w", issueID, err)
		}
	}
	now := s.stamp()
	var out []ledger.Recipient
	err := s.tx(ctx, func(tx *sql.Tx) error {
		out = out[:0]
		lnow, err := s.leaseTime(ctx, tx)
		if err != nil {
			return err
		}
		lease := lnow.Add(r.ttl)
		if s.d == dialectPostgres {
			// A renewal is given up after a third of its lease (package
			// lease): one still open then never counts.
			if _, err := tx.ExecContext(ctx, s.q.recoverExpired, now, issueID, lnow, lnow.Add(-r.ttl/3-time.Second)); err != nil {
				return err
			}
			var err error
			out, err = s.claimPostgres(ctx, tx, issueID, limit, now, r.info.ID, lease, lnow)
			return err
		}
		recoverExpired, pendingBatch := tx.StmtContext(ctx, stmts[0]), tx.StmtContext(ctx, stmts[1])
		mark, skipInactive := tx.StmtContext(ctx, stmts[2]), tx.StmtContext(ctx, stmts[3])
		if _, err := recoverExpired.ExecContext(ctx, now, issueID, lnow); err != nil {
			return err
		}
		var after int64
		for len(out) < limit {
			rows, err := pendingBatch.QueryContext(ctx, issueID, after, lnow, limit-len(out))
			if err != nil {
				return err
			}
			var batch []candidate
			for rows.Next() {
				c := candidate{r: ledger.Recipient{IssueID: issueID}}
				if err := rows.Scan(&c.r.SubscriberID, &c.r.Email, &c.r.Name, &c.status, &c.topics, &c.r.Attempts); err != nil {
					rows.Close()
					return err
				}
				c.r.Topics = subscriber.ParseStoredTopics(c.topics)
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
					if _, err := skipInactive.ExecContext(ctx, reply, now, issueID, c.r.SubscriberID); err != nil {
						return err
					}
					c.r.Gone = c.status
					out = append(out, c.r)
					continue
				}
				if _, err := mark.ExecContext(ctx, r.info.ID, lease, now, issueID, c.r.SubscriberID); err != nil {
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

// HeldByOthers returns how many of the issue's rows other runs hold in
// sending (live or not yet recovered).
func (r *Run) HeldByOthers(ctx context.Context, issueID string) (int, error) {
	var n int
	if err := r.s.db.QueryRowContext(ctx, r.s.q.heldByOthers, issueID, r.info.ID).Scan(&n); err != nil {
		return 0, fmt.Errorf("rows of issue %s held by other runs: %w", issueID, err)
	}
	return n, nil
}

// Record stores a batch of outcomes in one transaction. Sent sets sent_at,
// Failed and Skipped are final, Pending (a temporary failure) puts the row
// back in the queue, claimable once Outcome.RetryAfter has passed on the
// lease clock (real time); each stores the reply and raises attempts to
// Outcome.Attempts, or by one when that is lower. Bounced also marks an
// active subscriber bounced. A row already settled is left as it is, so a
// repeated outcome is harmless; an outcome other than Sent for a row this
// run no longer owns (its lease expired and another run claimed it) is
// ignored.
func (r *Run) Record(ctx context.Context, issueID string, outs []ledger.Outcome) error {
	if len(outs) == 0 {
		return nil
	}
	for _, o := range outs {
		switch o.Status {
		case ledger.Sent, ledger.Failed, ledger.Pending, ledger.Skipped:
		default:
			return fmt.Errorf("record issue %s: subscriber %d: outcome status %q, want sent, failed, skipped or pending",
				issueID, o.SubscriberID, o.Status)
		}
	}
	s := r.s
	now := s.stamp()
	pending := slices.ContainsFunc(outs, func(o ledger.Outcome) bool { return o.Status == ledger.Pending })
	if s.d == dialectPostgres && oneStatement(outs) && !pending {
		// No retry time to write: the lease clock is not needed.
		if err := s.recordPostgres(ctx, s.db, issueID, outs, now, time.Time{}, r.info.ID); err != nil {
			return fmt.Errorf("record issue %s: %w", issueID, err)
		}
		return nil
	}
	var stmts []*sql.Stmt
	if s.d == dialectSQLite {
		var err error
		if stmts, err = s.prepared(ctx, s.q.record, s.q.bounceSubscriber); err != nil {
			return fmt.Errorf("record issue %s: %w", issueID, err)
		}
	}
	err := s.tx(ctx, func(tx *sql.Tx) error {
		// Retry times are on the lease clock (the database's on Postgres),
		// which claims compare them with; only pending outcomes need it.
		var lnow time.Time
		if pending {
			var err error
			if lnow, err = s.leaseTime(ctx, tx); err != nil {
				return err
			}
		}
		if s.d == dialectPostgres {
			return s.recordPostgres(ctx, tx, issueID, outs, now, lnow, r.info.ID)
		}
		rec := tx.StmtContext(ctx, stmts[0])
		var bounce *sql.Stmt
		for _, o := range outs {
			at := now
			if !o.At.IsZero() {
				at = o.At.UTC()
			}
			if _, err := rec.ExecContext(ctx, o.Status, o.Attempts, o.Code, o.Enhanced, o.Reply,
				at, o.Status, at, o.Status, r.info.ID, lnow.Add(max(o.RetryAfter, 0)), issueID, o.SubscriberID, r.info.ID, o.Status); err != nil {
				return fmt.Errorf("subscriber %d: %w", o.SubscriberID, err)
			}
			if !o.Bounced {
				continue
			}
			if bounce == nil {
				bounce = tx.StmtContext(ctx, stmts[1])
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

// Release puts rows this run claimed but did not attempt back to pending
// (on a graceful stop). Rows not in sending, or held by another run, are
// left alone.
func (r *Run) Release(ctx context.Context, issueID string, subscriberIDs []int64) error {
	if len(subscriberIDs) == 0 {
		return nil
	}
	s := r.s
	var stmts []*sql.Stmt
	if s.d == dialectSQLite {
		var err error
		if stmts, err = s.prepared(ctx, s.q.release); err != nil {
			return fmt.Errorf("release issue %s: %w", issueID, err)
		}
	}
	now := s.stamp()
	err := s.tx(ctx, func(tx *sql.Tx) error {
		if s.d == dialectPostgres {
			_, err := tx.ExecContext(ctx, s.q.release, now, issueID, subscriberIDs, r.info.ID)
			return err
		}
		st := tx.StmtContext(ctx, stmts[0])
		for _, id := range subscriberIDs {
			if _, err := st.ExecContext(ctx, now, issueID, id, r.info.ID); err != nil {
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

// BusyError is returned by [Store.BeginRun] when another live run is
// delivering and the new run did not ask to join.
type BusyError = ledger.BusyError

// Run is one registered delivery run: the owner of the rows it claims. It
// implements the delivery engine's ledger (Claim, Record, Release) under its
// own name, and must be renewed (Renew) well within its lease while it
// works, and ended (End) when it stops.
type Run struct {
	s    *Store
	info ledger.RunInfo
	ttl  time.Duration
	// tookOver: the dead runs ended when this one registered.
	tookOver []ledger.RunInfo
}

// Info describes the run as registered.
func (r *Run) Info() ledger.RunInfo { return r.info }

// BeginRun registers a run of info.IssueID (info.ID, Host and PID name it;
// StartedAt, SeenAt and Expires are set here) under a lease of ttl. Unless
// info.Worker is set, it refuses with a *BusyError while any other run is
// live, whatever issue it delivers: one list, one relay. A worker joins the
// live runs instead. The check and the registration are one transaction, so
// two runs starting at once cannot both pass.
func (s *Store) BeginRun(ctx context.Context, info ledger.RunInfo, ttl time.Duration) (*Run, error) {
	if info.ID == "" || info.IssueID == "" || ttl <= 0 {
		return nil, fmt.Errorf("begin run: id %q, issue %q and a lease (%s) are required", info.ID, info.IssueID, ttl)
	}
	key, err := s.aliveKey(ctx, info.Process)
	if err != nil {
		return nil, fmt.Errorf("begin run %s: %w", info.ID, err)
	}
	var busy, dead []ledger.RunInfo
	err = s.tx(ctx, func(tx *sql.Tx) error {
		busy = nil
		// One registration at a time (Postgres; SQLite's immediate
		// transaction already is), so that two runs starting at once
		// cannot both see no live run.
		if err := s.serialize(ctx, tx, "runs"); err != nil {
			return err
		}
		lnow, err := s.leaseTime(ctx, tx)
		if err != nil {
			return err
		}
		info.StartedAt, info.SeenAt, info.Expires = lnow, lnow, lnow.Add(ttl)
		if dead, err = s.endDeadRuns(ctx, tx, lnow); err != nil {
			return err
		}
		// Dead runs are kept a day, for status; then forgotten.
		if _, err := tx.ExecContext(ctx, s.q.forgetOldRuns, lnow.Add(-24*time.Hour)); err != nil {
			return err
		}
		live, err := queryRuns(ctx, tx, s.q.liveRuns, lnow)
		if err != nil {
			return err
		}
		if len(live) > 0 && !info.Worker {
			busy = live
			return nil
		}
		_, err = tx.ExecContext(ctx, s.q.insertRun, info.ID, info.Host, info.PID, info.IssueID, info.Worker,
			info.StartedAt, info.SeenAt, info.Expires, key)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("begin run %s: %w", info.ID, err)
	}
	if busy != nil {
		be := &BusyError{Runs: busy}
		if err := s.addProgress(ctx, be.Runs); err != nil {
			return nil, err
		}
		if be.Counts, err = s.Counts(ctx, busy[0].IssueID); err != nil {
			return nil, err
		}
		return nil, be
	}
	info.Process = key
	return &Run{s: s, info: info, ttl: ttl, tookOver: dead}, nil
}

// TookOver lists the runs whose process was gone (see liveness.go) and
// whose rows this run's registration put back to pending.
func (r *Run) TookOver() []ledger.RunInfo { return r.tookOver }

// Renew extends the run's lease, and that of every row it holds, by its
// length from now, and returns how many runs are live (this one included),
// so that the caller can share the list's rate among them. It returns
// ledger.ErrLeaseLost when the lease had expired before this call.
func (r *Run) Renew(ctx context.Context) (live int, err error) {
	s := r.s
	if err := s.stillAlive(ctx, r.info.Process); errors.Is(err, errAliveLost) {
		return 0, fmt.Errorf("renew run %s: %w: %w", r.info.ID, ledger.ErrLeaseLost, err)
	} else if err != nil {
		return 0, fmt.Errorf("renew run %s: %w", r.info.ID, err)
	}
	var lnow, lease time.Time
	err = s.tx(ctx, func(tx *sql.Tx) error {
		var err error
		if lnow, err = s.leaseTime(ctx, tx); err != nil {
			return err
		}
		lease = lnow.Add(r.ttl)
		var until time.Time
		if err := tx.QueryRowContext(ctx, s.q.runLease, r.info.ID).Scan(&until); errors.Is(err, sql.ErrNoRows) {
			return ledger.ErrLeaseLost
		} else if err != nil {
			return err
		}
		if !lnow.Before(until) {
			return ledger.ErrLeaseLost
		}
		if _, err := tx.ExecContext(ctx, s.q.renewRun, lnow, lease, r.info.ID); err != nil {
			return err
		}
		if s.q.renewRows != "" { // Postgres: rows follow the run's lease
			if _, err := tx.ExecContext(ctx, s.q.renewRows, lease, r.info.ID); err != nil {
				return err
			}
		}
		return tx.QueryRowContext(ctx, s.q.countLiveRuns, lnow).Scan(&live)
	})
	if err != nil {
		return 0, fmt.Errorf("renew run %s: %w", r.info.ID, err)
	}
	r.info.SeenAt, r.info.Expires = lnow, lease
	return live, nil
}

// End marks the run finished: its lease ends now and any row it still holds
// goes back to pending (normally none: the engine releases them). Its row is
// kept for a day, for status.
func (r *Run) End(ctx context.Context) error {
	s := r.s
	err := s.tx(ctx, func(tx *sql.Tx) error {
		lnow, err := s.leaseTime(ctx, tx)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, s.q.releaseRunRows, s.stamp(), r.info.ID); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, s.q.endRun, lnow, lnow, r.info.ID)
		return err
	})
	if err != nil {
		return fmt.Errorf("end run %s: %w", r.info.ID, err)
	}
	return nil
}

// LiveRuns returns the runs whose lease has not expired, oldest first, with
// their progress on their issue.
//
// Runs whose process is provably gone are ended first (and their rows put
// back to pending): they are not live, whatever their lease says.
func (s *Store) LiveRuns(ctx context.Context) ([]ledger.RunInfo, error) {
	var runs []ledger.RunInfo
	err := s.tx(ctx, func(tx *sql.Tx) error {
		lnow, err := s.leaseTime(ctx, tx)
		if err != nil {
			return err
		}
		if _, err := s.endDeadRuns(ctx, tx, lnow); err != nil {
			return err
		}
		runs, err = queryRuns(ctx, tx, s.q.liveRuns, lnow)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("live runs: %w", err)
	}
	return runs, s.addProgress(ctx, runs)
}

// IssueRuns returns every run of the issue still on record (live ones and
// those that ended or died in the last day), oldest first, with progress.
func (s *Store) IssueRuns(ctx context.Context, issueID string) ([]ledger.RunInfo, error) {
	runs, err := queryRuns(ctx, s.db, s.q.issueRuns, issueID)
	if err != nil {
		return nil, fmt.Errorf("runs of issue %s: %w", issueID, err)
	}
	return runs, s.addProgress(ctx, runs)
}

type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

func queryRuns(ctx context.Context, q querier, query string, arg any) ([]ledger.RunInfo, error) {
	rows, err := q.QueryContext(ctx, query, arg)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []ledger.RunInfo
	for rows.Next() {
		var r ledger.RunInfo
		if err := rows.Scan(&r.ID, &r.Host, &r.PID, &r.IssueID, &r.Worker, &r.StartedAt, &r.SeenAt, &r.Expires, &r.Process); err != nil {
			return nil, err
		}
		r.StartedAt, r.SeenAt, r.Expires = r.StartedAt.UTC(), r.SeenAt.UTC(), r.Expires.UTC()
		out = append(out, r)
	}
	return out, rows.Err()
}

// addProgress fills each run's Claimed and Sent from the ledger.
func (s *Store) addProgress(ctx context.Context, runs []ledger.RunInfo) error {
	byIssue := map[string]map[string][2]int{}
	for i := range runs {
		id := runs[i].IssueID
		m, ok := byIssue[id]
		if !ok {
			var err error
			if m, err = s.ownerCounts(ctx, id); err != nil {
				return err
			}
			byIssue[id] = m
		}
		c := m[runs[i].ID]
		runs[i].Claimed, runs[i].Sent = c[0], c[1]
	}
	return nil
}

// ownerCounts returns, per owner, the issue's rows in sending and sent.
func (s *Store) ownerCounts(ctx context.Context, issueID string) (map[string][2]int, error) {
	rows, err := s.db.QueryContext(ctx, s.q.ownerCounts, issueID)
	if err != nil {
		return nil, fmt.Errorf("progress of runs of issue %s: %w", issueID, err)
	}
	defer rows.Close()
	out := map[string][2]int{}
	for rows.Next() {
		var (
			owner, status string
			n             int
		)
		if err := rows.Scan(&owner, &status, &n); err != nil {
			return nil, err
		}
		c := out[owner]
		if status == ledger.Sending {
			c[0] = n
		} else {
			c[1] = n
		}
		out[owner] = c
	}
	return out, rows.Err()
}
