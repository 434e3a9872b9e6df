package deliver

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	gomail "github.com/wneessen/go-mail"
	"github.com/wneessen/go-mail/smtp"

	"github.com/digest/digest/internal/ledger"
)

// ErrConnBroken is wrapped by Conn.Send when the connection can no longer be
// used; the engine closes it and opens another.
var ErrConnBroken = errors.New("connection broken")

// SMTPOptions configures the SMTP transport. Host is required.
type SMTPOptions struct {
	Host     string
	Port     int    // 0: 587 for starttls, 465 for tls, 25 for none
	Username string // when set, authenticate
	Password string
	// TLS is none, starttls (the default when empty: STARTTLS is required)
	// or tls (implicit TLS from the first byte).
	TLS                string
	InsecureSkipVerify bool
	// Timeout bounds the dial and each later step (greeting, EHLO, STARTTLS,
	// AUTH, and each message); 0 means 30s.
	Timeout time.Duration
	HELO    string // EHLO name; empty means the machine's host name
}

// SMTP is a Transport that relays over SMTP with go-mail. Each Conn is its
// own go-mail Client with its own connection, so connections never share
// state.
type SMTP struct {
	opts SMTPOptions
	addr string
}

// NewSMTP validates opts and returns the transport. Nothing is dialed yet.
func NewSMTP(opts SMTPOptions) (*SMTP, error) {
	if opts.Host == "" {
		return nil, errors.New("smtp: host is empty")
	}
	switch opts.TLS {
	case "":
		opts.TLS = "starttls"
	case "none", "starttls", "tls":
	default:
		return nil, fmt.Errorf("smtp: tls %q: want none, starttls or tls", opts.TLS)
	}
	if opts.Port == 0 {
		opts.Port = map[string]int{"none": 25, "starttls": 587, "tls": 465}[opts.TLS]
	}
	if opts.Port < 1 || opts.Port > 65535 {
		return nil, fmt.Errorf("smtp: port %d out of range", opts.Port)
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 30 * time.Second
	}
	s := &SMTP{opts: opts, addr: net.JoinHostPort(opts.Host, strconv.Itoa(opts.Port))}
	if _, err := s.client(); err != nil { // surface option errors now, not per connection
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
		// One message per Send call on a connection we own: the NOOP before
		// each message is a wasted round trip, and skipping the RSET after
		// an accepted DATA removes the "accepted, then the connection drops
		// during RSET" error (go-mail still resets after a failed command).
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
		if o.TLS == "none" {
			// go-mail's auto-discovery offers only challenge mechanisms on
			// a plain connection. Accept PLAIN/LOGIN too: go-mail sends
			// them unencrypted only to localhost and refuses otherwise.
			opts = append(opts, gomail.WithOpportunisticSMTPAuth(gomail.SMTPAuthSCRAMSHA256,
				gomail.SMTPAuthSCRAMSHA1, gomail.SMTPAuthCramMD5, gomail.SMTPAuthPlain, gomail.SMTPAuthLogin))
		} else {
			opts = append(opts, gomail.WithSMTPAuth(gomail.SMTPAuthAutoDiscover))
		}
	}
	c, err := gomail.NewClient(o.Host, opts...)
	if err != nil {
		return nil, fmt.Errorf("smtp %s: %w", s.addr, err)
	}
	return c, nil
}

// Open dials one connection, greets, starts TLS and authenticates. ctx bounds
// the dial; each later step is bounded by Timeout.
func (s *SMTP) Open(ctx context.Context) (Conn, error) {
	c, err := s.client()
	if err != nil {
		return nil, err
	}
	sc, err := c.DialToSMTPClientWithContext(ctx)
	if err != nil {
		return nil, fmt.Errorf("smtp %s: %w", s.addr, err)
	}
	return &smtpConn{c: c, sc: sc, addr: s.addr}, nil
}

type smtpConn struct {
	c    *gomail.Client
	sc   *smtp.Client
	addr string
}

// Send transmits one message. go-mail has no per-message context: the send
// is bounded by the transport Timeout, and ctx is not consulted.
func (c *smtpConn) Send(_ context.Context, m *gomail.Msg, _ ledger.Recipient) error {
	err := c.c.SendWithSMTPClient(c.sc, m)
	if err == nil || m.IsDelivered() {
		return err
	}
	var se *gomail.SendError
	if errors.As(err, &se) && se.ErrorCode() != 0 {
		// The server answered: the connection is alive, but a refused
		// DATA or its end leaves the transaction in doubt. RSET so the next
		// message starts clean; if that fails the connection is gone.
		if rerr := c.sc.Reset(); rerr != nil {
			return errors.Join(err, fmt.Errorf("%w: RSET: %v", ErrConnBroken, rerr))
		}
		return err
	}
	return errors.Join(err, ErrConnBroken)
}

// Close sends QUIT and closes the connection; a connection that is already
// gone is closed without error.
func (c *smtpConn) Close() error {
	err := c.c.CloseWithSMTPClient(c.sc)
	if err != nil {
		_ = c.sc.Close()
	}
	return err
}
