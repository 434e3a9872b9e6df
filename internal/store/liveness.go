package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/digest/digest/internal/ledger"
)

// Liveness. A lease says that its owner is alive for as long as it renews
// it; when the owner dies, waiting for the lease to expire is waiting for
// nothing. So a run or a lease also records the key of its process
// (alive_key), and the store tells that the owner is gone, and takes over
// at once, when it can prove it:
//
//   - on the same host and in the same pid space (the same boot and pid
//     namespace: ledger.PIDSpace), its pid is not running (a pid that was
//     reused, such as a container's pid 1 after a restart, counts as
//     running: the lease, or on Postgres the lock, decides; containers
//     that share a host name but not their pids never judge each other by
//     pid);
//   - on Postgres, the advisory lock its process holds on a connection of
//     its own (pgAliveLock) is free: the server frees it when that
//     connection drops, as it does when the process or its host dies.
//
// An owner that is alive but frozen or cut off keeps its lease until it
// expires, and fences itself: it renews the lease before it sends, and its
// renewal fails once the lease has lapsed or its liveness connection has
// dropped (see stillAlive).

// errAliveLost says the connection that held this process's liveness lock
// dropped: others may now take its rows and its lease.
var errAliveLost = errors.New("the connection that proves this process alive to the others dropped")

// alive is this process's liveness lock on Postgres.
type alive struct {
	mu   sync.Mutex
	conn *sql.Conn // nil until a run or lease asked for it, and after it dropped
}

func (a *alive) close() {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.conn != nil {
		discardConn(a.conn)
		a.conn = nil
	}
}

// Process is this process as the store names it in its runs and leases:
// delivery runs and the daemon use it, so that the store knows which rows
// are its own and holds its liveness lock for them.
func (s *Store) Process() ledger.Process { return s.self }

// aliveKey is the liveness key to record for a run or lease of the process
// with this id: its id when it is this process (and, on Postgres, its
// liveness lock is held), empty for another (a test's made-up holder),
// whose death the store then learns only from its host and pid or from its
// lease's expiry.
func (s *Store) aliveKey(ctx context.Context, id string) (string, error) {
	if id == "" || id != s.self.ID {
		return "", nil
	}
	if s.d != dialectPostgres {
		return id, nil
	}
	s.alive.mu.Lock()
	defer s.alive.mu.Unlock()
	if s.alive.conn != nil {
		return id, nil
	}
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return "", fmt.Errorf("liveness lock: %w", err)
	}
	var got bool
	if err := conn.QueryRowContext(ctx, s.q.aliveLock, id).Scan(&got); err != nil || !got {
		discardConn(conn)
		if err == nil {
			err = errors.New("held by another session")
		}
		return "", fmt.Errorf("liveness lock: %w", err)
	}
	s.alive.conn = conn
	return id, nil
}

// stillAlive checks, before a renewal, that this process's liveness lock is
// still held (Postgres); when its connection dropped it returns
// errAliveLost, once, and the next run or lease takes a new lock.
func (s *Store) stillAlive(ctx context.Context, key string) error {
	if key == "" || s.d != dialectPostgres {
		return nil
	}
	s.alive.mu.Lock()
	defer s.alive.mu.Unlock()
	if s.alive.conn == nil {
		return errAliveLost
	}
	var one int
	if err := s.alive.conn.QueryRowContext(ctx, s.q.schemaVersion).Scan(&one); err != nil {
		if errors.Is(ctx.Err(), context.Canceled) {
			return ctx.Err()
		}
		// Dropped, or no answer in time (a partition): others may see the
		// lock free; this process must stop as if it were.
		discardConn(s.alive.conn)
		s.alive.conn = nil
		return fmt.Errorf("%w: %w", errAliveLost, err)
	}
	return nil
}

// owner is whom a run or lease belongs to, as stored.
type owner struct {
	host string
	pid  int
	key  string    // alive_key
	seen time.Time // its last renewal, on the lease clock
}

// lockGrace is how long after an owner's last renewal a free liveness lock
// counts as its death. A lock is freed when the owner's connection drops,
// which a live owner can outlast: it learns of it at its next renewal
// (every 2 s at most) and then stops; a server that cut it off at once
// must not hand its rows to another before that.
const lockGrace = 5 * time.Second

// gone reports whether o is provably dead at now (see the package's
// liveness rules above). Within tx, on Postgres, it may take o's liveness
// lock for the rest of the transaction. On Postgres an owner with a
// liveness key is judged by its lock: a pid is proof only on a host whose
// processes see each other's, which a shared host name does not promise
// (containers on the host's network, cloned machines), so a dead pid only
// spares the wait of lockGrace.
func (s *Store) gone(ctx context.Context, tx *sql.Tx, o owner, now time.Time) (bool, error) {
	if o.key != "" && o.key == s.self.ID {
		return false, nil
	}
	deadPid := o.host != "" && o.host == s.self.Host && samePIDs(o.key, s.self.ID) && !pidRunning(o.pid)
	if o.key == "" || s.d != dialectPostgres {
		return deadPid, nil
	}
	var free bool
	if err := tx.QueryRowContext(ctx, s.q.aliveFree, o.key).Scan(&free); err != nil {
		return false, fmt.Errorf("liveness of %s pid %d: %w", o.host, o.pid, err)
	}
	// Both a free lock and a dead pid here: gone at once. A free lock
	// alone: once the owner has had time to learn it lost it.
	return free && (deadPid || now.Sub(o.seen) >= lockGrace), nil
}

// samePIDs reports whether the owner recorded under key sees the pids this
// process does (key empty: an owner that recorded none, judged by its host
// alone; an ID of an older version, without its pid space, likewise).
func samePIDs(key, self string) bool {
	theirs := ledger.PIDSpace(key)
	return theirs == "" || theirs == ledger.PIDSpace(self)
}

// leaseTime is the time of leases: the test clock, else the database's on
// Postgres (read through q, the transaction in progress), else the real
// time.
func (s *Store) leaseTime(ctx context.Context, q rowQuerier) (time.Time, error) {
	switch {
	case s.leaseNow != nil:
		return s.leaseNow().UTC(), nil
	case s.d == dialectPostgres:
		var t time.Time
		if err := q.QueryRowContext(ctx, s.q.dbNow).Scan(&t); err != nil {
			return time.Time{}, fmt.Errorf("database clock: %w", err)
		}
		return t.UTC(), nil
	}
	return time.Now().UTC(), nil
}

type rowQuerier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// endDeadRuns ends the live runs (at lnow) whose process is gone and puts
// their rows back to pending, so that a rerun or a worker continues at
// once instead of waiting out their leases. It returns the runs it ended.
func (s *Store) endDeadRuns(ctx context.Context, tx *sql.Tx, lnow time.Time) ([]ledger.RunInfo, error) {
	live, err := queryRuns(ctx, tx, s.q.liveRuns, lnow)
	if err != nil {
		return nil, err
	}
	var dead []ledger.RunInfo
	for _, r := range live {
		g, err := s.gone(ctx, tx, owner{host: r.Host, pid: r.PID, key: r.Process, seen: r.SeenAt}, lnow)
		if err != nil {
			return nil, err
		}
		if !g {
			continue
		}
		if _, err := tx.ExecContext(ctx, s.q.releaseRunRows, s.stamp(), r.ID); err != nil {
			return nil, err
		}
		if _, err := tx.ExecContext(ctx, s.q.endDeadRun, lnow, r.ID, lnow); err != nil {
			return nil, err
		}
		dead = append(dead, r)
	}
	return dead, nil
}
