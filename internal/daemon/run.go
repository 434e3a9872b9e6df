package daemon

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/digest/digest/internal/ledger"
	"github.com/digest/digest/internal/pipeline"
	"github.com/digest/digest/internal/schedule"
)

// runRecord is the last run this daemon finished, for /healthz.
type runRecord struct {
	Scheduled time.Time // zero for a resume
	Kind      string
	Outcome   string
	At        time.Time
	Detail    string
}

// tick is one scheduled run: the same use case as `digest send`. The
// scheduled time is the run's time: the issue is the one for it.
func (d *Daemon) tick(ctx context.Context, r schedule.Tick) error {
	_, err := d.deliver(ctx, r.Kind.String(), r.Scheduled, d.request(r))
	return err
}

// request is the use case's request for a scheduled run, the issue named
// by its scheduled time.
func (d *Daemon) request(r schedule.Tick) pipeline.Request {
	// The scheduled time names the issue; now is when its stories are
	// gathered.
	return pipeline.Request{Now: d.clock.Now(), Scheduled: r.Scheduled}
}

// resume continues an issue whose delivery is unfinished (interrupted by a
// crash, a stop or a take-over; left pending by a relay outage or a quota),
// without building a new one. It returns when to look again: ResumeEvery,
// or, while another process's run holds the issue, livenessPoll (its death
// is then seen at once) or that run's lease's end, whichever comes first.
func (d *Daemon) resume(ctx context.Context) time.Duration {
	busy, _ := d.deliver(ctx, "resume", time.Time{}, pipeline.Request{Now: d.clock.Now(), Resume: true})
	if busy != nil {
		until := busy.Runs[0].Expires.Sub(d.clock.Now())
		return min(max(until+time.Second, time.Second), livenessPoll(d.current().Lease))
	}
	return ResumeEvery
}

// resumeLoop resumes an unfinished delivery at once and then whenever
// resume says, until ctx ends.
func (d *Daemon) resumeLoop(ctx context.Context) {
	for ctx.Err() == nil {
		d.sleep(ctx, d.resume(ctx))
	}
}

// deliver calls the use case once and logs one line about it. The error is
// set when the run failed, another process was delivering (busy tells
// who), every source failed or recipients are left pending, so that the
// schedule records the run as failed. For a resume, another process
// delivering is not a failure: busy tells when to look again.
func (d *Daemon) deliver(ctx context.Context, kind string, scheduled time.Time, req pipeline.Request) (*ledger.BusyError, error) {
	d.deliverMu.Lock()
	defer d.deliverMu.Unlock()
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	start := d.clock.Now()
	res, err := d.current().Deliver(ctx, req)
	if d.o.Observe != nil {
		d.o.Observe(res)
	}
	outcome := res.Outcome()
	switch {
	case req.Resume && err == nil && outcome == pipeline.OutcomeNone:
		return nil, nil // nothing to resume
	case req.Resume && err == nil && outcome == pipeline.OutcomeBusy:
		r := res.Busy.Runs[0]
		d.log.Info("an unfinished issue is being delivered by another process; waiting for it",
			"issue", r.IssueID, "delivering", fmt.Sprintf("%s pid %d", r.Host, r.PID), "lease_expires", r.Expires)
		return res.Busy, nil
	}
	err = errors.Join(err, res.Err())
	word := string(outcome)
	switch {
	case err != nil && ctx.Err() != nil:
		word = "interrupted"
	case err != nil && outcome == pipeline.OutcomeDelivered, err != nil && outcome == pipeline.OutcomeNone:
		word = "error"
	}
	attrs := append(runAttrs(kind, scheduled, res), "outcome", word, "duration", d.clock.Now().Sub(start).Round(time.Millisecond))
	// In the schedule's words (ok, failed, interrupted), the use case's
	// outcome as the detail.
	rec := &runRecord{Scheduled: scheduled, Kind: kind, Outcome: string(schedule.OutcomeOK), At: d.clock.Now(), Detail: word}
	if err != nil {
		rec.Outcome = string(schedule.OutcomeFailed)
		if word == "interrupted" {
			rec.Outcome = string(schedule.OutcomeInterrupted)
		}
		rec.Detail = word + ": " + errLine(err)
		d.log.Warn("run finished", append(attrs, "err", errLine(err))...)
	} else {
		d.log.Info("run finished", attrs...)
		if kind != "resume" && d.o.Metrics != nil {
			d.o.Metrics.ScheduledRunSucceeded(d.clock.Now())
		}
	}
	d.mu.Lock()
	d.last = rec
	d.mu.Unlock()
	return res.Busy, err
}

// runAttrs are the log attributes of a Deliver result.
func runAttrs(kind string, scheduled time.Time, res pipeline.Result) []any {
	attrs := []any{"kind", kind}
	if !scheduled.IsZero() {
		attrs = append(attrs, "scheduled", scheduled)
	}
	if b := res.Built; b != nil {
		attrs = append(attrs, "issue", b.Issue.ID, "articles", b.Issue.Count(), "built", !b.Loaded && !b.Empty())
		for _, s := range b.Sources {
			if s.Failed() {
				attrs = append(attrs, "source_failed", s.Name)
			}
		}
	}
	if r := res.Busy; r != nil {
		attrs = append(attrs, "issue", r.Runs[0].IssueID, "delivering", fmt.Sprintf("%s pid %d", r.Runs[0].Host, r.Runs[0].PID))
	}
	if res.Run.ID != "" {
		c, s := res.Counts, res.Summary
		attrs = append(attrs, "sent", s.Sent, "failed", s.Failed, "total_sent", c.Sent, "total_failed", c.Failed,
			"skipped", c.Skipped, "pending", c.Unfinished())
	}
	return attrs
}

// errLine is an error on one line, for a log attribute or a health answer.
func errLine(err error) string {
	var parts []string
	for _, line := range strings.Split(err.Error(), "\n") {
		if line = strings.Join(strings.Fields(line), " "); line != "" {
			parts = append(parts, line)
		}
	}
	s := strings.Join(parts, "; ")
	// A stop is not a failure of the run: say it in the user's words.
	return strings.ReplaceAll(s, context.Canceled.Error(), "interrupted")
}
