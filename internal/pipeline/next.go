package pipeline

import (
	"context"
	"time"

	"github.com/digest/digest/internal/ledger"
)

// Out is an issue whose delivery has started: it went out (Counts.Done()),
// or is going out.
type Out struct {
	ID     string
	Number int
	Counts ledger.Counts
	// Completed is when its delivery finished; zero while it goes on.
	Completed time.Time
}

// maxSkips bounds the scheduled times PreviewNext passes over looking for
// one that makes a new issue.
const maxSkips = 1000

// PreviewNext previews the issue that will really go out next: the issue
// for now, as Preview does, while its delivery has not started; once it
// has, the issue at the next scheduled time (next, the schedule's own
// function) that makes a different issue, carrying only stories not sent
// yet, with Built.Out saying which issue went out. The stories are seen at
// now, the run's clock, and selected for that later time. A nil next
// previews the issue for now.
func (p *Pipeline) PreviewNext(ctx context.Context, now time.Time, next func(time.Time) time.Time) (*Built, error) {
	id := p.IssueID(now)
	c, err := p.Store.Counts(ctx, id)
	if err != nil {
		return nil, err
	}
	if c.Total() == 0 || next == nil {
		return p.build(ctx, id, now, false)
	}
	rec, err := p.Store.GetIssue(ctx, id)
	if err != nil {
		return nil, err
	}
	at := next(now)
	for i := 0; i < maxSkips && p.IssueID(at) == id; i++ {
		at = next(at)
	}
	b, err := p.buildSeen(ctx, p.IssueID(at), at, now, false)
	if err != nil {
		return nil, err
	}
	b.Out = &Out{ID: id, Number: rec.Number, Counts: c, Completed: rec.CompletedAt}
	return b, nil
}
