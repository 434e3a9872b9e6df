package deliver_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net"
	netmail "net/mail"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/digest/digest/internal/deliver"
	"github.com/digest/digest/internal/ledger"
	"github.com/digest/digest/internal/mail"
	"github.com/digest/digest/internal/smtptest"
)

func TestRunDeliversEachOnce(t *testing.T) {
	const n = 60
	srv := smtptest.New(t)
	l := newFakeLedger(issueID, n)
	comp := testComposer(t)
	var progress []deliver.Progress
	var pmu sync.Mutex
	opts := fastOptions()
	opts.Total = n
	opts.ProgressEvery = 5 * time.Millisecond
	opts.Progress = func(p deliver.Progress) { pmu.Lock(); progress = append(progress, p); pmu.Unlock() }

	sum, err := deliver.Issue(t.Context(), issueID, prepare(t, comp, testRendered()), l, smtpTransport(t, srv, nil), opts)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if sum.Sent != n || sum.Failed != 0 || sum.Pending != 0 || sum.Attempts != n {
		t.Errorf("summary = %+v, want %d sent in %d attempts", sum, n, n)
	}
	l.check(t)
	if got := l.count(ledger.Sent); got != n {
		t.Errorf("ledger: %d sent, want %d", got, n)
	}
	if s := srv.Sessions(); s > opts.Connections {
		t.Errorf("%d SMTP sessions for %d connections: connections not reused", s, opts.Connections)
	}
	for i := 1; i <= n; i++ {
		rc := l.row(int64(i)).rc
		msgs := srv.Received(rc.Email)
		if len(msgs) != 1 {
			t.Fatalf("%s received %d messages, want 1", rc.Email, len(msgs))
		}
		checkMessage(t, msgs[0], rc, comp.MessageID(issueID, rc.SubscriberID), comp.UnsubscribeURL(rc))
	}
	pmu.Lock()
	defer pmu.Unlock()
	if len(progress) == 0 {
		t.Fatal("no progress reported")
	}
	if last := progress[len(progress)-1]; last.Sent != n || last.Total != n || last.Pending != 0 {
		t.Errorf("last progress = %+v", last)
	}
}

// checkMessage parses what the server received as a receiver would.
func checkMessage(t *testing.T, raw []byte, rc ledger.Recipient, msgID, unsub string) {
	t.Helper()
	for i, line := range bytes.Split(raw, []byte("\r\n")) {
		if len(line) > 998 {
			t.Errorf("%s: line %d has %d octets", rc.Email, i+1, len(line))
		}
	}
	m, err := netmail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("%s: %v", rc.Email, err)
	}
	h := m.Header
	for k, want := range map[string]string{
		"Message-Id":            "<" + msgID + ">",
		"List-Unsubscribe":      "<" + unsub + ">",
		"List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
		"List-Id":               `"Test Digest" <test-digest.example.org>`,
	} {
		if got := h.Get(k); got != want {
			t.Errorf("%s: %s = %q, want %q", rc.Email, k, got, want)
		}
	}
	if _, err := h.Date(); err != nil {
		t.Errorf("%s: Date: %v", rc.Email, err)
	}
	if to, err := h.AddressList("To"); err != nil || len(to) != 1 || to[0].Address != rc.Email || to[0].Name != rc.Name {
		t.Errorf("%s: To = %q (%v)", rc.Email, h.Get("To"), err)
	}
	mt, params, err := mime.ParseMediaType(h.Get("Content-Type"))
	if err != nil || mt != "multipart/alternative" {
		t.Fatalf("%s: Content-Type %q (%v)", rc.Email, h.Get("Content-Type"), err)
	}
	mr := multipart.NewReader(m.Body, params["boundary"])
	var types []string
	for {
		p, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("%s: part: %v", rc.Email, err)
		}
		ct, _, _ := mime.ParseMediaType(p.Header.Get("Content-Type"))
		types = append(types, ct)
		body, _ := io.ReadAll(p)
		if !strings.Contains(string(body), unsub) {
			t.Errorf("%s: %s part lacks the unsubscribe URL", rc.Email, ct)
		}
	}
	if !slices.Equal(types, []string{"text/plain", "text/html"}) {
		t.Errorf("%s: parts %v, want text/plain then text/html", rc.Email, types)
	}
}

func TestRunFaults(t *testing.T) {
	const victim = "r003@example.com"
	greylist := smtptest.Reply(451, 4, 7, 1, "greylisted, try later")
	tests := []struct {
		name        string
		fault       func(call int) smtptest.Fault
		maxAttempts int
		priorTries  int // attempts already in the ledger
		wantStatus  string
		wantBounced bool
		wantCalls   int // RCPT TO for the victim
		wantMsgs    int // messages the victim received
		wantAttempt int // attempts recorded
		wantReply   string
	}{
		{
			name: "451 twice then ok",
			fault: func(call int) smtptest.Fault {
				if call <= 2 {
					return smtptest.Fault{Rcpt: greylist}
				}
				return smtptest.Fault{}
			},
			wantStatus: ledger.Sent, wantCalls: 3, wantMsgs: 1, wantAttempt: 3,
		},
		{
			name:       "550 user unknown is bounced, never retried",
			fault:      func(int) smtptest.Fault { return smtptest.Fault{Rcpt: smtptest.Reply(550, 5, 1, 1, "no such user")} },
			wantStatus: ledger.Failed, wantBounced: true, wantCalls: 1, wantAttempt: 1, wantReply: "550",
		},
		{
			name: "550 without enhanced code is bounced",
			fault: func(int) smtptest.Fault {
				return smtptest.Fault{Rcpt: smtptest.Reply(550, 0, 0, 0, "mailbox unavailable")}
			},
			wantStatus: ledger.Failed, wantBounced: true, wantCalls: 1, wantAttempt: 1,
		},
		{
			name:       "550 5.7.1 policy is failed, not bounced",
			fault:      func(int) smtptest.Fault { return smtptest.Fault{Rcpt: smtptest.Reply(550, 5, 7, 1, "policy")} },
			wantStatus: ledger.Failed, wantCalls: 1, wantAttempt: 1,
		},
		{
			name: "554 at end of data is failed, not bounced",
			fault: func(int) smtptest.Fault {
				return smtptest.Fault{Data: smtptest.Reply(554, 5, 6, 0, "content rejected")}
			},
			wantStatus: ledger.Failed, wantCalls: 1, wantAttempt: 1, wantReply: "554",
		},
		{
			name:        "always 451 gives up after max attempts",
			fault:       func(int) smtptest.Fault { return smtptest.Fault{Rcpt: greylist} },
			maxAttempts: 3,
			wantStatus:  ledger.Failed, wantCalls: 3, wantAttempt: 3, wantReply: "gave up after 3 attempts: ",
		},
		{
			name:        "attempts of earlier runs count",
			fault:       func(int) smtptest.Fault { return smtptest.Fault{Rcpt: greylist} },
			maxAttempts: 5, priorTries: 4,
			wantStatus: ledger.Failed, wantCalls: 1, wantAttempt: 5, wantReply: "gave up after 5 attempts",
		},
		{
			name:        "no attempt left",
			maxAttempts: 3, priorTries: 3,
			wantStatus: ledger.Failed, wantCalls: 0, wantAttempt: 3, wantReply: "gave up after 3 attempts",
		},
		{
			name: "connection dropped after DATA accepted: sent once",
			fault: func(call int) smtptest.Fault {
				return smtptest.Fault{DropAfterData: call == 1}
			},
			wantStatus: ledger.Sent, wantCalls: 1, wantMsgs: 1, wantAttempt: 1,
		},
		{
			name: "stalled server times out, then ok",
			fault: func(call int) smtptest.Fault {
				if call == 1 {
					return smtptest.Fault{Stall: 700 * time.Millisecond, Rcpt: greylist}
				}
				return smtptest.Fault{}
			},
			wantStatus: ledger.Sent, wantCalls: 2, wantMsgs: 1, wantAttempt: 2,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			const n = 8
			srv := smtptest.New(t, smtptest.WithFaults(func(rcpt string, call int) smtptest.Fault {
				if rcpt == victim && tt.fault != nil {
					return tt.fault(call)
				}
				return smtptest.Fault{}
			}))
			l := newFakeLedger(issueID, n)
			l.byID[3].rc.Attempts = tt.priorTries
			clock := newFakeClock()
			l.clock = clock
			opts := withClock(fastOptions(), clock)
			opts.Connections = 2
			if tt.maxAttempts > 0 {
				opts.MaxAttempts = tt.maxAttempts
			}
			tr := smtpTransport(t, srv, func(o *deliver.SMTPOptions) { o.Timeout = 300 * time.Millisecond })
			// A temporary failure is retried by a later run, once due:
			// run until nothing is left, two days apart.
			var sum deliver.Summary
			for range 10 {
				s, err := deliver.Issue(t.Context(), issueID, testPrepared(t), l, tr, opts)
				if err != nil {
					t.Fatalf("Run: %v", err)
				}
				sum.Sent, sum.Failed, sum.Pending = sum.Sent+s.Sent, sum.Failed+s.Failed, s.Pending
				if l.count(ledger.Pending) == 0 {
					break
				}
				clock.Advance(48 * time.Hour)
			}
			l.check(t)
			row := l.row(3)
			if row.status != tt.wantStatus || row.last.Bounced != tt.wantBounced || row.rc.Attempts != tt.wantAttempt {
				t.Errorf("victim: status %s bounced %v attempts %d; want %s %v %d (reply %q)",
					row.status, row.last.Bounced, row.rc.Attempts, tt.wantStatus, tt.wantBounced, tt.wantAttempt, row.last.Reply)
			}
			if !strings.Contains(row.last.Reply, tt.wantReply) {
				t.Errorf("reply %q, want it to contain %q", row.last.Reply, tt.wantReply)
			}
			if got := srv.Calls(victim); got != tt.wantCalls {
				t.Errorf("victim RCPT count %d, want %d", got, tt.wantCalls)
			}
			if got := len(srv.Received(victim)); got != tt.wantMsgs {
				t.Errorf("victim received %d messages, want %d", got, tt.wantMsgs)
			}
			for i := 1; i <= n; i++ {
				rc := l.row(int64(i)).rc
				if i != 3 && len(srv.Received(rc.Email)) != 1 {
					t.Errorf("%s received %d messages, want 1", rc.Email, len(srv.Received(rc.Email)))
				}
			}
			wantSent := n - 1
			if tt.wantStatus == ledger.Sent {
				wantSent = n
			}
			if sum.Sent != wantSent || sum.Sent+sum.Failed != n || sum.Pending != 0 {
				t.Errorf("summary %+v, want %d sent", sum, wantSent)
			}
		})
	}
}

// The server accepts a message and then drops the connection: the
// recipient is sent once (never retried), and the next message goes over a
// new connection.
func TestRunDuplicateTrap(t *testing.T) {
	const victim = "r002@example.com"
	srv := smtptest.New(t, smtptest.WithFaults(func(rcpt string, call int) smtptest.Fault {
		return smtptest.Fault{DropAfterData: rcpt == victim && call == 1}
	}))
	l := newFakeLedger(issueID, 5)
	opts := fastOptions()
	opts.Connections = 1
	sum, err := deliver.Issue(t.Context(), issueID, testPrepared(t), l, smtpTransport(t, srv, nil), opts)
	if err != nil {
		t.Fatal(err)
	}
	l.check(t)
	if got := len(srv.Received(victim)); got != 1 {
		t.Errorf("victim received %d copies, want 1", got)
	}
	if row := l.row(2); row.status != ledger.Sent || row.rc.Attempts != 1 {
		t.Errorf("victim row %+v, want sent after 1 attempt", row)
	}
	if sum.Sent != 5 || srv.Total() != 5 {
		t.Errorf("summary %+v, server got %d messages", sum, srv.Total())
	}
	if srv.Sessions() != 2 {
		t.Errorf("%d sessions, want 2 (re-dial after the drop)", srv.Sessions())
	}
}

func TestRunRelayDown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	_ = ln.Close() // nobody listens there any more
	tr, err := deliver.NewSMTP(deliver.SMTPOptions{Host: "127.0.0.1", Port: port, TLS: "none", Auth: "auto", Timeout: time.Second, DataTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	l := newFakeLedger(issueID, 25)
	var opens atomic.Int32
	clock := newFakeClock()
	opts := withClock(fastOptions(), clock)
	opts.Backoff = deliver.DefaultBackoff
	start := clock.Now()
	sum, err := deliver.Issue(t.Context(), issueID, testPrepared(t), l, countingTransport{tr, &opens}, opts)
	if !errors.Is(err, deliver.ErrRelayDown) || !strings.Contains(err.Error(), "since 18:02") {
		t.Fatalf("err = %v, want ErrRelayDown since 18:02", err)
	}
	if waited := clock.Now().Sub(start); waited < 10*time.Minute || waited > 11*time.Minute {
		t.Errorf("waited %s for the relay, want the default outage wait of 10m", waited)
	}
	l.check(t)
	if l.count(ledger.Pending) != 25 {
		t.Errorf("%d pending in the ledger, want 25", l.count(ledger.Pending))
	}
	if sum.Sent != 0 || sum.Pending == 0 || sum.Attempts != 0 {
		t.Errorf("summary %+v", sum)
	}
	// One try at a time, backing off up to 2 minutes: 1+2+…+64s, then
	// every 90-120s, over 10 minutes.
	if got := int(opens.Load()); got > 20 {
		t.Errorf("%d opens in a 10-minute outage, want at most 20", got)
	}
	for i := 1; i <= 25; i++ {
		if a := l.row(int64(i)).rc.Attempts; a != 0 {
			t.Errorf("subscriber %d: %d attempts recorded for a relay that never answered", i, a)
		}
	}
}

type countingTransport struct {
	deliver.Transport
	n *atomic.Int32
}

func (c countingTransport) Open(ctx context.Context) (deliver.Conn, error) {
	c.n.Add(1)
	return c.Transport.Open(ctx)
}

func TestRunSenderRefused(t *testing.T) {
	srv := smtptest.New(t, smtptest.WithMailError(smtptest.Reply(550, 5, 7, 1, "relaying denied")))
	l := newFakeLedger(issueID, 10)
	_, err := deliver.Issue(t.Context(), issueID, testPrepared(t), l, smtpTransport(t, srv, nil), fastOptions())
	if err == nil || !strings.Contains(err.Error(), "relay refused the sender") {
		t.Fatalf("err = %v", err)
	}
	l.check(t)
	if f := l.count(ledger.Failed); f != 0 {
		t.Errorf("%d recipients failed for a sender problem", f)
	}
}

func TestRunAuth(t *testing.T) {
	tests := []struct {
		name, pass string
		wantErr    bool
	}{{"right password", "s3cret", false}, {"wrong password", "nope", true}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := smtptest.New(t, smtptest.WithAuth("ann", "s3cret"))
			l := newFakeLedger(issueID, 3)
			tr := smtpTransport(t, srv, func(o *deliver.SMTPOptions) { o.Username, o.Password = "ann", tt.pass })
			sum, err := deliver.Issue(t.Context(), issueID, testPrepared(t), l, tr, fastOptions())
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			l.check(t)
			if !tt.wantErr && sum.Sent != 3 {
				t.Errorf("summary %+v", sum)
			}
			if tt.wantErr && (l.count(ledger.Pending) != 3 || srv.Total() != 0) {
				t.Errorf("wrong password: %d pending, %d received", l.count(ledger.Pending), srv.Total())
			}
			// A 5xx to AUTH cannot get better by waiting: the run stops at
			// once rather than pausing as for an outage.
			if tt.wantErr && (errors.Is(err, deliver.ErrRelayDown) || !strings.Contains(err.Error(), "relay refused the session")) {
				t.Errorf("wrong password: err %v, want the session refused at once", err)
			}
		})
	}
}

func TestRunRateLimit(t *testing.T) {
	srv := smtptest.New(t)
	l := newFakeLedger(issueID, 10)
	opts := fastOptions()
	opts.Rate = 20 // 10 messages: the first at once, 9 more 50ms apart
	start := time.Now()
	sum, err := deliver.Issue(t.Context(), issueID, testPrepared(t), l, smtpTransport(t, srv, nil), opts)
	if err != nil || sum.Sent != 10 {
		t.Fatalf("Run: %+v, %v", sum, err)
	}
	// A lower bound only: the limiter guarantees it, however slow the machine.
	if el := time.Since(start); el < 400*time.Millisecond {
		t.Errorf("10 messages at 20/s took %v: the rate limit is not applied", el)
	}
}

func TestRunCancel(t *testing.T) {
	const n = 40
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var accepted atomic.Int32
	srv := smtptest.New(t, smtptest.WithOnData(func(string) {
		if accepted.Add(1) == 5 {
			cancel()
		}
	}))
	l := newFakeLedger(issueID, n)
	opts := fastOptions()
	opts.Connections = 2
	sum, err := deliver.Issue(ctx, issueID, testPrepared(t), l, smtpTransport(t, srv, nil), opts)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	l.check(t)
	// Every message the server accepted is recorded sent; nothing else is.
	if got := l.count(ledger.Sent); got != srv.Total() || got != sum.Sent {
		t.Errorf("ledger sent %d, server accepted %d, summary %+v", got, srv.Total(), sum)
	}
	if l.count(ledger.Pending) != n-sum.Sent || sum.Sent == n {
		t.Errorf("ledger pending %d, sent %d of %d", l.count(ledger.Pending), sum.Sent, n)
	}
}

func TestRunRecordFailureStops(t *testing.T) {
	srv := smtptest.New(t)
	l := newFakeLedger(issueID, 30)
	l.recordErr = errors.New("disk full")
	opts := fastOptions()
	opts.BatchSize = 5
	_, err := deliver.Issue(t.Context(), issueID, testPrepared(t), l, smtpTransport(t, srv, nil), opts)
	if err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("err = %v, want the record error", err)
	}
	if srv.Total() >= 30 {
		t.Errorf("the run went on after the ledger failed (%d sent)", srv.Total())
	}
}

func TestRunEmptyLedgerOpensNothing(t *testing.T) {
	var opens atomic.Int32
	l := newFakeLedger(issueID, 0)
	sum, err := deliver.Issue(t.Context(), issueID, testPrepared(t), l,
		countingTransport{deliver.NewFile(t.TempDir()), &opens}, fastOptions())
	if err != nil || sum != (deliver.Summary{Duration: sum.Duration}) || opens.Load() != 0 {
		t.Errorf("summary %+v, err %v, %d opens", sum, err, opens.Load())
	}
}

func TestFileTransport(t *testing.T) {
	dir := t.TempDir()
	l := newFakeLedger(issueID, 6)
	l.add(ledger.Recipient{IssueID: issueID, SubscriberID: 7, Email: "../../evil/x@example.com"})
	comp := testComposer(t)
	sum, err := deliver.Issue(t.Context(), issueID, prepare(t, comp, testRendered()), l, deliver.NewFile(dir), fastOptions())
	if err != nil {
		t.Fatal(err)
	}
	l.check(t)
	// The odd address fails to compose (it is not an address); the rest are written.
	if sum.Sent != 6 || sum.Failed != 1 {
		t.Errorf("summary %+v", sum)
	}
	files, _ := filepath.Glob(filepath.Join(dir, issueID, "*"))
	if len(files) != 6 {
		t.Fatalf("files %v, want 6 .eml files and no temporary ones", files)
	}
	for i := 1; i <= 6; i++ {
		rc := l.row(int64(i)).rc
		path := filepath.Join(dir, issueID, rc.Email+".eml")
		raw, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		checkMessage(t, raw, rc, comp.MessageID(issueID, rc.SubscriberID), comp.UnsubscribeURL(rc))
	}
	// A message of no issue (a notice) is filed under notices/.
	notice := mail.Message{From: "news@example.org", To: "ann@example.com", Data: []byte("Subject: hi\r\n\r\nhello\r\n")}
	if err := deliver.SendMessage(t.Context(), deliver.NewFile(dir), &notice); err != nil {
		t.Fatal(err)
	}
	if raw, err := os.ReadFile(filepath.Join(dir, "notices", "ann@example.com.eml")); err != nil || !bytes.Equal(raw, notice.Data) {
		t.Errorf("notice file: %q, %v", raw, err)
	}
	f := deliver.NewFile(dir)
	if p := f.Path(ledger.Recipient{IssueID: "../x", Email: "../../etc/passwd"}); !strings.HasPrefix(p, dir+string(filepath.Separator)) || strings.Count(p, string(filepath.Separator)) != strings.Count(dir, string(filepath.Separator))+2 {
		t.Errorf("Path escapes the outbox: %s", p)
	}
}

func TestDryRun(t *testing.T) {
	l := newFakeLedger(issueID, 5)
	rcs := func(yield func(ledger.Recipient) bool) {
		for _, r := range l.rows {
			if !yield(r.rc) {
				return
			}
		}
		yield(ledger.Recipient{IssueID: issueID, SubscriberID: 99, Email: "broken"})
	}
	res, err := deliver.DryRun(t.Context(), testPrepared(t), rcs)
	if res.Messages != 5 || res.Failed != 1 || res.Bytes < 5*500 {
		t.Errorf("result %+v", res)
	}
	if err == nil || !strings.Contains(err.Error(), "broken") {
		t.Errorf("err = %v, want the bad address named", err)
	}
	if l.claims != 0 {
		t.Errorf("dry run claimed from the ledger")
	}
}

func TestNewSMTP(t *testing.T) {
	ok := func(host, tls string, port int) deliver.SMTPOptions {
		return deliver.SMTPOptions{Host: host, TLS: tls, Port: port, Auth: "auto", Timeout: time.Second, DataTimeout: time.Minute}
	}
	tests := []struct {
		o    deliver.SMTPOptions
		want string // error substring, "" for ok
	}{
		{ok("mail.example.org", "starttls", 587), ""},
		{ok("mail.example.org", "tls", 465), ""},
		// Config validates the options; what go-mail refuses surfaces here
		// rather than at the first connection.
		{ok("h", "none", 70000), "invalid port number"},
		{deliver.SMTPOptions{Host: "h", TLS: "none", Auth: "auto", Port: 25}, "timeout"},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%+v", tt.o), func(t *testing.T) {
			s, err := deliver.NewSMTP(tt.o)
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				if strings.Contains(s.String(), "password") {
					t.Errorf("String leaks: %s", s)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want %q", err, tt.want)
			}
		})
	}
}

// A connection the server closed while idle is found dead at MAIL FROM:
// nothing of the message was sent, so the recipient is retried on a new
// connection without spending one of its attempts.
func TestRunStaleConnectionCostsNoAttempt(t *testing.T) {
	srv := smtptest.New(t, smtptest.WithFaults(func(rcpt string, _ int) smtptest.Fault {
		return smtptest.Fault{DropAfterData: rcpt == "r002@example.com"}
	}))
	l := newFakeLedger(issueID, 4)
	opts := fastOptions()
	opts.Connections, opts.MaxAttempts = 1, 1
	sum, err := deliver.Issue(t.Context(), issueID, testPrepared(t), l, smtpTransport(t, srv, nil), opts)
	if err != nil {
		t.Fatal(err)
	}
	l.check(t)
	if sum.Sent != 4 || srv.Total() != 4 || srv.Sessions() != 2 {
		t.Errorf("summary %+v, %d received in %d sessions; want 4 in 2", sum, srv.Total(), srv.Sessions())
	}
	if a := l.row(3).rc.Attempts; a != 1 {
		t.Errorf("recipient after the drop: %d attempts recorded, want 1", a)
	}
}

func TestSendMessageTestCopy(t *testing.T) {
	srv := smtptest.New(t)
	rc := ledger.Recipient{IssueID: issueID, Email: "ed@example.com", Name: "Editor", Test: true}
	m, err := testPrepared(t).Build(nil, rc)
	if err != nil {
		t.Fatal(err)
	}
	if err := deliver.SendMessage(t.Context(), smtpTransport(t, srv, nil), &m); err != nil {
		t.Fatal(err)
	}
	if got := srv.Received("ed@example.com"); len(got) != 1 || !bytes.Contains(got[0], []byte("[TEST]")) {
		t.Errorf("received %d messages", len(got))
	}
}

func TestProgressPrinter(t *testing.T) {
	p := func(sent int, elapsed time.Duration, done bool) deliver.Progress {
		return deliver.Progress{Sent: sent, Failed: 1, Total: 101, Pending: 100 - sent, Rate: float64(sent) / elapsed.Seconds(), Elapsed: elapsed, Done: done}
	}
	var tty bytes.Buffer
	pr := deliver.NewProgressPrinter(&tty, true)
	pr(p(50, 10*time.Second, false))
	pr(p(100, 20*time.Second, true))
	got := tty.String()
	for _, want := range []string{"\r[############............]  50% 50/101 sent, 1 failed, 50 pending, 5 msg/s, ETA 10s\x1b[K",
		"\r[########################] 100% 100/101 sent, 1 failed, 0 pending, 5 msg/s, 20s\x1b[K\n"} {
		if !strings.Contains(got, want) {
			t.Errorf("terminal output %q lacks %q", got, want)
		}
	}
	var log bytes.Buffer
	pr = deliver.NewProgressPrinter(&log, false)
	for i := 1; i <= 10; i++ {
		pr(p(i*5, time.Duration(i)*time.Second, false)) // one report per second
	}
	pr(p(100, 11*time.Second, true))
	lines := strings.Split(strings.TrimSpace(log.String()), "\n")
	if len(lines) != 3 || strings.Contains(log.String(), "\r") || !strings.Contains(lines[2], "100/101 sent") {
		t.Errorf("log output, want 3 lines (1s, 6s, final):\n%s", log.String())
	}
}
