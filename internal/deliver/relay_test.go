package deliver_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/digest/digest/internal/clocktest"
	"github.com/digest/digest/internal/deliver"
	"github.com/digest/digest/internal/ledger"
	"github.com/digest/digest/internal/mail"
	"github.com/digest/digest/internal/smtptest"
)

// observer records what a run tells about the relay.
type observer struct {
	mu       sync.Mutex
	changes  []bool
	deferred map[string]int
}

func (o *observer) RelayUp(up bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.changes = append(o.changes, up)
}

func (o *observer) Deferred(reason string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.deferred == nil {
		o.deferred = map[string]int{}
	}
	o.deferred[reason]++
}

// downs counts the times the relay was reported down; up reports whether
// the last report was up.
func downs(changes []bool) (n int, up bool) {
	for _, c := range changes {
		if !c {
			n++
		}
	}
	return n, len(changes) > 0 && changes[len(changes)-1]
}

func (o *observer) snapshot() ([]bool, map[string]int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	d := map[string]int{}
	for k, v := range o.deferred {
		d[k] = v
	}
	return append([]bool(nil), o.changes...), d
}

// downTransport refuses sessions (as a relay whose greeting is 421) while
// the clock is before until.
type downTransport struct {
	deliver.Transport
	clock *clocktest.Clock
	until time.Time
	opens atomic.Int32
}

func (d *downTransport) Open(ctx context.Context) (deliver.Conn, error) {
	d.opens.Add(1)
	if d.clock.Now().Before(d.until) {
		return nil, errors.New("smtp 127.0.0.1:25: dial tcp 127.0.0.1:25: connect: connection refused")
	}
	return d.Transport.Open(ctx)
}

// logLines counts the lines of buf that contain s.
func logLines(buf *bytes.Buffer, mu *sync.Mutex, s string) int {
	mu.Lock()
	defer mu.Unlock()
	return strings.Count(buf.String(), s)
}

type lockedBuffer struct {
	mu  *sync.Mutex
	buf *bytes.Buffer
}

func (b lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// The relay refuses sessions for an hour, then answers: a run that may wait
// (a daemon's) sends everyone once it is back, with one attempt each, one
// log line when the outage starts and one when it ends, and probes no
// more than once per backoff step.
func TestRelayDownForAnHourThenBack(t *testing.T) {
	t.Parallel()
	srv := smtptest.New(t)
	clock := newFakeClock()
	tr := &downTransport{Transport: smtpTransport(t, srv, nil), clock: clock, until: clock.Now().Add(time.Hour)}
	l := newFakeLedger(issueID, 30)
	obs := &observer{}
	var mu sync.Mutex
	var logs bytes.Buffer
	opts := withClock(fastOptions(), clock)
	opts.Backoff = deliver.DefaultBackoff
	opts.OutageWait = -1
	opts.Relay = deliver.NewRelayState(obs)
	opts.Logger = slog.New(slog.NewTextHandler(lockedBuffer{&mu, &logs}, nil))
	sum, err := deliver.Issue(t.Context(), issueID, testPrepared(t), l, tr, opts)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	l.check(t)
	if sum.Sent != 30 || srv.Total() != 30 {
		t.Errorf("summary %+v, server %d; want all 30 sent", sum, srv.Total())
	}
	for i := int64(1); i <= 30; i++ {
		if a := l.row(i).rc.Attempts; a != 1 {
			t.Errorf("subscriber %d: %d attempts, want 1 (the outage counts none)", i, a)
		}
	}
	if back := clock.Now().Sub(tr.until); back < 0 || back > 2*time.Minute {
		t.Errorf("noticed the relay back %s after it was, want within the 2-minute backoff cap", back)
	}
	t.Logf("hour-long outage: %d session tries, relay noticed back %s after it was, %d attempts for %d readers",
		tr.opens.Load(), clock.Now().Sub(tr.until).Round(time.Second), sum.Attempts, sum.Sent)
	// 1+2+…+64s is about 2 minutes, then one try every 90-120s.
	if n := tr.opens.Load(); n > 50 {
		t.Errorf("%d opens during an hour's outage, want at most 50", n)
	}
	changes, deferred := obs.snapshot()
	if n, up := downs(changes); n != 1 || changes[0] || !up {
		t.Errorf("relay changes %v, want down once, then up", changes)
	}
	if deferred[deliver.DeferRelay] == 0 || deferred[deliver.DeferRecipient] != 0 {
		t.Errorf("deferrals %v, want relay ones only", deferred)
	}
	if st := opts.Relay.Status(); st.Down {
		t.Errorf("relay status %+v after the run, want up", st)
	}
	if n := logLines(&logs, &mu, "relay unavailable"); n != 1 {
		t.Errorf("%d log lines say the relay is unavailable, want 1:\n%s", n, logs.String())
	}
	if n := logLines(&logs, &mu, "relay answers again"); n != 1 {
		t.Errorf("%d log lines say the relay is back, want 1", n)
	}
}

// A one-shot run waits OutageWait, then stops with everyone pending, no
// attempt counted, and says since when the relay was down; a rerun after
// the relay is back sends them all.
func TestRelayDownOutlastsOutageWait(t *testing.T) {
	t.Parallel()
	srv := smtptest.New(t)
	clock := newFakeClock()
	tr := &downTransport{Transport: smtpTransport(t, srv, nil), clock: clock, until: clock.Now().Add(time.Hour)}
	l := newFakeLedger(issueID, 12)
	var progress []deliver.Progress
	opts := withClock(fastOptions(), clock)
	opts.Backoff = deliver.DefaultBackoff
	opts.Progress = func(p deliver.Progress) { progress = append(progress, p) }
	_, err := deliver.Issue(t.Context(), issueID, testPrepared(t), l, tr, opts)
	if !errors.Is(err, deliver.ErrRelayDown) || !strings.Contains(err.Error(), "relay unavailable since 18:02") ||
		!strings.Contains(err.Error(), "connection refused") {
		t.Fatalf("err = %v, want ErrRelayDown since 18:02 with the reason", err)
	}
	l.check(t)
	if n := l.count(ledger.Pending); n != 12 {
		t.Errorf("%d pending, want 12", n)
	}
	for i := int64(1); i <= 12; i++ {
		if a := l.row(i).rc.Attempts; a != 0 {
			t.Errorf("subscriber %d: %d attempts after an outage", i, a)
		}
	}
	t.Logf("10-minute outage (outage_wait): %d session tries, 0 attempts per reader", tr.opens.Load())
	clock.Advance(time.Hour)
	sum, err := deliver.Issue(t.Context(), issueID, testPrepared(t), l, tr, opts)
	if err != nil || sum.Sent != 12 {
		t.Fatalf("rerun: %+v, %v", sum, err)
	}
}

// The relay answers the same 451 to everyone for half an hour (its queue is
// full), then accepts: that is the relay, not the readers: nobody's
// attempts grow beyond the one that succeeds.
func TestRelaySame451ToEveryoneThenBack(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	until := clock.Now().Add(30 * time.Minute)
	srv := smtptest.New(t, smtptest.WithFaults(func(string, int) smtptest.Fault {
		if clock.Now().Before(until) {
			return smtptest.Fault{Rcpt: smtptest.Reply(451, 4, 3, 0, "queue file write error")}
		}
		return smtptest.Fault{}
	}))
	l := newFakeLedger(issueID, 25)
	l.clock = clock
	obs := &observer{}
	opts := withClock(fastOptions(), clock)
	opts.Backoff = deliver.DefaultBackoff
	opts.OutageWait = -1
	opts.Relay = deliver.NewRelayState(obs)
	sum, err := deliver.Issue(t.Context(), issueID, testPrepared(t), l, smtpTransport(t, srv, nil), opts)
	if err != nil || sum.Sent != 25 {
		t.Fatalf("Run: %+v, %v", sum, err)
	}
	l.check(t)
	for i := int64(1); i <= 25; i++ {
		if a := l.row(i).rc.Attempts; a != 1 {
			t.Errorf("subscriber %d: %d attempts, want 1", i, a)
		}
	}
	if changes, _ := obs.snapshot(); len(changes) < 2 || changes[0] {
		t.Errorf("relay changes %v, want down then up", changes)
	} else if n, up := downs(changes); n != 1 || !up {
		t.Errorf("relay changes %v, want down once, then up", changes)
	}
	calls := 0
	for i := int64(1); i <= 25; i++ {
		calls += srv.Calls(l.row(i).rc.Email)
	}
	t.Logf("half-hour 451 outage: %d RCPT for 25 readers (5 to detect it, then one probe per backoff step), 1 attempt recorded each", calls)
}

// A relay that accepts one message in two and answers 451 to the other is
// not down: those are the readers' own failures, retried later, and all
// are sent in the end with no outage declared.
func TestRelayAcceptsOneInTwo(t *testing.T) {
	t.Parallel()
	var n atomic.Int32
	srv := smtptest.New(t, smtptest.WithFaults(func(string, int) smtptest.Fault {
		if n.Add(1)%2 == 0 {
			return smtptest.Fault{Rcpt: smtptest.Reply(451, 4, 3, 0, "try again later")}
		}
		return smtptest.Fault{}
	}))
	clock := newFakeClock()
	l := newFakeLedger(issueID, 20)
	l.clock = clock
	obs := &observer{}
	opts := withClock(fastOptions(), clock)
	opts.Connections = 1
	opts.Relay = deliver.NewRelayState(obs)
	runs, delivering := 0, 0 // runs, and those that sent something
	for ; runs < 20 && l.count(ledger.Pending) > 0; runs++ {
		sum, err := deliver.Issue(t.Context(), issueID, testPrepared(t), l, smtpTransport(t, srv, nil), opts)
		if err != nil {
			t.Fatalf("run %d: %v", runs+1, err)
		}
		if sum.Sent > 0 {
			delivering++
		}
		clock.Advance(48 * time.Hour)
	}
	l.check(t)
	// The alternation is strict, so a reader left alone can meet the 451
	// five times running: a reader's own failure, after max_attempts.
	if s, f := l.count(ledger.Sent), l.count(ledger.Failed); s < 18 || s+f != 20 {
		t.Errorf("%d sent, %d failed after %d runs, want (nearly) all sent", s, f, runs)
	}
	changes, deferred := obs.snapshot()
	if n, _ := downs(changes); n != 0 || deferred[deliver.DeferRelay] != 0 {
		t.Errorf("relay changes %v, deferrals %v: a false \"relay down\"", changes, deferred)
	}
	// Each run that delivered says the relay is up (clearing what an
	// earlier process may have recorded).
	if n := len(changes); n != delivering {
		t.Errorf("%d up reports for %d runs that delivered", n, delivering)
	}
	if deferred[deliver.DeferRecipient] == 0 {
		t.Errorf("deferrals %v, want the readers' own", deferred)
	}
}

// Greylisting: the reader's server answers 451 for 3 minutes. The run
// leaves the reader pending until the first retry (5 minutes later); the
// run after that sends it.
func TestGreylistingEndsInSent(t *testing.T) {
	t.Parallel()
	const victim = "r002@example.com"
	clock := newFakeClock()
	until := clock.Now().Add(3 * time.Minute)
	srv := smtptest.New(t, smtptest.WithFaults(func(rcpt string, _ int) smtptest.Fault {
		if rcpt == victim && clock.Now().Before(until) {
			return smtptest.Fault{Rcpt: smtptest.Reply(451, 4, 7, 1, "greylisted, try again in 3 minutes")}
		}
		return smtptest.Fault{}
	}))
	l := newFakeLedger(issueID, 4)
	l.clock = clock
	opts := withClock(fastOptions(), clock)
	sum, err := deliver.Issue(t.Context(), issueID, testPrepared(t), l, smtpTransport(t, srv, nil), opts)
	if err != nil || sum.Sent != 3 || sum.Waiting != 1 {
		t.Fatalf("first run: %+v, %v; want 3 sent, 1 waiting", sum, err)
	}
	if d := sum.NextRetry.Sub(clock.Now()); d != 5*time.Minute {
		t.Errorf("next retry in %s, want 5m", d)
	}
	// Before the retry is due, a run sends nothing.
	clock.Advance(4 * time.Minute)
	if sum, _ := deliver.Issue(t.Context(), issueID, testPrepared(t), l, smtpTransport(t, srv, nil), opts); sum.Sent != 0 {
		t.Errorf("a run before the retry time sent %d", sum.Sent)
	}
	clock.Advance(time.Minute)
	if sum, err := deliver.Issue(t.Context(), issueID, testPrepared(t), l, smtpTransport(t, srv, nil), opts); err != nil || sum.Sent != 1 {
		t.Fatalf("run once due: %+v, %v", sum, err)
	}
	if row := l.row(2); row.status != ledger.Sent || row.rc.Attempts != 2 {
		t.Errorf("greylisted reader: %s after %d attempts, want sent after 2", row.status, row.rc.Attempts)
	}
}

// A mailbox full for 3 days, with a run every hour (a daemon): retried
// with growing intervals, failed only once retry_for (48h) has passed,
// with the server's last reply.
func TestMailboxFullThreeDaysThenFailed(t *testing.T) {
	t.Parallel()
	const victim = "r001@example.com"
	srv := smtptest.New(t, smtptest.WithFaults(func(rcpt string, _ int) smtptest.Fault {
		if rcpt == victim {
			return smtptest.Fault{Rcpt: smtptest.Reply(452, 4, 2, 2, "mailbox full")}
		}
		return smtptest.Fault{}
	}))
	clock := newFakeClock()
	start := clock.Now()
	l := newFakeLedger(issueID, 3)
	l.clock = clock
	opts := withClock(fastOptions(), clock)
	var failedAt time.Time
	for clock.Now().Sub(start) < 72*time.Hour {
		if _, err := deliver.Issue(t.Context(), issueID, testPrepared(t), l, smtpTransport(t, srv, nil), opts); err != nil {
			t.Fatal(err)
		}
		if failedAt.IsZero() && l.row(1).status == ledger.Failed {
			failedAt = clock.Now()
		}
		clock.Advance(time.Hour)
	}
	l.check(t)
	row := l.row(1)
	if row.status != ledger.Failed || row.last.Bounced {
		t.Fatalf("victim %s (bounced %v), want failed, not bounced", row.status, row.last.Bounced)
	}
	if took := failedAt.Sub(start); took < 48*time.Hour || took > 50*time.Hour {
		t.Errorf("failed %s after the first try, want just after retry_for (48h)", took)
	}
	if row.rc.Attempts != 5 || srv.Calls(victim) != 5 {
		t.Errorf("%d attempts, %d RCPT, want 5 (max_attempts)", row.rc.Attempts, srv.Calls(victim))
	}
	if !strings.Contains(row.last.Reply, "gave up after 5 attempts") || row.last.Enhanced != "4.2.2" ||
		!strings.Contains(row.last.Reply, "mailbox full") {
		t.Errorf("last reply %q (%s), want the server's", row.last.Reply, row.last.Enhanced)
	}
	if l.count(ledger.Sent) != 2 {
		t.Errorf("%d others sent, want 2", l.count(ledger.Sent))
	}
}

// fakeConn answers Send with the errors in errs, in order (shared by all
// connections), then accepts.
type fakeConn struct{ errs *errQueue }

type errQueue struct {
	mu   sync.Mutex
	errs []error
}

func (q *errQueue) next() error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.errs) == 0 {
		return nil
	}
	err := q.errs[0]
	q.errs = q.errs[1:]
	return err
}

func (c fakeConn) Send(_ context.Context, _ *mail.Message, ready deliver.Ready) (bool, error) {
	if err := c.errs.next(); err != nil {
		return false, err
	}
	_, err := ready(false)
	return false, err
}

func (fakeConn) Close() error { return nil }

type fakeTransport struct {
	clock *clocktest.Clock
	until time.Time
	errs  *errQueue
}

func (f fakeTransport) Open(context.Context) (deliver.Conn, error) {
	if f.clock.Now().Before(f.until) {
		return nil, errors.New("connection refused")
	}
	return fakeConn{f.errs}, nil
}

// The first try after an outage times out (no reply): that is the
// reader's own failure, and it must not leave the run waiting for a probe
// that never ends; the next worker tries, finds the relay up, and the rest
// is sent.
func TestProbeWithoutAnswerDoesNotStall(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	tr := fakeTransport{clock: clock, until: clock.Now().Add(10 * time.Minute),
		errs: &errQueue{errs: []error{errors.New("read tcp: i/o timeout")}}}
	l := newFakeLedger(issueID, 10)
	l.clock = clock
	opts := withClock(fastOptions(), clock)
	opts.OutageWait = -1
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	sum, err := deliver.Issue(ctx, issueID, testPrepared(t), l, tr, opts)
	if err != nil {
		t.Fatalf("Run: %v (%+v)", err, sum)
	}
	if sum.Sent != 9 || sum.Waiting != 1 {
		t.Errorf("summary %+v, want 9 sent and 1 waiting for a retry", sum)
	}
	l.check(t)
}

// The same with two connections and a recipient each: the prober's try
// ends without an answer and it has nobody left, so the worker waiting at
// the gate must be woken to probe (it waited for ever before).
func TestProbeWithoutAnswerWakesTheWaiters(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	tr := fakeTransport{clock: clock, until: clock.Now().Add(10 * time.Minute),
		errs: &errQueue{errs: []error{errors.New("read tcp: i/o timeout")}}}
	l := newFakeLedger(issueID, 2)
	l.clock = clock
	opts := withClock(fastOptions(), clock)
	opts.Connections, opts.BatchSize, opts.OutageWait = 2, 2, -1
	sleep := opts.Sleep
	opts.Sleep = func(ctx context.Context, d time.Duration) bool {
		time.Sleep(5 * time.Millisecond) // let the other worker reach the gate
		return sleep(ctx, d)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	sum, err := deliver.Issue(ctx, issueID, testPrepared(t), l, tr, opts)
	if err != nil {
		t.Fatalf("Run: %v (%+v)", err, sum)
	}
	if sum.Sent+sum.Waiting != 2 {
		t.Errorf("summary %+v, want both readers settled", sum)
	}
	l.check(t)
}

// A per_hour cap pauses the run like an outage: a one-shot run stops after
// OutageWait and says when sending resumes; a daemon's run waits for the
// slot and goes on by itself.
func TestQuotaPausesAndSaysWhenItResumes(t *testing.T) {
	t.Parallel()
	for _, wait := range []time.Duration{10 * time.Minute, -1} {
		srv := smtptest.New(t)
		clock := newFakeClock()
		start := clock.Now()
		l := newFakeLedger(issueID, 5)
		opts := withClock(fastOptions(), clock)
		opts.Connections, opts.PerHour, opts.OutageWait = 1, 3, wait
		obs := &observer{}
		opts.Relay = deliver.NewRelayState(obs)
		sum, err := deliver.Issue(t.Context(), issueID, testPrepared(t), l, smtpTransport(t, srv, nil), opts)
		if wait > 0 {
			want := "sending resumes at " + start.Add(time.Hour).Format(time.DateTime)
			if !errors.Is(err, deliver.ErrQuota) || !strings.Contains(err.Error(), want) || sum.Sent != 3 {
				t.Errorf("one-shot: %+v, %v; want 3 sent and ErrQuota saying %q", sum, err, want)
			}
			continue
		}
		if err != nil || sum.Sent != 5 {
			t.Errorf("daemon: %+v, %v; want all 5 sent", sum, err)
		}
		if took := clock.Now().Sub(start); took < time.Hour || took > time.Hour+time.Minute {
			t.Errorf("daemon: took %s, want the hour the cap holds", took)
		}
		if _, d := obs.snapshot(); d[deliver.DeferQuota] == 0 || d[deliver.DeferRelay] != 0 {
			t.Errorf("deferrals %v, want quota ones only", d)
		}
	}
}

// A 421 in the middle of a session (the relay closing down) is the relay's
// at once: no streak needed, no attempt counted.
func TestRelay421MidSession(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	until := clock.Now().Add(10 * time.Minute)
	srv := smtptest.New(t, smtptest.WithFaults(func(string, int) smtptest.Fault {
		if clock.Now().Before(until) {
			return smtptest.Fault{Rcpt: smtptest.Reply(421, 4, 3, 2, "system shutting down")}
		}
		return smtptest.Fault{}
	}))
	l := newFakeLedger(issueID, 6)
	opts := withClock(fastOptions(), clock)
	opts.Backoff = deliver.DefaultBackoff
	opts.OutageWait = -1
	sum, err := deliver.Issue(t.Context(), issueID, testPrepared(t), l, smtpTransport(t, srv, nil), opts)
	if err != nil || sum.Sent != 6 {
		t.Fatalf("Run: %+v, %v", sum, err)
	}
	for i := int64(1); i <= 6; i++ {
		if a := l.row(i).rc.Attempts; a != 1 {
			t.Errorf("subscriber %d: %d attempts, want 1", i, a)
		}
	}
}
