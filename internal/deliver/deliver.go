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
//     When the relay offers PIPELINING (RFC 2920), the final "." goes in
//     one write with the worker's next message's MAIL, RCPT and DATA, if
//     that message is at hand (taken and built while the commit runs) and
//     may go at once: an attempt left, the relay not down, no wait for the
//     rate limit or a cap. The next message's data follows the replies,
//     and its own final "." again waits for this message's outcome to be
//     durable, so the rule above is unchanged: a message's envelope lets
//     the relay accept nothing. Per message that is one round trip
//     instead of two. The message so started is in flight: when the run
//     stops, it is sent as a message already being sent is (its final "."
//     still waits for the outcome before it and for the lease), then the
//     session ends with QUIT. A transaction so opened whose connection is
//     given up (this message is to be tried again on a new one, or the
//     relay closes the session) is ended without its final ".": once the
//     relay waits for the data, only by closing the connection; that row
//     was not attempted, and goes on the next connection uncounted. A
//     refusal of this message's final "." leaves the next one's
//     transaction as it is.
//  4. Failed and pending outcomes need no acknowledgement: losing one in a
//     crash only means the recipient is tried again.
//  5. A claimed row that was not attempted is released back to pending.
//  6. No reply to the end of DATA (a timeout or a dropped connection after
//     the final "." was sent) is ambiguous: the relay may have accepted
//     the message. Such a recipient is not retried in the same run: its
//     row stays sending until the run ends, and is then recorded pending
//     with the attempt counted (failed when it was the last attempt), so
//     that each run repeats it at most once; later runs retry it as usual.
//     The connection is closed and another opened; a next message whose
//     envelope went with that final "." is sent again on the new one,
//     with no attempt counted. (A reply of 250 followed by a dropped
//     connection is a success: the row is sent.)
//     The wait for that reply is long (SMTPOptions.DataTimeout), and after
//     3 such outcomes per connection in a row, with no message accepted in
//     between, the run stops with the rest pending: the relay is not
//     answering.
//
// # The relay or the reader: who is at fault
//
// A failure is either the relay's (the run pauses; nobody's attempts grow)
// or the reader's (that reader is retried later; the others go on):
//
//   - The relay: a session that cannot be opened (connection refused or
//     timed out, a 421 or other 4xx greeting or EHLO, a TLS or AUTH
//     failure without a 5xx), a 421 at any point of a session, or the same
//     4xx reply, word for word, to 5 recipients in a row (on one domain or
//     several) unless its enhanced code is about the mailbox itself (4.1.x
//     address, 4.2.x mailbox status, such as 4.2.2 mailbox full). The
//     recipients of such a streak are held back until it is decided, and
//     handed back uncounted when it completes. A 5xx to the session (wrong
//     credentials) or to MAIL FROM (the sender refused) stops the run at
//     once with the rest pending: waiting cannot fix either.
//   - The reader: any other 4xx (greylisting, a full mailbox, a 4.7.x
//     throttle on one address), and a timeout or a dropped connection
//     during a message. The row goes back to pending with a retry time in
//     the ledger; Options.MaxAttempts attempts in all, at intervals growing
//     from 5 minutes and adding up to Options.RetryFor (48h by default:
//     5m, 40m, 5h17m, 42h for 5 attempts), retried by whichever later run is
//     going when they fall due; then failed, with the last reply. A 5xx
//     fails the recipient at once (and marks it bounced when the address
//     itself was refused).
//
// While the relay is down every worker waits at a gate: one at a time
// tries again after a backoff shared by all (DefaultBackoff: 1s doubling
// to 2 minutes, with jitter), and the first answer that is not the
// relay's opens the gate for all. Caps (PerHour, PerDay) pause the run the
// same way until they allow the next message. A run gives up after
// Options.OutageWait (one-shot send: 10 minutes) with everyone it has not
// sent still pending and ErrRelayDown or ErrQuota; a daemon waits as long
// as it takes. The outage is logged once when it starts and once when it
// ends; RelayState tells health checks and metrics.
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
	"github.com/digest/digest/internal/plural"
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

// Ready is what Conn.Send calls right before the step that lets the
// server accept a message (the end of DATA). canOpen says whether the
// connection can start another message in the same write (the server
// offers PIPELINING, RFC 2920). An error forbids that step. When canOpen,
// next is the message to start with it, or nil for none; without canOpen
// it is nil.
type Ready func(canOpen bool) (next *mail.Message, err error)

// Conn is one connection, used by one worker at a time.
type Conn interface {
	// Send transmits m (to m.To; m also tells transports that file
	// messages where they go) and returns nil once the server accepted it.
	//
	// Right before the step that lets the server accept m (the end of
	// DATA) it calls ready, when ready is not nil; if ready fails it must
	// not complete that step (it may close the connection) and returns an
	// error wrapping ErrConnBroken.
	//
	// When ready returns a next message, Send may send the start of next's
	// transaction (MAIL, RCPT and DATA) in the same write as m's end of
	// DATA, never before it, and never next's end of DATA. opened reports
	// that it did so and that the connection is still usable, whatever m's
	// own result: the connection then holds next's transaction open (the
	// server may be waiting for next's data), and its next call must be
	// Send(ctx, next, ...) with that very pointer, which goes on from
	// there (it reads the replies to next's start instead of sending it
	// again), or Close, which ends the transaction without the server
	// accepting next (closing the connection if need be). opened is false
	// when next was not sent, and when the connection broke.
	//
	// An error that wraps ErrConnBroken, or that carries no SMTP reply (no
	// *ReplyError), makes the engine re-open the connection. An error
	// wrapping ErrUnconfirmed says the message was handed over whole but
	// its verdict never came (it may have been accepted): the engine does
	// not retry it in this run. Implementations may ignore ctx once
	// transmission started.
	Send(ctx context.Context, m *mail.Message, ready Ready) (opened bool, err error)
	// Close releases the connection; a transaction that Send left open
	// ends without its message being accepted.
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

// Options tunes a run. The zero value works: one connection, no rate limit,
// 5 attempts, batches of 100.
type Options struct {
	Connections int     // parallel connections; 0 means 1
	Rate        float64 // messages per second over all connections; 0 = unlimited
	// PerHour and PerDay cap the messages accepted in any sliding hour or
	// day, for relays with quotas; 0 means no cap. When a cap is reached
	// the run pauses as for a relay outage, until the cap allows the next
	// message; when that is further than OutageWait, the run stops with the
	// rest pending and Issue returns an error wrapping ErrQuota that says
	// when sending resumes.
	PerHour, PerDay int
	// SentSince, when set with a cap, tells how many messages were sent
	// since a time by earlier runs (all issues), so that the caps hold
	// across runs; nil counts this run only.
	SentSince func(ctx context.Context, since time.Time) (int, error)
	// NthSentSince, when set with SentSince, tells when the n-th (from 0)
	// oldest message sent since a time was sent, so that a run paused at a
	// cap knows when the cap frees its next slot; nil re-checks every 10s.
	NthSentSince func(ctx context.Context, since time.Time, n int) (time.Time, error)
	// MaxAttempts is the attempts per recipient across runs, for the
	// recipient's own temporary failures (relay-wide failures count none);
	// 0 means 5. They are spread over RetryFor.
	MaxAttempts int
	// RetryFor is how long a recipient's temporary failures are retried:
	// the attempts after the first wait growing intervals (the first 5
	// minutes, or less when RetryFor is short) that add up to RetryFor,
	// recorded in the ledger as the row's next attempt time, so that later
	// runs retry it when due. 0 means 48h.
	RetryFor  time.Duration
	BatchSize int // rows per Claim (more with many connections), and most outcomes per Record; 0 means 100
	// OutageWait is how long a run waits for a relay that is down (or a
	// cap) before it stops with every recipient it has not sent pending,
	// and an error wrapping ErrRelayDown (or ErrQuota). 0 means 10
	// minutes; a negative value waits as long as the run lasts (a daemon).
	OutageWait time.Duration
	// Relay, when set, is where the run keeps what it knows of the relay
	// (shared by a daemon's runs, read by its health check); nil keeps it
	// to the run.
	Relay *RelayState
	// Backoff is the wait before the n-th new try (1, 2, ...) to reach a
	// relay that is down, shared by all connections; nil means
	// DefaultBackoff.
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
	Now func() time.Time
	// Clock is real time, for waits: how long the relay has been down, and
	// when to try it again (Now may be pinned by --now); nil means
	// time.Now. Tests inject it with Sleep.
	Clock  func() time.Time
	Logger *slog.Logger // nil discards
}

// ErrQuota is wrapped by Issue's error when PerHour or PerDay stopped the run.
var ErrQuota = errors.New("sending cap reached")

// Progress is a snapshot of a run.
type Progress struct {
	Sent, Failed, Skipped, Pending, Total int
	Rate                                  float64       // messages accepted per second since the start
	Elapsed                               time.Duration // since the start of the run
	Done                                  bool          // the last report of the run
	// Relay is the relay's state; while it is down (or a cap holds
	// sending back) the run is paused.
	Relay RelayStatus
	// Now is the real time of the report, for "retrying in 40s".
	Now time.Time
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
	// Waiting counts the recipients this run left pending after their own
	// temporary failure, to be retried when due; NextRetry is the earliest
	// of those times (real time; zero when none).
	Waiting   int
	NextRetry time.Time
}

// Rate is messages accepted per second over the run.
func (s Summary) Rate() float64 {
	if s.Duration <= 0 {
		return 0
	}
	return float64(s.Sent) / s.Duration.Seconds()
}

// DefaultBackoff waits 1s, 2s, 4s ... (capped at 2 minutes), each with up
// to 25% jitter so that processes sharing a relay do not retry in lockstep.
func DefaultBackoff(attempt int) time.Duration {
	d := time.Second << min(max(attempt-1, 0), 7)
	d = min(d, 2*time.Minute)
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
	if o.RetryFor <= 0 {
		o.RetryFor = 48 * time.Hour
	}
	if o.OutageWait == 0 {
		o.OutageWait = 10 * time.Minute
	}
	if o.Clock == nil {
		o.Clock = time.Now
	}
	if o.Relay == nil {
		o.Relay = NewRelayState(nil)
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
	issueID   string
	msgs      Builder
	l         Ledger
	t         Transport
	o         Options
	log       *slog.Logger
	limiter   *rate.Limiter
	peers     atomic.Int64 // runs sharing Rate when the limiter was last set
	quota     *quota
	start     time.Time
	relay     *RelayState
	firstSent sync.Once // the relay is told up at the run's first accepted message
	// drained: the claimer found nothing left to claim and no other run
	// holding rows, so what this run did not settle, others did.
	drained atomic.Bool
	gate    *gate
	retries []time.Duration // the wait before attempt n+2, after a temporary failure

	ctx    context.Context // the run: cancelled by the caller or on a fatal error
	cancel context.CancelCauseFunc
	bg     context.Context // for ledger writes after ctx is cancelled

	jobs chan ledger.Recipient
	outs chan outReq

	mu        sync.Mutex
	state     map[int64]int
	claimed   int
	sent      int
	failed    int
	skipped   int
	waiting   int       // left pending for a retry later
	nextRetry time.Time // the earliest of those retries

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
	spare   []byte     // the message buffer not in use, reused
	ack     chan error // answer for the last sent outcome
	waiting bool       // an answer is due on ack
	ackErr  error      // a Record that failed: send nothing more
	probe   int        // while this worker tries a relay that is down: its token (see gate.wait)

	// ahead is the next recipient, taken and built while the current
	// message is sent, so that its start can go with the current end of
	// DATA (see lookAhead).
	ahead *job
	// opened: conn holds the transaction of ahead (once taken, of the
	// current job), started with the last end of DATA under openSlot of
	// the caps; offered: ready handed ahead to Send, under openSlot.
	opened, offered bool
	openSlot        time.Time
}

// errNotRecorded aborts a message whose predecessor could not be recorded.
var errNotRecorded = errors.New("previous outcome not recorded")

// Issue delivers an issue, built per recipient by msgs, to the recipients it
// claims from l until none is left (and, with a SharedLedger, no other run
// holds any), the relay is unreachable, a cap is reached, the lease lapses
// or ctx is cancelled. On cancellation it stops claiming, lets messages in
// flight finish (bounded by the transport's timeout), records what is
// known, releases the rest and returns ctx.Err(). If no connection can be
// opened it returns an error naming the relay failure, with the recipients
// left pending.
func Issue(ctx context.Context, issueID string, msgs Builder, l Ledger, t Transport, opts Options) (Summary, error) {
	opts.defaults()
	start := time.Now()
	e := &engine{
		issueID: issueID, msgs: msgs, l: l, t: t, o: opts, log: opts.Logger.With("issue", issueID),
		start: start,
		bg:    context.WithoutCancel(ctx),
		jobs:  make(chan ledger.Recipient, claimSize(opts)),
		outs:  make(chan outReq, opts.BatchSize+opts.Connections),
		state: make(map[int64]int),
		relay: opts.Relay, retries: retrySchedule(opts.MaxAttempts, opts.RetryFor),
	}
	e.gate = newGate(e)
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
	// Workers are gone: stop the claimer. A no-op when the run already
	// stopped with a cause.
	e.cancel(nil)
	claimWG.Wait()
	// Recipients held back by an undecided run of identical replies are
	// their own temporary failures.
	e.gate.flush()
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
		if e.drained.Load() && ctx.Err() == nil {
			// The issue is settled but for what this run put back: the
			// rest of Total went to other runs, and is not pending.
			p.Pending = s.Pending
			p.Total = p.Sent + p.Failed + p.Skipped + p.Pending
		}
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
			return s, fmt.Errorf("%s left pending: %w", plural.N(s.Pending, "recipient", "recipients"), err)
		}
	}
	return s, nil
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
// one is recorded, and the run's lease is still certainly valid. When the
// connection can start another message in the same write (canOpen), it
// returns the worker's next one if that may go at once (see offer); it
// takes and builds it first, while the previous outcome commits.
func (e *engine) ready(w *worker, canOpen bool) (*mail.Message, error) {
	if canOpen {
		e.lookAhead(w)
	}
	if err := w.holdAck(e.o.HoldMax); err != nil {
		return nil, err
	}
	if e.fenced() {
		e.cancel(ledger.ErrLeaseLost)
		return nil, fmt.Errorf("%w: %w", ErrConnBroken, ledger.ErrLeaseLost)
	}
	if !canOpen {
		return nil, nil
	}
	return e.offer(w), nil
}

// fenced reports that the run's lease is no longer certainly valid: it
// must let no message be accepted, and settles nothing it is unsure of.
func (e *engine) fenced() bool { return e.o.Lease != nil && !e.o.Lease.Valid() }

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
				e.drained.Store(true)
				return
			}
			if !e.o.Sleep(e.ctx, e.o.PollEvery) {
				return
			}
			if e.fenced() {
				e.cancel(ledger.ErrLeaseLost)
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
		e.drop(w)
	}()
	for {
		j, ok := e.take(w)
		if !ok || !e.tryOne(j, w) {
			return
		}
	}
}

// take returns the worker's next recipient with its message built: the
// one it took ahead, else one handed back by a run of identical replies
// (the relay was down; they go before new ones), else the next claimed
// row, waiting for one. ok is false when the run stops or nothing is left.
func (e *engine) take(w *worker) (j *job, ok bool) {
	for {
		if j := w.ahead; j != nil {
			w.ahead = nil
			return j, true
		}
		if e.ctx.Err() != nil {
			return nil, false
		}
		rc, ok := e.gate.again()
		if !ok {
			select {
			case <-e.ctx.Done():
				return nil, false
			case rc, ok = <-e.jobs:
				if !ok {
					return nil, false
				}
			}
		}
		if j := e.build(rc, w); j != nil {
			return j, true
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

// tryOne tries one recipient until it is sent, failed for good, or left
// for a later attempt. It reports false when the worker should stop (the
// run is stopping, or the ledger failed).
func (e *engine) tryOne(j *job, w *worker) bool {
	rc := j.rc
	t := &try{rc: rc, attempts: rc.Attempts}
	defer func() {
		e.gate.endProbe(w.probe)
		w.probe = 0
		w.spare = j.m.Data[:0] // the message is done with: its buffer is free
	}()
	ready := func(canOpen bool) (*mail.Message, error) { return e.ready(w, canOpen) }
	for {
		if t.attempts >= e.o.MaxAttempts {
			e.giveUp(t)
			return true
		}
		// A message whose transaction is open on the connection (started
		// with the last end of DATA) is in flight: it goes on when the run
		// stops, as a message being sent does.
		if e.ctx.Err() != nil && !w.opened {
			return e.leave(w, rc, t.attempts, t.last)
		}
		slot, next := e.begin(w, t)
		if next == again {
			continue
		}
		if next != proceed {
			return next == leaveNext
		}
		opened, err := w.conn.Send(e.ctx, &j.m, ready)
		e.settleOffer(w, opened)
		if errors.Is(err, errHeldTooLong) {
			// Not sent: the final dot was held past HoldMax and the
			// connection dropped; resent once the commit is in, uncounted.
			if e.quota != nil {
				e.quota.refund(slot)
			}
			e.gate.endProbe(w.probe)
			w.probe = 0
			if !e.afterHold(w, err) {
				return false
			}
			continue
		}
		e.attempts.Add(1)
		v := classify(err)
		if err != nil && e.quota != nil && v.kind != unconfirmed {
			e.quota.refund(slot) // an unconfirmed message may count at the relay
		}
		done, keepOn := e.settleTry(w, t, v, err)
		// One probe is one try: if it neither failed for the relay nor
		// got an answer, the next worker to wait probes.
		e.gate.endProbe(w.probe)
		w.probe = 0
		if done {
			return keepOn
		}
		if w.opened {
			// This message is tried again, and the connection holds the
			// next one's transaction: give that up with the connection.
			e.drop(w)
		}
	}
}

// try is one recipient's delivery in this run.
type try struct {
	rc       ledger.Recipient
	attempts int     // attempts so far, earlier runs' included
	last     verdict // the last temporary failure
	// staleRetried: the one free retry after a reused connection was found
	// dead has been spent.
	staleRetried bool
}

// build builds the recipient's message into the worker's spare buffer;
// when there is nothing to send (a skip, or a message that cannot be
// built) it settles the row and returns nil.
func (e *engine) build(rc ledger.Recipient, w *worker) *job {
	m, err := e.msgs.Build(w.spare, rc)
	if errors.Is(err, ErrSkip) {
		e.emit(w, rc, ledger.Skipped, rc.Attempts, verdict{reply: err.Error()})
		return nil
	}
	if err != nil {
		// No retry can fix a message that cannot be built.
		e.emit(w, rc, ledger.Failed, rc.Attempts, verdict{reply: "compose: " + err.Error()})
		return nil
	}
	w.spare = nil // in use until the message is done with
	return &job{rc: rc, m: m}
}

// giveUp fails a recipient whose attempts are spent, with the last reply.
func (e *engine) giveUp(t *try) {
	v := t.last
	v.reply = fmt.Sprintf("gave up after %d attempts", t.attempts)
	if t.last.reply != "" {
		v.reply += ": " + t.last.reply
	}
	e.emit(nil, t.rc, ledger.Failed, t.attempts, v)
}

// later settles a recipient's own temporary failure: pending, to be retried
// when its next interval has passed, or failed when no attempt is left.
func (e *engine) later(t *try, v verdict) {
	t.last = v
	if t.attempts >= e.o.MaxAttempts {
		e.giveUp(t)
		return
	}
	wait := e.retries[min(max(t.attempts-1, 0), len(e.retries)-1)]
	e.relay.deferred(DeferRecipient)
	e.log.Debug("temporary failure: retried later", "subscriber", t.rc.SubscriberID, "attempt", t.attempts,
		"retry_in", wait, "reply", v.reply)
	o := e.outcome(t.rc, ledger.Pending, t.attempts, v)
	o.RetryAfter = wait
	at := e.o.Clock().Add(wait)
	e.mu.Lock()
	e.waiting++
	if e.nextRetry.IsZero() || at.Before(e.nextRetry) {
		e.nextRetry = at
	}
	e.mu.Unlock()
	e.outs <- outReq{o: o}
}

// next is what a worker does after a step: go on with the recipient, try
// the step again, leave it (the worker takes the next one) or stop.
type next int

const (
	proceed next = iota
	again
	leaveNext
	stopNext
)

// await waits for what a message needs before it is sent: the rate
// limiter, a relay that answers (the gate), an open connection and a slot
// under the caps. It returns the quota slot taken (to refund when the
// message is not accepted).
func (e *engine) await(w *worker, t *try) (time.Time, next) {
	if e.limiter != nil {
		e.shareRate()
		if err := e.limiter.Wait(e.ctx); err != nil {
			return time.Time{}, e.leaveStep(w, t)
		}
	}
	probe, ok := e.gate.wait()
	if !ok {
		return time.Time{}, e.leaveStep(w, t)
	}
	w.probe = probe
	if w.conn == nil {
		c, err := e.t.Open(e.ctx)
		if err != nil {
			return time.Time{}, e.openFailed(w, t, err)
		}
		w.conn = c
	}
	var slot time.Time
	if e.quota != nil {
		var err error
		if slot, err = e.quota.take(e.ctx, e.o.Now(), e.peerCount()); err != nil {
			var qe *quotaError
			if !errors.As(err, &qe) {
				e.cancel(err)
				return time.Time{}, e.leaveStep(w, t)
			}
			e.relay.deferred(DeferQuota)
			e.gate.fail(w.probe, qe.Error(), "", true, e.o.Clock().Add(qe.resume.Sub(e.o.Now())))
			return time.Time{}, again
		}
	}
	return slot, proceed
}

// leaveStep leaves the recipient (the run is stopping).
func (e *engine) leaveStep(w *worker, t *try) next {
	e.leave(w, t.rc, t.attempts, t.last)
	return leaveNext
}

// openFailed handles a session that could not be opened: the relay is
// down (the gate pauses every worker) unless it refused this client for
// good (a 5xx reply, such as wrong credentials), which stops the run.
func (e *engine) openFailed(w *worker, t *try, err error) next {
	if e.ctx.Err() != nil {
		return e.leaveStep(w, t)
	}
	if openVerdict(err) == permanent {
		e.setRelayError(fmt.Errorf("relay refused the session: %w", err))
		e.cancel(e.relayError())
		return e.leaveStep(w, t)
	}
	e.relayDown(w, replyText(err), "")
	return again
}

// settleTry acts on the verdict of one Send. done reports that the
// recipient is settled for this run; keepOn then says whether the worker
// goes on with the next one.
func (e *engine) settleTry(w *worker, t *try, v verdict, err error) (done, keepOn bool) {
	rc := t.rc
	switch v.kind {
	case local:
		// The ledger failed, or the lease lapsed (the run is stopping):
		// this message was not accepted and its attempt does not count.
		e.drop(w)
		return true, false
	case stale:
		if !t.staleRetried {
			t.staleRetried = true
			e.log.Debug("connection went stale, re-opening", "err", err)
			e.drop(w)
			return false, true
		}
		v.kind = temporary
	}
	if v.reconnect {
		e.drop(w)
	}
	if v.kind == temporary && v.code == 421 {
		// The relay closes the session: it is down, not the recipient.
		e.relayDown(w, v.reply, "")
		return false, true // retried once it answers, uncounted
	}
	t.attempts++
	switch v.kind {
	case sent:
		e.unconfirmedRun.Store(0)
		e.gate.answered()
		e.firstSent.Do(e.relay.accepted)
		e.gate.other()
		e.emit(w, rc, ledger.Sent, t.attempts, verdict{})
	case unconfirmed:
		e.unconfirmed(w, rc, t.attempts, v, err)
	case relay:
		// The relay refused the sender: every recipient would fail the
		// same way. Stop the run instead of failing the whole list.
		e.setRelayError(fmt.Errorf("relay refused the sender: %w", err))
		e.cancel(e.relayError())
		return true, e.leave(w, rc, t.attempts, v)
	case permanent:
		e.gate.answered()
		e.gate.other()
		e.log.Info("recipient failed", "subscriber", rc.SubscriberID, "code", v.code, "enhanced", v.enhanced, "bounced", v.bounced)
		e.emit(w, rc, ledger.Failed, t.attempts, v)
	default:
		return e.temporary(w, t, v), true
	}
	return true, true
}

// temporary takes a temporary failure (t.attempts counts it): the same 4xx
// reply to sameReplyStreak recipients in a row is the relay's (the gate
// goes down and this recipient is retried once it answers, uncounted);
// otherwise it is the recipient's own, retried later. It reports whether
// the recipient is settled for this run.
func (e *engine) temporary(w *worker, t *try, v verdict) bool {
	if e.fenced() {
		// The run lost its lease (it was frozen or cut off past it): the
		// failure is most likely its own, not the reader's, and the row is
		// no longer surely its to settle. It stays held, its attempts as
		// they were, and is released (or recovered) for the next run.
		t.attempts--
		return true
	}
	held, down := e.gate.temporary(t, v)
	if down {
		t.attempts--
		e.relayDown(w, v.reply, streakKey(v))
		return false
	}
	if v.code != 0 {
		e.gate.answered()
	}
	if !held { // else the gate records it when the streak is decided
		e.later(t, v)
	}
	return true
}

// relayDown pauses the run: the relay as a whole failed.
func (e *engine) relayDown(w *worker, reply, key string) {
	e.relay.deferred(DeferRelay)
	e.gate.fail(w.probe, reply, key, false, time.Time{})
}

// retrySchedule is the wait after each temporary failure of a recipient
// (after attempt 1, 2, …, maxAttempts-1): growing by a constant factor from
// the first (5 minutes, or less when that would overshoot) so that they
// add up to retryFor.
func retrySchedule(maxAttempts int, retryFor time.Duration) []time.Duration {
	n := max(maxAttempts-1, 1)
	first := min(5*time.Minute, retryFor/time.Duration(n))
	sum := func(r float64) float64 {
		s, x := 0.0, 1.0
		for range n {
			s += x
			x *= r
		}
		return s * float64(first)
	}
	lo, hi := 1.0, 1e6
	for range 200 {
		mid := (lo + hi) / 2
		if sum(mid) < float64(retryFor) {
			lo = mid
		} else {
			hi = mid
		}
	}
	out := make([]time.Duration, n)
	x := float64(first)
	for i := range out {
		out[i] = time.Duration(x).Round(time.Second)
		x *= lo
	}
	return out
}

// unconfirmed handles a message whose end of DATA got no reply (rule 6):
// no retry in this run; pending at the end of the run, or failed when no
// attempt is left. Too many in a row stop the run.
func (e *engine) unconfirmed(w *worker, rc ledger.Recipient, attempts int, f verdict, err error) {
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
func (e *engine) leave(w *worker, rc ledger.Recipient, attempts int, last verdict) bool {
	if attempts > rc.Attempts {
		e.emit(w, rc, ledger.Pending, attempts, last)
	}
	// else: still held, released at the end of the run.
	return true
}

// emit hands an outcome to the recorder. A sent outcome must be durable
// before the worker lets the server accept its next message (see waitAck).
func (e *engine) emit(w *worker, rc ledger.Recipient, status string, attempts int, f verdict) {
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

func (e *engine) outcome(rc ledger.Recipient, status string, attempts int, f verdict) ledger.Outcome {
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

// peerCount is how many runs share the caps.
func (e *engine) peerCount() int {
	if e.o.Lease == nil {
		return 1
	}
	return max(e.o.Lease.Peers(), 1)
}

// drop closes the worker's connection, and with it a transaction it held
// open for the next message (whose slot under the caps is refunded).
func (e *engine) drop(w *worker) {
	if w.conn != nil {
		if err := w.conn.Close(); err != nil {
			e.log.Debug("close connection", "err", err)
		}
		w.conn = nil
	}
	if w.opened {
		w.opened = false
		e.refund(w.openSlot)
	}
}

// refund gives back a slot under the caps taken for a message that was
// not accepted.
func (e *engine) refund(slot time.Time) {
	if e.quota != nil {
		e.quota.refund(slot)
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
	s := Summary{Sent: e.sent, Failed: e.failed, Skipped: e.skipped, Attempts: int(e.attempts.Load()), Duration: time.Since(e.start),
		Waiting: e.waiting, NextRetry: e.nextRetry}
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
	p.Relay, p.Now = e.relay.Status(), e.o.Clock()
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
