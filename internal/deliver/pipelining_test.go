package deliver_test

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/digest/digest/internal/deliver"
	"github.com/digest/digest/internal/ledger"
	"github.com/digest/digest/internal/smtptest"
)

// With PIPELINING a message's end of DATA carries the next message's MAIL,
// RCPT and DATA: one turn of the dialogue per message instead of two.
// Without it, or while the rate limit makes the next message wait, each
// message waits for its verdict before the next one starts.
func TestPipeliningOneTurnPerMessage(t *testing.T) {
	t.Parallel()
	const n = 8
	for _, tc := range []struct {
		name      string
		server    []smtptest.Option
		client    func(*deliver.SMTP)
		rate      float64
		coalesced bool
	}{
		{name: "offered", coalesced: true},
		{name: "not offered", server: []smtptest.Option{smtptest.WithoutPipelining()}},
		{name: "not used by the client", client: deliver.WithoutPipelining},
		{name: "next message waits for the rate limit", rate: 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := smtptest.New(t, tc.server...)
			tr := smtpTransport(t, srv, nil)
			if tc.client != nil {
				tc.client(tr)
			}
			l := newFakeLedger(issueID, n)
			opts := fastOptions()
			opts.Connections, opts.Rate = 1, tc.rate
			sum, err := deliver.Issue(t.Context(), issueID, testPrepared(t), l, tr, opts)
			if err != nil || sum.Sent != n || sum.Attempts != n {
				t.Fatalf("summary %+v, err %v", sum, err)
			}
			l.check(t)
			if srv.Total() != n || srv.Sessions() != 1 {
				t.Errorf("server accepted %d in %d sessions, want %d in 1", srv.Total(), srv.Sessions(), n)
			}
			// EHLO and QUIT take a turn each; each message one more
			// (two when not coalesced), the first two with pipelining.
			turns := srv.Turns()
			if tc.coalesced && turns > n+3 {
				t.Errorf("%d turns for %d messages, want at most %d", turns, n, n+3)
			}
			if !tc.coalesced && turns < 2*n {
				t.Errorf("%d turns for %d messages: next envelope sent without waiting", turns, n)
			}
			t.Logf("%d turns for %d messages", turns, n)
		})
	}
}

// Failures around the coalesced write, on one connection, the victim being
// the third of six messages (its envelope went with the second's end of
// DATA; its own end of DATA carries the fourth's envelope).
func TestPipeliningFailures(t *testing.T) {
	t.Parallel()
	const victim, n = "r003@example.com", 6
	for _, tc := range []struct {
		name       string
		fault      func(call int) smtptest.Fault
		dataWait   time.Duration // DataTimeout
		status     string        // the victim's after the run
		attempts   int
		code       int
		copies     int // the victim's accepted messages
		sessions   int
		replyInRow string
	}{
		{
			name: "end of DATA refused 554: the next message goes on",
			fault: func(int) smtptest.Fault {
				return smtptest.Fault{Data: smtptest.Reply(554, 5, 6, 0, "content rejected")}
			},
			status: ledger.Failed, attempts: 1, code: 554, sessions: 1,
		},
		{
			name:   "end of DATA deferred 451: the next message goes on",
			fault:  func(int) smtptest.Fault { return smtptest.Fault{Data: smtptest.Reply(451, 4, 3, 0, "try later")} },
			status: ledger.Pending, attempts: 1, code: 451, sessions: 1,
		},
		{
			name:   "RCPT refused in the coalesced envelope: the previous one stands",
			fault:  func(int) smtptest.Fault { return smtptest.Fault{Rcpt: smtptest.Reply(550, 5, 1, 1, "no such user")} },
			status: ledger.Failed, attempts: 1, code: 550, sessions: 1,
		},
		{
			name:   "RCPT deferred in the coalesced envelope",
			fault:  func(int) smtptest.Fault { return smtptest.Fault{Rcpt: smtptest.Reply(452, 4, 2, 2, "mailbox full")} },
			status: ledger.Pending, attempts: 1, code: 452, sessions: 1,
		},
		{
			name:   "connection lost at the end of DATA: unconfirmed; the next one goes on a new connection, uncounted",
			fault:  func(call int) smtptest.Fault { return smtptest.Fault{HangUpAtData: call == 1} },
			status: ledger.Pending, attempts: 1, sessions: 2, replyInRow: "no reply after end of DATA",
		},
		{
			name:     "no reply to the end of DATA in time: unconfirmed, the next one uncounted",
			fault:    func(call int) smtptest.Fault { return smtptest.Fault{DataDelay: 2 * time.Second} },
			dataWait: 300 * time.Millisecond,
			status:   ledger.Pending, attempts: 1, copies: 1, sessions: 2, replyInRow: "no reply after end of DATA",
		},
		{
			name:   "accepted, then the connection drops: the next one is stale, retried uncounted",
			fault:  func(call int) smtptest.Fault { return smtptest.Fault{DropAfterData: call == 1} },
			status: ledger.Sent, attempts: 1, copies: 1, sessions: 2,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := smtptest.New(t, smtptest.WithFaults(func(rcpt string, call int) smtptest.Fault {
				if rcpt == victim {
					return tc.fault(call)
				}
				return smtptest.Fault{}
			}))
			l := newFakeLedger(issueID, n)
			opts := fastOptions()
			opts.Connections = 1
			tr := smtpTransport(t, srv, func(o *deliver.SMTPOptions) {
				o.Timeout = time.Second
				if tc.dataWait > 0 {
					o.DataTimeout = tc.dataWait
				}
			})
			sum, err := deliver.Issue(t.Context(), issueID, testPrepared(t), l, tr, opts)
			if err != nil {
				t.Fatalf("Run: %v (%+v)", err, sum)
			}
			l.check(t)
			row := l.row(3)
			if row.status != tc.status || row.rc.Attempts != tc.attempts || row.last.Code != tc.code ||
				!strings.Contains(row.last.Reply, tc.replyInRow) {
				t.Errorf("victim: %s after %d attempts, code %d (%q); want %s after %d, code %d",
					row.status, row.rc.Attempts, row.last.Code, row.last.Reply, tc.status, tc.attempts, tc.code)
			}
			if c := srv.Count(victim); c != tc.copies {
				t.Errorf("victim got %d copies, want %d", c, tc.copies)
			}
			// Everyone else: sent once, in one attempt (the one after the
			// victim too, whose envelope went with the victim's end of
			// DATA).
			for i := int64(1); i <= n; i++ {
				if i == 3 {
					continue
				}
				r := l.row(i)
				if r.status != ledger.Sent || r.rc.Attempts != 1 || srv.Count(r.rc.Email) != 1 {
					t.Errorf("%s: %s after %d attempts, %d copies; want sent once in 1", r.rc.Email, r.status, r.rc.Attempts, srv.Count(r.rc.Email))
				}
			}
			if s := srv.Sessions(); s != tc.sessions {
				t.Errorf("%d sessions, want %d", s, tc.sessions)
			}
			// Coalesced: fewer turns than two per message.
			if turns := srv.Turns(); turns >= 2*n {
				t.Errorf("%d turns for %d messages: the envelopes did not go with the ends of DATA", turns, n)
			}
		})
	}
}

// The run stopping between two messages, when the second one's envelope
// already went with the first one's end of DATA: that second message is in
// flight and is sent (recorded sent, like any message being sent when the
// run stops), then the session ends; the rest goes back to pending with no
// attempt counted.
func TestPipeliningStopBetweenMessages(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var accepted atomic.Int32
	srv := smtptest.New(t, smtptest.WithOnData(func(string) {
		if accepted.Add(1) == 2 {
			cancel() // after the client sent the end of DATA and the next envelope
		}
	}))
	l := newFakeLedger(issueID, 5)
	opts := fastOptions()
	opts.Connections = 1
	sum, err := deliver.Issue(ctx, issueID, testPrepared(t), l, smtpTransport(t, srv, nil), opts)
	if err == nil {
		t.Fatalf("Run: no error, want the cancellation (%+v)", sum)
	}
	l.check(t)
	if srv.Total() != 3 || sum.Sent != 3 || l.count(ledger.Sent) != 3 {
		t.Errorf("server accepted %d, summary %+v; want 3 sent", srv.Total(), sum)
	}
	for i := int64(4); i <= 5; i++ {
		if r := l.row(i); r.status != ledger.Pending || r.rc.Attempts != 0 || srv.Calls(r.rc.Email) != 0 {
			t.Errorf("row %d: %s after %d attempts, %d RCPT TO; want pending, untried", i, r.status, r.rc.Attempts, srv.Calls(r.rc.Email))
		}
	}
}

// A transaction opened for the next message on a connection that is then
// given up is ended without the message being accepted: here the victim's
// end of DATA gets the fifth identical 451 in a row (the relay is down),
// so the victim is tried again once it answers, on a new connection, and
// the envelope that went with its end of DATA is dropped with the old one.
func TestPipeliningOpenedThenGivenUp(t *testing.T) {
	t.Parallel()
	const n = 8
	down := smtptest.Reply(451, 4, 3, 0, "queue full")
	srv := smtptest.New(t, smtptest.WithFaults(func(rcpt string, call int) smtptest.Fault {
		if call == 1 && rcpt <= "r005@example.com" {
			return smtptest.Fault{Data: down}
		}
		return smtptest.Fault{}
	}))
	l := newFakeLedger(issueID, n)
	opts := fastOptions()
	opts.Connections = 1
	sum, err := deliver.Issue(t.Context(), issueID, testPrepared(t), l, smtpTransport(t, srv, nil), opts)
	if err != nil || sum.Sent != n {
		t.Fatalf("summary %+v, err %v", sum, err)
	}
	l.check(t)
	for i := int64(1); i <= n; i++ {
		r := l.row(i)
		if srv.Count(r.rc.Email) != 1 || r.rc.Attempts != 1 {
			t.Errorf("%s: %d copies after %d attempts, want 1 and 1", r.rc.Email, srv.Count(r.rc.Email), r.rc.Attempts)
		}
	}
	if s := srv.Sessions(); s < 2 {
		t.Errorf("%d sessions: the connection holding the next envelope was kept", s)
	}
}
