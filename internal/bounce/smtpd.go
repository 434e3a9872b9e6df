package bounce

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/emersion/go-smtp"
	"golang.org/x/time/rate"
)

// ReceiverOptions configures the inbound SMTP receiver.
type ReceiverOptions struct {
	// Domain is the name in the greeting; empty: the bounce address's.
	Domain string
	// MaxSize caps a message; zero: the parser's MaxSize.
	MaxSize int
	// Rate and Burst cap the messages one client address may hand over
	// (per second, and in a row): zero means 5 a second after a burst of
	// 200, enough for a relay flushing its bounces at once.
	Rate  float64
	Burst int
	// Refused, when set, sees each message refused before it was read
	// (too large, too fast): counted, never recorded.
	Refused func(reason string)
	Logger  *slog.Logger
}

// Receiver is a small inbound SMTP server for returned mail: it accepts
// mail for the bounce address and its VERP forms only (no relaying),
// from any sender including the null sender <>, and hands each message to
// the Handler. A message is answered 250 once recorded, 451 when the store
// is unavailable (the relay retries), 552 when too large, 421 when a
// client sends too fast.
type Receiver struct {
	h    *Handler
	srv  *smtp.Server
	opts ReceiverOptions

	mu      sync.Mutex
	clients map[string]*rate.Limiter
}

// NewReceiver returns a receiver handing messages to h.
func NewReceiver(h *Handler, o ReceiverOptions) *Receiver {
	if o.MaxSize <= 0 {
		o.MaxSize = h.Parser.MaxSize()
	}
	if o.Rate <= 0 {
		o.Rate, o.Burst = 5, 200
	}
	if o.Burst <= 0 {
		o.Burst = 1
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	r := &Receiver{h: h, opts: o, clients: map[string]*rate.Limiter{}}
	r.srv = smtp.NewServer(smtp.BackendFunc(r.newSession))
	r.srv.Domain = o.Domain
	if r.srv.Domain == "" {
		r.srv.Domain = "localhost"
		if _, d, ok := cutAt(h.Parser.bounce); ok {
			r.srv.Domain = d
		}
	}
	r.srv.MaxMessageBytes = int64(o.MaxSize)
	r.srv.MaxRecipients = 20
	r.srv.ReadTimeout = 2 * time.Minute
	r.srv.WriteTimeout = time.Minute
	r.srv.ErrorLog = slogPrinter{o.Logger}
	return r
}

func cutAt(addr string) (string, string, bool) {
	for i := len(addr) - 1; i >= 0; i-- {
		if addr[i] == '@' {
			return addr[:i], addr[i+1:], true
		}
	}
	return "", "", false
}

// Serve accepts connections on ln until ctx ends or Close is called.
func (r *Receiver) Serve(ctx context.Context, ln net.Listener) error {
	done := make(chan struct{})
	defer close(done)
	go func() {
		select {
		case <-ctx.Done():
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			defer cancel()
			_ = r.srv.Shutdown(sctx)
		case <-done:
		}
	}()
	err := r.srv.Serve(ln)
	if errors.Is(err, smtp.ErrServerClosed) || ctx.Err() != nil {
		return nil
	}
	return err
}

// limiter is the rate limit of one client address.
func (r *Receiver) limiter(addr net.Addr) *rate.Limiter {
	host := addr.String()
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	l, ok := r.clients[host]
	if !ok {
		if len(r.clients) > 10000 {
			clear(r.clients) // a flood of addresses: start over rather than grow
		}
		l = rate.NewLimiter(rate.Limit(r.opts.Rate), r.opts.Burst)
		r.clients[host] = l
	}
	return l
}

func (r *Receiver) newSession(c *smtp.Conn) (smtp.Session, error) {
	return &session{r: r, limit: r.limiter(c.Conn().RemoteAddr())}, nil
}

// session is one SMTP connection.
type session struct {
	r     *Receiver
	limit *rate.Limiter
	rcpts []string
}

var (
	errNoRelay  = &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such mailbox here, and no relaying"}
	errTooFast  = &smtp.SMTPError{Code: 421, EnhancedCode: smtp.EnhancedCode{4, 7, 0}, Message: "too many messages; try again later"}
	errTempFail = &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "cannot record the message now; try again later"}
	errNoReader = &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such bounce address: its token names no reader"}
)

func (s *session) Reset()        { s.rcpts = nil }
func (s *session) Logout() error { return nil }

// Mail accepts every sender, the null one first: bounces come from <>.
func (s *session) Mail(string, *smtp.MailOptions) error {
	if !s.limit.Allow() {
		if s.r.opts.Refused != nil {
			s.r.opts.Refused("rate")
		}
		return errTooFast
	}
	return nil
}

// Rcpt accepts the bounce address and its VERP forms whose token is
// genuine: a forged or stale token (a reader since deleted) is refused
// here, so that nobody can have the store keep copies of their mail by
// inventing addresses. The bare address takes what comes without a token
// (feedback loops' reports, bounces of mail sent before VERP).
func (s *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	if !s.r.h.Parser.IsBounceAddress(to) {
		return errNoRelay
	}
	if tok := s.r.h.Parser.VERPToken(to); tok != "" {
		_, err := s.r.h.Resolver.Identify(Tokens{VERP: []string{tok}})
		switch {
		case errors.Is(err, ErrNoReader):
			if s.r.opts.Refused != nil {
				s.r.opts.Refused("token")
			}
			return errNoReader
		case err != nil:
			s.r.opts.Logger.Warn("inbound bounce: cannot check its address now; the relay will retry", "err", err)
			return errTempFail
		}
	}
	s.rcpts = append(s.rcpts, to)
	return nil
}

func (s *session) Data(r io.Reader) error {
	raw, err := io.ReadAll(r)
	if err != nil {
		if errors.Is(err, smtp.ErrDataTooLarge) && s.r.opts.Refused != nil {
			s.r.opts.Refused("size")
		}
		return err
	}
	for _, to := range s.rcpts {
		if _, err := s.r.h.HandleMessageTo(context.Background(), raw, "smtp", to); err != nil {
			s.r.opts.Logger.Warn("inbound bounce not recorded; the relay will retry", "err", err)
			return errTempFail
		}
	}
	return nil
}

type slogPrinter struct{ l *slog.Logger }

func (p slogPrinter) Printf(format string, v ...any) {
	p.l.Debug("smtp receiver", "msg", fmt.Sprintf(format, v...))
}
func (p slogPrinter) Println(v ...any) { p.l.Debug("smtp receiver", "msg", fmt.Sprint(v...)) }
