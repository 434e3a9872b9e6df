package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/digest/digest/internal/ledger"
)

// Observe records the stories seen at now, in one transaction: those not
// seen before are first seen now (as FirstSeen records them), and a story
// whose fingerprint differs from the last one recorded has changed at now.
// It returns what is known of each.
func (s *Store) Observe(ctx context.Context, seen []ledger.Sighting, now time.Time) (map[string]ledger.Observed, error) {
	out := make(map[string]ledger.Observed, len(seen))
	if len(seen) == 0 {
		return out, nil
	}
	if now.IsZero() {
		now = s.stamp()
	}
	now = now.UTC()
	err := s.tx(ctx, func(tx *sql.Tx) error {
		st, err := prepareAll(ctx, tx, s.q.insertSeen, s.q.observed, s.q.setPrint, s.q.changed)
		if err != nil {
			return err
		}
		defer closeAll(st)
		ins, get, setPrint, changed := st[0], st[1], st[2], st[3]
		for _, sg := range seen {
			if _, err := ins.ExecContext(ctx, sg.ID, now); err != nil {
				return fmt.Errorf("article %s: %w", sg.ID, err)
			}
			var o ledger.Observed
			var print string
			var at sql.NullTime
			if err := get.QueryRowContext(ctx, sg.ID).Scan(&o.FirstSeen, &print, &at, &o.Backlog); err != nil {
				return fmt.Errorf("article %s: %w", sg.ID, err)
			}
			o.FirstSeen, o.Changed = o.FirstSeen.UTC(), utc(at.Time)
			switch {
			case print == sg.Fingerprint:
			case print == "":
				_, err = setPrint.ExecContext(ctx, sg.Fingerprint, sg.ID)
			default:
				_, err = changed.ExecContext(ctx, sg.Fingerprint, now, sg.ID)
				o.Changed = now
			}
			if err != nil {
				return fmt.Errorf("article %s: %w", sg.ID, err)
			}
			out[sg.ID] = o
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("observe stories: %w", err)
	}
	return out, nil
}

// SourcesSeen returns when each of the named sources was first seen (see
// SeeSource); a source never seen is absent.
func (s *Store) SourcesSeen(ctx context.Context, names []string) (map[string]time.Time, error) {
	out := make(map[string]time.Time, len(names))
	get, err := s.db.PrepareContext(ctx, s.q.sourceSeen)
	if err != nil {
		return nil, fmt.Errorf("sources seen: %w", err)
	}
	defer get.Close()
	for _, name := range names {
		var t time.Time
		err := get.QueryRowContext(ctx, name).Scan(&t)
		if errors.Is(err, sql.ErrNoRows) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("sources seen: %s: %w", name, err)
		}
		out[name] = t.UTC()
	}
	return out, nil
}

// SeeSource records that the source was seen at now. The first time only,
// the stories of backlog (seen already, by Observe) are marked as the
// backlog of a new source, never to be sent; a story already sent is not.
// It reports whether this was the first time: a source removed from the
// configuration and added again is not new.
func (s *Store) SeeSource(ctx context.Context, name string, now time.Time, backlog []string) (bool, error) {
	if now.IsZero() {
		now = s.stamp()
	}
	first := false
	err := s.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, s.q.insertSource, name, now.UTC())
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			return err
		}
		first = true
		st, err := tx.PrepareContext(ctx, s.q.markBacklog)
		if err != nil {
			return err
		}
		defer st.Close()
		for _, id := range backlog {
			if _, err := st.ExecContext(ctx, id); err != nil {
				return fmt.Errorf("article %s: %w", id, err)
			}
		}
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("source %s: first seen: %w", name, err)
	}
	return first, nil
}

// prepareAll prepares the statements in order; on an error it closes those
// already prepared.
func prepareAll(ctx context.Context, tx *sql.Tx, queries ...string) ([]*sql.Stmt, error) {
	var out []*sql.Stmt
	for _, q := range queries {
		st, err := tx.PrepareContext(ctx, q)
		if err != nil {
			closeAll(out)
			return nil, err
		}
		out = append(out, st)
	}
	return out, nil
}

func closeAll(sts []*sql.Stmt) {
	for _, st := range sts {
		st.Close()
	}
}
