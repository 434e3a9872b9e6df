package bounce

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/emersion/go-imap"
	"github.com/emersion/go-imap/client"
)

// MailboxOptions configures a Poller.
type MailboxOptions struct {
	// URL is imaps://host[:993]/MAILBOX (TLS from the first byte); the
	// mailbox defaults to INBOX.
	URL                string
	Username, Password string
	// Interval between polls; zero: 5 minutes.
	Interval time.Duration
	// MoveTo, when set, is the folder handled messages are moved to
	// (created if missing); empty: they are deleted.
	MoveTo string
	// TLS configures the connection; nil: the system's roots, the URL's
	// host.
	TLS    *tls.Config
	Logger *slog.Logger
}

// Poller reads a mailbox that receives returned mail: every message is
// handled, then moved or deleted. A message the store could not record is
// left for the next poll.
type Poller struct {
	h       *Handler
	o       MailboxOptions
	addr    string
	mailbox string
}

// perPoll bounds the messages handled in one poll.
const perPoll = 500

// NewPoller checks o and returns a Poller.
func NewPoller(h *Handler, o MailboxOptions) (*Poller, error) {
	u, err := url.Parse(o.URL)
	if err != nil || u.Scheme != "imaps" || u.Hostname() == "" {
		return nil, fmt.Errorf("mailbox URL %q: want imaps://host[:port]/MAILBOX", o.URL)
	}
	p := &Poller{h: h, o: o, addr: u.Host, mailbox: strings.Trim(u.Path, "/")}
	if u.Port() == "" {
		p.addr = net.JoinHostPort(u.Hostname(), "993")
	}
	if p.mailbox == "" {
		p.mailbox = "INBOX"
	}
	if p.o.Interval <= 0 {
		p.o.Interval = 5 * time.Minute
	}
	if p.o.TLS == nil {
		p.o.TLS = &tls.Config{ServerName: u.Hostname(), MinVersion: tls.VersionTLS12}
	}
	if p.o.Logger == nil {
		p.o.Logger = slog.New(slog.DiscardHandler)
	}
	return p, nil
}

// SkipVerify accepts any certificate (a self-signed one on a private
// network), as smtp.insecure_skip_verify does for the relay.
func (p *Poller) SkipVerify() {
	c := p.o.TLS.Clone()
	c.InsecureSkipVerify = true //nolint:gosec // the operator's explicit choice
	p.o.TLS = c
}

// Interval is the time between polls.
func (p *Poller) Interval() time.Duration { return p.o.Interval }

// Run polls now and every Interval until ctx ends.
func (p *Poller) Run(ctx context.Context) {
	t := time.NewTicker(p.o.Interval)
	defer t.Stop()
	for {
		n, err := p.Poll(ctx)
		switch {
		case err != nil && ctx.Err() == nil:
			p.o.Logger.Warn("polling the bounce mailbox", "mailbox", p.mailbox, "err", err)
		case n > 0:
			p.o.Logger.Info("bounce mailbox polled", "mailbox", p.mailbox, "handled", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Poll handles the messages in the mailbox once and returns how many.
func (p *Poller) Poll(ctx context.Context) (int, error) {
	d := &net.Dialer{Timeout: 30 * time.Second}
	c, err := client.DialWithDialerTLS(d, p.addr, p.o.TLS)
	if err != nil {
		return 0, fmt.Errorf("connect %s: %w", p.addr, err)
	}
	c.Timeout = 2 * time.Minute
	defer func() { _ = c.Logout() }()
	stop := context.AfterFunc(ctx, func() { _ = c.Terminate() })
	defer stop()
	if err := c.Login(p.o.Username, p.o.Password); err != nil {
		return 0, fmt.Errorf("login to %s as %s: %w", p.addr, p.o.Username, err)
	}
	mbox, err := c.Select(p.mailbox, false)
	if err != nil {
		return 0, fmt.Errorf("select %s: %w", p.mailbox, err)
	}
	if mbox.Messages == 0 {
		return 0, nil
	}
	sizes, err := p.sizes(c, mbox.Messages)
	if err != nil {
		return 0, err
	}
	done := new(imap.SeqSet)
	n := 0
	var handleErr error
	for _, m := range sizes {
		if err := p.handle(ctx, c, mbox.UidValidity, m.uid, m.size); err != nil {
			handleErr = err // the store is down: leave the rest for later
			break
		}
		done.AddNum(m.uid)
		n++
	}
	if n > 0 {
		if err := p.finish(c, done); err != nil {
			return n, err
		}
	}
	return n, handleErr
}

type uidSize struct {
	uid  uint32
	size uint32
}

// sizes lists the first perPoll messages' UIDs and sizes.
func (p *Poller) sizes(c *client.Client, count uint32) ([]uidSize, error) {
	seq := new(imap.SeqSet)
	seq.AddRange(1, min(count, perPoll))
	ch := make(chan *imap.Message, 16)
	errc := make(chan error, 1)
	go func() { errc <- c.Fetch(seq, []imap.FetchItem{imap.FetchUid, imap.FetchRFC822Size}, ch) }()
	var out []uidSize
	for m := range ch {
		out = append(out, uidSize{m.Uid, m.Size})
	}
	if err := <-errc; err != nil {
		return nil, fmt.Errorf("list %s: %w", p.mailbox, err)
	}
	return out, nil
}

// handle fetches and records one message. Only a store failure is an
// error; a message too large to read is recorded as unmatched, unread.
func (p *Poller) handle(ctx context.Context, c *client.Client, validity, uid, size uint32) error {
	if int(size) > p.h.Parser.MaxSize() {
		_, err := p.h.HandleEvent(ctx, Event{Source: "imap", Fingerprint: fmt.Sprintf("imap:%s:%d:%d", p.mailbox, validity, uid),
			Verdict: Verdict{Kind: Unmatched, Reason: fmt.Sprintf("message of %d bytes, larger than %d", size, p.h.Parser.MaxSize())}})
		return err
	}
	seq := new(imap.SeqSet)
	seq.AddNum(uid)
	section := &imap.BodySectionName{Peek: true}
	ch := make(chan *imap.Message, 1)
	errc := make(chan error, 1)
	go func() { errc <- c.UidFetch(seq, []imap.FetchItem{section.FetchItem()}, ch) }()
	var raw []byte
	for m := range ch {
		if r := m.GetBody(section); r != nil {
			raw, _ = io.ReadAll(io.LimitReader(r, int64(p.h.Parser.MaxSize())+1))
		}
	}
	if err := <-errc; err != nil {
		return fmt.Errorf("fetch message %d: %w", uid, err)
	}
	_, err := p.h.HandleMessage(ctx, raw, "imap")
	return err
}

// finish moves the handled messages, or deletes them.
func (p *Poller) finish(c *client.Client, uids *imap.SeqSet) error {
	if p.o.MoveTo != "" {
		// Create it first: an error there is "it exists" on every poll
		// after the first, and any other shows in the move's error.
		_ = c.Create(p.o.MoveTo)
		if err := c.UidMove(uids, p.o.MoveTo); err != nil {
			return fmt.Errorf("move handled messages to %s: %w", p.o.MoveTo, err)
		}
		return nil
	}
	flags := []any{imap.DeletedFlag}
	if err := c.UidStore(uids, imap.FormatFlagsOp(imap.AddFlags, true), flags, nil); err != nil {
		return fmt.Errorf("delete handled messages: %w", err)
	}
	if err := c.Expunge(nil); err != nil {
		return fmt.Errorf("expunge: %w", err)
	}
	return nil
}
