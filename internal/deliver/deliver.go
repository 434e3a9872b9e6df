// Package deliver sends a rendered issue to every recipient of its ledger:
// a claimer takes batches of pending rows, a pool of workers each holding
// one connection sends them under a shared rate limit (and optional hourly
// and daily caps), and a recorder writes outcomes back in batches.
//
// The issue is encoded once (mail.Prepared); per recipient only a few
// headers and personal values are written, so the relay, not this program,
// sets the pace.
//
// # Ordering: nobody skipped, at most one repeat per connection
//
// A crash (SIGKILL, power loss) must never skip a recipient and may repeat
// only the messages in flight, at most one per connection. The rules:
//
//  1. Claim moves rows pending → sending, under this run's name and lease,
//     before any of them is sent. A crash leaves them in sending; once the
//     lease runs out a later claim puts them back to pending, so an unsent
//     row is never lost. While the lease lasts nobody else takes them, and
//     the engine lets a message be accepted only while its run's lease is
//     certainly valid (Options.Lease), so two live runs never send one row.
//  2. A row becomes sent only in a Record call made after the server
//     accepted its message (replied 250 to the end of DATA).
//  3. Batching: outcomes go to one recorder goroutine, which writes all
//     that are queued in one Record (one transaction) and then acknowledges
//     each sent outcome to its worker (group commit). A worker may build
//     its next message and transmit everything but the end of DATA before
//     that acknowledgement, but it sends the final "." (the step that lets
//     the server accept) only after its previous sent outcome is durable.
//     So at any instant each connection has at most one accepted message
//     that the ledger does not yet show as sent: a crash repeats at most
//     that one per connection, and a Record holds up to one sent outcome
//     per connection (plus any failures) instead of one per transaction.
//     The relay keeps the DATA phase open while the final "." waits, so
//     the wait is bounded (Options.HoldMax): past it the connection is
//     closed without the final "." (the relay cannot accept that message),
//     the worker waits for the commit with no connection open, and sends
//     the message again on a new connection, with no attempt counted. If
//     the commit fails instead, the run stops; the recorded-too-late row
//     stays sending for recovery (rule 1) and the held one is released.
//     A ledger on a database server (ParallelLedger) takes several
//     Records at once, each acknowledging its own outcomes: an outcome
//     then waits for its own commit only, not also for the one in flight
//     before it, and the server flushes the commits together.
//  4. Failed and pending outcomes need no acknowledgement: losing one in a
//     crash only means the recipient is tried again.
//  5. A claimed row that was not attempted is released back to pending.
//  6. No reply to the end of DATA (a timeout or a dropped connection after
//     the final "." was sent) is ambiguous: the relay may have accepted
//     the message. Such a recipient is not retried in the same run: its
//     row stays sending until the run ends, and is then recorded pending
//     with the attempt counted (failed when it was the last attempt), so
//     that each run repeats it at most once; later runs retry it as usual.
//     The connection is closed and another opened. (A reply of 250
//     followed by a dropped connection is a success: the row is sent.)
//     The wait for that reply is long (SMTPOptions.DataTimeout), and after
//     3 such outcomes per connection in a row, with no message accepted in
//     between, the run stops with the rest pending: the relay is not
//     answering.
//
// 4xx replies, timeouts and dropped connections are retried with backoff
// (except after the end of DATA: rule 6); a
// 5xx reply fails the recipient at once (and marks it bounced when the
// address itself was refused).
package deliver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/digest/digest/internal/ledger"
	"github.com/digest/digest/internal/mail"
)

// Ledger is the per-recipient delivery record as one run sees it,
// implemented by package store's Run.
type Ledger interface {
	// Claim moves up to limit pending rows of the issue to sending, as this
	// run's, and returns them; an empty result means nothing is left to
	// claim now.
	Claim(ctx context.Context, issueID string, limit int) ([]ledger.Recipient, error)
	// Record stores outcomes: Sent and Failed are final, Pending puts the
	// row back with its attempts counted. It must be durable when it
	// returns: the engine lets the next message be accepted only then.
	Record(ctx context.Context, issueID string, outs []ledger.Outcome) error
	// Release puts claimed rows that were not attempted back to pending.
	Release(ctx context.Context, issueID string, ids []int64) error
}

// Transport opens connections to wherever messages go.
type Transport interface {
	// Open returns a new connection. ctx bounds the dial.
	Open(ctx context.Context) (Conn, error)
}

// Conn is one connection, used by one worker at a time.
type Conn interface {
	// Send transmits m to rc and returns nil once the server accepted it.
	// Right before the step that lets the server accept the message (the
	// end of DATA), it calls ready when ready is not nil; if ready fails it
	// must not complete that step (it may close the connection) and returns
	// an error wrapping ErrConnBroken. An error that wraps ErrConnBroken, or
	// that carries no SMTP reply (no *ReplyError), makes the engine re-open
	// the connection. An error wrapping ErrUnconfirmed says the message was
	// handed over whole but its verdict never came (it may have been
	// accepted): the engine does not retry it in this run. Implementations
	// may ignore ctx once transmission started.
	Send(ctx context.Context, m *mail.Message, rc ledger.Recipient, ready func() error) error
	// Close releases the connection.
	Close() error
}

// SharedLedger is a Ledger that other runs deliver from too. When nothing
// is left to claim, the engine asks how many rows other runs still hold:
// while some are, it waits and claims again, so that rows of a run that
// dies are taken over when its lease expires, and the run ends only when
// the whole issue is settled.
type SharedLedger interface {
	Ledger
	HeldByOthers(ctx context.Context, issueID string) (int, error)
}

// Builder builds one recipient's message of an issue encoded once
// (*mail.Prepared, or a set of them, one per topic set). An error wrapping
// ErrSkip says the recipient gets nothing from this issue: the row is
// settled as skipped, not failed.
type Builder interface {
	Build(dst []byte, rc ledger.Recipient) (mail.Message, error)
}

// ErrSkip is wrapped by a Builder's error for a recipient who is not sent
// the issue (nothing in it matches their topics).
var ErrSkip = errors.New("nothing in this issue for the recipient")

// Lease is the hold of a run on the rows it claims, kept alive by whoever
// registered the run (it renews the lease in the store while the run works).
type Lease interface {
	// Valid reports whether the run's rows are certainly still its own:
	// false once a renewal is overdue, since another run may then take
	// them over (it may renew first when a renewal is due). The engine
	// checks it right before letting a message be accepted and while it
	// waits for other runs, and stops the run when it is false.
	Valid() bool
	// Peers is how many live runs share the relay, this one included. The
	// engine divides Options.Rate, PerHour and PerDay by it, so that the
	// list's limits hold whatever the number of processes.
	Peers() int
}

// ErrLeaseLost is the cause of a run that stopped because its lease was
// no longer certainly valid.
var ErrLeaseLost = ledger.ErrLeaseLost

// Options tunes a run. The zero value works: one connection, no rate limit,
// 5 attempts, batches of 100.
type Options struct {
	Connections int     // parallel connections; 0 means 1
	Rate        float64 // messages per second over all connections; 0 = unlimited
	// PerHour and PerDay cap the messages accepted in any sliding hour or
	// day, for relays with quotas; 0 means no cap. When a cap is reached
	// the run stops with the rest pending and Run returns an error wrapping
	// ErrQuota.
	PerHour, PerDay int
	// SentSince, when set with a cap, tells how many messages were sent
	// since a time by earlier runs (all issues), so that the caps hold
	// across runs; nil counts this run only.
	SentSince   func(ctx context.Context, since time.Time) (int, error)
	MaxAttempts int // attempts per recipient across runs; 0 means 5
	BatchSize   int // rows per Claim (more with many connections), and most outcomes per Record; 0 means 100
	// OpenAttempts is how many times a worker tries to open a connection
	// before it gives up; 0 means 3. When every worker gave up, the run
	// stops with the relay's error and leaves the rest pending.
	OpenAttempts int
	// Backoff is the wait before retry n (1, 2, ...) of a message or of a
	// connection; nil means exponential from 1s with jitter, capped at 30s.
	Backoff func(attempt int) time.Duration
	// Total is the number of recipients of the issue, for progress reports;
	// 0 means "as claimed so far".
	Total int
	// Progress, when set, is called every ProgressEvery (default 1s) and
	// once at the end, from a single goroutine.
	Progress      func(Progress)
	ProgressEvery time.Duration
	// Lease, when set, is checked before each message is let through and
	// tells how many runs share the limits. nil: this run is alone.
	Lease Lease
	// HoldMax bounds how long a worker holds a message's final "." back
	// while its previous outcome commits (rule 3); past it, the connection
	// is dropped without the final "." and the message sent again once the
	// commit returned. 0 means 5s.
	HoldMax time.Duration
	// PollEvery is how often the engine claims again while other runs
	// hold rows of the issue (SharedLedger); 0 means 2s.
	PollEvery time.Duration
	// Sleep waits d or until ctx is done and reports whether d elapsed;
	// nil uses a timer. Tests inject one so that backoff costs nothing.
	Sleep func(ctx context.Context, d time.Duration) bool
	// Now stamps outcomes and drives the caps; nil means time.Now.
	Now    func() time.Time
	Logger *slog.Logger // nil discards
}

// ErrQuota is wrapped by Run's error when PerHour or PerDay stopped the run.
var ErrQuota = errors.New("sending cap reached")

// Progress is a snapshot of a run.
type Progress struct {
	Sent, Failed, Skipped, Pending, Total int
	Rate                                  float64       // messages accepted per second since the start
	Elapsed                               time.Duration // since the start of the run
	Done                                  bool          // the last report of the run
}

// ETA estimates the time left at the current rate; 0 when unknown.
func (p Progress) ETA() time.Duration {
	if p.Rate <= 0 || p.Pending <= 0 {
		return 0
	}
	return time.Duration(float64(p.Pending) / p.Rate * float64(time.Second))
}

// Summary is what a run did. Pending counts recipients this run claimed but
// left pending (to be continued by a later run).
type Summary struct {
	Sent, Failed, Skipped, Pending int
	Attempts                       int // messages handed to the transport in this run, retries included
	Duration                       time.Duration
}

// Rate is messages accepted per second over the run.
func (s Summary) Rate() float64 {
	if s.Duration <= 0 {
		return 0
	}
	return float64(s.Sent) / s.Duration.Seconds()
}

// DefaultBackoff waits 1s, 2s, 4s ... (capped at 30s), each with up to 25%
// jitter so that parallel workers do not retry in lockstep.
func DefaultBackoff(attempt int) time.Duration {
	d := time.Second << min(max(attempt-1, 0), 5)
	d = min(d, 30*time.Second)
	return d - time.Duration(rand.Int64N(int64(d/4)+1))
}

func (o *Options) defaults() {
	if o.Connections <= 0 {
		o.Connections = 1
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = 5
	}
	if o.BatchSize <= 0 {
		o.BatchSize = 100
	}
	if o.OpenAttempts <= 0 {
		o.OpenAttempts = 3
	}
	if o.Backoff == nil {
		o.Backoff = DefaultBackoff
	}
	if o.ProgressEvery <= 0 {
		o.ProgressEvery = time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.PollEvery <= 0 {
		o.PollEvery = 2 * time.Second
	}
	if o.HoldMax <= 0 {
		o.HoldMax = defaultHoldMax
	}
	if o.Sleep == nil {
		o.Sleep = sleep
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
}

// row states within a run; rows recorded sent or failed are forgotten.
const (
	stHeld     = iota // claimed, no outcome yet
	stPending         // recorded pending, or released
	stUnstored        // has an outcome that could not be recorded
)

// outReq is one outcome on its way to the recorder; ack, when set, gets
// the result of the Record that stored it.
type outReq struct {
	o   ledger.Outcome
	ack chan error
}

type engine struct {
	issueID string
	msgs    Builder
	l       Ledger
	t       Transport
	o       Options
	log     *slog.Logger
	limiter *rate.Limiter
	peers   atomic.Int64 // runs sharing Rate when the limiter was last set
	quota   *quota
	start   time.Time

	ctx    context.Context // the run: cancelled by the caller or on a fatal error
	cancel context.CancelCauseFunc
	bg     context.Context // for ledger writes after ctx is cancelled

	jobs chan ledger.Recipient
	outs chan outReq

	mu      sync.Mutex
	state   map[int64]int
	claimed int
	sent    int
	failed  int
	skipped int

	// deferred holds the outcomes of unconfirmed messages, recorded when
	// the run ends so that this run cannot claim them again (rule 6).
	deferred []ledger.Outcome
	// unconfirmedRun counts unconfirmed messages since the last accepted
	// one, over all connections.
	unconfirmedRun atomic.Int64

	attempts atomic.Int64
	records  atomic.Int64 // Record calls
	relayMu  sync.Mutex
	relayErr error

	recordsAtOnce int // Record calls in flight at most
}

// worker is one sending goroutine's state.
type worker struct {
	conn    Conn
	buf     []byte     // message buffer, reused
	ack     chan error // answer for the last sent outcome
	waiting bool       // an answer is due on ack
	ackErr  error      // a Record that failed: send nothing more
}

// errNotRecorded aborts a message whose predecessor could not be recorded.
var errNotRecorded = errors.New("previous outcome not recorded")

// Run delivers an issue, built per recipient by msgs, to the recipients it
// claims from l until none is left (and, with a SharedLedger, no other run
// holds any), the relay is unreachable, a cap is reached, the lease lapses
// or ctx is cancelled. On cancellation it stops claiming, lets messages in
// flight finish (bounded by the transport's timeout), records what is
// known, releases the rest and returns ctx.Err(). If no connection can be
// opened it returns an error naming the relay failure, with the recipients
// left pending.
func Run(ctx context.Context, issueID string, msgs Builder, l Ledger, t Transport, opts Options) (Summary, error) {
	opts.defaults()
	start := time.Now()
	e := &engine{
		issueID: issueID, msgs: msgs, l: l, t: t, o: opts, log: opts.Logger.With("issue", issueID),
		start: start,
		bg:    context.WithoutCancel(ctx),
		jobs:  make(chan ledger.Recipient, claimSize(opts)),
		outs:  make(chan outReq, opts.BatchSize+opts.Connections),
		state: make(map[int64]int),
	}
	e.recordsAtOnce = recordsAtOnce(l, opts.Connections)
	if opts.Rate > 0 {
		e.peers.Store(1)
		e.limiter = rate.NewLimiter(rate.Limit(opts.Rate), 1)
		e.shareRate()
	}
	if opts.PerHour > 0 || opts.PerDay > 0 {
		var err error
		if e.quota, err = newQuota(ctx, opts, e.recordedSent, e.peerCount()); err != nil {
			return Summary{}, fmt.Errorf("quota: %w", err)
		}
	}
	e.ctx, e.cancel = context.WithCancelCause(ctx)
	defer e.cancel(nil)

	var recWG, claimWG, workWG sync.WaitGroup
	recWG.Go(e.recorder)
	claimWG.Go(e.claimer)
	for range opts.Connections {
		workWG.Go(e.work)
	}
	progressDone := make(chan struct{})
	var progWG sync.WaitGroup
	if opts.Progress != nil {
		progWG.Go(func() { e.progressLoop(progressDone) })
	}

	workWG.Wait()
	// Workers are gone (done, or none could connect): stop the claimer. A
	// no-op when the run already stopped with a cause.
	e.cancel(nil)
	claimWG.Wait()
	// The claimer is gone: unconfirmed rows may go back to pending now.
	for _, o := range e.takeDeferred() {
		e.outs <- outReq{o: o}
	}
	close(e.outs)
	recWG.Wait()
	e.releaseHeld()
	close(progressDone)
	progWG.Wait()

	s := e.summary()
	if opts.Progress != nil {
		p := e.progress()
		p.Done = true
		opts.Progress(p)
	}
	e.log.Info("delivery run finished", "sent", s.Sent, "failed", s.Failed, "skipped", s.Skipped, "returned_to_queue", s.Pending,
		"attempts", s.Attempts, "ledger_writes", e.records.Load(), "duration", s.Duration.Round(time.Millisecond))

	if err := ctx.Err(); err != nil {
		return s, err
	}
	if cause := context.Cause(e.ctx); cause != nil && !errors.Is(cause, context.Canceled) {
		return s, cause
	}
	if s.Pending > 0 {
		if err := e.relayError(); err != nil {
			return s, fmt.Errorf("%s left pending: %w", plural(s.Pending, "recipient", "recipients"), err)
		}
	}
	return s, nil
}

func plural(n int, one, many string) string {
	if n == 1 {
		return fmt.Sprintf("%d %s", n, one)
	}
	return fmt.Sprintf("%d %s", n, many)
}

// shareRate divides Options.Rate among the live runs the lease reports.
func (e *engine) shareRate() {
	if e.limiter == nil || e.o.Lease == nil {
		return
	}
	n := int64(max(e.o.Lease.Peers(), 1))
	if e.peers.Swap(n) == n {
		return
	}
	e.limiter.SetLimit(rate.Limit(e.o.Rate / float64(n)))
	if n > 1 {
		e.log.Debug("sharing the rate", "runs", n, "rate", e.o.Rate/float64(n))
	}
}

// recordedSent is the number of this run's messages recorded as sent.
func (e *engine) recordedSent() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.sent
}

// ready is called right before a message may be accepted: the previous
// one is recorded, and the run's lease is still certainly valid.
func (e *engine) ready(w *worker) error {
	if err := w.holdAck(e.o.HoldMax); err != nil {
		return err
	}
	if e.o.Lease != nil && !e.o.Lease.Valid() {
		e.cancel(ErrLeaseLost)
		return fmt.Errorf("%w: %w", ErrConnBroken, ErrLeaseLost)
	}
	return nil
}

// claimer feeds claimed rows to the workers until the ledger is drained or
// the run stops.
func (e *engine) claimer() {
	defer close(e.jobs)
	for e.ctx.Err() == nil {
		batch, err := e.l.Claim(e.ctx, e.issueID, claimSize(e.o))
		if err != nil {
			if e.ctx.Err() == nil {
				e.cancel(fmt.Errorf("claim: %w", err))
			}
			return
		}
		if len(batch) == 0 {
			if !e.othersHold() {
				return
			}
			if !e.o.Sleep(e.ctx, e.o.PollEvery) {
				return
			}
			if e.o.Lease != nil && !e.o.Lease.Valid() {
				e.cancel(ErrLeaseLost)
				return
			}
			continue
		}
		e.mu.Lock()
		for _, rc := range batch {
			if _, seen := e.state[rc.SubscriberID]; !seen {
				e.claimed++
			}
			if rc.Gone != "" {
				// Settled as skipped by the claim: the reader left.
				e.skipped++
				delete(e.state, rc.SubscriberID)
				continue
			}
			e.state[rc.SubscriberID] = stHeld
		}
		e.mu.Unlock()
		for _, rc := range batch {
			if rc.Gone != "" {
				continue
			}
			select {
			case e.jobs <- rc:
			case <-e.ctx.Done():
				return // the rest stays held and is released at the end
			}
		}
	}
}

// othersHold reports whether other runs still hold rows of the issue, so
// that the claimer should wait for them to be settled or to come back.
func (e *engine) othersHold() bool {
	sl, ok := e.l.(SharedLedger)
	if !ok {
		return false
	}
	n, err := sl.HeldByOthers(e.ctx, e.issueID)
	if err != nil {
		if e.ctx.Err() == nil {
			e.cancel(fmt.Errorf("claim: %w", err))
		}
		return false
	}
	return n > 0
}

// work owns at most one connection and delivers jobs one at a time.
func (e *engine) work() {
	w := &worker{ack: make(chan error, 1)}
	defer func() {
		w.waitAck()
		if w.conn != nil {
			if err := w.conn.Close(); err != nil {
				e.log.Debug("close connection", "err", err)
			}
		}
	}()
	for {
		var rc ledger.Recipient
		var ok bool
		select {
		case <-e.ctx.Done():
			return
		case rc, ok = <-e.jobs:
			if !ok {
				return
			}
		}
		if !e.deliver(rc, w) {
			return
		}
	}
}

// waitAck waits for the recorder's answer about the worker's last sent
// outcome, if one is due, and reports whether it was recorded.
func (w *worker) waitAck() error {
	if w.waiting {
		if err := <-w.ack; err != nil && w.ackErr == nil {
			w.ackErr = err
		}
		w.waiting = false
	}
	if w.ackErr != nil {
		return fmt.Errorf("%w: %w: %w", ErrConnBroken, errNotRecorded, w.ackErr)
	}
	return nil
}

// deliver tries one recipient until it is sent, failed for good, or must
// wait for a later run. It reports false when the worker should stop
// because no connection could be opened or the ledger failed.
func (e *engine) deliver(rc ledger.Recipient, w *worker) bool {
	attempts := rc.Attempts
	var last failure
	staleRetried := false // one free retry when a reused connection was dead
	m, err := e.msgs.Build(w.buf, rc)
	if errors.Is(err, ErrSkip) {
		e.emit(w, rc, ledger.Skipped, attempts, failure{reply: err.Error()})
		return true
	}
	if err != nil {
		// No retry can fix a message that cannot be built.
		e.emit(w, rc, ledger.Failed, attempts, failure{reply: "compose: " + err.Error()})
		return true
	}
	w.buf = m.Data[:0]
	for {
		if attempts >= e.o.MaxAttempts {
			f := last
			f.reply = fmt.Sprintf("gave up after %d attempts", attempts)
			if last.reply != "" {
				f.reply += ": " + last.reply
			}
			e.emit(w, rc, ledger.Failed, attempts, f)
			return true
		}
		if e.ctx.Err() != nil {
			return e.leave(w, rc, attempts, last)
		}
		if e.limiter != nil {
			e.shareRate()
			if err := e.limiter.Wait(e.ctx); err != nil {
				return e.leave(w, rc, attempts, last)
			}
		}
		if w.conn == nil {
			c, err := e.open()
			if err != nil {
				// Hand the recipient back now, so that a worker that can
				// still connect may take it in this run.
				if attempts > rc.Attempts {
					e.leave(w, rc, attempts, last)
				} else if e.ctx.Err() == nil {
					_ = e.release([]int64{rc.SubscriberID})
				}
				return false
			}
			w.conn = c
		}
		var slot time.Time
		if e.quota != nil {
			var qerr error
			if slot, qerr = e.quota.take(e.ctx, e.o.Now(), e.peerCount()); qerr != nil {
				e.cancel(qerr)
				return e.leave(w, rc, attempts, last)
			}
		}
		err := w.conn.Send(e.ctx, &m, rc, func() error { return e.ready(w) })
		e.attempts.Add(1)
		if err != nil && e.quota != nil && !errors.Is(err, ErrUnconfirmed) {
			e.quota.refund(slot) // an unconfirmed message may count at the relay
		}
		if errors.Is(err, errHeldTooLong) {
			if !e.afterHold(w, err) {
				return false
			}
			continue
		}
		if err != nil && (errors.Is(err, errNotRecorded) || errors.Is(err, ErrLeaseLost)) {
			// The ledger failed, or the lease lapsed (the run is stopping):
			// this message was not accepted and its attempt does not count.
			e.drop(w)
			return false
		}
		if err != nil && !staleRetried {
			if f := classify(err); f.stale {
				staleRetried = true
				e.log.Debug("connection went stale, re-opening", "err", err)
				e.drop(w)
				continue
			}
		}
		attempts++
		if err == nil {
			e.unconfirmedRun.Store(0)
			e.emit(w, rc, ledger.Sent, attempts, failure{})
			return true
		}
		f := classify(err)
		if f.reconnect {
			e.drop(w)
		}
		if f.unconfirmed {
			e.unconfirmed(w, rc, attempts, f, err)
			return true
		}
		if f.relay {
			// The relay refused the sender: every recipient would fail the
			// same way. Stop the run instead of failing the whole list.
			e.setRelayError(fmt.Errorf("relay refused the sender: %w", err))
			e.cancel(e.relayError())
			return e.leave(w, rc, attempts, f)
		}
		if !f.temp {
			e.log.Info("recipient failed", "subscriber", rc.SubscriberID, "code", f.code, "enhanced", f.enhanced, "bounced", f.bounced)
			e.emit(w, rc, ledger.Failed, attempts, f)
			return true
		}
		last = f
		e.log.Debug("temporary failure", "subscriber", rc.SubscriberID, "attempt", attempts, "err", err)
		if attempts >= e.o.MaxAttempts {
			continue
		}
		if !e.o.Sleep(e.ctx, e.o.Backoff(attempts-rc.Attempts)) {
			return e.leave(w, rc, attempts, last)
		}
	}
}

// unconfirmed handles a message whose end of DATA got no reply (rule 6):
// no retry in this run; pending at the end of the run, or failed when no
// attempt is left. Too many in a row stop the run.
func (e *engine) unconfirmed(w *worker, rc ledger.Recipient, attempts int, f failure, err error) {
	e.log.Warn("no reply after end of DATA; the relay may have accepted the message; not retried in this run",
		"subscriber", rc.SubscriberID, "attempt", attempts, "err", err)
	if attempts >= e.o.MaxAttempts {
		f.reply = fmt.Sprintf("gave up after %d attempts: no reply after end of DATA; the relay may have accepted it: %s", attempts, f.reply)
		e.emit(w, rc, ledger.Failed, attempts, f)
	} else {
		f.reply = "no reply after end of DATA; the relay may have accepted it; retried on the next run: " + f.reply
		o := e.outcome(rc, ledger.Pending, attempts, f)
		e.mu.Lock()
		e.deferred = append(e.deferred, o)
		e.mu.Unlock()
	}
	if n := e.unconfirmedRun.Add(1); n >= int64(maxUnconfirmedPerConn*e.o.Connections) {
		e.setRelayError(fmt.Errorf("relay gave no reply after end of DATA for %d messages in a row: %w", n, err))
		e.cancel(e.relayError())
	}
}

// maxUnconfirmedPerConn times Connections unconfirmed messages in a row
// stop the run: each may have cost a DataTimeout.
const maxUnconfirmedPerConn = 3

func (e *engine) takeDeferred() []ledger.Outcome {
	e.mu.Lock()
	defer e.mu.Unlock()
	d := e.deferred
	e.deferred = nil
	return d
}

// leave gives a recipient back for a later run: recorded pending with its
// attempts when this run tried it, released untouched otherwise.
func (e *engine) leave(w *worker, rc ledger.Recipient, attempts int, last failure) bool {
	if attempts > rc.Attempts {
		e.emit(w, rc, ledger.Pending, attempts, last)
	}
	// else: still held, released at the end of the run.
	return true
}

// emit hands an outcome to the recorder. A sent outcome must be durable
// before the worker lets the server accept its next message (see waitAck).
func (e *engine) emit(w *worker, rc ledger.Recipient, status string, attempts int, f failure) {
	req := outReq{o: e.outcome(rc, status, attempts, f)}
	if status == ledger.Sent {
		// Normally already done by Send through its ready callback; a
		// failure is kept in w.ackErr and stops the worker's next send.
		_ = w.waitAck()
		req.ack = w.ack
		w.waiting = true
	}
	e.outs <- req
}

func (e *engine) outcome(rc ledger.Recipient, status string, attempts int, f failure) ledger.Outcome {
	return ledger.Outcome{
		SubscriberID: rc.SubscriberID,
		Status:       status,
		Attempts:     attempts,
		Code:         f.code,
		Enhanced:     f.enhanced,
		Reply:        f.reply,
		Bounced:      status == ledger.Failed && f.bounced,
		At:           e.o.Now(),
	}
}

// open opens a connection, retrying with backoff. After OpenAttempts
// failures it records the relay error and gives up.
func (e *engine) open() (Conn, error) {
	for i := 1; ; i++ {
		c, err := e.t.Open(e.ctx)
		if err == nil {
			return c, nil
		}
		if e.ctx.Err() != nil {
			return nil, err
		}
		e.log.Warn("cannot open connection", "try", i, "err", err)
		if i >= e.o.OpenAttempts {
			e.setRelayError(fmt.Errorf("cannot connect after %d tries: %w", i, err))
			return nil, err
		}
		if !e.o.Sleep(e.ctx, e.o.Backoff(i)) {
			return nil, e.ctx.Err()
		}
	}
}

// peerCount is how many runs share the caps.
func (e *engine) peerCount() int {
	if e.o.Lease == nil {
		return 1
	}
	return max(e.o.Lease.Peers(), 1)
}

func (e *engine) drop(w *worker) {
	if w.conn != nil {
		_ = w.conn.Close()
		w.conn = nil
	}
}

func (e *engine) setRelayError(err error) {
	e.relayMu.Lock()
	defer e.relayMu.Unlock()
	if e.relayErr == nil {
		e.relayErr = err
	}
}

func (e *engine) relayError() error {
	e.relayMu.Lock()
	defer e.relayMu.Unlock()
	return e.relayErr
}

// recorder writes outcomes with group commit: it takes every outcome that
// is queued (up to BatchSize) and stores them in one Record, then answers
// the workers waiting for them. With a ParallelLedger up to
// e.recordsAtOnce Records run side by side, each with the outcomes queued
// when it starts; otherwise one at a time, the next batch growing while
// the one before commits. It uses a context that outlives cancellation,
// so that what was sent is always recorded.
func (e *engine) recorder() {
	slots := make(chan struct{}, e.recordsAtOnce)
	var wg sync.WaitGroup
	var failed atomic.Bool
	for {
		req, ok := <-e.outs
		if !ok {
			break
		}
		slots <- struct{}{} // a free slot first: meanwhile more outcomes queue
		batch := append(make([]outReq, 0, 8), req)
	drain:
		for len(batch) < e.o.BatchSize {
			select {
			case req, ok := <-e.outs:
				if !ok {
					break drain
				}
				batch = append(batch, req)
			default:
				break drain
			}
		}
		wg.Go(func() {
			defer func() { <-slots }()
			var err error
			if failed.Load() {
				err = errors.New("an earlier record failed")
			} else if err = e.record(batch); err != nil {
				failed.Store(true)
			}
			e.settle(batch, err)
		})
	}
	wg.Wait()
}

// settle updates the run's counts after a Record and answers the waiting
// workers.
func (e *engine) settle(batch []outReq, err error) {
	e.mu.Lock()
	for _, r := range batch {
		o := r.o
		switch {
		case err != nil:
			e.state[o.SubscriberID] = stUnstored
		case o.Status == ledger.Sent, o.Status == ledger.Failed, o.Status == ledger.Skipped:
			// Settled for good and never claimed again: forget it, so
			// that memory does not grow with the list.
			delete(e.state, o.SubscriberID)
		default:
			e.state[o.SubscriberID] = stPending
		}
		switch o.Status {
		case ledger.Sent:
			e.sent++
		case ledger.Failed:
			e.failed++
		case ledger.Skipped:
			e.skipped++
		}
	}
	e.mu.Unlock()
	if err != nil && e.ctx.Err() == nil {
		// Rows stay "sending": the next run puts them back to pending, so
		// at most these are repeated. Stop before it grows.
		e.cancel(fmt.Errorf("record %d outcomes: %w", len(batch), err))
	}
	for _, r := range batch {
		if r.ack != nil {
			r.ack <- err
		}
	}
}

func (e *engine) record(batch []outReq) error {
	outs := make([]ledger.Outcome, len(batch))
	for i, r := range batch {
		outs[i] = r.o
	}
	var err error
	for try := range 3 {
		ctx, cancel := context.WithTimeout(e.bg, 30*time.Second)
		err = e.l.Record(ctx, e.issueID, outs)
		cancel()
		e.records.Add(1)
		if err == nil {
			return nil
		}
		e.log.Warn("record outcomes", "try", try+1, "err", err)
		if try < 2 {
			e.o.Sleep(e.bg, time.Duration(try+1)*100*time.Millisecond)
		}
	}
	return err
}

// releaseHeld puts back every claimed row that has no outcome.
func (e *engine) releaseHeld() {
	e.mu.Lock()
	var ids []int64
	for id, st := range e.state {
		if st == stHeld {
			ids = append(ids, id)
		}
	}
	e.mu.Unlock()
	_ = e.release(ids)
}

// release puts claimed rows back to pending. On failure they stay
// "sending" (the next run puts them back) and the run stops.
func (e *engine) release(ids []int64) error {
	if len(ids) == 0 {
		return nil
	}
	// Mark first: once released, the claimer may claim a row again and
	// mark it held.
	e.mu.Lock()
	for _, id := range ids {
		e.state[id] = stPending
	}
	e.mu.Unlock()
	ctx, cancel := context.WithTimeout(e.bg, 30*time.Second)
	defer cancel()
	if err := e.l.Release(ctx, e.issueID, ids); err != nil {
		e.log.Error("release claimed recipients", "count", len(ids), "err", err)
		e.cancel(fmt.Errorf("release %d recipients: %w", len(ids), err))
		return err
	}
	return nil
}

func (e *engine) summary() Summary {
	e.mu.Lock()
	defer e.mu.Unlock()
	s := Summary{Sent: e.sent, Failed: e.failed, Skipped: e.skipped, Attempts: int(e.attempts.Load()), Duration: time.Since(e.start)}
	for _, st := range e.state {
		if st == stPending || st == stHeld {
			s.Pending++
		}
	}
	return s
}

func (e *engine) progress() Progress {
	e.mu.Lock()
	p := Progress{Sent: e.sent, Failed: e.failed, Skipped: e.skipped, Total: e.o.Total}
	claimed := e.claimed
	e.mu.Unlock()
	if p.Total < claimed {
		p.Total = claimed
	}
	p.Pending = max(p.Total-p.Sent-p.Failed-p.Skipped, 0)
	p.Elapsed = time.Since(e.start)
	if secs := p.Elapsed.Seconds(); secs > 0 {
		p.Rate = float64(p.Sent) / secs
	}
	return p
}

func (e *engine) progressLoop(done <-chan struct{}) {
	tick := time.NewTicker(e.o.ProgressEvery)
	defer tick.Stop()
	for {
		select {
		case <-done:
			return
		case <-tick.C:
			e.o.Progress(e.progress())
		}
	}
}

// sleep waits d or until ctx is done; it reports whether d elapsed.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
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
