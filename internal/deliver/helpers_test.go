package deliver_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/digest/digest/internal/clocktest"
	"github.com/digest/digest/internal/deliver"
	"github.com/digest/digest/internal/ledger"
	"github.com/digest/digest/internal/mail"
	"github.com/digest/digest/internal/render"
	"github.com/digest/digest/internal/smtptest"
)

// ---- in-memory ledger ----

type fakeLedger struct {
	clock      *clocktest.Clock // retry times; nil: a row with a retry delay is never due again
	mu         sync.Mutex
	rows       []*fakeRow
	byID       map[int64]*fakeRow
	recordErr  error
	claims     int
	violations []string // calls that break the ledger's rules
}

type fakeRow struct {
	rc     ledger.Recipient
	status string
	last   ledger.Outcome
	due    time.Time // the next attempt, for a pending row
}

var _ deliver.Ledger = (*fakeLedger)(nil)

func newFakeLedger(issueID string, n int) *fakeLedger {
	l := &fakeLedger{byID: map[int64]*fakeRow{}}
	for i := 1; i <= n; i++ {
		l.add(ledger.Recipient{IssueID: issueID, SubscriberID: int64(i), Email: fmt.Sprintf("r%03d@example.com", i), Name: fmt.Sprintf("Reader %d", i)})
	}
	return l
}

func (l *fakeLedger) add(rc ledger.Recipient) {
	r := &fakeRow{rc: rc, status: ledger.Pending}
	l.rows = append(l.rows, r)
	l.byID[rc.SubscriberID] = r
}

func (l *fakeLedger) Claim(ctx context.Context, issueID string, limit int) ([]ledger.Recipient, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.claims++
	var out []ledger.Recipient
	for _, r := range l.rows {
		if len(out) == limit {
			break
		}
		if r.status == ledger.Pending && r.rc.IssueID == issueID && !l.notDue(r) {
			r.status = ledger.Sending
			out = append(out, r.rc)
		}
	}
	return out, nil
}

func (l *fakeLedger) Record(_ context.Context, _ string, outs []ledger.Outcome) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.recordErr != nil {
		return l.recordErr
	}
	for _, o := range outs {
		r := l.byID[o.SubscriberID]
		if r == nil || r.status != ledger.Sending {
			l.violations = append(l.violations, fmt.Sprintf("record %d in state %v", o.SubscriberID, r))
			continue
		}
		r.status = o.Status
		r.rc.Attempts = o.Attempts
		r.last = o
		r.due = time.Time{}
		if o.Status == ledger.Pending && o.RetryAfter > 0 {
			r.due = time.Unix(1<<40, 0) // never
			if l.clock != nil {
				r.due = l.clock.Now().Add(o.RetryAfter)
			}
		}
	}
	return nil
}

func (l *fakeLedger) notDue(r *fakeRow) bool {
	if r.due.IsZero() {
		return false
	}
	return l.clock == nil || l.clock.Now().Before(r.due)
}

// ---- clock ----

// newFakeClock is the real-time clock of a run (Options.Clock and Sleep):
// sleeping advances it at once.
func newFakeClock() *clocktest.Clock {
	return clocktest.New(time.Date(2026, 5, 4, 18, 2, 0, 0, time.Local))
}

// withClock makes o run on c: waits cost nothing.
func withClock(o deliver.Options, c *clocktest.Clock) deliver.Options {
	o.Clock, o.Sleep, o.Now = c.Now, c.Sleep, c.Now
	return o
}

func (l *fakeLedger) Release(_ context.Context, _ string, ids []int64) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, id := range ids {
		r := l.byID[id]
		if r == nil || r.status != ledger.Sending {
			l.violations = append(l.violations, fmt.Sprintf("release %d in state %v", id, r))
			continue
		}
		r.status = ledger.Pending
	}
	return nil
}

func (l *fakeLedger) row(id int64) fakeRow {
	l.mu.Lock()
	defer l.mu.Unlock()
	return *l.byID[id]
}

func (l *fakeLedger) count(status string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, r := range l.rows {
		if r.status == status {
			n++
		}
	}
	return n
}

// check fails the test when a rule of the ledger was broken or a row was
// left in sending.
func (l *fakeLedger) check(t *testing.T) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, v := range l.violations {
		t.Errorf("ledger rule broken: %s", v)
	}
	for _, r := range l.rows {
		if r.status == ledger.Sending {
			t.Errorf("subscriber %d left in sending", r.rc.SubscriberID)
		}
	}
}

// ---- fixtures ----

const issueID = "2026-05-04"

func testRendered() *render.Rendered {
	return render.NewRendered("Digest of the week",
		`<p>Hi `+render.TokenName+`</p><p><a href="`+render.TokenUnsubscribeURL+`">Unsubscribe</a></p>`,
		"Hi "+render.TokenName+"\n\nUnsubscribe: "+render.TokenUnsubscribeURL+"\n")
}

func testComposer(t *testing.T) *mail.Composer {
	t.Helper()
	c, err := mail.NewComposer(mail.Options{
		ListName: "Test Digest", From: "Digest <news@example.org>",
		BaseURL: "http://127.0.0.1:8080", Secret: []byte("secret"),
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// prepare encodes r once with comp.
func prepare(t testing.TB, comp *mail.Composer, r *render.Rendered) *mail.Prepared {
	t.Helper()
	p, err := comp.Prepare(r)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// testPrepared is testRendered encoded by testComposer.
func testPrepared(t *testing.T) *mail.Prepared {
	t.Helper()
	return prepare(t, testComposer(t), testRendered())
}

func smtpTransport(t testing.TB, s *smtptest.Server, mod func(*deliver.SMTPOptions)) *deliver.SMTP {
	t.Helper()
	o := deliver.SMTPOptions{Host: "127.0.0.1", Port: s.Port(), TLS: "none", Auth: "auto",
		Timeout: 2 * time.Second, DataTimeout: 10 * time.Minute, HELO: "test.local"}
	if mod != nil {
		mod(&o)
	}
	tr, err := deliver.NewSMTP(o)
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

// fastOptions runs on a fake clock of its own, so that pauses and backoff
// cost nothing.
func fastOptions() deliver.Options {
	return withClock(deliver.Options{
		Connections: 4, MaxAttempts: 5, BatchSize: 10,
		Backoff: func(int) time.Duration { return time.Second },
	}, newFakeClock())
}
