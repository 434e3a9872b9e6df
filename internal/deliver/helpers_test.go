package deliver_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/digest/digest/internal/deliver"
	"github.com/digest/digest/internal/ledger"
	"github.com/digest/digest/internal/mail"
	"github.com/digest/digest/internal/render"
)

// ---- in-process SMTP server with fault injection ----

// fault is what the server does to one RCPT (and the message after it).
type fault struct {
	rcpt      error         // reply to RCPT TO
	data      error         // reply at the end of DATA
	dropAfter bool          // accept DATA, then drop the connection
	stall     time.Duration // wait before answering RCPT TO
}

type smtpServer struct {
	addr string
	srv  *smtp.Server

	// faultFor decides per recipient and per call (1 = first RCPT of that
	// address); nil means accept everything.
	faultFor func(rcpt string, call int) fault
	mailErr  error             // reply to every MAIL FROM
	onData   func(rcpt string) // called after a message is accepted
	auth     *[2]string        // required username, password
	mu       sync.Mutex
	msgs     map[string][][]byte // recipient → messages accepted
	calls    map[string]int      // recipient → RCPT count
	sessions int
}

func newSMTPServer(t *testing.T, configure func(*smtpServer)) *smtpServer {
	t.Helper()
	s := &smtpServer{msgs: map[string][][]byte{}, calls: map[string]int{}}
	if configure != nil {
		configure(s)
	}
	s.srv = smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		s.mu.Lock()
		s.sessions++
		s.mu.Unlock()
		return &session{s: s, c: c}, nil
	}))
	s.srv.Domain = "127.0.0.1"
	s.srv.AllowInsecureAuth = true
	s.srv.ReadTimeout = 10 * time.Second
	s.srv.WriteTimeout = 10 * time.Second
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.addr = ln.Addr().String()
	go func() { _ = s.srv.Serve(ln) }()
	t.Cleanup(func() { _ = s.srv.Close() })
	return s
}

func (s *smtpServer) port() int {
	_, p, _ := net.SplitHostPort(s.addr)
	n, _ := strconv.Atoi(p)
	return n
}

func (s *smtpServer) received(rcpt string) [][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.msgs[rcpt]
}

func (s *smtpServer) callCount(rcpt string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[rcpt]
}

func (s *smtpServer) sessionCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sessions
}

func (s *smtpServer) total() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, m := range s.msgs {
		n += len(m)
	}
	return n
}

type session struct {
	s      *smtpServer
	c      *smtp.Conn
	rcpts  []string
	f      fault
	drop   bool
	authed bool
}

func (ss *session) AuthMechanisms() []string {
	if ss.s.auth == nil {
		return nil
	}
	return []string{sasl.Plain}
}

func (ss *session) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, user, pass string) error {
		if user != ss.s.auth[0] || pass != ss.s.auth[1] {
			return smtp.ErrAuthFailed
		}
		ss.authed = true
		return nil
	}), nil
}

func (ss *session) Mail(string, *smtp.MailOptions) error {
	if ss.s.auth != nil && !ss.authed {
		return smtp.ErrAuthRequired
	}
	return ss.s.mailErr
}

func (ss *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	ss.s.mu.Lock()
	ss.s.calls[to]++
	n := ss.s.calls[to]
	ss.s.mu.Unlock()
	var f fault
	if ss.s.faultFor != nil {
		f = ss.s.faultFor(to, n)
	}
	if f.stall > 0 {
		time.Sleep(f.stall)
	}
	if f.rcpt != nil {
		return f.rcpt
	}
	ss.rcpts = append(ss.rcpts, to)
	ss.f = f
	return nil
}

func (ss *session) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	if ss.f.data != nil {
		return ss.f.data
	}
	ss.s.mu.Lock()
	for _, to := range ss.rcpts {
		ss.s.msgs[to] = append(ss.s.msgs[to], b)
	}
	ss.s.mu.Unlock()
	if ss.f.dropAfter {
		ss.drop = true
	}
	if ss.s.onData != nil {
		for _, to := range ss.rcpts {
			ss.s.onData(to)
		}
	}
	return nil
}

// Reset is called by go-smtp after the DATA reply was written (and on RSET):
// the place to drop a connection right after the server accepted a message.
func (ss *session) Reset() {
	if ss.drop {
		_ = ss.c.Conn().Close()
	}
	ss.rcpts, ss.f, ss.drop = nil, fault{}, false
}

func (ss *session) Logout() error { return nil }

func smtpErr(code int, enh smtp.EnhancedCode, msg string) error {
	return &smtp.SMTPError{Code: code, EnhancedCode: enh, Message: msg}
}

// ---- in-memory ledger ----

type fakeLedger struct {
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
		if r.status == ledger.Pending && r.rc.IssueID == issueID {
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
	}
	return nil
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

func smtpTransport(t *testing.T, s *smtpServer, mod func(*deliver.SMTPOptions)) *deliver.SMTP {
	t.Helper()
	o := deliver.SMTPOptions{Host: "127.0.0.1", Port: s.port(), TLS: "none", Timeout: 2 * time.Second, HELO: "test.local"}
	if mod != nil {
		mod(&o)
	}
	tr, err := deliver.NewSMTP(o)
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

func fastOptions() deliver.Options {
	return deliver.Options{
		Connections: 4, MaxAttempts: 5, BatchSize: 10, OpenAttempts: 2,
		Backoff: func(int) time.Duration { return time.Millisecond },
	}
}
