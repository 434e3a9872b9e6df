package deliver_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/digest/digest/internal/deliver"
	"github.com/digest/digest/internal/ledger"
	"github.com/digest/digest/internal/mail"
	"github.com/digest/digest/internal/smtptest"
)

// fakeLease is valid for the first valid calls, and shared by peers runs.
type fakeLease struct {
	valid atomic.Int64 // Valid answers true this many more times
	peers atomic.Int64
	calls atomic.Int64
}

func (l *fakeLease) Valid() bool { l.calls.Add(1); return l.valid.Add(-1) >= 0 }
func (l *fakeLease) Peers() int  { return int(l.peers.Load()) }

func newLease(valid, peers int) *fakeLease {
	l := &fakeLease{}
	l.valid.Store(int64(valid))
	l.peers.Store(int64(peers))
	return l
}

func TestLeaseLapseStopsTheRun(t *testing.T) {
	srv := smtptest.New(t)
	l := newFakeLedger(issueID, 40)
	opts := fastOptions()
	opts.Connections = 1
	opts.Lease = newLease(10, 1)
	sum, err := deliver.Issue(t.Context(), issueID, testPrepared(t), l, smtpTransport(t, srv, nil), opts)
	if !errors.Is(err, ledger.ErrLeaseLost) {
		t.Fatalf("err = %v, want ErrLeaseLost", err)
	}
	// Ten messages were let through while the lease held; not one after.
	if srv.Total() != 10 || sum.Sent != 10 {
		t.Errorf("server got %d, summary %+v; want exactly the 10 sent under the lease", srv.Total(), sum)
	}
	l.check(t)
	if got := l.count(ledger.Pending); got != 30 {
		t.Errorf("%d pending after the lapse, want 30 (released, not failed)", got)
	}
}

// A temporary failure that comes after the run's lease lapsed is not the
// reader's: the row is left for recovery with its attempts as they were,
// and no retry delay.
func TestTemporaryFailureAfterTheLeaseLapsedCountsNothing(t *testing.T) {
	srv := smtptest.New(t, smtptest.WithFaults(func(rcpt string, _ int) smtptest.Fault {
		if rcpt == "r004@example.com" {
			return smtptest.Fault{Rcpt: smtptest.Reply(451, 4, 4, 2, "connection lost")}
		}
		return smtptest.Fault{}
	}))
	l := newFakeLedger(issueID, 6)
	opts := fastOptions()
	opts.Connections = 1
	opts.BatchSize = 10
	// Valid for the first three messages' final dots; asked again when
	// the fourth reader's 451 comes, it has lapsed.
	opts.Lease = newLease(3, 1)
	sum, err := deliver.Issue(t.Context(), issueID, testPrepared(t), l, smtpTransport(t, srv, nil), opts)
	if !errors.Is(err, ledger.ErrLeaseLost) {
		t.Fatalf("err = %v, want ErrLeaseLost", err)
	}
	if sum.Sent != 3 {
		t.Errorf("summary %+v, want the 3 sent under the lease", sum)
	}
	l.check(t)
	r := l.row(4)
	if r.status != ledger.Pending || r.last.Attempts != 0 || !r.due.IsZero() {
		t.Errorf("reader 4 after the lapse: %s, %d attempts, due %v; want pending, uncounted, due at once",
			r.status, r.last.Attempts, r.due)
	}
}

// sharedLedger holds rows of another run that come back after a few polls.
type sharedLedger struct {
	*fakeLedger
	mu     sync.Mutex
	others []ledger.Recipient // rows another run holds
	polls  int
}

func (s *sharedLedger) HeldByOthers(context.Context, string) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.polls++
	n := len(s.others)
	if s.polls == 3 { // the other run's lease expired: the next claim takes its rows
		for _, rc := range s.others {
			s.add(rc)
		}
		s.others = nil
	}
	return n, nil
}

func TestWaitsForOtherRunsAndTakesOver(t *testing.T) {
	srv := smtptest.New(t)
	l := &sharedLedger{fakeLedger: newFakeLedger(issueID, 5)}
	for i := 6; i <= 8; i++ {
		l.others = append(l.others, ledger.Recipient{IssueID: issueID, SubscriberID: int64(i), Email: fmt.Sprintf("r%03d@example.com", i)})
	}
	var slept []time.Duration
	opts := fastOptions()
	opts.PollEvery = time.Hour // never really waited: Sleep is a fake
	opts.Sleep = func(ctx context.Context, d time.Duration) bool { slept = append(slept, d); return ctx.Err() == nil }
	opts.Lease = newLease(1000, 1)
	sum, err := deliver.Issue(t.Context(), issueID, testPrepared(t), l, smtpTransport(t, srv, nil), opts)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Sent != 8 || srv.Total() != 8 {
		t.Errorf("summary %+v, server %d; want the 5 free rows and the 3 taken over", sum, srv.Total())
	}
	if len(slept) != 3 || slept[0] != time.Hour {
		t.Errorf("slept %v, want three polls of PollEvery", slept)
	}
	l.check(t)
}

// A worker that joined an issue of 10 and found 4 rows for itself (other
// runs delivered the rest) ends its progress with what it did, not with
// the others' share as pending.
func TestLastProgressOfAWorkerCountsNoOthersAsPending(t *testing.T) {
	srv := smtptest.New(t)
	l := newFakeLedger(issueID, 4)
	opts := fastOptions()
	opts.Total = 10
	var last deliver.Progress
	opts.Progress = func(p deliver.Progress) {
		if p.Done {
			last = p
		}
	}
	if _, err := deliver.Issue(t.Context(), issueID, testPrepared(t), l, smtpTransport(t, srv, nil), opts); err != nil {
		t.Fatal(err)
	}
	if last.Sent != 4 || last.Pending != 0 || last.Total != 4 {
		t.Errorf("last progress %d/%d sent, %d pending; want 4/4, 0 pending", last.Sent, last.Total, last.Pending)
	}
}

// skipOdd skips odd subscribers, as a topic filter would.
type skipOdd struct{ *mail.Prepared }

func (s skipOdd) Build(dst []byte, rc ledger.Recipient) (mail.Message, error) {
	if rc.SubscriberID%2 == 1 {
		return mail.Message{}, fmt.Errorf("subscriber %d: %w", rc.SubscriberID, deliver.ErrSkip)
	}
	return s.Prepared.Build(dst, rc)
}

func TestSkippedRecipients(t *testing.T) {
	srv := smtptest.New(t)
	l := newFakeLedger(issueID, 10)
	sum, err := deliver.Issue(t.Context(), issueID, skipOdd{testPrepared(t)}, l, smtpTransport(t, srv, nil), fastOptions())
	if err != nil {
		t.Fatal(err)
	}
	if sum.Sent != 5 || sum.Skipped != 5 || sum.Failed != 0 || srv.Total() != 5 {
		t.Errorf("summary %+v, server %d", sum, srv.Total())
	}
	if l.count(ledger.Skipped) != 5 {
		t.Errorf("%d rows skipped in the ledger", l.count(ledger.Skipped))
	}
	l.check(t)
}

// TestCapsSharedAmongRuns: two live runs, a cap of 10 an hour with 2 sent
// already by anyone: this run may send half of what is left.
func TestCapsSharedAmongRuns(t *testing.T) {
	srv := smtptest.New(t)
	l := newFakeLedger(issueID, 20)
	opts := fastOptions()
	opts.PerHour = 10
	opts.SentSince = func(context.Context, time.Time) (int, error) { return 2 + l.count(ledger.Sent), nil }
	opts.Lease = newLease(1000, 2)
	sum, err := deliver.Issue(t.Context(), issueID, testPrepared(t), l, smtpTransport(t, srv, nil), opts)
	if !errors.Is(err, deliver.ErrQuota) {
		t.Fatalf("err = %v, want ErrQuota", err)
	}
	// (10-2)/2 at first; then, paused, a half of what is left at each
	// refresh: never over the cap.
	if sum.Sent < 4 || 2+sum.Sent > 10 || srv.Total() != sum.Sent {
		t.Errorf("sent %d (server %d), want 4 at first and never over 10-2", sum.Sent, srv.Total())
	}
	l.check(t)
}

// goneLedger's first claim includes a reader who left, already settled.
type goneLedger struct {
	*fakeLedger
	once sync.Once
}

func (g *goneLedger) Claim(ctx context.Context, issueID string, limit int) ([]ledger.Recipient, error) {
	rs, err := g.fakeLedger.Claim(ctx, issueID, limit)
	g.once.Do(func() {
		rs = append(rs, ledger.Recipient{IssueID: issueID, SubscriberID: 99, Email: "gone@example.com", Gone: "unsubscribed"})
	})
	return rs, err
}

func TestReadersWhoLeftAreSkippedNotSent(t *testing.T) {
	srv := smtptest.New(t)
	l := &goneLedger{fakeLedger: newFakeLedger(issueID, 4)}
	var last deliver.Progress
	opts := fastOptions()
	opts.Total = 5
	opts.Progress = func(p deliver.Progress) { last = p }
	sum, err := deliver.Issue(t.Context(), issueID, testPrepared(t), l, smtpTransport(t, srv, nil), opts)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Sent != 4 || sum.Skipped != 1 || sum.Failed != 0 || srv.Count("gone@example.com") != 0 {
		t.Errorf("summary %+v; the reader who left got %d messages", sum, srv.Count("gone@example.com"))
	}
	if last.Pending != 0 || last.Skipped != 1 {
		t.Errorf("last progress %+v, want nothing pending and 1 skipped", last)
	}
	l.check(t)
}
