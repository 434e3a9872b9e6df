package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
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
		st, err := prepareAll(ctx, tx, s.q.insertSeenChunk, s.q.observedChunk, s.q.setPrint, s.q.changed)
		if err != nil {
			return err
		}
		defer closeAll(st)
		for chunk := range slices.Chunk(seen, observeChunk) {
			if err := s.observeChunk(ctx, st, chunk, now, out); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("observe stories: %w", err)
	}
	return out, nil
}

// observeChunk is how many stories Observe inserts and reads in one
// statement each: two round trips per chunk rather than two per story.
const observeChunk = 100

// observeChunk observes up to observeChunk stories with the statements
// insertSeenChunk, observedChunk, setPrint and changed (prepared in st),
// into out. A short chunk is padded with its last story, which the
// statements then see twice and treat once.
func (s *Store) observeChunk(ctx context.Context, st []*sql.Stmt, chunk []ledger.Sighting, now time.Time, out map[string]ledger.Observed) error {
	ins, get, setPrint, changed := st[0], st[1], st[2], st[3]
	ids := make([]any, observeChunk)
	rows := make([]any, 0, 2*observeChunk)
	for i := range ids {
		id := chunk[min(i, len(chunk)-1)].ID
		ids[i] = id
		rows = append(rows, id, now)
	}
	if _, err := ins.ExecContext(ctx, rows...); err != nil {
		return fmt.Errorf("articles %s…: %w", chunk[0].ID, err)
	}
	type known struct {
		o     ledger.Observed
		print string
	}
	got := make(map[string]known, len(chunk))
	r, err := get.QueryContext(ctx, ids...)
	if err != nil {
		return fmt.Errorf("articles %s…: %w", chunk[0].ID, err)
	}
	defer r.Close()
	for r.Next() {
		var id string
		var k known
		var at sql.NullTime
		if err := r.Scan(&id, &k.o.FirstSeen, &k.print, &at, &k.o.Backlog); err != nil {
			return fmt.Errorf("articles %s…: %w", chunk[0].ID, err)
		}
		k.o.FirstSeen, k.o.Changed = k.o.FirstSeen.UTC(), utc(at.Time)
		got[id] = k
	}
	if err := r.Err(); err != nil {
		return fmt.Errorf("articles %s…: %w", chunk[0].ID, err)
	}
	r.Close()
	for _, sg := range chunk {
		k, ok := got[sg.ID]
		if !ok {
			return fmt.Errorf("article %s: not recorded", sg.ID)
		}
		switch {
		case k.print == sg.Fingerprint:
		case k.print == "":
			_, err = setPrint.ExecContext(ctx, sg.Fingerprint, sg.ID)
		default:
			_, err = changed.ExecContext(ctx, sg.Fingerprint, now, sg.ID)
			k.o.Changed = now
		}
		if err != nil {
			return fmt.Errorf("article %s: %w", sg.ID, err)
		}
		// A story sighted twice in one run is recorded once, as the
		// per-story statements did: its later sighting sees the first.
		got[sg.ID] = known{o: k.o, print: sg.Fingerprint}
		out[sg.ID] = k.o
	}
	return nil
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
