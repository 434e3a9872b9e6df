// Package smtptest runs an in-process SMTP server on 127.0.0.1 for tests:
// it records what it accepts (or only counts it, for benchmarks) and can
// inject faults per recipient: a reply to RCPT TO or to DATA, a stall, a
// late reply to an accepted message, a connection dropped right after a
// message was accepted, or one dropped at the end of DATA instead of
// replying. It counts the turns of the dialogue (Turns), so that tests can
// tell how many round trips a client waited for.
//
//	srv := smtptest.New(t, smtptest.WithFaults(func(rcpt string, call int) smtptest.Fault {
//		if rcpt == "b@example.com" && call == 1 {
//			return smtptest.Fault{Rcpt: smtptest.Reply(451, 4, 7, 1, "greylisted")}
//		}
//		return smtptest.Fault{}
//	}))
//	// dial srv.Addr (or 127.0.0.1:srv.Port()), then check srv.Received(...)
//
// The server is closed by t.Cleanup. Every method is safe for concurrent use.
// DelayProxy puts a round trip in front of it (or any server) for
// benchmarks.
// It speaks plain SMTP (no TLS) and advertises PIPELINING, 8BITMIME and
// CHUNKING as go-smtp does (WithoutPipelining hides the first); with
// WithAuth it requires authentication.
package smtptest

import (
	"bytes"
	"crypto/hmac"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// Fault is what the server does to one RCPT TO and the message that
// follows it. The zero Fault accepts.
type Fault struct {
	Rcpt          error         // reply to RCPT TO (use Reply); nil accepts
	Data          error         // reply at the end of DATA; nil accepts
	DropAfterData bool          // accept the message, then close the connection
	Stall         time.Duration // wait before answering RCPT TO
	// DataDelay accepts the message (it is counted and kept at once), then
	// waits this long before replying to the end of DATA, like a relay
	// with a slow content scanner. The wait ends early when the server
	// closes.
	DataDelay time.Duration
	// HangUpAtData closes the connection at the end of DATA instead of
	// replying, without accepting the message (a relay that crashed).
	HangUpAtData bool
}

// FaultFunc decides the fault for one RCPT TO: call counts the RCPT TO
// commands seen for that address so far, the current one included (1 on the
// first).
type FaultFunc func(rcpt string, call int) Fault

// Option configures a Server.
type Option func(*Server)

// WithFaults sets the per-recipient fault hook.
func WithFaults(f FaultFunc) Option { return func(s *Server) { s.faultFor = f } }

// WithMailError makes the server answer every MAIL FROM with err.
func WithMailError(err error) Option { return func(s *Server) { s.mailErr = err } }

// WithAuth requires authentication as user/pass. mechs are the mechanisms
// advertised, among PLAIN, LOGIN and CRAM-MD5 (default: PLAIN).
func WithAuth(user, pass string, mechs ...string) Option {
	return func(s *Server) {
		if len(mechs) == 0 {
			mechs = []string{sasl.Plain}
		}
		s.auth = &credentials{user: user, pass: pass, mechs: mechs}
	}
}

// WithOnData calls f for each recipient of a message after it was accepted
// (before the reply is written). f must not call back into blocking Server
// methods for long: it runs in the session's goroutine.
func WithOnData(f func(rcpt string)) Option { return func(s *Server) { s.onData = f } }

// WithoutPipelining leaves PIPELINING out of the EHLO reply, as a relay
// that does not offer it (go-smtp still reads pipelined commands).
func WithoutPipelining() Option { return func(s *Server) { s.noPipelining = true } }

// WithDiscard keeps no message bytes: Received, EnvelopeFrom and All return
// nothing, while Total, Count, Counts and Bytes still count. For benchmarks
// and large runs.
func WithDiscard() Option { return func(s *Server) { s.discard = true } }

// Reply builds an SMTP error reply for a Fault or WithMailError, such as
// Reply(550, 5, 1, 1, "no such user"). An enhanced code of 0, 0, 0 means
// none.
func Reply(code, class, subject, detail int, msg string) error {
	enh := smtp.EnhancedCode{class, subject, detail}
	if class == 0 {
		enh = smtp.NoEnhancedCode
	}
	return &smtp.SMTPError{Code: code, EnhancedCode: enh, Message: msg}
}

// Server is a running test SMTP server.
type Server struct {
	// Addr is the listening address, "127.0.0.1:port".
	Addr string

	srv      *smtp.Server
	faultFor FaultFunc
	mailErr  error
	onData   func(rcpt string)
	auth     *credentials
	discard  bool
	closed   chan struct{} // closed by Cleanup: ends DataDelay waits

	noPipelining bool
	turns        atomic.Int64 // reads that followed a write, over all sessions

	mu       sync.Mutex
	msgs     map[string][][]byte // recipient → messages accepted
	from     map[string][]string // recipient → MAIL FROM of each message accepted
	calls    map[string]int      // recipient → RCPT TO count
	count    map[string]int      // recipient → messages accepted (also when discarding)
	total    int
	bytes    int64
	sessions int
	refuse   error // set by Refuse: new sessions get this reply
	refused  int
	hello    string // the name the latest MAIL FROM's client gave in EHLO
}

type credentials struct {
	user, pass string
	mechs      []string
}

// New starts a server on 127.0.0.1 and registers its shutdown with
// t.Cleanup. It fails the test if it cannot listen.
func New(t testing.TB, opts ...Option) *Server {
	t.Helper()
	s := &Server{
		msgs: map[string][][]byte{}, from: map[string][]string{},
		calls: map[string]int{}, count: map[string]int{},
		closed: make(chan struct{}),
	}
	for _, o := range opts {
		o(s)
	}
	s.srv = smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.refuse != nil {
			s.refused++
			return nil, s.refuse
		}
		s.sessions++
		return &session{s: s, c: c}, nil
	}))
	s.srv.Domain = "127.0.0.1"
	s.srv.ErrorLog = log.New(io.Discard, "", 0) // dropped connections are what tests do
	s.srv.AllowInsecureAuth = true
	s.srv.ReadTimeout = 30 * time.Second
	s.srv.WriteTimeout = 30 * time.Second
	s.srv.MaxMessageBytes = 32 << 20
	s.srv.MaxRecipients = 1000
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("smtptest: listen: %v", err)
	}
	s.Addr = ln.Addr().String()
	go func() { _ = s.srv.Serve(wireListener{ln, s}) }()
	t.Cleanup(func() {
		close(s.closed)
		_ = s.srv.Close()
	})
	return s
}

// Turns is the number of times, over all sessions, that the server read
// from a connection after it had written to it: each is a turn of the
// dialogue, which costs the client a round trip when it waited for the
// reply before sending more. Commands that a client pipelines behind
// others share their turn.
func (s *Server) Turns() int { return int(s.turns.Load()) }

// Port is the listening TCP port.
func (s *Server) Port() int {
	_, p, _ := net.SplitHostPort(s.Addr)
	n, _ := strconv.Atoi(p)
	return n
}

// Received returns the messages accepted for rcpt, in order (nil with
// WithDiscard).
func (s *Server) Received(rcpt string) [][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([][]byte(nil), s.msgs[rcpt]...)
}

// EnvelopeFrom returns the MAIL FROM address of each message accepted for
// rcpt, in the order of Received.
func (s *Server) EnvelopeFrom(rcpt string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.from[rcpt]...)
}

// Count is the number of messages accepted for rcpt (kept with WithDiscard).
func (s *Server) Count(rcpt string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.count[rcpt]
}

// Counts returns a copy of the accepted-message count per recipient.
func (s *Server) Counts() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]int, len(s.count))
	for k, v := range s.count {
		out[k] = v
	}
	return out
}

// All returns a copy of every message accepted, by recipient.
func (s *Server) All() map[string][][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string][][]byte, len(s.msgs))
	for k, v := range s.msgs {
		out[k] = append([][]byte(nil), v...)
	}
	return out
}

// Total is the number of (message, recipient) deliveries accepted.
func (s *Server) Total() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.total
}

// Bytes is the number of message bytes accepted (once per message, not per
// recipient).
func (s *Server) Bytes() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.bytes
}

// Calls is the number of RCPT TO commands seen for rcpt, refused ones
// included.
func (s *Server) Calls(rcpt string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[rcpt]
}

// Refuse makes the server refuse every new session with reply (use Reply,
// e.g. Reply(421, 4, 3, 2, "shutting down")), as a relay that is
// restarting does: the client's EHLO gets it. nil accepts sessions again.
// Sessions already open are not affected.
func (s *Server) Refuse(reply error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refuse = reply
}

// Refused is the number of sessions refused because of Refuse.
func (s *Server) Refused() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.refused
}

// Sessions is the number of connections the server has accepted.
func (s *Server) Sessions() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sessions
}

// Hello is the name the client gave in EHLO (or HELO) before its latest
// MAIL FROM.
func (s *Server) Hello() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hello
}

type session struct {
	s      *Server
	c      *smtp.Conn
	from   string
	rcpts  []string
	f      Fault
	drop   bool
	authed bool
}

var _ smtp.AuthSession = (*session)(nil)

// AuthMechanisms lists the mechanisms advertised in EHLO.
func (ss *session) AuthMechanisms() []string {
	if ss.s.auth == nil {
		return nil
	}
	return ss.s.auth.mechs
}

// Auth starts one SASL exchange.
func (ss *session) Auth(mech string) (sasl.Server, error) {
	a := ss.s.auth
	if a == nil {
		return nil, smtp.ErrAuthUnsupported
	}
	ok := func(user, pass string) error {
		if user != a.user || pass != a.pass {
			return smtp.ErrAuthFailed
		}
		ss.authed = true
		return nil
	}
	switch mech {
	case sasl.Plain:
		return sasl.NewPlainServer(func(_, user, pass string) error { return ok(user, pass) }), nil
	case sasl.Login:
		return &loginServer{check: ok}, nil
	case "CRAM-MD5":
		return &cramServer{check: func(user string, digest []byte) error {
			return ok(user, string(digest))
		}, secret: a.pass, user: a.user}, nil
	}
	return nil, smtp.ErrAuthUnknownMechanism
}

func (ss *session) Mail(from string, _ *smtp.MailOptions) error {
	if ss.s.auth != nil && !ss.authed {
		return smtp.ErrAuthRequired
	}
	if ss.s.mailErr != nil {
		return ss.s.mailErr
	}
	ss.from = from
	ss.s.mu.Lock()
	ss.s.hello = ss.c.Hostname()
	ss.s.mu.Unlock()
	return nil
}

func (ss *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	ss.s.mu.Lock()
	ss.s.calls[to]++
	n := ss.s.calls[to]
	ss.s.mu.Unlock()
	var f Fault
	if ss.s.faultFor != nil {
		f = ss.s.faultFor(to, n)
	}
	if f.Stall > 0 {
		time.Sleep(f.Stall)
	}
	if f.Rcpt != nil {
		return f.Rcpt
	}
	ss.rcpts = append(ss.rcpts, to)
	// The last accepted recipient's fault decides the DATA outcome.
	ss.f = f
	return nil
}

func (ss *session) Data(r io.Reader) error {
	var b []byte
	var n int64
	var err error
	if ss.s.discard {
		n, err = io.Copy(io.Discard, r)
	} else {
		b, err = io.ReadAll(r)
		n = int64(len(b))
	}
	if err != nil {
		return err
	}
	if ss.f.HangUpAtData {
		_ = ss.c.Conn().Close()
		return errors.New("smtptest: hung up at the end of DATA")
	}
	if ss.f.Data != nil {
		return ss.f.Data
	}
	ss.s.mu.Lock()
	ss.s.bytes += n
	for _, to := range ss.rcpts {
		ss.s.total++
		ss.s.count[to]++
		if !ss.s.discard {
			ss.s.msgs[to] = append(ss.s.msgs[to], b)
			ss.s.from[to] = append(ss.s.from[to], ss.from)
		}
	}
	ss.s.mu.Unlock()
	if ss.f.DropAfterData {
		ss.drop = true
	}
	if ss.s.onData != nil {
		for _, to := range ss.rcpts {
			ss.s.onData(to)
		}
	}
	if d := ss.f.DataDelay; d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ss.s.closed:
		}
	}
	return nil
}

// Reset is called by go-smtp after the DATA reply was written (and on
// RSET): the place to drop a connection right after a message was accepted.
func (ss *session) Reset() {
	if ss.drop {
		_ = ss.c.Conn().Close()
	}
	ss.from, ss.rcpts, ss.f, ss.drop = "", nil, Fault{}, false
}

func (ss *session) Logout() error { return nil }

// loginServer is the server side of AUTH LOGIN (go-sasl has only a client).
type loginServer struct {
	check func(user, pass string) error
	step  int
	user  string
}

func (l *loginServer) Next(resp []byte) ([]byte, bool, error) {
	switch l.step {
	case 0:
		l.step = 1
		if resp == nil {
			return []byte("Username:"), false, nil
		}
		fallthrough // initial response carries the user name
	case 1:
		l.user = string(resp)
		l.step = 2
		return []byte("Password:"), false, nil
	default:
		return nil, true, l.check(l.user, string(resp))
	}
}

// cramServer is the server side of AUTH CRAM-MD5 (RFC 2195).
type cramServer struct {
	check     func(user string, digest []byte) error
	user      string
	secret    string
	challenge []byte
}

func (c *cramServer) Next(resp []byte) ([]byte, bool, error) {
	if c.challenge == nil {
		c.challenge = fmt.Appendf(nil, "<%d.%d@127.0.0.1>", time.Now().UnixNano(), 42)
		return c.challenge, false, nil
	}
	user, digest, ok := bytes.Cut(resp, []byte(" "))
	if !ok {
		return nil, true, errors.New("smtptest: malformed CRAM-MD5 response")
	}
	mac := hmac.New(md5.New, []byte(c.secret))
	mac.Write(c.challenge)
	want := hex.EncodeToString(mac.Sum(nil))
	if string(user) != c.user || !hmac.Equal([]byte(want), digest) {
		return nil, true, smtp.ErrAuthFailed
	}
	// Report success through check with the real password.
	return nil, true, c.check(c.user, []byte(c.secret))
}

// wireListener hands the server connections that count the dialogue's
// turns and, with WithoutPipelining, hide PIPELINING from the EHLO reply.
type wireListener struct {
	net.Listener
	s *Server
}

func (l wireListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &wireConn{Conn: c, s: l.s}, nil
}

type wireConn struct {
	net.Conn
	s     *Server
	wrote atomic.Bool // written to since the last read
}

func (c *wireConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 && c.wrote.Swap(false) {
		c.s.turns.Add(1)
	}
	return n, err
}

var pipeliningLine = []byte("250-PIPELINING\r\n")

func (c *wireConn) Write(p []byte) (int, error) {
	c.wrote.Store(true)
	if c.s.noPipelining && bytes.Contains(p, pipeliningLine) {
		if _, err := c.Conn.Write(bytes.Replace(p, pipeliningLine, nil, 1)); err != nil {
			return 0, err
		}
		return len(p), nil
	}
	return c.Conn.Write(p)
}
