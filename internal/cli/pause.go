package cli

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/digest/digest/internal/ledger"
	"github.com/digest/digest/internal/pipeline"
	"github.com/digest/digest/internal/store"
)

// pauseAfter is how many messages of an issue must be done before its
// bounce rate may pause it: a few early bounces say little.
const pauseAfter = 500

// errBounceRate pauses a delivery whose bounce rate passed
// delivery.pause_on_bounce_rate.
var errBounceRate = errors.New("delivery paused: bounce rate over delivery.pause_on_bounce_rate")

// guardedRuns pauses a delivery that burns the sender's reputation: before
// each claim it checks the issue's share of failed and hard-bounced
// messages, and once it passes the limit it refuses to claim more. The
// run then stops as on any claim error once the rows it holds (a batch
// or two) are done: nothing in flight is lost, the rest stays pending, and `send --issue ID` continues once the operator
// raised the limit (or set it to 0).
type guardedRuns struct {
	pipeline.Runs
	st    *store.Store
	limit float64
}

func (g guardedRuns) BeginRun(ctx context.Context, info ledger.RunInfo, ttl time.Duration) (pipeline.Run, error) {
	r, err := g.Runs.BeginRun(ctx, info, ttl)
	if err != nil || g.limit <= 0 {
		return r, err
	}
	return &guardedRun{Run: r, g: g}, nil
}

type guardedRun struct {
	pipeline.Run
	g guardedRuns
}

func (r *guardedRun) Claim(ctx context.Context, issueID string, limit int) ([]ledger.Recipient, error) {
	if err := r.g.check(ctx, issueID); err != nil {
		return nil, err
	}
	return r.Run.Claim(ctx, issueID, limit)
}

// check returns errBounceRate, with the figures and what to do, when the
// issue's bounce rate is over the limit.
func (g guardedRuns) check(ctx context.Context, issueID string) error {
	c, err := g.st.Counts(ctx, issueID)
	if err != nil {
		return err
	}
	done := c.Sent + c.Failed
	if done < pauseAfter || c.Pending == 0 {
		return nil // too early to tell, or nothing left to pause
	}
	o, err := g.st.IssueOutcome(ctx, issueID)
	if err != nil {
		return err
	}
	bad := c.Failed + o.Hard
	if float64(bad)/float64(done) <= g.limit {
		return nil
	}
	return fmt.Errorf("%w: %d of the %d messages done failed or bounced (%s, limit %.1f%% after %d); %d readers are still to be sent. "+
		"Look at `digest status %s` and `digest bounces list`, clean the list, then continue with `digest send --issue %s` "+
		"after raising delivery.pause_on_bounce_rate (0 turns the check off)",
		errBounceRate, bad, done, rate(bad, done), 100*g.limit, pauseAfter, c.Pending+c.Sending, issueID, issueID)
}
