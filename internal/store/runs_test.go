package store

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/digest/digest/internal/ledger"
	"github.com/digest/digest/internal/store/storetest"
)

func TestBeginRunAdmission(t *testing.T) { storetest.Run(t, testBeginRunAdmission) }

func testBeginRunAdmission(t *testing.T, db storetest.Backend) {
	s, c := openTest(t, db)
	ctx := context.Background()
	const issue = "w10"
	seed(t, s, 3, issue)
	_, err := s.Enqueue(ctx, issue)
	must(t, err)

	first, err := s.BeginRun(ctx, ledger.RunInfo{ID: "a", Host: "h1", PID: 10, IssueID: issue}, testLease)
	must(t, err)
	batch, err := first.Claim(ctx, issue, 2)
	must(t, err)
	must(t, first.Record(ctx, issue, []ledger.Outcome{{SubscriberID: batch[0].SubscriberID, Status: ledger.Sent}}))

	// A second plain run is refused, and told who, since when, how far.
	c.Set(t0.Add(5 * time.Second))
	_, err = s.BeginRun(ctx, ledger.RunInfo{ID: "b", Host: "h2", PID: 20, IssueID: issue}, testLease)
	var busy *BusyError
	if !errors.As(err, &busy) {
		t.Fatalf("second BeginRun: %v, want a BusyError", err)
	}
	if len(busy.Runs) != 1 || busy.Runs[0].ID != "a" || busy.Runs[0].PID != 10 || !busy.Runs[0].StartedAt.Equal(t0) ||
		busy.Runs[0].Sent != 1 || busy.Runs[0].Claimed != 1 {
		t.Errorf("busy runs = %+v", busy.Runs)
	}
	if busy.Counts != (ledger.Counts{Pending: 1, Sending: 1, Sent: 1}) {
		t.Errorf("busy counts = %+v", busy.Counts)
	}

	// A worker joins instead, and never gets a's rows.
	w, err := s.BeginRun(ctx, ledger.RunInfo{ID: "w", Host: "h2", PID: 21, IssueID: issue, Worker: true}, testLease)
	must(t, err)
	got, err := w.Claim(ctx, issue, 10)
	must(t, err)
	if len(got) != 1 || got[0].SubscriberID == batch[1].SubscriberID {
		t.Errorf("worker claimed %v while a holds %d", recipientIDs(got), batch[1].SubscriberID)
	}
	live, err := s.LiveRuns(ctx)
	must(t, err)
	if len(live) != 2 {
		t.Errorf("LiveRuns = %+v", live)
	}

	// Once both end, a plain run is admitted again.
	must(t, first.End(ctx))
	must(t, w.End(ctx))
	if _, err := s.BeginRun(ctx, ledger.RunInfo{ID: "c", Host: "h3", PID: 30, IssueID: issue}, testLease); err != nil {
		t.Errorf("BeginRun after the others ended: %v", err)
	}
}

func TestRunLeaseExpiry(t *testing.T) { storetest.Run(t, testRunLeaseExpiry) }

func testRunLeaseExpiry(t *testing.T, db storetest.Backend) {
	s, c := openTest(t, db)
	ctx := context.Background()
	const issue = "w10"
	ids := seed(t, s, 4, issue)
	_, err := s.Enqueue(ctx, issue)
	must(t, err)
	stale := beginRun(t, s, issue, "stale")
	held, err := stale.Claim(ctx, issue, 2)
	must(t, err)

	// A dead run's lease ends: a plain run is admitted, and takes its rows.
	c.Set(t0.Add(recoverAfter))
	if _, err := stale.Renew(ctx); !errors.Is(err, ledger.ErrLeaseLost) {
		t.Errorf("Renew after the lease: %v, want ErrLeaseLost", err)
	}
	next, err := s.BeginRun(ctx, ledger.RunInfo{ID: "next", Host: "h", PID: 2, IssueID: issue}, testLease)
	must(t, err)
	got, err := next.Claim(ctx, issue, 10)
	must(t, err)
	if len(got) != 4 {
		t.Fatalf("next claimed %v, want all 4", recipientIDs(got))
	}

	// The stale run wakes up. What it sent is a fact and is recorded; any
	// other outcome, or a release, of rows it lost is ignored.
	must(t, stale.Record(ctx, issue, []ledger.Outcome{
		{SubscriberID: held[0].SubscriberID, Status: ledger.Sent, Attempts: 1},
		{SubscriberID: held[1].SubscriberID, Status: ledger.Failed, Attempts: 1, Reply: "late failure"},
	}))
	must(t, stale.Release(ctx, issue, []int64{ids[2], ids[3]}))
	if got := counts(t, s, issue); got != (ledger.Counts{Sending: 3, Sent: 1}) {
		t.Errorf("counts after the stale run's writes: %+v", got)
	}
	// next's own outcome for the row the stale run sent changes nothing.
	must(t, next.Record(ctx, issue, []ledger.Outcome{{SubscriberID: held[0].SubscriberID, Status: ledger.Failed}}))
	if got := counts(t, s, issue); got.Sent != 1 {
		t.Errorf("a sent row was undone: %+v", got)
	}

	// Renewal keeps next's rows through several lease lengths.
	for i := 1; i <= 4; i++ {
		c.Set(t0.Add(testLease + time.Duration(i)*testLease/3))
		live, err := next.Renew(ctx)
		must(t, err)
		if live != 1 {
			t.Errorf("renewal %d: %d live runs, want 1", i, live)
		}
	}
	other := beginRun(t, s, issue, "other")
	if got, err := other.Claim(ctx, issue, 10); err != nil || len(got) != 0 {
		t.Errorf("another run claimed %v (%v) from a live one", recipientIDs(got), err)
	}
	runs, err := s.IssueRuns(ctx, issue)
	must(t, err)
	if len(runs) != 3 {
		t.Fatalf("IssueRuns = %+v", runs)
	}
	for _, r := range runs {
		if r.ID == "stale" && (r.Sent != 1 || r.Live(c.Now())) {
			t.Errorf("stale run = %+v", r)
		}
		if r.ID == "next" && (r.Claimed != 3 || !r.Live(c.Now())) {
			t.Errorf("next run = %+v", r)
		}
	}
}
