package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/mattn/go-isatty"

	"github.com/digest/digest/internal/deliver"
	"github.com/digest/digest/internal/ledger"
	"github.com/digest/digest/internal/mail"
	"github.com/digest/digest/internal/pipeline"
	"github.com/digest/digest/internal/store"
	"github.com/digest/digest/internal/subscriber"
)

func (e *env) send(ctx context.Context, args []string) error {
	f := newFlags(e, "send", true)
	dryRun := f.Bool("dry-run", false, "render every message but send nothing and leave the ledger untouched")
	to := f.String("to", "", "send one test copy to this address; the ledger is untouched")
	issueID := f.String("issue", "", "deliver this already built issue instead of the current one")
	if _, err := f.parse(e, args, 0, 0); err != nil {
		return err
	}
	now, err := f.clock()
	if err != nil {
		return err
	}
	if *to != "" {
		addr, err := subscriber.NormalizeEmail(*to)
		if err != nil {
			return usagef("send --to: %v", err)
		}
		*to = addr
	}
	if err := e.load(ctx); err != nil {
		return err
	}
	defer e.close()

	if e.cfg.SubscribersCSV != "" && *to == "" {
		res, skipped, err := e.importCSV(ctx, e.cfg.SubscribersCSV)
		if err != nil {
			return fmt.Errorf("subscribers_csv: %w", err)
		}
		e.log.Info("subscribers synced", "file", e.cfg.SubscribersCSV, "added", res.Added,
			"updated", res.Updated, "unchanged", res.Unchanged, "skipped", skipped)
	}

	p, err := e.pipeline()
	if err != nil {
		return err
	}
	b, err := e.currentIssue(ctx, p, now, *issueID)
	if err != nil {
		return err
	}
	e.observe(b)
	printBuilt(e.stdout, b)
	if b.Empty() {
		return failedSources(b)
	}

	clock := time.Now
	if f.now != "" {
		clock = func() time.Time { return now }
	}
	comp, err := e.composer(ctx, clock)
	if err != nil {
		return err
	}
	switch {
	case *dryRun:
		return e.dryRun(ctx, b, comp)
	case *to != "":
		return e.sendTest(ctx, b, comp, *to)
	}

	t, where, err := e.transport()
	if err != nil {
		return err
	}
	sender := &pipeline.Sender{
		Store: e.store, Composer: comp, Transport: t,
		Options: deliver.Options{
			Connections: e.cfg.SMTP.Connections, Rate: e.cfg.SMTP.Rate, MaxAttempts: e.cfg.Delivery.MaxAttempts,
			PerHour: e.cfg.SMTP.PerHour, PerDay: e.cfg.SMTP.PerDay, SentSince: e.store.SentSince,
			Logger: e.log, Progress: deliver.NewProgressPrinter(e.stderr, isTerminal(e.stderr)),
		},
	}
	if e.cfg.Delivery.Transport == "file" {
		sender.Options.Rate = 0
	}
	if c, err := e.store.Counts(ctx, b.Issue.ID); err != nil {
		return err
	} else if c.Total() > 0 && c.Pending+c.Sending == 0 {
		fmt.Fprintf(e.stdout, "Issue %s is already delivered (%d sent, %d failed): nothing to send.\n", b.Issue.ID, c.Sent, c.Failed)
		return nil
	}
	start := time.Now()
	d, err := sender.Send(ctx, b)
	e.metrics.Delivered(d.Sent, d.Failed, d.Pending)
	c := d.Counts
	fmt.Fprintf(e.stdout, "Delivery via %s: %d sent now; issue total %d sent, %d failed, %d pending of %s (%s",
		where, d.Sent, c.Sent, c.Failed, c.Pending+c.Sending, plural(c.Total(), "recipient", "recipients"),
		time.Since(start).Round(time.Millisecond))
	if secs := time.Since(start).Seconds(); d.Sent > 0 && secs > 0 {
		fmt.Fprintf(e.stdout, ", %.0f msg/s", float64(d.Sent)/secs)
	}
	fmt.Fprintln(e.stdout, ")")
	if e.cfg.Delivery.Transport == "file" && d.Sent > 0 {
		fmt.Fprintf(e.stdout, "Outbox: %s (one .eml per recipient)\n", relPath(filepath.Join(e.cfg.Delivery.Outbox, b.Issue.ID))+string(filepath.Separator))
	}
	if c.Total() == 0 {
		fmt.Fprintln(e.stdout, "No active subscribers: nobody to send to.")
	}
	if c.Failed > 0 {
		fmt.Fprintf(e.stdout, "Failed recipients: see digest status %s\n", b.Issue.ID)
	}
	if err != nil {
		return &exitError{code: ExitFailed, err: err}
	}
	if !d.Done() {
		return &exitError{code: ExitFailed, err: fmt.Errorf("%d recipients are still pending; run send again to continue", c.Pending+c.Sending)}
	}
	return nil
}

// currentIssue picks the issue to deliver: the one named, else an earlier
// issue whose delivery is unfinished, else the issue for now (loaded from the
// archive when it was built already, built otherwise).
func (e *env) currentIssue(ctx context.Context, p *pipeline.Pipeline, now time.Time, id string) (*pipeline.Built, error) {
	if id != "" {
		b, err := p.Load(ctx, id)
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, store.ErrNotFound) {
			return nil, usagef("send --issue %s: no such built issue", id)
		}
		return b, err
	}
	today := p.IssueID(now)
	if last, err := e.store.LatestIssue(ctx); err == nil && last.ID != today && last.CompletedAt.IsZero() {
		c, err := e.store.Counts(ctx, last.ID)
		if err != nil {
			return nil, err
		}
		if c.Pending+c.Sending > 0 {
			fmt.Fprintf(e.stdout, "Issue %s has %d recipients still pending: continuing it before any new issue.\n",
				last.ID, c.Pending+c.Sending)
			return p.Load(ctx, last.ID)
		}
	} else if err != nil && !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	if _, err := e.store.GetIssue(ctx, today); err == nil {
		b, err := p.Load(ctx, today)
		if err == nil {
			return b, nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		// The record exists but the archive is gone: build it again.
	} else if !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	return p.Build(ctx, now)
}

// isTerminal reports whether w (possibly wrapped by Run) is a terminal, for
// the progress bar.
func isTerminal(w io.Writer) bool {
	if l, ok := w.(*lockedWriter); ok {
		w = l.w
	}
	f, ok := w.(*os.File)
	return ok && isatty.IsTerminal(f.Fd())
}

// dryRun renders every active subscriber's message and reports the count
// and size; nothing is sent and the ledger is untouched.
func (e *env) dryRun(ctx context.Context, b *pipeline.Built, comp *mail.Composer) error {
	var listErr error
	recipients := func(yield func(ledger.Recipient) bool) {
		stop := errors.New("stop")
		err := e.store.List(ctx, func(s subscriber.Subscriber) error {
			if s.Status != subscriber.StatusActive {
				return nil
			}
			if !yield(ledger.Recipient{IssueID: b.Issue.ID, SubscriberID: s.ID, Email: s.Email, Name: s.Name}) {
				return stop
			}
			return nil
		})
		if err != nil && !errors.Is(err, stop) {
			listErr = err
		}
	}
	start := time.Now()
	res, err := deliver.DryRun(ctx, b.Rendered, comp, recipients)
	if listErr != nil {
		return listErr
	}
	fmt.Fprintf(e.stdout, "Dry run: %s rendered (%d KiB in all, %s), %d could not be built; nothing sent, ledger untouched\n",
		plural(res.Messages, "message", "messages"), res.Bytes/1024, time.Since(start).Round(time.Millisecond), res.Failed)
	if err != nil {
		return &exitError{code: ExitFailed, err: err}
	}
	return nil
}

// sendTest sends one test copy to addr through the configured transport.
func (e *env) sendTest(ctx context.Context, b *pipeline.Built, comp *mail.Composer, addr string) error {
	prep, err := comp.Prepare(b.Rendered)
	if err != nil {
		return err
	}
	m, err := prep.BuildTest(nil, addr)
	if err != nil {
		return err
	}
	t, where, err := e.transport()
	if err != nil {
		return err
	}
	if err := deliver.SendMessage(ctx, t, &m, ledger.Recipient{IssueID: b.Issue.ID, Email: addr}); err != nil {
		return fmt.Errorf("test copy to %s: %w", addr, err)
	}
	fmt.Fprintf(e.stdout, "Test copy of issue %s sent to %s via %s (ledger untouched)\n", b.Issue.ID, addr, where)
	return nil
}
