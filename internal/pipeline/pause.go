package pipeline

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/digest/digest/internal/ledger"
)

// PauseAfter is how many messages of an issue must be done before its
// bounce rate may pause it (Delivery.PauseOnBounceRate): a few early
// bounces say little.
const PauseAfter = 500

// ErrBounceRate pauses a delivery whose bounce rate passed
// delivery.pause_on_bounce_rate.
var ErrBounceRate = errors.New("delivery paused: bounce rate over delivery.pause_on_bounce_rate")

// The bounce rate is read from the store (counting the issue's rows, which
// takes a while on a list of millions) before the first claim, then again
// once bounceCheckEvery has passed or this run has recorded
// bounceCheckFailures failures since the last look, not before each claim.
const (
	bounceCheckEvery    = 2 * time.Second
	bounceCheckFailures = 50
)

// watchedRun is a run as Deliver hands it to the engine: before it claims
// it checks the issue's bounce rate (see checkBounceRate and the constants
// above), and it tells Delivery.Recorded of every outcome once it is
// recorded.
type watchedRun struct {
	Run
	p     *Pipeline
	guard *bounceGuard // nil when the delivery does not pause on bounces
}

// bounceGuard is when a run last looked at the bounce rate, and what it
// has recorded since. It is shared by the run's workers.
type bounceGuard struct {
	mu      sync.Mutex
	checked time.Time // zero: never
	failed  int       // failures recorded since then
	paused  error     // once the rate passed the limit: why
}

// watch wraps run when the delivery pauses on bounces or observes outcomes.
func (p *Pipeline) watch(run Run) Run {
	if p.Delivery.PauseOnBounceRate <= 0 && p.Delivery.Recorded == nil {
		return run
	}
	w := watchedRun{Run: run, p: p}
	if p.Delivery.PauseOnBounceRate > 0 {
		w.guard = &bounceGuard{}
	}
	return w
}

func (r watchedRun) Claim(ctx context.Context, issueID string, limit int) ([]ledger.Recipient, error) {
	if err := r.checkDue(ctx, issueID); err != nil {
		return nil, err
	}
	return r.Run.Claim(ctx, issueID, limit)
}

// checkDue checks the bounce rate when a look is due, and returns the pause
// once the rate passed the limit.
func (r watchedRun) checkDue(ctx context.Context, issueID string) error {
	g := r.guard
	if g == nil {
		return nil
	}
	now := r.p.leaseClock()()
	g.mu.Lock()
	due := g.paused == nil && (g.checked.IsZero() || now.Sub(g.checked) >= bounceCheckEvery || g.failed >= bounceCheckFailures)
	paused := g.paused
	g.mu.Unlock()
	if !due {
		return paused
	}
	err := r.p.checkBounceRate(ctx, issueID)
	g.mu.Lock()
	defer g.mu.Unlock()
	if err == nil || errors.Is(err, ErrBounceRate) {
		g.checked, g.failed = now, 0
	}
	if errors.Is(err, ErrBounceRate) {
		g.paused = err
	}
	return err
}

func (r watchedRun) Record(ctx context.Context, issueID string, outs []ledger.Outcome) error {
	if err := r.Run.Record(ctx, issueID, outs); err != nil {
		return err
	}
	if g := r.guard; g != nil {
		failed := 0
		for _, o := range outs {
			if o.Status == ledger.Failed {
				failed++
			}
		}
		g.mu.Lock()
		g.failed += failed
		g.mu.Unlock()
	}
	if seen := r.p.Delivery.Recorded; seen != nil {
		for _, o := range outs {
			seen(o)
		}
	}
	return nil
}

// checkBounceRate pauses a delivery that burns the sender's reputation:
// once PauseAfter messages of the issue are done and the share of them
// that failed or hard-bounced passes Delivery.PauseOnBounceRate, it returns
// ErrBounceRate, with the figures and what to do, and the engine claims no
// more. The run then stops as on any claim error once the rows it holds (a
// batch or two) are done: nothing in flight is lost, the rest stays
// pending, and `send --issue ID` continues once the operator raised the
// limit (or set it to 0).
func (p *Pipeline) checkBounceRate(ctx context.Context, issueID string) error {
	limit := p.Delivery.PauseOnBounceRate
	if limit <= 0 {
		return nil
	}
	c, err := p.Store.Counts(ctx, issueID)
	if err != nil {
		return err
	}
	done := c.Sent + c.Failed
	if done < PauseAfter || c.Pending == 0 {
		return nil // too early to tell, or nothing left to pause
	}
	o, err := p.Store.IssueOutcome(ctx, issueID)
	if err != nil {
		return err
	}
	bad := c.Failed + o.Hard
	if float64(bad)/float64(done) <= limit {
		return nil
	}
	return fmt.Errorf("%w: %d of the %d messages done failed or bounced (%.1f%%, limit %.1f%% after %d); %d readers are still to be sent. "+
		"Look at `digest status %s` and `digest bounces list`, clean the list, then continue with `digest send --issue %s` "+
		"after raising delivery.pause_on_bounce_rate (0 turns the check off)",
		ErrBounceRate, bad, done, 100*float64(bad)/float64(done), 100*limit, PauseAfter, c.Pending+c.Sending, issueID, issueID)
}
