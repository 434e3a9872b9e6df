package deliver_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/digest/digest/internal/deliver"
	"github.com/digest/digest/internal/ledger"
	"github.com/digest/digest/internal/mail"
	"github.com/digest/digest/internal/render"
	"github.com/digest/digest/internal/smtptest"
)

// slowLedger makes every Record take a while, like a disk that syncs.
type slowLedger struct {
	*fakeLedger
	delay   time.Duration
	records atomic.Int32
	sent    atomic.Int32
	// inFlight and most count the Records running at once.
	inFlight, most atomic.Int32
}

func (l *slowLedger) Record(ctx context.Context, issueID string, outs []ledger.Outcome) error {
	n := l.inFlight.Add(1)
	defer l.inFlight.Add(-1)
	for m := l.most.Load(); n > m && !l.most.CompareAndSwap(m, n); m = l.most.Load() {
	}
	time.Sleep(l.delay)
	if err := l.fakeLedger.Record(ctx, issueID, outs); err != nil {
		return err
	}
	l.records.Add(1)
	for _, o := range outs {
		if o.Status == ledger.Sent {
			l.sent.Add(1)
		}
	}
	return nil
}

// parallelLedger is a slowLedger that takes several Records at once.
type parallelLedger struct {
	*slowLedger
	n int
}

func (l parallelLedger) ParallelRecords() int { return l.n }

// At any moment, the messages the server accepted that the ledger does not
// show as sent are at most one per connection; and outcomes are written in
// batches, not one Record per message; with a ParallelLedger too, whose
// Records run side by side up to its limit.
func TestRunAtMostOneUnrecordedPerConnection(t *testing.T) {
	t.Parallel()
	for _, parallel := range []int{1, 3} {
		t.Run(fmt.Sprintf("records at once %d", parallel), func(t *testing.T) {
			t.Parallel()
			const n, conns = 120, 4
			l := &slowLedger{fakeLedger: newFakeLedger(issueID, n), delay: 3 * time.Millisecond}
			var dl deliver.Ledger = l
			if parallel > 1 {
				dl = parallelLedger{l, parallel}
			}
			var accepted atomic.Int32
			var worst atomic.Int32
			srv := smtptest.New(t, smtptest.WithOnData(func(string) {
				gap := accepted.Add(1) - l.sent.Load()
				for {
					w := worst.Load()
					if gap <= w || worst.CompareAndSwap(w, gap) {
						break
					}
				}
			}))
			opts := fastOptions()
			opts.Connections, opts.BatchSize = conns, 50
			sum, err := deliver.Issue(t.Context(), issueID, testPrepared(t), dl, smtpTransport(t, srv, nil), opts)
			if err != nil || sum.Sent != n {
				t.Fatalf("summary %+v, err %v", sum, err)
			}
			l.check(t)
			if w := worst.Load(); w > conns {
				t.Errorf("up to %d accepted messages were unrecorded at once, want at most %d (one per connection)", w, conns)
			}
			// While one Record waits on the slow ledger the other connections'
			// outcomes queue up; how many depends on scheduling, so only "one
			// Record per message" is a failure (a loaded machine must not flake).
			if r := l.records.Load(); r >= n && parallel == 1 {
				t.Errorf("%d Record calls for %d messages: not batched", r, n)
			}
			if m := l.most.Load(); m > int32(parallel) {
				t.Errorf("%d Records at once, want at most %d", m, parallel)
			}
			t.Logf("worst gap %d, %d records for %d messages, at most %d at once", worst.Load(), l.records.Load(), n, l.most.Load())
		})
	}
}

func TestRunQuota(t *testing.T) {
	tests := []struct {
		name      string
		perHour   int
		perDay    int
		before    int // sent by earlier runs
		wantSent  int
		wantInErr string
	}{
		{"hour", 7, 0, 0, 7, "per_hour"},
		{"day", 0, 5, 0, 5, "per_day"},
		{"day with earlier runs", 100, 12, 9, 3, "per_day"},
		{"not reached", 50, 50, 0, 20, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := smtptest.New(t)
			l := newFakeLedger(issueID, 20)
			opts := fastOptions()
			opts.PerHour, opts.PerDay = tt.perHour, tt.perDay
			opts.SentSince = func(context.Context, time.Time) (int, error) { return tt.before + l.count(ledger.Sent), nil }
			sum, err := deliver.Issue(t.Context(), issueID, testPrepared(t), l, smtpTransport(t, srv, nil), opts)
			l.check(t)
			if sum.Sent != tt.wantSent || srv.Total() != tt.wantSent || l.count(ledger.Pending) != 20-tt.wantSent {
				t.Errorf("summary %+v, server %d, pending %d; want %d sent", sum, srv.Total(), l.count(ledger.Pending), tt.wantSent)
			}
			if tt.wantInErr == "" {
				if err != nil {
					t.Errorf("err %v", err)
				}
				return
			}
			if !errors.Is(err, deliver.ErrQuota) || !strings.Contains(err.Error(), tt.wantInErr) {
				t.Errorf("err = %v, want ErrQuota naming %s", err, tt.wantInErr)
			}
		})
	}
}

func TestSMTPAuthMechanisms(t *testing.T) {
	for _, tt := range []struct{ server, client string }{
		{"PLAIN", "plain"}, {"LOGIN", "login"}, {"CRAM-MD5", "cram-md5"}, {"CRAM-MD5", "auto"}, {"PLAIN", "auto"},
	} {
		t.Run(tt.server+"/"+tt.client, func(t *testing.T) {
			srv := smtptest.New(t, smtptest.WithAuth("ann", "s3cret", tt.server))
			l := newFakeLedger(issueID, 3)
			tr := smtpTransport(t, srv, func(o *deliver.SMTPOptions) { o.Username, o.Password, o.Auth = "ann", "s3cret", tt.client })
			sum, err := deliver.Issue(t.Context(), issueID, testPrepared(t), l, tr, fastOptions())
			if err != nil || sum.Sent != 3 {
				t.Errorf("summary %+v, err %v", sum, err)
			}
		})
	}
}

// The bytes the server receives are exactly the built message (dot-stuffing
// undone), with and without pipelining, and the envelope sender is the
// configured one.
func TestSMTPSendsExactBytes(t *testing.T) {
	now := time.Date(2026, 5, 4, 8, 0, 0, 0, time.UTC)
	comp, err := mail.NewComposer(mail.Options{ListName: "T", From: "Digest <news@example.org>", EnvelopeFrom: "bounces@example.org",
		BaseURL: "https://x.example", Secret: []byte("s"), Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	text := ".starts with a dot\n..two dots\n.\nHi " + render.TokenName + "\n" + strings.Repeat(".", 80) + "\n"
	r := render.NewRendered("Dots", "<p>"+text+"</p>", text)
	prep, err := comp.Prepare(r)
	if err != nil {
		t.Fatal(err)
	}
	for _, noPipe := range []bool{false, true} {
		t.Run(map[bool]string{false: "pipelining", true: "one by one"}[noPipe], func(t *testing.T) {
			srv := smtptest.New(t)
			l := newFakeLedger(issueID, 5)
			tr := smtpTransport(t, srv, nil)
			if noPipe {
				deliver.WithoutPipelining(tr)
			}
			sum, err := deliver.Issue(t.Context(), issueID, prepare(t, comp, r), l, tr, fastOptions())
			if err != nil || sum.Sent != 5 {
				t.Fatalf("summary %+v, err %v", sum, err)
			}
			for _, row := range l.rows {
				want, err := prep.Build(nil, row.rc)
				if err != nil {
					t.Fatal(err)
				}
				got := srv.Received(row.rc.Email)
				if len(got) != 1 {
					t.Fatalf("%s: %d messages", row.rc.Email, len(got))
				}
				// Each Prepare draws its own boundary.
				if g := bytes.ReplaceAll(got[0], boundary(got[0]), boundary(want.Data)); !bytes.Equal(g, want.Data) {
					t.Errorf("%s: received message differs from the built one:\n%s\n----\n%s", row.rc.Email, g, want.Data)
				}
				if from := srv.EnvelopeFrom(row.rc.Email); len(from) != 1 || from[0] != "bounces@example.org" {
					t.Errorf("MAIL FROM %q", from)
				}
			}
		})
	}
}

// A reply to RCPT that refuses one recipient leaves the connection usable
// for the next (pipelined DATA is refused, then RSET).
func TestSMTPRefusedRecipientKeepsConnection(t *testing.T) {
	srv := smtptest.New(t, smtptest.WithFaults(func(rcpt string, _ int) smtptest.Fault {
		if rcpt == "r002@example.com" || rcpt == "r004@example.com" {
			return smtptest.Fault{Rcpt: smtptest.Reply(550, 5, 1, 1, "no such user")}
		}
		return smtptest.Fault{}
	}))
	l := newFakeLedger(issueID, 6)
	opts := fastOptions()
	opts.Connections = 1
	sum, err := deliver.Issue(t.Context(), issueID, testPrepared(t), l, smtpTransport(t, srv, nil), opts)
	if err != nil || sum.Sent != 4 || sum.Failed != 2 || srv.Sessions() != 1 {
		t.Errorf("summary %+v, %d sessions, err %v", sum, srv.Sessions(), err)
	}
	if r := l.row(2); r.status != ledger.Failed || !r.last.Bounced || r.last.Code != 550 || r.last.Enhanced != "5.1.1" {
		t.Errorf("refused row %+v", r)
	}
}

func boundary(msg []byte) []byte {
	_, after, _ := bytes.Cut(msg, []byte(`boundary="`))
	b, _, _ := bytes.Cut(after, []byte(`"`))
	return b
}
