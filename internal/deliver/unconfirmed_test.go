package deliver_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/digest/digest/internal/deliver"
	"github.com/digest/digest/internal/ledger"
	"github.com/digest/digest/internal/smtptest"
)

// A relay that accepts a message but replies to the end of DATA late: up to
// DataTimeout the message is sent once; past it the outcome is unknown and
// the recipient waits for the next run (at most one repeat per run), and is
// failed only when no attempt is left.
func TestRunNoReplyAfterData(t *testing.T) {
	const victim = "r003@example.com"
	tests := []struct {
		name        string
		delay       func(call int) time.Duration // DataDelay for the victim
		dataTimeout time.Duration
		maxAttempts int
		priorTries  int
		wantStatus  string // after the first run
		wantAttempt int
		wantReply   string
		wantPending int
		// a second run, when wantStatus is pending
		wantStatus2 string
		wantCopies2 int
	}{
		{
			name:        "reply within DataTimeout: sent once",
			delay:       func(int) time.Duration { return 250 * time.Millisecond },
			dataTimeout: 2 * time.Second,
			wantStatus:  ledger.Sent, wantAttempt: 1,
		},
		{
			name: "reply after DataTimeout: pending, not retried, sent by the next run",
			delay: func(call int) time.Duration {
				if call == 1 {
					return 2 * time.Second
				}
				return 0
			},
			dataTimeout: 300 * time.Millisecond,
			wantStatus:  ledger.Pending, wantAttempt: 1, wantPending: 1,
			wantReply:   "no reply after end of DATA; the relay may have accepted it; retried on the next run: end of DATA: ",
			wantStatus2: ledger.Sent, wantCopies2: 2,
		},
		{
			name:        "no reply on the last attempt: failed, saying it may have been delivered",
			delay:       func(int) time.Duration { return 2 * time.Second },
			dataTimeout: 300 * time.Millisecond,
			maxAttempts: 2, priorTries: 1,
			wantStatus: ledger.Failed, wantAttempt: 2,
			wantReply: "gave up after 2 attempts: no reply after end of DATA; the relay may have accepted it",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			const n = 6
			srv := smtptest.New(t, smtptest.WithFaults(func(rcpt string, call int) smtptest.Fault {
				if rcpt == victim {
					return smtptest.Fault{DataDelay: tt.delay(call)}
				}
				return smtptest.Fault{}
			}))
			l := newFakeLedger(issueID, n)
			l.byID[3].rc.Attempts = tt.priorTries
			opts := fastOptions()
			opts.Connections = 2
			if tt.maxAttempts > 0 {
				opts.MaxAttempts = tt.maxAttempts
			}
			tr := smtpTransport(t, srv, func(o *deliver.SMTPOptions) {
				o.Timeout, o.DataTimeout = 100*time.Millisecond, tt.dataTimeout
			})
			sum, err := deliver.Issue(t.Context(), issueID, testPrepared(t), l, tr, opts)
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			l.check(t)
			row := l.row(3)
			if row.status != tt.wantStatus || row.rc.Attempts != tt.wantAttempt || !strings.Contains(row.last.Reply, tt.wantReply) {
				t.Errorf("victim: %s after %d attempts (%q); want %s after %d, reply containing %q",
					row.status, row.rc.Attempts, row.last.Reply, tt.wantStatus, tt.wantAttempt, tt.wantReply)
			}
			if row.last.Bounced {
				t.Error("victim marked bounced")
			}
			// Never retried within the run: one RCPT, one copy.
			if c, k := srv.Calls(victim), srv.Count(victim); c != 1 || k != 1 {
				t.Errorf("victim: %d RCPT TO, %d copies in the first run; want 1 and 1", c, k)
			}
			if sum.Pending != tt.wantPending || sum.Sent+sum.Failed+sum.Pending != n {
				t.Errorf("summary %+v, want %d pending", sum, tt.wantPending)
			}
			for i := int64(1); i <= n; i++ {
				if rc := l.row(i).rc; i != 3 && srv.Count(rc.Email) != 1 {
					t.Errorf("%s got %d copies, want 1", rc.Email, srv.Count(rc.Email))
				}
			}
			if tt.wantStatus2 == "" {
				return
			}
			if _, err := deliver.Issue(t.Context(), issueID, testPrepared(t), l, tr, opts); err != nil {
				t.Fatalf("second Run: %v", err)
			}
			l.check(t)
			if row := l.row(3); row.status != tt.wantStatus2 || row.rc.Attempts != tt.wantAttempt+1 {
				t.Errorf("victim after the second run: %s after %d attempts (%q)", row.status, row.rc.Attempts, row.last.Reply)
			}
			if k := srv.Count(victim); k != tt.wantCopies2 {
				t.Errorf("victim holds %d copies after two runs, want %d", k, tt.wantCopies2)
			}
		})
	}
}

// A relay that never answers the end of DATA stops the run after 3 such
// messages per connection in a row, instead of waiting DataTimeout for
// every recipient.
func TestRunStopsWhenRelayNeverConfirms(t *testing.T) {
	const n = 10
	srv := smtptest.New(t, smtptest.WithFaults(func(string, int) smtptest.Fault {
		return smtptest.Fault{DataDelay: 2 * time.Second}
	}))
	l := newFakeLedger(issueID, n)
	opts := fastOptions()
	opts.Connections = 1
	tr := smtpTransport(t, srv, func(o *deliver.SMTPOptions) {
		o.Timeout, o.DataTimeout = 100*time.Millisecond, 200*time.Millisecond
	})
	sum, err := deliver.Issue(t.Context(), issueID, testPrepared(t), l, tr, opts)
	if err == nil || !strings.Contains(err.Error(), "no reply after end of DATA") {
		t.Fatalf("Run: %v, want the relay error", err)
	}
	l.check(t)
	if srv.Total() != 3 || sum.Pending != n || sum.Sent+sum.Failed != 0 {
		t.Errorf("server got %d, summary %+v; want 3 messages and all %d pending", srv.Total(), sum, n)
	}
	tried := 0
	for i := int64(1); i <= n; i++ {
		if row := l.row(i); row.status != ledger.Pending {
			t.Errorf("row %d is %s, want pending", i, row.status)
		} else if row.rc.Attempts > 0 {
			tried++
		}
	}
	if tried != 3 {
		t.Errorf("%d rows have an attempt, want 3", tried)
	}
}

// Cancelling the run while it waits for the reply to the end of DATA cuts
// the long wait to Timeout; the recipient is left pending.
func TestRunCancelDuringDataWait(t *testing.T) {
	const victim = "r001@example.com"
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	srv := smtptest.New(t,
		smtptest.WithFaults(func(string, int) smtptest.Fault { return smtptest.Fault{DataDelay: 5 * time.Second} }),
		smtptest.WithOnData(func(string) { cancel() }))
	l := newFakeLedger(issueID, 3)
	opts := fastOptions()
	opts.Connections = 1
	tr := smtpTransport(t, srv, func(o *deliver.SMTPOptions) {
		o.Timeout, o.DataTimeout = 100*time.Millisecond, 10*time.Second
	})
	start := time.Now()
	sum, err := deliver.Issue(ctx, issueID, testPrepared(t), l, tr, opts)
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("Run took %v after cancel, want about Timeout", took)
	}
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Run: %v, want context.Canceled", err)
	}
	l.check(t)
	if row := l.row(1); row.status != ledger.Pending || row.rc.Attempts != 1 {
		t.Errorf("victim %s after %d attempts, want pending after 1", row.status, row.rc.Attempts)
	}
	if srv.Count(victim) != 1 || sum.Pending != 3 {
		t.Errorf("victim got %d copies, summary %+v", srv.Count(victim), sum)
	}
}
