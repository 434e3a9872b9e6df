package bounce

import (
	"context"
	"fmt"
	"log/slog"
	"sync"

	"github.com/digest/digest/internal/ledger"
)

// The rates past which an issue is burning the sender's reputation: Gmail
// asks for complaints under 0.1% (and rejects bulk mail past 0.3%); more
// than 5% of hard bounces is a stale list.
const (
	WarnComplaintRate = 0.001
	WarnHardRate      = 0.05
)

// IssueRates is what a RateWarner reads of an issue (the store has it).
type IssueRates interface {
	IssueOutcome(ctx context.Context, issueID string) (ledger.IssueOutcome, error)
	Counts(ctx context.Context, issueID string) (ledger.Counts, error)
}

// RateWarner logs, once per issue and process, that an issue's complaint
// or hard bounce rate passed its limit (WarnComplaintRate, WarnHardRate).
// Its zero value needs Store and Logger; it is safe for concurrent use.
type RateWarner struct {
	Store  IssueRates
	Logger *slog.Logger

	mu     sync.Mutex
	warned map[string]bool
}

// Check looks at the issue of a recorded event that may have moved its
// rates.
func (r *RateWarner) Check(ctx context.Context, ev Event) {
	if ev.Reader.IssueID == "" || (ev.Kind != Complaint && ev.Kind != Hard) || ev.Action == ActionDuplicate {
		return
	}
	o, err := r.Store.IssueOutcome(ctx, ev.Reader.IssueID)
	if err != nil {
		r.Logger.Warn("issue outcome", "issue", ev.Reader.IssueID, "err", err)
		return
	}
	c, err := r.Store.Counts(ctx, ev.Reader.IssueID)
	if err != nil || c.Sent == 0 {
		return
	}
	r.warn(ev.Reader.IssueID, "complaint", o.Complaints, c.Sent, WarnComplaintRate,
		"readers mark this issue as spam: receivers throttle or reject bulk senders past 0.3%")
	r.warn(ev.Reader.IssueID, "hard bounce", o.Hard, c.Sent, WarnHardRate,
		"many addresses do not exist: the list is stale (import only confirmed addresses)")
}

func (r *RateWarner) warn(issue, what string, n, sent int, limit float64, why string) {
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
		r.Logger.Warn(what+" rate over its limit", "issue", issue, "count", n, "sent", sent,
			"rate", fmt.Sprintf("%.1f%%", 100*float64(n)/float64(sent)), "limit", fmt.Sprintf("%.1f%%", 100*limit), "why", why)
	}
}
