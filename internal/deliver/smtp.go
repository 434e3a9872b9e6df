package deliver

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/textproto"
	"strconv"
	"strings"
	"time"

	gomail "github.com/wneessen/go-mail"
	"github.com/wneessen/go-mail/smtp"

	"github.com/digest/digest/internal/mail"
)

// ErrConnBroken is wrapped by Conn.Send when the connection can no longer be
// used; the engine closes it and opens another.
var ErrConnBroken = errors.New("connection broken")

// ReplyError is an SMTP reply that refused a command.
type ReplyError struct {
	Command  string // "MAIL FROM", "RCPT TO", "DATA", "end of DATA", "RSET" (or "SIZE", "SMTPUTF8" when refused before sending)
	Code     int    // e.g. 550
	Enhanced string // e.g. "5.1.1", when the reply had one
	Message  string // the reply text
}

func (e *ReplyError) Error() string {
	return fmt.Sprintf("%s: %d %s", e.Command, e.Code, e.Message)
}

// ErrUnconfirmed is wrapped by Conn.Send when the whole message, end of
// DATA included, went out but no reply came (a timeout or a dropped
// connection): the relay may have accepted it. The engine does not retry
// such a recipient in the same run (see the package comment).
var ErrUnconfirmed = errors.New("no reply after end of DATA; the relay may have accepted it")

// connError is a failure without a reply (I/O, timeout, protocol).
type connError struct {
	stage string
	// stale: nothing of the message was accepted and the connection was
	// dead from the first command: typically an idle connection the server
	// closed. Retried at once on a new connection, without an attempt.
	stale bool
	// unconfirmed: the final "." was sent and its reply never came.
	unconfirmed bool
	err         error
}

func (e *connError) Error() string { return e.stage + ": " + e.err.Error() }
func (e *connError) Unwrap() []error {
	if e.unconfirmed {
		return []error{ErrConnBroken, ErrUnconfirmed, e.err}
	}
	return []error{ErrConnBroken, e.err}
}

// SMTPOptions configures the SMTP transport. Every field but the optional
// ones (Username, Password, InsecureSkipVerify, HELO) is
// required: defaults are the configuration's business (package config), not
// repeated here.
type SMTPOptions struct {
	Host     string
	Port     int
	Username string // when set, authenticate
	Password string
	// Auth is the SASL mechanism: auto (the strongest the server offers),
	// plain, login or cram-md5. PLAIN and LOGIN are refused over an
	// unencrypted connection except to localhost.
	Auth string
	// TLS is none, starttls (STARTTLS is required) or tls (implicit TLS
	// from the first byte).
	TLS                string
	InsecureSkipVerify bool
	// Timeout bounds the dial and each later step: greeting, EHLO,
	// STARTTLS, AUTH, and each command and reply of a message (the message
	// data gets the timeout plus one second per 100 KB).
	Timeout time.Duration
	// DataTimeout bounds the wait for the reply to the end of DATA, when
	// the relay may be scanning the message (RFC 5321 §4.5.3.2.6 suggests
	// 10 minutes); it is never less than Timeout. Giving up there is
	// ambiguous (the relay may have accepted the message; see
	// ErrUnconfirmed), hence the long wait. Cancelling the context given
	// to Send cuts the remaining wait to Timeout.
	DataTimeout time.Duration
	// HELO is the name given in EHLO (smtp.helo); empty means the
	// machine's host name, which a host behind NAT may need to replace.
	HELO string
}

// SMTP is a Transport that relays over SMTP. go-mail dials, greets, starts
// TLS and authenticates; messages, already built, go over go-mail's SMTP
// client connection, the data dot-stuffed in bulk. When the server offers
// PIPELINING (RFC 2920), MAIL/RCPT/DATA go in one write, and a message's
// end of DATA carries the next message's MAIL/RCPT/DATA when Send is given
// one (see Conn): one round trip per message.
type SMTP struct {
	opts SMTPOptions
	addr string
	// noPipelining sends commands one by one even to a server that offers
	// PIPELINING: the test server always does, and both paths are tested.
	noPipelining bool
}

// NewSMTP returns the transport for opts, which package config has
// validated (host, port, tls, auth and timeouts are its checks, not
// repeated here). Nothing is dialed yet; go-mail's own refusals of the
// options surface now rather than per connection.
func NewSMTP(opts SMTPOptions) (*SMTP, error) {
	opts.DataTimeout = max(opts.DataTimeout, opts.Timeout)
	s := &SMTP{opts: opts, addr: net.JoinHostPort(opts.Host, strconv.Itoa(opts.Port))}
	if _, err := s.client(); err != nil {
		return nil, err
	}
	return s, nil
}

// String names the relay for logs and errors (never the credentials).
func (s *SMTP) String() string { return "smtp://" + s.addr + " (" + s.opts.TLS + ")" }

func (s *SMTP) client() (*gomail.Client, error) {
	o := s.opts
	opts := []gomail.Option{
		gomail.WithPort(o.Port),
		gomail.WithTimeout(o.Timeout),
		gomail.WithTLSConfig(&tls.Config{
			ServerName:         o.Host,
			InsecureSkipVerify: o.InsecureSkipVerify, //nolint:gosec // explicit opt-in for test relays
			MinVersion:         tls.VersionTLS12,
		}),
		gomail.WithoutNoop(),
		gomail.WithoutRset(),
	}
	switch o.TLS {
	case "none":
		opts = append(opts, gomail.WithTLSPolicy(gomail.NoTLS))
	case "starttls":
		opts = append(opts, gomail.WithTLSPolicy(gomail.TLSMandatory))
	case "tls":
		opts = append(opts, gomail.WithSSL())
	}
	if o.HELO != "" {
		opts = append(opts, gomail.WithHELO(o.HELO))
	}
	if o.Username != "" {
		opts = append(opts, gomail.WithUsername(o.Username), gomail.WithPassword(o.Password))
		switch o.Auth {
		case "plain":
			opts = append(opts, gomail.WithSMTPAuth(gomail.SMTPAuthPlain))
		case "login":
			opts = append(opts, gomail.WithSMTPAuth(gomail.SMTPAuthLogin))
		case "cram-md5":
			opts = append(opts, gomail.WithSMTPAuth(gomail.SMTPAuthCramMD5))
		default:
			if o.TLS == "none" {
				// go-mail's auto-discovery offers only challenge mechanisms
				// on a plain connection. Accept PLAIN/LOGIN too: go-mail
				// sends them unencrypted only to localhost and refuses
				// otherwise.
				opts = append(opts, gomail.WithOpportunisticSMTPAuth(gomail.SMTPAuthSCRAMSHA256,
					gomail.SMTPAuthSCRAMSHA1, gomail.SMTPAuthCramMD5, gomail.SMTPAuthPlain, gomail.SMTPAuthLogin))
			} else {
				opts = append(opts, gomail.WithSMTPAuth(gomail.SMTPAuthAutoDiscover))
			}
		}
	}
	c, err := gomail.NewClient(o.Host, opts...)
	if err != nil {
		return nil, fmt.Errorf("smtp %s: %w", s.addr, err)
	}
	return c, nil
}

// Open dials one connection, greets, starts TLS and authenticates. ctx and
// Timeout bound the dial; each later step is bounded by Timeout.
func (s *SMTP) Open(ctx context.Context) (Conn, error) {
	c, err := s.client()
	if err != nil {
		return nil, err
	}
	sc, err := c.DialToSMTPClientWithContext(ctx)
	if err != nil {
		return nil, fmt.Errorf("smtp %s: %w", s.addr, err)
	}
	conn := &smtpConn{c: c, sc: sc, addr: s.addr, timeout: s.opts.Timeout, dataTimeout: s.opts.DataTimeout}
	conn.utf8, _ = sc.Extension("SMTPUTF8")
	if ok, v := sc.Extension("SIZE"); ok {
		conn.maxSize, _ = strconv.Atoi(strings.TrimSpace(v))
	}
	conn.openData = conn.openOneByOne
	if ok, _ := sc.Extension("PIPELINING"); ok && !s.noPipelining {
		conn.openData = conn.openPipelined
		conn.pipelining = true
	}
	return conn, nil
}

type smtpConn struct {
	c           *gomail.Client
	sc          *smtp.Client
	addr        string
	timeout     time.Duration
	dataTimeout time.Duration // for the reply to the end of DATA
	// openData sends MAIL, RCPT and DATA: pipelined when the server
	// offers PIPELINING, one by one otherwise (chosen once, at Open).
	openData func(mailCmd, rcptCmd string, reused bool) error
	// pipelining: the server offers PIPELINING, so the end of DATA can
	// carry the next message's MAIL, RCPT and DATA.
	pipelining bool
	// opened is the message whose MAIL, RCPT and DATA went out with the
	// last end of DATA; their replies are not read yet.
	opened  *mail.Message
	utf8    bool
	maxSize int
	used    bool // a message was sent before on this connection
	closed  bool // closed without QUIT: the dialogue is out of step
}

// Send transmits one message and returns nil once the server accepted it
// (see Conn for ready, the next message and opened). A refusal is a
// *ReplyError; a failure without a reply wraps ErrConnBroken, and also
// ErrUnconfirmed when it happened while waiting for the reply to the end
// of DATA. ctx is not consulted while the message is transmitted (each
// step is bounded by the timeout); while waiting for that last reply, its
// cancellation cuts the wait to the timeout.
func (c *smtpConn) Send(ctx context.Context, m *mail.Message, ready Ready) (opened bool, err error) {
	if c.opened != nil {
		return c.sendOpened(ctx, m, ready)
	}
	mailCmd, err := c.envelope(m)
	if err != nil {
		return false, err
	}
	// A dead connection that was used before is stale: the server closed
	// it while idle, and nothing of this message reached it.
	reused := c.used
	c.used = true
	if err := c.sc.UpdateDeadline(c.timeout); err != nil {
		return false, &connError{stage: "set deadline", err: err}
	}
	if err := c.openData(mailCmd, rcptCommand(m), reused); err != nil {
		return false, err
	}
	return c.writeData(ctx, m.Data, ready)
}

// sendOpened goes on with m, whose MAIL, RCPT and DATA went out with the
// previous message's end of DATA: it reads their replies, then sends the
// data. A connection that died before the reply to MAIL is stale, as in
// Send: nothing of m reached the server.
func (c *smtpConn) sendOpened(ctx context.Context, m *mail.Message, ready Ready) (bool, error) {
	if c.opened != m {
		// Not the message whose transaction is open: the caller broke the
		// contract. Nothing of m was sent; the connection is given up.
		c.opened = nil
		c.abort()
		return false, &connError{stage: "MAIL FROM", stale: true, err: errors.New("another message's transaction is open on this connection")}
	}
	c.opened = nil
	if err := c.sc.UpdateDeadline(c.timeout); err != nil {
		c.abort()
		return false, &connError{stage: "set deadline", err: err}
	}
	if err := c.openReplies(true); err != nil {
		return false, err
	}
	return c.writeData(ctx, m.Data, ready)
}

func rcptCommand(m *mail.Message) string { return "RCPT TO:<" + m.To + ">" }

// envelope checks what the server can take before anything is sent, and
// returns the MAIL FROM command.
func (c *smtpConn) envelope(m *mail.Message) (string, error) {
	if c.maxSize > 0 && len(m.Data) > c.maxSize {
		return "", &ReplyError{Command: "SIZE", Code: 552, Enhanced: "5.3.4",
			Message: fmt.Sprintf("message of %d bytes exceeds the server's limit of %d", len(m.Data), c.maxSize)}
	}
	mailCmd := "MAIL FROM:<" + m.From + ">"
	if isASCII(m.From) && isASCII(m.To) {
		return mailCmd, nil
	}
	if !c.utf8 {
		return "", &ReplyError{Command: "SMTPUTF8", Code: 553, Enhanced: "5.6.7",
			Message: "non-ASCII address and the server does not offer SMTPUTF8"}
	}
	return mailCmd + " SMTPUTF8", nil
}

// openOneByOne sends MAIL, RCPT and DATA, each after the reply to the one
// before; nil means the server is waiting for the data.
func (c *smtpConn) openOneByOne(mailCmd, rcptCmd string, reused bool) error {
	if err := c.command(mailCmd, "MAIL FROM", 250); err != nil {
		markStale(err, reused)
		return c.resetOnReply(err)
	}
	if err := c.command(rcptCmd, "RCPT TO", 25); err != nil {
		return c.resetOnReply(err)
	}
	if err := c.command("DATA", "DATA", 354); err != nil {
		return c.resetOnReply(err)
	}
	return nil
}

// openPipelined sends MAIL, RCPT and DATA at once (RFC 2920), then reads
// the three replies; nil means the server is waiting for the data.
func (c *smtpConn) openPipelined(mailCmd, rcptCmd string, reused bool) error {
	err := c.writeOpen(mailCmd, rcptCmd)
	if err == nil {
		err = c.sc.Text.W.Flush()
	}
	if err != nil {
		return &connError{stage: "MAIL FROM", stale: reused, err: err}
	}
	return c.openReplies(reused)
}

// writeOpen buffers MAIL, RCPT and DATA; the caller flushes.
func (c *smtpConn) writeOpen(mailCmd, rcptCmd string) error {
	_, err := c.sc.Text.W.WriteString(openCommands(mailCmd, rcptCmd))
	return err
}

func openCommands(mailCmd, rcptCmd string) string {
	return mailCmd + "\r\n" + rcptCmd + "\r\nDATA\r\n"
}

// openReplies reads the replies to a pipelined MAIL, RCPT and DATA; nil
// means the server is waiting for the data. A refusal leaves the
// connection reset (RSET) for the next message.
func (c *smtpConn) openReplies(reused bool) error {
	t := c.sc.Text
	errMail := c.reply("MAIL FROM", 250)
	if isConnErr(errMail) {
		markStale(errMail, reused)
		return errMail
	}
	errRcpt := c.reply("RCPT TO", 25)
	if isConnErr(errRcpt) {
		return errRcpt
	}
	errData := c.reply("DATA", 354)
	if isConnErr(errData) {
		return errData
	}
	if errMail == nil && errRcpt == nil && errData == nil {
		return nil
	}
	if errData == nil {
		// A server that said 354 although MAIL or RCPT failed: end the
		// empty data, then start over.
		if _, err := t.W.WriteString(".\r\n"); err != nil {
			return &connError{stage: "end of DATA", err: err}
		}
		_ = t.W.Flush()
		_ = c.reply("end of DATA", 250)
	}
	return c.reset(firstErr(errMail, errRcpt, errData))
}

// writeData sends the dot-stuffed data and, only once ready agrees, the
// final "." that lets the server accept the message, followed in the same
// write by the next message's MAIL, RCPT and DATA when ready gives one;
// then it reads the server's verdict on this message (the replies to the
// next one's commands are read by its Send).
func (c *smtpConn) writeData(ctx context.Context, data []byte, ready Ready) (opened bool, err error) {
	w := c.sc.Text.W
	// The data may take longer than one command: a second more per 100 KB.
	if err := c.sc.UpdateDeadline(c.timeout + time.Duration(len(data)/100_000)*time.Second); err != nil {
		return false, &connError{stage: "set deadline", err: err}
	}
	if err := writeDotStuffed(w, data); err != nil {
		return false, &connError{stage: "DATA", err: err}
	}
	var next *mail.Message
	if ready != nil {
		if next, err = ready(c.pipelining); err != nil {
			// Without the final dot the server cannot accept the message:
			// give up the connection instead.
			c.abort()
			return false, &connError{stage: "DATA", err: err}
		}
		if err := c.sc.UpdateDeadline(c.timeout); err != nil {
			return false, &connError{stage: "set deadline", err: err}
		}
	}
	next, tail := c.openNext(next)
	if len(tail) > w.Available() {
		// What is buffered goes first, so that the final "." and the
		// commands behind it leave in one write.
		err = w.Flush()
	}
	if err == nil {
		_, err = w.WriteString(tail)
	}
	if err == nil {
		err = w.Flush()
	}
	if err != nil {
		// The final "." did not reach the server whole: it cannot have
		// accepted the message (nor started the next one).
		c.abort()
		return false, &connError{stage: "DATA", err: err}
	}
	c.opened = next
	if err := c.dataReply(ctx); err != nil {
		if c.opened == nil {
			return false, c.resetOnReply(err)
		}
		if isConnErr(err) {
			c.opened = nil // gone with the connection
			return false, err
		}
		// The verdict ended this message's transaction and the next one's
		// MAIL began a new one: no RSET.
		return true, err
	}
	return c.opened != nil, nil
}

// openNext returns the end of DATA, followed by next's MAIL, RCPT and DATA
// when the server takes pipelined commands and next's envelope passes the
// checks made before sending; else next is returned nil (its own Send
// gives the refusal).
func (c *smtpConn) openNext(next *mail.Message) (*mail.Message, string) {
	if next == nil || !c.pipelining {
		return nil, ".\r\n"
	}
	mailCmd, err := c.envelope(next)
	if err != nil {
		return nil, ".\r\n"
	}
	return next, ".\r\n" + openCommands(mailCmd, rcptCommand(next))
}

// dataReply reads the reply to the end of DATA, waiting up to dataTimeout
// (cut to timeout once ctx is cancelled). No reply at all is ambiguous: the
// connection is closed at once (a late reply would be taken for the answer
// to the next command) and the error is marked unconfirmed.
func (c *smtpConn) dataReply(ctx context.Context) error {
	if err := c.sc.UpdateDeadline(c.dataTimeout); err != nil {
		return &connError{stage: "end of DATA", unconfirmed: true, err: err}
	}
	deadline := time.Now().Add(c.dataTimeout)
	cut := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		defer close(cut)
		_ = c.sc.UpdateDeadline(min(time.Until(deadline), c.timeout))
	})
	err := c.reply("end of DATA", 250)
	if !stop() {
		<-cut // so that the deadline is not changed behind a later step
	}
	var ce *connError
	if errors.As(err, &ce) {
		ce.unconfirmed = true
		c.abort()
	}
	return err
}

// abort closes the connection without QUIT.
func (c *smtpConn) abort() {
	_ = c.sc.Close()
	c.closed = true
}

// command sends one command and reads its reply.
func (c *smtpConn) command(cmd, name string, want int) error {
	if _, err := c.sc.Text.W.WriteString(cmd + "\r\n"); err != nil {
		return &connError{stage: name, err: err}
	}
	if err := c.sc.Text.W.Flush(); err != nil {
		return &connError{stage: name, err: err}
	}
	return c.reply(name, want)
}

// reply reads one reply; a code other than want gives a *ReplyError.
func (c *smtpConn) reply(name string, want int) error {
	_, _, err := c.sc.Text.ReadResponse(want)
	if err == nil {
		return nil
	}
	var te *textproto.Error
	if errors.As(err, &te) {
		return replyError(name, te)
	}
	return &connError{stage: name, err: err}
}

// resetOnReply puts the connection back in a clean state after a refused
// command (RSET); a connection failure is returned as is.
func (c *smtpConn) resetOnReply(err error) error {
	if isConnErr(err) {
		return err
	}
	return c.reset(err)
}

func (c *smtpConn) reset(err error) error {
	if rerr := c.command("RSET", "RSET", 250); rerr != nil {
		return errors.Join(err, fmt.Errorf("%w: RSET: %v", ErrConnBroken, rerr))
	}
	return err
}

// Close sends QUIT and closes the connection; a connection that is already
// gone is closed without error. A transaction left open for a next message
// is ended first (see endOpened).
func (c *smtpConn) Close() error {
	if c.opened != nil {
		c.opened = nil
		c.endOpened()
	}
	if c.closed {
		return nil
	}
	_ = c.sc.UpdateDeadline(c.timeout)
	err := c.c.CloseWithSMTPClient(c.sc)
	if err != nil {
		_ = c.sc.Close()
	}
	return err
}

// endOpened ends the transaction of a message whose MAIL, RCPT and DATA
// went out but which is not to be sent: it reads their replies, and once
// the server waits for the data (354) nothing but closing the connection
// without the final "." ends that phase without the message being
// accepted (any command would be taken as data). A refused transaction
// leaves the connection usable for QUIT.
func (c *smtpConn) endOpened() {
	if c.closed {
		return
	}
	_ = c.sc.UpdateDeadline(c.timeout)
	errMail := c.reply("MAIL FROM", 250)
	errRcpt := c.reply("RCPT TO", 25)
	errData := c.reply("DATA", 354)
	if errData == nil || isConnErr(errMail) || isConnErr(errRcpt) || isConnErr(errData) {
		c.abort()
	}
}

func replyError(name string, te *textproto.Error) *ReplyError {
	e := &ReplyError{Command: name, Code: te.Code, Message: strings.Join(strings.Fields(te.Msg), " ")}
	if m := enhancedRE.FindString(te.Msg); m != "" && strings.HasPrefix(te.Msg, m) {
		e.Enhanced = m
		e.Message = strings.TrimSpace(strings.TrimPrefix(e.Message, m))
	}
	return e
}

func isConnErr(err error) bool {
	var ce *connError
	return errors.As(err, &ce)
}

func markStale(err error, stale bool) {
	var ce *connError
	if errors.As(err, &ce) {
		ce.stale = stale
	}
}

func firstErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// byteWriter is what writeDotStuffed needs of a *bufio.Writer.
type byteWriter interface {
	Write([]byte) (int, error)
	WriteString(string) (int, error)
}

// writeDotStuffed writes data as SMTP DATA content: a '.' starting a line is
// doubled and a missing final CRLF added; the caller writes the terminating
// ".\r\n". data has CRLF line ends (mail.Message guarantees it).
func writeDotStuffed(w byteWriter, data []byte) error {
	if len(data) > 0 && data[0] == '.' {
		if _, err := w.WriteString("."); err != nil {
			return err
		}
	}
	for {
		i := bytes.Index(data, []byte("\n."))
		if i < 0 {
			break
		}
		if _, err := w.Write(data[:i+1]); err != nil {
			return err
		}
		if _, err := w.WriteString("."); err != nil {
			return err
		}
		data = data[i+1:]
	}
	if _, err := w.Write(data); err != nil {
		return err
	}
	if len(data) > 0 && data[len(data)-1] != '\n' {
		_, err := w.WriteString("\r\n")
		return err
	}
	return nil
}
