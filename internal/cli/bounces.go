package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sync"
	"text/tabwriter"

	"github.com/digest/digest/internal/bounce"
	"github.com/digest/digest/internal/web"
)

// ExitTempFail (EX_TEMPFAIL) tells an MTA's pipe transport to keep the
// message and try again: `bounces receive` returns it when the store
// cannot be reached.
const ExitTempFail = 75

func (e *env) bounces(ctx context.Context, rest []string) error {
	if len(rest) == 0 {
		return usagef("bounces: expected receive or list")
	}
	switch rest[0] {
	case "receive":
		return e.bouncesReceive(ctx, rest[1:])
	case "list":
		return e.bouncesList(ctx, rest[1:])
	}
	return usagef("bounces: unknown command %q", rest[0])
}

// bounceHandler wires the one path from a returned message to the store.
func (e *env) bounceHandler(ctx context.Context) (*bounce.Handler, error) {
	secret, err := e.secret(ctx)
	if err != nil {
		return nil, err
	}
	lookup := func(id int64) (string, error) {
		s, err := e.store.Subscriber(ctx, id)
		return s.Email, err
	}
	byAddress := func(email string) (int64, error) {
		s, err := e.store.Get(ctx, email)
		return s.ID, err
	}
	warner := &bounce.RateWarner{Store: e.store, Logger: e.log}
	return &bounce.Handler{
		Parser: bounce.NewParser(bounce.Options{BounceAddress: e.cfg.Bounces.Address}),
		Resolver: bounce.Resolver{Secret: secret, Lookup: lookup, ByAddress: byAddress,
			Sent: func(issue string, id int64) (bool, error) { return e.store.WasSent(ctx, issue, id) }},
		Store: e.store,
		Observe: func(ev bounce.Event) {
			e.metrics.Bounce(string(ev.Kind), ev.Source, ev.Action)
			warner.Check(ctx, ev)
		},
		Logger: e.log,
	}, nil
}

// bouncesReceive reads one message (stdin, or FILE) from an MTA's pipe
// transport or procmail and records what it says. It exits 0 whether the
// message was acted on or ignored, 75 when the store cannot be reached.
func (e *env) bouncesReceive(ctx context.Context, args []string) error {
	f := newFlags(e, "bounces receive", false)
	to := f.String("to", "", "envelope recipient, when the MTA passes it (e.g. Postfix pipe's ${original_recipient})")
	pos, err := f.parse(e, args, 0, 1)
	if err != nil {
		return err
	}
	in := e.stdin
	if len(pos) == 1 && pos[0] != "-" {
		file, err := os.Open(pos[0])
		if err != nil {
			return fmt.Errorf("bounces receive: %w", err)
		}
		defer file.Close()
		in = file
	}
	if err := e.load(ctx); err != nil {
		if e.cfg == nil {
			return err // the configuration: exit 2
		}
		return &exitError{code: ExitTempFail, err: err}
	}
	defer e.close()
	h, err := e.bounceHandler(ctx)
	if err != nil {
		return &exitError{code: ExitTempFail, err: err}
	}
	// Read one byte past the cap, then drain: an MTA whose pipe is
	// closed early sees a failure and retries for days.
	raw, err := io.ReadAll(io.LimitReader(in, int64(h.Parser.MaxSize())+1))
	if err != nil {
		return &exitError{code: ExitTempFail, err: fmt.Errorf("bounces receive: reading the message: %w", err)}
	}
	_, _ = io.Copy(io.Discard, in)
	ev, err := h.HandleMessageTo(ctx, raw, "receive", *to)
	if err != nil {
		return &exitError{code: ExitTempFail, err: err}
	}
	fmt.Fprintln(e.stdout, describeEvent(ev))
	return nil
}

// describeEvent is one line about an event for the operator.
func describeEvent(ev bounce.Event) string {
	s := string(ev.Kind)
	if ev.Status != "" {
		s += " " + ev.Status
	}
	if ev.Format != "" {
		s += " (" + ev.Format + ")"
	}
	if ev.Reader.SubscriberID != 0 {
		s += fmt.Sprintf(" for subscriber %d, issue %s, via %s", ev.Reader.SubscriberID, ev.Reader.IssueID, ev.Reader.Via)
	} else {
		s += " for no known reader"
	}
	s += ": " + ev.Action
	switch {
	case ev.Reason != "":
		s += " (" + ev.Reason + ")"
	case ev.Diagnostic != "":
		s += " (" + ev.Diagnostic + ")"
	}
	return s
}

// bouncesList prints the latest events, newest first, with their reasons.
func (e *env) bouncesList(ctx context.Context, args []string) error {
	f := newFlags(e, "bounces list", false)
	limit := f.Int("limit", 50, "how many events")
	if _, err := f.parse(e, args, 0, 0); err != nil {
		return err
	}
	if *limit <= 0 {
		return usagef("bounces list --limit %d: want a positive number", *limit)
	}
	if err := e.load(ctx); err != nil {
		return err
	}
	defer e.close()
	evs, err := e.store.RecentBounces(ctx, *limit)
	if err != nil {
		return err
	}
	if len(evs) == 0 {
		fmt.Fprintln(e.stdout, "No bounce events yet.")
		return nil
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tRECEIVED\tSOURCE\tKIND\tSTATUS\tREADER\tISSUE\tACTION\tREASON")
	for _, ev := range evs {
		reader := "-"
		if id := ev.Reader.SubscriberID; id != 0 {
			reader = fmt.Sprint(id)
			if s, err := e.store.Subscriber(ctx, id); err == nil {
				reader = s.Email
			}
		}
		reason := ev.Diagnostic
		if ev.Reason != "" {
			reason = ev.Reason
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", ev.ID, ev.At.Format("2006-01-02 15:04"), ev.Source,
			ev.Kind, dash(ev.Status), reader, dash(ev.Reader.IssueID), ev.Action, dash(reason))
	}
	return tw.Flush()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// bounceServices are the bounce intakes that `serve` and the daemon run
// beside HTTP: the inbound SMTP receiver (bounces.listen) and the mailbox
// poller (bounces.mailbox).
type bounceServices struct {
	wg   sync.WaitGroup
	errs chan error
}

// startBounces starts what bounces: configures (the SMTP receiver, the
// webhooks, served by hooksHandler from then on); Wait stops nothing by
// itself: cancel ctx, then Wait.
func (e *env) startBounces(ctx context.Context) (*bounceServices, error) {
	b := &bounceServices{errs: make(chan error, 4)}
	h, err := e.bounceHandler(ctx)
	if err != nil {
		return nil, err
	}
	if err := e.startHooks(h); err != nil {
		return nil, err
	}
	if m := e.cfg.Bounces.Mailbox; m.URL != "" {
		p, err := bounce.NewPoller(h, bounce.MailboxOptions{URL: m.URL, Username: m.Username, Password: m.Password,
			Interval: m.Interval, MoveTo: m.MoveTo, Logger: e.log})
		if err != nil {
			return nil, fmt.Errorf("%s: bounces.mailbox: %w", e.cfg.Path, err)
		}
		if m.InsecureSkipVerify {
			p.SkipVerify()
		}
		e.log.Info("polling the bounce mailbox", "url", m.URL, "every", p.Interval())
		b.wg.Add(1)
		go func() {
			defer b.wg.Done()
			p.Run(ctx)
		}()
	}
	if e.cfg.Bounces.Listen == "" {
		return b, nil
	}
	ln, err := net.Listen("tcp", e.cfg.Bounces.Listen)
	if err != nil {
		return nil, fmt.Errorf("%s: bounces.listen: %w", e.cfg.Path, err)
	}
	r := bounce.NewReceiver(h, bounce.ReceiverOptions{Logger: e.log,
		Refused: func(reason string) { e.metrics.Bounce(string(bounce.Unmatched), "refused-"+reason, bounce.ActionNone) }})
	e.log.Info("receiving bounces by SMTP", "listen", ln.Addr().String(), "address", e.cfg.Bounces.Address)
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		if err := r.Serve(ctx, ln); err != nil {
			b.errs <- fmt.Errorf("bounces.listen %s: %w", ln.Addr(), err)
		}
	}()
	return b, nil
}

// Wait waits for the services to end (after ctx was cancelled) and
// returns their errors.
func (b *bounceServices) Wait() error {
	b.wg.Wait()
	close(b.errs)
	var errs []error
	for err := range b.errs {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// startHooks builds the webhooks that bounces.webhooks configures.
func (e *env) startHooks(h *bounce.Handler) error {
	w := e.cfg.Bounces.Webhooks
	o := web.HookOptions{Handler: h, Parser: h.Parser, Logger: e.log,
		PostmarkUser: w.Postmark.User, PostmarkPassword: w.Postmark.Password,
		MailgunKey: w.Mailgun.SigningKey, SESTopicARN: w.SES.TopicARN}
	if k := w.SendGrid.PublicKey; k != "" {
		key, err := web.ParseSendGridKey(k)
		if err != nil {
			return fmt.Errorf("%s: bounces.webhooks.sendgrid.public_key: %w", e.cfg.Path, err)
		}
		o.SendGridKey = key
	}
	if o.PostmarkUser == "" && o.MailgunKey == "" && o.SendGridKey == nil && o.SESTopicARN == "" {
		return nil
	}
	e.hooks.Store(web.NewHooks(o))
	return nil
}

// hooksHandler serves /hooks/{provider} once startBounces ran (404 before,
// or when no webhook is configured).
func (e *env) hooksHandler() http.Handler {
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if h := e.hooks.Load(); h != nil {
			h.ServeHTTP(rw, r)
			return
		}
		http.NotFound(rw, r)
	})
}

// withHooks mounts the webhooks beside the readers' pages.
func (e *env) withHooks(pages http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/hooks/", e.hooksHandler())
	mux.Handle("/", pages)
	return mux
}
