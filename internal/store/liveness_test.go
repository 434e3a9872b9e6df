package store

import (
	"context"
	"errors"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/digest/digest/internal/ledger"
	"github.com/digest/digest/internal/store/storetest"
)

// deadPID is the pid of a process of this host that has exited.
func deadPID(t *testing.T) int {
	t.Helper()
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatalf("running true: %v", err)
	}
	return cmd.Process.Pid
}

// eventually calls get until ok accepts its result, for at most a few
// seconds (the server's backend of a closed connection ends a moment after
// the close), and returns the last result.
func eventually[T any](t *testing.T, get func() T, ok func(T) bool) T {
	t.Helper()
	var v T
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if v = get(); ok(v) || time.Now().After(deadline) {
			return v
		}
	}
}

// A run whose process is provably gone is not live: its rows go back to
// pending at once, and a plain run may start. A run elsewhere whose
// process holds its liveness lock stays live (its lease decides) until
// that process's connection drops, which Postgres tells and SQLite cannot.
func TestDeadRunsEndAtOnce(t *testing.T) { storetest.Run(t, testDeadRunsEndAtOnce) }

func testDeadRunsEndAtOnce(t *testing.T, db storetest.Backend) {
	ctx := context.Background()
	path := db.Fresh(t)
	c := newClock()
	dying, other := openAt(t, path, c), openAt(t, path, c)
	const issue = "w10"
	seed(t, other, 4, issue)
	_, err := other.Enqueue(ctx, issue)
	must(t, err)

	// Same host, pid gone (and, on Postgres, its process's liveness lock
	// free: the process that held it has closed).
	me := dying.Process()
	ghost := openAt(t, path, c)
	ghostID := ghost.Process().ID
	ghost.Close()
	run, err := dying.BeginRun(ctx, ledger.RunInfo{ID: "dead", Host: me.Host, PID: deadPID(t), Process: ghostID, IssueID: issue}, testLease)
	must(t, err)
	if got, err := run.Claim(ctx, issue, 2); err != nil || len(got) != 2 {
		t.Fatalf("claim: %v, %d rows", err, len(got))
	}
	live, err := other.LiveRuns(ctx)
	must(t, err)
	if len(live) != 0 {
		t.Fatalf("a run whose pid is gone is live: %+v", live)
	}
	if c, err := other.Counts(ctx, issue); err != nil || c.Sending != 0 || c.Pending != 4 {
		t.Fatalf("counts after the dead run ended: %+v, %v", c, err)
	}

	// Another host, the process alive: live.
	next, err := dying.BeginRun(ctx, ledger.RunInfo{ID: "far", Host: "elsewhere", PID: 1, Process: me.ID, IssueID: issue}, testLease)
	must(t, err)
	if len(next.TookOver()) != 0 {
		t.Errorf("took over %+v: the dead run was already ended", next.TookOver())
	}
	if _, err := next.Claim(ctx, issue, 1); err != nil {
		t.Fatal(err)
	}
	live, err = other.LiveRuns(ctx)
	must(t, err)
	if len(live) != 1 || live[0].ID != "far" {
		t.Fatalf("live runs while their process lives: %+v", live)
	}
	// Its process dies: its liveness connection drops with it (the
	// server frees the lock as soon as its backend sees the connection
	// closed, a moment later); the lock counts once the process had time
	// to learn it lost it (lockGrace), well inside the lease.
	dying.Close()
	c.Set(t0.Add(lockGrace))
	want := 0
	if db == storetest.SQLite {
		want = 1 // no lock to tell: the lease decides
	}
	live = eventually(t, func() []ledger.RunInfo {
		live, err := other.LiveRuns(ctx)
		must(t, err)
		return live
	}, func(l []ledger.RunInfo) bool { return len(l) == want })
	if len(live) != want {
		t.Fatalf("%s: %d live runs after their process closed, want %d: %+v", db, len(live), want, live)
	}
}

// A process that shares the host name but not the pids (a container on
// the host's network, with a pid namespace of its own) is never judged
// dead by its pid: its lease decides.
func TestOtherPIDSpaceIsNotJudgedByPID(t *testing.T) { storetest.Run(t, testOtherPIDSpace) }

func testOtherPIDSpace(t *testing.T, db storetest.Backend) {
	ctx := context.Background()
	path := db.Fresh(t)
	c := newClock()
	boxed, host := openAt(t, path, c), openAt(t, path, c)
	if ledger.PIDSpace(host.Process().ID) == "" {
		t.Fatal("this system gives no pid space")
	}
	boxed.self.ID = "0000000000-" + boxed.self.ID[strings.Index(boxed.self.ID, "-")+1:]
	me := boxed.Process()
	const issue = "w10"
	seed(t, host, 2, issue)
	_, err := host.Enqueue(ctx, issue)
	must(t, err)
	// Its pid, as this process sees pids, is gone.
	if _, err := boxed.BeginRun(ctx, ledger.RunInfo{ID: "boxed", Host: me.Host, PID: deadPID(t), Process: me.ID, IssueID: issue}, testLease); err != nil {
		t.Fatal(err)
	}
	live, err := host.LiveRuns(ctx)
	must(t, err)
	if len(live) != 1 || live[0].ID != "boxed" {
		t.Fatalf("live runs: %+v; want the run of the other pid space, whose lease has not expired", live)
	}
}

// The daemon's lease of a process that is gone is taken at once on
// Postgres; on SQLite (same host, and this test's pid runs) it waits for
// the lease to expire.
func TestGoneLeaseHolder(t *testing.T) { storetest.Run(t, testGoneLeaseHolder) }

func testGoneLeaseHolder(t *testing.T, db storetest.Backend) {
	ctx := context.Background()
	path := db.Fresh(t)
	c := newClock()
	dying, other := openAt(t, path, c), openAt(t, path, c)
	a, err := dying.AcquireLease(ctx, "daemon", dying.Process(), ttl)
	must(t, err)
	if !a.Held {
		t.Fatal("first acquire failed")
	}
	b, err := other.AcquireLease(ctx, "daemon", other.Process(), ttl)
	must(t, err)
	if b.Held {
		t.Fatal("took the lease of a live holder")
	}
	dying.Close()
	// A free lock counts once the holder had time to learn it lost it
	// (lockGrace), still well inside the lease.
	c.Set(t0.Add(lockGrace))
	want := db == storetest.Postgres
	b = eventually(t, func() Acquisition {
		b, err := other.AcquireLease(ctx, "daemon", other.Process(), ttl)
		must(t, err)
		return b
	}, func(b Acquisition) bool { return b.Held == want })
	if want := db == storetest.Postgres; b.Held != want || (b.TookOver != nil) != want {
		t.Fatalf("%s: after the holder closed: held %v took over %+v, want %v", db, b.Held, b.TookOver, want)
	}
}

// A process whose liveness connection dropped learns it at its next
// renewal, and stops: others may have taken its rows.
func TestRenewAfterLivenessLost(t *testing.T) {
	dsn := storetest.Postgres.Fresh(t)
	s := openAt(t, dsn, newClock())
	ctx := context.Background()
	seed(t, s, 1, "w10")
	me := s.Process()
	run, err := s.BeginRun(ctx, ledger.RunInfo{ID: "r", Host: me.Host, PID: me.PID, Process: me.ID, IssueID: "w10"}, testLease)
	must(t, err)
	if _, err := run.Renew(ctx); err != nil {
		t.Fatalf("renew: %v", err)
	}
	s.alive.close() // as when the server or the network drops it
	if _, err := run.Renew(ctx); !errors.Is(err, ledger.ErrLeaseLost) {
		t.Fatalf("renew after the liveness connection dropped: %v, want ErrLeaseLost", err)
	}
}
