package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"time"

	"github.com/digest/digest/internal/deliver"
	"github.com/digest/digest/internal/ledger"
	"github.com/digest/digest/internal/plural"
	"github.com/digest/digest/internal/subscriber"
)

// Request is one call of the delivery use case.
type Request struct {
	// Now is the issue's clock: which issue is built, its dates, and the
	// store's stamps (the caller's --now, or the schedule's time).
	Now time.Time
	// Scheduled is the scheduled time the run is for (the daemon's tick):
	// it names the issue (Pipeline.IssueID). Zero: Now names it, so a
	// manual send between scheduled times makes an issue of its own time.
	Scheduled time.Time
	// IssueID delivers this built issue; empty means the current one (an
	// earlier unfinished issue first, else the issue for Now).
	IssueID string
	// DryRun builds every message and sends none; the ledger is untouched.
	DryRun bool
	// TestTo sends one test copy to this address; the ledger is untouched.
	TestTo string
	// Worker joins the live runs of the issue being delivered instead of
	// refusing: it claims its own batches under the same leases.
	Worker bool
	// Resume only continues the latest issue when its delivery is
	// unfinished (a crash, a stop, a relay outage or a quota left
	// recipients pending); it never builds one. With nothing to resume,
	// Result.Built is nil and the error nil.
	Resume bool

	// synced: the subscribers file was synced already by this call (a
	// stale issue's rebuild does not sync it again).
	synced bool
}

// named is the time that names the request's issue: Scheduled, else Now.
func (r Request) named() time.Time {
	if !r.Scheduled.IsZero() {
		return r.Scheduled
	}
	return r.Now
}

// Result is what a Deliver call found and did; cli prints it.
type Result struct {
	// Built is the issue (nil when none could be chosen). Built.Empty()
	// means there was nothing new to build.
	Built *Built
	// Continued: an earlier issue still had recipients pending and was
	// delivered instead of a new one.
	Continued bool
	// Already: the issue was delivered before this call; nothing was sent.
	Already bool
	// Busy: other live runs deliver and this call did not join (no Worker);
	// nothing was sent.
	Busy *ledger.BusyError
	// DryRun is set for a dry run.
	DryRun *deliver.DryRunResult
	// TestTo is the address a test copy went to.
	TestTo string
	// Run is this call's delivery run (zero when none was registered).
	Run ledger.RunInfo
	// Joined counts the other live runs this one worked beside.
	Joined int
	// Enqueued counts ledger rows created by this call.
	Enqueued int
	// Summary is what this run's engine did.
	Summary deliver.Summary
	// Counts is the issue's whole ledger at the end of the call.
	Counts ledger.Counts
	// Took is the time the delivery itself took.
	Took time.Duration
}

// Deliver is the "deliver an issue" use case, the same for `digest send`,
// the daemon's tick and the preview's test send: it picks the issue (an
// earlier unfinished one first; the one for req.Now otherwise, built when it
// is not yet), knows when it is already delivered, syncs the subscribers
// file, registers a run under a lease (refusing, or joining with
// req.Worker, when another live process delivers), enqueues every active
// subscriber, runs the engine and marks the issue complete.
//
// The error is nil when the run did its part, even if recipients are left
// for a later run (Result.Counts tells). Busy and already-delivered are
// results, not errors.
func (p *Pipeline) Deliver(ctx context.Context, req Request) (Result, error) {
	if req.TestTo != "" || req.DryRun {
		return p.offLedger(ctx, req)
	}
	d := &p.Delivery
	if d.Runs == nil || d.Encode == nil || d.Transport == nil {
		return Result{}, errors.New("deliver: the pipeline has no delivery wiring (Runs, Encode, Transport)")
	}
	res, err := p.deliver(ctx, &req)
	var stale *StaleError
	if errors.As(err, &stale) && req.IssueID == "" {
		// Built before another issue delivered some of its stories, and
		// not started: it is built again from what is new.
		if _, err := p.dropUnsent(ctx, stale.Issue); err != nil {
			return res, err
		}
		p.log().Warn("an issue built but never sent carried stories another issue delivered since: it is built again",
			"issue", stale.Issue, "by", stale.SentIn, "stories", stale.Stories)
		return p.deliver(ctx, &req)
	}
	return res, err
}

// StaleError is the error of a delivery that was about to start an issue
// built before another issue delivered some of its stories: sending it
// would give readers those stories twice. Deliver builds such an issue
// again when the request named no issue; with Request.IssueID it returns
// this error.
type StaleError struct {
	Issue   string // the stale issue
	SentIn  string // an issue that delivered some of its stories
	Stories int    // how many of its stories were delivered elsewhere
}

func (e *StaleError) Error() string {
	return fmt.Sprintf("issue %s was built before issue %s delivered %s of it; it was not sent (build it again: digest build)",
		e.Issue, e.SentIn, plural.N(e.Stories, "story", "stories"))
}

// deliver is Deliver on the ledger, with req.IssueID as admit sets it.
func (p *Pipeline) deliver(ctx context.Context, req *Request) (Result, error) {
	live, busy, err := p.admit(ctx, req)
	if busy != nil || err != nil {
		return *busy, err
	}
	b, cont, err := p.pick(ctx, *req)
	res := Result{Built: b, Continued: cont}
	p.chosen(b, cont)
	if err != nil || b.Empty() {
		return res, err
	}
	id := b.Issue.ID
	if c, err := p.Store.Counts(ctx, id); err != nil {
		return res, err
	} else if c.Delivered() {
		res.Already, res.Counts = true, c
		return res, nil
	}
	msgs, err := p.Encode(b)
	if err != nil {
		return res, fmt.Errorf("issue %s: %w", id, err)
	}
	r, err := p.register(ctx, id, req.Worker)
	if err != nil || r.busy != nil {
		res.Busy = r.busyOr()
		return res, err
	}
	res.Run = r.run.Info()
	defer r.end(ctx, p)
	if err := p.prepareLedger(ctx, b, live, r, &res); err != nil {
		return res, err
	}
	return p.runEngine(ctx, b, msgs, r, res)
}

// offLedger is a test copy or a dry run: the issue is picked (built when
// needed) and nothing touches the ledger.
func (p *Pipeline) offLedger(ctx context.Context, req Request) (Result, error) {
	var res Result
	b, cont, err := p.pick(ctx, req)
	p.chosen(b, cont)
	if err != nil || b.Empty() {
		res.Built = b
		return res, err
	}
	res.Built, res.Continued = b, cont
	if req.TestTo != "" {
		res.TestTo = req.TestTo
		return res, p.SendTest(ctx, b, ledger.Recipient{Email: req.TestTo})
	}
	if sync := p.Delivery.Sync; sync != nil {
		if err := sync(ctx); err != nil {
			return res, err
		}
	}
	dr, err := p.dryRun(ctx, b)
	res.DryRun = &dr
	return res, err
}

// admit looks at the live runs: a plain call refuses while there are some
// (busy is then the result), a worker joins their issue (req.IssueID is
// set to it); alone, the subscribers file is synced first.
func (p *Pipeline) admit(ctx context.Context, req *Request) (live []ledger.RunInfo, busy *Result, err error) {
	live, err = p.Delivery.Runs.LiveRuns(ctx)
	switch {
	case err != nil:
		return nil, &Result{}, err
	case len(live) > 0 && !req.Worker:
		res, err := p.busy(ctx, live)
		return nil, &res, err
	case len(live) > 0:
		// Help the live runs with their issue.
		if req.IssueID == "" {
			req.IssueID = live[0].IssueID
		}
	case p.Delivery.Sync != nil && !req.synced:
		if err := p.Delivery.Sync(ctx); err != nil {
			return nil, &Result{}, err
		}
		req.synced = true
	}
	return live, nil, nil
}

// registered is this call's delivery run and the keeper of its lease.
type registered struct {
	run        Run
	keeper     *runLease
	ttl        time.Duration
	registered time.Time // when its registration was committed
	busy       *ledger.BusyError
}

// busyOr is the BusyError that kept a run from registering, if any.
func (r *registered) busyOr() *ledger.BusyError {
	if r == nil {
		return nil
	}
	return r.busy
}

// register registers this call's run of issue id under a lease and starts
// renewing it. When another live run refused it, the result holds only
// busy.
func (p *Pipeline) register(ctx context.Context, id string, worker bool) (*registered, error) {
	d := &p.Delivery
	ttl := d.Lease
	if ttl <= 0 {
		ttl = DefaultLease
	}
	now := p.leaseClock()
	me := d.Process
	if me.Host == "" {
		me.Host = "localhost"
	}
	info := ledger.RunInfo{
		ID:   fmt.Sprintf("%s:%d:%s", me.Host, me.PID, now().UTC().Format("20060102T150405.000000")),
		Host: me.Host, PID: me.PID, Process: me.ID, IssueID: id, Worker: worker,
	}
	run, err := d.Runs.BeginRun(ctx, info, ttl)
	var busy *ledger.BusyError
	if errors.As(err, &busy) {
		return &registered{busy: busy}, nil
	}
	if err != nil {
		return nil, err
	}
	if t, ok := run.(interface{ TookOver() []ledger.RunInfo }); ok {
		for _, dead := range t.TookOver() {
			p.log().Warn("taking over the recipients of a run whose process is gone", "run", dead.ID,
				"host", dead.Host, "pid", dead.PID)
		}
	}
	run = p.watch(run)
	// From here on every other run's renewal counts this one.
	return &registered{run: run, ttl: ttl, registered: now(), keeper: keep(ctx, run, ttl, now, p.log())}, nil
}

// end stops the lease's renewals and ends the run.
func (r *registered) end(ctx context.Context, p *Pipeline) {
	r.keeper.Close()
	if err := r.run.End(context.WithoutCancel(ctx)); err != nil {
		p.log().Warn("ending the delivery run", "run", r.run.Info().ID, "err", err)
	}
}

// prepareLedger enqueues every active subscriber and remembers the issue's
// stories, unless a worker joins runs that did it already, then waits until
// the other live runs share the rate with this one.
func (p *Pipeline) prepareLedger(ctx context.Context, b *Built, live []ledger.RunInfo, r *registered, res *Result) error {
	id := b.Issue.ID
	// A worker joining live runs finds the issue enqueued (and its stories
	// remembered) by the run that started it: re-enqueueing a list of
	// millions would cost seconds per worker for nothing.
	c, err := p.Store.Counts(ctx, id)
	if err != nil {
		return err
	}
	if len(live) == 0 || c.Total() == 0 {
		if c.Total() == 0 {
			if err := p.fresh(ctx, b); err != nil {
				return err
			}
		}
		if res.Enqueued, err = p.Store.Enqueue(ctx, id); err != nil {
			return err
		}
		if err := p.remember(ctx, b); err != nil {
			return err
		}
	}
	if res.Joined, err = p.awaitPeers(ctx, res.Run, r.registered, r.ttl); err != nil {
		return err
	}
	if res.Joined > 0 {
		r.keeper.Renew(ctx)
	}
	return nil
}

// runEngine runs the delivery engine over what is left of the issue and
// marks the issue complete when nobody is left.
func (p *Pipeline) runEngine(ctx context.Context, b *Built, msgs deliver.Builder, r *registered, res Result) (Result, error) {
	id := b.Issue.ID
	opts := p.Delivery.Engine
	opts.Lease = r.keeper
	if opts.Sleep == nil {
		opts.Sleep = p.Delivery.Sleep
	}
	c, err := p.Store.Counts(ctx, id)
	if err != nil {
		return res, err
	}
	if opts.Total == 0 {
		opts.Total = c.Unfinished() // what is left to do
	}
	began := time.Now()
	sum, runErr := deliver.Issue(ctx, id, msgs, r.run, p.Delivery.Transport, opts)
	res.Summary, res.Took = sum, time.Since(began)
	bg := context.WithoutCancel(ctx)
	if res.Counts, err = p.Store.Counts(bg, id); err != nil {
		return res, err
	}
	if res.Counts.Done() {
		if err := p.Store.MarkIssueComplete(bg, id, p.clock()); err != nil {
			return res, err
		}
	}
	if runErr != nil {
		return res, fmt.Errorf("issue %s: %w", id, runErr)
	}
	return res, nil
}

// leaseClock is Delivery.LeaseClock, or the real time.
func (p *Pipeline) leaseClock() func() time.Time {
	if p.Delivery.LeaseClock != nil {
		return p.Delivery.LeaseClock
	}
	return time.Now
}

// awaitPeers waits, when other runs are live, until each has renewed its
// lease since this run's registration was committed (at registered): a
// renewal is when a run learns how many share the list's rate and lowers
// its own, so that together they never exceed it. A run that has not
// renewed for three renewal intervals is stalled or dead (a sending run
// renews every interval): it is not waited for, and neither is anyone for
// longer than that. It returns how many others are live.
func (p *Pipeline) awaitPeers(ctx context.Context, me ledger.RunInfo, registered time.Time, ttl time.Duration) (int, error) {
	every := renewEvery(ttl)
	step := every / 2
	logged := false
	for waited := time.Duration(0); ; waited += step {
		live, err := p.Delivery.Runs.LiveRuns(ctx)
		if err != nil {
			return 0, err
		}
		others := 0
		var waitFor []string
		for _, r := range live {
			if r.ID == me.ID {
				continue
			}
			others++
			if !r.SeenAt.After(registered) && registered.Sub(r.SeenAt) < 3*every {
				waitFor = append(waitFor, fmt.Sprintf("pid %d on %s", r.PID, r.Host))
			}
		}
		if len(waitFor) == 0 || waited >= 3*every {
			return others, nil
		}
		if !logged {
			p.log().Info("waiting for the other runs to share the rate before sending",
				"runs", strings.Join(waitFor, ", "), "at_most", 3*every)
			logged = true
		}
		if !p.sleep(ctx, step) {
			return others, ctx.Err()
		}
	}
}

// clock is Delivery.Clock, or the real time.
func (p *Pipeline) clock() time.Time {
	if p.Delivery.Clock != nil {
		return p.Delivery.Clock()
	}
	return time.Now()
}

// chosen tells Delivery.Chosen which issue this call delivers.
func (p *Pipeline) chosen(b *Built, continued bool) {
	if b != nil && p.Delivery.Chosen != nil {
		p.Delivery.Chosen(b, continued)
	}
}

// busy reports the live runs that keep this call from delivering.
func (p *Pipeline) busy(ctx context.Context, live []ledger.RunInfo) (Result, error) {
	c, err := p.Store.Counts(ctx, live[0].IssueID)
	if err != nil {
		return Result{}, err
	}
	return Result{Busy: &ledger.BusyError{Runs: live, Counts: c}}, nil
}

// ErrNoSuchIssue is returned by Deliver for a Request.IssueID that was never
// built.
var ErrNoSuchIssue = errors.New("no such built issue")

// pick chooses the issue to deliver: the one named, else an earlier issue
// whose delivery is unfinished (continued reports that), else the issue of
// the request's time, Scheduled or Now (loaded from the store when it was
// built already, built otherwise). With req.Resume it only picks an
// unfinished latest issue (b nil: none).
func (p *Pipeline) pick(ctx context.Context, req Request) (b *Built, continued bool, err error) {
	switch {
	case req.Resume && req.IssueID == "":
		b, err := p.unfinished(ctx, "")
		return b, b != nil, err
	case req.IssueID != "":
		b, err := p.Load(ctx, req.IssueID)
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, ledger.ErrNotFound) {
			return nil, false, fmt.Errorf("issue %s: %w", req.IssueID, ErrNoSuchIssue)
		}
		return b, false, err
	}
	today := p.IssueID(req.named())
	if b, err := p.unfinished(ctx, today); b != nil || err != nil {
		return b, b != nil, err
	}
	// A dry run changes nothing: an issue not built yet is built as the
	// preview builds it, without a record, an archive folder or sightings.
	b, err = p.buildOrLoad(ctx, req.Now, today, !req.DryRun)
	return b, false, err
}

// unfinishedLookback is how many of the latest incomplete issues unfinished
// looks at.
const unfinishedLookback = 20

// unfinished loads the oldest of the latest incomplete issues (but except)
// whose delivery started and has something to do now: rows pending, or
// sending under a run that may have died. Rows that only wait for a
// reader's own retry, not due yet, do not hold up a new issue (with a
// retry_for longer than the time between issues they would hold up every
// one); once due, a later run or the daemon's resume finds them here.
// nil when there is none such.
func (p *Pipeline) unfinished(ctx context.Context, except string) (*Built, error) {
	ids, err := p.Store.IncompleteIssues(ctx, unfinishedLookback)
	if err != nil {
		return nil, err
	}
	for i := len(ids) - 1; i >= 0; i-- {
		if ids[i] == except {
			continue
		}
		if due, err := p.hasWork(ctx, ids[i]); err != nil || due {
			if err != nil {
				return nil, err
			}
			return p.Load(ctx, ids[i])
		}
	}
	return nil, nil
}

// hasWork says whether the issue's delivery started and has rows to send
// now (or held by a run), beyond those waiting for a retry not yet due.
func (p *Pipeline) hasWork(ctx context.Context, id string) (bool, error) {
	c, err := p.Store.Counts(ctx, id)
	if err != nil || c.Unfinished() == 0 {
		return false, err
	}
	waiting, _, err := p.Store.RetriesWaiting(ctx, id)
	return c.Unfinished() > waiting, err
}

// buildOrLoad loads issue id (the issue for now) when it was built, and
// builds it otherwise, under the build lock, so that of several processes
// starting at once one builds and the others load what it built. Without
// persist, an issue not built yet is built and kept nowhere.
func (p *Pipeline) buildOrLoad(ctx context.Context, now time.Time, id string, persist bool) (b *Built, err error) {
	err = p.lockBuild(ctx, id, func(ctx context.Context) error {
		if _, err := p.Store.GetIssue(ctx, id); err == nil {
			if b, err = p.Load(ctx, id); err == nil || !errors.Is(err, os.ErrNotExist) {
				return err
			}
			// Built by an older version that kept it only in the archive
			// folder, which is gone: build it again.
		} else if !errors.Is(err, ledger.ErrNotFound) {
			return err
		}
		b, err = p.build(ctx, id, now, persist)
		if errors.Is(err, ErrDelivering) {
			// Its delivery started meanwhile: use what the store holds.
			b, err = p.Load(ctx, id)
		}
		return err
	})
	return b, err
}

// fresh returns a *StaleError when another issue delivered some of b's
// stories after b was built (b was loaded as built earlier: by `digest
// build`, or by a process that then found another run live). It runs once
// this call's run is registered and before anything is enqueued: a plain
// run is the only live run, so no other issue can start between the check
// and the remembering of b's stories.
func (p *Pipeline) fresh(ctx context.Context, b *Built) error {
	sentIn, err := p.sentIn(ctx, b.Issue.Articles(), b.Issue.ID)
	if err != nil || len(sentIn) == 0 {
		return err
	}
	e := &StaleError{Issue: b.Issue.ID, Stories: len(sentIn)}
	for _, in := range sentIn {
		e.SentIn = max(e.SentIn, in) // the latest, for a stable message
	}
	return e
}

// remember records the issue's articles as sent, by ID and canonical link,
// so that no later issue carries them again. Deliver calls it when delivery
// starts.
func (p *Pipeline) remember(ctx context.Context, b *Built) error {
	var keys []string
	for _, a := range b.Issue.Articles() {
		keys = append(keys, sentKeys(a)...)
	}
	return p.Store.MarkArticlesSent(ctx, b.Issue.ID, keys)
}

// SendTest sends one test copy of a built (or previewed) issue to rc.Email
// (rc.Name as the reader's name; other fields as a reader would have them),
// through the configured transport and built by the same path as every real
// message, with the subject prefixed "[TEST]". The ledger is untouched.
func (p *Pipeline) SendTest(ctx context.Context, b *Built, rc ledger.Recipient) error {
	d := &p.Delivery
	if d.Encode == nil || d.Transport == nil {
		return errors.New("send test: the pipeline has no delivery wiring (Encode, Transport)")
	}
	addr, err := subscriber.NormalizeEmail(rc.Email)
	if err != nil {
		return fmt.Errorf("test copy to %q: %w", rc.Email, err)
	}
	msgs, err := p.Encode(b)
	if err != nil {
		return fmt.Errorf("issue %s: %w", b.Issue.ID, err)
	}
	rc.Email, rc.IssueID, rc.Test = addr, b.Issue.ID, true
	m, err := msgs.Build(nil, rc)
	if err != nil {
		return fmt.Errorf("test copy to %s: %w", addr, err)
	}
	if err := deliver.SendMessage(ctx, d.Transport, &m); err != nil {
		return fmt.Errorf("test copy to %s: %w", addr, err)
	}
	return nil
}

// dryRun builds every active subscriber's message and reports the count and
// size; nothing is sent and the ledger is untouched.
func (p *Pipeline) dryRun(ctx context.Context, b *Built) (deliver.DryRunResult, error) {
	d := &p.Delivery
	if d.Encode == nil || d.Subscribers == nil {
		return deliver.DryRunResult{}, errors.New("dry run: the pipeline has no delivery wiring (Encode, Subscribers)")
	}
	msgs, err := p.Encode(b)
	if err != nil {
		return deliver.DryRunResult{}, fmt.Errorf("issue %s: %w", b.Issue.ID, err)
	}
	var listErr error
	recipients := func(yield func(ledger.Recipient) bool) {
		stop := errors.New("stop")
		err := d.Subscribers(ctx, func(s subscriber.Subscriber) error {
			if s.Status != subscriber.StatusActive {
				return nil
			}
			if !yield(ledger.Recipient{IssueID: b.Issue.ID, SubscriberID: s.ID, Email: s.Email, Name: s.Name, Topics: s.Topics}) {
				return stop
			}
			return nil
		})
		if err != nil && !errors.Is(err, stop) {
			listErr = err
		}
	}
	res, err := deliver.DryRun(ctx, msgs, recipients)
	if listErr != nil {
		return res, listErr
	}
	return res, err
}

func (p *Pipeline) sleep(ctx context.Context, d time.Duration) bool {
	if p.Delivery.Sleep != nil {
		return p.Delivery.Sleep(ctx, d)
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
