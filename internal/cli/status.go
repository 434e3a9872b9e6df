package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/digest/digest/internal/ledger"
	"github.com/digest/digest/internal/pipeline"
	"github.com/digest/digest/internal/plural"
	"github.com/digest/digest/internal/source"
	"github.com/digest/digest/internal/store"
)

func (e *env) status(ctx context.Context, args []string) error {
	f := newFlags(e, "status", false)
	pos, err := f.parse(e, args, 0, 1)
	if err != nil {
		return err
	}
	if err := e.load(ctx); err != nil {
		return err
	}
	defer e.close()
	var iss store.Issue
	if len(pos) == 1 {
		iss, err = e.store.GetIssue(ctx, pos[0])
	} else {
		iss, err = e.store.LatestIssue(ctx)
	}
	if errors.Is(err, ledger.ErrNotFound) {
		if len(pos) == 1 {
			return fmt.Errorf("status: no issue %s", pos[0])
		}
		fmt.Fprintln(e.stdout, "No issue has been built yet.")
		return nil
	}
	if err != nil {
		return err
	}
	c, err := e.store.Counts(ctx, iss.ID)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "Issue %s (#%d), %s, built %s: %s\n", iss.ID, iss.Number,
		plural.N(iss.Articles, "story", "stories"), iss.BuiltAt.Format(time.RFC3339), issueState(iss, c))
	fmt.Fprintf(e.stdout, "  sent %d, failed %d, skipped %d, pending %d, sending %d (of %d)\n",
		c.Sent, c.Failed, c.Skipped, c.Pending, c.Sending, c.Total())
	outcome, err := e.store.IssueOutcome(ctx, iss.ID)
	if err != nil {
		return err
	}
	printOutcome(e.stdout, outcome, c.Sent)
	runs, err := e.store.IssueRuns(ctx, iss.ID)
	if err != nil {
		return err
	}
	if err := e.printWaits(ctx, iss, c, runs); err != nil {
		return err
	}
	printRuns(e.stdout, runs, time.Now())
	fails, err := e.store.Failures(ctx, iss.ID, 1000)
	if err != nil {
		return err
	}
	if len(fails) > 0 {
		fmt.Fprintln(e.stdout, "Failed recipients:")
		tw := tabwriter.NewWriter(e.stdout, 2, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "  email\tattempts\treply")
		for _, fl := range fails {
			reply := fl.Reply
			if fl.Code != 0 {
				reply = fmt.Sprintf("%d %s %s", fl.Code, fl.Enhanced, fl.Reply)
			}
			fmt.Fprintf(tw, "  %s\t%d\t%s\n", fl.Email, fl.Attempts, reply)
		}
		tw.Flush()
	}
	if len(pos) == 0 {
		return e.printRecent(ctx)
	}
	return nil
}

// issueState says how far an issue's delivery went.
func issueState(iss store.Issue, c ledger.Counts) string {
	switch {
	case !iss.CompletedAt.IsZero():
		return "complete " + iss.CompletedAt.Format(time.RFC3339)
	case c.Total() > 0:
		return "in progress"
	}
	return "not started"
}

// recentIssues is how many issues `digest status` lists.
const recentIssues = 10

// printRecent lists the latest issues in the order of the times their ids
// name, newest first, when there is more than one: with a schedule that
// sends several a day, the morning's issue is not hidden by the evening's.
func (e *env) printRecent(ctx context.Context) error {
	recent, err := e.store.RecentIssues(ctx, recentIssues)
	if err != nil || len(recent) < 2 {
		return err
	}
	fmt.Fprintln(e.stdout, "Recent issues, newest first:")
	tw := tabwriter.NewWriter(e.stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  issue\tnumber\tstories\tsent\tstate")
	for _, iss := range recent {
		c, err := e.store.Counts(ctx, iss.ID)
		if err != nil {
			return err
		}
		fmt.Fprintf(tw, "  %s\t#%d\t%d\t%d\t%s\n", iss.ID, iss.Number, iss.Articles, c.Sent, issueState(iss, c))
	}
	return tw.Flush()
}

// printRuns lists who is delivering the issue (and who did, in the last
// day): per run its process, what it holds now, what it sent, its rate and
// when it last renewed its lease.
func printRuns(w io.Writer, runs []ledger.RunInfo, now time.Time) {
	if len(runs) == 0 {
		return
	}
	live := 0
	for _, r := range runs {
		if r.Live(now) {
			live++
		}
	}
	fmt.Fprintf(w, "Runs: %d delivering now, %d in the last day\n", live, len(runs))
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  run\tstate\tclaimed\tsent\trate\tstarted\tlast seen")
	for _, r := range runs {
		state := "delivering"
		switch {
		case r.Live(now) && r.Worker:
			state = "delivering (worker)"
		case !r.Live(now) && r.SeenAt.Equal(r.Expires):
			state = "ended"
		case !r.Live(now):
			state = "gone (died or cut off)"
		}
		fmt.Fprintf(tw, "  pid %d on %s\t%s\t%d\t%d\t%.0f msg/s\t%s\t%s ago\n", r.PID, r.Host, state, r.Claimed, r.Sent, r.Rate(now),
			r.StartedAt.Local().Format(time.DateTime), now.Sub(r.SeenAt).Round(time.Second))
	}
	tw.Flush()
}

// sourcesCheck fetches every source and reports what each yields or why it
// fails, with the builder's own dating (pipeline.Check). Exit status 1 when
// a source failed (error or stale); a source that skipped some bad files
// (partial) only warns.
func (e *env) sourcesCheck(ctx context.Context, args []string) error {
	f := newFlags(e, "sources check", true)
	if _, err := f.parse(e, args, 0, 0); err != nil {
		return err
	}
	now := e.now()
	if err := e.load(ctx); err != nil {
		return err
	}
	defer e.close()
	srcs, err := e.sources()
	if err != nil {
		return err
	}
	// Only what Check needs: no templates, so that a broken template does
	// not stop a look at the sources.
	p := &pipeline.Pipeline{Sources: srcs, Store: e.store, Location: e.cfg.Location(), Window: e.cfg.Digest.Window,
		Rules: sourceRules(e.cfg.Sources), Logger: e.log}
	checks, err := p.Check(ctx, now)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(e.stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SOURCE\tSTATUS\tITEMS\tIN WINDOW\tHELD\tOVER LIMIT\tNEWEST\tTIME")
	failed := 0
	for _, c := range checks {
		e.metrics.Source(c.Name, string(c.Status), c.Articles, c.Took, c.Failed(), c.Streak)
		if c.Failed() {
			failed++
		}
		newest := "-"
		if !c.Newest.IsZero() {
			newest = c.Newest.In(e.cfg.Location()).Format("2006-01-02 15:04")
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%s\t%s\n", c.Name, c.Status, c.Articles, c.InWindow, c.Held, c.OverLimit,
			newest, c.Took.Round(time.Millisecond))
	}
	tw.Flush()
	for _, c := range checks {
		reasons := source.Reasons(c.Err)
		if len(reasons) == 0 && len(c.Warnings) == 0 {
			continue
		}
		head := fmt.Sprintf("%s (%s", c.Name, c.Status)
		if c.Failing(failStreak) {
			head += fmt.Sprintf(", failed %d runs in a row", c.Streak)
		}
		fmt.Fprintf(e.stdout, "\n%s):\n", head)
		for _, line := range append(reasons, c.Warnings...) {
			fmt.Fprintf(e.stdout, "  - %s\n", line)
		}
	}
	if failed > 0 {
		return &exitError{code: ExitFailed, err: fmt.Errorf("%d of %d sources failed", failed, len(checks))}
	}
	return nil
}
