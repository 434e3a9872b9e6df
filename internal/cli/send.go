package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/mattn/go-isatty"

	"github.com/digest/digest/internal/deliver"
	"github.com/digest/digest/internal/ledger"
	"github.com/digest/digest/internal/pipeline"
	"github.com/digest/digest/internal/plural"
)

func (e *env) send(ctx context.Context, args []string) error {
	f := newFlags(e, "send", true)
	dryRun := f.Bool("dry-run", false, "render every message but send nothing and leave the ledger untouched")
	to := f.String("to", "", "send one test copy to this address; the ledger is untouched")
	issueID := f.String("issue", "", "deliver this already built issue instead of the current one")
	worker := f.Bool("worker", false, "help the live runs deliver their issue instead of refusing")
	if _, err := f.parse(e, args, 0, 0); err != nil {
		return err
	}
	now := e.now()
	if *to != "" && *dryRun {
		return usagef("send: --to and --dry-run do not go together")
	}
	if err := e.load(ctx); err != nil {
		return err
	}
	defer e.close()
	if *to != "" {
		// After load: newsletter.allow_dotless_domains applies here too.
		addr, err := e.addressRules().NormalizeEmail(*to)
		if err != nil {
			return usagef("send --to: %v", err)
		}
		*to = addr
	}
	p, err := e.pipeline()
	if err != nil {
		return err
	}
	if err := e.wireDelivery(ctx, p); err != nil {
		return err
	}
	if *dryRun {
		// A dry run changes nothing, the subscribers from the file
		// included: it renders for the store's readers as they are.
		p.Delivery.Sync = nil
	}
	p.Delivery.Chosen = func(b *pipeline.Built, continued bool) {
		e.observe(b)
		if continued {
			fmt.Fprintf(e.stdout, "Issue %s still has recipients pending: continuing it before any new issue.\n", b.Issue.ID)
		}
		printBuilt(e.stdout, b)
	}
	res, err := p.Deliver(ctx, pipeline.Request{Now: now, IssueID: *issueID, DryRun: *dryRun, TestTo: *to, Worker: *worker})
	if errors.Is(err, pipeline.ErrNoSuchIssue) {
		if *issueID == "" {
			// The live runs' issue, which a worker helps with, is gone.
			return &exitError{code: ExitFailed, err: fmt.Errorf("send --worker: nothing to help with: %w", err)}
		}
		return usagef("send --issue %s: no such built issue", *issueID)
	}
	if res.DryRun != nil && res.Built != nil && err == nil {
		// Whether a real send would do anything: the ledger says.
		if res.Counts, err = e.store.Counts(ctx, res.Built.Issue.ID); err != nil {
			return err
		}
	}
	return e.printDelivery(res, err)
}

// printDelivery prints what a Deliver call did and turns it into the exit
// status: 1 when the run failed, another process is delivering, or
// recipients are still pending.
func (e *env) printDelivery(res pipeline.Result, runErr error) error {
	w := e.stdout
	if res.Busy != nil {
		printBusy(w, res.Busy, time.Now())
		return &exitError{code: ExitFailed}
	}
	b := res.Built
	if b != nil && b.Empty() {
		return failedSources(b)
	}
	if runErr != nil && b == nil {
		return runErr
	}
	switch {
	case res.TestTo != "":
		if runErr != nil {
			return runErr
		}
		fmt.Fprintf(w, "Test copy of issue %s sent to %s via %s (ledger untouched)\n", b.Issue.ID, res.TestTo, e.where())
		return nil
	case res.DryRun != nil:
		return e.printDryRun(res, runErr)
	case res.Already:
		c := res.Counts
		fmt.Fprintf(w, "Issue %s is already delivered (%d sent, %d failed, %d skipped): nothing to send.\n",
			b.Issue.ID, c.Sent, c.Failed, c.Skipped)
		return nil
	}
	if res.Run.ID == "" { // failed before a run began
		return runErr
	}
	e.recordDelivery(res)
	e.printRun(w, res)
	return deliveryExit(w, res, runErr)
}

// printRun prints what a delivery run did and where the issue stands.
func (e *env) printRun(w io.Writer, res pipeline.Result) {
	b, c, s := res.Built, res.Counts, res.Summary
	if res.Joined > 0 {
		fmt.Fprintf(w, "Working beside %s on issue %s.\n", plural.N(res.Joined, "other run", "other runs"), b.Issue.ID)
	}
	fmt.Fprintf(w, "Delivery via %s: %d sent now; issue total %d sent, %d failed, %d skipped, %d pending of %s (%s",
		e.where(), s.Sent, c.Sent, c.Failed, c.Skipped, c.Unfinished(), plural.N(c.Total(), "recipient", "recipients"),
		res.Took.Round(time.Millisecond))
	if secs := res.Took.Seconds(); s.Sent > 0 && secs > 0 {
		fmt.Fprintf(w, ", %.0f msg/s", float64(s.Sent)/secs)
	}
	fmt.Fprintln(w, ")")
	if e.cfg.Delivery.Transport == "file" && s.Sent > 0 {
		fmt.Fprintf(w, "Outbox: %s (one .eml per recipient)\n", relPath(filepath.Join(e.cfg.Delivery.Outbox, b.Issue.ID))+string(filepath.Separator))
	}
	if c.Total() == 0 {
		fmt.Fprintln(w, "No active subscribers: nobody to send to.")
	}
	if c.Failed > 0 {
		fmt.Fprintf(w, "Failed recipients: see digest status %s\n", b.Issue.ID)
	}
}

// deliveryExit says who waits for a retry and turns a run's end into the
// exit status: 1 when it failed, was interrupted, the relay was down, or
// recipients are still pending.
func deliveryExit(w io.Writer, res pipeline.Result, runErr error) error {
	c, s := res.Counts, res.Summary
	if s.Waiting > 0 {
		fmt.Fprintf(w, "%s a retry after a temporary failure of their own; the first is due at %s (run send again then; the daemon retries by itself).\n",
			plural.N(s.Waiting, "recipient waits for", "recipients wait for"), s.NextRetry.Local().Format(time.DateTime))
	}
	left := plural.N(c.Unfinished(), "recipient is", "recipients are")
	switch {
	case errors.Is(runErr, deliver.ErrRelayDown):
		return &exitError{code: ExitFailed, err: fmt.Errorf("the relay was down: %w; %s still pending (no attempt counted); run send again to continue", runErr, left)}
	case errors.Is(runErr, context.Canceled):
		return &exitError{code: ExitFailed, err: fmt.Errorf("interrupted: %s still pending; run send again to continue", left)}
	case runErr != nil:
		return &exitError{code: ExitFailed, err: runErr}
	case !c.Done():
		return &exitError{code: ExitFailed, err: fmt.Errorf("%s still pending; run send again to continue", left)}
	}
	return nil
}

// recordDelivery counts what a delivery run did in the metrics: the one
// place for send and the daemon.
func (e *env) recordDelivery(res pipeline.Result) {
	if res.Run.ID == "" {
		return
	}
	e.metrics.Delivered(res.Summary.Sent, res.Summary.Failed, res.Counts.Unfinished())
	e.metrics.DeliveryRun(res.Took)
}

// printDryRun says what a dry run rendered, and what a real send would do
// otherwise: sync the subscribers file first, or nothing at all for an
// issue already delivered.
func (e *env) printDryRun(res pipeline.Result, runErr error) error {
	w, d := e.stdout, res.DryRun
	fmt.Fprintf(w, "Dry run: %s rendered (%d KiB in all), %d skipped (topics), %d could not be built; nothing sent, ledger untouched\n",
		plural.N(d.Messages, "message", "messages"), d.Bytes/1024, d.Skipped, d.Failed)
	if e.cfg.SubscribersCSV != "" {
		fmt.Fprintf(w, "The subscribers file %s was not synced (a dry run changes nothing): a real send syncs it first.\n", relPath(e.cfg.SubscribersCSV))
	}
	if c := res.Counts; c.Delivered() {
		fmt.Fprintf(w, "Issue %s is already delivered (%d sent, %d failed, %d skipped): a real send would send nothing.\n",
			res.Built.Issue.ID, c.Sent, c.Failed, c.Skipped)
	}
	if runErr != nil {
		return &exitError{code: ExitFailed, err: runErr}
	}
	return nil
}

// printBusy says who is delivering, since when and how far.
func printBusy(w io.Writer, b *ledger.BusyError, now time.Time) {
	r := b.Runs[0]
	c := b.Counts
	fmt.Fprintf(w, "Issue %s is being delivered by another process: pid %d on %s, since %s (%s ago).\n",
		r.IssueID, r.PID, r.Host, r.StartedAt.Local().Format(time.DateTime), now.Sub(r.StartedAt).Round(time.Second))
	fmt.Fprintf(w, "  progress: %d sent, %d failed, %d skipped, %d pending of %d; that run sent %d\n",
		c.Sent, c.Failed, c.Skipped, c.Unfinished(), c.Total(), r.Sent)
	if len(b.Runs) > 1 {
		fmt.Fprintf(w, "  with %s\n", plural.N(len(b.Runs)-1, "more run", "more runs"))
	}
	fmt.Fprintf(w, "Nothing sent. Use send --worker to help it, or wait. That process is alive as far as can be told "+
		"(a dead one on its host, or on Postgres, is taken over at once); if it is frozen or cut off, its lease ends at %s and a new send takes over then.\n",
		r.Expires.Local().Format(time.TimeOnly))
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

// engineOptions are the delivery engine's settings from the config.
func (e *env) engineOptions(clock func() time.Time) deliver.Options {
	o := deliver.Options{
		Connections: e.cfg.SMTP.Connections, Rate: e.cfg.SMTP.Rate, MaxAttempts: e.cfg.Delivery.MaxAttempts,
		PerHour: e.cfg.SMTP.PerHour, PerDay: e.cfg.SMTP.PerDay, SentSince: e.store.SentSince,
		Logger: e.log, Progress: deliver.NewProgressPrinter(e.stderr, isTerminal(e.stderr)), Now: clock,
		RetryFor: e.cfg.Delivery.RetryFor, OutageWait: e.cfg.Delivery.OutageWait, NthSentSince: e.store.NthSentSince,
		Relay: e.newRelayState(),
	}
	if o.OutageWait == 0 {
		o.OutageWait = time.Nanosecond // outage_wait: 0 stops at the first relay failure
	}
	if e.cfg.Delivery.Transport == "file" {
		o.Rate = 0
	}
	return o
}
