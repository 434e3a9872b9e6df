package cli

import (
	"context"
	"fmt"
	"io"
	"sync"

	"github.com/digest/digest/internal/bounce"
	"github.com/digest/digest/internal/ledger"
)

// The rates past which an issue is burning the sender's reputation: Gmail
// asks for complaints under 0.1% (and rejects bulk mail past 0.3%); more
// than 5% of hard bounces is a stale list.
const (
	warnComplaintRate = 0.001
	warnHardRate      = 0.05
)

// printOutcome writes what became of an issue's readers after it was sent.
func printOutcome(w io.Writer, o ledger.IssueOutcome, sent int) {
	if sent == 0 {
		return
	}
	back := o.Hard + o.Soft
	fmt.Fprintf(w, "  after sending: delivered %d (%s), bounced %d (hard %d %s, soft %d), complained %d (%s), unsubscribed %d (%s)\n",
		max(sent-back, 0), rate(sent-back, sent), back, o.Hard, "("+rate(o.Hard, sent)+")", o.Soft,
		o.Complaints, rate(o.Complaints, sent), o.Unsubscribed, rate(o.Unsubscribed, sent))
}

func rate(n, of int) string {
	if of == 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f%%", 100*float64(max(n, 0))/float64(of))
}

// rateWarner logs, once per issue and process, that an issue's complaint
// or hard bounce rate passed its limit.
type rateWarner struct {
	e      *env
	mu     sync.Mutex
	warned map[string]bool
}

// check looks at the issue of an event that may have moved its rates.
func (r *rateWarner) check(ctx context.Context, ev bounce.Event) {
	if ev.Reader.IssueID == "" || (ev.Kind != bounce.Complaint && ev.Kind != bounce.Hard) || ev.Action == bounce.ActionDuplicate {
		return
	}
	o, err := r.e.store.IssueOutcome(ctx, ev.Reader.IssueID)
	if err != nil {
		r.e.log.Warn("issue outcome", "issue", ev.Reader.IssueID, "err", err)
		return
	}
	c, err := r.e.store.Counts(ctx, ev.Reader.IssueID)
	if err != nil || c.Sent == 0 {
		return
	}
	r.warn(ev.Reader.IssueID, "complaint", o.Complaints, c.Sent, warnComplaintRate,
		"readers mark this issue as spam: receivers throttle or reject bulk senders past 0.3%")
	r.warn(ev.Reader.IssueID, "hard bounce", o.Hard, c.Sent, warnHardRate,
		"many addresses do not exist: the list is stale (import only confirmed addresses)")
}

func (r *rateWarner) warn(issue, what string, n, sent int, limit float64, why string) {
	if float64(n)/float64(sent) <= limit {
		return
	}
	r.mu.Lock()
	key := issue + " " + what
	done := r.warned[key]
	if r.warned == nil {
		r.warned = map[string]bool{}
	}
	r.warned[key] = true
	r.mu.Unlock()
	if !done {
		r.e.log.Warn(what+" rate over its limit", "issue", issue, "count", n, "sent", sent,
			"rate", rate(n, sent), "limit", fmt.Sprintf("%.1f%%", 100*limit), "why", why)
	}
}
